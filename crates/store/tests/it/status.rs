//! Status without scans: the item count per mailbox and resource is kept by every write to the
//! items (never counted on a read) and always equals the items there are; an organization's
//! mailboxes are read with their status, cursors and subscriptions at once, filtered by the
//! database; the migration that brought the counts computed them from the items already synced.

use crate::harness::{Raw, TestDb, on_both_backends};
use crate::sync::{item, mailbox, page, world};
use domain::{AuditEntry, ConnectionKind, PauseReason, ReasonCode, Resource, Role};
use store::secrets::SecretString;
use store::subscriptions::{Subscription, SubscriptionState};
use store::sync::{CursorUpdate, MailboxFilter, NewSyncMailbox, PageCommit, SubscriptionStatus};
use store::{NewConnection, accounts};

on_both_backends!(
    kept_counts_equal_the_items_through_adds_updates_deletes_resyncs_and_removals,
    a_reconnect_as_another_account_takes_the_counts_with_the_items,
    an_organizations_overview_is_read_at_once_and_filtered_by_the_database,
    the_migration_counts_the_items_already_synced,
);

/// A small deterministic generator (xorshift), so a failing sequence can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The containers the random pages write to: two of mail, two To Do lists.
const CONTAINERS: [(Resource, &str); 4] =
    [(Resource::Mail, "inbox"), (Resource::Mail, "archive"), (Resource::Tasks, "list-1"), (Resource::Tasks, "list-2")];

/// A random page of one container: upserts (new or known ids, repeats included), deletes (known
/// or never seen), and a nextLink or a deltaLink.
fn random_page(rng: &mut Rng, mb: uuid::Uuid, fence: i64, (resource, container): (Resource, &str)) -> PageCommit {
    let upserts = (0..rng.below(7))
        .map(|_| {
            let id = format!("{container}-{}", rng.below(14));
            store::sync::SyncedItem { container: container.into(), ..item(&id, &format!("title {}", rng.below(100)), 5) }
        })
        .collect();
    let deletes: Vec<String> = (0..rng.below(4)).map(|_| format!("{container}-{}", rng.below(16))).collect();
    let cursor = if rng.below(3) == 0 { CursorUpdate::DeltaLink("d".into()) } else { CursorUpdate::NextLink("n".into()) };
    let deletes: Vec<&str> = deletes.iter().map(String::as_str).collect();
    PageCommit { resource, container: container.into(), ..page(mb, fence, upserts, &deletes, cursor) }
}

/// The kept count of every resource of the mailbox equals its items, by `COUNT(*)`'s reading
/// (every stored item listed).
async fn assert_counts_exact(db: &TestDb, mb: uuid::Uuid, after: &str) {
    let status = db.store.mailbox_status(mb).await.unwrap().unwrap();
    for r in Resource::ALL {
        let kept = status.resources.iter().find(|s| s.resource == r).map_or(0, |s| s.items);
        let there = db.store.mailbox_items(mb, r).await.unwrap().len() as u64;
        assert_eq!(kept, there, "{r:?} after {after}");
    }
}

