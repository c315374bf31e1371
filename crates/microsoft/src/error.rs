//! Errors of the identity half and the table that turns Microsoft's codes into [`ReasonCode`]s.
//!
//! Microsoft says its error *text* may change at any time; clients must branch on `error`,
//! `error_codes` (the AADSTS numbers) and `suberror`, never on `error_description` (MICROSOFT.md
//! intro, §1.5). Every decision below is made on codes, compared case-insensitively.

use domain::{ReasonCode, WhoMustAct};
use serde::Deserialize;
use std::fmt;
use std::time::Duration;

/// Which token-endpoint request failed: the same AADSTS number can mean different things for an
/// authorization code and a refresh token (70008 = expired code vs. expired/revoked grant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
}

/// An OAuth error answered by the token endpoint (§1.5), with everything Microsoft sent that helps
/// support, and the reason code derived from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AadError {
    pub http_status: u16,
    /// `invalid_grant`, `invalid_client`, `unauthorized_client`, …
    pub error: String,
    /// Human text with trace/correlation ids embedded; for logs and support only, never branched on.
    pub error_description: String,
    /// AADSTS numbers (`error_codes`).
    pub error_codes: Vec<u32>,
    /// `basic_action`, `bad_token`, `consent_required`, … (MSAL's constants, §1.5).
    pub suberror: Option<String>,
    pub trace_id: Option<String>,
    pub correlation_id: Option<String>,
    pub error_uri: Option<String>,
    /// `Retry-After` on a 429/503 from the token endpoint.
    pub retry_after: Option<Duration>,
    pub reason: ReasonCode,
}

impl fmt::Display for AadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (HTTP {}", self.error, self.http_status)?;
        for c in &self.error_codes {
            write!(f, ", AADSTS{c}")?;
        }
        if let Some(t) = &self.trace_id {
            write!(f, ", trace {t}")?;
        }
        write!(f, ")")
    }
}

/// The token endpoint's error body (§1.5). Every field optional: Microsoft adds and drops fields
/// (`error_uri` only sometimes, `suberror` rarely, a `claims` challenge possibly), and unknown ones are
/// ignored by serde.
#[derive(Debug, Deserialize, Default)]
pub(crate) struct AadErrorBody {
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub error_description: Option<String>,
    #[serde(default)]
    pub error_codes: Vec<u32>,
    #[serde(default)]
    pub suberror: Option<String>,
    #[serde(default)]
    pub trace_id: Option<String>,
    #[serde(default)]
    pub correlation_id: Option<String>,
    #[serde(default)]
    pub error_uri: Option<String>,
}

impl AadError {
    pub(crate) fn from_body(http_status: u16, body: AadErrorBody, grant: Grant, retry_after: Option<Duration>) -> AadError {
        let error = body.error.unwrap_or_default();
        let mut error_codes = body.error_codes;
        if error_codes.is_empty() {
            // Older/edge responses carry the number only in `error_uri` or the description prefix.
            error_codes.extend(aadsts_code(body.error_uri.as_deref(), body.error_description.as_deref()));
        }
        let reason = token_error_reason(http_status, &error, &error_codes, body.suberror.as_deref(), grant);
        AadError {
            http_status,
            error,
            error_description: body.error_description.unwrap_or_default(),
            error_codes,
            suberror: body.suberror,
            trace_id: body.trace_id,
            correlation_id: body.correlation_id,
            error_uri: body.error_uri,
            retry_after,
            reason,
        }
    }

    pub fn has_code(&self, code: u32) -> bool {
        self.error_codes.contains(&code)
    }
}

/// Why an id_token was not accepted (§1.6). Each is a refusal to trust the sign-in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    #[error("the token response carried no id_token (was `openid` requested?)")]
    Missing,
    #[error("the id_token is not a well-formed JWT: {0}")]
    Malformed(String),
    #[error("the id_token uses algorithm {0}, only RS256 is accepted")]
    Algorithm(String),
    #[error("no signing key {kid:?} in the tenant's JWKS")]
    UnknownKey { kid: String },
    #[error("the id_token signature does not verify")]
    Signature,
    #[error("issuer {actual:?} is not {expected:?}")]
    Issuer { expected: String, actual: String },
    #[error("audience {actual:?} is not this app's client id")]
    Audience { actual: String },
    #[error("the id_token has expired")]
    Expired,
    #[error("the id_token is not valid yet")]
    NotYetValid,
    #[error("the id_token's nonce does not match the one sent with the authorization request")]
    Nonce,
    #[error("missing claim {0}")]
    MissingClaim(&'static str),
    #[error("the account is from tenant {actual}, not the configured tenant {expected}")]
    WrongTenant { expected: String, actual: String },
    #[error("a personal Microsoft account signed in (tenant 9188040d-6c67-4c5b-b112-36a304b66dad), not a work account")]
    PersonalAccount,
    #[error("a guest signed in to tenant {tenant}: the account's home is {home}")]
    GuestAccount { tenant: String, home: String },
}

