//! Freshness with change notifications against polling: `make bench-fresh`
//! (`cargo run --release -p server --example bench_fresh`).
//!
//! Two worlds, one after the other in the same run, each with `BENCH_FRESH_MAILBOXES` mailboxes
//! (default 30) connected by signing their users in through an in-process emulator, the server's
//! real router on a loopback port (its `/webhooks/microsoft/...` routes receive what the emulator
//! posts) and the production scheduler loop ([`sync::Scheduler::spawn`]) with the server's own sync
//! configuration ([`server::http::sync_config`]), over a fresh SQLite file (or, with
//! `BENCH_FRESH_POSTGRES_URL`, a fresh database on that PostgreSQL server):
//!
//! - **A, notifications**: once every mailbox is live (first sync done, subscriptions made),
//!   `BENCH_FRESH_CHANGES` new mails (default 100) land in random mailboxes' inboxes at random
//!   moments; freshness is the time from the emulator accepting a mail to the Activity query
//!   finding it in the database (checked every 10 ms).
//! - **B, polling only** (`notification_urls: None`, what a deployment without an https URL gets)
//!   at the organization's interval, `BENCH_FRESH_POLL_MINUTES` (default 15, the product's
//!   default): one new mail per mailbox at a uniformly random moment of its polling interval.
//!
//! Then the Graph requests an idle mailbox costs in each mode: one idle round per mailbox is run
//! and counted in each world (the polling round; the live mailbox's safety round), one renewal pass
//! is forced in world A (Microsoft's `reauthorizationRequired`), and the hourly cost follows from
//! the schedule (formulas printed). Exits non-zero when issue 12's goals are missed: p50 with
//! notifications ≥ 50× better than polling, ≥ 10× fewer Graph requests per idle mailbox per hour.

use domain::permissions::ConnectionMode;
use domain::{AuditEntry, ChangeDelivery, ConnectionKind, OrgId, Resource, Role, UserId};
use m365_emulator::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, EmulatorConfig, Fixture, Kind, MailboxCounts, NORTHWIND_TENANT_ID, UserFixture};
use microsoft::{AppRegistration, Endpoints, ExposeSecret, MicrosoftClient, SecretString, parse_callback};
use server::{MicrosoftEndpoints, ServeConfig, metrics::Metrics};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::DynStore;
use store::sync::ItemQuery;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const REDIRECT: &str = "http://127.0.0.1:4010/oauth/office365/callback";
const SCOPES: &str = "openid profile email offline_access User.Read Mail.Read Calendars.Read Contacts.Read Tasks.Read";
/// How often a watcher asks the database whether the new mail is there.
const PROBE_EVERY: Duration = Duration::from_millis(10);

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// xorshift64*: reproducible with `BENCH_FRESH_SEED`, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

struct Mailbox {
    /// The schedule row (its id, user, ...).
    row: store::sync::SyncMailbox,
    user: UserId,
    upn: String,
}