async fn kept_counts_equal_the_items_through_adds_updates_deletes_resyncs_and_removals(db: &TestDb) {
    let w = world(db).await;
    let mb = mailbox(db, &w).await.id;
    let other =
        db.store.ensure_sync_mailbox(&NewSyncMailbox { graph_user_id: Some("carol-id".into()), ..new_mailbox(&w) }, 100).await.unwrap().id;
    let leases = db.store.claim_due_mailboxes("w1", 100, 600, 10).await.unwrap();
    let fence_of = |id| leases.iter().find(|l| l.mailbox.id == id).unwrap().fence;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for step in 0..160 {
        let (target, fence) = if rng.below(4) == 0 { (other, fence_of(other)) } else { (mb, fence_of(mb)) };
        let (resource, container) = CONTAINERS[rng.below(4) as usize];
        let what = match rng.below(12) {
            // 410: a resync; what its full round does not see goes when it completes.
            0 => db.store.reset_cursor(target, fence, resource, container, 300).await.map(|_| "a resync"),
            1 => db.store.drop_container(target, fence, resource, container).await.map(|_| "a vanished folder"),
            _ => db.store.commit_page(&random_page(&mut rng, target, fence, (resource, container))).await.map(|_| "a page"),
        };
        let what = what.unwrap();
        assert_counts_exact(db, target, &format!("{what} (step {step})")).await;
    }
    // A page of a worker that lost its lease changes nothing, counts included.
    let stale =
        PageCommit { fence: fence_of(mb) - 1, ..page(mb, 0, vec![item("stale", "Stale", 1)], &[], CursorUpdate::NextLink("n".into())) };
    db.store.commit_page(&stale).await.unwrap();
    assert_counts_exact(db, mb, "a stale page").await;
    let overview = db.store.org_sync_overview(w.org, &MailboxFilter::default()).await.unwrap();
    let total: u64 = overview.iter().flat_map(|o| o.status.resources.iter()).map(|r| r.items).sum();
    let mut listed = 0;
    for id in [mb, other] {
        for r in Resource::ALL {
            listed += db.store.mailbox_items(id, r).await.unwrap().len() as u64;
        }
    }
    assert!(listed > 20, "the sequence left items to count: {listed}");
    assert_eq!(total, listed, "the overview reads the same kept counts");

    // Removing a mailbox takes its items and their counts with it.
    assert!(db.store.remove_sync_mailbox(other).await.unwrap());
    assert!(db.store.mailbox_items(other, Resource::Mail).await.unwrap().is_empty());
    let left = db.store.org_sync_overview(w.org, &MailboxFilter::default()).await.unwrap();
    assert_eq!(left.iter().map(|o| o.status.mailbox.id).collect::<Vec<_>>(), vec![mb]);
    assert_counts_exact(db, mb, "the other mailbox's removal").await;
}

async fn a_reconnect_as_another_account_takes_the_counts_with_the_items(db: &TestDb) {
    let w = world(db).await;
    let mb = mailbox(db, &w).await.id;
    let fence = db.store.claim_due_mailboxes("w1", 100, 600, 10).await.unwrap().remove(0).fence;
    let items = vec![item("a", "A", 1), item("b", "B", 2)];
    db.store.commit_page(&page(mb, fence, items, &[], CursorUpdate::DeltaLink("d".into()))).await.unwrap();
    assert_counts_exact(db, mb, "the first round").await;
    let again = NewConnection { ms_object_id: "oid-someone-else".into(), ..connection(w.org, w.user, "alice@northwind.test") };
    db.store.save_connection(&again, &audit()).await.unwrap();
    assert!(db.store.org_sync_overview(w.org, &MailboxFilter::default()).await.unwrap().is_empty());
    // The scheduler makes the mailbox again: it starts from nothing, counts included.
    let fresh = mailbox(db, &w).await.id;
    assert_ne!(fresh, mb);
    assert!(db.store.mailbox_status(fresh).await.unwrap().unwrap().resources.is_empty());
}

