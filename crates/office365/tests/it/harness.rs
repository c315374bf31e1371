//! One organization (an admin and a member, each with a browser session), the emulator on port 0
//! playing Microsoft, and the workflows over them.

use domain::office365::SettingsForm;
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
    pub org: OrgId,
    pub admin: Caller,
    pub member: Caller,
    pub _dir: tempfile::TempDir,
}

pub async fn spawn() -> Env {
    let mut fixture = Fixture::demo();
    // The redirect URIs an operator registers for this deployment.
    fixture.add_redirect_uri(&format!("{PUBLIC_URL}/oauth/office365/callback"));
    fixture.add_redirect_uri(&format!("{PUBLIC_URL}/oauth/office365/admin-consent"));
    let emu = m365_emulator::spawn(EmulatorConfig::new(fixture)).await.unwrap();
    let endpoints = microsoft::Endpoints::parse(&emu.login_base(), &emu.graph_base()).unwrap();
    let client = microsoft::MicrosoftClient::new(endpoints).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("o365.db").display());
    let store = store::open(&url, Arc::new(store::secrets::Keyring::ephemeral())).await.unwrap();
    let engine = sync::Engine::new(store.clone(), client.clone(), sync::SyncConfig::default());
    let o365 = Integration::new(store.clone(), Arc::new(client), sync::Scheduler::new(engine), PUBLIC_URL);
    let org = store.create_organization("Northwind").await.unwrap().id;
    let admin = caller(&o365, org, ADMIN, Role::Admin).await;
    let member = caller(&o365, org, MEMBER, Role::Member).await;
    Env { emu, o365, store, org, admin, member, _dir: dir }
}

/// A user with a signed-in browser session.
async fn caller(o365: &Integration, org: OrgId, email: &str, role: Role) -> Caller {
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

impl Env {
    /// Enables the integration with the demo app registration, through the settings workflow.
    pub async fn enable(&self) {
        let saved = self.o365.save_settings(&self.admin.user, &demo_form(), false).await.unwrap();
        assert!(saved.saved, "{saved:?}");
    }
}
