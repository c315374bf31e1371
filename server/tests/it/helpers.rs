//! `spawn_app()`: the server on port 0 with a fresh database and the demo organization, talking to
//! a Microsoft 365 emulator started in-process on port 0 with this server's callback URLs
//! registered, so an OAuth flow can run end to end (the emulator's test kit signs users in).

use server::{ServeConfig, metrics::Metrics};
use std::net::SocketAddr;
use std::sync::Arc;
use store::DynStore;

pub struct TestApp {
    pub base: String,
    pub store: DynStore,
    /// Plays Microsoft for this server (demo tenants, control API on).
    pub emu: m365_emulator::RunningEmulator,
    /// The sync engine wired into the router; its loop is not started (tests drive it).
    pub scheduler: Arc<sync::Scheduler>,
    _dir: tempfile::TempDir,
}

pub async fn spawn_app() -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let store = store::open(&sqlite_url(&dir), Arc::new(store::secrets::Keyring::ephemeral())).await.unwrap();
    spawn_app_on(store, dir).await
}

/// The database file of a test in `dir`.
pub fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("app.db").display())
}

/// [`spawn_app`] over a store the test opened itself (to reach its pool, say), living in `dir`.
pub async fn spawn_app_on(store: DynStore, dir: tempfile::TempDir) -> TestApp {
    spawn_app_with(store, dir, server::client_address::TrustedProxies::default()).await
}

/// [`spawn_app`] behind a reverse proxy on this machine: connections from 127.0.0.1 are trusted to
/// name the client in `X-Forwarded-For`.
pub async fn spawn_app_behind_proxy() -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let store = store::open(&sqlite_url(&dir), Arc::new(store::secrets::Keyring::ephemeral())).await.unwrap();
    spawn_app_with(store, dir, server::client_address::TrustedProxies::parse("127.0.0.1").unwrap()).await
}

async fn spawn_app_with(store: DynStore, dir: tempfile::TempDir, trusted_proxies: server::client_address::TrustedProxies) -> TestApp {
    spawn_app_tuned(store, dir, trusted_proxies, |_| {}).await
}

/// [`spawn_app`] with the sync engine's configuration adjusted by `tune` (it starts as the
/// server's own, [`server::http::sync_config`]).
pub async fn spawn_app_tuned(
    store: DynStore,
    dir: tempfile::TempDir,
    trusted_proxies: server::client_address::TrustedProxies,
    tune: impl FnOnce(&mut sync::SyncConfig),
) -> TestApp {
    server::demo::seed(store.as_ref()).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public_url = format!("http://{}", listener.local_addr().unwrap());
    // Started the way `server --demo` starts it: the callbacks of this server's port registered.
    let emu = server::demo::start_emulator(SocketAddr::from(([127, 0, 0, 1], 0)), &public_url).await.unwrap();
    let scheduler = serve_instance(store.clone(), &emu, listener, trusted_proxies, tune);
    TestApp { base: public_url, store, emu, scheduler, _dir: dir }
}

/// Serves one server instance on `listener` over `store`, with `emu` playing Microsoft; returns its
/// sync scheduler, whose loop is not started. Several instances may share one store and emulator.
pub fn serve_instance(
    store: DynStore,
    emu: &m365_emulator::RunningEmulator,
    listener: tokio::net::TcpListener,
    trusted_proxies: server::client_address::TrustedProxies,
    tune: impl FnOnce(&mut sync::SyncConfig),
) -> Arc<sync::Scheduler> {
    serve_configured(store, emu, listener, trusted_proxies, tune, |_| {})
}

/// [`spawn_app`] with the server's configuration adjusted by `configure` (the public URL, the
/// edge's limits, the session idle timeout).
pub async fn spawn_app_configured(configure: impl FnOnce(&mut ServeConfig)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let store = store::open(&sqlite_url(&dir), Arc::new(store::secrets::Keyring::ephemeral())).await.unwrap();
    server::demo::seed(store.as_ref()).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let emu = server::demo::start_emulator(SocketAddr::from(([127, 0, 0, 1], 0)), &base).await.unwrap();
    let scheduler = serve_configured(store.clone(), &emu, listener, Default::default(), |_| {}, configure);
    TestApp { base, store, emu, scheduler, _dir: dir }
}

/// [`serve_instance`] with the server's configuration adjusted by `configure`, served through the
/// server's own edge ([`server::edge::serve`]) as `server` serves it.
fn serve_configured(
    store: DynStore,
    emu: &m365_emulator::RunningEmulator,
    listener: tokio::net::TcpListener,
    trusted_proxies: server::client_address::TrustedProxies,
    tune: impl FnOnce(&mut sync::SyncConfig),
    configure: impl FnOnce(&mut ServeConfig),
) -> Arc<sync::Scheduler> {
    let addr = listener.local_addr().unwrap();
    let mut config = ServeConfig {
        bind: addr,
        site_root: std::path::PathBuf::from("/nonexistent-site"),
        public_url: format!("http://{addr}"),
        microsoft: server::MicrosoftEndpoints { authority: emu.login_base(), graph: emu.graph_base() },
        deployment_app: Some(server::deployment_app::demo_app()),
        shared_tenants: false,
        trusted_proxies,
        edge: Default::default(),
        session_idle_timeout: std::time::Duration::from_secs(store::accounts::SESSION_IDLE_SECS.unsigned_abs()),
    };
    configure(&mut config);
    let mut sync_config = server::http::sync_config(&config);
    tune(&mut sync_config);
    let scheduler = server::http::sync_scheduler_with(store.clone(), &config, sync_config).unwrap();
    let router = server::router(store, scheduler.clone(), &config, Arc::new(Metrics::default())).unwrap();
    tokio::spawn(async move {
        server::edge::serve(listener, router, &config.edge.limits, std::future::pending()).await.unwrap();
    });
    scheduler
}

