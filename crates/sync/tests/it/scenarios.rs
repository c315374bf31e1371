//! Whole runs: first sync, incremental changes, deletions and moves, a worker killed before its
//! commit, revoked refresh tokens, poll-primary-only, the status shown to users.

use crate::harness::*;
use domain::{ConnectionState, ReasonCode, WhoMustAct};
use domain::{PauseReason, Resource};
use m365_emulator::Kind;
use microsoft::ExposeSecret;
use std::sync::Arc;
use std::time::Duration;
use store::sync::ItemQuery;
use sync::{CommitBarrier, Scheduler, SyncError};

#[tokio::test]
async fn a_first_sync_then_incremental_rounds_apply_changes_deletions_and_moves() {
    let env = spawn().await;
    let (alice, conn) = env.connect(ALICE, true).await;
    let s = env.scheduler("instance-a");
    s.reconcile_org(env.org).await.unwrap();
    let mb = env.mailbox_of(conn).await;

    let runs = one_run(&s).await;
    assert_eq!(runs.len(), 1);
    let report = runs[0].result.as_ref().unwrap().clone();
    assert!(report.pages > 10 && report.upserts > 100, "{report:?}");
    env.assert_converged(mb, ALICE).await;

    // Status for My Connection: every resource succeeded, counts, first sync done, next due.
    let status = env.store.mailbox_status(mb).await.unwrap().unwrap();
    assert_eq!(status.resources.len(), 4);
    for r in &status.resources {
        assert!(r.last_success_at.is_some() && r.last_error.is_none() && r.first_sync_done && r.items > 0, "{r:?}");
    }
    assert_eq!(status.resources.iter().find(|r| r.resource == Resource::Mail).unwrap().items, 60);
    assert!(status.mailbox.next_due_at > store::now_unix() + 14 * 60, "due again after the interval");
    assert!(status.mailbox.lease_owner.is_none(), "lease released");
    assert_eq!(status.state(store::now_unix()), domain::SyncState::UpToDate);

    // Nothing changed: not due, and a forced run transfers nothing.
    assert!(one_run(&s).await.is_empty());
    s.sync_now(mb).await.unwrap();
    let quiet = one_run(&s).await.remove(0).result.unwrap();
    assert_eq!((quiet.upserts, quiet.deletes, quiet.resyncs), (0, 0, 0));

    // Changes of every kind.
    env.emu.add_item(ALICE, Kind::Message, Some("inbox"), serde_json::json!({"subject": "Zanzibar numbers"})).unwrap();
    let inbox = env.emu.list_items(ALICE, Kind::Message, "inbox", 5).unwrap();
    env.emu.update_item(ALICE, &inbox[0].immutable_id, serde_json::json!({"subject": "Edited subject"})).unwrap();
    env.emu.delete_item(ALICE, &inbox[1].immutable_id).unwrap();
    env.emu.move_item(ALICE, &inbox[2].immutable_id, "archive").unwrap();
    let contacts = env.emu.list_items(ALICE, Kind::Contact, "contacts", 2).unwrap();
    env.emu.delete_item(ALICE, &contacts[0].immutable_id).unwrap();
    env.emu.add_item(ALICE, Kind::Task, Some("tasks"), serde_json::json!({"title": "Call Bob"})).unwrap();
    env.emu.add_item(ALICE, Kind::Event, None, serde_json::json!({"subject": "Planning"})).unwrap();
    s.sync_now(mb).await.unwrap();
    let inc = one_run(&s).await.remove(0).result.unwrap();
    assert!(inc.upserts >= 4 && inc.deletes >= 3 && inc.resyncs == 0, "{inc:?}");
    env.assert_converged(mb, ALICE).await;

    // The Activity page finds the new message by text.
    let found = env
        .store
        .activity_items(&ItemQuery { org_id: env.org, user_id: alice, resource: None, text: Some("zanzibar".into()), offset: 0, limit: 10 })
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].resource, Resource::Mail);

    // A longer backfill is a new calendar window: a new cursor, and the old window's items go once
    // the new one has completed its round.
    env.settings(|s| s.backfill_days = 365).await;
    s.sync_now(mb).await.unwrap();
    one_run(&s).await.remove(0).result.unwrap();
    env.assert_converged(mb, ALICE).await;
    let windows: std::collections::BTreeSet<String> =
        env.store.mailbox_items(mb, Resource::Calendar).await.unwrap().into_iter().map(|i| i.container).collect();
    assert_eq!(windows.len(), 1, "{windows:?}");

    let m = env.engine(test_config("x")).metrics().snapshot();
    assert_eq!(m.graph_requests(), 0, "metrics are per engine");
    let m = s.engine().metrics().snapshot();
    assert!(m.items_upserted >= report.upserts + inc.upserts && m.pages_committed >= report.pages);
    assert_eq!(m.mailbox_runs_ok, 4);
    assert!(m.requests_by_status.get(&200).copied().unwrap_or(0) > 20);
    env.emu.shutdown().await;
}

