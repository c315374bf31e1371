//! Test harness: spawn an emulator on port 0 and drive it like a browser and a client would.

use base64::Engine;
pub use m365_emulator::testkit::Page;
use m365_emulator::testkit::{self, SignIn};
use m365_emulator::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, EmulatorConfig, Fixture, RunningEmulator};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

pub const REDIRECT: &str = "http://127.0.0.1:3000/oauth/office365/callback";
pub const ADMIN_REDIRECT: &str = "http://127.0.0.1:3000/oauth/office365/admin-consent";
pub const NW: &str = m365_emulator::NORTHWIND_TENANT_ID;
pub const FB: &str = m365_emulator::FABRIKAM_TENANT_ID;
pub const SCOPES: &str =
    "openid profile email offline_access User.Read Mail.Read Calendars.ReadWrite Contacts.ReadWrite Tasks.ReadWrite Mail.Send.Shared";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXkdBjftJeZ4CVP";

pub struct TestEmu {
    pub emu: RunningEmulator,
    pub http: reqwest::Client,
}

pub async fn spawn() -> TestEmu {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(tweak: impl FnOnce(&mut EmulatorConfig)) -> TestEmu {
    let mut config = EmulatorConfig::new(Fixture::demo());
    config.control_api = true;
    tweak(&mut config);
    let emu = m365_emulator::spawn(config).await.expect("emulator starts");
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    TestEmu { emu, http }
}

pub fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

pub fn query_of(location: &str) -> HashMap<String, String> {
    let q = location.split_once('?').map(|(_, q)| q).unwrap_or("");
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

pub fn flow_id(html: &str) -> String {
    let marker = "name=\"flow\" value=\"";
    let start = html.find(marker).expect("page has a flow field") + marker.len();
    html[start..].split('"').next().unwrap_or_default().to_string()
}

pub fn claims(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).expect("jwt payload");
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).expect("b64")).expect("json")
}

/// A browser: the test kit's (keeps the ESTSAUTH session cookie, never follows redirects), with
/// shortcuts for the identity tests that go through the pages step by step.
pub struct Browser<'a> {
    pub t: &'a TestEmu,
    pub kit: testkit::Browser,
}

