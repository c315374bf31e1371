//! # Microsoft 365 emulator
//!
//! Plays the Microsoft identity platform (v2.0 endpoints) and Microsoft Graph v1.0 (users, mail,
//! calendar, contacts, To Do, delta queries, `$batch`) for tests, the demo and benchmarks. It is built from
//! `shared/spec/MICROSOFT.md` as a protocol implementation and shares no types with the project's
//! Microsoft client.
//!
//! ## URL mapping
//! One HTTP server serves both hosts under the same paths as the real services:
//!
//! | Real | Emulator |
//! |---|---|
//! | `https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize` | `{base}/{tenant}/oauth2/v2.0/authorize` |
//! | `https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token` | `{base}/{tenant}/oauth2/v2.0/token` |
//! | `https://login.microsoftonline.com/{tenant}/v2.0/.well-known/openid-configuration` | `{base}/{tenant}/v2.0/.well-known/openid-configuration` |
//! | `https://login.microsoftonline.com/{tenant}/discovery/v2.0/keys` | `{base}/{tenant}/discovery/v2.0/keys` |
//! | `https://login.microsoftonline.com/{tenant}/adminconsent`, `/{tenant}/v2.0/adminconsent` | same paths under `{base}` |
//! | `https://graph.microsoft.com/v1.0/...` | `{base}/v1.0/...` |
//!
//! So a client configured with authority base `{base}` and Graph base `{base}/v1.0` works unchanged.
//! The control API (only when enabled) lives under `{base}/_emulator/...`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), m365_emulator::Error> {
//! let mut config = m365_emulator::EmulatorConfig::new(m365_emulator::Fixture::demo());
//! config.control_api = true;
//! let emu = m365_emulator::spawn(config).await?;
//! println!("authority base {} graph base {}", emu.login_base(), emu.graph_base());
//! emu.shutdown().await;
//! # Ok(()) }
//! ```

mod catalogue;
mod control;
pub mod fixture;
mod generate;
mod graph;
mod identity;
mod keys;
mod link_loop;
mod pages;
mod registry;
mod store;
mod subscriptions;
#[cfg(feature = "testkit")]
pub mod testkit;
mod throttle;
mod tls;
mod util;

pub use control::ItemRef;
pub use fixture::{
    AccessPolicyFixture, AdminGrantFixture, AppFixture, CertificateFixture, ContentDefaults, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET,
    DEMO_EXPIRED_SECRET, DEMO_PASSWORD, DEPLOYMENT_CLIENT_ID, DEPLOYMENT_CLIENT_SECRET, FABRIKAM_CLIENT_ID, FABRIKAM_TENANT_ID, Fixture,
    FixtureError, MailboxCounts, NORTHWIND_TENANT_ID, OPERATOR_TENANT_ID, PERSONAL_ACCOUNTS_TENANT_ID, SecretFixture, TenantFixture,
    UserFixture,
};
pub use generate::Kind;
pub use link_loop::DeltaLinkLoop;
pub use registry::{Counters, FaultRule, MailboxCounter, RouteCounter};
pub use subscriptions::SubscriptionInfo;
pub use throttle::ThrottleConfig;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use time::OffsetDateTime;

