//! The browser legs: the `/authorize` URL (auth code + PKCE S256, `state`, `nonce`), the callback it
//! comes back to, and the v2 admin-consent URL and callback (MICROSOFT.md §1.2, §1.3, §1.8).

use crate::config::{AppRegistration, Endpoints, GRAPH_DEFAULT_SCOPE, Tenant};
use crate::error::{MicrosoftError, aadsts_code, redirect_error_reason};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::{ReasonCode, WhoMustAct};
use rand::RngCore;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;
use url::Url;

/// 32 random bytes, base64url: 43 characters, 256 bits. Used for the PKCE verifier (RFC 7636 wants
/// 43–128 characters from the unreserved set, which base64url without padding is), `state` and
/// `nonce` (≥128 bits each so they cannot be guessed). `rand::rng()` is a CSPRNG seeded from the OS.
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// S256 challenge of a PKCE verifier: base64url(SHA-256(verifier)) (RFC 7636 §4.2).
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Compares a value that came back through the browser with the one stored server-side, in constant
/// time so response timing tells an attacker nothing about how much of a guess was right.
pub fn secrets_match(received: &str, expected: &str) -> bool {
    !expected.is_empty() && received.as_bytes().ct_eq(expected.as_bytes()).into()
}

/// `prompt` values of §1.2 (`admin_consent` is v1-only and deliberately absent: use
/// [`crate::MicrosoftClient::admin_consent_url`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    /// Ask for credentials even with a session (Reconnect as someone else).
    Login,
    /// Never show UI; fail with `interaction_required`/`login_required`/`consent_required`.
    None,
    /// Show the consent page even when everything is consented (re-grant after scope changes).
    Consent,
    /// Account picker.
    SelectAccount,
}

impl Prompt {
    fn as_str(self) -> &'static str {
        match self {
            Prompt::Login => "login",
            Prompt::None => "none",
            Prompt::Consent => "consent",
            Prompt::SelectAccount => "select_account",
        }
    }
}

/// A prepared sign-in: send the browser to `url`; store `state`, `pkce_verifier`, `nonce` (and the
/// redirect URI) server-side until the callback, never in the browser.
pub struct AuthorizationRequest {
    pub url: Url,
    pub state: String,
    pub pkce_verifier: SecretString,
    pub nonce: String,
}

impl fmt::Debug for AuthorizationRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationRequest")
            .field("url", &self.url.as_str())
            .field("pkce_verifier", &"[REDACTED]")
            .finish_non_exhaustive()
    }
}

pub(crate) fn authorization_request(
    endpoints: &Endpoints,
    app: &AppRegistration,
    redirect_uri: &str,
    scope: &str,
    login_hint: Option<&str>,
    prompt: Option<Prompt>,
) -> Result<AuthorizationRequest, MicrosoftError> {
    // Without `openid` there is no id_token and without `profile` no `oid`, so the sign-in could
    // never be verified (§1.6): refuse here rather than after the user has been through the pages.
    let has = |want: &str| scope.split_whitespace().any(|s| s.eq_ignore_ascii_case(want));
    if !has("openid") || !has("profile") {
        return Err(MicrosoftError::Config("the authorization scope must include `openid` and `profile`".into()));
    }
    let state = random_token();
    let verifier = random_token();
    let nonce = random_token();
    let mut url = endpoints.login(&[app.tenant.as_str(), "oauth2", "v2.0", "authorize"])?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("client_id", &app.client_id)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", redirect_uri)
            // `query` keeps the callback a plain GET an axum route can read (§1.2).
            .append_pair("response_mode", "query")
            .append_pair("scope", scope)
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &pkce_challenge(&verifier))
            .append_pair("code_challenge_method", "S256");
        if let Some(hint) = login_hint.filter(|h| !h.is_empty()) {
            q.append_pair("login_hint", hint);
        }
        // `select_account` must not be combined with `login_hint` (§1.2): the hint wins.
        if let Some(p) = prompt.filter(|p| !(login_hint.is_some() && *p == Prompt::SelectAccount)) {
            q.append_pair("prompt", p.as_str());
        }
    }
    Ok(AuthorizationRequest { url, state, pkce_verifier: SecretString::from(verifier), nonce })
}

