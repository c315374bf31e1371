//! JSON batching (issue 15 item 2): a run fetches its container listings and the next page of
//! every container it continues in one `$batch`, which changes how requests travel, never which
//! requests Microsoft answers or what is synced.

use crate::harness::*;
use m365_emulator::{FaultRule, Kind};
use std::sync::Arc;
use sync::{MetricsSnapshot, Scheduler};

/// What one round sent, by the emulator's count: its `$batch` requests, and every other request
/// (a batch's inner ones included) by route and status.
struct Sent {
    batches: u64,
    requests: Vec<(String, u16, u64)>,
}

/// A first sync, then a round with one new message, with or without batching: the round's
/// metrics, what it sent, and the mailbox's cursor count.
async fn quiet_round(batch_requests: bool, fault: Option<FaultRule>) -> (MetricsSnapshot, Sent, usize) {
    let env = spawn().await;
    let (_, conn) = env.connect(ALICE, true).await;
    let mut cfg = test_config("instance-a");
    cfg.batch_requests = batch_requests;
    let s = Scheduler::new(env.engine(cfg));
    s.reconcile_org(env.org).await.unwrap();
    let mb = env.mailbox_of(conn).await;
    assert!(one_run(&s).await.iter().all(|o| o.result.is_ok()));
    env.emu.add_item(ALICE, Kind::Message, Some("inbox"), serde_json::json!({"subject": "Arrived between rounds"})).unwrap();
    env.emu.reset();
    if let Some(f) = fault {
        env.emu.inject_fault(f);
    }
    let before = s.engine().metrics().snapshot();
    s.sync_now(mb).await.unwrap();
    until_ok(&s, mb).await;
    let after = s.engine().metrics().snapshot();
    let counters = env.emu.counters();
    let alice = counters.mailbox(ALICE).unwrap();
    assert!(alice.max_concurrency <= 4, "{alice:?}");
    assert!(!alice.retried_before_retry_after, "a request came before its Retry-After: {alice:?}");
    let batches = counters.requests.iter().filter(|r| r.route == "POST /$batch").map(|r| r.count).sum();
    let mut requests: Vec<_> =
        counters.requests.iter().filter(|r| r.route != "POST /$batch").map(|r| (r.route.clone(), r.status, r.count)).collect();
    requests.sort();
    env.assert_converged(mb, ALICE).await;
    let cursors = env.store.cursors(mb).await.unwrap().len();
    let mut round = after.clone();
    round.batches -= before.batches;
    round.throttled -= before.throttled;
    round.mailbox_runs_failed -= before.mailbox_runs_failed;
    round.requests_by_status = after
        .requests_by_status
        .iter()
        .map(|(k, v)| (*k, v - before.requests_by_status.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect();
    (round, Sent { batches, requests }, cursors)
}

/// Runs the mailbox until a run succeeds.
async fn until_ok(s: &Arc<Scheduler>, mb: uuid::Uuid) {
    for _ in 0..10 {
        if one_run(s).await.iter().any(|o| o.mailbox == mb && o.result.is_ok()) {
            return;
        }
    }
    panic!("no successful run in 10 attempts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_fetches_every_continued_folder_in_one_batch_and_syncs_the_same() {
    let (batched, batched_sent, cursors) = quiet_round(true, None).await;
    let (single, single_sent, single_cursors) = quiet_round(false, None).await;
    assert_eq!(cursors, single_cursors);
    assert!((2..=16).contains(&cursors), "the demo mailbox has {cursors} containers");
    assert_eq!((batched.batches, batched_sent.batches), (1, 1), "one batch for the listings and all {cursors} containers");
    assert_eq!((single.batches, single_sent.batches), (0, 0));
    // The same Graph requests either way (each inner request counts), so the same work at Microsoft.
    assert_eq!(batched_sent.requests, single_sent.requests);
    assert!(batched_sent.requests.iter().any(|(route, _, _)| route.contains("mailFolders") && !route.contains("delta")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_throttled_inside_a_batch_is_sent_again_on_its_own_after_its_retry_after() {
    let fault = FaultRule {
        route: Some("/messages/delta".into()),
        mailbox: Some(ALICE.to_string()),
        status: Some(429),
        retry_after: Some(0.4),
        count: 1,
        ..FaultRule::default()
    };
    let (round, sent, _) = quiet_round(true, Some(fault)).await;
    assert_eq!((round.batches, sent.batches), (1, 1));
    assert_eq!(round.throttled, 1, "the inner 429 is counted");
    assert_eq!(round.requests_by_status.get(&429), Some(&1));
    assert_eq!(round.mailbox_runs_failed, 0, "the run still succeeded");
}
