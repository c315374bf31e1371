//! One organization (an admin and a member, each with a browser session), the emulator on port 0
//! playing Microsoft, and the workflows over them.

use domain::office365::SettingsForm;
use domain::views::SaveConfirmations;
use domain::{OrgId, Role};
use m365_emulator::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, EmulatorConfig, Fixture, RunningEmulator};
use office365::{Caller, Integration};
use std::sync::Arc;
use store::{DynStore, accounts};

pub const PUBLIC_URL: &str = "http://127.0.0.1:4020";
pub const NW: &str = m365_emulator::NORTHWIND_TENANT_ID;
pub const ADMIN: &str = "admin@northwind.test";
pub const MEMBER: &str = "alice@northwind.test";
const PASSWORD: &str = "a-long-test-password";

pub struct Env {
    pub emu: RunningEmulator,
    pub o365: Integration,
    pub store: DynStore,
    /// The sync scheduler the workflows use: tests run its rounds with `run_until_idle`.
    pub scheduler: Arc<sync::Scheduler>,
    pub org: OrgId,
    pub admin: Caller,
    pub member: Caller,
    pub _dir: tempfile::TempDir,
}

/// An organization that brings its own app registration (the server has none of its own).
pub async fn spawn() -> Env {
    spawn_with(None, Fixture::demo()).await
}

/// A server run with the deployment's own app registration: the emulator's multi-tenant one.
pub async fn spawn_deployed() -> Env {
    let secret = microsoft::ClientCredential::Secret(m365_emulator::DEPLOYMENT_CLIENT_SECRET.into());
    spawn_deployed_with(secret, Fixture::demo()).await
}

/// [`spawn_deployed`] with the deployment app signing in with `credential`, Microsoft being `fixture`.
pub async fn spawn_deployed_with(credential: microsoft::ClientCredential, fixture: Fixture) -> Env {
    let app = sync::DeploymentApp { client_id: m365_emulator::DEPLOYMENT_CLIENT_ID.into(), credential };
    spawn_with(Some(app), fixture).await
}

async fn spawn_with(deployment_app: Option<sync::DeploymentApp>, mut fixture: Fixture) -> Env {
    // Mail received up to today: the sync reaches back only `backfill_days` from now, so a fixed
    // date would leave the mailboxes empty of mail a month after it.
    fixture.date_content_today();
    // The redirect URIs an operator registers for this deployment.
    fixture.add_redirect_uri(&format!("{PUBLIC_URL}/oauth/office365/callback"));
    fixture.add_redirect_uri(&format!("{PUBLIC_URL}/oauth/office365/admin-consent"));
    let emu = m365_emulator::spawn(EmulatorConfig::new(fixture)).await.unwrap();
    let endpoints = microsoft::Endpoints::parse(&emu.login_base(), &emu.graph_base()).unwrap();
    let client = microsoft::MicrosoftClient::new(endpoints).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("o365.db").display());
    let store = store::open(&url, Arc::new(store::secrets::Keyring::ephemeral())).await.unwrap();
    let engine = sync::Engine::new(store.clone(), client.clone(), sync::SyncConfig { deployment_app, ..sync::SyncConfig::default() });
    let scheduler = sync::Scheduler::new(engine);
    let o365 = Integration::new(store.clone(), Arc::new(client), scheduler.clone(), PUBLIC_URL);
    let org = store.create_organization("Northwind").await.unwrap().id;
    let admin = caller(&o365, org, ADMIN, Role::Admin).await;
    let member = caller(&o365, org, MEMBER, Role::Member).await;
    Env { emu, o365, store, scheduler, org, admin, member, _dir: dir }
}

/// A user with a signed-in browser session.
pub async fn caller(o365: &Integration, org: OrgId, email: &str, role: Role) -> Caller {
    let store = o365.store().as_ref();
    accounts::create_user(store, org, email, email, role, PASSWORD).await.unwrap();
    let signed_in = accounts::sign_in(store, email, PASSWORD, "127.0.0.1", store::now_unix()).await.unwrap();
    o365.caller(Some(signed_in.token)).await.unwrap().unwrap()
}

/// The Connection Settings form for the emulator's demo app registration, enabled.
pub fn demo_form() -> SettingsForm {
    SettingsForm {
        enabled: true,
        tenant: NW.into(),
        client_id: DEMO_CLIENT_ID.into(),
        client_secret: DEMO_CLIENT_SECRET.into(),
        mode: "individual".into(),
        access: "read_only".into(),
        sync_mail: true,
        sync_calendar: true,
        sync_contacts: true,
        sync_tasks: true,
        sync_interval_minutes: "15".into(),
        backfill_days: "30".into(),
        ..SettingsForm::default()
    }
}

/// The Connection Settings form of the help article: Enable, and nothing about app registrations.
pub fn deployment_form() -> SettingsForm {
    SettingsForm { own_app: false, tenant: String::new(), client_id: String::new(), client_secret: String::new(), ..demo_form() }
}

impl Env {
    /// Enables the integration with the demo app registration, through the settings workflow.
    pub async fn enable(&self) {
        self.enable_with(demo_form()).await;
    }

    /// The admin's My Connection > Activate through Microsoft's (the emulator's) pages; the landing.
    pub async fn activate(&self) -> String {
        let url = self.o365.start_sign_in(&self.admin, "activate").await.unwrap();
        let callback = m365_emulator::testkit::sign_in(&url, ADMIN).await.unwrap();
        self.o365.complete_sign_in(Some(&self.admin), callback.query()).await.unwrap()
    }

    /// The Service account users page once the background mailbox checks have ended (at most 20 s):
    /// nobody is checking any more and every row has a result.
    pub async fn checks_done(&self) -> domain::views::ServiceAccountsView {
        eventually("the mailbox checks end", || async {
            let view = self.o365.service_accounts(&self.admin.user).await.unwrap();
            (view.checking.is_empty() && view.users.iter().all(|u| u.health.is_some())).then_some(view)
        })
        .await
    }

    pub async fn enable_with(&self, form: SettingsForm) {
        let saved = self.o365.save_settings(&self.admin.user, &form, SaveConfirmations::default()).await.unwrap();
        assert!(saved.saved, "{saved:?}");
    }
}

/// The query parameter `name` of a URL.
pub fn param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url).unwrap().query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// The `{tenant}` path segment of an identity platform URL.
pub fn authority(url: &str) -> String {
    url::Url::parse(url).unwrap().path_segments().unwrap().next().unwrap().to_owned()
}

/// Polls `check` every 50 ms until it answers something (at most 20 s): for what a workflow
/// finishes in the background.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
