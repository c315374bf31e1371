//! Microsoft Graph v1.0 (MICROSOFT.md §3): users, mail folders and message delta, calendarView delta,
//! contacts delta, To Do lists and tasks delta, sendMail, creating events/contacts/tasks, and `$batch`.
//!
//! Requests go through one dispatcher (not axum routes) so `$batch` can run its inner requests through
//! exactly the same checks: token → target mailbox → throttling → injected faults → scopes/roles and
//! delegate rights → licence → the operation.

use crate::generate::{self, CONTACT_FOLDERS, Kind, MAIL_FOLDERS, TASK_LISTS};
use crate::identity::{AccessGrant, TokenCheck, check_access_token, format_retry_after};
use crate::util::{b64url, graph_error_date, guid, parse_qs, percent_decode};
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

const JSON_CT: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1.0/{*rest}", axum::routing::any(entry))
        .route("/oidc/userinfo", axum::routing::get(userinfo))
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
        GResp {
            status,
            headers: Vec::new(),
            body: Some(v.to_string()),
        }
    }
    pub(crate) fn empty(status: u16) -> GResp {
        GResp {
            status,
            headers: Vec::new(),
            body: None,
        }
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
    let inner_code = if status == 429 && code == "TooManyRequests" {
        Some("429")
    } else {
        None
    };
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
    GResp {
        status,
        headers: Vec::new(),
        body: Some(serde_json::to_string(&body).unwrap_or_default()),
    }
}

pub(crate) fn bad_request(ctx: &Ctx, msg: &str) -> GResp {
    err(ctx, 400, "BadRequest", msg)
}

pub(crate) fn access_denied(ctx: &Ctx) -> GResp {
    err(
        ctx,
        403,
        "ErrorAccessDenied",
        "Access is denied. Check credentials and try again.",
    )
}

async fn entry(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().strip_prefix("/v1.0").unwrap_or("/").to_string();
    let req = GReq {
        method,
        path,
        query: uri.query().unwrap_or("").to_string(),
        headers,
        body,
    };
    let resp = if req.path.trim_matches('/') == "$batch" {
        batch(&shared, req).await
    } else {
        dispatch(&shared, req, false).await
    };
    into_response(resp)
}

