//! An emulator on port 0, a SQLite store with an organization set up for Office 365, connections
//! made by signing in through the emulator's pages, and a scheduler with short waits. Plus the
//! check every test ends with: the database holds exactly what the emulator's mailbox holds.

use domain::Resource;
use domain::permissions::ConnectionMode;
use domain::{AuditEntry, ConnectionKind, OrgId, Role, UserId};
use m365_emulator::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, EmulatorConfig, Fixture, Kind, RunningEmulator};
use microsoft::{AppRegistration, Endpoints, ExposeSecret, MailboxRef, MicrosoftClient, SecretString, Timeouts, parse_callback};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use store::{DynStore, NewConnection, accounts};
use sync::{Engine, Scheduler, SyncConfig};

pub const NW: &str = m365_emulator::NORTHWIND_TENANT_ID;
pub const REDIRECT: &str = "http://127.0.0.1:4010/oauth/office365/callback";
pub const SCOPES: &str = "openid profile email offline_access User.Read Mail.Read Calendars.ReadWrite Contacts.Read Tasks.Read";
pub const ALICE: &str = "alice@northwind.test";
pub const BOB: &str = "bob@northwind.test";

pub struct Env {
    pub emu: RunningEmulator,
    pub client: MicrosoftClient,
    pub store: DynStore,
    pub org: OrgId,
    /// The database the stores write to, for tests that reach past the store (fault injection).
    pub db_url: String,
    pub _dir: tempfile::TempDir,
}

pub fn app() -> AppRegistration {
    AppRegistration::new(NW, DEMO_CLIENT_ID, SecretString::from(DEMO_CLIENT_SECRET.to_string())).unwrap()
}

/// Short waits for tests; Microsoft's limits unchanged.
pub fn test_config(owner: &str) -> SyncConfig {
    SyncConfig {
        owner: owner.to_string(),
        lease_ttl_secs: 30,
        renew_every: Duration::from_secs(1),
        page_size: 10,
        max_concurrent_mailboxes: 4,
        poll_every: Duration::from_millis(50),
        reconcile_every: Duration::from_secs(60),
        max_inline_wait: Duration::from_secs(5),
        max_attempts: 12,
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(200),
        token_margin_secs: 300,
        abandoned_request_hold: Duration::from_millis(400),
        max_resets_per_run: 3,
        error_retry_secs: 0,
        attention_retry_secs: 3600,
        commit_barrier: None,
        ..SyncConfig::default()
    }
}

/// The demo world, its generated content dated around today: the first sync's mail filter (from
/// `backfill_days`) is then the same whatever day the tests run.
pub fn demo_fixture() -> Fixture {
    let mut fixture = Fixture::demo_today();
    fixture.add_redirect_uri(REDIRECT);
    fixture
}

/// The tests' backfill: reaches past all the generated mail (received over the 90 days before the
/// anchor), so a first sync takes every message unless a test says otherwise.
pub const BACKFILL_DAYS: u32 = 180;

/// What a mail folder's first sync asks from for `backfill_days`: 00:00 UTC of the day that many
/// days ago (computed here on its own, not taken from the engine).
pub fn mail_cutoff(backfill_days: u32) -> i64 {
    let day = (time::OffsetDateTime::now_utc() - time::Duration::days(i64::from(backfill_days))).date();
    day.midnight().assume_utc().unix_timestamp()
}

/// One scheduler tick, every mailbox it started run to its end.
pub async fn one_run(s: &Arc<Scheduler>) -> Vec<sync::MailboxOutcome> {
    let mut out = Vec::new();
    for h in s.tick().await.unwrap() {
        out.push(h.await.unwrap());
    }
    out
}