/// A successful callback: the single-use code and the echoed state.
pub struct CallbackCode {
    pub code: SecretString,
    pub state: String,
}

impl CallbackCode {
    /// True when the echoed `state` is the one stored for this browser (§1.2: "client must compare").
    pub fn state_matches(&self, expected: &str) -> bool {
        secrets_match(&self.state, expected)
    }
}

impl fmt::Debug for CallbackCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackCode").field("code", &"[REDACTED]").field("state", &self.state).finish()
    }
}

/// An error redirect (§1.3, §1.8), or a callback that is not a well-formed answer at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error} ({reason:?})")]
pub struct CallbackError {
    pub state: Option<String>,
    pub error: String,
    pub error_description: Option<String>,
    /// AADSTS number(s), from `error_uri` or the description prefix.
    pub error_codes: Vec<u32>,
    /// `cancel` when the user pressed Cancel (§1.3).
    pub error_subcode: Option<String>,
    pub error_uri: Option<String>,
    /// Admin-consent errors arrive with `admin_consent=True` too (§1.8); informational only.
    pub admin_consent: bool,
    /// The tenant an admin-consent error named, when it did (v1 keeps it, v2 drops it, §1.8).
    pub tenant: Option<String>,
    pub reason: ReasonCode,
}

impl CallbackError {
    pub fn who_must_act(&self) -> WhoMustAct {
        self.reason.who_must_act()
    }

    pub fn state_matches(&self, expected: &str) -> bool {
        self.state.as_deref().is_some_and(|s| secrets_match(s, expected))
    }

    /// A callback that cannot be trusted or understood: missing/duplicated parameters, or a state
    /// that matches nothing stored.
    pub fn not_verified(state: Option<String>, what: &str) -> Box<CallbackError> {
        Box::new(CallbackError {
            state,
            error: what.to_string(),
            error_description: None,
            error_codes: Vec::new(),
            error_subcode: None,
            error_uri: None,
            admin_consent: false,
            tenant: None,
            reason: ReasonCode::SignInNotVerified,
        })
    }
}

/// The callback's query parameters; a parameter sent twice is refused, since only a tampered
/// redirect would carry two codes or two states.
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: &str) -> Params {
        let q = query.strip_prefix('?').unwrap_or(query);
        Params(url::form_urlencoded::parse(q.as_bytes()).into_owned().collect())
    }

    fn get(&self, key: &str) -> Result<Option<&str>, String> {
        let mut found = self.0.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str());
        let first = found.next();
        if found.next().is_some() {
            return Err(format!("duplicate_{key}"));
        }
        Ok(first.filter(|v| !v.is_empty()))
    }
}

fn error_from(p: &Params, error: &str, state: Option<String>) -> Result<CallbackError, String> {
    let error_description = p.get("error_description")?.map(str::to_string);
    let error_uri = p.get("error_uri")?.map(str::to_string);
    let error_subcode = p.get("error_subcode")?.map(str::to_string);
    let code = aadsts_code(error_uri.as_deref(), error_description.as_deref());
    Ok(CallbackError {
        state,
        error: error.to_string(),
        reason: redirect_error_reason(error, code, error_subcode.as_deref()),
        error_description,
        error_codes: code.into_iter().collect(),
        error_subcode,
        error_uri,
        admin_consent: p.get("admin_consent")?.is_some_and(|v| v.eq_ignore_ascii_case("true")),
        tenant: p.get("tenant")?.map(str::to_string),
    })
}