fn into_response(g: GResp) -> Response {
    let mut r = Response::new(g.body.map(Body::from).unwrap_or_else(Body::empty));
    *r.status_mut() = StatusCode::from_u16(g.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    for (k, v) in g.headers {
        if let (Ok(name), Ok(val)) = (
            header::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(&v),
        ) {
            h.append(name, val);
        }
    }
    r
}

fn finish(
    shared: &Shared,
    ctx: &Ctx,
    route: &str,
    mailbox: Option<&str>,
    mut resp: GResp,
) -> GResp {
    crate::control::count(shared, route, resp.status, mailbox);
    // One Preference-Applied header listing every applied preference, as Graph sends it.
    let applied: Vec<String> = resp
        .headers
        .iter()
        .filter(|(k, _)| k == "Preference-Applied")
        .map(|(_, v)| v.clone())
        .collect();
    if applied.len() > 1 {
        resp.headers.retain(|(k, _)| k != "Preference-Applied");
        resp.headers
            .push(("Preference-Applied".into(), applied.join(", ")));
    }
    if resp.body.is_some() {
        resp.headers.push(("Content-Type".into(), JSON_CT.into()));
    }
    resp.headers
        .push(("request-id".into(), ctx.request_id.clone()));
    resp.headers
        .push(("client-request-id".into(), ctx.client_request_id.clone()));
    resp.headers.push(("x-ms-ags-diagnostic".into(), r#"{"ServerInfo":{"DataCenter":"Emulator","Slice":"E","Ring":"5","ScaleUnit":"000","RoleInstance":"EMU","ADSiteName":"EMU"}}"#.into()));
    resp.headers
        .push(("Cache-Control".into(), "no-cache".into()));
    resp
}

// ------------------------------------------------------------------ routing

#[derive(Clone, Debug)]
enum Op {
    Me,
    UserGet,
    UsersList,
    MailFolders,
    ChildFolders(String),
    MailFolder(String),
    MailFoldersDelta,
    MessagesDelta(String),
    Message(String),
    SendMail,
    CalendarViewDelta,
    CreateEvent,
    Event(String),
    ContactFolders,
    ContactsDelta(String),
    CreateContact(String),
    TodoLists,
    TodoListsDelta,
    TasksDelta(String),
    CreateTask(String),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Need {
    Profile,
    Directory,
    MailRead,
    MailSend,
    CalRead,
    CalWrite,
    ContactsRead,
    ContactsWrite,
    TasksRead,
    TasksWrite,
}

enum Target {
    Me,
    User(String),
    None,
}

/// (route template for counters, target, operation, permission needed)
fn route(method: &Method, segs: &[String]) -> Option<(String, Target, Op, Need)> {
    let (target, prefix, rest): (Target, &str, &[String]) = match segs {
        [first, rest @ ..] if first == "me" => (Target::Me, "/me", rest),
        [first] if first == "users" => {
            return (method == Method::GET).then(|| {
                (
                    "GET /users".to_string(),
                    Target::None,
                    Op::UsersList,
                    Need::Directory,
                )
            });
        }
        [first, id, rest @ ..] if first == "users" => {
            (Target::User(id.clone()), "/users/{id}", rest)
        }
        _ => return None,
    };
    let s: Vec<&str> = rest.iter().map(String::as_str).collect();
    let get = *method == Method::GET;
    let post = *method == Method::POST;
    let (tail, op, need) = match (s.as_slice(), get, post) {
        ([], true, _) => (
            "",
            if matches!(target, Target::Me) {
                Op::Me
            } else {
                Op::UserGet
            },
            Need::Profile,
        ),
        (["mailFolders"], true, _) => ("/mailFolders", Op::MailFolders, Need::MailRead),
        (["mailFolders", "delta"], true, _) => {
            ("/mailFolders/delta", Op::MailFoldersDelta, Need::MailRead)
        }
        (["mailFolders", f], true, _) => (
            "/mailFolders/{id}",
            Op::MailFolder(f.to_string()),
            Need::MailRead,
        ),
        (["mailFolders", f, "childFolders"], true, _) => (
            "/mailFolders/{id}/childFolders",
            Op::ChildFolders(f.to_string()),
            Need::MailRead,
        ),
        (["mailFolders", f, "messages", "delta"], true, _) => (
            "/mailFolders/{id}/messages/delta",
            Op::MessagesDelta(f.to_string()),
            Need::MailRead,
        ),
        (["messages", id], true, _) => (
            "/messages/{id}",
            Op::Message(id.to_string()),
            Need::MailRead,
        ),
        (["sendMail"], _, true) => ("/sendMail", Op::SendMail, Need::MailSend),
        (["calendarView", "delta"], true, _) => {
            ("/calendarView/delta", Op::CalendarViewDelta, Need::CalRead)
        }
        (["events"], _, true) | (["calendar", "events"], _, true) => {
            ("/events", Op::CreateEvent, Need::CalWrite)
        }
        (["events", id], true, _) => ("/events/{id}", Op::Event(id.to_string()), Need::CalRead),
        (["contactFolders"], true, _) => {
            ("/contactFolders", Op::ContactFolders, Need::ContactsRead)
        }
        (["contactFolders", f, "contacts", "delta"], true, _) => (
            "/contactFolders/{id}/contacts/delta",
            Op::ContactsDelta(f.to_string()),
            Need::ContactsRead,
        ),
        (["contactFolders", f, "contacts"], _, true) => (
            "/contactFolders/{id}/contacts",
            Op::CreateContact(f.to_string()),
            Need::ContactsWrite,
        ),
        (["contacts", "delta"], true, _) => (
            "/contacts/delta",
            Op::ContactsDelta("contacts".into()),
            Need::ContactsRead,
        ),
        (["contacts"], _, true) => (
            "/contacts",
            Op::CreateContact("contacts".into()),
            Need::ContactsWrite,
        ),
        (["todo", "lists"], true, _) => ("/todo/lists", Op::TodoLists, Need::TasksRead),
        (["todo", "lists", "delta"], true, _) => {
            ("/todo/lists/delta", Op::TodoListsDelta, Need::TasksRead)
        }
        (["todo", "lists", l, "tasks", "delta"], true, _) => (
            "/todo/lists/{id}/tasks/delta",
            Op::TasksDelta(l.to_string()),
            Need::TasksRead,
        ),
        (["todo", "lists", l, "tasks"], _, true) => (
            "/todo/lists/{id}/tasks",
            Op::CreateTask(l.to_string()),
            Need::TasksWrite,
        ),
        _ => return None,
    };
    Some((format!("{method} {prefix}{tail}"), target, op, need))
}

/// Does the token allow `need` on `target`'s mailbox? Delegated tokens reach other mailboxes only with
/// a `.Shared` scope *and* delegate rights (§2, PRODUCT.md service-user mode); app tokens need roles.
pub(crate) fn allowed(
    grant: &AccessGrant,
    caller: Option<&UserRef>,
    target: &UserRef,
    need: Need,
) -> bool {
    let has_scope = |names: &[&str]| {
        names
            .iter()
            .any(|n| grant.scopes.iter().any(|s| s.eq_ignore_ascii_case(n)))
    };
    let has_role = |names: &[&str]| {
        names
            .iter()
            .any(|n| grant.roles.iter().any(|s| s.eq_ignore_ascii_case(n)))
    };
    let Some(caller) = caller else {
        return match need {
            Need::Profile | Need::Directory => has_role(&[
                "User.Read.All",
                "User.ReadWrite.All",
                "Directory.Read.All",
                "User.ReadBasic.All",
            ]),
            Need::MailRead => has_role(&[
                "Mail.Read",
                "Mail.ReadWrite",
                "Mail.ReadBasic",
                "Mail.ReadBasic.All",
            ]),
            Need::MailSend => has_role(&["Mail.Send"]),
            Need::CalRead => has_role(&[
                "Calendars.Read",
                "Calendars.ReadWrite",
                "Calendars.ReadBasic.All",
            ]),
            Need::CalWrite => has_role(&["Calendars.ReadWrite"]),
            Need::ContactsRead => has_role(&["Contacts.Read", "Contacts.ReadWrite"]),
            Need::ContactsWrite => has_role(&["Contacts.ReadWrite"]),
            Need::TasksRead => has_role(&["Tasks.Read.All", "Tasks.ReadWrite.All"]),
            Need::TasksWrite => has_role(&["Tasks.ReadWrite.All"]),
        };
    };
    let own = caller.user.id.eq_ignore_ascii_case(&target.user.id);
    if need == Need::Profile || need == Need::Directory {
        return (own
            && has_scope(&[
                "User.Read",
                "User.ReadWrite",
                "User.ReadBasic.All",
                "User.Read.All",
                "Directory.Read.All",
            ]))
            || has_scope(&["User.ReadBasic.All", "User.Read.All", "Directory.Read.All"]);
    }
    let (own_scopes, shared_scopes): (&[&str], &[&str]) = match need {
        Need::MailRead => (
            &[
                "Mail.ReadBasic",
                "Mail.Read",
                "Mail.ReadWrite",
                "Mail.Read.Shared",
                "Mail.ReadWrite.Shared",
            ],
            &["Mail.Read.Shared", "Mail.ReadWrite.Shared"],
        ),
        Need::MailSend => (&["Mail.Send", "Mail.Send.Shared"], &["Mail.Send.Shared"]),
        Need::CalRead => (
            &[
                "Calendars.Read",
                "Calendars.ReadBasic",
                "Calendars.ReadWrite",
                "Calendars.Read.Shared",
                "Calendars.ReadWrite.Shared",
            ],
            &["Calendars.Read.Shared", "Calendars.ReadWrite.Shared"],
        ),
        Need::CalWrite => (
            &["Calendars.ReadWrite", "Calendars.ReadWrite.Shared"],
            &["Calendars.ReadWrite.Shared"],
        ),
        Need::ContactsRead => (
            &[
                "Contacts.Read",
                "Contacts.ReadWrite",
                "Contacts.Read.Shared",
                "Contacts.ReadWrite.Shared",
            ],
            &["Contacts.Read.Shared", "Contacts.ReadWrite.Shared"],
        ),
        Need::ContactsWrite => (
            &["Contacts.ReadWrite", "Contacts.ReadWrite.Shared"],
            &["Contacts.ReadWrite.Shared"],
        ),
        Need::TasksRead => (
            &[
                "Tasks.Read",
                "Tasks.ReadWrite",
                "Tasks.Read.Shared",
                "Tasks.ReadWrite.Shared",
            ],
            &["Tasks.Read.Shared", "Tasks.ReadWrite.Shared"],
        ),
        Need::TasksWrite => (
            &["Tasks.ReadWrite", "Tasks.ReadWrite.Shared"],
            &["Tasks.ReadWrite.Shared"],
        ),
        Need::Profile | Need::Directory => (&[], &[]),
    };
    if own {
        return has_scope(own_scopes);
    }
    let delegate = caller.user.delegate_access.iter().any(|d| {
        d.eq_ignore_ascii_case(&target.user.user_principal_name)
            || d.eq_ignore_ascii_case(&target.user.id)
    });
    delegate && has_scope(shared_scopes)
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
            if part
                .replace(' ', "")
                .eq_ignore_ascii_case("IdType=\"ImmutableId\"")
            {
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

/// One Graph request (also each inner request of a batch).
async fn dispatch(shared: &Arc<Shared>, req: GReq, _in_batch: bool) -> GResp {
    let request_id = guid();
    let client_request_id = req
        .headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| request_id.clone());
    let ctx = Ctx {
        request_id,
        client_request_id,
        date: graph_error_date(shared.now()),
    };
    let segs = path_segments(&req.path);
    let routed = route(&req.method, &segs);
    let template = routed
        .as_ref()
        .map(|r| r.0.clone())
        .unwrap_or_else(|| format!("{} (unknown)", req.method));

    // 1. Token (§3.1, §3.9: 401 InvalidAuthenticationToken with WWW-Authenticate).
    let token = req
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let grant = match token.map(|t| check_access_token(shared, t)) {
        Some(TokenCheck::Valid(g)) => g,
        other => {
            let msg = match other {
                None => "Access token is empty.",
                Some(TokenCheck::Expired) => "Access token has expired or is not yet valid.",
                _ => "CompactToken parsing failed with error code: 80049217",
            };
            let r = err(&ctx, 401, "InvalidAuthenticationToken", msg).header(
                "WWW-Authenticate",
                r#"Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000""#,
            );
            return finish(shared, &ctx, &template, None, r);
        }
    };
    if segs.first().map(String::as_str) == Some("subscriptions") {
        let caller = grant.user_id.as_deref().and_then(|u| shared.user(u));
        let (template, r) =
            crate::subscriptions::handle(shared, &ctx, &req, &grant, caller.as_ref(), &segs).await;
        return finish(shared, &ctx, &template, None, r);
    }
    let Some((template, target, op, need)) = routed else {
        let seg = segs.last().cloned().unwrap_or_default();
        return finish(
            shared,
            &ctx,
            &template,
            None,
            bad_request(
                &ctx,
                &format!("Resource not found for the segment '{seg}'."),
            ),
        );
    };
    let caller = grant.user_id.as_deref().and_then(|u| shared.user(u));

    // 2. Target mailbox.
    let target_user = match &target {
        Target::Me => match &caller {
            Some(c) => Some(c.clone()),
            None => {
                return finish(
                    shared,
                    &ctx,
                    &template,
                    None,
                    bad_request(
                        &ctx,
                        "/me request is only valid with delegated authentication flow.",
                    ),
                );
            }
        },
        Target::User(key) => match shared
            .user(key)
            .filter(|u| u.tenant_id.eq_ignore_ascii_case(&grant.tenant_id))
        {
            Some(u) => Some(u),
            None => {
                let r = if matches!(op, Op::UserGet) {
                    err(
                        &ctx,
                        404,
                        "Request_ResourceNotFound",
                        &format!(
                            "Resource '{key}' does not exist or one of its queried reference-property objects are not present."
                        ),
                    )
                } else {
                    err(
                        &ctx,
                        404,
                        "ErrorInvalidUser",
                        &format!("The requested user '{key}' is invalid."),
                    )
                };
                return finish(shared, &ctx, &template, None, r);
            }
        },
        Target::None => None,
    };
    let mailbox_route = !matches!(op, Op::Me | Op::UserGet | Op::UsersList);
    let mailbox_label = target_user
        .as_ref()
        .filter(|_| mailbox_route)
        .map(|u| u.user.user_principal_name.to_ascii_lowercase());

    // 3. Outlook limits per app + mailbox (§4.1).
    let mut _permit = None;
    if let (Some(t), true) = (&target_user, mailbox_route) {
        let adm = shared.throttle.admit(&grant.client_id, &t.user.id);
        crate::control::note_admission(
            shared,
            &t.user.user_principal_name,
            adm.concurrency,
            adm.early_retry,
        );
        match adm.refusal {
            Some(crate::throttle::Refusal::Concurrency) => {
                shared
                    .throttle
                    .note_retry_after(&grant.client_id, &t.user.id, 1.0);
                let r = err(
                    &ctx,
                    429,
                    "ApplicationThrottled",
                    "Application is over its MailboxConcurrency limit.",
                )
                .header("Retry-After", "1");
                crate::control::note_throttled(shared, &t.user.user_principal_name);
                return finish(shared, &ctx, &template, mailbox_label.as_deref(), r);
            }
            Some(crate::throttle::Refusal::Rate { retry_after_secs }) => {
                let r = err(&ctx, 429, "TooManyRequests", "Please retry again later.")
                    .header("Retry-After", format_retry_after(retry_after_secs));
                crate::control::note_throttled(shared, &t.user.user_principal_name);
                return finish(shared, &ctx, &template, mailbox_label.as_deref(), r);
            }
            None => _permit = adm.permit,
        }
    }

    // 4. Injected faults (control API): delays hold the concurrency slot, like a slow backend would.
    if let Some(fault) =
        crate::control::take_fault(shared, &req.path, target_user.as_ref().map(|u| &u.user))
    {
        if let Some(ms) = fault.delay_ms {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
        if let Some(status) = fault.status {
            let mut r = match status {
                429 => err(&ctx, 429, "TooManyRequests", "Please retry again later."),
                410 => err(
                    &ctx,
                    410,
                    "SyncStateNotFound",
                    "The sync state generation is not found; generation=149;[highest=157][157][155][156].",
                ),
                503 => err(
                    &ctx,
                    503,
                    "serviceNotAvailable",
                    "The service is temporarily unavailable. Please retry later.",
                ),
                504 => err(&ctx, 504, "gatewayTimeout", "The gateway timed out."),
                401 => err(
                    &ctx,
                    401,
                    "InvalidAuthenticationToken",
                    "Access token has expired or is not yet valid.",
                ),
                403 => access_denied(&ctx),
                404 => err(
                    &ctx,
                    404,
                    "ErrorItemNotFound",
                    "The specified object was not found in the store.",
                ),
                s => err(
                    &ctx,
                    s,
                    "generalException",
                    "General exception while processing.",
                ),
            };
            if let Some(ra) = fault
                .retry_after
                .or(if status == 429 { Some(2.0) } else { None })
            {
                r = r.header("Retry-After", fault.retry_after_header(ra));
                if let Some(t) = &target_user {
                    shared
                        .throttle
                        .note_retry_after(&grant.client_id, &t.user.id, ra);
                }
            }
            if status == 429
                && let Some(t) = &target_user
            {
                crate::control::note_throttled(shared, &t.user.user_principal_name);
            }
            return finish(shared, &ctx, &template, mailbox_label.as_deref(), r);
        }
    }

    // 5. Permissions, then licence.
    if let Some(t) = &target_user {
        if !allowed(&grant, caller.as_ref(), t, need) {
            let r = if matches!(need, Need::Profile | Need::Directory) {
                err(
                    &ctx,
                    403,
                    "Authorization_RequestDenied",
                    "Insufficient privileges to complete the operation.",
                )
            } else {
                access_denied(&ctx)
            };
            return finish(shared, &ctx, &template, mailbox_label.as_deref(), r);
        }
        // Application access policy (§5): app-only access to mail, calendars and contacts (not Tasks)
        // outside the policy's scope → 403 "Access to OData is disabled."
        if caller.is_none()
            && matches!(
                need,
                Need::MailRead
                    | Need::MailSend
                    | Need::CalRead
                    | Need::CalWrite
                    | Need::ContactsRead
                    | Need::ContactsWrite
            )
            && !shared.app_policy_allows(&grant.tenant_id, &grant.client_id, &t.user)
        {
            let r = err(
                &ctx,
                403,
                "ErrorAccessDenied",
                "Access to OData is disabled.",
            );
            return finish(shared, &ctx, &template, mailbox_label.as_deref(), r);
        }
        if mailbox_route && !t.user.licensed {
            let r = err(
                &ctx,
                404,
                "MailboxNotEnabledForRESTAPI",
                "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
            );
            return finish(shared, &ctx, &template, mailbox_label.as_deref(), r);
        }
    } else if !allowed_directory(&grant, caller.as_ref()) {
        let r = err(
            &ctx,
            403,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        );
        return finish(shared, &ctx, &template, None, r);
    }

    let r = match (op, target_user) {
        (Op::UsersList, _) => users_list(shared, &ctx, &req, &grant),
        (Op::Me | Op::UserGet, Some(u)) => {
            let q = parse_qs(&req.query);
            GResp::json(200, &select(user_json(shared, &u, true), q.get("$select")))
        }
        (op, Some(u)) => mailbox_op(shared, &ctx, &req, &grant, caller.as_ref(), &u, op),
        _ => bad_request(&ctx, "Invalid request."),
    };
    finish(shared, &ctx, &template, mailbox_label.as_deref(), r)
}

fn allowed_directory(grant: &AccessGrant, caller: Option<&UserRef>) -> bool {
    let any = |set: &std::collections::BTreeSet<String>, names: &[&str]| {
        names
            .iter()
            .any(|n| set.iter().any(|s| s.eq_ignore_ascii_case(n)))
    };
    match caller {
        Some(_) => any(
            &grant.scopes,
            &["User.ReadBasic.All", "User.Read.All", "Directory.Read.All"],
        ),
        None => any(
            &grant.roles,
            &[
                "User.Read.All",
                "User.ReadWrite.All",
                "Directory.Read.All",
                "User.ReadBasic.All",
            ],
        ),
    }
}

// ------------------------------------------------------------------ users

fn user_json(shared: &Shared, u: &UserRef, with_context: bool) -> Value {
    let mut v = json!({
        "businessPhones": [],
        "displayName": u.user.display_name,
        "givenName": u.user.given_name,
        "jobTitle": u.user.job_title,
        "mail": if u.user.licensed { Value::from(u.user.user_principal_name.clone()) } else { Value::Null },
        "mobilePhone": null,
        "officeLocation": null,
        "preferredLanguage": "en-US",
        "surname": u.user.surname,
        "userPrincipalName": u.user.user_principal_name,
        "id": u.user.id,
    });
    if with_context {
        v["@odata.context"] = json!(format!("{}/v1.0/$metadata#users/$entity", shared.base_url));
    }
    v
}

fn select(v: Value, sel: Option<&String>) -> Value {
    let Some(sel) = sel.filter(|s| !s.trim().is_empty()) else {
        return v;
    };
    let keep: HashSet<&str> = sel.split(',').map(str::trim).collect();
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| k.starts_with('@') || k == "id" || keep.contains(k.as_str()))
                .collect(),
        ),
        other => other,
    }
}

#[derive(Serialize, Deserialize)]
struct UsersToken {
    o: usize,
    t: usize,
    f: Option<String>,
    s: Option<String>,
    #[serde(default)]
    q: Option<String>,
}

/// `$search="displayName:ali" OR "mail:ali"` (directory search; needs `ConsistencyLevel: eventual`).
fn user_search(q: &str) -> Result<Vec<(String, String)>, ()> {
    let mut out = Vec::new();
    for clause in q.split(" OR ").flat_map(|c| c.split(" or ")) {
        let c = clause.trim().trim_matches('"');
        let (prop, val) = c.split_once(':').ok_or(())?;
        out.push((prop.trim().to_string(), val.trim().to_ascii_lowercase()));
    }
    if out.is_empty()
        || out.iter().any(|(p, _)| {
            ![
                "mail",
                "userPrincipalName",
                "displayName",
                "givenName",
                "surname",
            ]
            .contains(&p.as_str())
        })
    {
        return Err(());
    }
    Ok(out)
}

/// `$filter` subset: `startswith(prop,'x')` and `prop eq 'x'` joined by `or`, on mail/UPN/displayName.
fn user_filter(f: &str) -> Result<Vec<(String, bool, String)>, ()> {
    let mut out = Vec::new();
    for clause in f.split(" or ") {
        let c = clause.trim();
        if let Some(inner) = c
            .strip_prefix("startswith(")
            .and_then(|r| r.strip_suffix(')'))
        {
            let (prop, val) = inner.split_once(',').ok_or(())?;
            let val = val.trim().trim_matches('\'').to_string();
            out.push((prop.trim().to_string(), true, val));
        } else if let Some((prop, val)) = c.split_once(" eq ") {
            out.push((
                prop.trim().to_string(),
                false,
                val.trim().trim_matches('\'').to_string(),
            ));
        } else {
            return Err(());
        }
    }
    if out.iter().any(|(p, _, _)| {
        ![
            "mail",
            "userPrincipalName",
            "displayName",
            "givenName",
            "surname",
        ]
        .contains(&p.as_str())
    }) {
        return Err(());
    }
    Ok(out)
}

fn users_list(shared: &Shared, ctx: &Ctx, req: &GReq, grant: &AccessGrant) -> GResp {
    let q = parse_qs(&req.query);
    let tok = match q.get("$skiptoken") {
        Some(t) => match decode_token::<UsersToken>(t) {
            Some(t) => t,
            None => return bad_request(ctx, "Invalid skiptoken."),
        },
        None => {
            let top = match q.get("$top") {
                None => 100,
                Some(t) => match t.parse::<usize>() {
                    Ok(n) if (1..=999).contains(&n) => n,
                    _ => {
                        return err(
                            ctx,
                            400,
                            "Request_UnsupportedQuery",
                            &format!(
                                "Invalid page size specified: '{t}'. Must be between 1 and 999 inclusive."
                            ),
                        );
                    }
                },
            };
            if q.contains_key("$search")
                && !req
                    .headers
                    .get("consistencylevel")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.eq_ignore_ascii_case("eventual"))
            {
                return err(
                    ctx,
                    400,
                    "Request_UnsupportedQuery",
                    "Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'",
                );
            }
            UsersToken {
                o: 0,
                t: top,
                f: q.get("$filter").cloned(),
                s: q.get("$select").cloned(),
                q: q.get("$search").cloned(),
            }
        }
    };
    let filter = match tok.f.as_deref().map(user_filter) {
        None => None,
        Some(Ok(f)) => Some(f),
        Some(Err(())) => {
            return err(
                ctx,
                400,
                "Request_UnsupportedQuery",
                "Unsupported or invalid query filter clause specified for property or navigation property.",
            );
        }
    };
    let search = match tok.q.as_deref().map(user_search) {
        None => None,
        Some(Ok(q)) => Some(q),
        Some(Err(())) => {
            return err(
                ctx,
                400,
                "Request_UnsupportedQuery",
                "Unsupported or invalid $search clause.",
            );
        }
    };
    let Some(ti) = shared.tenant_index(&grant.tenant_id) else {
        return bad_request(ctx, "Unknown tenant.");
    };
    let Some(tenant) = shared.tenant(ti) else {
        return bad_request(ctx, "Unknown tenant.");
    };
    let matching: Vec<UserRef> = tenant
        .users
        .iter()
        .map(|u| UserRef {
            tenant_id: tenant.id.clone(),
            tenant_index: ti,
            user: u.clone(),
        })
        .filter(|u| {
            filter.as_ref().is_none_or(|clauses| {
                clauses.iter().any(|(prop, prefix, val)| {
                    let v = user_json(shared, u, false);
                    let field = v
                        .get(prop)
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_ascii_lowercase();
                    let val = val.to_ascii_lowercase();
                    if *prefix {
                        field.starts_with(&val)
                    } else {
                        field == val
                    }
                })
            })
        })
        .filter(|u| {
            search.as_ref().is_none_or(|clauses| {
                let v = user_json(shared, u, false);
                clauses.iter().any(|(prop, val)| {
                    v.get(prop)
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_ascii_lowercase()
                        .contains(val)
                })
            })
        })
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(tok.o)
        .take(tok.t)
        .map(|u| select(user_json(shared, u, false), tok.s.as_ref()))
        .collect();
    let mut out = Map::new();
    out.insert(
        "@odata.context".into(),
        json!(format!("{}/v1.0/$metadata#users", shared.base_url)),
    );
    if tok.o + tok.t < matching.len() {
        let next = UsersToken {
            o: tok.o + tok.t,
            t: tok.t,
            f: tok.f.clone(),
            s: tok.s.clone(),
            q: tok.q.clone(),
        };
        out.insert(
            "@odata.nextLink".into(),
            json!(format!(
                "{}/v1.0/users?$skiptoken={}",
                shared.base_url,
                encode_token(&next)
            )),
        );
    }
    out.insert("value".into(), Value::Array(page));
    GResp::json(200, &Value::Object(out))
}

fn encode_token<T: Serialize>(t: &T) -> String {
    b64url(serde_json::to_string(t).unwrap_or_default().as_bytes())
}

fn decode_token<T: for<'de> Deserialize<'de>>(s: &str) -> Option<T> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim())
        .ok()?;
    serde_json::from_slice(&raw).ok()
}