impl IdTokenError {
    pub fn reason(&self) -> ReasonCode {
        match self {
            IdTokenError::WrongTenant { .. } => ReasonCode::WrongTenant,
            IdTokenError::PersonalAccount => ReasonCode::PersonalAccount,
            IdTokenError::GuestAccount { .. } => ReasonCode::GuestAccount,
            _ => ReasonCode::SignInNotVerified,
        }
    }
}

/// Everything the identity half can fail with.
#[derive(Debug, thiserror::Error)]
pub enum MicrosoftError {
    /// Microsoft answered with an OAuth error.
    #[error("Microsoft refused: {0}")]
    Rejected(Box<AadError>),
    /// The sign-in came back but could not be trusted.
    #[error("sign-in not verified: {0}")]
    IdToken(#[from] IdTokenError),
    /// Network trouble, a timeout or a 5xx without an OAuth body: try again later.
    #[error("Microsoft unavailable: {message}")]
    Unavailable { message: String, status: Option<u16>, retry_after: Option<Duration> },
    /// Microsoft answered something this client does not understand.
    #[error("unexpected answer from Microsoft: {message}")]
    Unexpected { message: String, status: Option<u16> },
    /// The configuration cannot work (an endpoint that is not a base URL, an empty tenant).
    #[error("configuration: {0}")]
    Config(String),
}

impl MicrosoftError {
    pub fn reason(&self) -> ReasonCode {
        match self {
            MicrosoftError::Rejected(e) => e.reason,
            MicrosoftError::IdToken(e) => e.reason(),
            MicrosoftError::Unavailable { status: Some(429), .. } => ReasonCode::Throttled,
            MicrosoftError::Unavailable { .. } => ReasonCode::MicrosoftUnavailable,
            MicrosoftError::Unexpected { .. } | MicrosoftError::Config(_) => ReasonCode::Unexpected,
        }
    }

    pub fn who_must_act(&self) -> WhoMustAct {
        self.reason().who_must_act()
    }

    /// The OAuth error, when Microsoft sent one.
    pub fn aad(&self) -> Option<&AadError> {
        match self {
            MicrosoftError::Rejected(e) => Some(e.as_ref()),
            _ => None,
        }
    }

    pub(crate) fn transport(e: reqwest::Error) -> MicrosoftError {
        // reqwest's Display never includes the request body, so secrets in the form cannot leak here.
        let kind = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "could not connect"
        } else {
            "request failed"
        };
        MicrosoftError::Unavailable { message: format!("{kind}: {}", e.without_url()), status: None, retry_after: None }
    }
}

