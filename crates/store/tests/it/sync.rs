//! The sync engine's persistence: mailboxes, leases with fencing tokens, cursors, items committed
//! page by page, resyncs, status, the Activity listing and connection tokens.

use domain::{AuditEntry, ConnectionKind, ConnectionState, ReasonCode, Role};
use domain::{PauseReason, Resource};
use std::collections::BTreeSet;
use store::secrets::ExposeSecret;
use store::secrets::SecretString;
use store::sync::{CommitOutcome, CursorUpdate, ItemQuery, NewSyncMailbox, PageCommit, SyncMailbox, SyncedItem};
use store::{NewConnection, accounts};

use crate::harness::{TestDb, on_both_backends};

on_both_backends!(
    mailboxes_are_scheduled_once_and_can_be_paused,
    a_stale_fence_is_rejected_and_writes_nothing,
    an_empty_page_moves_only_the_link_and_only_under_the_current_fence,
    a_runs_quiet_end_moves_links_and_records_passes_in_one_fenced_transaction,
    a_page_upserting_an_id_twice_keeps_the_last_and_counts_it_once,
    two_claimers_never_both_own_a_mailbox,
    an_expired_lease_is_taken_over,
    a_full_round_then_deltas_then_a_resync_without_duplicates_or_ghosts,
    status_counts_and_first_sync_progress,
    activity_lists_newest_first_with_search_and_paging,
    tokens_are_read_refreshed_atomically_and_marked,
    orgs_with_connections_are_listed_once_each,
    a_claimer_whose_clock_runs_ahead_does_not_take_over_a_live_lease,
    a_refresh_or_a_mark_racing_a_reconnect_does_not_overwrite_the_new_grant,
    a_refresh_racing_another_refresh_of_the_same_tokens_writes_nothing,
    a_worker_that_lost_its_lease_cannot_record_an_error,
    a_reconnect_as_another_microsoft_account_keeps_nothing_of_the_first,
);

pub(crate) struct World {
    pub(crate) org: domain::OrgId,
    pub(crate) user: domain::UserId,
    pub(crate) connection: uuid::Uuid,
}

pub(crate) async fn world(db: &TestDb) -> World {
    let store = db.store.as_ref();
    let org = store.create_organization("Northwind").await.unwrap();
    let user = accounts::create_user(store, org.id, "alice@northwind.test", "Alice", Role::Member, "password-2").await.unwrap();
    let c = store
        .save_connection(
            &NewConnection {
                org_id: org.id,
                user_id: user.id,
                kind: ConnectionKind::Individual,
                is_primary: true,
                ms_tenant_id: "4f1c6a0e-2d3b-4c5a-9e8f-0a1b2c3d4e5f".into(),
                ms_object_id: "oid-alice".into(),
                ms_username: "alice@northwind.test".into(),
                ms_name: "Alice".into(),
                granted_scopes: vec!["Mail.Read".into()],
                access_token: SecretString::from("access-1"),
                access_expires_at: 1_000,
                refresh_token: Some(SecretString::from("refresh-1")),
            },
            &AuditEntry { at: 1, actor: "alice".into(), action: "connect".into(), summary: "connected".into() },
        )
        .await
        .unwrap();
    World { org: org.id, user: user.id, connection: c.id }
}

pub(crate) async fn mailbox(db: &TestDb, w: &World) -> SyncMailbox {
    db.store
        .ensure_sync_mailbox(&NewSyncMailbox { org_id: w.org, connection_id: w.connection, user_id: w.user, graph_user_id: None }, 100)
        .await
        .unwrap()
}

/// A synced message in the inbox.
pub(crate) fn item(id: &str, title: &str, at: i64) -> SyncedItem {
    SyncedItem {
        graph_id: id.into(),
        container: "inbox".into(),
        title: title.into(),
        subtitle: "Bob <bob@northwind.test>".into(),
        preview: format!("preview of {title}"),
        occurred_at: Some(at),
        data: "{}".into(),
    }
}

/// A page of inbox changes with its cursor.
pub(crate) fn page(mb: uuid::Uuid, fence: i64, upserts: Vec<SyncedItem>, deletes: &[&str], cursor: CursorUpdate) -> PageCommit {
    PageCommit {
        mailbox_id: mb,
        fence,
        resource: Resource::Mail,
        container: "inbox".into(),
        upserts,
        deletes: deletes.iter().map(|s| s.to_string()).collect(),
        cursor,
        now: 200,
    }
}

async fn ids(db: &TestDb, mb: uuid::Uuid) -> BTreeSet<String> {
    db.store.mailbox_items(mb, Resource::Mail).await.unwrap().into_iter().map(|i| i.graph_id).collect()
}

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

async fn mailboxes_are_scheduled_once_and_can_be_paused(db: &TestDb) {
    let w = world(db).await;
    let a = mailbox(db, &w).await;
    let again = mailbox(db, &w).await;
    assert_eq!(a.id, again.id, "idempotent");
    assert_eq!((a.graph_user_id.clone(), a.paused, a.next_due_at), (None, None, 100));
    let other = db
        .store
        .ensure_sync_mailbox(
            &NewSyncMailbox { org_id: w.org, connection_id: w.connection, user_id: w.user, graph_user_id: Some("bob-id".into()) },
            100,
        )
        .await
        .unwrap();
    assert_ne!(other.id, a.id);
    assert_eq!(other.graph_user_id.as_deref(), Some("bob-id"));
    assert_eq!(db.store.sync_mailboxes_in_org(w.org).await.unwrap().len(), 2);

    db.store.set_mailbox_paused(a.id, Some(PauseReason::PollPrimaryOnly), 150).await.unwrap();
    assert_eq!(db.store.sync_mailbox(a.id).await.unwrap().unwrap().paused, Some(PauseReason::PollPrimaryOnly));
    let claimed = db.store.claim_due_mailboxes("w1", 500, 60, 10).await.unwrap();
    assert_eq!(claimed.iter().map(|l| l.mailbox.id).collect::<Vec<_>>(), vec![other.id], "paused mailboxes are not claimed");
    db.store.set_mailbox_paused(a.id, None, 600).await.unwrap();
    let resumed = db.store.sync_mailbox(a.id).await.unwrap().unwrap();
    assert_eq!((resumed.paused, resumed.next_due_at), (None, 600));

    // Sync now makes a mailbox due at once; removing it forgets it.
    assert!(db.store.release_lease(other.id, claimed[0].fence, 10_000).await.unwrap());
    db.store.request_sync_now(other.id).await.unwrap();
    assert_eq!(db.store.sync_mailbox(other.id).await.unwrap().unwrap().next_due_at, 0);
    assert!(db.store.remove_sync_mailbox(other.id).await.unwrap());
    assert!(db.store.sync_mailbox(other.id).await.unwrap().is_none());
}

