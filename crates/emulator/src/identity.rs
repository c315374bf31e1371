//! Microsoft identity platform v2.0: discovery, JWKS, `/authorize` with its interactive pages, the token
//! endpoint (authorization_code, refresh_token, client_credentials) and both admin-consent endpoints
//! (MICROSOFT.md §1).

use crate::catalogue::{self, GRAPH_APP_ID, GRAPH_RESOURCE, Scope};
use crate::util::{aad_timestamp, b64url, guid, ms_urlencode, parse_qs, random_token};
use crate::{AppFixture, Shared, UserRef, lock, pages};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

const SESSION_COOKIE: &str = "ESTSAUTH";

#[derive(Default)]
pub(crate) struct IdpState {
    flows: HashMap<String, Flow>,
    sessions: HashMap<String, Session>,
    codes: HashMap<String, CodeGrant>,
    refresh: HashMap<String, RefreshGrant>,
    /// (tenant, user, client) → consented scope names
    consents: HashMap<(String, String, String), BTreeSet<String>>,
    /// (tenant, client) → tenant-wide grant by an admin
    pub admin_grants: HashMap<(String, String), AdminGrant>,
    access: HashMap<String, AccessGrant>,
    /// user id → instant before which refresh tokens are revoked (admin "revoke sessions")
    tokens_valid_from: HashMap<String, OffsetDateTime>,
    /// `jti`s of client assertions already used (replay protection).
    seen_assertions: std::collections::HashSet<String>,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct AdminGrant {
    pub delegated: BTreeSet<String>,
    pub roles: BTreeSet<String>,
}

/// What a bearer token lets its holder do at Graph.
#[derive(Clone, Debug)]
pub(crate) struct AccessGrant {
    pub tenant_id: String,
    pub client_id: String,
    pub user_id: Option<String>,
    pub scopes: BTreeSet<String>,
    pub roles: BTreeSet<String>,
    pub expires: OffsetDateTime,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FlowKind {
    Authorize,
    AdminConsentV1,
    AdminConsentV2,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    SignIn,
    Pick,
    Mfa,
    Consent,
    NeedApproval,
    AdminConsent,
}

#[derive(Clone, Debug)]
struct Flow {
    kind: FlowKind,
    path_tenant: String,
    client_id: String,
    redirect_uri: String,
    state: Option<String>,
    response_mode: String,
    /// Requested scope names (canonical); for admin consent: delegated part.
    scopes: BTreeSet<String>,
    /// Admin consent: application permissions to grant.
    roles: BTreeSet<String>,
    nonce: Option<String>,
    challenge: Option<(String, String)>,
    prompt: Option<String>,
    login_hint: String,
    user: Option<String>,
    session: Option<String>,
    mfa_done: bool,
    step: Step,
    correlation: String,
}

#[derive(Clone, Debug)]
struct Session {
    user_id: String,
    mfa: bool,
}

#[derive(Clone, Debug)]
struct CodeGrant {
    client_id: String,
    tenant_id: String,
    user_id: String,
    redirect_uri: String,
    requested: BTreeSet<String>,
    nonce: Option<String>,
    challenge: Option<(String, String)>,
    created: OffsetDateTime,
    redeemed: bool,
    mfa: bool,
    session: String,
}

#[derive(Clone, Debug)]
struct RefreshGrant {
    client_id: String,
    user_id: String,
    requested: BTreeSet<String>,
    issued: OffsetDateTime,
    last_used: OffsetDateTime,
    mfa: bool,
    session: String,
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(discovery),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(jwks))
        .route("/{tenant}/discovery/instance", get(instance_discovery))
        .route("/{tenant}/oauth2/v2.0/authorize", get(authorize))
        .route("/{tenant}/oauth2/v2.0/token", axum::routing::post(token))
        .route("/{tenant}/oauth2/v2.0/logout", get(logout).post(logout))
        .route("/{tenant}/login", axum::routing::post(login_step))
        .route("/{tenant}/adminconsent", get(admin_consent_v1))
        .route("/{tenant}/v2.0/adminconsent", get(admin_consent_v2))
}

// ------------------------------------------------------------------ tenants

#[derive(Clone, Debug, PartialEq, Eq)]
enum PathTenant {
    Common,
    Organizations,
    Consumers,
    Tenant(usize),
}

fn path_tenant(shared: &Shared, s: &str) -> Option<PathTenant> {
    match s.to_ascii_lowercase().as_str() {
        "common" => Some(PathTenant::Common),
        "organizations" => Some(PathTenant::Organizations),
        "consumers" | "9188040d-6c67-4c5b-b112-36a304b66dad" => Some(PathTenant::Consumers),
        other => shared.tenant_index(other).map(PathTenant::Tenant),
    }
}

fn tenant_not_found(t: &str) -> String {
    format!(
        "Tenant '{t}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
    )
}

// ------------------------------------------------------------------ errors

/// An AADSTS error (MICROSOFT.md §1.5 table).
#[derive(Clone, Debug)]
pub(crate) struct Aad {
    pub status: u16,
    pub error: &'static str,
    pub code: u32,
    pub message: String,
    pub suberror: Option<&'static str>,
}

impl Aad {
    fn new(error: &'static str, code: u32, message: impl Into<String>) -> Aad {
        Aad {
            status: 400,
            error,
            code,
            message: message.into(),
            suberror: None,
        }
    }
    fn sub(mut self, s: &'static str) -> Aad {
        self.suberror = Some(s);
        self
    }
    fn status(mut self, s: u16) -> Aad {
        self.status = s;
        self
    }
}

/// Field order as in the spec's real sample (§1.5).
#[derive(Serialize)]
struct AadBody<'a> {
    error: &'a str,
    error_description: String,
    error_codes: [u32; 1],
    timestamp: String,
    trace_id: String,
    correlation_id: String,
    error_uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    suberror: Option<&'a str>,
}

/// `AADSTSnnnn: message\r\nTrace ID: …\r\nCorrelation ID: …\r\nTimestamp: …` (§1.3, §1.5).
fn describe(code: u32, message: &str, trace: &str, correlation: &str, ts: &str) -> String {
    format!(
        "AADSTS{code}: {message}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {ts}"
    )
}

fn error_uri(code: u32) -> String {
    format!("https://login.microsoftonline.com/error?code={code}")
}

fn correlation_of(headers: &HeaderMap) -> String {
    headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| uuid::Uuid::parse_str(v).is_ok())
        .map(str::to_string)
        .unwrap_or_else(guid)
}

fn aad_json(shared: &Shared, e: &Aad, correlation: &str) -> Response {
    let trace = guid();
    let ts = aad_timestamp(shared.now());
    let body = AadBody {
        error: e.error,
        error_description: describe(e.code, &e.message, &trace, correlation, &ts),
        error_codes: [e.code],
        timestamp: ts,
        trace_id: trace.clone(),
        correlation_id: correlation.to_string(),
        error_uri: error_uri(e.code),
        suberror: e.suberror,
    };
    let text = serde_json::to_string(&body).unwrap_or_default();
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    json_response(
        status,
        text,
        &[
            ("x-ms-request-id", trace),
            ("client-request-id", correlation.to_string()),
        ],
    )
}

fn json_response(status: StatusCode, body: String, extra: &[(&str, String)]) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    for (k, v) in extra {
        if let (Ok(name), Ok(val)) = (
            header::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            h.insert(name, val);
        }
    }
    r
}

fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

/// Error page without redirect (redirect URI not trustworthy, unknown app…).
fn error_page(shared: &Shared, code: u32, message: &str, correlation: &str) -> Response {
    let trace = guid();
    html(
        StatusCode::BAD_REQUEST,
        pages::error(
            code,
            message,
            &trace,
            correlation,
            &aad_timestamp(shared.now()),
        ),
    )
}

