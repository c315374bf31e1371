//! Microsoft Graph v1.0 (MICROSOFT.md §3): users, mail folders and message delta, calendarView delta,
//! contacts delta, To Do lists and tasks delta, sendMail, and `$batch`; the writes a client does exactly
//! once (§7): drafts, replies and forwards sent by id (`compose`), events with `transactionId`,
//! invitations and cancel (`calendar`), contacts and tasks created and updated, items found by their
//! extended properties (`props`).
//!
//! Requests go through one dispatcher (not axum routes) so `$batch` can run its inner requests through
//! exactly the same checks: token → target mailbox → throttling → injected faults → scopes/roles and
//! delegate rights → licence → the operation (→ a fault injected `after_performing`).

use crate::generate::{self, CONTACT_FOLDERS, Kind, MAIL_FOLDERS, TASK_LISTS};
use crate::identity::{AccessGrant, TokenCheck, check_access_token};
use crate::util::{b64url, format_retry_after, graph_error_date, guid, parse_qs, percent_decode};
use crate::{Shared, UserRef, lock};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::HashSet;
use std::sync::Arc;

mod access;
mod batch;
mod calendar;
mod compose;
mod contacts;
mod delta;
mod dispatch;
mod mail;
mod mailbox;
mod props;
mod routes;
mod todo;
mod users;

pub(crate) use access::{Need, allowed, may_send_from};
use batch::batch;
use dispatch::dispatch;
use routes::Op;
use users::{select, userinfo};

const JSON_CT: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/v1.0/{*rest}", axum::routing::any(entry)).route("/oidc/userinfo", axum::routing::get(userinfo))
}

pub(crate) struct GReq {
    pub method: Method,
    /// Path after `/v1.0`, starting with `/`.
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

pub(crate) struct GResp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Raw JSON text (kept as text so error bodies keep Microsoft's field order).
    pub body: Option<String>,
}

impl GResp {
    pub(crate) fn json(status: u16, v: &Value) -> GResp {
        GResp { status, headers: Vec::new(), body: Some(v.to_string()) }
    }
    pub(crate) fn empty(status: u16) -> GResp {
        GResp { status, headers: Vec::new(), body: None }
    }
    pub(crate) fn header(mut self, k: &str, v: impl Into<String>) -> GResp {
        self.headers.push((k.to_string(), v.into()));
        self
    }
}

pub(crate) struct Ctx {
    request_id: String,
    client_request_id: String,
    date: String,
}

impl Ctx {
    /// A fresh `request-id`; `client-request-id` echoes the client's, or repeats the request id.
    pub(crate) fn new(shared: &Shared, headers: &HeaderMap) -> Ctx {
        let request_id = guid();
        let client_request_id =
            headers.get("client-request-id").and_then(|v| v.to_str().ok()).map(str::to_string).unwrap_or_else(|| request_id.clone());
        Ctx { request_id, client_request_id, date: graph_error_date(shared.now()) }
    }
}

/// Field order as §3.9: code, message, innerError{date, request-id, client-request-id}.
#[derive(Serialize)]
struct ErrBody<'a> {
    error: ErrInner<'a>,
}
#[derive(Serialize)]
struct ErrInner<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(rename = "innerError")]
    inner_error: Inner<'a>,
}
#[derive(Serialize)]
struct Inner<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'a str>,
    date: &'a str,
    #[serde(rename = "request-id")]
    request_id: &'a str,
    #[serde(rename = "client-request-id")]
    client_request_id: &'a str,
}

pub(crate) fn err(ctx: &Ctx, status: u16, code: &str, message: &str) -> GResp {
    let inner_code = if status == 429 && code == "TooManyRequests" { Some("429") } else { None };
    let body = ErrBody {
        error: ErrInner {
            code,
            message,
            inner_error: Inner {
                code: inner_code,
                date: &ctx.date,
                request_id: &ctx.request_id,
                client_request_id: &ctx.client_request_id,
            },
        },
    };
    GResp { status, headers: Vec::new(), body: Some(serde_json::to_string(&body).unwrap_or_default()) }
}