#[tokio::test]
async fn an_expired_cursor_restarts_that_resource_without_duplicates_or_ghosts() {
    let env = spawn().await;
    let (_, conn) = env.connect(ALICE, true).await;
    let s = env.scheduler("instance-a");
    s.reconcile_org(env.org).await.unwrap();
    let mb = env.mailbox_of(conn).await;
    one_run(&s).await.remove(0).result.unwrap();
    // Deleted while the cursors are evicted: the resync must not keep a ghost of it.
    let inbox = env.emu.list_items(ALICE, Kind::Message, "inbox", 2).unwrap();
    env.emu.delete_item(ALICE, &inbox[0].immutable_id).unwrap();
    env.emu.evict_sync_state(ALICE).unwrap();
    s.sync_now(mb).await.unwrap();
    let r = one_run(&s).await.remove(0).result.unwrap();
    assert!(r.resyncs >= 4, "every cursor restarted: {r:?}");
    assert!(r.swept >= 1, "the deleted message was swept at the end of the resync: {r:?}");
    env.assert_converged(mb, ALICE).await;
    assert!(s.engine().metrics().snapshot().resyncs >= 4);
    env.emu.shutdown().await;
}

#[tokio::test]
async fn a_worker_killed_between_fetch_and_commit_loses_and_duplicates_nothing() {
    let env = spawn().await;
    let (_, conn) = env.connect(ALICE, true).await;
    let probe = env.scheduler("probe");
    probe.reconcile_org(env.org).await.unwrap();
    let mb = env.mailbox_of(conn).await;

    for stage in ["first sync", "incremental"] {
        if stage == "incremental" {
            env.emu.add_item(ALICE, Kind::Message, Some("inbox"), serde_json::json!({"subject": "After the crash"})).unwrap();
            let inbox = env.emu.list_items(ALICE, Kind::Message, "inbox", 2).unwrap();
            env.emu.delete_item(ALICE, &inbox[1].immutable_id).unwrap();
            env.store.request_sync_now(mb).await.unwrap();
        }
        // A worker with a short lease that stops at its sixth commit of a first sync, or at the
        // end of an incremental run (the inbox's page committed, the quiet folders' links and the
        // passes not), and is killed there.
        let barrier = Arc::new(CommitBarrier::default());
        let mut cfg = test_config("doomed");
        cfg.lease_ttl_secs = 1;
        cfg.commit_barrier = Some(barrier.clone());
        let doomed = Scheduler::new(env.engine(cfg));
        let handles = doomed.tick().await.unwrap();
        assert_eq!(handles.len(), 1);
        for _ in 0..if stage == "first sync" { 5 } else { 1 } {
            barrier.reached.notified().await;
            barrier.proceed.notify_one();
        }
        barrier.reached.notified().await;
        for h in &handles {
            h.abort();
        }
        for h in handles {
            assert!(h.await.unwrap_err().is_cancelled());
        }
        // Another instance takes the expired lease over and finishes from the saved cursors.
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let rescuer = env.scheduler("rescuer");
        let out = one_run(&rescuer).await;
        assert_eq!(out.len(), 1, "{stage}: the stale lease was taken over");
        out[0].result.as_ref().unwrap();
        assert_eq!(rescuer.engine().metrics().snapshot().lease_takeovers, 1);
        env.assert_converged(mb, ALICE).await;
    }
    env.emu.shutdown().await;
}