/// Redirect to the client in the requested response mode (§1.2 `response_mode`).
fn to_client(uri: &str, mode: &str, params: &[(&str, String)]) -> Response {
    if mode == "form_post" {
        return html(StatusCode::OK, pages::form_post(uri, params));
    }
    let encoded: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", ms_urlencode(v)))
        .collect();
    let sep = if mode == "fragment" {
        "#"
    } else if uri.contains('?') {
        "&"
    } else {
        "?"
    };
    let location = format!("{uri}{sep}{}", encoded.join("&"));
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// Error redirect of `/authorize`: error, error_description, error_uri, [error_subcode], state (§1.3).
fn error_redirect(
    shared: &Shared,
    flow: &Flow,
    error: &str,
    code: u32,
    message: &str,
    subcode: Option<&str>,
) -> Response {
    let trace = guid();
    let ts = aad_timestamp(shared.now());
    let mut params = vec![
        ("error", error.to_string()),
        (
            "error_description",
            describe(code, message, &trace, &flow.correlation, &ts),
        ),
        ("error_uri", error_uri(code)),
    ];
    if let Some(s) = subcode {
        params.push(("error_subcode", s.to_string()));
    }
    if let Some(s) = &flow.state {
        params.push(("state", s.clone()));
    }
    to_client(&flow.redirect_uri, &flow.response_mode, &params)
}

// ------------------------------------------------------------------ discovery

async fn discovery(State(shared): State<Arc<Shared>>, Path(tenant): Path<String>) -> Response {
    let issuer_tid = match path_tenant(&shared, &tenant) {
        Some(PathTenant::Tenant(i)) => shared.tenant(i).map(|t| t.id).unwrap_or_default(),
        Some(PathTenant::Consumers) => "9188040d-6c67-4c5b-b112-36a304b66dad".to_string(),
        // Multi-tenant documents carry the literal template (OBS, §1.6).
        Some(_) => "{tenantid}".to_string(),
        None => {
            return aad_json(
                &shared,
                &Aad::new("invalid_tenant", 90002, tenant_not_found(&tenant)),
                &guid(),
            );
        }
    };
    let b = &shared.base_url;
    let doc = json!({
        "token_endpoint": format!("{b}/{tenant}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{b}/{tenant}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": format!("{b}/{issuer_tid}/v2.0"),
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("{b}/oidc/userinfo"),
        "authorization_endpoint": format!("{b}/{tenant}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{b}/{tenant}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{b}/{tenant}/oauth2/v2.0/logout"),
        "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
        "kerberos_endpoint": format!("{b}/{tenant}/kerberos"),
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    });
    json_response(StatusCode::OK, doc.to_string(), &[])
}

async fn jwks(State(shared): State<Arc<Shared>>, Path(tenant): Path<String>) -> Response {
    let issuer = match path_tenant(&shared, &tenant) {
        Some(PathTenant::Tenant(i)) => format!(
            "{}/{}/v2.0",
            shared.base_url,
            shared.tenant(i).map(|t| t.id).unwrap_or_default()
        ),
        _ => format!("{}/{{tenantid}}/v2.0", shared.base_url),
    };
    json_response(StatusCode::OK, shared.keys.jwks(&issuer).to_string(), &[])
}

/// MSAL's instance discovery (`/common/discovery/instance`), answered for our own host.
async fn instance_discovery(State(shared): State<Arc<Shared>>, RawQuery(q): RawQuery) -> Response {
    let params = parse_qs(q.as_deref().unwrap_or(""));
    let host = shared
        .base_url
        .split("://")
        .nth(1)
        .unwrap_or("")
        .to_string();
    let tenant = params
        .get("authorization_endpoint")
        .and_then(|a| a.split("://").nth(1))
        .and_then(|rest| rest.split('/').nth(1))
        .unwrap_or("common")
        .to_string();
    let doc = json!({
        "tenant_discovery_endpoint": format!("{}/{tenant}/v2.0/.well-known/openid-configuration", shared.base_url),
        "api-version": "1.1",
        "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}]
    });
    json_response(StatusCode::OK, doc.to_string(), &[])
}

// ------------------------------------------------------------------ /authorize

fn session_from(headers: &HeaderMap) -> Option<String> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    cookies.split(';').map(str::trim).find_map(|c| {
        c.strip_prefix(&format!("{SESSION_COOKIE}="))
            .map(str::to_string)
    })
}

fn with_session_cookie(shared: &Shared, mut r: Response, session: &str) -> Response {
    // Browsers drop `SameSite=None` cookies without `Secure`; over plain HTTP, Lax still rides along on
    // the top-level navigation from the app to /authorize, which is all SSO needs.
    let attrs = if shared.base_url.starts_with("https://") {
        "SameSite=None; Secure"
    } else {
        "SameSite=Lax"
    };
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={session}; Path=/; HttpOnly; {attrs}"
    )) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// Validates redirect URIs exactly (§1.2); admin consent v1 also accepts extra path segments (§1.8).
fn redirect_ok(app: &AppFixture, uri: &str, allow_extra_segments: bool) -> bool {
    app.redirect_uris.iter().any(|r| {
        r == uri
            || (allow_extra_segments && uri.starts_with(&format!("{}/", r.trim_end_matches('/'))))
    })
}

fn scope_names(app: &AppFixture, raw: &str) -> Result<BTreeSet<String>, String> {
    let mut out = BTreeSet::new();
    for s in raw.split_whitespace() {
        match catalogue::parse_scope(s)? {
            Scope::Oidc(o) => {
                out.insert(o.to_string());
            }
            Scope::Graph(g) => {
                out.insert(g.to_string());
            }
            Scope::Default => {
                for p in &app.delegated_permissions {
                    if let Ok(Scope::Graph(g) | Scope::Oidc(g)) = catalogue::parse_scope(p) {
                        out.insert(g.to_string());
                    }
                }
            }
        }
    }
    Ok(out)
}

async fn authorize(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let p = parse_qs(q.as_deref().unwrap_or(""));
    let correlation = p.get("client-request-id").cloned().unwrap_or_else(guid);
    let Some(pt) = path_tenant(&shared, &tenant) else {
        return error_page(&shared, 90002, &tenant_not_found(&tenant), &correlation);
    };
    let Some(client_id) = p.get("client_id") else {
        return error_page(
            &shared,
            900144,
            "The request body must contain the following parameter: 'client_id'.",
            &correlation,
        );
    };
    let Some(app) = shared.app(client_id) else {
        return error_page(
            &shared,
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
            ),
            &correlation,
        );
    };
    let redirect_uri = p.get("redirect_uri").cloned().unwrap_or_default();
    // Never redirect to an unregistered URI: that would make the emulator an open redirector (§1.2).
    if !redirect_ok(&app, &redirect_uri, false) {
        return error_page(
            &shared,
            50011,
            &format!(
                "The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application '{}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more about how to fix this.",
                app.client_id
            ),
            &correlation,
        );
    }
    let mut flow = Flow {
        kind: FlowKind::Authorize,
        path_tenant: tenant.clone(),
        client_id: app.client_id.clone(),
        redirect_uri,
        state: p.get("state").cloned(),
        response_mode: p
            .get("response_mode")
            .cloned()
            .unwrap_or_else(|| "query".to_string()),
        scopes: BTreeSet::new(),
        roles: BTreeSet::new(),
        nonce: p.get("nonce").cloned(),
        challenge: None,
        prompt: p.get("prompt").cloned(),
        login_hint: p.get("login_hint").cloned().unwrap_or_default(),
        user: None,
        session: None,
        mfa_done: false,
        step: Step::SignIn,
        correlation,
    };
    if !matches!(
        flow.response_mode.as_str(),
        "query" | "fragment" | "form_post"
    ) {
        flow.response_mode = "query".into();
        return error_redirect(
            &shared,
            &flow,
            "invalid_request",
            9002313,
            "Invalid request. Request is malformed or invalid.",
            None,
        );
    }
    if !app.multi_tenant && matches!(pt, PathTenant::Common | PathTenant::Organizations) {
        return error_redirect(
            &shared,
            &flow,
            "invalid_request",
            50194,
            &format!(
                "Application '{}'({}) is not configured as a multi-tenant application. Usage of the /common endpoint is not supported for such applications created after '10/15/2018'. Use a tenant-specific endpoint or configure the application to be multi-tenant.",
                app.client_id, app.display_name
            ),
            None,
        );
    }
    match p.get("response_type").map(String::as_str) {
        Some("code") => {}
        None => {
            return error_redirect(
                &shared,
                &flow,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'response_type'.",
                None,
            );
        }
        Some(other) => {
            return error_redirect(
                &shared,
                &flow,
                "unsupported_response_type",
                700054,
                &format!("response_type '{other}' is not enabled for the application."),
                None,
            );
        }
    }
    let Some(raw_scope) = p.get("scope").filter(|s| !s.trim().is_empty()) else {
        return error_redirect(
            &shared,
            &flow,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'scope'.",
            None,
        );
    };
    flow.scopes = match scope_names(&app, raw_scope) {
        Ok(s) => s,
        Err(bad) => {
            return error_redirect(
                &shared,
                &flow,
                "invalid_scope",
                70011,
                &format!(
                    "The provided value for the input parameter 'scope' is not valid. The scope '{bad}' does not exist."
                ),
                None,
            );
        }
    };
    if let Some(ch) = p.get("code_challenge") {
        if !(43..=128).contains(&ch.len()) {
            return error_redirect(
                &shared,
                &flow,
                "invalid_request",
                501491,
                "Invalid size of Code_Challenge parameter.",
                None,
            );
        }
        let method = p
            .get("code_challenge_method")
            .cloned()
            .unwrap_or_else(|| "plain".to_string());
        if method != "S256" && method != "plain" {
            return error_redirect(
                &shared,
                &flow,
                "invalid_request",
                501481,
                &format!("The code_challenge_method '{method}' is not supported."),
                None,
            );
        }
        flow.challenge = Some((ch.clone(), method));
    }
    if pt == PathTenant::Consumers {
        return error_redirect(
            &shared,
            &flow,
            "invalid_request",
            9002331,
            "Application is configured for use by Microsoft Account users only. Personal Microsoft accounts are not emulated.",
            None,
        );
    }

    // Existing session (SSO)?
    let session = session_from(&headers).and_then(|sid| {
        lock(&shared.idp)
            .sessions
            .get(&sid)
            .cloned()
            .map(|s| (sid, s))
    });
    let session_user = session
        .as_ref()
        .and_then(|(_, s)| shared.user(&s.user_id))
        .filter(|u| tenant_allows(&pt, u));
    let prompt = flow.prompt.clone().unwrap_or_default();
    let flow_id = random_token(18);

    if prompt == "none" {
        let Some(user) = session_user else {
            return error_redirect(
                &shared,
                &flow,
                "login_required",
                50058,
                "A silent sign-in request was sent but no user is signed in.",
                None,
            );
        };
        if let Some((sid, s)) = &session {
            flow.session = Some(sid.clone());
            flow.mfa_done = s.mfa;
        }
        flow.user = Some(user.user.id.clone());
        if user.user.mfa_required && !flow.mfa_done {
            return error_redirect(
                &shared,
                &flow,
                "interaction_required",
                50076,
                &format!(
                    "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '{GRAPH_APP_ID}'."
                ),
                None,
            );
        }
        if !missing_consent(&shared, &flow, &user).is_empty() {
            return error_redirect(
                &shared,
                &flow,
                "consent_required",
                65001,
                &format!(
                    "The user or administrator has not consented to use the application with ID '{}' named '{}'. Send an interactive authorization request for this user and resource.",
                    app.client_id, app.display_name
                ),
                None,
            );
        }
        return issue_code(&shared, flow, &user);
    }

    let hint_matches = |u: &UserRef| {
        flow.login_hint.is_empty()
            || flow
                .login_hint
                .eq_ignore_ascii_case(&u.user.user_principal_name)
    };
    match (session_user, session) {
        (Some(user), Some((sid, s))) if prompt != "login" && hint_matches(&user) => {
            flow.session = Some(sid);
            flow.mfa_done = s.mfa;
            flow.user = Some(user.user.id.clone());
            if prompt == "select_account" {
                flow.step = Step::Pick;
                let page = pages::pick_account(
                    &tenant,
                    &flow_id,
                    &user.user.display_name,
                    &user.user.user_principal_name,
                );
                lock(&shared.idp).flows.insert(flow_id, flow);
                return html(StatusCode::OK, page);
            }
            after_sign_in(&shared, flow_id, flow, &user)
        }
        _ => {
            let page = pages::sign_in(
                &tenant,
                &flow_id,
                &app.display_name,
                &flow.login_hint,
                None,
                false,
            );
            lock(&shared.idp).flows.insert(flow_id, flow);
            html(StatusCode::OK, page)
        }
    }
}

