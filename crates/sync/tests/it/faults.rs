//! Microsoft misbehaving on 10% of requests — 429 with Retry-After (seconds and HTTP-dates), 503,
//! timeouts, 410 — while the mailbox changes: every round still converges, no more than 4 requests
//! were ever in flight for the mailbox, and nothing was sent before a Retry-After had passed
//! (the emulator's own counters).

use crate::harness::*;
use m365_emulator::{FaultRule, Kind};
use std::sync::Arc;
use sync::Scheduler;

fn rule(status: Option<u16>, retry_after: Option<f64>, as_date: bool, delay_ms: Option<u64>) -> FaultRule {
    FaultRule {
        route: None,
        mailbox: Some(ALICE.to_string()),
        status,
        retry_after,
        retry_after_as_date: as_date,
        delay_ms,
        probability: Some(0.02),
        count: u32::MAX,
    }
}

/// Runs until a run succeeds (failed runs are due again at once with the test config).
async fn converge(s: &Arc<Scheduler>, mb: uuid::Uuid) {
    s.sync_now(mb).await.unwrap();
    for _ in 0..40 {
        for h in s.tick().await.unwrap() {
            if h.await.unwrap().result.is_ok() {
                return;
            }
        }
    }
    panic!("no successful run in 40 attempts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_percent_faults_still_converge_within_microsofts_limits() {
    let env = spawn().await;
    let (_, conn) = env.connect(ALICE, true).await;
    let (_, bob_conn) = env.connect(BOB, false).await;
    let s = env.scheduler("instance-a");
    s.reconcile_org(env.org).await.unwrap();
    let mb = env.mailbox_of(conn).await;
    let bob_mb = env.mailbox_of(bob_conn).await;
    // Bob's mailbox is synced alongside, fault-free: alice's throttling must not stall it.
    for r in [
        rule(Some(429), Some(0.3), false, None),
        rule(Some(429), Some(1.0), true, None),
        rule(Some(503), None, false, None),
        rule(None, None, false, Some(600)),
        rule(Some(410), None, false, None),
    ] {
        env.emu.inject_fault(r);
    }
    let started = std::time::Instant::now();
    converge(&s, mb).await;
    env.assert_converged(mb, ALICE).await;
    env.assert_converged(bob_mb, BOB).await;
    for round in 0..3 {
        env.emu.add_item(ALICE, Kind::Message, Some("inbox"), serde_json::json!({"subject": format!("Round {round}")})).unwrap();
        let inbox = env.emu.list_items(ALICE, Kind::Message, "inbox", 3).unwrap();
        env.emu.update_item(ALICE, &inbox[0].immutable_id, serde_json::json!({"subject": format!("Edited {round}")})).unwrap();
        env.emu.delete_item(ALICE, &inbox[1].immutable_id).unwrap();
        let tasks = env.emu.list_items(ALICE, Kind::Task, "tasks", 1).unwrap();
        if let Some(t) = tasks.first() {
            env.emu.delete_item(ALICE, &t.immutable_id).unwrap();
        }
        converge(&s, mb).await;
        env.assert_converged(mb, ALICE).await;
    }
    let counters = env.emu.counters();
    let alice = counters.mailbox(ALICE).unwrap();
    assert!(alice.max_concurrency <= 4, "{alice:?}");
    assert!(!alice.retried_before_retry_after, "a request came before its Retry-After: {alice:?}");
    assert!(alice.throttled > 0, "faults fired: {alice:?}");
    let m = s.engine().metrics().snapshot();
    assert!(m.throttled > 0 && m.requests_by_status.contains_key(&503), "{m:?}");
    assert!(s.engine().gates().gate(mb).max_in_flight() <= 4);
    eprintln!("converged through faults in {:?}: {m:?}", started.elapsed());
    env.emu.shutdown().await;
}