async fn userinfo(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let resp = match check_access_token(&shared, token) {
        TokenCheck::Valid(g) => match g.user_id.and_then(|u| shared.user(&u)) {
            Some(u) => GResp::json(
                200,
                &json!({"sub": u.user.id, "name": u.user.display_name, "family_name": u.user.surname, "given_name": u.user.given_name, "email": u.user.user_principal_name}),
            ),
            None => GResp::empty(401),
        },
        _ => GResp::empty(401),
    };
    into_response(resp)
}

// ------------------------------------------------------------------ mailbox operations

fn folder_json(mb: &crate::store::MailboxState, key: &str) -> Value {
    let def = MAIL_FOLDERS.iter().find(|f| f.key == key);
    let (total, unread) = mb.count_in(Kind::Message, key);
    let parent = def
        .and_then(|d| d.parent)
        .map(|p| generate::folder_id(mb.ctx.hash, p))
        .unwrap_or_else(|| generate::folder_id(mb.ctx.hash, "msgfolderroot"));
    json!({
        "id": generate::folder_id(mb.ctx.hash, key),
        "displayName": def.map(|d| d.name).unwrap_or(key),
        "parentFolderId": parent,
        "childFolderCount": MAIL_FOLDERS.iter().filter(|f| f.parent == Some(key)).count(),
        "unreadItemCount": unread,
        "totalItemCount": total,
        "isHidden": false,
    })
}