pub async fn spawn() -> Env {
    let mut config = EmulatorConfig::new(demo_fixture());
    config.control_api = true;
    let emu = m365_emulator::spawn(config).await.unwrap();
    let endpoints = Endpoints::parse(&emu.login_base(), &emu.graph_base()).unwrap();
    let client =
        MicrosoftClient::with_timeouts(endpoints, Timeouts { connect: Duration::from_secs(2), request: Duration::from_millis(300) })
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = database_url(&dir).await;
    let store = store::open(&url, Arc::new(store::secrets::Keyring::ephemeral())).await.unwrap();
    let org = store.create_organization("Northwind").await.unwrap().id;
    let settings = domain::office365::Office365Settings {
        enabled: true,
        own_app: true,
        pinned_tenant: None,
        deployment_client_id: None,
        tenant: NW.to_string(),
        client_id: DEMO_CLIENT_ID.to_string(),
        client_secret_set: true,
        mode: ConnectionMode::Individual,
        backfill_days: BACKFILL_DAYS,
        ..Default::default()
    };
    store.save_office365_settings(org, &settings, Some(&store::secrets::SecretString::from(DEMO_CLIENT_SECRET)), &[]).await.unwrap();
    // App-only access, for the checks (independent of the connections under test).
    emu.grant_admin_consent(NW, DEMO_CLIENT_ID, &[], &["Mail.Read", "Calendars.Read", "Contacts.Read", "Tasks.Read.All"]).unwrap();
    Env { emu, client, store, org, db_url: url, _dir: dir }
}

/// SQLite by default; with `SYNC_TEST_BACKEND=postgres` a fresh database on the server named by
/// `STORE_TEST_POSTGRES_URL` (the store suite's throwaway cluster).
async fn database_url(dir: &tempfile::TempDir) -> String {
    if std::env::var("SYNC_TEST_BACKEND").as_deref() != Ok("postgres") {
        return format!("sqlite://{}", dir.path().join("sync.db").display());
    }
    use sqlx::Connection;
    let admin_url = std::env::var("STORE_TEST_POSTGRES_URL").expect("SYNC_TEST_BACKEND=postgres needs STORE_TEST_POSTGRES_URL");
    let name = format!("sync_it_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.unwrap();
    let base = admin_url.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin_url);
    format!("{base}/{name}")
}

impl Env {
    pub fn engine(&self, config: SyncConfig) -> Engine {
        Engine::new(self.store.clone(), self.client.clone(), config)
    }

    pub fn scheduler(&self, owner: &str) -> Arc<Scheduler> {
        Scheduler::new(self.engine(test_config(owner)))
    }

    pub async fn settings(&self, f: impl FnOnce(&mut domain::office365::Office365Settings)) {
        let mut s = self.store.office365_settings(self.org).await.unwrap();
        f(&mut s);
        self.store.save_office365_settings(self.org, &s, None, &[]).await.unwrap();
    }

    /// Signs `email` in through the emulator's pages and saves the connection, as the callback
    /// route does. Returns (platform user, connection id).
    pub async fn connect(&self, email: &str, primary: bool) -> (UserId, uuid::Uuid) {
        self.connect_with(email, primary, SCOPES).await
    }

    pub async fn connect_with(&self, email: &str, primary: bool, scopes: &str) -> (UserId, uuid::Uuid) {
        let user = match self.store.users_in_org(self.org).await.unwrap().into_iter().find(|u| u.email.as_str() == email) {
            Some(u) => u,
            None => accounts::create_user(self.store.as_ref(), self.org, email, email, Role::Member, "password-123").await.unwrap(),
        };
        let req = self.client.authorization_request(&app(), REDIRECT, scopes, Some(email), None).unwrap();
        let back = m365_emulator::testkit::sign_in(req.url.as_str(), email).await.unwrap();
        assert!(back.as_str().starts_with(REDIRECT), "redirect back to the app: {}", back.as_str());
        let cb = parse_callback(back.query()).unwrap();
        // The sign-in is set-up, not what a test measures: Microsoft's usual timeouts, not the
        // sync client's short ones (a loaded machine must not fail it).
        let sign_in_client = MicrosoftClient::new(self.client.endpoints().clone()).unwrap();
        let signed = sign_in_client.exchange_code(&app(), &cb.code, REDIRECT, &req.pkce_verifier, &req.nonce).await.unwrap();
        let c = self
            .store
            .save_connection(
                &NewConnection {
                    org_id: self.org,
                    user_id: user.id,
                    kind: ConnectionKind::Individual,
                    is_primary: primary,
                    ms_tenant_id: signed.identity.tenant_id.clone(),
                    ms_object_id: signed.identity.object_id.clone(),
                    ms_username: email.to_string(),
                    ms_name: email.to_string(),
                    granted_scopes: signed.tokens.granted_scopes.clone(),
                    access_token: store::secrets::SecretString::from(signed.tokens.access_token.expose_secret().to_string()),
                    access_expires_at: signed.tokens.expires_at.unix_timestamp(),
                    refresh_token: signed
                        .tokens
                        .refresh_token
                        .as_ref()
                        .map(|r| store::secrets::SecretString::from(r.expose_secret().to_string())),
                },
                &AuditEntry { at: 1, actor: email.into(), action: "connect".into(), summary: "connected".into() },
            )
            .await
            .unwrap();
        (user.id, c.id)
    }

