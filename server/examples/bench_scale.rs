//! The scale check of the real server: `make bench-scale`
//! (`cargo build --release -p server -p m365-emulator && cargo run --release -p server --example bench_scale`).
//!
//! Starts the emulator binary (`m365-emulator`, Microsoft's limits on) as a process of its own with
//! a fixture of `BENCH_SCALE_MAILBOXES` mailboxes (default 1,000) of `BENCH_SCALE_MESSAGES` messages
//! each (default 50; plus 25 events, 30 contacts and 20 tasks), seeds a fresh SQLite database with
//! one organization in application-permissions mode whose service account users are those
//! mailboxes (what activating it after admin consent and adding the users leaves), then starts the
//! server binary on that database against the emulator and measures, from outside as an operator
//! would:
//!
//! - the first round: from the server's start until every mailbox's first sync is done;
//! - a no-change round: the admin's "Sync now" (every mailbox of the service connection) until
//!   every mailbox synced again;
//! - the Graph requests of each (the emulator's counters, identity platform excluded);
//! - the server process's peak RSS (`VmHWM`);
//! - the Team connections page's load time, signed in as the admin (after the first round).
//!
//! The binaries are found next to this example's directory (`<target>/<profile>/`), or at
//! `BENCH_SERVER_BIN` and `BENCH_EMULATOR_BIN`. Their logs go to files in a temporary directory,
//! printed when something fails.