async fn a_stale_fence_is_rejected_and_writes_nothing(db: &TestDb) {
    let w = world(db).await;
    let mb = mailbox(db, &w).await;
    let first = db.store.claim_due_mailboxes("w1", 100, 30, 10).await.unwrap().remove(0);
    let ok = db
        .store
        .commit_page(&page(mb.id, first.fence, vec![item("a", "A", 1)], &[], CursorUpdate::NextLink("next-1".into())))
        .await
        .unwrap();
    assert_eq!(ok, CommitOutcome::Committed { swept: 0 });

    // The lease expires (renewed to a second ago) and another worker takes over: the first one's
    // fence is now stale.
    assert!(db.store.renew_lease(mb.id, first.fence, -1).await.unwrap());
    let second = db.store.claim_due_mailboxes("w2", 200, 30, 10).await.unwrap().remove(0);
    assert!(second.fence > first.fence);
    let stale = page(mb.id, first.fence, vec![item("b", "B", 2)], &["a"], CursorUpdate::DeltaLink("delta-stale".into()));
    assert_eq!(db.store.commit_page(&stale).await.unwrap(), CommitOutcome::LeaseLost);
    assert_eq!(db.store.reset_cursor(mb.id, first.fence, Resource::Mail, "inbox", 200).await.unwrap(), CommitOutcome::LeaseLost);
    assert_eq!(db.store.commit_quiet(mb.id, first.fence, &[], &[Resource::Mail], 200).await.unwrap(), CommitOutcome::LeaseLost);
    assert!(!db.store.renew_lease(mb.id, first.fence, 1_000).await.unwrap());
    assert!(!db.store.release_lease(mb.id, first.fence, 1_000).await.unwrap());

    assert_eq!(ids(db, mb.id).await, set(&["a"]), "nothing of the stale page was written");
    let cursors = db.store.cursors(mb.id).await.unwrap();
    assert_eq!(cursors.len(), 1);
    assert_eq!(cursors[0].link.as_deref(), Some("next-1"));
    assert!(!cursors[0].link_is_delta);
    let status = db.store.mailbox_status(mb.id).await.unwrap().unwrap();
    let kept: Vec<(Resource, u64, Option<i64>)> = status.resources.iter().map(|r| (r.resource, r.items, r.last_success_at)).collect();
    assert_eq!(kept, vec![(Resource::Mail, 1, None)], "the first page's item counted, the stale one's not");
    // The current holder still works, and its lease is its own.
    assert!(db.store.renew_lease(mb.id, second.fence, 400).await.unwrap());
    assert_eq!(db.store.sync_mailbox(mb.id).await.unwrap().unwrap().lease_owner.as_deref(), Some("w2"));
}

async fn two_claimers_never_both_own_a_mailbox(db: &TestDb) {
    let w = world(db).await;
    let mut all = BTreeSet::new();
    for i in 0..12 {
        let mb = db
            .store
            .ensure_sync_mailbox(
                &NewSyncMailbox { org_id: w.org, connection_id: w.connection, user_id: w.user, graph_user_id: Some(format!("u{i}")) },
                100,
            )
            .await
            .unwrap();
        all.insert(mb.id);
    }
    // Eight claimers at once, each asking for up to three.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let sync = db.store.clone();
        tasks.push(tokio::spawn(async move { sync.claim_due_mailboxes(&format!("worker-{i}"), 150, 60, 3).await.unwrap() }));
    }
    let mut owned = Vec::new();
    for t in tasks {
        owned.extend(t.await.unwrap().into_iter().map(|l| l.mailbox.id));
    }
    let unique: BTreeSet<_> = owned.iter().copied().collect();
    assert_eq!(unique.len(), owned.len(), "a mailbox was handed out twice: {owned:?}");
    assert_eq!(unique, all, "every due mailbox was claimed");
    assert!(db.store.claim_due_mailboxes("late", 150, 60, 10).await.unwrap().is_empty(), "leases are held");
}