    /// The mailbox the scheduler made for a connection (after `reconcile_org`).
    pub async fn mailbox_of(&self, connection: uuid::Uuid) -> uuid::Uuid {
        self.store.sync_mailboxes_in_org(self.org).await.unwrap().into_iter().find(|m| m.connection_id == connection).unwrap().id
    }

    /// Every message of `email`'s mailbox as the emulator holds it: (folder, id, subject, received
    /// unix seconds).
    pub async fn emulator_mail(&self, email: &str) -> Vec<(String, String, String, i64)> {
        let token = self.client.client_credentials(&app()).await.unwrap().access_token;
        let mref = MailboxRef::User(email.to_string());
        let mut out = Vec::new();
        for f in self.client.containers(&token, &mref, Resource::Mail).await.unwrap() {
            for v in self.emu.snapshot(email, Kind::Message, &f.id, true).unwrap() {
                let received = time::OffsetDateTime::parse(&s(&v["receivedDateTime"]), &time::format_description::well_known::Rfc3339)
                    .unwrap_or_else(|e| panic!("receivedDateTime of {v}: {e}"));
                out.push((f.id.clone(), s(&v["id"]), s(&v["subject"]), received.unix_timestamp()));
            }
        }
        out
    }

    /// Asserts the database holds exactly the emulator's items for `email`'s mailbox: every
    /// resource, every container, no missing, duplicate or ghost item, and current titles. Mail
    /// counts from the organization's backfill (what a first sync asks for) on.
    pub async fn assert_converged(&self, mailbox: uuid::Uuid, email: &str) {
        let token = self.client.client_credentials(&app()).await.unwrap().access_token;
        let mref = MailboxRef::User(email.to_string());
        let mut expected: BTreeSet<(Resource, String, String, String)> = BTreeSet::new();
        let settings = self.store.office365_settings(self.org).await.unwrap();
        let cutoff = mail_cutoff(settings.backfill_days);
        for (folder, id, subject, received) in self.emulator_mail(email).await {
            if received >= cutoff {
                expected.insert((Resource::Mail, folder, id, subject));
            }
        }
        for f in self.client.containers(&token, &mref, Resource::Contacts).await.unwrap() {
            for v in self.emu.snapshot(email, Kind::Contact, &f.id, true).unwrap() {
                expected.insert((Resource::Contacts, f.id.clone(), s(&v["id"]), s(&v["displayName"])));
            }
        }
        for l in self.client.containers(&token, &mref, Resource::Tasks).await.unwrap() {
            for v in self.emu.snapshot(email, Kind::Task, &l.id, true).unwrap() {
                expected.insert((Resource::Tasks, l.id.clone(), s(&v["id"]), s(&v["title"])));
            }
        }
        let (start, end) = sync::events_window(store::now_unix(), settings.backfill_days);
        for v in self.emu.calendar_view(email, &start, &end, true).unwrap() {
            expected.insert((Resource::Calendar, format!("{start}/{end}"), s(&v["id"]), s(&v["subject"])));
        }
        let mut actual = BTreeSet::new();
        let mut rows = 0;
        for r in Resource::ALL {
            for i in self.store.mailbox_items(mailbox, r).await.unwrap() {
                rows += 1;
                actual.insert((r, i.container, i.graph_id, i.title));
            }
        }
        assert_eq!(rows, actual.len(), "duplicate rows");
        let missing: Vec<_> = expected.difference(&actual).collect();
        let ghosts: Vec<_> = actual.difference(&expected).collect();
        assert!(missing.is_empty() && ghosts.is_empty(), "missing or stale: {missing:#?}\nghosts or stale: {ghosts:#?}");
        assert!(expected.len() > 100, "the demo mailbox is not empty: {}", expected.len());
    }
}

fn s(v: &serde_json::Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}
