//! Sync speed as production runs it: `make bench-sync` (`cargo run --release -p sync --example bench_sync`).
//!
//! Seeds an in-process emulator with `BENCH_MAILBOXES` mailboxes (default 20) × `BENCH_MESSAGES`
//! messages (default 500; plus 25 events, 30 contacts and 20 tasks each), puts a fresh
//! organization in application-permissions mode with those mailboxes as its service account
//! users, and lets the scheduler's own loop ([`Scheduler::spawn`], as the server runs it) sync them
//! with the server's defaults (pages of 100, [`sync::default_max_concurrent_mailboxes`] for this
//! machine, Microsoft's limits on in the emulator). In the same run it measures what bounds each
//! figure:
//!
//! 1. **First full sync** against its ceiling: the very same rows bulk-inserted into a second fresh
//!    database made by `store::open` (same migrations, indexes, pragmas and pool options), one
//!    prepared multi-row `INSERT` per page of 100 rows, one transaction per page.
//! 2. **No-change round** ("sync now" for the organization) against the emulator's per-request
//!    floor: a small load tool sends the round's delta GETs (every stored deltaLink, with a valid
//!    token) over `BENCH_LOAD_CONNECTIONS` concurrent connections (default 16) for
//!    `BENCH_LOAD_SECS` (default 3) and gives requests/s; the round is compared with
//!    requests × 1 / (requests/s). The round sends its listings and delta GETs inside `$batch`
//!    requests; each inner request counts as one request (Microsoft answers and counts each), so
//!    the floor is what the same Graph work costs as separate GETs, and the batch's saving of
//!    round trips shows in the ratio. `BENCH_ROUNDS` (default 3) rounds, then as many floor
//!    measurements; the ratio is of their medians, since the machine's load moves a single round
//!    by half.
//! 3. **Microsoft's limits scaled down** (a third world, `BENCH_THROTTLE_MAILBOXES` mailboxes,
//!    default the scheduler's concurrency; `BENCH_THROTTLE=0` skips it): the per-mailbox request
//!    limit is set to a fifth of a first sync's requests per window of `BENCH_THROTTLE_WINDOW_SECS`
//!    (default 15), so the throttle bound is about a minute; prints achieved / bound and the 429s.
//!
//! `BENCH_DATABASE_URL=postgres://user@host:port/db` uses fresh databases on that PostgreSQL
//! server instead of SQLite files (dropped at the end). Peak memory is this process's VmHWM
//! (emulator included: it runs in-process); the load average is printed first, since other work
//! on the machine skews every figure.