async fn an_organizations_overview_is_read_at_once_and_filtered_by_the_database(db: &TestDb) {
    let w = world(db).await;
    let own = mailbox(db, &w).await.id;
    let bob = accounts::create_user(db.store.as_ref(), w.org, "bob@northwind.test", "Bob", Role::Member, "password-2").await.unwrap();
    let bobs_connection = db.store.save_connection(&connection(w.org, bob.id, "bob@northwind.test"), &audit()).await.unwrap().id;
    let bobs = NewSyncMailbox { connection_id: bobs_connection, user_id: bob.id, ..new_mailbox(&w) };
    let bobs = db.store.ensure_sync_mailbox(&bobs, 101).await.unwrap().id;
    let carols = NewSyncMailbox { graph_user_id: Some("carol-id".into()), ..new_mailbox(&w) };
    let carols = db.store.ensure_sync_mailbox(&carols, 102).await.unwrap().id;
    db.store.set_mailbox_paused(carols, Some(PauseReason::PollPrimaryOnly), 100).await.unwrap();
    // Another organization's mailbox is never read.
    let elsewhere = db.store.create_organization("Elsewhere").await.unwrap().id;
    let erin =
        accounts::create_user(db.store.as_ref(), elsewhere, "erin@elsewhere.test", "Erin", Role::Member, "password-2").await.unwrap();
    let erins = db.store.save_connection(&connection(elsewhere, erin.id, "erin@elsewhere.test"), &audit()).await.unwrap().id;
    let new = NewSyncMailbox { org_id: elsewhere, connection_id: erins, user_id: erin.id, graph_user_id: None };
    db.store.ensure_sync_mailbox(&new, 100).await.unwrap();

    // The own mailbox: a first round of mail done, a To Do list mid-round, a live subscription
    // and a failed one, an error on tasks.
    let fence = db.store.claim_due_mailboxes("w1", 100, 600, 10).await.unwrap().into_iter().find(|l| l.mailbox.id == own).unwrap().fence;
    let mail = vec![item("a", "A", 1), item("b", "B", 2)];
    db.store.commit_page(&page(own, fence, mail, &[], CursorUpdate::DeltaLink("d".into()))).await.unwrap();
    let task = store::sync::SyncedItem { container: "list-1".into(), ..item("t", "T", 3) };
    let tasks = PageCommit { resource: Resource::Tasks, container: "list-1".into(), ..page(own, fence, vec![task], &[], next()) };
    db.store.commit_page(&tasks).await.unwrap();
    db.store.commit_quiet(own, fence, &[], &[Resource::Mail], 200).await.unwrap();
    // A second mail folder in a round from scratch, a second To Do list whose round is done.
    let archive = PageCommit { container: "archive".into(), ..page(own, fence, vec![], &[], next()) };
    db.store.commit_page(&archive).await.unwrap();
    let done = PageCommit {
        resource: Resource::Tasks,
        container: "list-2".into(),
        ..page(own, fence, vec![], &[], CursorUpdate::DeltaLink("d2".into()))
    };
    db.store.commit_page(&done).await.unwrap();
    db.store.record_resource_error(own, fence, Resource::Tasks, ReasonCode::Throttled, Some(900), 250).await.unwrap();
    let state =
        SubscriptionState::Live { graph_id: "sub-1".into(), client_state: SecretString::from("cs"), expires_at: 5_000, renew: false };
    let live = Subscription { mailbox_id: own, resource: Resource::Mail, container: String::new(), state, attempted_at: 200 };
    db.store.save_subscription(fence, &live, 200).await.unwrap();
    let state = SubscriptionState::Failed { reason: ReasonCode::PermissionMissing, detail: "No.".into() };
    let failed = Subscription { resource: Resource::Tasks, container: "list-1".into(), state, ..live.clone() };
    db.store.save_subscription(fence, &failed, 200).await.unwrap();

    let all = db.store.org_sync_overview(w.org, &MailboxFilter::default()).await.unwrap();
    assert_eq!(all.iter().map(|o| o.status.mailbox.id).collect::<Vec<_>>(), vec![own, bobs, carols], "oldest first, this org's only");
    let o = &all[0];
    let counts: Vec<(Resource, u64, bool)> = o.status.resources.iter().map(|r| (r.resource, r.items, r.first_sync_done)).collect();
    assert_eq!(counts, vec![(Resource::Mail, 2, true), (Resource::Tasks, 1, false)]);
    assert_eq!(o.status.resources[1].throttled_until, Some(900));
    let cursors: Vec<(Resource, &str, bool)> = o.cursors.iter().map(|c| (c.resource, c.container.as_str(), c.full_round)).collect();
    // Mail's folders are one target (in a round from scratch while any folder is); each To Do list
    // is its own.
    assert_eq!(cursors, vec![(Resource::Mail, "", true), (Resource::Tasks, "list-1", true), (Resource::Tasks, "list-2", false)]);
    assert_eq!(o.subscriptions, vec![SubscriptionStatus::from(&live), SubscriptionStatus::from(&failed)]);
    assert!(o.subscriptions[0].is_live(4_999) && !o.subscriptions[0].is_live(5_000));
    assert_eq!(o.subscriptions[1].failure, Some((ReasonCode::PermissionMissing, "No.".into())));
    assert!(all[1].status.resources.is_empty() && all[1].cursors.is_empty() && all[1].subscriptions.is_empty());

    let org = w.org;
    let ids = |f: MailboxFilter| async move {
        db.store.org_sync_overview(org, &f).await.unwrap().into_iter().map(|o| o.status.mailbox.id).collect::<Vec<_>>()
    };
    assert_eq!(ids(MailboxFilter { connection: Some(w.connection), ..Default::default() }).await, vec![own, carols]);
    assert_eq!(ids(MailboxFilter { connection: Some(w.connection), synced_only: true, ..Default::default() }).await, vec![own]);
    assert_eq!(ids(MailboxFilter { user: Some(bob.id), ..Default::default() }).await, vec![bobs]);
    assert_eq!(ids(MailboxFilter { user: Some(w.user), synced_only: true, ..Default::default() }).await, vec![own]);
    assert!(ids(MailboxFilter { user: Some(erin.id), ..Default::default() }).await.is_empty(), "not of this organization");
}