impl<'a> Browser<'a> {
    pub fn new(t: &'a TestEmu) -> Browser<'a> {
        Browser { t, kit: testkit::Browser::new().expect("browser") }
    }

    pub async fn get(&self, url: &str) -> Page {
        self.kit.get(url).await.expect("GET")
    }

    /// Posts `fields` to the tenant's login form handler, as the pages' forms do.
    pub async fn post(&self, tenant: &str, fields: &[(&str, &str)]) -> Page {
        let url = format!("{}/{tenant}/login", self.t.emu.base_url());
        self.kit.post_form(&url, fields).await.expect("POST")
    }

    pub fn authorize_url(&self, tenant: &str, extra: &[(&str, &str)]) -> String {
        let ch = challenge(VERIFIER);
        let mut params: Vec<(&str, &str)> = vec![
            ("client_id", DEMO_CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            ("scope", SCOPES),
            ("state", "st-123"),
            ("code_challenge", ch.as_str()),
            ("code_challenge_method", "S256"),
        ];
        for (k, v) in extra {
            params.retain(|(pk, _)| pk != k);
            params.push((k, v));
        }
        let q: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(params.iter().filter(|(_, v)| !v.is_empty())).finish();
        format!("{}/{tenant}/oauth2/v2.0/authorize?{q}", self.t.emu.base_url())
    }

    /// Signs in on the page (the test kit answers every page) and accepts consent if asked;
    /// returns the final redirect's query.
    pub async fn sign_in_and_consent(&self, page: Page, email: &str) -> HashMap<String, String> {
        let last = self.kit.continue_sign_in(page, &SignIn::new(email)).await.expect("sign-in");
        let back = last.callback().unwrap_or_else(|e| panic!("{e}: {}", last.body));
        query_of(back.as_str())
    }

    pub async fn code_for(&self, tenant: &str, email: &str, extra: &[(&str, &str)]) -> String {
        let url = self.authorize_url(tenant, extra);
        let page = self.get(&url).await;
        let q = self.sign_in_and_consent(page, email).await;
        q.get("code").cloned().unwrap_or_else(|| panic!("no code in {q:?}"))
    }
}

pub async fn token(t: &TestEmu, tenant: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = t.http.post(format!("{}/{tenant}/oauth2/v2.0/token", t.emu.base_url())).form(form).send().await.expect("token POST");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

pub async fn redeem(t: &TestEmu, tenant: &str, code: &str) -> (u16, Value) {
    token(
        t,
        tenant,
        &[
            ("client_id", DEMO_CLIENT_ID),
            ("client_secret", DEMO_CLIENT_SECRET),
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await
}

/// Delegated tokens for `email` with `scopes` (full browser flow).
pub async fn user_tokens(t: &TestEmu, email: &str, scopes: &str) -> Value {
    let tenant = if email.ends_with("fabrikam.test") { FB } else { NW };
    let b = Browser::new(t);
    let code = b.code_for(tenant, email, &[("scope", scopes)]).await;
    let (status, body) = redeem(t, tenant, &code).await;
    assert_eq!(status, 200, "{body}");
    body
}

pub async fn user_token(t: &TestEmu, email: &str) -> String {
    user_tokens(t, email, SCOPES).await["access_token"].as_str().expect("access token").to_string()
}

pub async fn app_token(t: &TestEmu, tenant: &str) -> (u16, Value) {
    token(
        t,
        tenant,
        &[
            ("client_id", DEMO_CLIENT_ID),
            ("client_secret", DEMO_CLIENT_SECRET),
            ("grant_type", "client_credentials"),
            ("scope", "https://graph.microsoft.com/.default"),
        ],
    )
    .await
}

pub struct GraphReply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

pub async fn graph(t: &TestEmu, token: &str, path_or_url: &str, prefer: &[&str]) -> GraphReply {
    let url = if path_or_url.starts_with("http") { path_or_url.to_string() } else { format!("{}{path_or_url}", t.emu.graph_base()) };
    let mut req = t.http.get(url).bearer_auth(token);
    for p in prefer {
        req = req.header("Prefer", *p);
    }
    reply(req.send().await.expect("graph GET")).await
}

pub async fn graph_post(t: &TestEmu, token: &str, path: &str, body: &Value) -> GraphReply {
    let r = t.http.post(format!("{}{path}", t.emu.graph_base())).bearer_auth(token).json(body).send().await.expect("graph POST");
    reply(r).await
}

async fn reply(r: reqwest::Response) -> GraphReply {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap_or_default();
    GraphReply { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::Null), text }
}

/// Follows nextLinks to the end of a delta round; returns (items, deltaLink, pages).
pub async fn delta_round(t: &TestEmu, token: &str, start: &str, prefer: &[&str]) -> (Vec<Value>, String, usize) {
    let mut url = start.to_string();
    let mut items = Vec::new();
    let mut pages = 0;
    loop {
        let r = graph(t, token, &url, prefer).await;
        assert_eq!(r.status, 200, "delta page failed: {}", r.text);
        pages += 1;
        items.extend(r.body["value"].as_array().cloned().unwrap_or_default());
        if let Some(next) = r.body["@odata.nextLink"].as_str() {
            url = next.to_string();
        } else {
            let delta = r.body["@odata.deltaLink"].as_str().expect("last page has a deltaLink").to_string();
            return (items, delta, pages);
        }
        assert!(pages < 10_000, "runaway paging");
    }
}

/// Asserts a Graph error body has exactly §3.9's shape: {"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}.
pub fn assert_graph_error_shape(text: &str, code: &str) {
    let v: Value = serde_json::from_str(text).expect("json error body");
    assert_eq!(v["error"]["code"], code, "{text}");
    let keys: Vec<&str> = v["error"].as_object().expect("error object").keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 3, "{text}");
    let prefix = format!("{{\"error\":{{\"code\":\"{code}\",\"message\":\"");
    assert!(text.starts_with(&prefix), "field order: {text}");
    let inner = &v["error"]["innerError"];
    let date = inner["date"].as_str().expect("date");
    assert_eq!(date.len(), 19, "date like 2025-02-13T10:17:05: {date}");
    assert!(!date.ends_with('Z'));
    assert_eq!(&date[10..11], "T");
    assert!(uuid::Uuid::parse_str(inner["request-id"].as_str().expect("request-id")).is_ok());
    assert!(inner["client-request-id"].is_string());
    let order = text.find("\"date\"").zip(text.find("\"request-id\"")).zip(text.find("\"client-request-id\""));
    let ((d, r), c) = order.expect("innerError fields");
    assert!(d < r && r < c, "innerError order: {text}");
}