async fn an_expired_lease_is_taken_over(db: &TestDb) {
    let w = world(db).await;
    let mb = mailbox(db, &w).await;
    let now = store::now_unix();
    let first = db.store.claim_due_mailboxes("w1", now, 30, 10).await.unwrap().remove(0);
    assert!(!first.taken_over);
    // The expiry is the database's clock plus the TTL (this process shares that clock).
    assert!((now + 29..=now + 35).contains(&first.expires_at), "{} vs {now}", first.expires_at);
    assert!(db.store.claim_due_mailboxes("w2", now, 30, 10).await.unwrap().is_empty(), "still held");
    assert!(db.store.renew_lease(mb.id, first.fence, 600).await.unwrap());
    let renewed = db.store.sync_mailbox(mb.id).await.unwrap().unwrap().lease_expires_at;
    assert!(renewed >= first.expires_at + 500, "renewed for the TTL from now: {renewed}");
    assert!(db.store.claim_due_mailboxes("w2", now + 120, 30, 10).await.unwrap().is_empty(), "renewed");
    // Its last second has passed (renewed to end a second ago): taken over.
    assert!(db.store.renew_lease(mb.id, first.fence, -1).await.unwrap());
    let taken = db.store.claim_due_mailboxes("w2", now, 30, 10).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert!(taken[0].taken_over);
    assert_eq!(taken[0].mailbox.lease_owner.as_deref(), Some("w2"));
    // Released with a next due time: not claimable before it.
    assert!(db.store.release_lease(mb.id, taken[0].fence, now + 500).await.unwrap());
    assert!(db.store.claim_due_mailboxes("w3", now + 499, 30, 10).await.unwrap().is_empty());
    let again = db.store.claim_due_mailboxes("w3", now + 500, 30, 10).await.unwrap();
    assert!(!again[0].taken_over, "a released lease is not a takeover");

    // A connection that needs attention is not claimed at all.
    assert!(db.store.release_lease(mb.id, again[0].fence, 0).await.unwrap());
    let version = db.store.connection_tokens(w.connection).await.unwrap().unwrap().version;
    assert!(db.store.mark_connection_needs_attention(w.connection, version, ReasonCode::RefreshTokenRevoked, 600).await.unwrap());
    assert!(db.store.claim_due_mailboxes("w4", now + 700, 30, 10).await.unwrap().is_empty());
}

/// Item 9 of the hardening issue: an instance whose clock runs 90 s ahead passes a `now` that
/// makes every live lease look expired; the database's clock decides, so it takes none over.
async fn a_claimer_whose_clock_runs_ahead_does_not_take_over_a_live_lease(db: &TestDb) {
    let w = world(db).await;
    let mb = mailbox(db, &w).await;
    let now = store::now_unix();
    let held = db.store.claim_due_mailboxes("on-time", now, 30, 10).await.unwrap().remove(0);
    let ahead = db.store.claim_due_mailboxes("ahead", now + 90, 30, 10).await.unwrap();
    assert!(ahead.is_empty(), "a live lease was taken over by a clock 90 s ahead: {ahead:?}");
    // Renewed by the holder (whatever its clock), still not taken by the one ahead.
    assert!(db.store.renew_lease(mb.id, held.fence, 30).await.unwrap());
    assert!(db.store.claim_due_mailboxes("ahead", now + 90, 30, 10).await.unwrap().is_empty());
    let row = db.store.sync_mailbox(mb.id).await.unwrap().unwrap();
    assert_eq!((row.lease_owner.as_deref(), row.fence), (Some("on-time"), held.fence));
    // Its own claims expire by the database's clock too, not 90 s later than they should.
    assert!(db.store.release_lease(mb.id, held.fence, 0).await.unwrap());
    let mine = db.store.claim_due_mailboxes("ahead", now + 90, 30, 10).await.unwrap().remove(0);
    assert!(mine.expires_at <= now + 35, "{} vs {now}", mine.expires_at);
}

/// Item 4: a reconnect (a new grant) bumps the tokens' version; a refresh that started from the
/// old tokens, or a needs-attention mark about them, then writes nothing.
async fn a_refresh_or_a_mark_racing_a_reconnect_does_not_overwrite_the_new_grant(db: &TestDb) {
    let w = world(db).await;
    let before = db.store.connection_tokens(w.connection).await.unwrap().unwrap();
    // The owner reconnects while a refresh of the old tokens is in flight.
    let audit = AuditEntry { at: 2, actor: "alice".into(), action: "connect".into(), summary: "reconnected".into() };
    let again = NewConnection {
        org_id: w.org,
        user_id: w.user,
        kind: ConnectionKind::Individual,
        is_primary: true,
        ms_tenant_id: "4f1c6a0e-2d3b-4c5a-9e8f-0a1b2c3d4e5f".into(),
        ms_object_id: "oid-alice".into(),
        ms_username: "alice@northwind.test".into(),
        ms_name: "Alice".into(),
        granted_scopes: vec!["Mail.Read".into()],
        access_token: SecretString::from("access-new-grant"),
        access_expires_at: 9_000,
        refresh_token: Some(SecretString::from("refresh-new-grant")),
    };
    assert_eq!(db.store.save_connection(&again, &audit).await.unwrap().id, w.connection, "the same connection");
    let after = db.store.connection_tokens(w.connection).await.unwrap().unwrap();
    assert!(after.version > before.version, "a reconnect bumps the version");
    // The refresh of the old tokens completes: not saved.
    let saved = db
        .store
        .save_refreshed_tokens(
            w.connection,
            before.version,
            &SecretString::from("access-old"),
            5_000,
            Some(&SecretString::from("refresh-old")),
            10,
        )
        .await
        .unwrap();
    assert!(!saved, "a refresh of the old grant overwrote the new one");
    // Nor does a mark about the old tokens land on the new grant.
    assert!(!db.store.mark_connection_needs_attention(w.connection, before.version, ReasonCode::RefreshTokenRevoked, 11).await.unwrap());
    let t = db.store.connection_tokens(w.connection).await.unwrap().unwrap();
    assert_eq!(
        (t.access_token.expose_secret(), t.refresh_token.as_ref().unwrap().expose_secret(), t.version, t.needs_attention),
        ("access-new-grant", "refresh-new-grant", after.version, false)
    );
    // Writes from the new version apply.
    assert!(
        db.store
            .save_refreshed_tokens(
                w.connection,
                after.version,
                &SecretString::from("access-4"),
                7_000,
                Some(&SecretString::from("refresh-4")),
                12
            )
            .await
            .unwrap()
    );
    let t = db.store.connection_tokens(w.connection).await.unwrap().unwrap();
    assert_eq!((t.refresh_token.as_ref().unwrap().expose_secret(), t.version), ("refresh-4", after.version + 1));
}