fn tenant_allows(pt: &PathTenant, u: &UserRef) -> bool {
    match pt {
        PathTenant::Tenant(i) => *i == u.tenant_index,
        PathTenant::Consumers => false,
        _ => true,
    }
}

/// Requested scopes neither the user nor an admin (tenant-wide) has consented to.
fn missing_consent(shared: &Shared, flow: &Flow, user: &UserRef) -> BTreeSet<String> {
    let idp = lock(&shared.idp);
    let key = (
        user.tenant_id.to_ascii_lowercase(),
        user.user.id.to_ascii_lowercase(),
        flow.client_id.to_ascii_lowercase(),
    );
    let mine = idp.consents.get(&key);
    let org = idp.admin_grants.get(&(
        user.tenant_id.to_ascii_lowercase(),
        flow.client_id.to_ascii_lowercase(),
    ));
    flow.scopes
        .iter()
        // A tenant-wide grant implies the sign-in (OIDC) scopes: an admin consented to the app as a whole.
        .filter(|s| {
            !mine.is_some_and(|m| m.contains(*s))
                && !org.is_some_and(|o| {
                    o.delegated.contains(*s) || catalogue::OIDC_SCOPES.contains(&s.as_str())
                })
        })
        .cloned()
        .collect()
}

/// Next step once the user is known (and has passed MFA if needed).
fn after_sign_in(shared: &Shared, flow_id: String, mut flow: Flow, user: &UserRef) -> Response {
    let Some(app) = shared.app(&flow.client_id) else {
        return error_page(shared, 700016, "Application not found.", &flow.correlation);
    };
    if user.user.mfa_required && !flow.mfa_done {
        flow.step = Step::Mfa;
        let page = pages::mfa(
            &flow.path_tenant,
            &flow_id,
            &user.user.user_principal_name,
            None,
        );
        lock(&shared.idp).flows.insert(flow_id, flow);
        return html(StatusCode::OK, page);
    }
    if flow.kind != FlowKind::Authorize {
        return admin_consent_step(shared, flow_id, flow, user, &app);
    }
    if !app.multi_tenant && !app.home_tenant.eq_ignore_ascii_case(&user.tenant_id) {
        return error_redirect(
            shared,
            &flow,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                app.client_id, user.tenant_id
            ),
            None,
        );
    }
    let missing = missing_consent(shared, &flow, user);
    if missing.is_empty() && flow.prompt.as_deref() != Some("consent") {
        return issue_code(shared, flow, user);
    }
    let users_may_consent = shared
        .tenant(user.tenant_index)
        .map(|t| t.users_may_consent)
        .unwrap_or(false);
    let admin_only = missing
        .iter()
        .any(|s| catalogue::delegated(s).is_some_and(|p| p.admin_only));
    if (!users_may_consent || admin_only) && !user.user.admin {
        flow.step = Step::NeedApproval;
        let page = pages::need_admin_approval(
            &flow.path_tenant,
            &flow_id,
            &app.display_name,
            &user.user.user_principal_name,
        );
        lock(&shared.idp).flows.insert(flow_id, flow);
        return html(StatusCode::OK, page);
    }
    flow.step = Step::Consent;
    // With prompt=consent everything requested is shown again; otherwise only what is new.
    let shown: Vec<&String> = if missing.is_empty() {
        flow.scopes.iter().collect()
    } else {
        missing.iter().collect()
    };
    let permissions = shown
        .iter()
        .filter_map(|s| catalogue::delegated(s))
        .map(|p| (p.user_title.to_string(), p.user_description.to_string()))
        .collect();
    let page = pages::consent(&pages::ConsentView {
        tenant: &flow.path_tenant,
        flow: &flow_id,
        app_name: &app.display_name,
        publisher: app.publisher.as_deref(),
        upn: &user.user.user_principal_name,
        permissions,
        org_checkbox: user.user.admin,
        for_organization: false,
    });
    lock(&shared.idp).flows.insert(flow_id, flow);
    html(StatusCode::OK, page)
}

fn issue_code(shared: &Shared, flow: Flow, user: &UserRef) -> Response {
    let code = format!("1.A{}", random_token(96));
    let session = flow.session.clone().unwrap_or_else(guid);
    lock(&shared.idp).codes.insert(
        code.clone(),
        CodeGrant {
            client_id: flow.client_id.clone(),
            tenant_id: user.tenant_id.clone(),
            user_id: user.user.id.clone(),
            redirect_uri: flow.redirect_uri.clone(),
            requested: flow.scopes.clone(),
            nonce: flow.nonce.clone(),
            challenge: flow.challenge.clone(),
            created: shared.now(),
            redeemed: false,
            mfa: flow.mfa_done,
            session: session.clone(),
        },
    );
    let mut params = vec![("code", code)];
    if let Some(s) = &flow.state {
        params.push(("state", s.clone()));
    }
    // Entra sends session_state beside code and state (OBS, §1.3).
    params.push(("session_state", session));
    to_client(&flow.redirect_uri, &flow.response_mode, &params)
}

