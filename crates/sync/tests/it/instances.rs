//! Several instances and several mailboxes: leases keep workers apart, a stalled worker's late
//! commit is refused, one mailbox's throttling does not hold up another, app-only tokens.

use crate::harness::*;
use domain::permissions::ConnectionMode;
use m365_emulator::{FaultRule, Kind};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use store::sync::NewSyncMailbox;
use sync::{CommitBarrier, Scheduler, SyncError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_work_and_every_mailbox_converges() {
    let env = spawn().await;
    let mut conns = Vec::new();
    for email in [ALICE, BOB, "carol@northwind.test"] {
        conns.push((email, env.connect(email, email == ALICE).await.1));
    }
    let a = env.scheduler("instance-a");
    let b = env.scheduler("instance-b");
    a.reconcile_org(env.org).await.unwrap();
    let (ra, rb) = tokio::join!(a.run_until_idle(), b.run_until_idle());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let ran: Vec<uuid::Uuid> = ra.iter().chain(rb.iter()).map(|o| o.mailbox).collect();
    assert_eq!(ran.len(), 3, "each mailbox synced exactly once: {ran:?}");
    assert_eq!(ran.iter().collect::<BTreeSet<_>>().len(), 3);
    for o in ra.iter().chain(rb.iter()) {
        o.result.as_ref().unwrap();
    }
    for (email, conn) in conns {
        env.assert_converged(env.mailbox_of(conn).await, email).await;
    }
    env.emu.shutdown().await;
}

#[tokio::test]
async fn a_stalled_worker_whose_lease_was_taken_over_writes_nothing() {
    let env = spawn().await;
    let (_, conn) = env.connect(ALICE, true).await;
    let probe = env.scheduler("probe");
    probe.reconcile_org(env.org).await.unwrap();
    let mb = env.mailbox_of(conn).await;
    // A worker that stalls before a commit and does not renew its one-second lease in time.
    let barrier = Arc::new(CommitBarrier::default());
    let mut cfg = test_config("stalled");
    cfg.lease_ttl_secs = 1;
    cfg.renew_every = Duration::from_secs(60);
    cfg.commit_barrier = Some(barrier.clone());
    let stalled = Scheduler::new(env.engine(cfg));
    let handle = stalled.tick().await.unwrap().remove(0);
    barrier.reached.notified().await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let rescuer = env.scheduler("rescuer");
    let done = rescuer.run_until_idle().await.unwrap();
    assert_eq!(done.len(), 1);
    done[0].result.as_ref().unwrap();
    env.emu.add_item(ALICE, Kind::Message, Some("inbox"), serde_json::json!({"subject": "Never seen by the stalled worker"})).unwrap();
    let before = env.store.cursors(mb).await.unwrap();
    // The stalled worker wakes up and tries to commit the page it fetched long ago.
    barrier.proceed.notify_one();
    let out = handle.await.unwrap();
    assert!(matches!(out.result, Err(SyncError::LeaseLost)), "{:?}", out.result);
    assert_eq!(stalled.engine().metrics().snapshot().leases_lost, 1);
    assert_eq!(env.store.cursors(mb).await.unwrap(), before, "no cursor moved");
    // The rescuer released the lease; the stalled worker left nothing behind, not even a lease.
    assert!(env.store.sync_mailbox(mb).await.unwrap().unwrap().lease_owner.is_none());
    env.store.request_sync_now(mb).await.unwrap();
    rescuer.run_until_idle().await.unwrap()[0].result.as_ref().unwrap();
    env.assert_converged(mb, ALICE).await;
    env.emu.shutdown().await;
}

#[tokio::test]
async fn a_long_retry_after_parks_that_mailbox_and_the_others_carry_on() {
    let env = spawn().await;
    let (_, alice) = env.connect(ALICE, true).await;
    let (_, bob) = env.connect(BOB, false).await;
    let s = env.scheduler("instance-a");
    s.reconcile_org(env.org).await.unwrap();
    let (alice_mb, bob_mb) = (env.mailbox_of(alice).await, env.mailbox_of(bob).await);
    env.emu.inject_fault(FaultRule {
        mailbox: Some(ALICE.into()),
        status: Some(429),
        retry_after: Some(120.0),
        count: 1,
        ..FaultRule::default()
    });
    let started = std::time::Instant::now();
    let outs = s.run_until_idle().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(10), "nobody waited two minutes");
    let of = |mb| outs.iter().find(|o| o.mailbox == mb).unwrap();
    let Err(SyncError::Throttled(until)) = &of(alice_mb).result else { panic!("{:?}", of(alice_mb).result) };
    assert!(*until >= store::now_unix() + 100);
    of(bob_mb).result.as_ref().unwrap();
    env.assert_converged(bob_mb, BOB).await;
    let a = env.store.sync_mailbox(alice_mb).await.unwrap().unwrap();
    assert_eq!(a.next_due_at, *until, "due again when Microsoft said");
    let st = env.store.mailbox_status(alice_mb).await.unwrap().unwrap();
    assert!(st.resources.iter().any(|r| r.throttled_until == Some(*until) && r.last_error == Some(domain::ReasonCode::Throttled)));
    let c = env.emu.counters();
    assert!(!c.mailbox(ALICE).unwrap().retried_before_retry_after);
    env.emu.shutdown().await;
}