/// Item 4: two instances refresh the same tokens; only the first save applies, and the second
/// finds out (false) so it can use what the first saved.
async fn a_refresh_racing_another_refresh_of_the_same_tokens_writes_nothing(db: &TestDb) {
    let w = world(db).await;
    let read = db.store.connection_tokens(w.connection).await.unwrap().unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = db.store.clone();
        let (conn, version) = (w.connection, read.version);
        tasks.push(tokio::spawn(async move {
            let rt = SecretString::from(format!("refresh-rotated-{i}"));
            store.save_refreshed_tokens(conn, version, &SecretString::from(format!("access-{i}")), 5_000, Some(&rt), 10).await.unwrap()
        }));
    }
    let mut applied = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        if t.await.unwrap() {
            applied.push(i);
        }
    }
    assert_eq!(applied.len(), 1, "exactly one refresh of version {} is saved: {applied:?}", read.version);
    let t = db.store.connection_tokens(w.connection).await.unwrap().unwrap();
    assert_eq!(t.refresh_token.as_ref().unwrap().expose_secret(), &format!("refresh-rotated-{}", applied[0]));
    assert_eq!(t.version, read.version + 1);
}

/// An empty page of an incremental round moves the link on, and a worker whose lease was taken
/// over moves nothing. An empty page that ends a full round still sweeps what the round did not see.
async fn an_empty_page_moves_only_the_link_and_only_under_the_current_fence(db: &TestDb) {
    let w = world(db).await;
    let mb = mailbox(db, &w).await;
    let first = db.store.claim_due_mailboxes("w1", 100, 30, 10).await.unwrap().remove(0);
    let full = page(mb.id, first.fence, vec![item("a", "A", 1), item("b", "B", 2)], &[], CursorUpdate::DeltaLink("d1".into()));
    db.store.commit_page(&full).await.unwrap();
    let quiet = page(mb.id, first.fence, vec![], &[], CursorUpdate::DeltaLink("d2".into()));
    assert_eq!(db.store.commit_page(&quiet).await.unwrap(), CommitOutcome::Committed { swept: 0 });
    let link = |c: Vec<store::sync::SyncCursor>| (c[0].link.clone(), c[0].link_is_delta, c[0].full_round);
    assert_eq!(link(db.store.cursors(mb.id).await.unwrap()), (Some("d2".into()), true, false));

    assert!(db.store.renew_lease(mb.id, first.fence, -1).await.unwrap());
    let second = db.store.claim_due_mailboxes("w2", 200, 30, 10).await.unwrap().remove(0);
    let stale = page(mb.id, first.fence, vec![], &[], CursorUpdate::NextLink("stale".into()));
    assert_eq!(db.store.commit_page(&stale).await.unwrap(), CommitOutcome::LeaseLost);
    assert_eq!(link(db.store.cursors(mb.id).await.unwrap()), (Some("d2".into()), true, false), "the stale worker moved the link");

    // A resync whose only page is empty: Graph has nothing left, and the round's end sweeps both.
    db.store.reset_cursor(mb.id, second.fence, Resource::Mail, "inbox", 300).await.unwrap();
    let empty_round = page(mb.id, second.fence, vec![], &[], CursorUpdate::DeltaLink("d3".into()));
    assert_eq!(db.store.commit_page(&empty_round).await.unwrap(), CommitOutcome::Committed { swept: 2 });
    assert_eq!(ids(db, mb.id).await, set(&[]));
    assert_eq!(link(db.store.cursors(mb.id).await.unwrap()), (Some("d3".into()), true, false));
    let status = db.store.mailbox_status(mb.id).await.unwrap().unwrap();
    assert_eq!(status.resources.iter().map(|r| r.items).collect::<Vec<_>>(), vec![0]);
}

/// The quiet end of a run: links of pages that brought nothing move on and the passes are
/// recorded, together, only under the current fence; a container in a full round keeps its link
/// (its end must sweep, which only `commit_page` does).
async fn a_runs_quiet_end_moves_links_and_records_passes_in_one_fenced_transaction(db: &TestDb) {
    let w = world(db).await;
    let mb = mailbox(db, &w).await;
    let first = db.store.claim_due_mailboxes("w1", 100, 30, 10).await.unwrap().remove(0);
    db.store.commit_page(&page(mb.id, first.fence, vec![item("a", "A", 1)], &[], CursorUpdate::DeltaLink("d1".into()))).await.unwrap();
    let mut sent = page(mb.id, first.fence, vec![item("s", "S", 1)], &[], CursorUpdate::NextLink("sent-n1".into()));
    sent.container = "sent".into();
    db.store.commit_page(&sent).await.unwrap();
    let quiet = |fence: i64, link: &str, container: &str| {
        let mut p = page(mb.id, fence, vec![], &[], CursorUpdate::DeltaLink(link.into()));
        p.container = container.into();
        p
    };
    let links = |c: Vec<store::sync::SyncCursor>| c.into_iter().map(|c| (c.container, c.link.unwrap_or_default())).collect::<Vec<_>>();

    // A stale fence writes nothing.
    assert!(db.store.renew_lease(mb.id, first.fence, -1).await.unwrap());
    let second = db.store.claim_due_mailboxes("w2", 200, 30, 10).await.unwrap().remove(0);
    let stale = db.store.commit_quiet(mb.id, first.fence, &[quiet(first.fence, "d-stale", "inbox")], &[Resource::Mail], 250).await.unwrap();
    assert_eq!(stale, CommitOutcome::LeaseLost);
    assert_eq!(links(db.store.cursors(mb.id).await.unwrap()), vec![("inbox".into(), "d1".into()), ("sent".into(), "sent-n1".into())]);
    let status = db.store.mailbox_status(mb.id).await.unwrap().unwrap();
    assert!(status.resources.iter().all(|r| r.last_success_at.is_none()));

    // One statement moves the links: a cursor named twice keeps the later link.
    let pages = [quiet(second.fence, "d-older", "inbox"), quiet(second.fence, "d2", "inbox"), quiet(second.fence, "sent-d", "sent")];
    let done = db.store.commit_quiet(mb.id, second.fence, &pages, &[Resource::Mail, Resource::Tasks], 300).await.unwrap();
    assert_eq!(done, CommitOutcome::Committed { swept: 0 });
    assert_eq!(
        links(db.store.cursors(mb.id).await.unwrap()),
        vec![("inbox".into(), "d2".into()), ("sent".into(), "sent-n1".into())],
        "the full round's container keeps its link"
    );
    let status = db.store.mailbox_status(mb.id).await.unwrap().unwrap();
    let passes: Vec<(Resource, Option<i64>, bool)> =
        status.resources.iter().map(|r| (r.resource, r.last_success_at, r.first_sync_done)).collect();
    assert_eq!(passes, vec![(Resource::Mail, Some(300), true), (Resource::Tasks, Some(300), true)]);
}