use domain::permissions::ConnectionMode;
use domain::{AuditEntry, ConnectionKind, OrgId, Role, ServiceAccountUser};
use m365_emulator::{AdminGrantFixture, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Fixture, NORTHWIND_TENANT_ID};
use microsoft::{AppRegistration, Endpoints, ExposeSecret, MicrosoftClient, SecretString};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const ADMIN: &str = "admin@northwind.test";
const ADMIN_PASSWORD: &str = "bench-scale-password";
const TEAM_PAGE: &str = "/settings/integrations/office365/team";
/// Resources each mailbox syncs (mail, calendar, contacts, tasks).
const RESOURCES: i64 = 4;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map_or_else(|_| "unknown".into(), |s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

/// `VmHWM` and `VmRSS` of a process, in MB.
fn memory_mb(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// A binary built next to this example (`<target>/<profile>/examples/bench_scale`), or `env`'s.
fn binary(name: &str, env: &str) -> Res<PathBuf> {
    if let Ok(path) = std::env::var(env) {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe()?;
    let dir = exe.parent().and_then(Path::parent).ok_or("no target directory")?;
    let path = dir.join(name);
    if !path.exists() {
        return Err(format!(
            "{} is missing: build it first (`cargo build --release -p server -p m365-emulator`) or set {env}",
            path.display()
        )
        .into());
    }
    Ok(path)
}

fn free_port() -> Res<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A child process of this benchmark, stopped (by its own pid) when dropped.
struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    fn start(program: &Path, args: &[&str], log: PathBuf) -> Res<Process> {
        let out = std::fs::File::create(&log)?;
        let child =
            Command::new(program).args(args).env("RUST_LOG", "warn").stdin(Stdio::null()).stdout(out.try_clone()?).stderr(out).spawn()?;
        Ok(Process { child, log })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `url` answers 2xx (the process is up).
async fn wait_up(http: &reqwest::Client, url: &str, process: &mut Process, timeout: Duration) -> Res<()> {
    let started = Instant::now();
    loop {
        if let Ok(r) = http.get(url).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        if let Some(status) = process.child.try_wait()? {
            return Err(format!("{url}: the process ended ({status}):\n{}", process.log_tail()).into());
        }
        if started.elapsed() > timeout {
            return Err(format!("{url} not up after {timeout:?}:\n{}", process.log_tail()).into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn bench_user_id(i: usize) -> String {
    Fixture::bench_user_id(i)
}

fn bench_upn(i: usize) -> String {
    Fixture::bench_upn("scale", i)
}

/// The demo world plus `mailboxes` users with mailboxes, the app's application permissions
/// consented for Northwind.
fn fixture(mailboxes: usize, messages: u64) -> Fixture {
    let mut fixture = Fixture::demo_with_bench_users("scale", mailboxes, messages);
    let application = ["Mail.Read", "Calendars.Read", "Contacts.Read", "Tasks.Read.All", "User.Read.All"];
    fixture.tenants[0].admin_grants.push(AdminGrantFixture {
        client_id: DEMO_CLIENT_ID.into(),
        delegated: Vec::new(),
        application: application.iter().map(|s| (*s).to_owned()).collect(),
    });
    fixture
}

fn audit(action: &str) -> AuditEntry {
    AuditEntry { at: store::now_unix(), actor: "bench".into(), action: action.into(), summary: action.into() }
}

/// The organization in application-permissions mode with its service connection and `mailboxes`
/// service account users, in the database the server will open (sealed with its key file).
async fn seed(url: &str, key_file: &Path, emulator: &str, mailboxes: usize) -> Res<OrgId> {
    let store = store::open(url, Arc::new(store::secrets::Keyring::load_or_create(key_file)?)).await?;
    let org = store.create_organization("Northwind").await?.id;
    let settings = domain::office365::Office365Settings {
        enabled: true,
        own_app: true,
        tenant: NORTHWIND_TENANT_ID.into(),
        client_id: DEMO_CLIENT_ID.into(),
        client_secret_set: true,
        mode: ConnectionMode::ApplicationPermissions,
        ..Default::default()
    };
    store.save_office365_settings(org, &settings, Some(&store::secrets::SecretString::from(DEMO_CLIENT_SECRET)), &[]).await?;
    let admin = store::accounts::create_user(store.as_ref(), org, ADMIN, "Adele Admin", Role::Admin, ADMIN_PASSWORD).await?;
    let client = MicrosoftClient::new(Endpoints::parse(emulator, &format!("{emulator}/v1.0"))?)?;
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
            ms_object_id: Some(bench_user_id(i)),
            ms_username: bench_upn(i),
            display_name: format!("Scale User {i}"),
            added_by: ADMIN.into(),
            added_at: store::now_unix(),
            health: None,
            health_at: None,
        };
        store.add_service_account_user(org, &user, &audit("office365.service_user_added")).await?;
    }
    Ok(org)
}

/// Where the mailboxes stand, read from the server's database.
struct Progress {
    scheduled: i64,
    /// Every resource synced at or after the round's start, lease released.
    done: i64,
    leased: i64,
}

async fn progress(db: &sqlx::SqlitePool, since: i64) -> Res<Progress> {
    let now = store::now_unix();
    let row: (i64, i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), \
           COALESCE(SUM(CASE WHEN (lease_owner IS NULL OR lease_expires_at < $1) AND \
             (SELECT COUNT(*) FROM sync_status s WHERE s.mailbox_id = m.id AND s.first_sync_done AND s.last_success_at >= $2) >= $3 \
             THEN 1 ELSE 0 END), 0), \
           COALESCE(SUM(CASE WHEN lease_owner IS NOT NULL AND lease_expires_at >= $1 THEN 1 ELSE 0 END), 0) \
         FROM sync_mailboxes m WHERE paused_reason IS NULL",
    )
    .bind(now)
    .bind(since)
    .bind(RESOURCES)
    .fetch_one(db)
    .await?;
    Ok(Progress { scheduled: row.0, done: row.1, leased: row.2 })
}

/// Waits until `expected` mailboxes are done since `since`. Returns when the first lease was seen
/// (the round started) and when it ended.
async fn wait_round(db: &sqlx::SqlitePool, server: &mut Process, expected: i64, since: i64, timeout: Duration) -> Res<(Instant, Instant)> {
    let started = Instant::now();
    let mut first_lease = None;
    loop {
        let p = progress(db, since).await?;
        if first_lease.is_none() && (p.leased > 0 || p.done > 0) {
            first_lease = Some(Instant::now());
        }
        if p.scheduled >= expected && p.done >= expected {
            return Ok((first_lease.unwrap_or(started), Instant::now()));
        }
        if let Some(status) = server.child.try_wait()? {
            return Err(format!("the server ended ({status}):\n{}", server.log_tail()).into());
        }
        if started.elapsed() > timeout {
            return Err(format!("after {timeout:?}: {} of {} scheduled mailboxes done, {} leased", p.done, p.scheduled, p.leased).into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Graph requests the emulator served (the identity platform's excluded).
async fn graph_requests(http: &reqwest::Client, emulator: &str) -> Res<u64> {
    let counters: m365_emulator::Counters = http.get(format!("{emulator}/_emulator/counters")).send().await?.json().await?;
    let identity = |route: &str| {
        let r = route.to_ascii_lowercase();
        r.contains("oauth2") || r.contains("token") || r.contains("authorize") || r.contains("discovery") || r.contains("keys")
    };
    Ok(counters.requests.iter().filter(|r| !identity(&r.route)).map(|r| r.count).sum())
}

/// A client signed in as the admin through the sign-in server function, as the page does.
async fn sign_in(base: &str) -> Res<reqwest::Client> {
    let client = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build()?;
    call(&client, base, "login", &[("email", ADMIN), ("password", ADMIN_PASSWORD)]).await?;
    Ok(client)
}

async fn call(client: &reqwest::Client, base: &str, endpoint: &str, form: &[(&str, &str)]) -> Res<()> {
    let res = client
        .post(format!("{base}/api/{endpoint}"))
        .header("accept", "application/json")
        .header("sec-fetch-site", "same-origin")
        .form(form)
        .send()
        .await?;
    if !(res.status().is_success() || res.status().is_redirection()) {
        return Err(format!("{endpoint}: {}", res.status()).into());
    }
    Ok(())
}

/// The Team connections page `times` times: (median, slowest).
async fn page_load(client: &reqwest::Client, base: &str, times: usize) -> Res<(Duration, Duration, usize)> {
    let mut took = Vec::new();
    let mut bytes = 0;
    for _ in 0..times {
        let started = Instant::now();
        let res = client.get(format!("{base}{TEAM_PAGE}")).send().await?;
        if !res.status().is_success() {
            return Err(format!("{TEAM_PAGE}: {}", res.status()).into());
        }
        bytes = res.bytes().await?.len();
        took.push(started.elapsed());
    }
    took.sort();
    Ok((took[took.len() / 2], took[took.len() - 1], bytes))
}

struct Setup {
    _dir: tempfile::TempDir,
    emulator: Process,
    emulator_base: String,
    server: Process,
    server_base: String,
    db: sqlx::SqlitePool,
    started: Instant,
}

/// The emulator and the server, each its own process, over a freshly seeded database.
async fn start(mailboxes: usize, messages: u64) -> Res<Setup> {
    let dir = tempfile::tempdir()?;
    let http = reqwest::Client::new();
    let fixture_path = dir.path().join("fixture.json");
    std::fs::write(&fixture_path, serde_json::to_vec(&fixture(mailboxes, messages))?)?;
    let emulator_bind = format!("127.0.0.1:{}", free_port()?);
    let emulator_base = format!("http://{emulator_bind}");
    let fixture_arg = fixture_path.to_string_lossy().into_owned();
    let emulator_args = ["--bind", emulator_bind.as_str(), "--fixture", fixture_arg.as_str(), "--control-api"];
    let mut emulator = Process::start(&binary("m365-emulator", "BENCH_EMULATOR_BIN")?, &emulator_args, dir.path().join("emulator.log"))?;
    wait_up(&http, &format!("{emulator_base}/_emulator/counters"), &mut emulator, Duration::from_secs(120)).await?;

    let db_path = dir.path().join("scale.db");
    let url = format!("sqlite://{}", db_path.display());
    let key_file = dir.path().join("secrets.key");
    let seeding = Instant::now();
    seed(&url, &key_file, &emulator_base, mailboxes).await?;
    println!("seeded {mailboxes} service account users in {:.1} s", seeding.elapsed().as_secs_f64());

    let server_bind = format!("127.0.0.1:{}", free_port()?);
    let server_base = format!("http://{server_bind}");
    let (key_arg, graph, site) =
        (key_file.to_string_lossy().into_owned(), format!("{emulator_base}/v1.0"), dir.path().join("site").to_string_lossy().into_owned());
    let server_args = [
        "--database-url",
        url.as_str(),
        "--key-file",
        key_arg.as_str(),
        "--bind",
        server_bind.as_str(),
        "--microsoft-authority",
        emulator_base.as_str(),
        "--microsoft-graph",
        graph.as_str(),
        "--site-root",
        site.as_str(),
    ];
    let started = Instant::now();
    let mut server = Process::start(&binary("server", "BENCH_SERVER_BIN")?, &server_args, dir.path().join("server.log"))?;
    wait_up(&http, &format!("{server_base}/healthz"), &mut server, Duration::from_secs(60)).await?;
    let options = <sqlx::sqlite::SqliteConnectOptions as std::str::FromStr>::from_str(&url)?.read_only(true);
    let db = sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect_with(options).await?;
    Ok(Setup { _dir: dir, emulator, emulator_base, server, server_base, db, started })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Res<()> {
    let mailboxes = env_or("BENCH_SCALE_MAILBOXES", 1_000) as usize;
    let messages = env_or("BENCH_SCALE_MESSAGES", 50);
    println!(
        "bench_scale: {mailboxes} mailboxes × {messages} messages (+ 25 events, 30 contacts, 20 tasks), application permissions, SQLite; \
         load average at start {} ({} CPUs)",
        load_average(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let mut s = start(mailboxes, messages).await?;
    let http = reqwest::Client::new();
    let expected = i64::try_from(mailboxes)?;
    let (_, first_end) = wait_round(&s.db, &mut s.server, expected, 0, Duration::from_secs(3600)).await?;
    let first_requests = graph_requests(&http, &s.emulator_base).await?;
    let (hwm, rss) = memory_mb(s.server.pid());
    println!(
        "first round: every mailbox's first sync done {:.1} s after the server started; {first_requests} Graph requests; \
         server RSS {rss:.0} MB, peak {hwm:.0} MB",
        (first_end - s.started).as_secs_f64()
    );

    let admin = sign_in(&s.server_base).await?;
    let (hwm, rss) = memory_mb(s.server.pid());
    println!("after the admin's sign-in: server RSS {rss:.0} MB, peak {hwm:.0} MB");
    for _ in 0..env_or("BENCH_SCALE_EXTRA_LOADS", 0) {
        page_load(&admin, &s.server_base, 5).await?;
        let (hwm, rss) = memory_mb(s.server.pid());
        println!("after 5 more loads: server RSS {rss:.0} MB, peak {hwm:.0} MB");
    }
    let (median, slowest, bytes) = page_load(&admin, &s.server_base, 5).await?;
    let (hwm, rss) = memory_mb(s.server.pid());
    println!(
        "Team connections page ({bytes} bytes): median {:.1} ms, slowest {:.1} ms of 5 loads; server RSS {rss:.0} MB, peak {hwm:.0} MB \
         after the sign-in and the loads",
        median.as_secs_f64() * 1e3,
        slowest.as_secs_f64() * 1e3
    );

    // The first round's last successes are in an earlier second than the round asked for now.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let since = store::now_unix();
    let asked = Instant::now();
    call(&admin, &s.server_base, "sync_my_connection_now", &[]).await?;
    let (round_start, round_end) = wait_round(&s.db, &mut s.server, expected, since, Duration::from_secs(3600)).await?;
    let round_requests = graph_requests(&http, &s.emulator_base).await? - first_requests;
    println!(
        "no-change round (\"Sync now\"): {:.2} s from the click to every mailbox synced ({:.2} s after the first worker started); \
         {round_requests} Graph requests ({:.1} per mailbox)",
        (round_end - asked).as_secs_f64(),
        (round_end - round_start).as_secs_f64(),
        round_requests as f64 / mailboxes.max(1) as f64
    );
    let default_interval = domain::office365::Office365Settings::default().sync_interval_minutes;
    println!("  the default interval is {default_interval} min = {} s", default_interval * 60);
    let (hwm, rss) = memory_mb(s.server.pid());
    let (emu_hwm, _) = memory_mb(s.emulator.pid());
    println!(
        "server peak RSS {hwm:.0} MB (now {rss:.0} MB; goal < 150 MB); emulator peak RSS {emu_hwm:.0} MB; load average at the end {}",
        load_average()
    );
    Ok(())
}