/// Protocol details MICROSOFT.md marks as UNCONFIRMED or that tests want to shorten.
#[derive(Clone, Debug)]
pub struct ProtocolOptions {
    /// `expires_in` of access tokens (MICROSOFT.md §1.4: about an hour).
    pub access_token_lifetime_secs: i64,
    /// Authorization codes live about 10 minutes (§1.3).
    pub code_lifetime_secs: i64,
    /// A refresh token unused this long fails with AADSTS700082 (§1.4: 90 days).
    pub refresh_token_max_inactive_secs: i64,
    /// HTTP status of `invalid_client` token errors (§1.5: 400 per docs, possibly 401 — UNCONFIRMED).
    pub invalid_client_status: u16,
    /// `error` of the redirect when a user presses Cancel on the consent page: `access_denied` (with
    /// `error_subcode=cancel`) or `consent_required` (both observed, §1.3).
    pub consent_cancel_error: String,
    /// AADSTS code in the redirect from "Return to the application without granting consent" on the Need
    /// admin approval page (UNCONFIRMED, §1.9): 90094 (default, lets the client tell "admin approval
    /// required" apart) or 65004.
    pub admin_approval_return_code: u32,
    /// The second-factor code MFA users type.
    pub mfa_code: String,
    /// Delta page size when the client sends no `Prefer: odata.maxpagesize`.
    pub delta_default_page_size: usize,
    /// How many recent sync-state generations (delta rounds) per collection stay valid; links of older
    /// rounds answer 410 `SyncStateNotFound` (OBS: about 3, §3.3). `None` keeps them all.
    pub sync_generations_kept: Option<u32>,
    /// Access-token lifetimes vary between `access_token_lifetime_secs` and that plus this many seconds
    /// (real Graph tokens live 60–90 minutes, §7). 0 = always the same lifetime.
    pub access_token_lifetime_jitter_secs: i64,
    /// Token responses list Graph scopes by short name (`User.Read profile openid email`) instead of
    /// full URIs (`https://graph.microsoft.com/User.Read …`); Entra sends both forms (§7).
    pub short_scope_names: bool,
    /// Message delta ignores `$top` (pages only by `Prefer: odata.maxpagesize`), as real Graph does.
    pub ignore_top_on_message_delta: bool,
    /// To Do tasks delta ignores `$select` and returns whole tasks, as real Graph does.
    pub ignore_select_on_tasks: bool,
    /// calendarView delta repeats the last item of a page at the start of the next one, as real
    /// Graph can (§7: clients must de-duplicate by id).
    pub repeat_calendar_items_across_pages: bool,
    /// Directory requests (`/me`, `/users`, `/users/{id}`) count against per-app limits too and answer
    /// 429 with `Retry-After` when over them, not only mailbox requests.
    pub throttle_directory: bool,
    /// Share of Graph requests that fail on their own with 503 `serviceNotAvailable` or 504
    /// `gatewayTimeout` (with `Retry-After`), without any injected fault. 0.0 = never.
    pub transient_failure_rate: f64,
    /// HTTP status for a delta token that does not decode, answered `SyncStateInvalid`: 410 (default,
    /// what public Outlook clients report) or 400 (Microsoft's documentation does not settle it).
    pub undecodable_delta_token_status: u16,
}

impl ProtocolOptions {
    /// Microsoft as it behaves in production, rough edges included: token lifetimes of 60–90 minutes,
    /// short-name `scope`s, `$top` ignored on message delta and `$select` on tasks, repeated calendar
    /// items across pages, throttled directory requests and about 2 % random 503/504s. A malformed delta
    /// token keeps the default answer (410 `SyncStateInvalid`, as Outlook clients report it).
    pub fn realistic() -> ProtocolOptions {
        ProtocolOptions {
            access_token_lifetime_secs: 3600,
            access_token_lifetime_jitter_secs: 1800,
            short_scope_names: true,
            ignore_top_on_message_delta: true,
            ignore_select_on_tasks: true,
            repeat_calendar_items_across_pages: true,
            throttle_directory: true,
            transient_failure_rate: 0.02,
            ..ProtocolOptions::default()
        }
    }
}

impl Default for ProtocolOptions {
    fn default() -> Self {
        ProtocolOptions {
            access_token_lifetime_secs: 3599,
            code_lifetime_secs: 600,
            refresh_token_max_inactive_secs: 90 * 24 * 3600,
            invalid_client_status: 401,
            consent_cancel_error: "access_denied".to_string(),
            admin_approval_return_code: 90094,
            mfa_code: "123456".to_string(),
            delta_default_page_size: 10,
            sync_generations_kept: Some(3),
            access_token_lifetime_jitter_secs: 0,
            short_scope_names: false,
            ignore_top_on_message_delta: false,
            ignore_select_on_tasks: false,
            repeat_calendar_items_across_pages: false,
            throttle_directory: false,
            transient_failure_rate: 0.0,
            undecodable_delta_token_status: 410,
        }
    }
}

/// How to run an emulator.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    pub fixture: Fixture,
    /// Use port 0 for a free port (tests).
    pub bind: SocketAddr,
    /// Serve `/_emulator/...` (never in a production configuration).
    pub control_api: bool,
    pub throttling: ThrottleConfig,
    /// Serve HTTPS with a freshly generated self-signed certificate (for client libraries that insist).
    pub tls: bool,
    /// Where to write the certificate (PEM) when `tls` is on, so clients can trust it.
    pub tls_cert_path: Option<PathBuf>,
    /// Base URL to put in links (defaults to `http(s)://{bind address}`).
    pub public_base_url: Option<String>,
    pub protocol: ProtocolOptions,
}

impl EmulatorConfig {
    /// Loopback, free port, throttling as Microsoft's, no control API, plain HTTP.
    pub fn new(fixture: Fixture) -> EmulatorConfig {
        EmulatorConfig {
            fixture,
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            control_api: false,
            throttling: ThrottleConfig::default(),
            tls: false,
            tls_cert_path: None,
            public_base_url: None,
            protocol: ProtocolOptions::default(),
        }
    }

    /// The demo world with the control API on (what `make run` and in-process tests use).
    pub fn demo() -> EmulatorConfig {
        let mut c = EmulatorConfig::new(Fixture::demo());
        c.control_api = true;
        c
    }
}