/// One statement upserts a page's items: an id twice in a page is stored once, as its last
/// occurrence, and counted once.
async fn a_page_upserting_an_id_twice_keeps_the_last_and_counts_it_once(db: &TestDb) {
    let w = world(db).await;
    let mb = mailbox(db, &w).await;
    let fence = db.store.claim_due_mailboxes("w1", 100, 30, 10).await.unwrap().remove(0).fence;
    let twice =
        page(mb.id, fence, vec![item("a", "old", 1), item("b", "B", 2), item("a", "new", 3)], &[], CursorUpdate::DeltaLink("d1".into()));
    db.store.commit_page(&twice).await.unwrap();
    let stored = db.store.mailbox_items(mb.id, Resource::Mail).await.unwrap();
    let a: Vec<&str> = stored.iter().filter(|i| i.graph_id == "a").map(|i| i.title.as_str()).collect();
    assert_eq!(a, vec!["new"]);
    let status = db.store.mailbox_status(mb.id).await.unwrap().unwrap();
    assert_eq!(status.resources.iter().map(|r| r.items).collect::<Vec<_>>(), vec![2]);
}

/// Item 12: a worker whose lease was taken over cannot overwrite the mailbox's status with its
/// error; the current holder's writes still apply.
async fn a_worker_that_lost_its_lease_cannot_record_an_error(db: &TestDb) {
    let w = world(db).await;
    let mb = mailbox(db, &w).await;
    let first = db.store.claim_due_mailboxes("w1", 100, 30, 10).await.unwrap().remove(0);
    assert!(db.store.renew_lease(mb.id, first.fence, -1).await.unwrap());
    let second = db.store.claim_due_mailboxes("w2", 100, 30, 10).await.unwrap().remove(0);
    assert_eq!(
        db.store.commit_quiet(mb.id, second.fence, &[], &[Resource::Mail], 300).await.unwrap(),
        CommitOutcome::Committed { swept: 0 }
    );
    let stale = db.store.record_resource_error(mb.id, first.fence, Resource::Mail, ReasonCode::Throttled, Some(900), 400).await.unwrap();
    assert_eq!(stale, CommitOutcome::LeaseLost);
    let r = db.store.mailbox_status(mb.id).await.unwrap().unwrap().resources.remove(0);
    assert_eq!((r.last_error, r.throttled_until, r.last_success_at), (None, None, Some(300)), "the stale worker wrote its error");
    let current = db.store.record_resource_error(mb.id, second.fence, Resource::Mail, ReasonCode::Throttled, Some(900), 500).await.unwrap();
    assert_eq!(current, CommitOutcome::Committed { swept: 0 });
    let r = db.store.mailbox_status(mb.id).await.unwrap().unwrap().resources.remove(0);
    assert_eq!((r.last_error, r.throttled_until), (Some(ReasonCode::Throttled), Some(900)));
}

async fn a_full_round_then_deltas_then_a_resync_without_duplicates_or_ghosts(db: &TestDb) {
    let w = world(db).await;
    let mb = mailbox(db, &w).await;
    let fence = db.store.claim_due_mailboxes("w1", 100, 60, 10).await.unwrap().remove(0).fence;
    // A first round over two pages, with a replayed item (Graph may repeat).
    db.store
        .commit_page(&page(mb.id, fence, vec![item("a", "A", 1), item("b", "B", 2)], &[], CursorUpdate::NextLink("n1".into())))
        .await
        .unwrap();
    db.store
        .commit_page(&page(mb.id, fence, vec![item("b", "B", 2), item("c", "C", 3)], &[], CursorUpdate::DeltaLink("d1".into())))
        .await
        .unwrap();
    assert_eq!(ids(db, mb.id).await, set(&["a", "b", "c"]));
    let c = &db.store.cursors(mb.id).await.unwrap()[0];
    assert_eq!((c.link.as_deref(), c.link_is_delta, c.full_round, c.round), (Some("d1"), true, false, 1));

    // An incremental round: an edit, a deletion, an addition.
    db.store
        .commit_page(&page(mb.id, fence, vec![item("a", "A edited", 1), item("d", "D", 4)], &["b"], CursorUpdate::DeltaLink("d2".into())))
        .await
        .unwrap();
    assert_eq!(ids(db, mb.id).await, set(&["a", "c", "d"]));
    let a = db.store.mailbox_items(mb.id, Resource::Mail).await.unwrap().into_iter().find(|i| i.graph_id == "a").unwrap();
    assert_eq!(a.title, "A edited");

    // 410: the cursor restarts. Meanwhile "c" was deleted on Microsoft's side. Items stay until the
    // resync completes; the resync re-sends a and d (upserted, not duplicated); c is swept.
    db.store.reset_cursor(mb.id, fence, Resource::Mail, "inbox", 300).await.unwrap();
    let c = &db.store.cursors(mb.id).await.unwrap()[0];
    assert_eq!((c.link.clone(), c.full_round, c.round), (None, true, 2));
    db.store.commit_page(&page(mb.id, fence, vec![item("a", "A edited", 1)], &[], CursorUpdate::NextLink("n2".into()))).await.unwrap();
    assert_eq!(ids(db, mb.id).await, set(&["a", "c", "d"]), "nothing removed mid-resync");
    let out = db.store.commit_page(&page(mb.id, fence, vec![item("d", "D", 4)], &[], CursorUpdate::DeltaLink("d3".into()))).await.unwrap();
    assert_eq!(out, CommitOutcome::Committed { swept: 1 });
    assert_eq!(ids(db, mb.id).await, set(&["a", "d"]));
    assert_eq!(db.store.mailbox_items(mb.id, Resource::Mail).await.unwrap().len(), 2, "no duplicates");

    // A vanished folder takes its items and cursor with it.
    db.store.drop_container(mb.id, fence, Resource::Mail, "inbox").await.unwrap();
    assert!(ids(db, mb.id).await.is_empty());
    assert!(db.store.cursors(mb.id).await.unwrap().is_empty());
}