/// Reads the `/authorize` redirect (`?code=…&state=…&session_state=…` or `?error=…`). Unknown
/// parameters such as `session_state` are ignored (§1.3). The caller still has to compare `state`.
pub fn parse_callback(query: &str) -> Result<CallbackCode, Box<CallbackError>> {
    let p = Params::parse(query);
    let state = p.get("state").map_err(|e| CallbackError::not_verified(None, &e))?.map(str::to_string);
    let fail = |e: String| CallbackError::not_verified(state.clone(), &e);
    if let Some(error) = p.get("error").map_err(fail)? {
        return Err(Box::new(error_from(&p, error, state.clone()).map_err(fail)?));
    }
    let code = p.get("code").map_err(fail)?.ok_or_else(|| fail("missing_code".into()))?;
    let state = state.clone().ok_or_else(|| fail("missing_state".into()))?;
    Ok(CallbackCode { code: SecretString::from(code.to_string()), state })
}

/// A tenant-wide grant reported by the admin-consent redirect. `tenant` is what the redirect said
/// and must not be trusted for authentication (§1.8); `scopes` are the granted permissions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConsentGranted {
    pub tenant: Option<String>,
    pub scopes: Vec<String>,
    pub state: String,
}

impl AdminConsentGranted {
    pub fn state_matches(&self, expected: &str) -> bool {
        secrets_match(&self.state, expected)
    }
}

/// `{authority}/{tenant}/v2.0/adminconsent?client_id&redirect_uri&state&scope=…/.default` (§1.8).
/// v2 refuses `common`, so a multi-tenant configuration asks at `organizations`.
pub(crate) fn admin_consent_url(
    endpoints: &Endpoints,
    tenant: &Tenant,
    client_id: &str,
    redirect_uri: &str,
    state: &str,
) -> Result<Url, MicrosoftError> {
    let path_tenant = match tenant {
        Tenant::Any(_) => "organizations",
        t => t.as_str(),
    };
    let mut url = endpoints.login(&[path_tenant, "v2.0", "adminconsent"])?;
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("state", state)
        // `/.default` = every permission configured on the registration, the only way to request
        // application permissions (§1.7, §1.8).
        .append_pair("scope", GRAPH_DEFAULT_SCOPE);
    Ok(url)
}

/// The `state` of an admin consent link meant to be forwarded to an administrator: no browser
/// session of ours started it, so its callback proves nothing and records nothing.
pub const FORWARDED_CONSENT_STATE: &str = "forwarded";

/// A v2 admin-consent link for exactly `scope` (explicit delegated permissions, or `/.default` for
/// application permissions), which an administrator can open without an Intelligence360 account.
pub(crate) fn forwardable_admin_consent_url(
    endpoints: &Endpoints,
    tenant: &Tenant,
    client_id: &str,
    redirect_uri: &str,
    scope: &str,
) -> Result<Url, MicrosoftError> {
    let mut url = endpoints.login(&[tenant.as_str(), "v2.0", "adminconsent"])?;
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("state", FORWARDED_CONSENT_STATE)
        .append_pair("scope", scope);
    Ok(url)
}