#[tokio::test]
async fn a_revoked_refresh_token_needs_the_owner_and_reconnecting_resumes_from_the_cursors() {
    let env = spawn().await;
    let (_, conn) = env.connect(ALICE, true).await;
    let s = env.scheduler("instance-a");
    s.reconcile_org(env.org).await.unwrap();
    let mb = env.mailbox_of(conn).await;
    one_run(&s).await.remove(0).result.unwrap();
    let cursors_before = env.store.cursors(mb).await.unwrap();

    // Refresh before expiry, and the rotated refresh token is saved.
    let before = env.store.connection_tokens(conn).await.unwrap().unwrap();
    assert!(
        env.store
            .save_refreshed_tokens(conn, before.version, &before.access_token, store::now_unix() + 60, None, store::now_unix())
            .await
            .unwrap()
    );
    s.sync_now(mb).await.unwrap();
    one_run(&s).await.remove(0).result.unwrap();
    let after = env.store.connection_tokens(conn).await.unwrap().unwrap();
    assert_ne!(
        after.refresh_token.as_ref().unwrap().expose_secret(),
        before.refresh_token.as_ref().unwrap().expose_secret(),
        "rotated token saved"
    );
    assert!(after.access_expires_at > store::now_unix() + 600);
    assert_eq!(s.engine().metrics().snapshot().token_refreshes, 1);

    // Graph no longer accepts the access token (401) although it has not expired on paper: one
    // refresh, then the run goes on.
    env.emu.expire_access_tokens();
    s.sync_now(mb).await.unwrap();
    let before = s.engine().metrics().snapshot();
    one_run(&s).await.remove(0).result.unwrap();
    let after = s.engine().metrics().snapshot();
    assert_eq!(after.token_refreshes, 2);
    // The run's first round trip, a batch of every folder's delta request, came back 401 (each of
    // its requests); sent again once with the fresh token, nothing else was refused.
    assert_eq!(after.batches - before.batches, 2);
    assert!(after.requests_by_status.get(&401).is_some_and(|n| *n > 1), "{:?}", after.requests_by_status);

    // Revoked: the next refresh fails with invalid_grant.
    env.emu.revoke_refresh_tokens(ALICE).unwrap();
    env.emu.expire_access_tokens();
    s.sync_now(mb).await.unwrap();
    let out = one_run(&s).await.remove(0);
    assert!(matches!(out.result, Err(SyncError::NeedsAttention(ReasonCode::RefreshTokenRevoked))), "{:?}", out.result);
    let c = env.store.connections_in_org(env.org).await.unwrap().into_iter().find(|c| c.id == conn).unwrap();
    assert_eq!((c.state, c.reason), (ConnectionState::NeedsAttention, Some(ReasonCode::RefreshTokenRevoked)));
    assert_eq!(ReasonCode::RefreshTokenRevoked.who_must_act(), WhoMustAct::Owner);
    let status = env.store.mailbox_status(mb).await.unwrap().unwrap();
    assert!(status.resources.iter().any(|r| r.last_error == Some(ReasonCode::RefreshTokenRevoked)));
    // Not retried in a loop: parked for an hour (test config), and the connection is skipped anyway.
    assert!(one_run(&s).await.is_empty());
    assert!(env.store.sync_mailbox(mb).await.unwrap().unwrap().next_due_at > store::now_unix() + 1800);

    // Reconnecting makes it active, and telling the scheduler (as the callback route does) makes
    // it due at once; the sync resumes from the saved cursors (no full resync).
    env.emu.add_item(ALICE, Kind::Message, Some("inbox"), serde_json::json!({"subject": "While disconnected"})).unwrap();
    env.connect(ALICE, true).await;
    s.reconcile_org(env.org).await.unwrap();
    let r = one_run(&s).await.remove(0).result.unwrap();
    assert_eq!((r.upserts, r.resyncs), (1, 0), "only the change travelled: {r:?}");
    let cursors_after = env.store.cursors(mb).await.unwrap();
    assert_eq!(
        cursors_before.iter().map(|c| (&c.container, c.round)).collect::<Vec<_>>(),
        cursors_after.iter().map(|c| (&c.container, c.round)).collect::<Vec<_>>()
    );
    env.assert_converged(mb, ALICE).await;
    env.emu.shutdown().await;
}