pub(crate) fn bad_request(ctx: &Ctx, msg: &str) -> GResp {
    err(ctx, 400, "BadRequest", msg)
}

pub(crate) fn access_denied(ctx: &Ctx) -> GResp {
    err(ctx, 403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
}

async fn entry(State(shared): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().strip_prefix("/v1.0").unwrap_or("/").to_string();
    let req = GReq { method, path, query: uri.query().unwrap_or("").to_string(), headers, body };
    let resp = if req.path.trim_matches('/') == "$batch" {
        batch(&shared, req).await
    } else {
        dispatch(&shared, req, std::time::Instant::now()).await
    };
    into_response(resp)
}

fn into_response(g: GResp) -> Response {
    let mut r = Response::new(g.body.map(Body::from).unwrap_or_else(Body::empty));
    *r.status_mut() = StatusCode::from_u16(g.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    for (k, v) in g.headers {
        if let (Ok(name), Ok(val)) = (header::HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(&v)) {
            h.append(name, val);
        }
    }
    r
}

fn finish(shared: &Shared, ctx: &Ctx, route: &str, mailbox: Option<&str>, mut resp: GResp) -> GResp {
    crate::registry::count(shared, route, resp.status, mailbox);
    // One Preference-Applied header listing every applied preference, as Graph sends it.
    let applied: Vec<String> = resp.headers.iter().filter(|(k, _)| k == "Preference-Applied").map(|(_, v)| v.clone()).collect();
    if applied.len() > 1 {
        resp.headers.retain(|(k, _)| k != "Preference-Applied");
        resp.headers.push(("Preference-Applied".into(), applied.join(", ")));
    }
    if resp.body.is_some() {
        resp.headers.push(("Content-Type".into(), JSON_CT.into()));
    }
    resp.headers.push(("request-id".into(), ctx.request_id.clone()));
    resp.headers.push(("client-request-id".into(), ctx.client_request_id.clone()));
    resp.headers.push((
        "x-ms-ags-diagnostic".into(),
        r#"{"ServerInfo":{"DataCenter":"Emulator","Slice":"E","Ring":"5","ScaleUnit":"000","RoleInstance":"EMU","ADSiteName":"EMU"}}"#
            .into(),
    ));
    resp.headers.push(("Cache-Control".into(), "no-cache".into()));
    resp
}

fn prefer(headers: &HeaderMap) -> (Option<usize>, bool) {
    let mut size = None;
    let mut immutable = false;
    for v in headers.get_all("prefer") {
        let Ok(s) = v.to_str() else { continue };
        for part in s.split(',') {
            let part = part.trim();
            if let Some(n) = part.strip_prefix("odata.maxpagesize=") {
                size = n.trim().parse().ok();
            }
            if part.replace(' ', "").eq_ignore_ascii_case("IdType=\"ImmutableId\"") {
                immutable = true;
            }
        }
    }
    (size, immutable)
}

/// Path segments, percent-decoded, with OData key syntax unfolded: `mailFolders('inbox')` and
/// `users('a@b')` address the same resources as `mailFolders/inbox` and `users/a@b`.
pub(crate) fn path_segments(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    for raw in path.trim_matches('/').split('/').filter(|s| !s.is_empty()) {
        let seg = percent_decode(raw);
        match seg.strip_suffix("')").and_then(|s| s.split_once("('")) {
            Some((name, key)) if !name.is_empty() => {
                out.push(name.to_string());
                out.push(key.to_string());
            }
            _ => out.push(seg),
        }
    }
    out
}

fn encode_token<T: Serialize>(t: &T) -> String {
    b64url(serde_json::to_string(t).unwrap_or_default().as_bytes())
}

fn decode_token<T: for<'de> Deserialize<'de>>(s: &str) -> Option<T> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s.trim()).ok()?;
    serde_json::from_slice(&raw).ok()
}