fn list_lists_json(mb: &crate::store::MailboxState, key: &str) -> Option<Value> {
    let (k, name, wk) = TASK_LISTS.iter().find(|l| l.0 == key)?;
    Some(json!({
        "@odata.etag": generate::etag(0, 0),
        "displayName": name,
        "isOwner": true,
        "isShared": false,
        "wellknownListName": wk,
        "id": generate::folder_id(mb.ctx.hash, k),
    }))
}

fn collection(shared: &Shared, entity: &str, value: Vec<Value>) -> Value {
    json!({"@odata.context": format!("{}/v1.0/$metadata#{entity}", shared.base_url), "value": value})
}

fn mailbox_op(
    shared: &Shared,
    ctx: &Ctx,
    req: &GReq,
    grant: &AccessGrant,
    caller: Option<&UserRef>,
    user: &UserRef,
    op: Op,
) -> GResp {
    let mb_arc = shared.mailbox(&user.user);
    let (page_pref, immutable) = prefer(&req.headers);
    // Sync state belongs to a client (app + signed-in identity): two connections syncing one mailbox
    // must not age each other's delta links.
    let stream = format!(
        "{}|{}",
        grant.client_id,
        caller.map(|c| c.user.id.as_str()).unwrap_or("app")
    );
    let folders: Vec<&str> = MAIL_FOLDERS.iter().map(|f| f.key).collect();
    let cfolders: Vec<&str> = CONTACT_FOLDERS.iter().map(|f| f.0).collect();
    let lists: Vec<&str> = TASK_LISTS.iter().map(|f| f.0).collect();
    let now = shared.now();
    let applied = |r: GResp| {
        if immutable {
            r.header("Preference-Applied", "IdType=\"ImmutableId\"")
        } else {
            r
        }
    };
    match op {
        Op::MailFolders => {
            let mb = lock(&mb_arc);
            let v: Vec<Value> = MAIL_FOLDERS
                .iter()
                .filter(|f| f.parent.is_none())
                .map(|f| folder_json(&mb, f.key))
                .collect();
            GResp::json(200, &collection(shared, "users('{id}')/mailFolders", v))
        }
        Op::ChildFolders(f) => {
            let mb = lock(&mb_arc);
            let Some(key) = generate::parse_container_id(mb.ctx.hash, &f, &folders) else {
                return err(
                    ctx,
                    404,
                    "ErrorItemNotFound",
                    "The specified object was not found in the store.",
                );
            };
            let v: Vec<Value> = MAIL_FOLDERS
                .iter()
                .filter(|d| d.parent == Some(key.as_str()))
                .map(|d| folder_json(&mb, d.key))
                .collect();
            GResp::json(
                200,
                &collection(shared, "users('{id}')/mailFolders('{id}')/childFolders", v),
            )
        }
        Op::MailFolder(f) => {
            let mb = lock(&mb_arc);
            match generate::parse_container_id(mb.ctx.hash, &f, &folders) {
                Some(key) => GResp::json(200, &folder_json(&mb, &key)),
                None => err(
                    ctx,
                    404,
                    "ErrorItemNotFound",
                    "The specified object was not found in the store.",
                ),
            }
        }
        Op::Message(id) => {
            let mb = lock(&mb_arc);
            match mb
                .resolve(&id)
                .filter(|(k, _)| *k == Kind::Message)
                .and_then(|(k, n)| mb.item_json(k, n, immutable))
            {
                Some(v) => applied(GResp::json(
                    200,
                    &select(v, parse_qs(&req.query).get("$select")),
                )),
                None => err(
                    ctx,
                    404,
                    "ErrorItemNotFound",
                    "The specified object was not found in the store.",
                ),
            }
        }
        Op::Event(id) => {
            let mb = lock(&mb_arc);
            match mb
                .resolve(&id)
                .filter(|(k, _)| *k == Kind::Event)
                .and_then(|(k, n)| mb.item_json(k, n, immutable))
            {
                Some(v) => applied(GResp::json(200, &v)),
                None => err(
                    ctx,
                    404,
                    "ErrorItemNotFound",
                    "The specified object was not found in the store.",
                ),
            }
        }
        Op::ContactFolders => {
            let mb = lock(&mb_arc);
            let v: Vec<Value> = CONTACT_FOLDERS
                .iter()
                .map(|(k, name)| json!({"id": generate::folder_id(mb.ctx.hash, k), "displayName": name, "parentFolderId": generate::folder_id(mb.ctx.hash, "contactroot")}))
                .collect();
            GResp::json(200, &collection(shared, "users('{id}')/contactFolders", v))
        }
        Op::TodoLists => {
            let mb = lock(&mb_arc);
            let v: Vec<Value> = TASK_LISTS
                .iter()
                .filter_map(|l| list_lists_json(&mb, l.0))
                .collect();
            GResp::json(200, &collection(shared, "users('{id}')/todo/lists", v))
        }
        Op::MailFoldersDelta => applied(delta(
            shared,
            ctx,
            req,
            user,
            &stream,
            Res::Folders,
            "*",
            page_pref,
            immutable,
        )),
        Op::TodoListsDelta => applied(delta(
            shared,
            ctx,
            req,
            user,
            &stream,
            Res::Lists,
            "*",
            page_pref,
            immutable,
        )),
        Op::MessagesDelta(f) => {
            let hash = lock(&mb_arc).ctx.hash;
            match generate::parse_container_id(hash, &f, &folders) {
                Some(key) => applied(delta(
                    shared,
                    ctx,
                    req,
                    user,
                    &stream,
                    Res::Messages,
                    &key,
                    page_pref,
                    immutable,
                )),
                None => err(
                    ctx,
                    404,
                    "ErrorItemNotFound",
                    "The specified object was not found in the store.",
                ),
            }
        }
        Op::ContactsDelta(f) => {
            let hash = lock(&mb_arc).ctx.hash;
            match generate::parse_container_id(hash, &f, &cfolders) {
                Some(key) => applied(delta(
                    shared,
                    ctx,
                    req,
                    user,
                    &stream,
                    Res::Contacts,
                    &key,
                    page_pref,
                    immutable,
                )),
                None => err(
                    ctx,
                    404,
                    "ErrorItemNotFound",
                    "The specified object was not found in the store.",
                ),
            }
        }
        Op::TasksDelta(l) => {
            let hash = lock(&mb_arc).ctx.hash;
            match generate::parse_container_id(hash, &l, &lists) {
                Some(key) => applied(delta(
                    shared,
                    ctx,
                    req,
                    user,
                    &stream,
                    Res::Tasks,
                    &key,
                    page_pref,
                    immutable,
                )),
                None => err(
                    ctx,
                    404,
                    "ErrorItemNotFound",
                    "The specified object was not found in the store.",
                ),
            }
        }
        Op::CalendarViewDelta => applied(delta(
            shared,
            ctx,
            req,
            user,
            &stream,
            Res::Events,
            "calendar",
            page_pref,
            immutable,
        )),
        Op::SendMail => send_mail(shared, ctx, req, grant, caller, user),
        Op::CreateEvent => {
            let Some(Value::Object(body)) = serde_json::from_slice::<Value>(&req.body).ok() else {
                return bad_request(ctx, "Empty Payload. JSON content expected.");
            };
            if body.get("start").and_then(|s| s.get("dateTime")).is_none()
                || body.get("end").and_then(|s| s.get("dateTime")).is_none()
            {
                return err(
                    ctx,
                    400,
                    "ErrorInvalidRequest",
                    "Your request can't be completed. The start and end times are required.",
                );
            }
            let mut fields = body.clone();
            fields.entry("isAllDay").or_insert(json!(false));
            fields.entry("isCancelled").or_insert(json!(false));
            fields.entry("showAs").or_insert(json!("busy"));
            fields.entry("attendees").or_insert(json!([]));
            fields.entry("organizer").or_insert(json!({"emailAddress": {"name": user.user.display_name, "address": user.user.user_principal_name}}));
            fields.insert(
                "iCalUId".into(),
                json!(format!(
                    "040000008200E00074C5B7101A82E008{}",
                    guid().replace('-', "").to_uppercase()
                )),
            );
            let mut mb = lock(&mb_arc);
            let n = mb.add(Kind::Event, "calendar", Value::Object(fields), now);
            crate::subscriptions::flush(shared, &user.user, &mut mb);
            let mut v = mb
                .item_json(Kind::Event, n, immutable)
                .unwrap_or(Value::Null);
            v["type"] = json!("singleInstance");
            applied(GResp::json(201, &v))
        }
        Op::CreateContact(f) => {
            let Some(Value::Object(body)) = serde_json::from_slice::<Value>(&req.body).ok() else {
                return bad_request(ctx, "Empty Payload. JSON content expected.");
            };
            let mut mb = lock(&mb_arc);
            let Some(key) = generate::parse_container_id(mb.ctx.hash, &f, &cfolders) else {
                return err(
                    ctx,
                    404,
                    "ErrorItemNotFound",
                    "The specified object was not found in the store.",
                );
            };
            let mut fields = body;
            if !fields.contains_key("displayName") {
                let name = format!(
                    "{} {}",
                    fields
                        .get("givenName")
                        .and_then(Value::as_str)
                        .unwrap_or(""),
                    fields.get("surname").and_then(Value::as_str).unwrap_or("")
                )
                .trim()
                .to_string();
                fields.insert("displayName".into(), json!(name));
            }
            let n = mb.add(Kind::Contact, &key, Value::Object(fields), now);
            crate::subscriptions::flush(shared, &user.user, &mut mb);
            applied(GResp::json(
                201,
                &mb.item_json(Kind::Contact, n, immutable)
                    .unwrap_or(Value::Null),
            ))
        }
        Op::CreateTask(l) => {
            let Some(Value::Object(body)) = serde_json::from_slice::<Value>(&req.body).ok() else {
                return bad_request(ctx, "Empty Payload. JSON content expected.");
            };
            if body
                .get("title")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return bad_request(ctx, "Invalid request: title is required.");
            }
            let mut mb = lock(&mb_arc);
            let Some(key) = generate::parse_container_id(mb.ctx.hash, &l, &lists) else {
                return err(
                    ctx,
                    404,
                    "ErrorItemNotFound",
                    "The specified object was not found in the store.",
                );
            };
            let mut fields = body;
            fields.entry("status").or_insert(json!("notStarted"));
            fields.entry("importance").or_insert(json!("normal"));
            fields.entry("isReminderOn").or_insert(json!(false));
            fields.entry("categories").or_insert(json!([]));
            let n = mb.add(Kind::Task, &key, Value::Object(fields), now);
            crate::subscriptions::flush(shared, &user.user, &mut mb);
            applied(GResp::json(
                201,
                &mb.item_json(Kind::Task, n, immutable)
                    .unwrap_or(Value::Null),
            ))
        }
        Op::Me | Op::UserGet | Op::UsersList => bad_request(ctx, "Invalid request."),
    }
}

