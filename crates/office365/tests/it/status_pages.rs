//! The status pages at organization scale: Team connections and My Connection run the same
//! statements whether the service account syncs one mailbox or fifty (counted as sqlx runs them),
//! and an ignored test times Team connections over a thousand mailboxes of a few hundred items.

use crate::harness::{Env, spawn};
use crate::people::application_mode_activated;
use domain::{AuditEntry, MailboxHealth, Resource, ServiceAccountUser};
use std::sync::atomic::{AtomicUsize, Ordering};
use store::sync::{CursorUpdate, PageCommit, SyncedItem};

/// Statements sqlx has run in this process (every test runs in a process of its own under
/// nextest, so no other test's count mixes in).
static STATEMENTS: AtomicUsize = AtomicUsize::new(0);

/// Counts sqlx's statement events (`sqlx::query`, one per statement run), and nothing else.
struct CountStatements;

impl tracing::Subscriber for CountStatements {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target() == "sqlx::query"
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if event.metadata().target() == "sqlx::query" {
            STATEMENTS.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// How many statements `workflow` runs: the least of three runs, so a pool connection opened on
/// the way or a background task of an earlier step does not count.
async fn statements_of<F, Fut>(mut workflow: F) -> usize
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let _ = tracing::subscriber::set_global_default(CountStatements);
    let mut least = usize::MAX;
    for _ in 0..3 {
        let before = STATEMENTS.load(Ordering::Relaxed);
        workflow().await;
        least = least.min(STATEMENTS.load(Ordering::Relaxed) - before);
    }
    least
}

/// The service account syncs `n` mailboxes (users 0..n, added in the store directly and
/// scheduled by the scheduler), each synced once: `items` mails and a completed first round.
async fn service_account_syncing(env: &Env, n: usize, items: usize) {
    let have = env.store.service_account_users(env.org).await.unwrap().len();
    for i in have..n {
        let user = ServiceAccountUser {
            id: uuid::Uuid::new_v4(),
            ms_object_id: Some(format!("oid-{i}")),
            ms_username: format!("user{i}@northwind.test"),
            display_name: format!("User {i}"),
            added_by: "admin".into(),
            added_at: 1,
            health: Some(MailboxHealth::Ok),
            health_at: Some(1),
        };
        let entry = AuditEntry { at: 1, actor: "admin".into(), action: "office365.service_user_added".into(), summary: String::new() };
        assert!(env.store.add_service_account_user(env.org, &user, &entry).await.unwrap());
    }
    env.scheduler.reconcile_org(env.org).await.unwrap();
    let now = store::now_unix();
    for lease in env.store.claim_due_mailboxes("test", now, 600, u32::MAX).await.unwrap() {
        let mb = lease.mailbox.id;
        let upserts = (0..items).map(|i| mail(&format!("{mb}-{i}"), i)).collect();
        let page = PageCommit {
            mailbox_id: mb,
            fence: lease.fence,
            resource: Resource::Mail,
            container: "inbox".into(),
            upserts,
            deletes: Vec::new(),
            cursor: CursorUpdate::DeltaLink("delta".into()),
            now,
        };
        env.store.commit_page(&page).await.unwrap();
        env.store.commit_quiet(mb, lease.fence, &[], &[Resource::Mail], now).await.unwrap();
        assert!(env.store.release_lease(mb, lease.fence, now + 900).await.unwrap());
    }
    assert_eq!(env.store.sync_mailboxes_in_org(env.org).await.unwrap().len(), n);
}

fn mail(id: &str, i: usize) -> SyncedItem {
    SyncedItem {
        graph_id: id.into(),
        container: "inbox".into(),
        title: format!("Subject {i}"),
        subtitle: "Bob <bob@northwind.test>".into(),
        preview: "A few words of the body".into(),
        occurred_at: Some(1_700_000_000 + i64::try_from(i).unwrap()),
        data: "{}".into(),
    }
}

#[tokio::test]
async fn team_connections_and_my_connection_run_as_many_statements_for_fifty_mailboxes_as_for_one() {
    let env = spawn().await;
    application_mode_activated(&env).await;
    let (o365, admin) = (&env.o365, &env.admin.user);
    let team = move || async move { drop(o365.team_connections(admin).await.unwrap()) };
    let mine = move || async move { drop(o365.my_connection(admin).await.unwrap()) };

    service_account_syncing(&env, 1, 3).await;
    let (team_one, mine_one) = (statements_of(team).await, statements_of(mine).await);
    service_account_syncing(&env, 50, 3).await;
    let (team_fifty, mine_fifty) = (statements_of(team).await, statements_of(mine).await);
    eprintln!("statements per view: Team connections {team_one} (1 mailbox), {team_fifty} (50); My Connection {mine_one}, {mine_fifty}");
    assert!(team_one > 0 && mine_one > 0, "statements are counted");
    assert_eq!(team_fifty, team_one, "Team connections: {team_one} statements for 1 mailbox, {team_fifty} for 50");
    assert_eq!(mine_fifty, mine_one, "My Connection: {mine_one} statements for 1 mailbox, {mine_fifty} for 50");

    // What they read is every mailbox's: 50 mailboxes of 3 mails, each with its delivery line.
    let view = env.o365.my_connection(admin).await.unwrap();
    let sync = view.sync.unwrap();
    assert_eq!(sync.counts, vec![(Resource::Mail, 150)]);
    assert_eq!(sync.change_delivery.len(), 50);
    assert!(sync.change_delivery.iter().any(|d| d.mailbox.as_deref() == Some("User 49")), "named after the service account user");
    let rows = env.o365.team_connections(admin).await.unwrap();
    assert_eq!(
        rows.iter().filter_map(|r| r.sync.as_ref()).map(|s| s.counts.clone()).collect::<Vec<_>>(),
        vec![vec![(Resource::Mail, 150)]]
    );
}

/// Team connections over I360_STATUS_MAILBOXES (1,000) service-account mailboxes of
/// I360_STATUS_ITEMS (300) mails each, on SQLite: prints the page's time (best of five) and its
/// statements. `cargo nextest run -p office365 --run-ignored only -E 'test(/thousand/)' --no-capture`
#[tokio::test]
#[ignore = "a measurement: minutes to set up"]
async fn team_connections_over_a_thousand_mailboxes_timed() {
    let var = |name: &str, default: usize| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let (mailboxes, items) = (var("I360_STATUS_MAILBOXES", 1_000), var("I360_STATUS_ITEMS", 300));
    let env = spawn().await;
    application_mode_activated(&env).await;
    let started = std::time::Instant::now();
    service_account_syncing(&env, mailboxes, items).await;
    println!("set up {mailboxes} mailboxes × {items} items in {:.1} s", started.elapsed().as_secs_f64());
    let (o365, admin) = (&env.o365, &env.admin.user);
    let mut best = std::time::Duration::MAX;
    for _ in 0..5 {
        let t = std::time::Instant::now();
        let rows = o365.team_connections(admin).await.unwrap();
        best = best.min(t.elapsed());
        assert_eq!(rows.len(), 1);
    }
    let statements = statements_of(move || async move { drop(o365.team_connections(admin).await.unwrap()) }).await;
    println!("Team connections: {:.1} ms (best of 5), {statements} statements", best.as_secs_f64() * 1000.0);
}
