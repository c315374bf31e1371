//! Harness: an emulator on port 0, a client pointed at it, and a cookie-keeping "browser" that fills
//! in Microsoft's sign-in and consent forms the way a person would.

use m365_emulator::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_PASSWORD, EmulatorConfig, Fixture, RunningEmulator};
use microsoft::{AppRegistration, Endpoints, MicrosoftClient, SecretString};

pub const NW: &str = m365_emulator::NORTHWIND_TENANT_ID;
pub const FB: &str = m365_emulator::FABRIKAM_TENANT_ID;
pub const REDIRECT: &str = "http://127.0.0.1:4010/oauth/office365/callback";
pub const ADMIN_REDIRECT: &str = "http://127.0.0.1:4010/oauth/office365/admin-consent";
/// A second app registration, for tokens issued to someone else.
pub const OTHER_CLIENT_ID: &str = "22222222-3333-4444-8555-666666666666";
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

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

impl Page {
    /// The query string of the redirect back to the app (what the callback route would receive).
    pub fn callback_query(&self) -> String {
        let loc = self.location.as_deref().unwrap_or_else(|| panic!("expected a redirect, got {}: {}", self.status, self.body));
        assert!(loc.starts_with("http://127.0.0.1:4010/oauth/office365/"), "redirect to the app expected: {loc}");
        loc.split_once('?').map(|(_, q)| q.to_string()).unwrap_or_default()
    }

    pub fn is_consent_page(&self) -> bool {
        self.status == 200 && self.body.contains("Permissions requested")
    }

    pub fn is_admin_approval_page(&self) -> bool {
        self.status == 200 && self.body.contains("id=\"return-to-app\"")
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    Accept,
    AcceptForOrganization,
    Cancel,
}

/// A browser: keeps cookies (the emulator's SSO session), never follows redirects.
pub struct Browser {
    http: reqwest::Client,
    base: String,
}

fn attr_after<'a>(html: &'a str, marker: &str) -> Option<&'a str> {
    let start = html.find(marker)? + marker.len();
    html[start..].split('"').next()
}

impl Browser {
    pub fn new(env: &Env) -> Browser {
        let http = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Browser { http, base: env.emu.base_url() }
    }

    async fn page(r: reqwest::Response) -> Page {
        let status = r.status().as_u16();
        let location = r.headers().get("location").map(|v| v.to_str().unwrap().to_string());
        Page { status, location, body: r.text().await.unwrap() }
    }

    pub async fn get(&self, url: &str) -> Page {
        Self::page(self.http.get(url).send().await.unwrap()).await
    }

    /// Submits the page's form (its `action` and hidden `flow`) with `fields`.
    pub async fn submit(&self, page: &Page, fields: &[(&str, &str)]) -> Page {
        let action = attr_after(&page.body, "<form method=\"POST\" action=\"").unwrap_or_else(|| panic!("no form on page: {}", page.body));
        let flow = attr_after(&page.body, "name=\"flow\" value=\"").expect("flow field");
        let mut form: Vec<(&str, &str)> = vec![("flow", flow)];
        form.extend_from_slice(fields);
        Self::page(self.http.post(format!("{}{action}", self.base)).form(&form).send().await.unwrap()).await
    }

    /// Opens `url` (an authorize or admin-consent URL), signs in as `email` (password, MFA code if
    /// asked) and answers the consent page with `consent`. Returns the last page: a redirect back to
    /// the app, or the "Need admin approval" page.
    pub async fn sign_in(&self, url: &str, email: &str, consent: Consent) -> Page {
        let mut page = self.get(url).await;
        if page.status == 302 {
            return page;
        }
        assert!(page.body.contains("id=\"password\""), "sign-in page expected: {}", page.body);
        page = self.submit(&page, &[("email", email), ("password", DEMO_PASSWORD), ("action", "signin")]).await;
        if page.status == 200 && page.body.contains("id=\"otc\"") {
            page = self.submit(&page, &[("otc", "123456"), ("action", "verify")]).await;
        }
        if page.is_consent_page() {
            page = match consent {
                Consent::Accept => self.submit(&page, &[("action", "accept")]).await,
                Consent::AcceptForOrganization => self.submit(&page, &[("consent_org", "true"), ("action", "accept")]).await,
                Consent::Cancel => self.submit(&page, &[("action", "cancel")]).await,
            };
        }
        page
    }
}

/// A raw token-endpoint call, for tests that need Microsoft's own id_token bytes.
pub async fn raw_token(env: &Env, tenant: &str, form: &[(&str, &str)]) -> serde_json::Value {
    let r = reqwest::Client::new().post(format!("{}/{tenant}/oauth2/v2.0/token", env.emu.login_base())).form(form).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}