/// Every interactive form posts here; the flow's current step says what the form was.
async fn login_step(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    let form = parse_qs(&String::from_utf8_lossy(&body));
    let flow_id = form.get("flow").cloned().unwrap_or_default();
    let Some(mut flow) = lock(&shared.idp).flows.remove(&flow_id) else {
        return error_page(
            &shared,
            50058,
            "The sign-in session has expired or is unknown. Start again from the application.",
            &guid(),
        );
    };
    let action = form.get("action").map(String::as_str).unwrap_or("");
    let app_name = shared
        .app(&flow.client_id)
        .map(|a| a.display_name)
        .unwrap_or_default();
    if action == "cancel" {
        return cancel(&shared, &flow);
    }
    match (flow.step, action) {
        (Step::SignIn, _) => {
            let email = form.get("email").cloned().unwrap_or_default();
            let password = form.get("password").cloned().unwrap_or_default();
            let admin_only = flow.kind != FlowKind::Authorize;
            let rerender = |shared: &Shared, flow: Flow, msg: &str| {
                let page =
                    pages::sign_in(&tenant, &flow_id, &app_name, &email, Some(msg), admin_only);
                lock(&shared.idp).flows.insert(flow_id.clone(), flow);
                html(StatusCode::OK, page)
            };
            let Some(user) = shared
                .user(&email)
                .filter(|u| u.user.user_principal_name.eq_ignore_ascii_case(&email))
            else {
                // AADSTS50034 in the real UI.
                return rerender(
                    &shared,
                    flow,
                    "We couldn't find an account with that username. Try another, or get a new Microsoft account.",
                );
            };
            if user.user.password != password {
                // AADSTS50126
                return rerender(
                    &shared,
                    flow,
                    "Your account or password is incorrect. If you don't remember your password, reset it now.",
                );
            }
            let pt = path_tenant(&shared, &flow.path_tenant);
            if !pt.as_ref().is_some_and(|pt| tenant_allows(pt, &user)) {
                let msg = format!(
                    "User account '{}' from identity provider 'https://sts.windows.net/{}/' does not exist in tenant '{}' and cannot access the application '{}'({}) in that tenant. The account needs to be added as an external user in the tenant first. Sign out and sign in again with a different Azure Active Directory user account.",
                    user.user.user_principal_name,
                    user.tenant_id,
                    flow.path_tenant,
                    flow.client_id,
                    app_name
                );
                return match flow.kind {
                    FlowKind::Authorize => {
                        error_redirect(&shared, &flow, "access_denied", 50020, &msg, None)
                    }
                    _ => admin_consent_error(&shared, &flow, None, 50020, &msg),
                };
            }
            let sid = guid();
            lock(&shared.idp).sessions.insert(
                sid.clone(),
                Session {
                    user_id: user.user.id.clone(),
                    mfa: false,
                },
            );
            flow.session = Some(sid.clone());
            flow.user = Some(user.user.id.clone());
            flow.mfa_done = false;
            with_session_cookie(&shared, after_sign_in(&shared, flow_id, flow, &user), &sid)
        }
        (Step::Pick, "other") => {
            flow.step = Step::SignIn;
            flow.user = None;
            let page = pages::sign_in(
                &tenant,
                &flow_id,
                &app_name,
                "",
                None,
                flow.kind != FlowKind::Authorize,
            );
            lock(&shared.idp).flows.insert(flow_id, flow);
            html(StatusCode::OK, page)
        }
        (Step::Pick, _) => match flow.user.clone().and_then(|u| shared.user(&u)) {
            Some(user) => after_sign_in(&shared, flow_id, flow, &user),
            None => cancel(&shared, &flow),
        },
        (Step::Mfa, _) => {
            let Some(user) = flow.user.clone().and_then(|u| shared.user(&u)) else {
                return cancel(&shared, &flow);
            };
            if form.get("otc").map(String::as_str) != Some(shared.opts.mfa_code.as_str()) {
                let page = pages::mfa(
                    &tenant,
                    &flow_id,
                    &user.user.user_principal_name,
                    Some("That code didn't work. Check the code and try again."),
                );
                lock(&shared.idp).flows.insert(flow_id, flow);
                return html(StatusCode::OK, page);
            }
            flow.mfa_done = true;
            if let Some(sid) = &flow.session
                && let Some(s) = lock(&shared.idp).sessions.get_mut(sid)
            {
                s.mfa = true;
            }
            after_sign_in(&shared, flow_id, flow, &user)
        }
        (Step::Consent, "accept") => {
            let Some(user) = flow.user.clone().and_then(|u| shared.user(&u)) else {
                return cancel(&shared, &flow);
            };
            let org = user.user.admin
                && form
                    .get("consent_org")
                    .is_some_and(|v| v == "true" || v == "on");
            {
                let mut idp = lock(&shared.idp);
                let key = (
                    user.tenant_id.to_ascii_lowercase(),
                    user.user.id.to_ascii_lowercase(),
                    flow.client_id.to_ascii_lowercase(),
                );
                idp.consents
                    .entry(key)
                    .or_default()
                    .extend(flow.scopes.iter().cloned());
                if org {
                    let g = idp
                        .admin_grants
                        .entry((
                            user.tenant_id.to_ascii_lowercase(),
                            flow.client_id.to_ascii_lowercase(),
                        ))
                        .or_default();
                    g.delegated.extend(flow.scopes.iter().cloned());
                }
            }
            issue_code(&shared, flow, &user)
        }
        (Step::NeedApproval, "admin") => {
            flow.step = Step::SignIn;
            flow.user = None;
            let page = pages::sign_in(&tenant, &flow_id, &app_name, "", None, false);
            lock(&shared.idp).flows.insert(flow_id, flow);
            html(StatusCode::OK, page)
        }
        (Step::NeedApproval, _) => {
            let code = shared.opts.admin_approval_return_code;
            match flow.kind {
                FlowKind::Authorize if code == 65004 => error_redirect(
                    &shared,
                    &flow,
                    "access_denied",
                    65004,
                    "User declined to consent to access the app.",
                    Some("cancel"),
                ),
                FlowKind::Authorize => error_redirect(
                    &shared,
                    &flow,
                    "access_denied",
                    90094,
                    "Administrator consent is required.",
                    Some("cancel"),
                ),
                _ => {
                    let tid = flow
                        .user
                        .clone()
                        .and_then(|u| shared.user(&u))
                        .map(|u| u.tenant_id);
                    admin_consent_error(
                        &shared,
                        &flow,
                        tid,
                        90094,
                        "Administrator consent is required.",
                    )
                }
            }
        }
        (Step::AdminConsent, "accept") => {
            let Some(user) = flow.user.clone().and_then(|u| shared.user(&u)) else {
                return cancel(&shared, &flow);
            };
            {
                let mut idp = lock(&shared.idp);
                let g = idp
                    .admin_grants
                    .entry((
                        user.tenant_id.to_ascii_lowercase(),
                        flow.client_id.to_ascii_lowercase(),
                    ))
                    .or_default();
                g.delegated.extend(flow.scopes.iter().cloned());
                g.roles.extend(flow.roles.iter().cloned());
            }
            let mut params = Vec::new();
            if flow.kind == FlowKind::AdminConsentV1 {
                // v1 success: ?tenant=…&state=…&admin_consent=True (§1.8)
                params.push(("tenant", user.tenant_id.clone()));
                if let Some(s) = &flow.state {
                    params.push(("state", s.clone()));
                }
                params.push(("admin_consent", "True".to_string()));
            } else {
                // v2 success: ?admin_consent=True&tenant=…&scope=…&state=… (§1.8)
                params.push(("admin_consent", "True".to_string()));
                params.push(("tenant", user.tenant_id.clone()));
                let granted: Vec<String> = flow
                    .scopes
                    .iter()
                    .chain(flow.roles.iter())
                    .filter(|s| !catalogue::OIDC_SCOPES.contains(&s.as_str()))
                    .map(|s| format!("{GRAPH_RESOURCE}/{s}"))
                    .collect();
                params.push(("scope", granted.join(" ")));
                if let Some(s) = &flow.state {
                    params.push(("state", s.clone()));
                }
            }
            to_client(&flow.redirect_uri, "query", &params)
        }
        _ => {
            lock(&shared.idp).flows.insert(flow_id, flow);
            error_page(
                &shared,
                9002313,
                "Invalid request. Request is malformed or invalid.",
                &guid(),
            )
        }
    }
}