impl TestApp {
    /// A client with its own cookie jar that does not follow redirects (tests look at them).
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Calls a server function the way the hydrated page does (form-encoded POST, JSON answer).
    pub async fn call(&self, client: &reqwest::Client, endpoint: &str, form: &[(&str, &str)]) -> reqwest::Response {
        client
            .post(self.url(&format!("/api/{endpoint}")))
            .header("accept", "application/json")
            .header("sec-fetch-site", "same-origin")
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// A client signed in as `email`.
    pub async fn signed_in(&self, email: &str) -> reqwest::Client {
        let client = self.client();
        let password = if email.starts_with("admin@") { server::demo::ADMIN_PASSWORD } else { server::demo::MEMBER_PASSWORD };
        let res = self.call(&client, "login", &[("email", email), ("password", password)]).await;
        assert!(res.status().is_success() || res.status().is_redirection(), "sign-in failed: {}", res.status());
        client
    }
}

/// A new, empty database on the test PostgreSQL server (`STORE_TEST_POSTGRES_URL`, which `make
/// test` starts), or `None` when there is none (a failure instead with `STORE_TEST_REQUIRE_POSTGRES=1`).
pub async fn fresh_postgres_url() -> Option<String> {
    use sqlx::Connection;
    let Ok(admin_url) = std::env::var("STORE_TEST_POSTGRES_URL") else {
        assert_ne!(std::env::var("STORE_TEST_REQUIRE_POSTGRES").as_deref(), Ok("1"), "STORE_TEST_POSTGRES_URL is not set");
        eprintln!("skipping: STORE_TEST_POSTGRES_URL is not set");
        return None;
    };
    let name = format!("server_it_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    // The name is a UUID we made: safe to splice.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.unwrap();
    let base = admin_url.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin_url);
    Some(format!("{base}/{name}"))
}

/// Where a redirect sends the browser.
pub fn location(res: &reqwest::Response) -> String {
    res.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

pub fn session_cookie(res: &reqwest::Response) -> Option<String> {
    res.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).find(|v| v.starts_with("i360_session=")).map(str::to_owned)
}

/// Sends a POST head announcing a body of `length` bytes, sends none of it, and returns the
/// answer's status line: a server that refuses a body by its announced length answers at once.
/// (A client that went on writing the body would see the refused connection reset, not the answer.)
pub async fn status_for_announced_body(base: &str, path: &str, cookie: Option<&str>, length: usize) -> String {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let host = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let cookie = cookie.map(|c| format!("Cookie: {c}\r\n")).unwrap_or_default();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Accept: application/json\r\nSec-Fetch-Site: same-origin\r\n{cookie}Content-Length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut line = String::new();
    let mut reader = tokio::io::BufReader::new(stream);
    match tokio::time::timeout(std::time::Duration::from_secs(10), reader.read_line(&mut line)).await {
        Ok(Ok(_)) => line.trim_end().to_owned(),
        Ok(Err(e)) => format!("no answer: {e}"),
        Err(_) => "no answer: the server waits for the body".to_owned(),
    }
}

/// The `name=value` of the session cookie a sign-in response sets, for a hand-made request.
pub async fn session_cookie_of(base: &str, email: &str) -> String {
    let password = if email.starts_with("admin@") { server::demo::ADMIN_PASSWORD } else { server::demo::MEMBER_PASSWORD };
    let res = reqwest::Client::new()
        .post(format!("{base}/api/login"))
        .header("sec-fetch-site", "same-origin")
        .form(&[("email", email), ("password", password)])
        .send()
        .await
        .unwrap();
    session_cookie(&res).expect("signed in").split(';').next().unwrap().to_owned()
}

/// Enables the integration for the demo organization with the emulator's demo app registration in
/// Northwind's tenant, straight through the store (what the settings page saves after its check).
pub async fn enable_demo_integration(store: &dyn store::Store) -> domain::OrgId {
    let org = store.organization_by_name(server::demo::ORG_NAME).await.unwrap().unwrap().id;
    let settings = domain::office365::Office365Settings {
        enabled: true,
        own_app: true,
        pinned_tenant: None,
        deployment_client_id: None,
        tenant: m365_emulator::NORTHWIND_TENANT_ID.into(),
        client_id: m365_emulator::DEMO_CLIENT_ID.into(),
        client_secret_set: true,
        ..Default::default()
    };
    let secret = store::secrets::SecretString::from(m365_emulator::DEMO_CLIENT_SECRET.to_owned());
    store.save_office365_settings(org, &settings, Some(&secret), &[]).await.unwrap();
    org
}

/// The `server` binary as an operator runs it on the database `db_url`, with the key file `key_file`
/// (`None`: the default one) and no password in the environment. Add the arguments and run it.
pub fn operator(db_url: &str, key_file: Option<&std::path::Path>) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_server"));
    command.env("DATABASE_URL", db_url).env_remove("I360_KEY_FILE").env_remove("I360_USER_PASSWORD");
    if let Some(key_file) = key_file {
        command.env("I360_KEY_FILE", key_file);
    }
    command
}

/// Runs `server keys <args>` on a database and key file, and returns what it printed; it must succeed.
pub fn keys_command(db_url: &str, key_file: &std::path::Path, args: &[&str]) -> String {
    let out = operator(db_url, Some(key_file)).arg("keys").args(args).output().unwrap();
    assert!(out.status.success(), "keys {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}