fn send_mail(
    shared: &Shared,
    ctx: &Ctx,
    req: &GReq,
    grant: &AccessGrant,
    caller: Option<&UserRef>,
    user: &UserRef,
) -> GResp {
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&req.body) else {
        return err(
            ctx,
            400,
            "ErrorInvalidRequest",
            "Cannot read the request body. JSON content expected.",
        );
    };
    let Some(Value::Object(message)) = body.get("message").cloned() else {
        return err(
            ctx,
            400,
            "ErrorInvalidParameter",
            "The value of the parameter 'Message' is empty.",
        );
    };
    let recipients: Vec<String> = ["toRecipients", "ccRecipients", "bccRecipients"]
        .iter()
        .flat_map(|k| {
            message
                .get(*k)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|r| {
            r.pointer("/emailAddress/address")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    if recipients.is_empty() {
        return err(
            ctx,
            400,
            "ErrorInvalidRecipients",
            "At least one recipient isn't valid., A message can't be sent because it contains no recipients.",
        );
    }
    // Sending "from" someone else needs Send As / on behalf rights (§3.7).
    let from_addr = message
        .get("from")
        .and_then(|f| f.pointer("/emailAddress/address"))
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(from) = &from_addr
        && !from.eq_ignore_ascii_case(&user.user.user_principal_name)
    {
        let ok = match (caller, shared.user(from)) {
            (Some(c), Some(owner)) => allowed(grant, Some(c), &owner, Need::MailSend),
            (None, Some(_)) => grant
                .roles
                .iter()
                .any(|r| r.eq_ignore_ascii_case("Mail.Send")),
            _ => false,
        };
        if !ok {
            return err(
                ctx,
                403,
                "ErrorSendAsDenied",
                "The user account which was used to submit this request does not have the right to send mail on behalf of the specified sending account. Cannot submit message.",
            );
        }
    }
    let now = shared.now();
    let stamp = generate::graph_datetime(now);
    let sender = json!({"emailAddress": {"name": user.user.display_name, "address": user.user.user_principal_name}});
    let mut stored = message.clone();
    stored.remove("attachments");
    stored.entry("from").or_insert(sender.clone());
    stored.insert("sender".into(), sender);
    for k in [
        "toRecipients",
        "ccRecipients",
        "bccRecipients",
        "categories",
    ] {
        stored.entry(k).or_insert(json!([]));
    }
    let content = message
        .get("body")
        .and_then(|b| b.get("content"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    stored
        .entry("body")
        .or_insert(json!({"contentType": "text", "content": ""}));
    stored.insert(
        "bodyPreview".into(),
        json!(content.chars().take(255).collect::<String>()),
    );
    stored.insert("receivedDateTime".into(), json!(stamp));
    stored.insert("sentDateTime".into(), json!(stamp));
    stored.insert(
        "hasAttachments".into(),
        json!(
            message
                .get("attachments")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty())
        ),
    );
    stored.insert(
        "internetMessageId".into(),
        json!(format!(
            "<{}@{}>",
            guid(),
            user.user
                .user_principal_name
                .split('@')
                .nth(1)
                .unwrap_or("emulator.test")
        )),
    );
    stored.insert("conversationId".into(), json!(b64url(guid().as_bytes())));
    stored.insert("isDraft".into(), json!(false));
    stored.entry("importance").or_insert(json!("normal"));
    stored.insert("flag".into(), json!({"flagStatus": "notFlagged"}));
    if body.get("saveToSentItems").and_then(Value::as_bool) != Some(false) {
        let copy_owner = caller
            .filter(|_| from_addr.is_some())
            .cloned()
            .unwrap_or_else(|| user.clone());
        let mut sent = stored.clone();
        sent.insert("isRead".into(), json!(true));
        add_and_notify(
            shared,
            &copy_owner.user,
            "sentitems",
            Value::Object(sent),
            now,
        );
    }
    // Deliver to recipients the emulator hosts (same tenant or not), so mail flows between demo users.
    for r in recipients {
        if let Some(rcpt) = shared.user(&r).filter(|u| u.user.licensed) {
            let mut inbound = stored.clone();
            inbound.insert("isRead".into(), json!(false));
            add_and_notify(shared, &rcpt.user, "inbox", Value::Object(inbound), now);
        }
    }
    GResp::empty(202)
}

fn add_and_notify(
    shared: &Shared,
    owner: &crate::UserFixture,
    folder: &str,
    message: Value,
    now: time::OffsetDateTime,
) {
    let arc = shared.mailbox(owner);
    let mut mb = lock(&arc);
    mb.add(Kind::Message, folder, message, now);
    crate::subscriptions::flush(shared, owner, &mut mb);
}

// ------------------------------------------------------------------ delta

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Res {
    Messages,
    Events,
    Contacts,
    Tasks,
    Folders,
    Lists,
}

impl Res {
    fn kind(self) -> Kind {
        match self {
            Res::Messages | Res::Folders => Kind::Message,
            Res::Events => Kind::Event,
            Res::Contacts => Kind::Contact,
            Res::Tasks | Res::Lists => Kind::Task,
        }
    }
    fn entity(self) -> &'static str {
        match self {
            Res::Messages => "message",
            Res::Events => "event",
            Res::Contacts => "contact",
            Res::Tasks => "todoTask",
            Res::Folders => "mailFolder",
            Res::Lists => "todoTaskList",
        }
    }
}

/// Everything a delta link must remember: the original query travels inside the token (§3.3: "All params
/// only on the first call — they're encoded in the tokens").
#[derive(Clone, Debug, Serialize, Deserialize)]
struct DeltaState {
    r: Res,
    /// mailbox (user id), container key
    m: String,
    c: String,
    /// sync-state epoch; eviction bumps the mailbox's epoch → 410
    e: u32,
    /// phase: 0 = initial enumeration, 1 = changes since `s`
    p: u8,
    s: u64,
    u: u64,
    /// resume after this item number
    k: Option<u64>,
    sel: Option<String>,
    top: Option<usize>,
    /// calendarView window (unix seconds)
    w: Option<(i64, i64)>,
    /// message `$filter=receivedDateTime ge|gt …`: (strictly greater?, unix seconds)
    #[serde(default)]
    f: Option<(bool, i64)>,
    /// sync-state generation of the round this token belongs to
    #[serde(default)]
    g: u64,
}

/// The only `$filter` message delta supports: `receivedDateTime ge|gt {value}` (§3.3).
fn received_filter(f: &str) -> Option<(bool, i64)> {
    let mut parts = f.split_whitespace();
    let (prop, op, value) = (parts.next()?, parts.next()?, parts.next()?);
    if !prop.eq_ignore_ascii_case("receivedDateTime") || parts.next().is_some() {
        return None;
    }
    let gt = match op.to_ascii_lowercase().as_str() {
        "ge" => false,
        "gt" => true,
        _ => return None,
    };
    Some((
        gt,
        generate::parse_datetime(value.trim_matches('\''))?.unix_timestamp(),
    ))
}

#[allow(clippy::too_many_arguments)]
fn delta(
    shared: &Shared,
    ctx: &Ctx,
    req: &GReq,
    user: &UserRef,
    stream: &str,
    res: Res,
    container: &str,
    page_pref: Option<usize>,
    immutable: bool,
) -> GResp {
    let q = parse_qs(&req.query);
    let mb_arc = shared.mailbox(&user.user);
    let mut mb = lock(&mb_arc);
    // Sync-state generations per collection: every round (initial or from a deltaLink) is a new one, and
    // Outlook keeps only a few (OBS, §3.3), so stale links of older rounds answer 410 too.
    let gen_key = format!("{stream}|{res:?}:{container}");
    let highest = mb.generations.get(&gen_key).copied().unwrap_or(0);
    let gone = |ctx: &Ctx, generation: u64| {
        let recent: Vec<String> = (0..3u64)
            .filter_map(|i| highest.checked_sub(i))
            .map(|g| format!("[{g}]"))
            .collect();
        err(
            ctx,
            410,
            "SyncStateNotFound",
            &format!(
                "The sync state generation is not found; generation={generation};[highest={highest}]{}.",
                recent.concat()
            ),
        )
    };
    let kept = shared.opts.sync_generations_kept;
    let mut st = if let Some(t) = q.get("$deltatoken").or_else(|| q.get("$skiptoken")) {
        let Some(mut st) = decode_token::<DeltaState>(t) else {
            return gone(ctx, 0);
        };
        if st.m != user.user.id || st.r != res || st.c != container || st.e != mb.epoch {
            return gone(ctx, st.g);
        }
        if kept.is_some_and(|k| highest.saturating_sub(st.g) >= u64::from(k)) {
            return gone(ctx, st.g);
        }
        if q.contains_key("$deltatoken") {
            // A new round: everything after the previous round's snapshot, up to now.
            st.p = 1;
            st.k = None;
            st.u = mb.seq;
            st.g = highest + 1;
            mb.generations.insert(gen_key.clone(), highest + 1);
        }
        st
    } else {
        let w = if res == Res::Events {
            let start = q
                .get("startDateTime")
                .or_else(|| q.get("StartDateTime"))
                .and_then(|s| generate::parse_datetime(s));
            let end = q
                .get("endDateTime")
                .or_else(|| q.get("EndDateTime"))
                .and_then(|s| generate::parse_datetime(s));
            match (start, end) {
                (Some(s), Some(e)) if s < e => Some((s.unix_timestamp(), e.unix_timestamp())),
                _ => {
                    return err(
                        ctx,
                        400,
                        "ErrorInvalidParameter",
                        "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.",
                    );
                }
            }
        } else {
            None
        };
        let top = match q.get("$top").map(|t| t.parse::<usize>()) {
            None => None,
            Some(Ok(n)) if n >= 1 => Some(n),
            Some(_) => {
                return err(
                    ctx,
                    400,
                    "ErrorInvalidUrlQuery",
                    "The value of the $top query parameter is invalid.",
                );
            }
        };
        let sel = if res == Res::Events {
            None
        } else {
            q.get("$select").cloned()
        };
        let f = match (res, q.get("$filter")) {
            (Res::Messages, Some(f)) => match received_filter(f) {
                Some(f) => Some(f),
                None => {
                    return err(
                        ctx,
                        400,
                        "ErrorInvalidUrlQueryFilter",
                        "The query filter contains one or more invalid nodes.",
                    );
                }
            },
            _ => None,
        };
        mb.generations.insert(gen_key.clone(), highest + 1);
        DeltaState {
            g: highest + 1,
            r: res,
            m: user.user.id.clone(),
            c: container.to_string(),
            e: mb.epoch,
            p: 0,
            s: 0,
            u: mb.seq,
            k: None,
            sel,
            top,
            w,
            f,
        }
    };
    let size = page_pref
        .or(st.top)
        .unwrap_or(shared.opts.delta_default_page_size)
        .clamp(1, 1000);
    let kind = res.kind();
    let mut items = Items::default();
    let mut more = false;
    let removed = |id: String| json!({"@odata.type": format!("#microsoft.graph.{}", res.entity()), "id": id, "@removed": {"reason": "deleted"}});
    let in_window = |i: &crate::store::Instance| {
        st.w.is_some_and(|(s, e)| i.start.unix_timestamp() < e && i.end.unix_timestamp() > s)
    };

    match (res, st.p) {
        (Res::Folders, 0) => {
            for f in MAIL_FOLDERS {
                items.push(&folder_json(&mb, f.key));
            }
        }
        (Res::Folders, _) => {
            for c in mb
                .changed_containers(Kind::Message, st.s, st.u)
                .iter()
                .filter(|c| MAIL_FOLDERS.iter().any(|f| f.key == c.as_str()))
            {
                items.push(&folder_json(&mb, c));
            }
        }
        (Res::Lists, 0) => {
            for l in TASK_LISTS.iter().filter_map(|l| list_lists_json(&mb, l.0)) {
                items.push(&l);
            }
        }
        (Res::Lists, _) => {}
        (Res::Events, 0) => {
            // Page over events (a series contributes all its in-window instances at once).
            let mut n = st.k.map(|k| k + 1).unwrap_or(0);
            let upper = mb.upper(Kind::Event);
            while n < upper {
                if items.count >= size {
                    more = true;
                    break;
                }
                for inst in mb.event_instances(n, immutable) {
                    if in_window(&inst) {
                        items.push(&inst.json);
                    }
                }
                st.k = Some(n);
                n += 1;
            }
        }
        (Res::Events, _) => {
            let changed = mb.changes(Kind::Event, None, st.s, st.u);
            let start =
                st.k.map(|k| changed.partition_point(|n| *n <= k))
                    .unwrap_or(0);
            for &n in &changed[start..] {
                if items.count >= size {
                    more = true;
                    break;
                }
                let present = mb.event_instances(n, immutable);
                let mut present_ids = HashSet::new();
                for inst in present {
                    // Changes outside the window are reported as removals too (§3.4).
                    if in_window(&inst) {
                        if let Some(id) = inst.json.get("id").and_then(Value::as_str) {
                            present_ids.insert(id.to_string());
                        }
                        items.push(&inst.json);
                    }
                }
                let mut ids = mb.event_instance_ids(n, immutable);
                if n >= mb.generated(Kind::Event) || ids.len() == 1 {
                    ids = vec![generate::item_id(
                        mb.ctx.hash,
                        Kind::Event,
                        n,
                        None,
                        "calendar",
                        immutable,
                    )];
                }
                for id in ids {
                    if !present_ids.contains(&id) {
                        items.push(&removed(id));
                    }
                }
                st.k = Some(n);
            }
        }
        (_, 0) => {
            let filter = st.f;
            let keep = |n: u64| {
                filter.is_none_or(|(gt, t)| {
                    mb.received_at(n).is_some_and(|r| {
                        if gt {
                            r.unix_timestamp() > t
                        } else {
                            r.unix_timestamp() >= t
                        }
                    })
                })
            };
            let ns = mb.page_where(kind, container, st.k, size + 1, keep);
            more = ns.len() > size;
            for &n in ns.iter().take(size) {
                if st.sel.is_none() {
                    items.raw(|out| mb.write_item(kind, n, immutable, out));
                } else if let Some(v) = mb.item_json(kind, n, immutable) {
                    items.push(&select(v, st.sel.as_ref()));
                }
                st.k = Some(n);
            }
        }
        (_, _) => {
            let changed = mb.changes(kind, Some(container), st.s, st.u);
            let start =
                st.k.map(|k| changed.partition_point(|n| *n <= k))
                    .unwrap_or(0);
            let slice = &changed[start..];
            more = slice.len() > size;
            let filter = st.f;
            let keep = |n: u64| {
                filter.is_none_or(|(gt, t)| {
                    mb.received_at(n).is_some_and(|r| {
                        if gt {
                            r.unix_timestamp() > t
                        } else {
                            r.unix_timestamp() >= t
                        }
                    })
                })
            };
            for &n in slice.iter().take(size) {
                if mb.is_in(kind, n, container) && !keep(n) {
                    // Outside the filter: not part of this delta's view.
                    st.k = Some(n);
                    continue;
                }
                if mb.is_in(kind, n, container) {
                    if let Some(v) = mb.item_json(kind, n, immutable) {
                        items.push(&select(v, st.sel.as_ref()));
                    }
                } else {
                    // Deleted, or moved to another folder: gone from *this* folder's view.
                    items.push(&removed(generate::item_id(
                        mb.ctx.hash,
                        kind,
                        n,
                        None,
                        container,
                        immutable,
                    )));
                }
                st.k = Some(n);
            }
        }
    }
    drop(mb);
    let path = format!("{}/v1.0{}", shared.base_url, req.path);
    // Assembled as text: the items are already serialized JSON.
    let mut text = String::with_capacity(items.buf.len() + 512);
    text.push_str("{\"@odata.context\":");
    text.push_str(
        &json!(format!(
            "{}/v1.0/$metadata#Collection({})",
            shared.base_url,
            res.entity()
        ))
        .to_string(),
    );
    if more {
        text.push_str(",\"@odata.nextLink\":");
        text.push_str(&json!(format!("{path}?$skiptoken={}", encode_token(&st))).to_string());
    } else {
        let next = DeltaState {
            p: 1,
            s: st.u,
            k: None,
            ..st.clone()
        };
        text.push_str(",\"@odata.deltaLink\":");
        text.push_str(&json!(format!("{path}?$deltatoken={}", encode_token(&next))).to_string());
    }
    text.push_str(",\"value\":[");
    text.push_str(&String::from_utf8_lossy(&items.buf));
    text.push_str("]}");
    let mut r = GResp {
        status: 200,
        headers: Vec::new(),
        body: Some(text),
    };
    if page_pref.is_some() {
        r = r.header("Preference-Applied", format!("odata.maxpagesize={size}"));
    }
    r
}

/// A JSON array body under construction.
#[derive(Default)]
struct Items {
    buf: Vec<u8>,
    count: usize,
}

impl Items {
    fn sep(&mut self) {
        if self.count > 0 {
            self.buf.push(b',');
        }
    }
    fn push(&mut self, v: &Value) {
        self.sep();
        if serde_json::to_writer(&mut self.buf, v).is_ok() {
            self.count += 1;
        }
    }
    fn raw(&mut self, write: impl FnOnce(&mut Vec<u8>) -> bool) {
        let mark = self.buf.len();
        self.sep();
        if write(&mut self.buf) {
            self.count += 1;
        } else {
            self.buf.truncate(mark);
        }
    }
}

// ------------------------------------------------------------------ $batch

#[derive(Deserialize)]
struct BatchBody {
    requests: Vec<BatchItem>,
}

#[derive(Deserialize)]
struct BatchItem {
    id: String,
    method: String,
    url: String,
    #[serde(default)]
    headers: Map<String, Value>,
    #[serde(default)]
    body: Option<Value>,
    #[serde(default, rename = "dependsOn")]
    depends_on: Vec<String>,
}

/// JSON batching (§3.8): ≤ 20 requests, unique ids, `dependsOn` ordering, failed dependency → 424.
/// Inner requests run one at a time, so a batch never exceeds the 4-concurrent limit by itself (§3.8).
async fn batch(shared: &Arc<Shared>, req: GReq) -> GResp {
    let request_id = guid();
    let ctx = Ctx {
        client_request_id: req
            .headers
            .get("client-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .unwrap_or_else(|| request_id.clone()),
        request_id,
        date: graph_error_date(shared.now()),
    };
    let route = "POST /$batch";
    if req.method != Method::POST {
        return finish(
            shared,
            &ctx,
            route,
            None,
            bad_request(&ctx, "Batch requests must use POST."),
        );
    }
    let Ok(body) = serde_json::from_slice::<BatchBody>(&req.body) else {
        return finish(
            shared,
            &ctx,
            route,
            None,
            bad_request(&ctx, "Invalid batch payload format."),
        );
    };
    if body.requests.is_empty() || body.requests.len() > 20 {
        return finish(
            shared,
            &ctx,
            route,
            None,
            bad_request(
                &ctx,
                "The number of requests in a batch must be between 1 and 20.",
            ),
        );
    }
    let mut seen = HashSet::new();
    for r in &body.requests {
        if !seen.insert(r.id.clone()) {
            return finish(
                shared,
                &ctx,
                route,
                None,
                bad_request(
                    &ctx,
                    &format!("Batch request contains duplicate request id '{}'.", r.id),
                ),
            );
        }
    }
    for (i, r) in body.requests.iter().enumerate() {
        for d in &r.depends_on {
            if !body.requests[..i].iter().any(|p| &p.id == d) {
                return finish(
                    shared,
                    &ctx,
                    route,
                    None,
                    bad_request(
                        &ctx,
                        &format!(
                            "Request '{}' depends on '{d}', which is not an earlier request in the batch.",
                            r.id
                        ),
                    ),
                );
            }
        }
        if r.body.is_some()
            && !r
                .headers
                .keys()
                .any(|k| k.eq_ignore_ascii_case("content-type"))
        {
            return finish(
                shared,
                &ctx,
                route,
                None,
                bad_request(
                    &ctx,
                    &format!("Request '{}' has a body but no Content-Type header.", r.id),
                ),
            );
        }
    }
    let mut statuses: Vec<(String, u16)> = Vec::new();
    let mut parts: Vec<String> = Vec::new();
    for item in body.requests {
        let failed_dep = item
            .depends_on
            .iter()
            .any(|d| statuses.iter().any(|(id, s)| id == d && *s >= 400));
        let resp = if failed_dep {
            err(
                &ctx,
                424,
                "FailedDependency",
                "The request could not be processed because a request it depends on failed.",
            )
        } else {
            let url = item.url.trim_start_matches("/v1.0").to_string();
            let url = if url.starts_with('/') {
                url
            } else {
                format!("/{url}")
            };
            let (path, query) = url
                .split_once('?')
                .map(|(p, q)| (p.to_string(), q.to_string()))
                .unwrap_or((url.clone(), String::new()));
            if path.trim_matches('/') == "$batch" {
                bad_request(&ctx, "Nested batch requests are not supported.")
            } else {
                let mut headers = HeaderMap::new();
                if let Some(a) = req.headers.get(header::AUTHORIZATION) {
                    headers.insert(header::AUTHORIZATION, a.clone());
                }
                for (k, v) in &item.headers {
                    if let (Ok(name), Some(Ok(val))) = (
                        header::HeaderName::from_bytes(k.as_bytes()),
                        v.as_str().map(HeaderValue::from_str),
                    ) {
                        headers.insert(name, val);
                    }
                }
                let body = item
                    .body
                    .as_ref()
                    .map(|b| Bytes::from(b.to_string()))
                    .unwrap_or_default();
                let method = Method::from_bytes(item.method.to_ascii_uppercase().as_bytes())
                    .unwrap_or(Method::GET);
                dispatch(
                    shared,
                    GReq {
                        method,
                        path,
                        query,
                        headers,
                        body,
                    },
                    true,
                )
                .await
            }
        };
        statuses.push((item.id.clone(), resp.status));
        let mut hmap = Map::new();
        for (k, v) in &resp.headers {
            if [
                "Content-Type",
                "Retry-After",
                "Location",
                "Preference-Applied",
            ]
            .iter()
            .any(|h| h.eq_ignore_ascii_case(k))
            {
                hmap.insert(k.clone(), json!(v));
            }
        }
        if resp.status == 424 {
            hmap.insert("Content-Type".into(), json!(JSON_CT));
        }
        parts.push(format!(
            "{{\"id\":{},\"status\":{},\"headers\":{}{}}}",
            json!(item.id),
            resp.status,
            Value::Object(hmap),
            resp.body
                .as_ref()
                .map(|b| format!(",\"body\":{b}"))
                .unwrap_or_default()
        ));
    }
    let text = format!("{{\"responses\":[{}]}}", parts.join(","));
    finish(
        shared,
        &ctx,
        route,
        None,
        GResp {
            status: 200,
            headers: Vec::new(),
            body: Some(text),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_map_me_and_users_alike() {
        let segs = |s: &str| s.split('/').map(str::to_string).collect::<Vec<_>>();
        let (t, _, op, need) =
            route(&Method::GET, &segs("me/mailFolders/inbox/messages/delta")).unwrap();
        assert_eq!(t, "GET /me/mailFolders/{id}/messages/delta");
        assert!(matches!(op, Op::MessagesDelta(f) if f == "inbox"));
        assert_eq!(need, Need::MailRead);
        let (t, target, _, _) =
            route(&Method::GET, &segs("users/bob@x/calendarView/delta")).unwrap();
        assert_eq!(t, "GET /users/{id}/calendarView/delta");
        assert!(matches!(target, Target::User(u) if u == "bob@x"));
        assert!(route(&Method::DELETE, &segs("me/mailFolders")).is_none());
    }

    #[test]
    fn odata_key_segments_unfold() {
        assert_eq!(
            path_segments("/me/mailFolders('inbox')/messages/delta"),
            ["me", "mailFolders", "inbox", "messages", "delta"]
        );
        assert_eq!(
            path_segments("/users('a%40b.test')/mailFolders"),
            ["users", "a@b.test", "mailFolders"]
        );
    }

    #[test]
    fn user_filter_parses_startswith_and_eq() {
        let f = user_filter("startswith(mail,'al') or userPrincipalName eq 'bob@x'").unwrap();
        assert_eq!(f.len(), 2);
        assert!(user_filter("contains(mail,'a')").is_err());
    }
}