/// The AADSTS number of an error that arrived without `error_codes` (authorize redirects, §1.3):
/// `error_uri=…/error?code=NNN` first, then the `AADSTSNNN:` prefix of the description. Both are the
/// code itself, not message text.
pub(crate) fn aadsts_code(error_uri: Option<&str>, description: Option<&str>) -> Option<u32> {
    if let Some(uri) = error_uri
        && let Ok(u) = url::Url::parse(uri)
        && let Some((_, v)) = u.query_pairs().find(|(k, _)| k == "code")
        && let Ok(n) = v.parse()
    {
        return Some(n);
    }
    let d = description?.trim_start();
    let rest = d.get(..6).filter(|p| p.eq_ignore_ascii_case("AADSTS")).and_then(|_| d.get(6..))?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// AADSTS numbers that mean the same whatever was being done (§1.3, §1.5 tables).
fn code_reason(code: u32) -> Option<ReasonCode> {
    Some(match code {
        65004 => ReasonCode::ConsentDeclined,
        90094 | 90095 => ReasonCode::AdminApprovalRequired,
        65001 => ReasonCode::ConsentRequired,
        // MFA required / MFA registration required / sign-in frequency policy: sign in again.
        50076 | 50079 | 70043 => ReasonCode::InteractionRequired,
        700082 => ReasonCode::RefreshTokenExpired,
        50173 => ReasonCode::RefreshTokenRevoked,
        // The app's credential was refused: a wrong secret, none at all, or a client assertion
        // Microsoft does not accept (signature or certificate unknown or expired: 700027; `iss`/`sub`
        // not the client id: 700021; outside its time range, our clock: 700024). All are fixed on
        // the settings page by an Intelligence360 admin.
        7000215 | 7000218 | 700027 | 700021 | 700024 => ReasonCode::ClientSecretInvalid,
        7000222 => ReasonCode::ClientSecretExpired,
        // App not in tenant / tenant not found / tenant-less endpoint used where a tenant is required:
        // all fixed by correcting the client id or directory (tenant) id on the settings page.
        700016 | 700011 | 90002 | 9001023 | 90130 | 50194 => ReasonCode::AppNotFound,
        50011 => ReasonCode::RedirectUriMismatch,
        50020 | 700005 => ReasonCode::WrongTenant,
        _ => return None,
    })
}

/// Reason for a token-endpoint error (§1.4, §1.5).
pub(crate) fn token_error_reason(status: u16, error: &str, codes: &[u32], suberror: Option<&str>, grant: Grant) -> ReasonCode {
    for &c in codes {
        // 70008/70000 are about the grant presented: an expired code means "start again", an
        // expired or unbound refresh token means the connection is gone (§1.5 table).
        match (c, grant) {
            (70008 | 70000, Grant::RefreshToken) => return ReasonCode::RefreshTokenRevoked,
            (70008 | 70000 | 54005 | 501481, Grant::AuthorizationCode) => return ReasonCode::SignInNotVerified,
            _ => {}
        }
        if let Some(r) = code_reason(c) {
            return r;
        }
    }
    if let Some(s) = suberror {
        match s.to_ascii_lowercase().as_str() {
            "basic_action" | "additional_action" | "user_password_expired" => return ReasonCode::InteractionRequired,
            "consent_required" => return ReasonCode::ConsentRequired,
            "bad_token" => return ReasonCode::RefreshTokenExpired,
            _ => {}
        }
    }
    match error.to_ascii_lowercase().as_str() {
        "invalid_client" => ReasonCode::ClientSecretInvalid,
        "unauthorized_client" => ReasonCode::AppNotFound,
        "interaction_required" | "login_required" => ReasonCode::InteractionRequired,
        "consent_required" => ReasonCode::ConsentRequired,
        "access_denied" => ReasonCode::ConsentDeclined,
        "temporarily_unavailable" | "server_error" if status == 429 => ReasonCode::Throttled,
        "temporarily_unavailable" | "server_error" => ReasonCode::MicrosoftUnavailable,
        // An unusable refresh token with no more specific code: the connection must be made again.
        "invalid_grant" if grant == Grant::RefreshToken => ReasonCode::RefreshTokenRevoked,
        "invalid_grant" if grant == Grant::AuthorizationCode => ReasonCode::SignInNotVerified,
        _ if status == 429 => ReasonCode::Throttled,
        _ if status >= 500 => ReasonCode::MicrosoftUnavailable,
        _ => ReasonCode::Unexpected,
    }
}

/// Reason for an error redirect from `/authorize` or an admin-consent endpoint (§1.3, §1.8).
pub(crate) fn redirect_error_reason(error: &str, code: Option<u32>, subcode: Option<&str>) -> ReasonCode {
    if let Some(r) = code.and_then(code_reason) {
        return r;
    }
    match error.to_ascii_lowercase().as_str() {
        // `permission_denied` is the documented v1 admin-consent cancel (§1.8).
        "access_denied" | "permission_denied" => ReasonCode::ConsentDeclined,
        "consent_required" if subcode.is_some_and(|s| s.eq_ignore_ascii_case("cancel")) => ReasonCode::ConsentDeclined,
        "consent_required" => ReasonCode::ConsentRequired,
        "interaction_required" | "login_required" => ReasonCode::InteractionRequired,
        "unauthorized_client" => ReasonCode::AppNotFound,
        "temporarily_unavailable" | "server_error" => ReasonCode::MicrosoftUnavailable,
        _ => ReasonCode::Unexpected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Grant::*;

    fn tok(error: &str, code: u32, grant: Grant) -> ReasonCode {
        token_error_reason(400, error, &[code], None, grant)
    }

    #[test]
    fn token_error_codes_map_to_the_documented_reasons() {
        assert_eq!(tok("invalid_grant", 65001, RefreshToken), ReasonCode::ConsentRequired);
        assert_eq!(tok("invalid_grant", 50076, RefreshToken), ReasonCode::InteractionRequired);
        assert_eq!(tok("invalid_grant", 50079, AuthorizationCode), ReasonCode::InteractionRequired);
        assert_eq!(tok("invalid_grant", 700082, RefreshToken), ReasonCode::RefreshTokenExpired);
        assert_eq!(tok("invalid_grant", 50173, RefreshToken), ReasonCode::RefreshTokenRevoked);
        assert_eq!(tok("invalid_grant", 70008, RefreshToken), ReasonCode::RefreshTokenRevoked);
        assert_eq!(tok("invalid_grant", 70000, RefreshToken), ReasonCode::RefreshTokenRevoked);
        assert_eq!(tok("invalid_client", 7000215, ClientCredentials), ReasonCode::ClientSecretInvalid);
        assert_eq!(tok("invalid_client", 700027, ClientCredentials), ReasonCode::ClientSecretInvalid);
        assert_eq!(tok("invalid_client", 700027, AuthorizationCode), ReasonCode::ClientSecretInvalid);
        assert_eq!(tok("unauthorized_client", 700021, ClientCredentials), ReasonCode::ClientSecretInvalid);
        assert_eq!(tok("invalid_client", 700024, RefreshToken), ReasonCode::ClientSecretInvalid);
        assert_eq!(tok("invalid_client", 700024, RefreshToken).who_must_act(), WhoMustAct::PlatformAdmin);
        assert_eq!(tok("invalid_client", 7000222, ClientCredentials), ReasonCode::ClientSecretExpired);
        assert_eq!(tok("unauthorized_client", 700016, ClientCredentials), ReasonCode::AppNotFound);
        assert_eq!(tok("invalid_request", 50011, AuthorizationCode), ReasonCode::RedirectUriMismatch);
        assert_eq!(tok("invalid_grant", 700005, AuthorizationCode), ReasonCode::WrongTenant);
        assert_eq!(tok("access_denied", 50020, AuthorizationCode), ReasonCode::WrongTenant);
        assert_eq!(tok("invalid_request", 9001023, ClientCredentials), ReasonCode::AppNotFound);
    }

    #[test]
    fn the_same_code_means_different_things_for_codes_and_refresh_tokens() {
        assert_eq!(tok("invalid_grant", 70008, AuthorizationCode), ReasonCode::SignInNotVerified);
        assert_eq!(tok("invalid_grant", 54005, AuthorizationCode), ReasonCode::SignInNotVerified);
        assert_eq!(token_error_reason(400, "invalid_grant", &[9002313], None, RefreshToken), ReasonCode::RefreshTokenRevoked);
        assert_eq!(token_error_reason(400, "invalid_grant", &[9002313], None, AuthorizationCode), ReasonCode::SignInNotVerified);
    }

    #[test]
    fn error_names_and_suberrors_decide_when_no_code_is_known() {
        assert_eq!(token_error_reason(401, "INVALID_CLIENT", &[], None, ClientCredentials), ReasonCode::ClientSecretInvalid);
        assert_eq!(token_error_reason(400, "unauthorized_client", &[], None, AuthorizationCode), ReasonCode::AppNotFound);
        assert_eq!(token_error_reason(400, "invalid_grant", &[123], Some("basic_action"), RefreshToken), ReasonCode::InteractionRequired);
        assert_eq!(token_error_reason(400, "invalid_grant", &[], Some("bad_token"), RefreshToken), ReasonCode::RefreshTokenExpired);
        assert_eq!(token_error_reason(503, "temporarily_unavailable", &[90033], None, RefreshToken), ReasonCode::MicrosoftUnavailable);
        assert_eq!(token_error_reason(429, "temporarily_unavailable", &[], None, RefreshToken), ReasonCode::Throttled);
        assert_eq!(token_error_reason(502, "", &[], None, RefreshToken), ReasonCode::MicrosoftUnavailable);
        assert_eq!(token_error_reason(400, "invalid_scope", &[70011], None, ClientCredentials), ReasonCode::Unexpected);
    }

    #[test]
    fn redirect_errors_map_by_code_first_then_by_error() {
        assert_eq!(redirect_error_reason("access_denied", Some(65004), Some("cancel")), ReasonCode::ConsentDeclined);
        assert_eq!(redirect_error_reason("consent_required", Some(65004), None), ReasonCode::ConsentDeclined);
        assert_eq!(redirect_error_reason("access_denied", Some(90094), Some("cancel")), ReasonCode::AdminApprovalRequired);
        assert_eq!(redirect_error_reason("access_denied", Some(90095), None), ReasonCode::AdminApprovalRequired);
        assert_eq!(redirect_error_reason("consent_required", Some(65001), None), ReasonCode::ConsentRequired);
        assert_eq!(redirect_error_reason("interaction_required", Some(50076), None), ReasonCode::InteractionRequired);
        assert_eq!(redirect_error_reason("interaction_required", None, None), ReasonCode::InteractionRequired);
        assert_eq!(redirect_error_reason("access_denied", Some(50020), None), ReasonCode::WrongTenant);
        assert_eq!(redirect_error_reason("access_denied", None, None), ReasonCode::ConsentDeclined);
        assert_eq!(redirect_error_reason("Access_Denied", None, None), ReasonCode::ConsentDeclined);
        assert_eq!(redirect_error_reason("permission_denied", None, None), ReasonCode::ConsentDeclined);
        assert_eq!(redirect_error_reason("consent_required", None, Some("cancel")), ReasonCode::ConsentDeclined);
        assert_eq!(redirect_error_reason("unauthorized_client", Some(700016), None), ReasonCode::AppNotFound);
        assert_eq!(redirect_error_reason("unauthorized_client", None, None), ReasonCode::AppNotFound);
        assert_eq!(redirect_error_reason("invalid_request", Some(50011), None), ReasonCode::RedirectUriMismatch);
        assert_eq!(redirect_error_reason("server_error", None, None), ReasonCode::MicrosoftUnavailable);
        assert_eq!(redirect_error_reason("invalid_scope", Some(70011), None), ReasonCode::Unexpected);
    }

    #[test]
    fn aadsts_numbers_come_from_error_uri_or_the_description_prefix() {
        assert_eq!(aadsts_code(Some("https://login.microsoftonline.com/error?code=65004"), None), Some(65004));
        assert_eq!(aadsts_code(None, Some("AADSTS90094: Administrator consent is required.\r\nTrace ID: x")), Some(90094));
        assert_eq!(aadsts_code(None, Some("aadsts50020: whatever")), Some(50020));
        assert_eq!(aadsts_code(None, Some("The admin canceled the request")), None);
        assert_eq!(aadsts_code(Some("not a url"), Some("AADSTS")), None);
    }

    #[test]
    fn token_error_body_tolerates_missing_and_extra_fields() {
        let body: AadErrorBody = serde_json::from_str(
            r#"{"error":"invalid_grant","error_description":"AADSTS50076: MFA.\r\nTrace ID: t","error_codes":[50076],"timestamp":"2025-02-12 15:57:00Z","trace_id":"t","correlation_id":"c","error_uri":"https://login.microsoftonline.com/error?code=50076","suberror":"basic_action","claims":"{}"}"#,
        )
        .unwrap();
        let e = AadError::from_body(400, body, RefreshToken, None);
        assert_eq!(e.reason, ReasonCode::InteractionRequired);
        assert_eq!(e.suberror.as_deref(), Some("basic_action"));
        assert_eq!(e.trace_id.as_deref(), Some("t"));
        let sparse: AadErrorBody =
            serde_json::from_str(r#"{"error":"invalid_grant","error_description":"AADSTS700082: expired"}"#).unwrap();
        let e = AadError::from_body(400, sparse, RefreshToken, None);
        assert_eq!(e.error_codes, vec![700082]);
        assert_eq!(e.reason, ReasonCode::RefreshTokenExpired);
    }
}