#[tokio::test]
async fn poll_primary_only_syncs_the_primary_mailbox_alone_and_switching_it_off_resumes_the_others() {
    let env = spawn().await;
    let (_, alice_conn) = env.connect(ALICE, true).await;
    let (_, bob_conn) = env.connect(BOB, false).await;
    env.settings(|s| s.poll_primary_only = true).await;
    let s = env.scheduler("instance-a");
    s.reconcile_org(env.org).await.unwrap();
    let (alice_mb, bob_mb) = (env.mailbox_of(alice_conn).await, env.mailbox_of(bob_conn).await);
    let runs = one_run(&s).await;
    assert_eq!(runs.iter().map(|o| o.mailbox).collect::<Vec<_>>(), vec![alice_mb]);
    let bob = env.store.sync_mailbox(bob_mb).await.unwrap().unwrap();
    assert_eq!(bob.paused, Some(PauseReason::PollPrimaryOnly));
    assert!(env.store.mailbox_items(bob_mb, Resource::Mail).await.unwrap().is_empty());

    env.settings(|s| s.poll_primary_only = false).await;
    s.reconcile_org(env.org).await.unwrap();
    let runs = one_run(&s).await;
    assert_eq!(runs.iter().map(|o| o.mailbox).collect::<Vec<_>>(), vec![bob_mb]);
    runs[0].result.as_ref().unwrap();
    env.assert_converged(bob_mb, BOB).await;

    // In service-account mode members' own connections are not synced.
    env.settings(|s| s.mode = domain::permissions::ConnectionMode::ApplicationPermissions).await;
    s.reconcile_org(env.org).await.unwrap();
    for mb in [alice_mb, bob_mb] {
        assert_eq!(env.store.sync_mailbox(mb).await.unwrap().unwrap().paused, Some(PauseReason::ServiceAccountMode));
    }
    assert!(one_run(&s).await.is_empty());
    env.settings(|s| s.mode = domain::permissions::ConnectionMode::Individual).await;

    // Disabling the integration pauses everyone.
    env.settings(|s| s.enabled = false).await;
    s.reconcile_org(env.org).await.unwrap();
    s.sync_now(alice_mb).await.unwrap();
    assert!(one_run(&s).await.is_empty());
    assert_eq!(env.store.sync_mailbox(alice_mb).await.unwrap().unwrap().paused, Some(PauseReason::Disabled));
    env.emu.shutdown().await;
}

#[tokio::test]
async fn a_mailbox_without_a_licence_needs_the_licence_admin_and_is_not_retried() {
    let env = spawn().await;
    let (_, conn) = env.connect("dave@northwind.test", true).await;
    let s = env.scheduler("instance-a");
    s.reconcile_org(env.org).await.unwrap();
    let out = one_run(&s).await.remove(0);
    assert!(matches!(out.result, Err(SyncError::NeedsAttention(ReasonCode::MailboxNotLicensed))), "{:?}", out.result);
    let c = env.store.connections_in_org(env.org).await.unwrap().into_iter().find(|c| c.id == conn).unwrap();
    assert_eq!(c.reason, Some(ReasonCode::MailboxNotLicensed));
    assert_eq!(ReasonCode::MailboxNotLicensed.who_must_act(), WhoMustAct::LicenceAdmin);
    assert!(one_run(&s).await.is_empty());
    // Not even "sync now" touches a connection that needs attention.
    s.sync_now(env.mailbox_of(conn).await).await.unwrap();
    assert!(one_run(&s).await.is_empty());
    env.emu.shutdown().await;
}