/// The user pressed Cancel somewhere.
fn cancel(shared: &Shared, flow: &Flow) -> Response {
    match flow.kind {
        FlowKind::Authorize => {
            let error = if shared.opts.consent_cancel_error == "consent_required" {
                "consent_required"
            } else {
                "access_denied"
            };
            error_redirect(
                shared,
                flow,
                error,
                65004,
                "User declined to consent to access the app.",
                Some("cancel"),
            )
        }
        _ => {
            let tid = flow
                .user
                .clone()
                .and_then(|u| shared.user(&u))
                .map(|u| u.tenant_id);
            admin_consent_error(
                shared,
                flow,
                tid,
                65004,
                "User declined to consent to access the app.",
            )
        }
    }
}

// ------------------------------------------------------------------ admin consent

async fn admin_consent_v1(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    admin_consent(shared, tenant, q, headers, FlowKind::AdminConsentV1).await
}

async fn admin_consent_v2(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    admin_consent(shared, tenant, q, headers, FlowKind::AdminConsentV2).await
}

async fn admin_consent(
    shared: Arc<Shared>,
    tenant: String,
    q: Option<String>,
    headers: HeaderMap,
    kind: FlowKind,
) -> Response {
    let p = parse_qs(q.as_deref().unwrap_or(""));
    let correlation = guid();
    let Some(pt) = path_tenant(&shared, &tenant) else {
        return error_page(&shared, 90002, &tenant_not_found(&tenant), &correlation);
    };
    if kind == FlowKind::AdminConsentV2 && matches!(pt, PathTenant::Common | PathTenant::Consumers)
    {
        return error_page(
            &shared,
            90130,
            "Application is not supported over the /common or /consumers endpoints. Please use the /organizations or tenant-specific endpoint.",
            &correlation,
        );
    }
    let Some(client_id) = p.get("client_id") else {
        return error_page(
            &shared,
            900144,
            "The request body must contain the following parameter: 'client_id'.",
            &correlation,
        );
    };
    let Some(app) = shared.app(client_id) else {
        return error_page(
            &shared,
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'."
            ),
            &correlation,
        );
    };
    let redirect_uri = p.get("redirect_uri").cloned().unwrap_or_default();
    if !redirect_ok(&app, &redirect_uri, kind == FlowKind::AdminConsentV1) {
        return error_page(
            &shared,
            50011,
            &format!(
                "The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application '{}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more about how to fix this.",
                app.client_id
            ),
            &correlation,
        );
    }
    let mut flow = Flow {
        kind,
        path_tenant: tenant.clone(),
        client_id: app.client_id.clone(),
        redirect_uri,
        state: p.get("state").cloned(),
        response_mode: "query".into(),
        scopes: BTreeSet::new(),
        roles: BTreeSet::new(),
        nonce: None,
        challenge: None,
        prompt: None,
        login_hint: String::new(),
        user: None,
        session: None,
        mfa_done: false,
        step: Step::SignIn,
        correlation,
    };
    let all_static = |flow: &mut Flow| {
        for s in &app.delegated_permissions {
            if let Ok(Scope::Graph(g) | Scope::Oidc(g)) = catalogue::parse_scope(s) {
                flow.scopes.insert(g.to_string());
            }
        }
        for r in &app.application_permissions {
            if let Some(perm) = catalogue::application(r) {
                flow.roles.insert(perm.name.to_string());
            }
        }
    };
    if kind == FlowKind::AdminConsentV1 {
        all_static(&mut flow);
    } else {
        let Some(scope) = p.get("scope").filter(|s| !s.trim().is_empty()) else {
            return admin_consent_error(
                &shared,
                &flow,
                None,
                900144,
                "The request body must contain the following parameter: 'scope'.",
            );
        };
        for s in scope.split_whitespace() {
            match catalogue::parse_scope(s) {
                // App permissions can only be requested through /.default (§1.8).
                Ok(Scope::Default) => all_static(&mut flow),
                Ok(Scope::Graph(g) | Scope::Oidc(g)) => {
                    flow.scopes.insert(g.to_string());
                }
                Err(bad) => {
                    return admin_consent_error(
                        &shared,
                        &flow,
                        None,
                        70011,
                        &format!(
                            "The provided value for the input parameter 'scope' is not valid. The scope '{bad}' does not exist."
                        ),
                    );
                }
            }
        }
    }
    let flow_id = random_token(18);
    let session_user = session_from(&headers)
        .and_then(|sid| {
            lock(&shared.idp)
                .sessions
                .get(&sid)
                .cloned()
                .map(|s| (sid, s))
        })
        .and_then(|(sid, s)| shared.user(&s.user_id).map(|u| (sid, s, u)))
        .filter(|(_, _, u)| u.user.admin && tenant_allows(&pt, u));
    if let Some((sid, s, user)) = session_user {
        flow.session = Some(sid);
        flow.mfa_done = s.mfa;
        flow.user = Some(user.user.id.clone());
        return after_sign_in(&shared, flow_id, flow, &user);
    }
    let page = pages::sign_in(&tenant, &flow_id, &app.display_name, "", None, true);
    lock(&shared.idp).flows.insert(flow_id, flow);
    html(StatusCode::OK, page)
}

fn admin_consent_step(
    shared: &Shared,
    flow_id: String,
    mut flow: Flow,
    user: &UserRef,
    app: &AppFixture,
) -> Response {
    if !user.user.admin {
        // Only a tenant administrator can complete admin consent (§1.8).
        flow.step = Step::NeedApproval;
        let page = pages::need_admin_approval(
            &flow.path_tenant,
            &flow_id,
            &app.display_name,
            &user.user.user_principal_name,
        );
        lock(&shared.idp).flows.insert(flow_id, flow);
        return html(StatusCode::OK, page);
    }
    flow.step = Step::AdminConsent;
    let mut permissions: Vec<(String, String)> = flow
        .scopes
        .iter()
        .filter_map(|s| catalogue::delegated(s))
        .map(|p| (p.admin_title.to_string(), p.admin_description.to_string()))
        .collect();
    permissions.extend(
        flow.roles
            .iter()
            .filter_map(|r| catalogue::application(r))
            .map(|p| (p.admin_title.to_string(), p.admin_description.to_string())),
    );
    let page = pages::consent(&pages::ConsentView {
        tenant: &flow.path_tenant,
        flow: &flow_id,
        app_name: &app.display_name,
        publisher: app.publisher.as_deref(),
        upn: &user.user.user_principal_name,
        permissions,
        org_checkbox: false,
        for_organization: true,
    });
    lock(&shared.idp).flows.insert(flow_id, flow);
    html(StatusCode::OK, page)
}

/// Admin-consent error redirects as observed (§1.8): v1 keeps `tenant`, v2 drops it and adds `error_uri`.
fn admin_consent_error(
    shared: &Shared,
    flow: &Flow,
    tenant_id: Option<String>,
    code: u32,
    message: &str,
) -> Response {
    let trace = guid();
    let desc = describe(
        code,
        message,
        &trace,
        &flow.correlation,
        &aad_timestamp(shared.now()),
    );
    let mut params = vec![
        ("error", "access_denied".to_string()),
        ("error_description", desc),
    ];
    if flow.kind == FlowKind::AdminConsentV1 {
        params.push(("admin_consent", "True".to_string()));
        if let Some(t) = tenant_id {
            params.push(("tenant", t));
        }
    } else {
        params.push(("error_uri", error_uri(code)));
        params.push(("admin_consent", "True".to_string()));
    }
    if let Some(s) = &flow.state {
        params.push(("state", s.clone()));
    }
    to_client(&flow.redirect_uri, "query", &params)
}

async fn logout(
    State(shared): State<Arc<Shared>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Some(sid) = session_from(&headers) {
        lock(&shared.idp).sessions.remove(&sid);
    }
    let p = parse_qs(q.as_deref().unwrap_or(""));
    let mut r = match p.get("post_logout_redirect_uri") {
        Some(uri) => to_client(uri, "query", &[]),
        None => html(StatusCode::OK, pages::signed_out()),
    };
    if let Ok(v) = HeaderValue::from_str(&format!("{SESSION_COOKIE}=; Path=/; Max-Age=0")) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    if let Some(loc) = r.headers().get(header::LOCATION).cloned() {
        // No parameters were added: strip a dangling '?'.
        if let Ok(s) = loc.to_str()
            && let Ok(v) = HeaderValue::from_str(s.trim_end_matches('?'))
        {
            r.headers_mut().insert(header::LOCATION, v);
        }
    }
    r
}

// ------------------------------------------------------------------ token endpoint