struct World {
    emu: Arc<m365_emulator::RunningEmulator>,
    store: DynStore,
    scheduler: Arc<sync::Scheduler>,
    org: OrgId,
    mailboxes: Vec<Mailbox>,
    stop: tokio::sync::watch::Sender<bool>,
    workers: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

fn upn(i: usize) -> String {
    format!("bench{i:04}@northwind.test")
}

/// A fresh SQLite file in `dir`; with `BENCH_FRESH_POSTGRES_URL` (a PostgreSQL server and a
/// database to connect to, e.g. `postgres://postgres@127.0.0.1:55432/postgres`), a fresh database
/// on that server, one per world.
async fn database_url(dir: &tempfile::TempDir, label: &str) -> Res<String> {
    let Ok(admin_url) = std::env::var("BENCH_FRESH_POSTGRES_URL") else {
        return Ok(format!("sqlite://{}", dir.path().join("fresh.db").display()));
    };
    use sqlx::Connection;
    let name = format!("bench_fresh_{}_{label}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await?;
    let base = admin_url.rsplit_once('/').map_or(admin_url.as_str(), |(b, _)| b);
    Ok(format!("{base}/{name}"))
}

/// One product instance and its Microsoft: `notifications` decides whether the sync configuration
/// keeps the notification URLs the server derived from its public URL.
async fn start_world(label: &str, mailboxes: usize, notifications: bool, interval_minutes: u32) -> Res<World> {
    let mut fixture = Fixture::demo_today();
    fixture.add_redirect_uri(REDIRECT);
    let template = fixture.tenants[0].users[1].clone();
    for i in 0..mailboxes {
        fixture.tenants[0].users.push(UserFixture {
            id: format!("f0000000-0000-4000-8000-{i:012}"),
            user_principal_name: upn(i),
            display_name: format!("Fresh User {i}"),
            ..template.clone()
        });
    }
    // Small mailboxes: what is measured here is the latency of one change, not the first sync.
    fixture.set_all_counts(MailboxCounts { messages: 60, events: 10, contacts: 10, tasks: 5 });
    let mut emu_config = EmulatorConfig::new(fixture);
    emu_config.control_api = true;
    let emu = Arc::new(m365_emulator::spawn(emu_config).await?);

    let dir = tempfile::tempdir()?;
    let store = store::open(&database_url(&dir, label).await?, Arc::new(store::secrets::Keyring::ephemeral())).await?;
    let org = store.create_organization("Northwind").await?.id;
    let settings = domain::office365::Office365Settings {
        enabled: true,
        own_app: true,
        pinned_tenant: None,
        deployment_client_id: None,
        tenant: NORTHWIND_TENANT_ID.into(),
        client_id: DEMO_CLIENT_ID.into(),
        client_secret_set: true,
        mode: ConnectionMode::Individual,
        sync_interval_minutes: interval_minutes,
        ..Default::default()
    };
    store.save_office365_settings(org, &settings, Some(&store::secrets::SecretString::from(DEMO_CLIENT_SECRET)), &[]).await?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let serve = ServeConfig {
        bind: addr,
        site_root: dir.path().join("site"),
        public_url: format!("http://{addr}"),
        microsoft: MicrosoftEndpoints { authority: emu.login_base(), graph: emu.graph_base() },
        deployment_app: None,
        shared_tenants: false,
        trusted_proxies: server::client_address::TrustedProxies::default(),
        edge: Default::default(),
        session_idle_timeout: std::time::Duration::from_secs(store::accounts::SESSION_IDLE_SECS.unsigned_abs()),
    };
    let mut sync_config = server::http::sync_config(&serve);
    if notifications && sync_config.notification_urls.is_none() {
        return Err("the server derived no notification URLs for a loopback emulator".into());
    }
    if !notifications {
        sync_config.notification_urls = None;
    }
    let scheduler = server::http::sync_scheduler_with(store.clone(), &serve, sync_config)?;
    let router = server::router(store.clone(), scheduler.clone(), &serve, Arc::new(Metrics::default()))?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await {
            eprintln!("server stopped: {e}");
        }
    });

    // Every member connects her own mailbox, signing in through the emulator's pages.
    let client = MicrosoftClient::new(Endpoints::parse(&emu.login_base(), &emu.graph_base())?)?;
    let app = AppRegistration::new(NORTHWIND_TENANT_ID, DEMO_CLIENT_ID, SecretString::from(DEMO_CLIENT_SECRET.to_string()))?;
    for i in 0..mailboxes {
        let email = upn(i);
        let user = store::accounts::create_user(store.as_ref(), org, &email, &email, Role::Member, "bench-password-1").await?;
        let req = client.authorization_request(&app, REDIRECT, SCOPES, Some(&email), None)?;
        let back = m365_emulator::testkit::sign_in(req.url.as_str(), &email).await?;
        let cb = parse_callback(back.query())?;
        let signed = client.exchange_code(&app, &cb.code, REDIRECT, &req.pkce_verifier, &req.nonce).await?;
        store
            .save_connection(
                &store::NewConnection {
                    org_id: org,
                    user_id: user.id,
                    kind: ConnectionKind::Individual,
                    is_primary: false,
                    ms_tenant_id: signed.identity.tenant_id.clone(),
                    ms_object_id: signed.identity.object_id.clone(),
                    ms_username: email.clone(),
                    ms_name: email.clone(),
                    granted_scopes: signed.tokens.granted_scopes.clone(),
                    access_token: store::secrets::SecretString::from(signed.tokens.access_token.expose_secret().to_string()),
                    access_expires_at: signed.tokens.expires_at.unix_timestamp(),
                    refresh_token: signed
                        .tokens
                        .refresh_token
                        .as_ref()
                        .map(|r| store::secrets::SecretString::from(r.expose_secret().to_string())),
                },
                &AuditEntry { at: store::now_unix(), actor: email.clone(), action: "connect".into(), summary: "connected".into() },
            )
            .await?;
    }
    // What the OAuth callback does after saving a connection; then the production loop.
    scheduler.reconcile_org(org).await?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let workers = scheduler.clone().spawn(stopped);
    let mut list = Vec::new();
    for mb in store.sync_mailboxes_in_org(org).await? {
        let conn = store.connections_in_org(org).await?.into_iter().find(|c| c.id == mb.connection_id).ok_or("connection")?;
        list.push(Mailbox { user: mb.user_id, upn: conn.ms_username.clone(), row: mb });
    }
    if list.len() != mailboxes {
        return Err(format!("{} mailboxes scheduled for {mailboxes} connections", list.len()).into());
    }
    Ok(World { emu, store, scheduler, org, mailboxes: list, stop, workers, _dir: dir })
}