#[tokio::test]
async fn a_bad_client_secret_waits_for_the_admin_without_marking_connections() {
    let env = spawn().await;
    let (_, conn) = env.connect(ALICE, true).await;
    let s = env.scheduler("instance-a");
    s.reconcile_org(env.org).await.unwrap();
    let mb = env.mailbox_of(conn).await;
    let settings = env.store.office365_settings(env.org).await.unwrap();
    env.store.save_office365_settings(env.org, &settings, Some(&store::secrets::SecretString::from("not-the-secret")), &[]).await.unwrap();
    // The access token is about to expire: a refresh is needed, and the app's secret is wrong.
    let t = env.store.connection_tokens(conn).await.unwrap().unwrap();
    assert!(
        env.store.save_refreshed_tokens(conn, t.version, &t.access_token, store::now_unix() + 10, None, store::now_unix()).await.unwrap()
    );
    let out = one_run(&s).await.remove(0);
    assert!(matches!(out.result, Err(SyncError::NeedsAttention(ReasonCode::ClientSecretInvalid))), "{:?}", out.result);
    assert_eq!(ReasonCode::ClientSecretInvalid.who_must_act(), WhoMustAct::PlatformAdmin);
    let c = env.store.connections_in_org(env.org).await.unwrap().remove(0);
    assert_eq!(c.state, ConnectionState::Active, "the member has nothing to reconnect");
    let st = env.store.mailbox_status(mb).await.unwrap().unwrap();
    assert_eq!(st.state(store::now_unix()), domain::SyncState::Failed(ReasonCode::ClientSecretInvalid));
    assert!(one_run(&s).await.is_empty(), "parked, not retried in a loop");
    // The admin enters the right secret: everything resumes at once.
    env.store
        .save_office365_settings(env.org, &settings, Some(&store::secrets::SecretString::from(m365_emulator::DEMO_CLIENT_SECRET)), &[])
        .await
        .unwrap();
    s.sync_org_now(env.org).await.unwrap();
    one_run(&s).await.remove(0).result.unwrap();
    env.assert_converged(mb, ALICE).await;
    env.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_scheduler_syncs_new_connections_and_sync_now_and_stops_on_shutdown() {
    let env = spawn().await;
    let (alice, conn) = env.connect(ALICE, true).await;
    let mut cfg = test_config("background");
    cfg.poll_every = Duration::from_secs(30); // only wake-ups make it act quickly
    let s = Scheduler::new(env.engine(cfg));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let loop_handle = s.clone().spawn(stopped);
    s.reconcile_org(env.org).await.unwrap();
    let mb = env.mailbox_of(conn).await;
    let wait_for = |what: &'static str, f: Box<dyn Fn(&store::sync::MailboxStatus) -> bool + Send + Sync>| {
        let sync = env.store.clone();
        async move {
            for _ in 0..200 {
                if let Some(st) = sync.mailbox_status(mb).await.unwrap()
                    && f(&st)
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("timed out waiting for {what}");
        }
    };
    wait_for(
        "the first sync",
        Box::new(|st| st.resources.len() == 4 && st.resources.iter().all(|r| r.first_sync_done) && st.mailbox.lease_owner.is_none()),
    )
    .await;
    env.assert_converged(mb, ALICE).await;

    env.emu.add_item(ALICE, Kind::Task, Some("tasks"), serde_json::json!({"title": "Synced by the background loop"})).unwrap();
    s.sync_now(mb).await.unwrap();
    let q = ItemQuery {
        org_id: env.org,
        user_id: alice,
        resource: Some(Resource::Tasks),
        text: Some("background loop".into()),
        offset: 0,
        limit: 5,
    };
    for _ in 0..200 {
        if !env.store.activity_items(&q).await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(env.store.activity_items(&q).await.unwrap().len(), 1);
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), loop_handle).await.unwrap().unwrap();
    env.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutting_down_hands_running_mailboxes_back_at_once() {
    let env = spawn().await;
    let (_, conn) = env.connect(ALICE, true).await;
    let barrier = Arc::new(CommitBarrier::default());
    let mut cfg = test_config("leaving");
    cfg.commit_barrier = Some(barrier.clone());
    let leaving = Scheduler::new(env.engine(cfg));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let loop_handle = leaving.clone().spawn(stopped);
    leaving.reconcile_org(env.org).await.unwrap();
    let mb = env.mailbox_of(conn).await;
    for _ in 0..3 {
        barrier.reached.notified().await;
        barrier.proceed.notify_one();
    }
    barrier.reached.notified().await;
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), loop_handle).await.unwrap().unwrap();
    let m = env.store.sync_mailbox(mb).await.unwrap().unwrap();
    assert!(m.lease_owner.is_none(), "lease handed back");
    assert_eq!(m.next_due_at, 0, "due at once");
    // Another instance continues immediately (no expired lease to wait for) and loses nothing.
    let next = env.scheduler("next");
    let out = one_run(&next).await;
    assert_eq!(out.len(), 1);
    out[0].result.as_ref().unwrap();
    assert_eq!(next.engine().metrics().snapshot().lease_takeovers, 0);
    env.assert_converged(mb, ALICE).await;
    env.emu.shutdown().await;
}