async fn status_counts_and_first_sync_progress(db: &TestDb) {
    let w = world(db).await;
    let mb = mailbox(db, &w).await;
    let fence = db.store.claim_due_mailboxes("w1", 100, 60, 10).await.unwrap().remove(0).fence;
    db.store.set_estimated_total(mb.id, Resource::Mail, Some(4)).await.unwrap();
    db.store.commit_page(&page(mb.id, fence, vec![item("a", "A", 1)], &[], CursorUpdate::NextLink("n".into()))).await.unwrap();
    let st = db.store.mailbox_status(mb.id).await.unwrap().unwrap();
    assert_eq!(st.resources.len(), 1);
    assert_eq!(st.resources[0].progress(), Some((1, 4)));

    db.store.record_resource_error(mb.id, fence, Resource::Mail, ReasonCode::Throttled, Some(250), 200).await.unwrap();
    let r = db.store.mailbox_status(mb.id).await.unwrap().unwrap().resources.remove(0);
    assert_eq!((r.last_error, r.throttled_until, r.last_success_at), (Some(ReasonCode::Throttled), Some(250), None));

    db.store.commit_page(&page(mb.id, fence, vec![item("b", "B", 2)], &[], CursorUpdate::DeltaLink("d".into()))).await.unwrap();
    db.store.commit_quiet(mb.id, fence, &[], &[Resource::Mail], 300).await.unwrap();
    let r = db.store.mailbox_status(mb.id).await.unwrap().unwrap().resources.remove(0);
    assert_eq!((r.last_error, r.throttled_until, r.last_success_at, r.items), (None, None, Some(300), 2));
    assert!(r.first_sync_done);
    assert_eq!(r.progress(), None, "no bar after the first sync");
    // A later pass moves the time and keeps "done".
    db.store.commit_quiet(mb.id, fence, &[], &[Resource::Mail], 400).await.unwrap();
    let r = db.store.mailbox_status(mb.id).await.unwrap().unwrap().resources.remove(0);
    assert_eq!((r.last_success_at, r.first_sync_done), (Some(400), true));
}

async fn activity_lists_newest_first_with_search_and_paging(db: &TestDb) {
    let w = world(db).await;
    let mb = mailbox(db, &w).await;
    let fence = db.store.claim_due_mailboxes("w1", 100, 60, 10).await.unwrap().remove(0).fence;
    let items: Vec<SyncedItem> = (0..25)
        .map(|i| item(&format!("m{i:02}"), &format!("Subject {i} {}", if i % 5 == 0 { "Invoice 50%" } else { "hello" }), i))
        .collect();
    db.store.commit_page(&page(mb.id, fence, items, &[], CursorUpdate::DeltaLink("d".into()))).await.unwrap();
    let mut event = page(mb.id, fence, vec![item("e1", "Team meeting", 100)], &[], CursorUpdate::DeltaLink("de".into()));
    event.resource = Resource::Calendar;
    event.container = String::new();
    db.store.commit_page(&event).await.unwrap();

    let q = |resource, text: Option<&str>, offset, limit| ItemQuery {
        org_id: w.org,
        user_id: w.user,
        resource,
        text: text.map(str::to_string),
        offset,
        limit,
    };
    let first = db.store.activity_items(&q(None, None, 0, 10)).await.unwrap();
    assert_eq!(first.len(), 10);
    assert_eq!(first[0].item.graph_id, "e1", "newest first across resources");
    assert_eq!(first[1].item.graph_id, "m24");
    let third = db.store.activity_items(&q(None, None, 20, 10)).await.unwrap();
    assert_eq!(third.len(), 6);
    let mail = db.store.activity_items(&q(Some(Resource::Mail), None, 0, 100)).await.unwrap();
    assert_eq!(mail.len(), 25);
    let found = db.store.activity_items(&q(None, Some("INVOICE 50%"), 0, 100)).await.unwrap();
    assert_eq!(found.len(), 5, "case-insensitive, % is literal");
    assert!(db.store.activity_items(&q(None, Some("50_"), 0, 100)).await.unwrap().is_empty(), "_ is literal");
    let events = db.store.activity_items(&q(Some(Resource::Calendar), Some("meeting"), 0, 100)).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].resource, Resource::Calendar);
    // Someone else sees nothing of Alice's.
    let other = ItemQuery { user_id: domain::UserId(uuid::Uuid::new_v4()), ..q(None, None, 0, 100) };
    assert!(db.store.activity_items(&other).await.unwrap().is_empty());
}