#[tokio::test]
async fn application_permissions_sync_other_mailboxes_with_a_cached_app_token() {
    let env = spawn().await;
    let (admin_user, conn) = env.connect(ALICE, true).await;
    env.settings(|s| s.mode = ConnectionMode::ApplicationPermissions).await;
    let s = env.scheduler("instance-a");
    let mut mailboxes = Vec::new();
    for upn in [BOB, "carol@northwind.test"] {
        let id = s
            .schedule_mailbox(&NewSyncMailbox {
                org_id: env.org,
                connection_id: conn,
                user_id: admin_user,
                graph_user_id: Some(upn.to_string()),
            })
            .await
            .unwrap();
        mailboxes.push((upn, id));
    }
    let outs = s.run_until_idle().await.unwrap();
    for (upn, id) in &mailboxes {
        outs.iter().find(|o| o.mailbox == *id).unwrap().result.as_ref().unwrap();
        env.assert_converged(*id, upn).await;
    }
    assert_eq!(s.engine().metrics().snapshot().token_refreshes, 1, "one client-credentials token for the organization");
    env.emu.shutdown().await;
}

#[tokio::test]
async fn a_service_user_without_rights_on_one_mailbox_parks_that_mailbox_only() {
    let env = spawn().await;
    env.settings(|s| {
        s.mode = ConnectionMode::ServiceUser;
        s.resources = vec![domain::Resource::Mail];
    })
    .await;
    let (service_user, conn) =
        env.connect_with("service@northwind.test", true, "openid profile email offline_access User.Read Mail.Read Mail.Read.Shared").await;
    let s = env.scheduler("instance-a");
    let mut ids = Vec::new();
    for upn in [ALICE, "carol@northwind.test"] {
        let new = NewSyncMailbox { org_id: env.org, connection_id: conn, user_id: service_user, graph_user_id: Some(upn.to_string()) };
        ids.push(s.schedule_mailbox(&new).await.unwrap());
    }
    let outs = s.run_until_idle().await.unwrap();
    let of = |id| &outs.iter().find(|o| o.mailbox == id).unwrap().result;
    let alice = of(ids[0]).as_ref().unwrap();
    assert_eq!(alice.upserts, 60, "alice's 60 messages through /users/alice with the service user's delegated token");
    assert!(matches!(of(ids[1]), Err(SyncError::NeedsAttention(domain::ReasonCode::NoMailboxAccess))), "{:?}", of(ids[1]));
    assert_eq!(domain::ReasonCode::NoMailboxAccess.who_must_act(), domain::WhoMustAct::TenantAdmin);
    // The service user's connection keeps working for the mailboxes it may open.
    let c = env.store.connections_in_org(env.org).await.unwrap().remove(0);
    assert_eq!(c.state, domain::ConnectionState::Active);
    let carol = env.store.mailbox_status(ids[1]).await.unwrap().unwrap();
    assert!(carol.mailbox.next_due_at > store::now_unix() + 1800, "looked at again much later, not in a loop");
    assert_eq!(carol.resources[0].last_error, Some(domain::ReasonCode::NoMailboxAccess));
    env.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_worker_keeps_its_lease_by_renewing_it() {
    let env = spawn().await;
    let (_, conn) = env.connect(ALICE, true).await;
    let barrier = Arc::new(CommitBarrier::default());
    let mut cfg = test_config("slow");
    cfg.lease_ttl_secs = 1;
    cfg.renew_every = Duration::from_millis(300);
    cfg.commit_barrier = Some(barrier.clone());
    let slow = Scheduler::new(env.engine(cfg));
    slow.reconcile_org(env.org).await.unwrap();
    let mb = env.mailbox_of(conn).await;
    let handle = slow.tick().await.unwrap().remove(0);
    barrier.reached.notified().await;
    // Three seconds at one page, three times its lease: another instance keeps finding it taken.
    let other = env.scheduler("other");
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(other.tick().await.unwrap().is_empty(), "the renewed lease is not up for grabs");
    }
    // Let the slow worker finish: every further commit passes straight through.
    let releaser = tokio::spawn({
        let barrier = barrier.clone();
        async move {
            loop {
                barrier.proceed.notify_one();
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    });
    handle.await.unwrap().result.unwrap();
    releaser.abort();
    assert_eq!(other.engine().metrics().snapshot().lease_takeovers, 0);
    env.assert_converged(mb, ALICE).await;
    env.emu.shutdown().await;
}