impl World {
    /// Waits until every mailbox finished its first sync and, with notifications, is live.
    async fn ready(&self, live: bool, timeout: Duration) -> Res<Duration> {
        let started = Instant::now();
        let settings = self.store.office365_settings(self.org).await?;
        loop {
            let mut done = 0;
            for mb in self.store.sync_mailboxes_in_org(self.org).await? {
                let Some(st) = self.store.mailbox_status(mb.id).await? else { continue };
                let synced = !st.resources.is_empty() && st.resources.iter().all(|r| r.first_sync_done);
                let idle = st.mailbox.lease_owner.is_none() || st.mailbox.lease_expires_at < store::now_unix();
                let delivered = !live || self.scheduler.engine().change_delivery(&settings, &mb).await? == ChangeDelivery::Live;
                if synced && idle && delivered {
                    done += 1;
                }
            }
            if done == self.mailboxes.len() {
                return Ok(started.elapsed());
            }
            if started.elapsed() > timeout {
                return Err(format!("only {done} of {} mailboxes ready after {timeout:?}", self.mailboxes.len()).into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until no mailbox is leased and none is due before `after` (unix seconds).
    async fn settled(&self, after: i64, timeout: Duration) -> Res<()> {
        let started = Instant::now();
        loop {
            let mut busy = 0;
            for mb in &self.mailboxes {
                let st = self.store.mailbox_status(mb.row.id).await?.ok_or("mailbox gone")?;
                let leased = st.mailbox.lease_owner.is_some() && st.mailbox.lease_expires_at >= store::now_unix();
                if leased || st.mailbox.next_due_at <= after || !st.mailbox.notified.is_empty() {
                    busy += 1;
                }
            }
            if busy == 0 {
                return Ok(());
            }
            if started.elapsed() > timeout {
                return Err(format!("{busy} mailboxes still busy after {timeout:?}").into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn graph_requests(&self) -> u64 {
        self.scheduler.engine().metrics().snapshot().graph_requests()
    }

    /// Graph requests the emulator served (identity platform excluded).
    fn emulator_graph_requests(&self) -> u64 {
        self.emu.counters().requests.iter().filter(|r| !is_identity_route(&r.route)).map(|r| r.count).sum()
    }

    /// One idle round of every mailbox, run by the production loop (`sync_now` makes each due):
    /// Graph requests per mailbox, counted by the engine and by the emulator (whose routes are
    /// printed).
    async fn idle_round(&self) -> Res<(f64, f64)> {
        self.settled(0, Duration::from_secs(120)).await?;
        let (engine0, emu0) = (self.graph_requests(), self.emulator_graph_requests());
        let routes0 = self.emu.counters().requests;
        let asked = store::now_unix();
        for mb in &self.mailboxes {
            self.scheduler.sync_now(mb.row.id).await?;
        }
        self.settled(asked, Duration::from_secs(120)).await?;
        let n = self.mailboxes.len() as f64;
        for r in self.emu.counters().requests {
            let before = routes0.iter().find(|b| b.route == r.route && b.status == r.status).map_or(0, |b| b.count);
            if r.count > before {
                println!("     {:>5.2} per mailbox  {} {}", (r.count - before) as f64 / n, r.status, r.route);
            }
        }
        Ok(((self.graph_requests() - engine0) as f64 / n, (self.emulator_graph_requests() - emu0) as f64 / n))
    }

    async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.workers.await;
        if let Ok(emu) = Arc::try_unwrap(self.emu) {
            emu.shutdown().await;
        }
    }
}

fn is_identity_route(route: &str) -> bool {
    let r = route.to_ascii_lowercase();
    r.contains("oauth2")
        || r.contains("token")
        || r.contains("authorize")
        || r.contains("login")
        || r.contains("discovery")
        || r.contains("keys")
}

/// Adds one new mail to `upn`'s inbox and waits for it in the product's database. `None` when it
/// did not arrive within `deadline`.
async fn one_change(
    store: DynStore,
    emu_add: impl FnOnce(&str) -> Res<()>,
    org: OrgId,
    user: UserId,
    tag: String,
    deadline: Duration,
) -> Res<Option<Duration>> {
    let started = Instant::now();
    emu_add(&tag)?;
    let q = ItemQuery { org_id: org, user_id: user, resource: Some(Resource::Mail), text: Some(tag), offset: 0, limit: 1 };
    loop {
        if !store.activity_items(&q).await?.is_empty() {
            return Ok(Some(started.elapsed()));
        }
        if started.elapsed() > deadline {
            return Ok(None);
        }
        tokio::time::sleep(PROBE_EVERY).await;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn human(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{:.0} ms", s * 1000.0)
    } else if s < 120.0 {
        format!("{s:.2} s")
    } else {
        format!("{:.2} min", s / 60.0)
    }
}

struct Freshness {
    sorted: Vec<Duration>,
    missed: usize,
}

impl Freshness {
    fn p50(&self) -> Duration {
        percentile(&self.sorted, 0.50)
    }
    fn p99(&self) -> Duration {
        percentile(&self.sorted, 0.99)
    }
    fn line(&self) -> String {
        format!(
            "p50 {}, p99 {}, min {}, max {} over {} changes{}",
            human(self.p50()),
            human(self.p99()),
            human(self.sorted.first().copied().unwrap_or_default()),
            human(self.sorted.last().copied().unwrap_or_default()),
            self.sorted.len(),
            if self.missed > 0 { format!(", {} NEVER ARRIVED", self.missed) } else { String::new() }
        )
    }
}

async fn collect(handles: Vec<tokio::task::JoinHandle<Res<Option<Duration>>>>) -> Res<Freshness> {
    let mut sorted = Vec::new();
    let mut missed = 0;
    for h in handles {
        match h.await.map_err(|e| e.to_string())?? {
            Some(d) => sorted.push(d),
            None => missed += 1,
        }
    }
    sorted.sort();
    Ok(Freshness { sorted, missed })
}

fn adder(emu: &Arc<m365_emulator::RunningEmulator>, upn: &str) -> impl FnOnce(&str) -> Res<()> + use<> {
    let emu = emu.clone();
    let upn = upn.to_owned();
    move |tag: &str| {
        emu.add_item(&upn, Kind::Message, Some("inbox"), serde_json::json!({ "subject": format!("Freshness probe {tag}") }))?;
        Ok(())
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> Res<()> {
    let mailboxes = env_or("BENCH_FRESH_MAILBOXES", 30) as usize;
    let changes = env_or("BENCH_FRESH_CHANGES", 100) as usize;
    let poll_minutes = env_or("BENCH_FRESH_POLL_MINUTES", 15) as u32;
    let default_minutes = domain::office365::Office365Settings::default().sync_interval_minutes;
    let seed = env_or("BENCH_FRESH_SEED", u64::from(std::process::id()) | 1);
    let mut rng = Rng(seed);
    let nonce = rng.next() % 1_000_000;
    let backend = if std::env::var("BENCH_FRESH_POSTGRES_URL").is_ok() { "PostgreSQL" } else { "SQLite" };
    println!("bench_fresh: {mailboxes} mailboxes per mode, {backend}, release build, seed {seed}");

    // ---------------------------------------------------------------- A: change notifications
    let a = start_world("a", mailboxes, true, default_minutes).await?;
    let ready = a.ready(true, Duration::from_secs(300)).await?;
    let subs = a.emu.subscriptions().len();
    println!(
        "A, notifications: {mailboxes} mailboxes first-synced and live in {:.1} s, {subs} subscriptions at the emulator ({:.1} per mailbox)",
        ready.as_secs_f64(),
        subs as f64 / mailboxes as f64
    );
    let cfg = a.scheduler.engine().config().clone();
    let mut handles = Vec::new();
    for k in 0..changes {
        // Random moments: gaps uniform in [0, 400) ms, so changes overlap and hit busy mailboxes.
        tokio::time::sleep(Duration::from_secs_f64(rng.unit() * 0.4)).await;
        let mb = &a.mailboxes[rng.below(a.mailboxes.len())];
        let add = adder(&a.emu, &mb.upn);
        handles.push(tokio::spawn(one_change(a.store.clone(), add, a.org, mb.user, format!("a-{nonce}-{k}"), Duration::from_secs(120))));
    }
    let fresh_a = collect(handles).await?;
    println!("A, notifications: freshness {}", fresh_a.line());

    // Idle cost with notifications: the safety round, and one renewal pass.
    let (safety_round_engine, safety_round) = a.idle_round().await?;
    a.settled(0, Duration::from_secs(60)).await?;
    let m0 = a.scheduler.engine().metrics().snapshot();
    let sub_route0 = a.emu.counters().requests_matching("subscriptions", None);
    let engine0 = a.graph_requests();
    for mb in &a.mailboxes {
        a.emu.send_lifecycle_event(None, Some(&mb.upn), "reauthorizationRequired");
    }
    let renew_started = Instant::now();
    loop {
        let renewed = a.scheduler.engine().metrics().snapshot().subscriptions_renewed - m0.subscriptions_renewed;
        if renewed as usize >= subs {
            break;
        }
        if renew_started.elapsed() > Duration::from_secs(120) {
            return Err(format!("only {renewed} of {subs} subscriptions renewed after reauthorizationRequired").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.settled(0, Duration::from_secs(60)).await?;
    let m1 = a.scheduler.engine().metrics().snapshot();
    let renewed = m1.subscriptions_renewed - m0.subscriptions_renewed;
    let renew_requests = a.emu.counters().requests_matching("subscriptions", None) - sub_route0;
    let lifecycle_run_requests = a.graph_requests() - engine0;
    let per_renewal = renew_requests as f64 / renewed.max(1) as f64;
    let subs_per_mailbox = subs as f64 / mailboxes as f64;
    println!(
        "A, notifications: idle safety round = {safety_round:.1} Graph requests per mailbox served by the emulator (the engine counted {safety_round_engine:.1}); \
         renewal pass: {renewed} subscriptions renewed with {renew_requests} subscription requests = {per_renewal:.2} per subscription \
         ({lifecycle_run_requests} Graph requests in those lifecycle-triggered runs in all)"
    );
    a.shutdown().await;

    // ---------------------------------------------------------------- B: polling only
    let b = start_world("b", mailboxes, false, poll_minutes).await?;
    let ready = b.ready(false, Duration::from_secs(300)).await?;
    println!(
        "B, polling only every {poll_minutes} min (notification URLs off): {mailboxes} mailboxes first-synced in {:.1} s; \
         one new mail per mailbox at a uniformly random moment of its interval; this takes about {poll_minutes} minutes",
        ready.as_secs_f64()
    );
    let interval = Duration::from_secs(u64::from(poll_minutes) * 60);
    let mut handles = Vec::new();
    let mut clamped = 0;
    let (now_unix, now) = (store::now_unix(), Instant::now());
    for (k, mb) in b.mailboxes.iter().enumerate() {
        let st = b.store.mailbox_status(mb.row.id).await?.ok_or("mailbox gone")?;
        // The change lands u·interval before the mailbox's next poll, u uniform in [0, 1).
        let due = now + Duration::from_secs(u64::try_from(st.mailbox.next_due_at - now_unix).unwrap_or(0));
        let before = interval.mul_f64(rng.unit());
        let at = due.checked_sub(before).filter(|t| *t >= now).unwrap_or_else(|| {
            clamped += 1;
            now
        });
        let add = adder(&b.emu, &mb.upn);
        let (store, org, user, tag) = (b.store.clone(), b.org, mb.user, format!("b-{nonce}-{k}"));
        let deadline = interval * 2 + Duration::from_secs(120);
        handles.push(tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            one_change(store, add, org, user, tag, deadline).await
        }));
    }
    let fresh_b = collect(handles).await?;
    println!("B, polling only every {poll_minutes} min: freshness {}", fresh_b.line());
    if clamped > 0 {
        println!("   ({clamped} changes were due before the run reached them and were made at once)");
    }
    let (poll_round_engine, poll_round) = b.idle_round().await?;
    println!(
        "B, polling only: idle polling round = {poll_round:.1} Graph requests per mailbox served by the emulator (the engine counted {poll_round_engine:.1})"
    );
    b.shutdown().await;

    // ---------------------------------------------------------------- figures
    let live_hours = cfg.live_poll_every.as_secs_f64() / 3600.0;
    let renew_hours = cfg.subscription_lifetime_minutes as f64 / 60.0 - cfg.subscription_renew_before.as_secs_f64() / 3600.0;
    let notif_hour = safety_round / live_hours + subs_per_mailbox * per_renewal / renew_hours;
    let poll_hour_default = poll_round * 60.0 / f64::from(default_minutes);
    let poll_hour_measured = poll_round * 60.0 / f64::from(poll_minutes);
    println!();
    println!("Graph requests per idle mailbox per hour (measured request counts × the schedule):");
    println!(
        "  polling:       round × 60 / interval = {poll_round:.1} × 60 / {default_minutes} = {poll_hour_default:.2}   (default {default_minutes}-minute interval)"
    );
    if poll_minutes != default_minutes {
        println!(
            "                 at the measured {poll_minutes}-minute interval: {poll_round:.1} × 60 / {poll_minutes} = {poll_hour_measured:.2}"
        );
    }
    println!(
        "  notifications: safety round / {live_hours:.0} h + subscriptions × requests per renewal / (lifetime − renew-before) \
         = {safety_round:.1} / {live_hours:.0} + {subs_per_mailbox:.1} × {per_renewal:.2} / ({:.1} h − {:.0} h) = {notif_hour:.3}",
        cfg.subscription_lifetime_minutes as f64 / 60.0,
        cfg.subscription_renew_before.as_secs_f64() / 3600.0
    );
    let latency_ratio = fresh_b.p50().as_secs_f64() / fresh_a.p50().as_secs_f64().max(1e-9);
    let request_ratio = poll_hour_default / notif_hour.max(1e-9);
    println!();
    println!("freshness p50: polling {} / notifications {} = {latency_ratio:.0}×", human(fresh_b.p50()), human(fresh_a.p50()));
    println!("freshness p99: polling {} / notifications {}", human(fresh_b.p99()), human(fresh_a.p99()));
    if poll_minutes != default_minutes {
        println!(
            "  polling was MEASURED at {poll_minutes} min, not the default {default_minutes}: the ratio above is for {poll_minutes} min. \
             Scaled linearly to {default_minutes} min (polling freshness is proportional to the interval), it would be {:.0}×.",
            latency_ratio * f64::from(default_minutes) / f64::from(poll_minutes)
        );
    }
    println!("requests per idle mailbox per hour: polling {poll_hour_default:.2} / notifications {notif_hour:.3} = {request_ratio:.0}×");

    let mut failed = Vec::new();
    if fresh_a.missed > 0 || fresh_b.missed > 0 {
        failed.push("some changes never reached the database".to_owned());
    }
    if latency_ratio < 50.0 {
        failed.push(format!("p50 ratio {latency_ratio:.1}× < 50× (at the measured {poll_minutes}-minute interval)"));
    }
    if request_ratio < 10.0 {
        failed.push(format!("request ratio {request_ratio:.1}× < 10×"));
    }
    if failed.is_empty() {
        println!("issue 12 goals (p50 ≥ 50× better, ≥ 10× fewer idle requests): MET");
        Ok(())
    } else {
        println!("issue 12 goals MISSED: {}", failed.join("; "));
        std::process::exit(1);
    }
}