async fn tokens_are_read_refreshed_atomically_and_marked(db: &TestDb) {
    let w = world(db).await;
    let t = db.store.connection_tokens(w.connection).await.unwrap().unwrap();
    assert_eq!(t.access_token.expose_secret(), "access-1");
    assert_eq!(t.refresh_token.as_ref().unwrap().expose_secret(), "refresh-1");
    assert!(!t.needs_attention);

    assert!(
        db.store
            .save_refreshed_tokens(
                w.connection,
                t.version,
                &SecretString::from("access-2"),
                5_000,
                Some(&SecretString::from("refresh-2")),
                10
            )
            .await
            .unwrap()
    );
    let v1 = t.version;
    let t = db.store.connection_tokens(w.connection).await.unwrap().unwrap();
    assert_eq!(t.version, v1 + 1);
    assert_eq!(
        (t.access_token.expose_secret(), t.refresh_token.as_ref().unwrap().expose_secret(), t.access_expires_at),
        ("access-2", "refresh-2", 5_000)
    );
    assert!(!db.raw.contains("refresh-2").await, "sealed at rest");
    // No new refresh token from Microsoft: the stored one stays.
    assert!(db.store.save_refreshed_tokens(w.connection, t.version, &SecretString::from("access-3"), 6_000, None, 11).await.unwrap());
    // A write from a version already replaced applies nothing.
    assert!(!db.store.save_refreshed_tokens(w.connection, v1, &SecretString::from("access-stale"), 6_500, None, 11).await.unwrap());
    let t = db.store.connection_tokens(w.connection).await.unwrap().unwrap();
    assert_eq!((t.access_token.expose_secret(), t.refresh_token.as_ref().unwrap().expose_secret()), ("access-3", "refresh-2"));

    assert!(!db.store.mark_connection_needs_attention(w.connection, v1, ReasonCode::RefreshTokenRevoked, 20).await.unwrap());
    assert!(!db.store.connection_tokens(w.connection).await.unwrap().unwrap().needs_attention, "a stale mark applies nothing");
    assert!(db.store.mark_connection_needs_attention(w.connection, t.version, ReasonCode::RefreshTokenRevoked, 20).await.unwrap());
    assert!(db.store.connection_tokens(w.connection).await.unwrap().unwrap().needs_attention);
    let c = db.store.connections_in_org(w.org).await.unwrap().remove(0);
    assert_eq!((c.state, c.reason), (ConnectionState::NeedsAttention, Some(ReasonCode::RefreshTokenRevoked)));
    assert!(db.store.connection_tokens(uuid::Uuid::new_v4()).await.unwrap().is_none());
}

async fn orgs_with_connections_are_listed_once_each(db: &TestDb) {
    assert!(db.store.orgs_with_connections().await.unwrap().is_empty());
    let w = world(db).await;
    // An organization without connections has no schedule to keep.
    db.store.create_organization("Contoso").await.unwrap();
    let bob = accounts::create_user(db.store.as_ref(), w.org, "bob@northwind.test", "Bob", Role::Member, "password-3").await.unwrap();
    let audit = AuditEntry { at: 2, actor: "bob".into(), action: "connect".into(), summary: "connected".into() };
    let second = NewConnection {
        org_id: w.org,
        user_id: bob.id,
        kind: ConnectionKind::Individual,
        is_primary: false,
        ms_tenant_id: "4f1c6a0e-2d3b-4c5a-9e8f-0a1b2c3d4e5f".into(),
        ms_object_id: "oid-bob".into(),
        ms_username: "bob@northwind.test".into(),
        ms_name: "Bob".into(),
        granted_scopes: vec!["Mail.Read".into()],
        access_token: SecretString::from("access-bob"),
        access_expires_at: 1_000,
        refresh_token: None,
    };
    let bob_conn = db.store.save_connection(&second, &audit).await.unwrap();
    assert_eq!(db.store.orgs_with_connections().await.unwrap(), vec![w.org], "two connections, one organization");
    // Fabrikam gets a connection too: both are listed, in a stable order.
    let fabrikam = db.store.create_organization("Fabrikam").await.unwrap();
    let carol =
        accounts::create_user(db.store.as_ref(), fabrikam.id, "carol@fabrikam.test", "Carol", Role::Admin, "password-4").await.unwrap();
    db.store
        .save_connection(
            &NewConnection { org_id: fabrikam.id, user_id: carol.id, ms_object_id: "oid-carol".into(), ..second.clone() },
            &audit,
        )
        .await
        .unwrap();
    let mut expected = vec![w.org, fabrikam.id];
    expected.sort_by_key(|o| o.as_uuid());
    assert_eq!(db.store.orgs_with_connections().await.unwrap(), expected);
    // Once its last connection is gone, an organization is no longer listed.
    for c in [w.connection, bob_conn.id] {
        assert!(db.store.delete_connection(w.org, c, &audit).await.unwrap());
    }
    assert_eq!(db.store.orgs_with_connections().await.unwrap(), vec![fabrikam.id]);
}

/// The connection `w` saved again (a reconnect) as the Microsoft account `object_id` of `tenant`.
fn reconnect(w: &World, tenant: &str, object_id: &str, username: &str) -> NewConnection {
    NewConnection {
        org_id: w.org,
        user_id: w.user,
        kind: ConnectionKind::Individual,
        is_primary: true,
        ms_tenant_id: tenant.into(),
        ms_object_id: object_id.into(),
        ms_username: username.into(),
        ms_name: username.into(),
        granted_scopes: vec!["Mail.Read".into()],
        access_token: SecretString::from(format!("access-{username}")),
        access_expires_at: 9_000,
        refresh_token: Some(SecretString::from(format!("refresh-{username}"))),
    }
}