async fn token(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let correlation = correlation_of(&headers);
    let route = "POST /{tenant}/oauth2/v2.0/token";
    if let Some(fault) =
        crate::registry::take_fault(&shared, &format!("/{tenant}/oauth2/v2.0/token"), None)
    {
        if let Some(ms) = fault.delay_ms {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
        if let Some(status) = fault.status {
            let error = if status == 503 || status == 429 {
                "temporarily_unavailable"
            } else {
                "server_error"
            };
            let mut r = aad_json(
                &shared,
                &Aad::new(
                    error,
                    90033,
                    "A transient error has occurred. Please try again.",
                )
                .status(status),
                &correlation,
            );
            if let Some(ra) = fault.retry_after
                && let Ok(v) = HeaderValue::from_str(&fault.retry_after_header(ra))
            {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            crate::registry::count(&shared, route, status, None);
            return r;
        }
    }
    let r = match token_inner(&shared, &tenant, &headers, &body, &correlation) {
        Ok(v) => json_response(
            StatusCode::OK,
            v.to_string(),
            &[("client-request-id", correlation.clone())],
        ),
        Err(e) => aad_json(&shared, &e, &correlation),
    };
    crate::registry::count(&shared, route, r.status().as_u16(), None);
    r
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine;
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let b = v
        .strip_prefix("Basic ")
        .or_else(|| v.strip_prefix("basic "))?;
    let raw = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(b.trim())
            .ok()?,
    )
    .ok()?;
    let (id, secret) = raw.split_once(':')?;
    // RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
    let dec = |s: &str| {
        form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some((dec(id), dec(secret)))
}

fn token_inner(
    shared: &Shared,
    tenant: &str,
    headers: &HeaderMap,
    body: &[u8],
    _correlation: &str,
) -> Result<Value, Aad> {
    let form = parse_qs(&String::from_utf8_lossy(body));
    let pt = path_tenant(shared, tenant)
        .ok_or_else(|| Aad::new("invalid_request", 90002, tenant_not_found(tenant)))?;
    let basic = basic_credentials(headers);
    let client_id = form
        .get("client_id")
        .cloned()
        .or_else(|| basic.as_ref().map(|b| b.0.clone()))
        .ok_or_else(|| {
            Aad::new(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_id'.",
            )
        })?;
    let grant_type = form.get("grant_type").ok_or_else(|| {
        Aad::new(
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'grant_type'.",
        )
    })?;
    if !matches!(
        grant_type.as_str(),
        "authorization_code" | "refresh_token" | "client_credentials"
    ) {
        return Err(Aad::new(
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{grant_type}'."),
        ));
    }
    let tenant_label = match &pt {
        PathTenant::Tenant(i) => shared.tenant(*i).map(|t| t.id).unwrap_or_default(),
        _ => tenant.to_string(),
    };
    let app = shared.app(&client_id).ok_or_else(|| {
        Aad::new("unauthorized_client", 700016, format!("Application with identifier '{client_id}' was not found in the directory '{tenant_label}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."))
    })?;
    // Client authentication: secret in the body or HTTP Basic (§1.4).
    let invalid_client = shared.opts.invalid_client_status;
    let secret = form
        .get("client_secret")
        .cloned()
        .or_else(|| basic.map(|b| b.1));
    if let Some(assertion) = form.get("client_assertion") {
        verify_client_assertion(
            shared,
            &app,
            form.get("client_assertion_type").map(String::as_str),
            assertion,
        )
        .map_err(|e| e.status(invalid_client))?;
        let now = shared.now();
        return match grant_type.as_str() {
            "authorization_code" => redeem_code(shared, &pt, &app, &form, now),
            "refresh_token" => redeem_refresh(shared, &pt, &app, &form, now),
            _ => client_credentials(shared, &pt, &app, &form, now),
        };
    }
    let Some(secret) = secret else {
        return Err(Aad::new("invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.").status(invalid_client));
    };
    let now = shared.now();
    match app.secrets.iter().find(|s| s.value == secret) {
        None => {
            return Err(Aad::new("invalid_client", 7000215, format!("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.", app.client_id)).status(invalid_client));
        }
        Some(s) => {
            let expires =
                OffsetDateTime::parse(&s.expires, &time::format_description::well_known::Rfc3339)
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH);
            if expires <= now {
                return Err(Aad::new("invalid_client", 7000222, format!("The provided client secret keys for app '{}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.", app.client_id)).status(invalid_client));
            }
        }
    }
    match grant_type.as_str() {
        "authorization_code" => redeem_code(shared, &pt, &app, &form, now),
        "refresh_token" => redeem_refresh(shared, &pt, &app, &form, now),
        _ => client_credentials(shared, &pt, &app, &form, now),
    }
}

/// `private_key_jwt` (§1.4): header `alg` RS256 or PS256 and `x5t#S256` (or legacy `x5t`) naming a
/// registered certificate; claims `aud` = this token endpoint (or the real login host's), `iss` = `sub` =
/// client id, `exp`/`nbf` in range, `jti` never seen before.
fn verify_client_assertion(
    shared: &Shared,
    app: &AppFixture,
    kind: Option<&str>,
    jwt: &str,
) -> Result<(), Aad> {
    use base64::Engine;
    use rsa::pkcs8::DecodePublicKey;
    use rsa::signature::Verifier;
    let bad = |why: &str| {
        Aad::new(
            "invalid_client",
            700027,
            format!("Client assertion failed signature validation. {why}"),
        )
    };
    if kind != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer") {
        return Err(Aad::new(
            "invalid_request",
            9002313,
            "Invalid request. Request is malformed or invalid. client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
        ));
    }
    let parts: Vec<&str> = jwt.split('.').collect();
    let dec =
        |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s.trim_end_matches('='));
    let (Some(h), Some(c), Some(sig)) = (parts.first(), parts.get(1), parts.get(2)) else {
        return Err(bad("Malformed JWT."));
    };
    let header: Value = dec(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| bad("Malformed header."))?;
    let claims: Value = dec(c)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| bad("Malformed claims."))?;
    let signature = dec(sig).map_err(|_| bad("Malformed signature."))?;
    let thumb = header
        .get("x5t#S256")
        .or_else(|| header.get("x5t"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let now = shared.now();
    let cert = app
        .certificates
        .iter()
        .find(|c| c.thumbprint == thumb)
        .ok_or_else(|| {
            bad(&format!(
                "Key was not found. Thumbprint of key used by client: '{thumb}'."
            ))
        })?;
    let expires = OffsetDateTime::parse(
        &cert.expires,
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    if expires <= now {
        return Err(bad("The certificate credential has expired."));
    }
    let key = rsa::RsaPublicKey::from_public_key_pem(&cert.public_key_pem)
        .map_err(|_| bad("Registered key is unusable."))?;
    let input = format!("{h}.{c}");
    let verified = match header.get("alg").and_then(Value::as_str) {
        Some("RS256") => rsa::pkcs1v15::Signature::try_from(signature.as_slice())
            .ok()
            .is_some_and(|s| {
                rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key)
                    .verify(input.as_bytes(), &s)
                    .is_ok()
            }),
        Some("PS256") => rsa::pss::Signature::try_from(signature.as_slice())
            .ok()
            .is_some_and(|s| {
                rsa::pss::VerifyingKey::<Sha256>::new(key)
                    .verify(input.as_bytes(), &s)
                    .is_ok()
            }),
        _ => false,
    };
    if !verified {
        return Err(bad("Signature is invalid."));
    }
    let claim = |k: &str| claims.get(k).and_then(Value::as_str).unwrap_or("");
    if !claim("iss").eq_ignore_ascii_case(&app.client_id)
        || !claim("sub").eq_ignore_ascii_case(&app.client_id)
    {
        return Err(Aad::new(
            "unauthorized_client",
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter.",
        ));
    }
    let aud = claim("aud");
    if !aud.ends_with("/oauth2/v2.0/token")
        || !(aud.starts_with(&shared.base_url)
            || aud.starts_with("https://login.microsoftonline.com/"))
    {
        return Err(bad(&format!("Invalid audience '{aud}'.")));
    }
    let (exp, nbf) = (
        claims.get("exp").and_then(Value::as_i64).unwrap_or(0),
        claims.get("nbf").and_then(Value::as_i64).unwrap_or(0),
    );
    let t = now.unix_timestamp();
    // Five minutes of clock skew either way, as Entra allows.
    if exp + 300 < t || nbf - 300 > t {
        return Err(Aad::new(
            "invalid_client",
            700024,
            "Client assertion is not within its valid time range.",
        ));
    }
    let jti = claim("jti").to_string();
    if jti.is_empty() || !lock(&shared.idp).seen_assertions.insert(jti) {
        return Err(bad(
            "The client assertion has already been used (jti replay).",
        ));
    }
    Ok(())
}

fn redeem_code(
    shared: &Shared,
    pt: &PathTenant,
    app: &AppFixture,
    form: &HashMap<String, String>,
    now: OffsetDateTime,
) -> Result<Value, Aad> {
    let code = form.get("code").ok_or_else(|| {
        Aad::new(
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'code'.",
        )
    })?;
    let redirect_uri = form.get("redirect_uri").ok_or_else(|| {
        Aad::new(
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'redirect_uri'.",
        )
    })?;
    let grant = {
        let mut idp = lock(&shared.idp);
        let g = idp.codes.get_mut(code).ok_or_else(|| {
            Aad::new(
                "invalid_grant",
                9002313,
                "Invalid request. Request is malformed or invalid.",
            )
        })?;
        if g.redeemed {
            return Err(Aad::new(
                "invalid_grant",
                54005,
                "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
            ));
        }
        if now - g.created > Duration::seconds(shared.opts.code_lifetime_secs) {
            return Err(Aad::new(
                "invalid_grant",
                70008,
                "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
            ));
        }
        if !g.client_id.eq_ignore_ascii_case(&app.client_id) {
            return Err(Aad::new(
                "invalid_grant",
                70000,
                "The provided value for the 'code' parameter is not valid. The code was issued to a different client.",
            ));
        }
        if let PathTenant::Tenant(i) = pt
            && shared
                .tenant(*i)
                .is_some_and(|t| !t.id.eq_ignore_ascii_case(&g.tenant_id))
        {
            return Err(Aad::new(
                "invalid_grant",
                700005,
                "Provided Authorization Code is intended to use against other tenant, thus rejected.",
            ));
        }
        if &g.redirect_uri != redirect_uri {
            return Err(Aad::new(
                "invalid_grant",
                500112,
                format!(
                    "The reply address '{redirect_uri}' does not match the reply address '{}' provided when requesting Authorization code.",
                    g.redirect_uri
                ),
            ));
        }
        if let Some((challenge, method)) = &g.challenge {
            let verifier = form.get("code_verifier").ok_or_else(|| Aad::new("invalid_grant", 501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request."))?;
            let computed = if method == "S256" {
                b64url(&Sha256::digest(verifier.as_bytes()))
            } else {
                verifier.clone()
            };
            if &computed != challenge {
                return Err(Aad::new(
                    "invalid_grant",
                    501481,
                    "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
                ));
            }
        }
        // Single use (§1.4): a second redemption answers AADSTS54005.
        g.redeemed = true;
        g.clone()
    };
    let user = shared.user(&grant.user_id).ok_or_else(|| {
        Aad::new(
            "invalid_grant",
            50034,
            "The user account does not exist in the directory.",
        )
    })?;
    issue_tokens(
        shared,
        app,
        &user,
        &grant.requested,
        grant.nonce.as_deref(),
        grant.mfa,
        &grant.session,
        form,
        now,
        None,
    )
}

fn redeem_refresh(
    shared: &Shared,
    _pt: &PathTenant,
    app: &AppFixture,
    form: &HashMap<String, String>,
    now: OffsetDateTime,
) -> Result<Value, Aad> {
    let rt = form.get("refresh_token").ok_or_else(|| {
        Aad::new(
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'refresh_token'.",
        )
    })?;
    let grant = {
        let mut idp = lock(&shared.idp);
        let valid_from = idp.tokens_valid_from.clone();
        let g = idp.refresh.get_mut(rt).ok_or_else(|| {
            Aad::new(
                "invalid_grant",
                9002313,
                "Invalid request. Request is malformed or invalid.",
            )
        })?;
        if !g.client_id.eq_ignore_ascii_case(&app.client_id) {
            return Err(Aad::new(
                "invalid_grant",
                70000,
                "Provided grant is invalid or malformed.",
            ));
        }
        if let Some(from) = valid_from.get(&g.user_id.to_ascii_lowercase())
            && g.issued < *from
        {
            return Err(Aad::new(
                "invalid_grant",
                50173,
                format!(
                    "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. The grant was issued on '{}' and the TokensValidFrom date (before which tokens are not valid) for this user is '{}'.",
                    aad_timestamp(g.issued),
                    aad_timestamp(*from)
                ),
            ));
        }
        let idle = now - g.last_used;
        if idle > Duration::seconds(shared.opts.refresh_token_max_inactive_secs) {
            // Wording as observed: "...inactive for 90.00:00:00" (§1.4, [S28]).
            let secs = shared.opts.refresh_token_max_inactive_secs;
            let span = format!(
                "{}.{:02}:{:02}:{:02}",
                secs / 86400,
                (secs % 86400) / 3600,
                (secs % 3600) / 60,
                secs % 60
            );
            return Err(Aad::new("invalid_grant", 700082, format!("The refresh token has expired due to inactivity. The token was issued on {} and was inactive for {span}.", aad_timestamp(g.issued))).sub("bad_token"));
        }
        // The old token stays valid (§1.4); using it counts as activity.
        g.last_used = now;
        g.clone()
    };
    let user = shared.user(&grant.user_id).ok_or_else(|| {
        Aad::new(
            "invalid_grant",
            50034,
            "The user account does not exist in the directory.",
        )
    })?;
    if user.user.mfa_required && !grant.mfa {
        return Err(Aad::new("invalid_grant", 50076, format!("Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '{GRAPH_APP_ID}'.")).sub("basic_action"));
    }
    let mut requested = grant.requested.clone();
    if let Some(scope) = form.get("scope") {
        let asked = scope_names(app, scope).map_err(|bad| Aad::new("invalid_scope", 70011, format!("The provided value for the input parameter 'scope' is not valid. The scope '{bad}' does not exist.")))?;
        // offline_access/openid are always re-granted; Graph scopes must have been consented.
        requested = asked
            .into_iter()
            .chain(
                grant
                    .requested
                    .iter()
                    .filter(|s| catalogue::OIDC_SCOPES.contains(&s.as_str()))
                    .cloned(),
            )
            .collect();
    }
    // Everything asked for must (still) be consented: revoked or never-given consent → 65001.
    let flowlike = Flow {
        kind: FlowKind::Authorize,
        path_tenant: String::new(),
        client_id: app.client_id.clone(),
        redirect_uri: String::new(),
        state: None,
        response_mode: String::new(),
        scopes: requested.clone(),
        roles: BTreeSet::new(),
        nonce: None,
        challenge: None,
        prompt: None,
        login_hint: String::new(),
        user: None,
        session: None,
        mfa_done: false,
        step: Step::Consent,
        correlation: String::new(),
    };
    if !missing_consent(shared, &flowlike, &user).is_empty() {
        return Err(Aad::new("invalid_grant", 65001, format!("The user or administrator has not consented to use the application with ID '{}' named '{}'. Send an interactive authorization request for this user and resource.", app.client_id, app.display_name)).sub("consent_required"));
    }
    let issued = grant.issued;
    issue_tokens(
        shared,
        app,
        &user,
        &requested,
        None,
        grant.mfa,
        &grant.session,
        form,
        now,
        Some(issued),
    )
}

#[allow(clippy::too_many_arguments)]
fn issue_tokens(
    shared: &Shared,
    app: &AppFixture,
    user: &UserRef,
    requested: &BTreeSet<String>,
    nonce: Option<&str>,
    mfa: bool,
    session: &str,
    form: &HashMap<String, String>,
    now: OffsetDateTime,
    rt_issued: Option<OffsetDateTime>,
) -> Result<Value, Aad> {
    // The access token carries every Graph scope consented for this app (user + tenant-wide), as Entra does.
    let scp: BTreeSet<String> = {
        let idp = lock(&shared.idp);
        let key = (
            user.tenant_id.to_ascii_lowercase(),
            user.user.id.to_ascii_lowercase(),
            app.client_id.to_ascii_lowercase(),
        );
        let mut s: BTreeSet<String> = idp.consents.get(&key).cloned().unwrap_or_default();
        if let Some(g) = idp.admin_grants.get(&(
            user.tenant_id.to_ascii_lowercase(),
            app.client_id.to_ascii_lowercase(),
        )) {
            s.extend(g.delegated.iter().cloned());
        }
        s.retain(|x| !catalogue::OIDC_SCOPES.contains(&x.as_str()));
        s
    };
    let lifetime = shared.opts.access_token_lifetime_secs;
    let exp = now + Duration::seconds(lifetime);
    let access = shared.keys.sign(&json!({
        "aud": GRAPH_RESOURCE,
        "iss": format!("https://sts.windows.net/{}/", user.tenant_id),
        "iat": now.unix_timestamp(), "nbf": now.unix_timestamp(), "exp": exp.unix_timestamp(),
        "app_displayname": app.display_name,
        "appid": app.client_id,
        "idtyp": "user",
        "name": user.user.display_name,
        "oid": user.user.id,
        "scp": scp.iter().cloned().collect::<Vec<_>>().join(" "),
        "sub": pairwise(&user.user.id, GRAPH_APP_ID),
        "tid": user.tenant_id,
        "unique_name": user.user.user_principal_name,
        "upn": user.user.user_principal_name,
        "uti": random_token(16),
        "ver": "1.0",
    }));
    lock(&shared.idp).remember_access_token(
        shared.now(),
        access.clone(),
        AccessGrant {
            tenant_id: user.tenant_id.clone(),
            client_id: app.client_id.clone(),
            user_id: Some(user.user.id.clone()),
            scopes: scp.clone(),
            roles: BTreeSet::new(),
            expires: exp,
        },
    );
    let mut scope_out: Vec<String> = requested
        .iter()
        .filter(|s| ["openid", "profile", "email"].contains(&s.as_str()))
        .cloned()
        .collect();
    scope_out.extend(scp.iter().map(|s| format!("{GRAPH_RESOURCE}/{s}")));
    let mut out = serde_json::Map::new();
    out.insert("token_type".into(), json!("Bearer"));
    out.insert("scope".into(), json!(scope_out.join(" ")));
    out.insert("expires_in".into(), json!(lifetime));
    out.insert("ext_expires_in".into(), json!(lifetime));
    out.insert("access_token".into(), json!(access));
    if requested.contains("offline_access") {
        let rt = format!("1.AX{}", random_token(180));
        lock(&shared.idp).refresh.insert(
            rt.clone(),
            RefreshGrant {
                client_id: app.client_id.clone(),
                user_id: user.user.id.clone(),
                requested: requested.clone(),
                // A rotated refresh token keeps the original grant instant: revocation compares to it.
                issued: rt_issued.unwrap_or(now),
                last_used: now,
                mfa,
                session: session.to_string(),
            },
        );
        out.insert("refresh_token".into(), json!(rt));
    }
    if requested.contains("openid") {
        let mut claims = json!({
            "aud": app.client_id,
            "iss": format!("{}/{}/v2.0", shared.base_url, user.tenant_id),
            "iat": now.unix_timestamp(), "nbf": now.unix_timestamp(), "exp": exp.unix_timestamp(),
            "aio": random_token(24),
            "rh": format!("0.{}", random_token(24)),
            "sid": session,
            "sub": pairwise(&user.user.id, &app.client_id),
            "tid": user.tenant_id,
            "uti": random_token(16),
            "ver": "2.0",
        });
        if requested.contains("profile") {
            claims["oid"] = json!(user.user.id);
            claims["name"] = json!(user.user.display_name);
            claims["preferred_username"] = json!(user.user.user_principal_name);
        }
        if requested.contains("email") {
            claims["email"] = json!(user.user.user_principal_name);
        }
        if let Some(n) = nonce {
            claims["nonce"] = json!(n);
        }
        out.insert("id_token".into(), json!(shared.keys.sign(&claims)));
    }
    if form.get("client_info").map(String::as_str) == Some("1") {
        // MSAL asks for client_info to build its account key (uid.utid).
        out.insert(
            "client_info".into(),
            json!(b64url(
                json!({"uid": user.user.id, "utid": user.tenant_id})
                    .to_string()
                    .as_bytes()
            )),
        );
    }
    Ok(Value::Object(out))
}

fn pairwise(oid: &str, client: &str) -> String {
    b64url(&Sha256::digest(format!("{oid}|{client}").as_bytes()))
}

fn client_credentials(
    shared: &Shared,
    pt: &PathTenant,
    app: &AppFixture,
    form: &HashMap<String, String>,
    now: OffsetDateTime,
) -> Result<Value, Aad> {
    let PathTenant::Tenant(ti) = pt else {
        return Err(Aad::new(
            "invalid_request",
            9001023,
            "The grant type is not supported over the /common or /consumers endpoints. Please use the /organizations or tenant-specific endpoint.",
        ));
    };
    let tenant = shared
        .tenant(*ti)
        .ok_or_else(|| Aad::new("invalid_request", 90002, tenant_not_found("?")))?;
    let scope = form.get("scope").ok_or_else(|| {
        Aad::new(
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'scope'.",
        )
    })?;
    let scopes: Vec<&str> = scope.split_whitespace().collect();
    // Exactly one resource with the /.default suffix (§1.4).
    if scopes.len() != 1 || !matches!(catalogue::parse_scope(scopes[0]), Ok(Scope::Default)) {
        return Err(Aad::new(
            "invalid_scope",
            1002012,
            format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        ));
    }
    let grant = lock(&shared.idp)
        .admin_grants
        .get(&(
            tenant.id.to_ascii_lowercase(),
            app.client_id.to_ascii_lowercase(),
        ))
        .cloned();
    let home = app.home_tenant.eq_ignore_ascii_case(&tenant.id);
    if grant.is_none() && !home {
        return Err(Aad::new(
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                app.client_id, tenant.display_name
            ),
        ));
    }
    let roles = grant.map(|g| g.roles).unwrap_or_default();
    let lifetime = shared.opts.access_token_lifetime_secs;
    let exp = now + Duration::seconds(lifetime);
    let mut claims = json!({
        "aud": GRAPH_RESOURCE,
        "iss": format!("https://sts.windows.net/{}/", tenant.id),
        "iat": now.unix_timestamp(), "nbf": now.unix_timestamp(), "exp": exp.unix_timestamp(),
        "app_displayname": app.display_name,
        "appid": app.client_id,
        "idtyp": "app",
        "oid": pairwise(&app.client_id, &tenant.id),
        "sub": pairwise(&app.client_id, &tenant.id),
        "tid": tenant.id,
        "uti": random_token(16),
        "ver": "1.0",
    });
    // Without granted application permissions the token simply has no `roles` (§1.4, Graph then 403s).
    if !roles.is_empty() {
        claims["roles"] = json!(roles.iter().cloned().collect::<Vec<_>>());
    }
    let access = shared.keys.sign(&claims);
    lock(&shared.idp).remember_access_token(
        shared.now(),
        access.clone(),
        AccessGrant {
            tenant_id: tenant.id.clone(),
            client_id: app.client_id.clone(),
            user_id: None,
            scopes: BTreeSet::new(),
            roles,
            expires: exp,
        },
    );
    Ok(
        json!({"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": access}),
    )
}

// ------------------------------------------------------------------ used by Graph and the control API

pub(crate) enum TokenCheck {
    Valid(AccessGrant),
    Expired,
    Unknown,
}

pub(crate) fn check_access_token(shared: &Shared, token: &str) -> TokenCheck {
    match lock(&shared.idp).access.get(token) {
        Some(g) if g.expires > shared.now() => TokenCheck::Valid(g.clone()),
        Some(_) => TokenCheck::Expired,
        None => TokenCheck::Unknown,
    }
}

impl IdpState {
    /// Stores an issued access token, dropping expired ones (and spent codes) now and then so long
    /// benchmark runs do not grow without bound.
    fn remember_access_token(&mut self, now: OffsetDateTime, token: String, grant: AccessGrant) {
        if self.access.len() >= 50_000 {
            self.access.retain(|_, g| g.expires > now);
            self.codes
                .retain(|_, c| !c.redeemed && now - c.created < Duration::hours(1));
        }
        self.access.insert(token, grant);
    }

    pub(crate) fn revoke_user(&mut self, user_id: &str, at: OffsetDateTime) {
        self.tokens_valid_from
            .insert(user_id.to_ascii_lowercase(), at);
        self.sessions
            .retain(|_, s| !s.user_id.eq_ignore_ascii_case(user_id));
    }

    pub(crate) fn revoke_consent(&mut self, tenant: &str, user_id: Option<&str>, client_id: &str) {
        let (t, c) = (tenant.to_ascii_lowercase(), client_id.to_ascii_lowercase());
        match user_id {
            Some(u) => {
                self.consents.remove(&(t, u.to_ascii_lowercase(), c));
            }
            None => {
                self.admin_grants.remove(&(t, c));
            }
        }
    }

    pub(crate) fn expire_access_tokens(&mut self, at: OffsetDateTime) {
        for g in self.access.values_mut() {
            g.expires = at;
        }
    }

    pub(crate) fn age_refresh_tokens(&mut self, user_id: Option<&str>, by: Duration) {
        for g in self.refresh.values_mut() {
            if user_id.is_none_or(|u| g.user_id.eq_ignore_ascii_case(u)) {
                g.last_used -= by;
                g.issued -= by;
            }
        }
    }
}
