//! Harness: an emulator on port 0 and a client pointed at it. The emulator's test kit is the
//! cookie-keeping "browser" that fills in Microsoft's sign-in and consent forms.

pub use m365_emulator::testkit::{self, Browser, Consent};
use m365_emulator::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, EmulatorConfig, Fixture, RunningEmulator};
use microsoft::{AppRegistration, Endpoints, MicrosoftClient, SecretString};

pub const NW: &str = m365_emulator::NORTHWIND_TENANT_ID;
pub const FB: &str = m365_emulator::FABRIKAM_TENANT_ID;
pub const REDIRECT: &str = "http://127.0.0.1:4010/oauth/office365/callback";
pub const ADMIN_REDIRECT: &str = "http://127.0.0.1:4010/oauth/office365/admin-consent";
/// A second app registration, for tokens issued to someone else (an id no fixture app uses).
pub const OTHER_CLIENT_ID: &str = "44444444-5555-4666-8777-888888888888";
pub const SCOPES: &str = "openid profile email offline_access User.Read Mail.Read Mail.Read.Shared Calendars.ReadWrite";

pub struct Env {
    pub emu: RunningEmulator,
    pub client: MicrosoftClient,
}

pub async fn spawn() -> Env {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(tweak: impl FnOnce(&mut EmulatorConfig)) -> Env {
    let mut fixture = Fixture::demo();
    fixture.add_redirect_uri(REDIRECT);
    fixture.add_redirect_uri(ADMIN_REDIRECT);
    let mut other = fixture.apps[0].clone();
    other.client_id = OTHER_CLIENT_ID.to_string();
    other.display_name = "Someone else's app".to_string();
    fixture.apps.push(other);
    let mut config = EmulatorConfig::new(fixture);
    config.control_api = true;
    tweak(&mut config);
    let emu = m365_emulator::spawn(config).await.expect("emulator starts");
    let client = MicrosoftClient::new(endpoints(&emu)).expect("client");
    Env { emu, client }
}

pub fn endpoints(emu: &RunningEmulator) -> Endpoints {
    Endpoints::parse(&emu.login_base(), &emu.graph_base()).expect("emulator endpoints")
}

pub fn app(tenant: &str) -> AppRegistration {
    app_with(tenant, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)
}

pub fn app_with(tenant: &str, client_id: &str, secret: &str) -> AppRegistration {
    AppRegistration::new(tenant, client_id, SecretString::from(secret.to_string())).expect("app registration")
}

pub fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_string())
}

/// A raw token-endpoint call, for tests that need Microsoft's own id_token bytes.
pub async fn raw_token(env: &Env, tenant: &str, form: &[(&str, &str)]) -> serde_json::Value {
    let r = reqwest::Client::new().post(format!("{}/{tenant}/oauth2/v2.0/token", env.emu.login_base())).form(form).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}