/// Errors starting or controlling the emulator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("binding {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("generating keys: {0}")]
    Keys(String),
    #[error("tls: {0}")]
    Tls(String),
    #[error("fixture: {0}")]
    Fixture(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("invalid: {0}")]
    Invalid(String),
}

/// Lookup tables built once from the fixture (users are not added at run time).
pub(crate) struct Index {
    /// lower-case UPN or object id → (tenant index, user index)
    users: HashMap<String, (usize, usize)>,
    /// lower-case tenant id or domain → tenant index
    tenants: HashMap<String, usize>,
}

/// A user with the bits of their tenant most handlers need.
#[derive(Clone, Debug)]
pub(crate) struct UserRef {
    pub tenant_id: String,
    pub tenant_index: usize,
    pub user: UserFixture,
}

pub(crate) struct Shared {
    pub opts: ProtocolOptions,
    pub base_url: String,
    pub dir: RwLock<Fixture>,
    pub index: Index,
    pub keys: keys::KeyRing,
    pub idp: Mutex<identity::IdpState>,
    pub mailboxes: RwLock<HashMap<String, Arc<Mutex<store::MailboxState>>>>,
    pub throttle: throttle::Throttle,
    pub control: Mutex<registry::ControlState>,
    pub clock_offset: AtomicI64,
    pub control_api: bool,
    pub subscriptions: subscriptions::Subscriptions,
    /// (delivered, failed) change and lifecycle notifications.
    pub notification_counters: Arc<(std::sync::atomic::AtomicU64, std::sync::atomic::AtomicU64)>,
    /// Where background work (notification deliveries) runs, also when triggered from sync test code.
    pub runtime: tokio::runtime::Handle,
    /// Delta paging that never ends, when a test turns it on.
    pub link_loop: link_loop::LinkLoop,
}

/// Locks a mutex, recovering from poisoning: a panicked handler must not wedge the whole emulator.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Emulator time: wall clock plus the control API's offset (to expire codes and tokens in tests).
    pub(crate) fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + time::Duration::seconds(self.clock_offset.load(Ordering::Relaxed))
    }

    pub(crate) fn tenant_index(&self, key: &str) -> Option<usize> {
        self.index.tenants.get(&key.to_ascii_lowercase()).copied()
    }

    pub(crate) fn tenant(&self, i: usize) -> Option<TenantFixture> {
        read(&self.dir).tenants.get(i).cloned()
    }

    pub(crate) fn user(&self, key: &str) -> Option<UserRef> {
        let (ti, ui) = *self.index.users.get(&key.to_ascii_lowercase())?;
        let dir = read(&self.dir);
        let t = dir.tenants.get(ti)?;
        Some(UserRef { tenant_id: t.id.clone(), tenant_index: ti, user: t.users.get(ui)?.clone() })
    }

    /// Does the tenant's application access policy (if any) let this app reach `user`'s mailbox?
    pub(crate) fn app_policy_allows(&self, tenant_id: &str, client_id: &str, user: &UserFixture) -> bool {
        let dir = read(&self.dir);
        let Some(t) = dir.tenants.iter().find(|t| t.id.eq_ignore_ascii_case(tenant_id)) else {
            return true;
        };
        let member =
            |list: &[String]| list.iter().any(|m| m.eq_ignore_ascii_case(&user.user_principal_name) || m.eq_ignore_ascii_case(&user.id));
        t.application_access_policies
            .iter()
            .filter(|p| p.client_id.eq_ignore_ascii_case(client_id))
            .all(|p| if p.access_right.eq_ignore_ascii_case("DenyAccess") { !member(&p.mailboxes) } else { member(&p.mailboxes) })
    }

    pub(crate) fn app(&self, client_id: &str) -> Option<AppFixture> {
        read(&self.dir).apps.iter().find(|a| a.client_id.eq_ignore_ascii_case(client_id)).cloned()
    }

    /// The mailbox of `user`, created (empty overlay) on first use.
    pub(crate) fn mailbox(&self, user: &UserFixture) -> Arc<Mutex<store::MailboxState>> {
        if let Some(m) = read(&self.mailboxes).get(&user.id) {
            return m.clone();
        }
        let dir = read(&self.dir);
        let anchor = time::Date::parse(&dir.content.anchor_date, time::macros::format_description!("[year]-[month]-[day]"))
            .map(|d| d.midnight().assume_utc())
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let ctx = generate::MailboxCtx {
            seed: dir.seed,
            hash: generate::hash_str(&user.id),
            upn: user.user_principal_name.clone(),
            display_name: user.display_name.clone(),
            domain: user.user_principal_name.split('@').nth(1).unwrap_or("example.test").to_string(),
            counts: user.counts.unwrap_or(dir.content.counts),
            anchor,
        };
        drop(dir);
        write(&self.mailboxes).entry(user.id.clone()).or_insert_with(|| Arc::new(Mutex::new(store::MailboxState::new(ctx)))).clone()
    }
}