/// Reads the admin-consent redirect. An `error` wins even when `admin_consent=True` is also present,
/// and `tenant` may be absent on errors (both observed, §1.8).
pub fn parse_admin_consent_callback(query: &str) -> Result<AdminConsentGranted, Box<CallbackError>> {
    let p = Params::parse(query);
    let state = p.get("state").map_err(|e| CallbackError::not_verified(None, &e))?.map(str::to_string);
    let fail = |e: String| CallbackError::not_verified(state.clone(), &e);
    if let Some(error) = p.get("error").map_err(fail)? {
        return Err(Box::new(error_from(&p, error, state.clone()).map_err(fail)?));
    }
    if !p.get("admin_consent").map_err(fail)?.is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Err(fail("missing_admin_consent".into()));
    }
    let state = state.clone().ok_or_else(|| fail("missing_state".into()))?;
    let scopes = p.get("scope").map_err(fail)?.map(|s| s.split_whitespace().map(str::to_string).collect()).unwrap_or_default();
    Ok(AdminConsentGranted { tenant: p.get("tenant").map_err(fail)?.map(str::to_string), scopes, state })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn app() -> AppRegistration {
        AppRegistration::new("4f1c6a0e-2d3b-4c5a-9e8f-0a1b2c3d4e5f", "11111111-2222-4333-8444-555555555555", SecretString::from("s"))
            .unwrap()
    }

    #[test]
    fn pkce_challenge_matches_rfc_7636_appendix_b() {
        assert_eq!(pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn authorization_url_carries_pkce_state_nonce_and_nothing_secret() {
        let e = Endpoints::microsoft().unwrap();
        let r = authorization_request(
            &e,
            &app(),
            "https://app.test/cb",
            "openid profile offline_access Mail.Read",
            Some("alice@northwind.test"),
            Some(Prompt::SelectAccount),
        )
        .unwrap();
        assert!(
            r.url.as_str().starts_with("https://login.microsoftonline.com/4f1c6a0e-2d3b-4c5a-9e8f-0a1b2c3d4e5f/oauth2/v2.0/authorize?")
        );
        let q: std::collections::HashMap<String, String> = r.url.query_pairs().into_owned().collect();
        assert_eq!(q["client_id"], "11111111-2222-4333-8444-555555555555");
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["redirect_uri"], "https://app.test/cb");
        assert_eq!(q["scope"], "openid profile offline_access Mail.Read");
        assert_eq!(q["state"], r.state);
        assert_eq!(q["nonce"], r.nonce);
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["code_challenge"], pkce_challenge(r.pkce_verifier.expose_secret()));
        assert_eq!(q["login_hint"], "alice@northwind.test");
        assert!(!q.contains_key("prompt"), "select_account is not sent with login_hint");
        assert!(!r.url.as_str().contains(r.pkce_verifier.expose_secret()));
        let v = r.pkce_verifier.expose_secret();
        assert!((43..=128).contains(&v.len()));
        assert!(v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert!(r.state.len() >= 22 && r.nonce.len() >= 22, "at least 128 bits each");
        assert!(!format!("{r:?}").contains(v));
        let again = authorization_request(&e, &app(), "https://app.test/cb", "openid profile", None, Some(Prompt::Consent)).unwrap();
        assert_ne!(again.state, r.state);
        assert_ne!(again.nonce, r.nonce);
        assert!(again.url.query_pairs().any(|(k, v)| k == "prompt" && v == "consent"));
    }

    #[test]
    fn a_scope_that_cannot_identify_the_user_is_refused_before_the_browser_leaves() {
        let e = Endpoints::microsoft().unwrap();
        assert!(authorization_request(&e, &app(), "https://app.test/cb", "offline_access Mail.Read", None, None).is_err());
        assert!(authorization_request(&e, &app(), "https://app.test/cb", "openid Mail.Read", None, None).is_err());
        assert!(authorization_request(&e, &app(), "https://app.test/cb", "OpenID Profile", None, None).is_ok());
    }

    #[test]
    fn callback_with_code_and_session_state_parses() {
        let c = parse_callback("?code=1.AXabc&state=st-1&session_state=0f1e2d3c-0000-4000-8000-000000000000").unwrap();
        assert_eq!(c.code.expose_secret(), "1.AXabc");
        assert!(c.state_matches("st-1"));
        assert!(!c.state_matches("st-2"));
        assert!(!c.state_matches(""));
        assert!(!format!("{c:?}").contains("1.AXabc"));
    }

    #[test]
    fn tampered_callbacks_are_refused() {
        assert_eq!(parse_callback("code=a&code=b&state=s").unwrap_err().reason, ReasonCode::SignInNotVerified);
        assert_eq!(parse_callback("code=a&state=s&state=t").unwrap_err().error, "duplicate_state");
        assert_eq!(parse_callback("state=s").unwrap_err().error, "missing_code");
        assert_eq!(parse_callback("code=a").unwrap_err().error, "missing_state");
    }

    #[test]
    fn callback_errors_keep_every_detail_and_map_to_a_reason() {
        let q = "error=access_denied&error_description=AADSTS65004%3a+User+declined+to+consent+to+access+the+app.%0d%0aTrace+ID%3a+x&error_uri=https%3a%2f%2flogin.microsoftonline.com%2ferror%3fcode%3d65004&error_subcode=cancel&state=st-9";
        let e = parse_callback(q).unwrap_err();
        assert_eq!(e.reason, ReasonCode::ConsentDeclined);
        assert_eq!(e.error_codes, vec![65004]);
        assert_eq!(e.error_subcode.as_deref(), Some("cancel"));
        assert!(e.state_matches("st-9"));
        assert!(e.error_description.unwrap().starts_with("AADSTS65004: User declined"));
        let e =
            parse_callback("error=access_denied&error_description=AADSTS90094%3a+Administrator+consent+is+required.&state=s").unwrap_err();
        assert_eq!(e.reason, ReasonCode::AdminApprovalRequired);
        assert_eq!(e.who_must_act(), WhoMustAct::TenantAdmin);
        let e = parse_callback("error=interaction_required&error_description=AADSTS50076%3a+MFA").unwrap_err();
        assert_eq!(e.reason, ReasonCode::InteractionRequired);
        assert_eq!(e.state, None);
    }

    #[test]
    fn admin_consent_url_is_v2_with_default_scope() {
        let e = Endpoints::microsoft().unwrap();
        let u =
            admin_consent_url(&e, &Tenant::parse("common").unwrap(), "11111111-2222-4333-8444-555555555555", "https://app.test/ac", "st")
                .unwrap();
        assert!(u.as_str().starts_with("https://login.microsoftonline.com/organizations/v2.0/adminconsent?"), "{u}");
        let q: std::collections::HashMap<String, String> = u.query_pairs().into_owned().collect();
        assert_eq!(q["scope"], "https://graph.microsoft.com/.default");
        assert_eq!(q["state"], "st");
        assert_eq!(q["redirect_uri"], "https://app.test/ac");
    }

    #[test]
    fn admin_consent_callback_success_and_the_observed_error_shapes() {
        let ok = parse_admin_consent_callback("admin_consent=True&tenant=4f1c6a0e-2d3b-4c5a-9e8f-0a1b2c3d4e5f&scope=https%3a%2f%2fgraph.microsoft.com%2fMail.Read+https%3a%2f%2fgraph.microsoft.com%2fUser.Read.All&state=st").unwrap();
        assert_eq!(ok.tenant.as_deref(), Some("4f1c6a0e-2d3b-4c5a-9e8f-0a1b2c3d4e5f"));
        assert_eq!(ok.scopes, vec!["https://graph.microsoft.com/Mail.Read", "https://graph.microsoft.com/User.Read.All"]);
        assert!(ok.state_matches("st"));
        // Cancel: error together with admin_consent=True and no tenant (§1.8, observed).
        let e = parse_admin_consent_callback("error=access_denied&error_description=AADSTS65004%3a+User+declined&error_uri=https%3a%2f%2flogin.microsoftonline.com%2ferror%3fcode%3d65004&admin_consent=True&state=st").unwrap_err();
        assert_eq!(e.reason, ReasonCode::ConsentDeclined);
        assert!(e.admin_consent);
        assert_eq!(e.tenant, None);
        // v1 documented cancel.
        let e =
            parse_admin_consent_callback("error=permission_denied&error_description=The+admin+canceled+the+request&state=st").unwrap_err();
        assert_eq!(e.reason, ReasonCode::ConsentDeclined);
        // v2 documented: consent_required with AADSTS65004 is a decline too.
        let e =
            parse_admin_consent_callback("admin_consent=True&error=consent_required&error_description=AADSTS65004%3a+declined&state=st")
                .unwrap_err();
        assert_eq!(e.reason, ReasonCode::ConsentDeclined);
        assert_eq!(parse_admin_consent_callback("tenant=x&state=st").unwrap_err().error, "missing_admin_consent");
    }
}