/// Item 3 of the hardening issue: the same Intelligence360 user reconnects with another Microsoft
/// account. The connection row is reused, but nothing synced for the first account stays (items,
/// cursors, status, mailboxes), a worker still syncing it writes nothing, and the audit log says
/// so. Reconnecting as the same account keeps everything.
async fn a_reconnect_as_another_microsoft_account_keeps_nothing_of_the_first(db: &TestDb) {
    const TENANT: &str = "4f1c6a0e-2d3b-4c5a-9e8f-0a1b2c3d4e5f";
    let w = world(db).await;
    let own = mailbox(db, &w).await;
    let shared = db
        .store
        .ensure_sync_mailbox(
            &NewSyncMailbox { org_id: w.org, connection_id: w.connection, user_id: w.user, graph_user_id: Some("carol-id".into()) },
            100,
        )
        .await
        .unwrap();
    for lease in db.store.claim_due_mailboxes("w1", 100, 30, 10).await.unwrap() {
        let items = vec![item(&format!("alice-{}", lease.mailbox.id), "Alice's secret plans", 5)];
        let commit = page(lease.mailbox.id, lease.fence, items, &[], CursorUpdate::DeltaLink("delta-alice".into()));
        assert_eq!(db.store.commit_page(&commit).await.unwrap(), CommitOutcome::Committed { swept: 0 });
        db.store.commit_quiet(lease.mailbox.id, lease.fence, &[], &[Resource::Mail], 200).await.unwrap();
        assert!(db.store.release_lease(lease.mailbox.id, lease.fence, 0).await.unwrap());
    }
    let everything = ItemQuery { org_id: w.org, user_id: w.user, resource: None, text: None, offset: 0, limit: 100 };
    assert_eq!(db.store.activity_items(&everything).await.unwrap().len(), 2);

    // Reconnecting as the same account (GUIDs compared without regard to case) keeps it all.
    let same = reconnect(&w, &TENANT.to_uppercase(), "OID-ALICE", "alice@northwind.test");
    assert_eq!(db.store.save_connection(&same, &audit_entry("reconnected")).await.unwrap().id, w.connection);
    let kept: BTreeSet<uuid::Uuid> = db.store.sync_mailboxes_in_org(w.org).await.unwrap().into_iter().map(|m| m.id).collect();
    assert_eq!(kept, BTreeSet::from([own.id, shared.id]));
    assert_eq!(db.store.activity_items(&everything).await.unwrap().len(), 2);
    assert_eq!(db.store.cursors(own.id).await.unwrap()[0].link.as_deref(), Some("delta-alice"));
    let actions = |log: Vec<AuditEntry>| log.into_iter().map(|e| e.action).collect::<Vec<_>>();
    assert!(!actions(db.store.audit_log(w.org, 10).await.unwrap()).contains(&"office365.account_changed".to_owned()));

    // A worker is in the middle of syncing Alice's mailbox when Bob's account replaces hers.
    let in_flight = db.store.claim_due_mailboxes("w2", 300, 30, 10).await.unwrap();
    assert_eq!(in_flight.len(), 2);
    let bob = reconnect(&w, TENANT, "oid-bob", "bob@northwind.test");
    let saved = db.store.save_connection(&bob, &audit_entry("reconnected")).await.unwrap();
    assert_eq!((saved.id, saved.ms_object_id.as_str(), saved.ms_username.as_str()), (w.connection, "oid-bob", "bob@northwind.test"));
    assert!(db.store.sync_mailboxes_in_org(w.org).await.unwrap().is_empty(), "Alice's mailboxes are gone");
    assert!(db.store.activity_items(&everything).await.unwrap().is_empty(), "Alice's items are gone");
    for mb in [own.id, shared.id] {
        assert!(db.store.cursors(mb).await.unwrap().is_empty(), "Alice's delta links are gone");
        assert!(db.store.mailbox_status(mb).await.unwrap().is_none());
        assert!(db.store.mailbox_items(mb, Resource::Mail).await.unwrap().is_empty());
    }
    for lease in &in_flight {
        let late =
            page(lease.mailbox.id, lease.fence, vec![item("late", "Alice's late mail", 6)], &[], CursorUpdate::DeltaLink("d".into()));
        assert_eq!(db.store.commit_page(&late).await.unwrap(), CommitOutcome::LeaseLost, "the old sync writes nothing");
    }
    assert!(db.store.activity_items(&everything).await.unwrap().is_empty());
    let log = db.store.audit_log(w.org, 10).await.unwrap();
    assert_eq!(log[0].action, "office365.account_changed", "{log:?}");
    assert_eq!(log[0].summary, "Reconnected as bob@northwind.test; alice@northwind.test's synced data was removed.");
    assert_eq!(log[0].actor, "alice");
    assert_eq!(log[1].action, "reconnected");

    // Bob's own sync starts from nothing; another tenant with the same object id is another
    // account too.
    let fresh = mailbox(db, &w).await;
    assert_ne!(fresh.id, own.id);
    let lease = db.store.claim_due_mailboxes("w3", 400, 30, 10).await.unwrap().remove(0);
    let commit = page(fresh.id, lease.fence, vec![item("bob-1", "Bob's mail", 7)], &[], CursorUpdate::DeltaLink("delta-bob".into()));
    db.store.commit_page(&commit).await.unwrap();
    let elsewhere = reconnect(&w, "9a8b7c6d-0000-4000-8000-000000000001", "oid-bob", "bob@fabrikam.test");
    db.store.save_connection(&elsewhere, &audit_entry("reconnected")).await.unwrap();
    assert!(db.store.sync_mailboxes_in_org(w.org).await.unwrap().is_empty());
    assert!(db.store.activity_items(&everything).await.unwrap().is_empty());
    assert_eq!(db.store.audit_log(w.org, 1).await.unwrap()[0].action, "office365.account_changed");
}

fn audit_entry(action: &str) -> AuditEntry {
    AuditEntry { at: 3, actor: "alice".into(), action: action.into(), summary: action.into() }
}