fn build_index(f: &Fixture) -> Index {
    let mut users = HashMap::new();
    let mut tenants = HashMap::new();
    for (ti, t) in f.tenants.iter().enumerate() {
        tenants.insert(t.id.to_ascii_lowercase(), ti);
        for d in &t.domains {
            tenants.insert(d.to_ascii_lowercase(), ti);
        }
        for (ui, u) in t.users.iter().enumerate() {
            users.insert(u.id.to_ascii_lowercase(), (ti, ui));
            users.insert(u.user_principal_name.to_ascii_lowercase(), (ti, ui));
        }
    }
    Index { users, tenants }
}

/// A running emulator; dropping it does not stop the server, call [`RunningEmulator::shutdown`].
pub struct RunningEmulator {
    pub(crate) shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    ca_pem: Option<String>,
}

/// Starts the emulator on `config.bind` and returns once it accepts connections.
pub async fn spawn(config: EmulatorConfig) -> Result<RunningEmulator, Error> {
    let listener = tokio::net::TcpListener::bind(config.bind).await.map_err(|source| Error::Bind { addr: config.bind, source })?;
    let addr = listener.local_addr().map_err(|source| Error::Bind { addr: config.bind, source })?;
    let scheme = if config.tls { "https" } else { "http" };
    let base_url = config.public_base_url.clone().unwrap_or_else(|| format!("{scheme}://{addr}"));
    let keys = keys::KeyRing::generate().map_err(Error::Keys)?;
    for t in &config.fixture.tenants {
        if t.id.is_empty() || t.domains.is_empty() {
            return Err(Error::Fixture(format!("tenant {:?} needs an id and at least one domain", t.display_name)));
        }
    }
    let mut idp = identity::IdpState::default();
    for t in &config.fixture.tenants {
        for g in &t.admin_grants {
            let e = idp.admin_grants.entry((t.id.to_ascii_lowercase(), g.client_id.to_ascii_lowercase())).or_default();
            e.delegated.extend(g.delegated.iter().cloned());
            e.roles.extend(g.application.iter().cloned());
        }
    }
    let shared = Arc::new(Shared {
        opts: config.protocol.clone(),
        base_url: base_url.trim_end_matches('/').to_string(),
        index: build_index(&config.fixture),
        dir: RwLock::new(config.fixture.clone()),
        keys,
        idp: Mutex::new(idp),
        mailboxes: RwLock::new(HashMap::new()),
        throttle: throttle::Throttle::new(config.throttling.clone()),
        control: Mutex::new(registry::ControlState::default()),
        clock_offset: AtomicI64::new(0),
        control_api: config.control_api,
        subscriptions: subscriptions::Subscriptions::default(),
        notification_counters: Arc::new(Default::default()),
        runtime: tokio::runtime::Handle::current(),
        link_loop: Default::default(),
    });
    let router = router(shared.clone());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let mut ca_pem = None;
    let task = if config.tls {
        let (server_config, pem) = tls::server_config().map_err(Error::Tls)?;
        if let Some(path) = &config.tls_cert_path {
            std::fs::write(path, &pem).map_err(|e| Error::Tls(format!("writing {}: {e}", path.display())))?;
        }
        ca_pem = Some(pem);
        tokio::spawn(tls::serve(listener, server_config, router, rx))
    } else {
        tokio::spawn(async move {
            let served = axum::serve(listener, router).with_graceful_shutdown(async move {
                let _ = rx.await;
            });
            if let Err(e) = served.await {
                tracing::error!(error = %e, "emulator server stopped");
            }
        })
    };
    tracing::info!(%base_url, "Microsoft 365 emulator listening");
    Ok(RunningEmulator { shared, addr, shutdown: Some(tx), task: Some(task), ca_pem })
}

fn router(shared: Arc<Shared>) -> axum::Router {
    let mut r = identity::routes().merge(graph::routes());
    if shared.control_api {
        r = r.merge(control::routes());
    }
    r.with_state(shared)
}

impl RunningEmulator {
    /// `http://127.0.0.1:PORT` (or `https://…` with TLS).
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }
    /// What replaces `https://login.microsoftonline.com` (append `/{tenant}/oauth2/v2.0/...`).
    pub fn login_base(&self) -> String {
        self.shared.base_url.clone()
    }
    /// What replaces `https://graph.microsoft.com/v1.0`.
    pub fn graph_base(&self) -> String {
        format!("{}/v1.0", self.shared.base_url)
    }
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
    /// The self-signed certificate (PEM) when serving HTTPS.
    pub fn ca_cert_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }
    /// Stops accepting connections and waits for the server task.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
    /// Waits until the server stops (binary use).
    pub async fn wait(mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}
