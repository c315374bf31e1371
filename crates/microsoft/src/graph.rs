//! The small part of Graph the settings pages need (MICROSOFT.md §3.2, §3.9): who am I, a directory
//! search for service account users, and a cheap mailbox probe that tells "no licence" and "no
//! access" apart before a sync starts.

use crate::MicrosoftClient;
use crate::error::MicrosoftError;
use domain::{ReasonCode, WhoMustAct};
use reqwest::header::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime};

/// A directory user as Graph returns it (`$select=id,displayName,mail,userPrincipalName`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphUser {
    /// Object id (= id_token `oid`).
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    /// Null for users without a mailbox.
    #[serde(default)]
    pub mail: Option<String>,
    #[serde(default)]
    pub user_principal_name: Option<String>,
}

/// Whose mailbox a call is about: the signed-in user's (`/me`, delegated only) or someone else's
/// (`/users/{id or UPN}`, app-only or delegate access via `.Shared` scopes, §3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailboxRef {
    Me,
    User(String),
}

/// A Graph failure, with the reason code derived from HTTP status and Graph `code` (§3.9).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Graph {status:?} {code} ({reason:?})")]
pub struct GraphError {
    /// `None` when no HTTP answer arrived (timeout, connection refused).
    pub status: Option<u16>,
    /// Graph's `error.code` (`ErrorAccessDenied`, `MailboxNotEnabledForRESTAPI`, …), or a local
    /// description for transport failures.
    pub code: String,
    pub message: String,
    /// `request-id` header (or `innerError.request-id`), for support.
    pub request_id: Option<String>,
    /// `Retry-After` of a 429/503: wait at least this long (§4.2).
    pub retry_after: Option<Duration>,
    pub reason: ReasonCode,
}

impl GraphError {
    pub fn who_must_act(&self) -> WhoMustAct {
        self.reason.who_must_act()
    }

    /// 401 `InvalidAuthenticationToken`: get a new access token (refresh) and retry once (§3.9).
    pub fn needs_new_token(&self) -> bool {
        self.status == Some(401)
    }

    /// A request that never got an answer (network, timeout): retried later by nobody in particular.
    pub(crate) fn transport(e: reqwest::Error) -> GraphError {
        let m = MicrosoftError::transport(e);
        GraphError {
            status: None,
            code: "transport".into(),
            message: m.to_string(),
            request_id: None,
            retry_after: None,
            reason: ReasonCode::MicrosoftUnavailable,
        }
    }
}

/// Reason for a Graph error. `other_mailbox` tells a delegate/app reading someone else's mailbox
/// (403 = no access to *that* mailbox) from a missing scope on one's own (403 = permission).
pub(crate) fn graph_reason(status: u16, code: &str, other_mailbox: bool) -> ReasonCode {
    let code = code.to_ascii_lowercase();
    match status {
        401 => ReasonCode::AccessTokenRejected,
        403 if code == "erroraccessdenied" && other_mailbox => ReasonCode::NoMailboxAccess,
        403 => ReasonCode::PermissionMissing,
        404 if code == "mailboxnotenabledforrestapi" => ReasonCode::MailboxNotLicensed,
        429 => ReasonCode::Throttled,
        s if s >= 500 => ReasonCode::MicrosoftUnavailable,
        _ => ReasonCode::Unexpected,
    }
}

/// `Retry-After` as seconds (fractional allowed, §4.2 doc sample `2.128`) or an HTTP-date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    parse_retry_after(v, SystemTime::now())
}

pub(crate) fn parse_retry_after(v: &str, now: SystemTime) -> Option<Duration> {
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    // A date in the past means "now".
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    error: Option<ErrorInner>,
}

#[derive(Deserialize, Default)]
struct ErrorInner {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    // camelCase in practice, `innererror` in some docs (§3.9).
    #[serde(default, rename = "innerError", alias = "innererror")]
    inner_error: Option<Inner>,
}

#[derive(Deserialize, Default)]
struct Inner {
    #[serde(default, rename = "request-id")]
    request_id: Option<String>,
}

#[derive(Deserialize)]
struct Collection<T> {
    value: Vec<T>,
}

/// A successful Graph answer, before it is read as JSON.
pub(crate) struct GraphText {
    pub(crate) status: u16,
    pub(crate) text: String,
    pub(crate) request_id: Option<String>,
}

/// A 2xx body as the documented JSON, or an `unexpectedResponse` error.
pub(crate) fn parse_json<T: DeserializeOwned>(answer: &GraphText) -> Result<T, GraphError> {
    serde_json::from_str(&answer.text).map_err(|e| GraphError {
        status: Some(answer.status),
        code: "unexpectedResponse".into(),
        message: format!("not the documented JSON: {e}"),
        request_id: answer.request_id.clone(),
        retry_after: None,
        reason: ReasonCode::Unexpected,
    })
}

