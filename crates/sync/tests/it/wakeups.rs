//! The scheduler's loop acts when a worker finishes (its slot is free) and when work is made due,
//! not only at its poll: with a poll far longer than the runs and one worker slot, every due
//! mailbox is synced one after another well within a single poll interval.

use crate::harness::*;
use std::time::{Duration, Instant};
use sync::Scheduler;

const CAROL: &str = "carol@northwind.test";

/// Waits until `runs` mailbox runs have ended well, at most `within`; returns how long it took.
async fn runs_ok(s: &Scheduler, runs: u64, within: Duration) -> Duration {
    let started = Instant::now();
    while s.engine().metrics().snapshot().mailbox_runs_ok < runs {
        assert!(
            started.elapsed() < within,
            "{} of {runs} runs done after {within:?}: the loop waited for its poll",
            s.engine().metrics().snapshot().mailbox_runs_ok
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finishing_workers_wake_the_loop_so_due_mailboxes_do_not_wait_for_the_poll() {
    let env = spawn().await;
    let people = [ALICE, BOB, CAROL];
    let mut connections = Vec::new();
    for (i, email) in people.iter().enumerate() {
        connections.push(env.connect(email, i == 0).await.1);
    }
    let poll = Duration::from_secs(60);
    let mut cfg = test_config("wakeups");
    cfg.poll_every = poll;
    cfg.max_concurrent_mailboxes = 1;
    let s = Scheduler::new(env.engine(cfg));
    let (stop, stopped) = tokio::sync::watch::channel(false);

    // The loop's first pass schedules the three mailboxes and starts one; each of the others can
    // only start when the worker before it wakes the loop.
    let loop_handle = s.clone().spawn(stopped);
    let first_round = runs_ok(&s, 3, poll / 2).await;
    assert_eq!(s.engine().metrics().snapshot().mailbox_runs_failed, 0);
    for (email, conn) in people.iter().zip(&connections) {
        env.assert_converged(env.mailbox_of(*conn).await, email).await;
    }

    // "Sync now" for the organization wakes the loop once; the finishing workers do the rest.
    let items = env.store.mailbox_items(env.mailbox_of(connections[2]).await, domain::Resource::Tasks).await.unwrap().len();
    env.emu.add_item(CAROL, m365_emulator::Kind::Task, Some("tasks"), serde_json::json!({"title": "Woken, not polled"})).unwrap();
    s.sync_org_now(env.org).await.unwrap();
    let second_round = runs_ok(&s, 6, poll / 2).await;
    assert_eq!(s.engine().metrics().snapshot().mailbox_runs_failed, 0);
    let carol_mb = env.mailbox_of(connections[2]).await;
    assert_eq!(env.store.mailbox_items(carol_mb, domain::Resource::Tasks).await.unwrap().len(), items + 1);
    env.assert_converged(carol_mb, CAROL).await;
    eprintln!("three first syncs in {first_round:?}, three incremental rounds in {second_round:?} (poll every {poll:?})");
    assert!(second_round < Duration::from_secs(10), "incremental rounds one after another: {second_round:?}");

    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), loop_handle).await.unwrap().unwrap();
    env.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailbox_is_synced_when_its_due_time_comes_not_at_the_next_poll() {
    let env = spawn().await;
    let (_, connection) = env.connect(ALICE, true).await;
    let poll = Duration::from_secs(60);
    let mut cfg = test_config("due-time");
    cfg.poll_every = poll;
    let s = Scheduler::new(env.engine(cfg.clone()));
    s.reconcile_org(env.org).await.unwrap();
    let mailbox = env.mailbox_of(connection).await;

    // Due three seconds from now (a claim and a release, as a finished run leaves it).
    let lease = env.store.claim_due_mailboxes("setup", store::now_unix(), 30, 1).await.unwrap().pop().expect("the new mailbox is due");
    assert_eq!(lease.mailbox.id, mailbox);
    assert!(env.store.release_lease(mailbox, lease.fence, store::now_unix() + 3).await.unwrap());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let loop_handle = s.clone().spawn(stopped);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(s.engine().metrics().snapshot().mailbox_runs_ok, 0, "nothing runs before the mailbox is due");

    let waited = started.elapsed() + runs_ok(&s, 1, poll / 4).await;
    eprintln!("due in 3 s, synced after {waited:?} (poll every {poll:?})");
    assert!(waited < Duration::from_secs(8), "the loop woke at the due time: {waited:?}");
    env.assert_converged(mailbox, ALICE).await;

    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), loop_handle).await.unwrap().unwrap();
    env.emu.shutdown().await;
}