/// Version 17 counted the items synced before it: its column is taken away and it runs again on
/// the next start, a resource with items and no status row included.
async fn the_migration_counts_the_items_already_synced(db: &TestDb) {
    let w = world(db).await;
    let mb = mailbox(db, &w).await.id;
    let fence = db.store.claim_due_mailboxes("w1", 100, 600, 10).await.unwrap().remove(0).fence;
    let mail: Vec<_> = (0..5).map(|i| item(&format!("m{i}"), "M", i)).collect();
    db.store.commit_page(&page(mb, fence, mail, &[], CursorUpdate::DeltaLink("d".into()))).await.unwrap();
    let task = store::sync::SyncedItem { container: "list-1".into(), ..item("t", "T", 3) };
    let tasks = PageCommit { resource: Resource::Tasks, container: "list-1".into(), ..page(mb, fence, vec![task], &[], next()) };
    db.store.commit_page(&tasks).await.unwrap();
    db.store.commit_quiet(mb, fence, &[], &[Resource::Mail], 200).await.unwrap();
    let url = match &db.raw {
        Raw::SqliteDir(dir) => format!("sqlite://{}", dir.join("test.db").display()),
        Raw::Postgres(url) => url.clone(),
    };
    let before_17 = [
        "DELETE FROM sync_status WHERE resource = 'tasks'",
        "ALTER TABLE sync_status DROP COLUMN items",
        "DELETE FROM _sqlx_migrations WHERE version = 17",
    ];
    match &db.raw {
        Raw::SqliteDir(_) => {
            use sqlx::Connection;
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            for sql in before_17 {
                sqlx::query(sql).execute(&mut conn).await.unwrap();
            }
        }
        Raw::Postgres(_) => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            for sql in before_17 {
                sqlx::query(sql).execute(&mut conn).await.unwrap();
            }
        }
    }
    let reopened = store::open(&url, std::sync::Arc::new(store::secrets::Keyring::ephemeral())).await.unwrap();
    let status = reopened.mailbox_status(mb).await.unwrap().unwrap();
    let counts: Vec<(Resource, u64, bool)> = status.resources.iter().map(|r| (r.resource, r.items, r.first_sync_done)).collect();
    assert_eq!(counts, vec![(Resource::Mail, 5, true), (Resource::Tasks, 1, false)]);
}

fn next() -> CursorUpdate {
    CursorUpdate::NextLink("n".into())
}

fn new_mailbox(w: &crate::sync::World) -> NewSyncMailbox {
    NewSyncMailbox { org_id: w.org, connection_id: w.connection, user_id: w.user, graph_user_id: None }
}

fn connection(org: domain::OrgId, user: domain::UserId, address: &str) -> NewConnection {
    NewConnection {
        org_id: org,
        user_id: user,
        kind: ConnectionKind::Individual,
        is_primary: false,
        ms_tenant_id: "4f1c6a0e-2d3b-4c5a-9e8f-0a1b2c3d4e5f".into(),
        ms_object_id: format!("oid-{address}"),
        ms_username: address.into(),
        ms_name: address.into(),
        granted_scopes: vec!["Mail.Read".into()],
        access_token: SecretString::from("access"),
        access_expires_at: 1_000,
        refresh_token: Some(SecretString::from("refresh")),
    }
}

fn audit() -> AuditEntry {
    AuditEntry { at: 1, actor: "test".into(), action: "connect".into(), summary: "connected".into() }
}