use domain::permissions::ConnectionMode;
use domain::{AuditEntry, ConnectionKind, OrgId, Resource, Role, ServiceAccountUser};
use m365_emulator::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, EmulatorConfig, Fixture, NORTHWIND_TENANT_ID, ThrottleConfig};
use microsoft::{AppRegistration, Endpoints, ExposeSecret, MicrosoftClient, SecretString};
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::DynStore;
use store::sync::{SyncMailbox, SyncedItem};
use sync::{Engine, Scheduler, SyncConfig};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Goals of issue 15.
const CEILING_GOAL: f64 = 0.5;
const FLOOR_GOAL: f64 = 1.5;
const THROTTLE_GOAL: f64 = 0.9;
/// The scaled limit allows a fifth of a mailbox's first-sync requests per window.
const THROTTLE_WINDOWS: u64 = 5;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok()))
        .map_or(0.0, |kb| kb / 1024.0)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map_or_else(|_| "unknown".into(), |s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

fn upn(i: usize) -> String {
    Fixture::bench_upn("user", i)
}

/// The demo world plus `mailboxes` bench users of `messages` messages each.
fn fixture(mailboxes: usize, messages: u64) -> Fixture {
    Fixture::demo_with_bench_users("user", mailboxes, messages)
}

/// A fresh database: an SQLite file in `dir`, or with `BENCH_DATABASE_URL` a new database on that
/// PostgreSQL server (its name is returned too, to drop it at the end).
async fn fresh_database(dir: &std::path::Path, label: &str) -> Res<(String, Option<String>)> {
    let Ok(admin_url) = std::env::var("BENCH_DATABASE_URL") else {
        return Ok((format!("sqlite://{}", dir.join(format!("{label}.db")).display()), None));
    };
    use sqlx::Connection;
    let name = format!("bench_sync_{label}_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
    // The name is made here from a UUID: safe to splice.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await?;
    let base = admin_url.rsplit_once('/').map_or(admin_url.as_str(), |(b, _)| b);
    Ok((format!("{base}/{name}"), Some(name)))
}

async fn drop_databases(names: &[String]) -> Res<()> {
    let Ok(admin_url) = std::env::var("BENCH_DATABASE_URL") else { return Ok(()) };
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
    for name in names {
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).execute(&mut admin).await?;
    }
    Ok(())
}

fn audit(action: &str) -> AuditEntry {
    AuditEntry { at: store::now_unix(), actor: "bench".into(), action: action.into(), summary: action.into() }
}

/// The organization in application-permissions mode, as activating it after admin consent leaves
/// it, with the bench users as its service account users. Returns it.
async fn seed_org(store: &DynStore, client: &MicrosoftClient, mailboxes: usize) -> Res<OrgId> {
    let org = store.create_organization("Northwind").await?.id;
    let settings = domain::office365::Office365Settings {
        enabled: true,
        own_app: true,
        tenant: NORTHWIND_TENANT_ID.into(),
        client_id: DEMO_CLIENT_ID.into(),
        client_secret_set: true,
        mode: ConnectionMode::ApplicationPermissions,
        // Every generated message, however far back, is part of the measured first sync.
        backfill_days: 365,
        ..Default::default()
    };
    store.save_office365_settings(org, &settings, Some(&store::secrets::SecretString::from(DEMO_CLIENT_SECRET)), &[]).await?;
    let admin = store::accounts::create_user(store.as_ref(), org, "admin@northwind.test", "Adele", Role::Admin, "bench-password").await?;
    let app = AppRegistration::new(NORTHWIND_TENANT_ID, DEMO_CLIENT_ID, SecretString::from(DEMO_CLIENT_SECRET.to_string()))?;
    let token = client.client_credentials(&app).await?;
    let connection = store::NewConnection {
        org_id: org,
        user_id: admin.id,
        kind: ConnectionKind::Application,
        is_primary: true,
        ms_tenant_id: NORTHWIND_TENANT_ID.into(),
        ms_object_id: String::new(),
        ms_username: DEMO_CLIENT_ID.into(),
        ms_name: "Application permissions".into(),
        granted_scopes: vec!["Mail.Read".into()],
        access_token: store::secrets::SecretString::from(token.access_token.expose_secret()),
        access_expires_at: token.expires_at.unix_timestamp(),
        refresh_token: None,
    };
    store.save_connection(&connection, &audit("office365.service_activated")).await?;
    for i in 0..mailboxes {
        let user = ServiceAccountUser {
            id: uuid::Uuid::new_v4(),
            ms_object_id: Some(format!("b0000000-0000-4000-8000-{i:012}")),
            ms_username: upn(i),
            display_name: format!("Bench User {i}"),
            added_by: "bench".into(),
            added_at: store::now_unix(),
            health: None,
            health_at: None,
        };
        store.add_service_account_user(org, &user, &audit("office365.service_user_added")).await?;
    }
    Ok(org)
}

/// One product instance (store, scheduler) and its Microsoft (an in-process emulator).
struct World {
    emu: m365_emulator::RunningEmulator,
    client: MicrosoftClient,
    store: DynStore,
    url: String,
    scheduler: Arc<Scheduler>,
    org: OrgId,
    mailboxes: Vec<SyncMailbox>,
    stop: tokio::sync::watch::Sender<bool>,
    workers: Option<tokio::task::JoinHandle<()>>,
}

/// What a wait for every mailbox's run measured.
struct Round {
    elapsed: Duration,
    /// Graph requests, a batch's inner requests each counted (what Microsoft counts and answers).
    graph_requests: u64,
    /// JSON batches among them: each carried several of the requests in one round trip.
    batches: u64,
    items: u64,
    failed_runs: u64,
}

impl World {
    /// The emulator, a fresh database with the organization seeded and its schedule reconciled; the
    /// scheduler's loop is not started yet.
    async fn new(mailboxes: usize, messages: u64, throttling: ThrottleConfig, url: String) -> Res<World> {
        let mut config = EmulatorConfig::new(fixture(mailboxes, messages));
        config.throttling = throttling;
        let emu = m365_emulator::spawn(config).await?;
        emu.grant_admin_consent(
            NORTHWIND_TENANT_ID,
            DEMO_CLIENT_ID,
            &[],
            &["Mail.Read", "Calendars.Read", "Contacts.Read", "Tasks.Read.All"],
        )?;
        let client = MicrosoftClient::new(Endpoints::parse(&emu.login_base(), &emu.graph_base())?)?;
        let store = store::open(&url, Arc::new(store::secrets::Keyring::ephemeral())).await?;
        let org = seed_org(&store, &client, mailboxes).await?;
        // The server's sync configuration: production defaults (polling: a loopback URL gets no
        // change notifications).
        // `BENCH_BATCH=0` turns off `$batch` (on by default, as in the server).
        // `BENCH_CONCURRENCY` overrides the mailboxes synced at once (the server's default for this
        // machine otherwise).
        let defaults = SyncConfig::default();
        let config = SyncConfig {
            batch_requests: env_or("BENCH_BATCH", 1) == 1,
            max_concurrent_mailboxes: env_or("BENCH_CONCURRENCY", defaults.max_concurrent_mailboxes as u64) as usize,
            ..defaults
        };
        let scheduler = Scheduler::new(Engine::new(store.clone(), client.clone(), config));
        // What activating the service connection and adding its users do.
        scheduler.reconcile_org(org).await?;
        let mailboxes: Vec<SyncMailbox> = store.sync_mailboxes_in_org(org).await?.into_iter().filter(|m| m.paused.is_none()).collect();
        let (stop, _) = tokio::sync::watch::channel(false);
        Ok(World { emu, client, store, url, scheduler, org, mailboxes, stop, workers: None })
    }

    /// The production loop, timed until every mailbox's first sync is done.
    async fn first_sync(&mut self, timeout: Duration) -> Res<Round> {
        let before = self.scheduler.engine().metrics().snapshot();
        let started = Instant::now();
        self.workers = Some(self.scheduler.clone().spawn(self.stop.subscribe()));
        let finished = self.wait(before.mailbox_runs_ok + before.mailbox_runs_failed, 0, timeout).await?;
        Ok(self.round(&before, finished - started))
    }

    /// "Sync now" for the organization, timed until every mailbox ran once more.
    async fn no_change_round(&self, timeout: Duration) -> Res<Round> {
        self.wait_idle(timeout).await?;
        let before = self.scheduler.engine().metrics().snapshot();
        let asked = store::now_unix();
        let started = Instant::now();
        self.scheduler.sync_org_now(self.org).await?;
        let finished = self.wait(before.mailbox_runs_ok + before.mailbox_runs_failed, asked, timeout).await?;
        Ok(self.round(&before, finished - started))
    }

    fn round(&self, before: &sync::MetricsSnapshot, elapsed: Duration) -> Round {
        let after = self.scheduler.engine().metrics().snapshot();
        Round {
            elapsed,
            graph_requests: after.graph_requests() - before.graph_requests(),
            batches: after.batches - before.batches,
            items: after.items_upserted - before.items_upserted,
            failed_runs: after.mailbox_runs_failed - before.mailbox_runs_failed,
        }
    }

    /// Waits (the engine's counters, then the store) until every mailbox finished a run after
    /// `runs_before` runs, its first sync done, each resource's last success at or after `since`.
    /// Returns when the counters showed the runs finished: the store's check that follows reads
    /// every mailbox's status, which is the benchmark's work, not the round's.
    async fn wait(&self, runs_before: u64, since: i64, timeout: Duration) -> Res<Instant> {
        let started = Instant::now();
        let n = self.mailboxes.len() as u64;
        loop {
            let m = self.scheduler.engine().metrics().snapshot();
            let counted = Instant::now();
            if m.mailbox_runs_ok + m.mailbox_runs_failed >= runs_before + n && self.all_done(since).await? {
                return Ok(counted);
            }
            if started.elapsed() > timeout {
                return Err(format!("mailboxes not synced after {timeout:?}").into());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn all_done(&self, since: i64) -> Res<bool> {
        let now = store::now_unix();
        for mb in &self.mailboxes {
            let Some(st) = self.store.mailbox_status(mb.id).await? else { return Ok(false) };
            let leased = st.mailbox.lease_owner.is_some() && st.mailbox.lease_expires_at >= now;
            let done = st.resources.iter().all(|r| r.first_sync_done && r.last_success_at.is_some_and(|t| t >= since));
            if leased || st.resources.is_empty() || !done {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn wait_idle(&self, timeout: Duration) -> Res<()> {
        let started = Instant::now();
        while !self.all_done(0).await? {
            if started.elapsed() > timeout {
                return Err("mailboxes still busy".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Some(w) = self.workers {
            let _ = w.await;
        }
        self.emu.shutdown().await;
    }
}

/// One page of stored rows, as the engine committed it: one mailbox, resource and container.
struct PageRows {
    graph_user: String,
    resource: Resource,
    items: Vec<SyncedItem>,
}

/// Every row the engine stored, in pages of `page_size` per container.
async fn stored_pages(world: &World, page_size: usize) -> Res<Vec<PageRows>> {
    let mut pages = Vec::new();
    for mb in &world.mailboxes {
        let graph_user = mb.graph_user_id.clone().unwrap_or_default();
        for resource in Resource::ALL {
            let mut by_container: std::collections::BTreeMap<String, Vec<SyncedItem>> = std::collections::BTreeMap::new();
            for item in world.store.mailbox_items(mb.id, resource).await? {
                by_container.entry(item.container.clone()).or_default().push(item);
            }
            for items in by_container.into_values() {
                for chunk in items.chunks(page_size.max(1)) {
                    pages.push(PageRows { graph_user: graph_user.clone(), resource, items: chunk.to_vec() });
                }
            }
        }
    }
    Ok(pages)
}

/// `INSERT INTO sync_items (…) VALUES (…), …` for `rows` rows.
fn insert_statement(rows: usize) -> String {
    const COLUMNS: usize = 14;
    let mut sql = String::from(
        "INSERT INTO sync_items (mailbox_id, org_id, user_id, resource, container, graph_id, title, subtitle, preview, \
         occurred_at, data, search_text, seen_round, updated_at) VALUES ",
    );
    for r in 0..rows {
        let params: Vec<String> = (1..=COLUMNS).map(|c| format!("${}", r * COLUMNS + c)).collect();
        sql.push_str(if r == 0 { "(" } else { ", (" });
        sql.push_str(&params.join(", "));
        sql.push(')');
    }
    sql
}

/// Parents of the rows in the ceiling database: its mailboxes by Graph user, with org and user.
type Owners = std::collections::HashMap<String, (uuid::Uuid, uuid::Uuid, uuid::Uuid)>;

/// One multi-row INSERT per page, one transaction per page, on either backend's pool.
macro_rules! insert_pages {
    ($pool:expr, $begin:expr, $pages:expr, $owners:expr) => {{
        let now = store::now_unix();
        for page in $pages {
            let (mailbox, org, user) = *$owners.get(&page.graph_user).ok_or("a page of an unknown mailbox")?;
            let mut query = sqlx::query(sqlx::AssertSqlSafe(insert_statement(page.items.len())));
            for item in &page.items {
                query = query
                    .bind(mailbox)
                    .bind(org)
                    .bind(user)
                    .bind(page.resource.as_str())
                    .bind(item.container.clone())
                    .bind(item.graph_id.clone())
                    .bind(item.title.clone())
                    .bind(item.subtitle.clone())
                    .bind(item.preview.clone())
                    .bind(item.occurred_at)
                    .bind(item.data.clone())
                    .bind(item.search_text())
                    .bind(1_i64)
                    .bind(now);
            }
            let mut tx = $begin.await?;
            query.execute(&mut *tx).await?;
            tx.commit().await?;
        }
    }};
}

/// The ceiling: the same rows into a second fresh database made by `store::open`, through a pool
/// with the store's own connect options. Returns rows and the time the inserts took.
async fn bulk_insert_ceiling(world: &World, ceiling_url: &str, pages: &[PageRows]) -> Res<(u64, Duration)> {
    let store = store::open(ceiling_url, Arc::new(store::secrets::Keyring::ephemeral())).await?;
    let org = seed_org(&store, &world.client, 0).await?;
    let conn = store.connections_in_org(org).await?.into_iter().next().ok_or("no connection")?;
    let mut owners = Owners::new();
    for mb in &world.mailboxes {
        let graph_user = mb.graph_user_id.clone().unwrap_or_default();
        let new = store::sync::NewSyncMailbox {
            org_id: org,
            connection_id: conn.id,
            user_id: conn.user_id,
            graph_user_id: Some(graph_user.clone()),
        };
        let made = store.ensure_sync_mailbox(&new, store::now_unix()).await?;
        owners.insert(graph_user, (made.id, org.as_uuid(), conn.user_id.as_uuid()));
    }
    drop(store);
    let rows = pages.iter().map(|p| p.items.len() as u64).sum();
    if ceiling_url.starts_with("postgres") {
        let options = <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(ceiling_url)?;
        let pool =
            sqlx::postgres::PgPoolOptions::new().max_connections(16).acquire_timeout(Duration::from_secs(10)).connect_with(options).await?;
        let started = Instant::now();
        insert_pages!(pool, pool.begin(), pages, owners);
        return Ok((rows, started.elapsed()));
    }
    let options = <sqlx::sqlite::SqliteConnectOptions as std::str::FromStr>::from_str(ceiling_url)?
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
        .foreign_keys(true)
        .pragma("secure_delete", "ON")
        .busy_timeout(Duration::from_secs(10));
    let pool = sqlx::sqlite::SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
    let started = Instant::now();
    // As the store writes: the write lock taken at the start (`BEGIN IMMEDIATE`).
    insert_pages!(pool, pool.begin_with("BEGIN IMMEDIATE"), pages, owners);
    Ok((rows, started.elapsed()))
}

/// What the load tool measured.
struct Load {
    connections: usize,
    requests: u64,
    not_ok: u64,
    elapsed: Duration,
}

impl Load {
    fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The deltaLink (or nextLink) a delta page hands on, found without parsing the whole page.
fn next_link(body: &str) -> Option<String> {
    ["\"@odata.deltaLink\":\"", "\"@odata.nextLink\":\""].iter().find_map(|key| {
        let from = body.find(key)? + key.len();
        Some(body[from..].split('"').next()?.replace("\\/", "/"))
    })
}

/// The stored deltaLinks split between `connections`: each connection keeps to one mailbox (at
/// most 4 connections per mailbox, Microsoft's limit) and owns its containers' links alone, since
/// using a link moves its container's sync state on (the emulator, like Graph, keeps the last few).
async fn split_links(world: &World, connections: usize) -> Res<Vec<Vec<String>>> {
    let mut per_mailbox: Vec<Vec<String>> = Vec::new();
    for mb in &world.mailboxes {
        let mine: Vec<String> = world.store.cursors(mb.id).await?.into_iter().filter(|c| c.link_is_delta).filter_map(|c| c.link).collect();
        if !mine.is_empty() {
            per_mailbox.push(mine);
        }
    }
    let m = per_mailbox.len();
    if m == 0 {
        return Err("no deltaLinks stored".into());
    }
    let n = connections.clamp(1, 4 * m);
    let mut out = vec![Vec::new(); n];
    for (k, links) in out.iter_mut().enumerate() {
        let sharers = (0..n).filter(|other| other % m == k % m).count();
        *links = per_mailbox[k % m].iter().enumerate().filter(|(i, _)| i % sharers == k / m).map(|(_, l)| l.clone()).collect();
    }
    out.retain(|l| !l.is_empty());
    Ok(out)
}

/// One connection's loop until `deadline`: GET each of its links in turn with the engine's
/// headers, following the link each answer hands on. Returns (2xx, other) and the links it ended
/// with (the current sync-state generation of each).
async fn load_loop(http: reqwest::Client, token: String, mut links: Vec<String>, deadline: Instant) -> (u64, u64, Vec<String>) {
    let (mut ok, mut not_ok) = (0u64, 0u64);
    for i in (0..links.len()).cycle() {
        if Instant::now() >= deadline {
            break;
        }
        let res = http
            .get(&links[i])
            .header("Authorization", &token)
            .header("Prefer", "IdType=\"ImmutableId\", odata.maxpagesize=100")
            .send()
            .await;
        let body = match res {
            Ok(r) if r.status().is_success() => r.text().await.ok(),
            Ok(r) => {
                if not_ok == 0 {
                    eprintln!("load tool: {} {}", r.status(), r.text().await.unwrap_or_default());
                }
                None
            }
            Err(e) => {
                if not_ok == 0 {
                    eprintln!("load tool: {e}");
                }
                None
            }
        };
        match body.as_deref().and_then(next_link) {
            Some(next) => {
                links[i] = next;
                ok += 1;
            }
            None => not_ok += 1,
        }
    }
    (ok, not_ok, links)
}

/// The emulator's per-request floor: concurrent loops, one per list of `split` (the no-change
/// round's delta GETs: every stored deltaLink, see [`split_links`]), sending them with an app-only
/// token for `secs`. Returns the links the loops ended with, for the next measurement: the ones
/// they started from are stale by then.
async fn request_floor(world: &World, split: Vec<Vec<String>>, secs: f64) -> Res<(Load, Vec<Vec<String>>)> {
    let app = AppRegistration::new(NORTHWIND_TENANT_ID, DEMO_CLIENT_ID, SecretString::from(DEMO_CLIENT_SECRET.to_string()))?;
    let token = format!("Bearer {}", world.client.client_credentials(&app).await?.access_token.expose_secret());
    let http = reqwest::Client::builder().pool_max_idle_per_host(split.len()).build()?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs);
    let tasks: Vec<_> = split.into_iter().map(|links| tokio::spawn(load_loop(http.clone(), token.clone(), links, deadline))).collect();
    let connections = tasks.len();
    let mut load = Load { connections, requests: 0, not_ok: 0, elapsed: Duration::ZERO };
    let mut ended = Vec::new();
    for t in tasks {
        let (ok, not_ok, links) = t.await?;
        load.requests += ok;
        load.not_ok += not_ok;
        ended.push(links);
    }
    load.elapsed = started.elapsed();
    Ok((load, ended))
}

struct Params {
    mailboxes: usize,
    messages: u64,
    load_connections: usize,
    load_secs: f64,
    rounds: usize,
    throttle: bool,
    throttle_window_secs: f64,
    throttle_mailboxes: Option<usize>,
}

impl Params {
    fn from_env() -> Params {
        Params {
            mailboxes: env_or("BENCH_MAILBOXES", 20) as usize,
            messages: env_or("BENCH_MESSAGES", 500),
            load_connections: env_or("BENCH_LOAD_CONNECTIONS", 16) as usize,
            load_secs: env_or("BENCH_LOAD_SECS", 3) as f64,
            rounds: (env_or("BENCH_ROUNDS", 3) as usize).max(1),
            throttle: env_or("BENCH_THROTTLE", 1) != 0,
            throttle_window_secs: env_or("BENCH_THROTTLE_WINDOW_SECS", 15) as f64,
            throttle_mailboxes: std::env::var("BENCH_THROTTLE_MAILBOXES").ok().and_then(|v| v.parse().ok()),
        }
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

/// The median of some timings.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The no-change round against the emulator's floor: `p.rounds` rounds back to back, then as many
/// floor measurements, each figure the median of its own. The floors come last because the load
/// tool's delta GETs start new sync-state generations, and Outlook keeps only a few: a round after
/// them would find the links it stored gone (410) and sync those mailboxes again.
async fn no_change_against_floor(p: &Params, world: &World) -> Res<()> {
    let mut rounds = Vec::new();
    for i in 1..=p.rounds {
        let quiet = world.no_change_round(Duration::from_secs(600)).await?;
        println!(
            "no-change round {i}/{}: {:.3} s, {} Graph requests ({:.1} per mailbox; {} of the round trips were $batch requests \
             carrying the listings and delta GETs), {} items written, {} failed runs",
            p.rounds,
            quiet.elapsed.as_secs_f64(),
            quiet.graph_requests,
            quiet.graph_requests as f64 / world.mailboxes.len().max(1) as f64,
            quiet.batches,
            quiet.items,
            quiet.failed_runs
        );
        rounds.push(quiet);
    }
    let mut rates = Vec::new();
    let mut links = split_links(world, p.load_connections).await?;
    for i in 1..=p.rounds {
        let (load, ended) = request_floor(world, links, p.load_secs).await?;
        links = ended;
        println!(
            "emulator floor {i}/{} (load tool, {} connections, {:.1} s of delta GETs): {:.0} requests/s ({} not 2xx)",
            p.rounds,
            load.connections,
            load.elapsed.as_secs_f64(),
            load.per_second(),
            load.not_ok
        );
        rates.push(load.per_second());
    }
    let requests = rounds[0].graph_requests;
    if rounds.iter().any(|r| r.graph_requests != requests || r.items != 0) {
        return Err("the no-change rounds differ: one of them wrote items or sent other requests".into());
    }
    let round = median(rounds.iter().map(|r| r.elapsed.as_secs_f64()).collect());
    let per_request = 1.0 / median(rates);
    let floor = requests as f64 * per_request;
    let ratio = round / floor.max(1e-9);
    println!(
        "no-change round / (requests × floor), medians of {}: {round:.3} s / ({requests} × {:.1} µs = {floor:.3} s) = {ratio:.2} \
         (goal ≤ {FLOOR_GOAL}: {})",
        p.rounds,
        per_request * 1e6,
        verdict(ratio <= FLOOR_GOAL)
    );
    Ok(())
}

/// Item 1's first two figures: the first full sync against the bulk-insert ceiling, the no-change
/// round against the emulator's floor. Returns the most requests one mailbox's first sync made.
async fn sync_and_floor(p: &Params, dir: &std::path::Path, databases: &mut Vec<String>) -> Res<u64> {
    let (url, name) = fresh_database(dir, "engine").await?;
    databases.extend(name);
    let mut world = World::new(p.mailboxes, p.messages, ThrottleConfig::default(), url).await?;
    let cfg = world.scheduler.engine().config().clone();
    println!(
        "{} mailboxes × {} messages (+ 25 events, 30 contacts, 20 tasks each), {}, application permissions; the scheduler's loop \
         with the server's defaults: pages of {}, {} mailboxes at once, Microsoft's limits on",
        world.mailboxes.len(),
        p.messages,
        if world.url.starts_with("postgres") { "PostgreSQL" } else { "SQLite" },
        cfg.page_size,
        cfg.max_concurrent_mailboxes
    );
    let first = world.first_sync(Duration::from_secs(1800)).await?;
    let per_mailbox =
        world.emu.counters().mailboxes.iter().filter(|m| m.mailbox.starts_with("user")).map(|m| m.requests).max().unwrap_or(0);
    let rate = first.items as f64 / first.elapsed.as_secs_f64();
    println!(
        "first full sync: {} items in {:.2} s = {rate:.0} items/s ({} Graph requests, {} failed runs)",
        first.items,
        first.elapsed.as_secs_f64(),
        first.graph_requests,
        first.failed_runs
    );

    no_change_against_floor(p, &world).await?;

    let pages = stored_pages(&world, cfg.page_size as usize).await?;
    let (ceiling_url, name) = fresh_database(dir, "ceiling").await?;
    databases.extend(name);
    let (rows, took) = bulk_insert_ceiling(&world, &ceiling_url, &pages).await?;
    let ceiling = rows as f64 / took.as_secs_f64();
    println!(
        "ceiling: the same {rows} rows bulk-inserted into a fresh store database ({} pages, one {}-row INSERT and one transaction each): \
         {:.2} s = {ceiling:.0} rows/s",
        pages.len(),
        cfg.page_size,
        took.as_secs_f64()
    );
    println!(
        "first full sync / ceiling = {rate:.0} / {ceiling:.0} = {:.2} (goal ≥ {CEILING_GOAL}: {})",
        rate / ceiling,
        verdict(rate / ceiling >= CEILING_GOAL)
    );
    world.shutdown().await;
    Ok(per_mailbox)
}

/// Item 1's third figure: a first sync under Microsoft's limits scaled down so the bound is about
/// a minute; achieved rate / throttle-bound rate and the 429s.
async fn under_limits(p: &Params, dir: &std::path::Path, requests_per_mailbox: u64, databases: &mut Vec<String>) -> Res<()> {
    let limit = requests_per_mailbox.div_ceil(THROTTLE_WINDOWS).max(1);
    let window = Duration::from_secs_f64(p.throttle_window_secs);
    let throttling =
        ThrottleConfig { enabled: true, max_concurrent_per_mailbox: 4, max_requests_per_window: u32::try_from(limit)?, window };
    let concurrency = SyncConfig::default().max_concurrent_mailboxes;
    let mailboxes = p.throttle_mailboxes.unwrap_or(concurrency.min(p.mailboxes));
    let (url, name) = fresh_database(dir, "throttled").await?;
    databases.extend(name);
    let mut world = World::new(mailboxes, p.messages, throttling, url).await?;
    let first = world.first_sync(Duration::from_secs(1800)).await?;
    let counters = world.emu.counters();
    let bench: Vec<_> = counters.mailboxes.iter().filter(|m| m.mailbox.starts_with("user")).collect();
    let served: Vec<u64> = bench.iter().map(|m| m.requests - m.throttled).collect();
    let bound_secs = served.iter().map(|r| (r.saturating_sub(1) / limit) as f64 * window.as_secs_f64()).fold(0.0, f64::max);
    let total: u64 = served.iter().sum();
    let throttled: u64 = bench.iter().map(|m| m.throttled).sum();
    let over_concurrency = bench.iter().filter(|m| m.max_concurrency > 4).count();
    let max_concurrency = bench.iter().map(|m| m.max_concurrency).max().unwrap_or(0);
    let ratio = bound_secs / first.elapsed.as_secs_f64();
    println!(
        "under Microsoft's limits scaled down ({limit} requests per {:.0} s per mailbox, 4 at once; {mailboxes} mailboxes, {concurrency} at once): \
         first sync {} items, {total} requests served in {:.2} s; throttle bound {bound_secs:.1} s",
        window.as_secs_f64(),
        first.items,
        first.elapsed.as_secs_f64()
    );
    println!(
        "achieved rate / throttle-bound rate = {:.2} / {:.2} requests/s = {ratio:.2} (goal ≥ {THROTTLE_GOAL}: {}); {throttled} 429s \
         (rate), concurrency 429s: {} (most requests in flight for one mailbox: {max_concurrency}; goal 0: {})",
        total as f64 / first.elapsed.as_secs_f64(),
        total as f64 / bound_secs.max(1e-9),
        verdict(ratio >= THROTTLE_GOAL),
        if over_concurrency == 0 { "0".to_owned() } else { format!("some, in {over_concurrency} mailboxes") },
        verdict(over_concurrency == 0)
    );
    world.shutdown().await;
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Res<()> {
    let p = Params::from_env();
    println!("bench_sync: load average at start {} ({} CPUs)", load_average(), std::thread::available_parallelism().map_or(1, |n| n.get()));
    let dir = tempfile::tempdir()?;
    let mut databases = Vec::new();
    let per_mailbox = sync_and_floor(&p, dir.path(), &mut databases).await?;
    if p.throttle {
        under_limits(&p, dir.path(), per_mailbox, &mut databases).await?;
    }
    println!("peak memory (this process, emulator included): {:.0} MB; load average at the end {}", peak_rss_mb(), load_average());
    drop_databases(&databases).await?;
    Ok(())
}