/// Percent-encodes a query value with `%20` for spaces: OData `$filter` expressions are safer with
/// `%20` than with form encoding's `+`, which some servers keep literally.
fn encode_query_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An OData string literal: single quotes doubled.
fn odata_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl MicrosoftClient {
    pub(crate) fn graph_path(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<String, GraphError> {
        let mut url = self.endpoints.graph_url(segments).map_err(|e| GraphError {
            status: None,
            code: "configuration".into(),
            message: e.to_string(),
            request_id: None,
            retry_after: None,
            reason: ReasonCode::Unexpected,
        })?;
        url.set_query(None);
        let mut s = url.to_string();
        for (i, (k, v)) in query.iter().enumerate() {
            s.push(if i == 0 { '?' } else { '&' });
            s.push_str(k);
            s.push('=');
            s.push_str(&encode_query_value(v));
        }
        Ok(s)
    }

    pub(crate) async fn graph_get<T: DeserializeOwned>(
        &self,
        token: &SecretString,
        url: &str,
        other_mailbox: bool,
    ) -> Result<T, GraphError> {
        let text = self.graph_send(reqwest::Method::GET, token, url, None, other_mailbox).await?;
        parse_json(&text)
    }

    /// One Graph request; the body of a 2xx answer, or the error with its reason (§3.9).
    pub(crate) async fn graph_send(
        &self,
        method: reqwest::Method,
        token: &SecretString,
        url: &str,
        body: Option<&serde_json::Value>,
        other_mailbox: bool,
    ) -> Result<GraphText, GraphError> {
        // Immutable ids on every request: a draft keeps its id when it is sent (§3.1).
        let mut req = self
            .http
            .request(method, url)
            .bearer_auth(token.expose_secret())
            .header("Accept", "application/json")
            .header("Prefer", "IdType=\"ImmutableId\"");
        if let Some(body) = body {
            req = req.json(body);
        }
        let r = req.send().await.map_err(GraphError::transport)?;
        let status = r.status().as_u16();
        let header_request_id = r.headers().get("request-id").and_then(|v| v.to_str().ok()).map(str::to_string);
        let retry_after = retry_after(r.headers());
        let text = r.text().await.map_err(GraphError::transport)?;
        if (200..300).contains(&status) {
            return Ok(GraphText { status, text, request_id: header_request_id });
        }
        let inner = serde_json::from_str::<ErrorBody>(&text).ok().and_then(|b| b.error).unwrap_or_default();
        let code = inner.code.unwrap_or_default();
        let e = GraphError {
            status: Some(status),
            reason: graph_reason(status, &code, other_mailbox),
            message: inner.message.unwrap_or_default(),
            request_id: header_request_id.or(inner.inner_error.and_then(|i| i.request_id)),
            retry_after,
            code,
        };
        tracing::info!(status, code = %e.code, request_id = ?e.request_id, reason = ?e.reason, "Graph request refused");
        Err(e)
    }

    /// `GET /me` (needs User.Read).
    pub async fn me(&self, access_token: &SecretString) -> Result<GraphUser, GraphError> {
        let url = self.graph_path(&["me"], &[("$select", "id,displayName,mail,userPrincipalName")])?;
        self.graph_get(access_token, &url, false).await
    }

    /// Directory search for the service-account picker: users whose display name, mail or UPN starts
    /// with `prefix` (`$filter=startswith(...) or ...`, §3.2), at most `top` (1..=999); an empty
    /// prefix lists the first `top` users. Needs
    /// User.Read.All (application) or User.ReadBasic.All (delegated).
    pub async fn search_users(&self, access_token: &SecretString, prefix: &str, top: u16) -> Result<Vec<GraphUser>, GraphError> {
        let prefix: String = prefix.trim().chars().take(64).collect();
        let lit = odata_string(&prefix);
        let filter = format!("startswith(displayName,{lit}) or startswith(mail,{lit}) or startswith(userPrincipalName,{lit})");
        let top = top.clamp(1, 999).to_string();
        let mut query = vec![("$select", "id,displayName,mail,userPrincipalName"), ("$top", top.as_str())];
        if !prefix.is_empty() {
            query.insert(0, ("$filter", filter.as_str()));
        }
        let url = self.graph_path(&["users"], &query)?;
        let page: Collection<GraphUser> = self.graph_get(access_token, &url, false).await?;
        Ok(page.value)
    }

    /// The directory user whose sign-in name or mail address is `address`, `None` when the
    /// directory has nobody by it: `GET /users/{address}` (Graph finds a user by object id or
    /// userPrincipalName), and when that is not found, the user whose `mail` it is (a mail address
    /// that is not the sign-in name). Needs User.Read.All (application) or User.ReadBasic.All
    /// (delegated); without it Graph answers 403 (`PermissionMissing`).
    pub async fn find_user(&self, access_token: &SecretString, address: &str) -> Result<Option<GraphUser>, GraphError> {
        const SELECT: (&str, &str) = ("$select", "id,displayName,mail,userPrincipalName");
        let url = self.graph_path(&["users", address], &[SELECT])?;
        match self.graph_get::<GraphUser>(access_token, &url, false).await {
            Ok(user) => return Ok(Some(user)),
            Err(e) if e.status == Some(404) && e.code.eq_ignore_ascii_case("Request_ResourceNotFound") => {}
            Err(e) => return Err(e),
        }
        let filter = format!("mail eq {}", odata_string(address));
        let url = self.graph_path(&["users"], &[("$filter", filter.as_str()), SELECT])?;
        let page: Collection<GraphUser> = self.graph_get(access_token, &url, false).await?;
        Ok(page.value.into_iter().next())
    }

    /// A cheap read of the mailbox (`GET …/mailFolders/inbox?$select=id`) to learn before syncing
    /// whether it exists (404 `MailboxNotEnabledForRESTAPI` → `MailboxNotLicensed`) and whether this
    /// token may open it (403 `ErrorAccessDenied` → `NoMailboxAccess` for someone else's mailbox,
    /// `PermissionMissing` for one's own).
    pub async fn probe_mailbox(&self, access_token: &SecretString, mailbox: &MailboxRef) -> Result<(), GraphError> {
        let (segments, other): (Vec<&str>, bool) = match mailbox {
            MailboxRef::Me => (vec!["me", "mailFolders", "inbox"], false),
            MailboxRef::User(id) => (vec!["users", id.as_str(), "mailFolders", "inbox"], true),
        };
        let url = self.graph_path(&segments, &[("$select", "id")])?;
        let _: serde_json::Value = self.graph_get(access_token, &url, other).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_codes_map_to_reasons_case_insensitively() {
        assert_eq!(graph_reason(404, "MailboxNotEnabledForRESTAPI", true), ReasonCode::MailboxNotLicensed);
        assert_eq!(graph_reason(404, "mailboxnotenabledforrestapi", false), ReasonCode::MailboxNotLicensed);
        assert_eq!(graph_reason(403, "ErrorAccessDenied", true), ReasonCode::NoMailboxAccess);
        assert_eq!(graph_reason(403, "ErrorAccessDenied", false), ReasonCode::PermissionMissing);
        assert_eq!(graph_reason(403, "Authorization_RequestDenied", true), ReasonCode::PermissionMissing);
        assert_eq!(graph_reason(401, "InvalidAuthenticationToken", false), ReasonCode::AccessTokenRejected);
        assert_eq!(graph_reason(429, "TooManyRequests", true), ReasonCode::Throttled);
        assert_eq!(graph_reason(429, "ApplicationThrottled", true), ReasonCode::Throttled);
        assert_eq!(graph_reason(503, "serviceNotAvailable", true), ReasonCode::MicrosoftUnavailable);
        assert_eq!(graph_reason(504, "", true), ReasonCode::MicrosoftUnavailable);
        assert_eq!(graph_reason(404, "ErrorItemNotFound", true), ReasonCode::Unexpected);
    }

    #[test]
    fn retry_after_accepts_seconds_fractions_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("2.128", now), Some(Duration::from_millis(2128)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(30)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn filter_values_are_escaped_for_odata_and_the_url() {
        assert_eq!(odata_string("O'Brien"), "'O''Brien'");
        assert_eq!(encode_query_value("startswith(mail,'a b')"), "startswith%28mail%2C%27a%20b%27%29");
    }

    #[test]
    fn graph_error_bodies_parse_with_either_inner_error_spelling() {
        let b: ErrorBody = serde_json::from_str(r#"{"error":{"code":"ErrorAccessDenied","message":"Access is denied.","innerError":{"date":"2025-02-13T10:17:05","request-id":"r1","client-request-id":"c"}}}"#).unwrap();
        let e = b.error.unwrap();
        assert_eq!(e.code.as_deref(), Some("ErrorAccessDenied"));
        assert_eq!(e.inner_error.unwrap().request_id.as_deref(), Some("r1"));
        let b: ErrorBody = serde_json::from_str(r#"{"error":{"code":"x","message":"y","innererror":{"request-id":"r2"}}}"#).unwrap();
        assert_eq!(b.error.unwrap().inner_error.unwrap().request_id.as_deref(), Some("r2"));
    }
}
