//! Change notifications (webhooks) for Outlook resources, MICROSOFT.md §4.3: subscription create with
//! endpoint validation (10 s, echo of `validationToken`), renew, delete, notifications on every change
//! (≤ 3 s per delivery, a few retries), and lifecycle events.

use crate::generate::{self, CONTACT_FOLDERS, Kind, MAIL_FOLDERS, TASK_LISTS};
use crate::graph::{Ctx, GReq, GResp, Need, access_denied, allowed, err, path_segments};
use crate::identity::AccessGrant;
use crate::store::MailboxState;
use crate::util::guid;
use crate::{Shared, UserFixture, UserRef, lock};
use axum::http::Method;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// Outlook message/event/contact/todoTask subscriptions live at most 4,230 minutes (§4.3).
const MAX_MINUTES: i64 = 4230;

#[derive(Clone, Debug)]
pub(crate) struct Subscription {
    id: String,
    resource: String,
    change_types: Vec<String>,
    notification_url: String,
    lifecycle_url: Option<String>,
    client_state: Option<String>,
    expiration: OffsetDateTime,
    app_id: String,
    creator_id: String,
    tenant_id: String,
    /// Target mailbox (user id) and what in it.
    mailbox: String,
    kind: Kind,
    container: Option<String>,
    /// Delegated subscriptions die with the user's sessions (§4.3: password change/reset).
    delegated_user: Option<String>,
}

pub(crate) struct Subscriptions {
    subs: std::sync::Mutex<HashMap<String, Subscription>>,
    http: reqwest::Client,
}

impl Default for Subscriptions {
    fn default() -> Self {
        Subscriptions { subs: std::sync::Mutex::new(HashMap::new()), http: reqwest::Client::new() }
    }
}

fn expiration_text(t: OffsetDateTime) -> String {
    format!("{}Z", generate::zoned_datetime(t))
}

fn sub_json(shared: &Shared, s: &Subscription) -> Value {
    json!({
        "@odata.context": format!("{}/v1.0/$metadata#subscriptions/$entity", shared.base_url),
        "id": s.id,
        "resource": s.resource,
        "applicationId": s.app_id,
        "changeType": s.change_types.join(","),
        "clientState": s.client_state,
        "notificationUrl": s.notification_url,
        "notificationQueryOptions": null,
        "lifecycleNotificationUrl": s.lifecycle_url,
        "expirationDateTime": expiration_text(s.expiration),
        "creatorId": s.creator_id,
        "includeResourceData": false,
        "latestSupportedTlsVersion": "v1_2",
        "encryptionCertificate": null,
        "encryptionCertificateId": null,
        "notificationUrlAppId": null,
    })
}

/// `me/mailFolders('inbox')/messages`, `users/{id}/events`, `me/todo/lists/{id}/tasks`, …
fn parse_resource(resource: &str) -> Option<(Option<String>, Kind, Option<String>)> {
    let path = resource.split('?').next().unwrap_or("");
    let segs = path_segments(path);
    let (who, rest): (Option<String>, &[String]) = match segs.as_slice() {
        [me, rest @ ..] if me.eq_ignore_ascii_case("me") => (None, rest),
        [users, id, rest @ ..] if users.eq_ignore_ascii_case("users") => (Some(id.clone()), rest),
        _ => return None,
    };
    let lower: Vec<String> = rest.iter().map(|s| s.to_ascii_lowercase()).collect();
    let l: Vec<&str> = lower.iter().map(String::as_str).collect();
    let (kind, container) = match l.as_slice() {
        ["messages"] => (Kind::Message, None),
        ["mailfolders", _, "messages"] => (Kind::Message, Some(rest[1].clone())),
        ["events"] | ["calendar", "events"] => (Kind::Event, None),
        ["contacts"] => (Kind::Contact, None),
        ["contactfolders", _, "contacts"] => (Kind::Contact, Some(rest[1].clone())),
        ["todo", "lists", _, "tasks"] => (Kind::Task, Some(rest[2].clone())),
        _ => return None,
    };
    Some((who, kind, container))
}

/// Graph POSTs `?validationToken=…` and expects the token back as text/plain within 10 s (§4.3).
async fn validate(http: &reqwest::Client, url: &str) -> Result<(), String> {
    let token = format!("Validation: Testing client application reachability for subscription Request-Id: {}", guid());
    let sep = if url.contains('?') { '&' } else { '?' };
    let target = format!("{url}{sep}validationToken={}", form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>());
    let resp =
        http.post(target).header("Content-Type", "text/plain; charset=utf-8").timeout(Duration::from_secs(10)).send().await.map_err(
            |_| "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request.".to_string(),
        )?;
    if !resp.status().is_success() {
        return Err("Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request.".into());
    }
    let body = resp.text().await.unwrap_or_default();
    if body != token {
        return Err("Subscription validation request failed. Response must exactly match validationToken query parameter.".into());
    }
    Ok(())
}

pub(crate) async fn handle(
    shared: &Arc<Shared>,
    ctx: &Ctx,
    req: &GReq,
    grant: &AccessGrant,
    caller: Option<&UserRef>,
    segs: &[String],
) -> (String, GResp) {
    let not_found = || err(ctx, 404, "ResourceNotFound", "The object was not found.");
    match (&req.method, segs) {
        (&Method::POST, [_]) => ("POST /subscriptions".into(), create(shared, ctx, req, grant, caller).await),
        (&Method::GET, [_]) => {
            let subs = lock(&shared.subscriptions.subs);
            let value: Vec<Value> = subs
                .values()
                .filter(|s| s.app_id == grant.client_id && s.tenant_id == grant.tenant_id)
                .map(|s| sub_json(shared, s))
                .collect();
            (
                "GET /subscriptions".into(),
                GResp::json(200, &json!({"@odata.context": format!("{}/v1.0/$metadata#subscriptions", shared.base_url), "value": value})),
            )
        }
        (m, [_, id]) | (m, [_, id, _]) => {
            let template = format!("{m} /subscriptions/{{id}}{}", if segs.len() == 3 { "/reauthorize" } else { "" });
            let mut subs = lock(&shared.subscriptions.subs);
            let Some(sub) = subs.get_mut(id).filter(|s| s.app_id == grant.client_id && s.tenant_id == grant.tenant_id) else {
                return (template, not_found());
            };
            let r = match (m, segs.len()) {
                (&Method::GET, 2) => GResp::json(200, &sub_json(shared, sub)),
                (&Method::PATCH, 2) => {
                    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
                    match body.get("expirationDateTime").and_then(Value::as_str).and_then(generate::parse_datetime) {
                        Some(t) if t > shared.now() && t <= shared.now() + time::Duration::minutes(MAX_MINUTES) => {
                            sub.expiration = t;
                            GResp::json(200, &sub_json(shared, sub))
                        }
                        _ => err(
                            ctx,
                            400,
                            "InvalidRequest",
                            &format!("Subscription expiration can only be {MAX_MINUTES} minutes in the future."),
                        ),
                    }
                }
                (&Method::DELETE, 2) => {
                    subs.remove(id.as_str());
                    GResp::empty(204)
                }
                (&Method::POST, 3) if segs[2] == "reauthorize" => GResp::empty(200),
                _ => err(ctx, 405, "BadRequest", "Method not allowed."),
            };
            (template, r)
        }
        _ => ("subscriptions (unknown)".into(), err(ctx, 400, "BadRequest", "Invalid subscriptions request.")),
    }
}

async fn create(shared: &Arc<Shared>, ctx: &Ctx, req: &GReq, grant: &AccessGrant, caller: Option<&UserRef>) -> GResp {
    let invalid = |m: &str| err(ctx, 400, "InvalidRequest", m);
    let asked = match requested(shared, &req.body) {
        Ok(asked) => asked,
        Err(m) => return invalid(&m),
    };
    let target = match subscription_target(shared, ctx, grant, caller, &asked) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let hash = generate::hash_str(&target.user.id);
    let container = match (asked.kind, asked.container) {
        (_, None) => None,
        (Kind::Message, Some(c)) => generate::parse_container_id(hash, &c, &MAIL_FOLDERS.iter().map(|f| f.key).collect::<Vec<_>>()),
        (Kind::Contact, Some(c)) => generate::parse_container_id(hash, &c, &CONTACT_FOLDERS.iter().map(|f| f.0).collect::<Vec<_>>()),
        (Kind::Task, Some(c)) => generate::parse_container_id(hash, &c, &TASK_LISTS.iter().map(|f| f.0).collect::<Vec<_>>()),
        (Kind::Event, Some(_)) => None,
    };
    for url in std::iter::once(&asked.notification_url).chain(asked.lifecycle_url.as_ref()) {
        if let Err(m) = validate(&shared.subscriptions.http, url).await {
            return invalid(&m);
        }
    }
    let sub = Subscription {
        id: guid(),
        resource: asked.resource,
        change_types: asked.change_types,
        notification_url: asked.notification_url,
        lifecycle_url: asked.lifecycle_url,
        client_state: asked.client_state,
        expiration: asked.expiration,
        app_id: grant.client_id.clone(),
        creator_id: caller.map(|c| c.user.id.clone()).unwrap_or_else(|| grant.client_id.clone()),
        tenant_id: grant.tenant_id.clone(),
        mailbox: target.user.id.clone(),
        kind: asked.kind,
        container,
        delegated_user: caller.map(|c| c.user.id.clone()),
    };
    let out = sub_json(shared, &sub);
    lock(&shared.subscriptions.subs).insert(sub.id.clone(), sub);
    GResp::json(201, &out)
}

/// A subscription request's body, checked field by field (400 `InvalidRequest` with the message).
struct Requested {
    change_types: Vec<String>,
    notification_url: String,
    lifecycle_url: Option<String>,
    resource: String,
    client_state: Option<String>,
    expiration: time::OffsetDateTime,
    /// From `resource`: the mailbox (None = `/me`), the kind and the container named.
    who: Option<String>,
    kind: Kind,
    container: Option<String>,
}

fn requested(shared: &Shared, body: &[u8]) -> Result<Requested, String> {
    let body = serde_json::from_slice::<Value>(body).map_err(|_| "Empty Payload. JSON content expected.".to_string())?;
    let field = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
    let (Some(change), Some(notification_url), Some(resource), Some(exp)) =
        (field("changeType"), field("notificationUrl"), field("resource"), field("expirationDateTime"))
    else {
        return Err("changeType, notificationUrl, resource and expirationDateTime are required.".into());
    };
    let change_types: Vec<String> = change.split(',').map(|c| c.trim().to_string()).collect();
    if change_types.iter().any(|c| !["created", "updated", "deleted"].contains(&c.as_str())) {
        return Err(format!("Invalid changeType '{change}'."));
    }
    let client_state = field("clientState");
    if client_state.as_ref().is_some_and(|c| c.len() > 128) {
        return Err("clientState must be at most 128 characters.".into());
    }
    let expiration = generate::parse_datetime(&exp).ok_or_else(|| "Invalid expirationDateTime.".to_string())?;
    let now = shared.now();
    if expiration <= now || expiration > now + time::Duration::minutes(MAX_MINUTES) {
        return Err(format!("Subscription expiration can only be {MAX_MINUTES} minutes in the future."));
    }
    let (who, kind, container) = parse_resource(&resource).ok_or_else(|| format!("Resource '{resource}' is not supported."))?;
    let lifecycle_url = field("lifecycleNotificationUrl");
    Ok(Requested { change_types, notification_url, lifecycle_url, resource, client_state, expiration, who, kind, container })
}

/// The mailbox a subscription watches, if the caller may read it (§4.3: delegated subscriptions only
/// for the signed-in user's own mailbox).
fn subscription_target(
    shared: &Shared,
    ctx: &Ctx,
    grant: &AccessGrant,
    caller: Option<&UserRef>,
    asked: &Requested,
) -> Result<UserRef, GResp> {
    let target = match (&asked.who, caller) {
        (None, Some(c)) => c.clone(),
        (None, None) => return Err(err(ctx, 400, "BadRequest", "/me request is only valid with delegated authentication flow.")),
        (Some(key), _) => shared
            .user(key)
            .filter(|u| u.tenant_id.eq_ignore_ascii_case(&grant.tenant_id))
            .ok_or_else(|| err(ctx, 404, "ErrorInvalidUser", &format!("The requested user '{key}' is invalid.")))?,
    };
    if caller.is_some_and(|c| c.user.id != target.user.id) {
        return Err(access_denied(ctx));
    }
    let need = match asked.kind {
        Kind::Message => Need::MailRead,
        Kind::Event => Need::CalRead,
        Kind::Contact => Need::ContactsRead,
        Kind::Task => Need::TasksRead,
    };
    if !allowed(grant, caller, &target, need) {
        return Err(access_denied(ctx));
    }
    if !target.user.licensed {
        return Err(err(ctx, 404, "MailboxNotEnabledForRESTAPI", "The mailbox is either inactive, soft-deleted, or is hosted on-premise."));
    }
    Ok(target)
}

fn resource_path(user: &str, kind: Kind, id: &str) -> String {
    match kind {
        Kind::Message => format!("Users/{user}/Messages/{id}"),
        Kind::Event => format!("Users/{user}/Events/{id}"),
        Kind::Contact => format!("Users/{user}/Contacts/{id}"),
        Kind::Task => format!("Users/{user}/todo/tasks/{id}"),
    }
}

/// What a subscription is, as tests see it through the control API.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SubscriptionInfo {
    pub id: String,
    pub resource: String,
    /// The watched mailbox's user id.
    pub mailbox: String,
    pub notification_url: String,
    pub lifecycle_url: Option<String>,
    pub expiration: OffsetDateTime,
}

/// Every subscription (lapsed ones too: Microsoft forgets them, but they no longer deliver).
pub(crate) fn list(shared: &Shared) -> Vec<SubscriptionInfo> {
    let mut out: Vec<SubscriptionInfo> = lock(&shared.subscriptions.subs)
        .values()
        .map(|s| SubscriptionInfo {
            id: s.id.clone(),
            resource: s.resource.clone(),
            mailbox: s.mailbox.clone(),
            notification_url: s.notification_url.clone(),
            lifecycle_url: s.lifecycle_url.clone(),
            expiration: s.expiration,
        })
        .collect();
    out.sort_by(|a, b| (&a.mailbox, &a.resource).cmp(&(&b.mailbox, &b.resource)));
    out
}

/// Offers the mailbox's pending changes to matching subscriptions; deliveries run in the background.
pub(crate) fn flush(shared: &Shared, user: &UserFixture, mb: &mut MailboxState) {
    let changes = std::mem::take(&mut mb.outbox);
    if changes.is_empty() {
        return;
    }
    let subs: Vec<Subscription> = lock(&shared.subscriptions.subs).values().filter(|s| s.mailbox == user.id).cloned().collect();
    if subs.is_empty() {
        return;
    }
    let now = shared.now();
    let mut batches: HashMap<String, (String, Vec<Value>)> = HashMap::new();
    for (entry, change) in changes {
        for s in subs.iter().filter(|s| s.kind == entry.kind && s.expiration > now) {
            let (change_type, container) = match &s.container {
                Some(c) if !entry.containers.contains(c) => continue,
                Some(c) if change == "moved" => (if entry.containers.first() == Some(c) { "deleted" } else { "created" }, c.clone()),
                Some(c) => (change, c.clone()),
                None => (if change == "moved" { "updated" } else { change }, entry.containers.last().cloned().unwrap_or_default()),
            };
            if !s.change_types.iter().any(|t| t == change_type) {
                continue;
            }
            let id = generate::item_id(mb.ctx.hash, entry.kind, entry.n, None, &container, false);
            let etag = mb.item_json(entry.kind, entry.n, false).and_then(|v| v.get("@odata.etag").cloned()).unwrap_or(Value::Null);
            let odata_type = match entry.kind {
                Kind::Message => "#Microsoft.Graph.Message",
                Kind::Event => "#Microsoft.Graph.Event",
                Kind::Contact => "#Microsoft.Graph.Contact",
                Kind::Task => "#Microsoft.Graph.todoTask",
            };
            let resource = resource_path(&user.id, entry.kind, &id);
            let item = json!({
                "subscriptionId": s.id,
                "subscriptionExpirationDateTime": expiration_text(s.expiration),
                "changeType": change_type,
                "resource": resource,
                "resourceData": {"@odata.type": odata_type, "@odata.id": resource, "@odata.etag": etag, "id": id},
                "clientState": s.client_state,
                "tenantId": s.tenant_id,
            });
            batches.entry(s.id.clone()).or_insert_with(|| (s.notification_url.clone(), Vec::new())).1.push(item);
        }
    }
    for (_, (url, value)) in batches {
        deliver(shared, url, json!({ "value": value }));
    }
}

/// POST with a 3 s budget; on failure retry a few times with growing pauses (Graph retries for hours;
/// tests should not wait that long).
fn deliver(shared: &Shared, url: String, payload: Value) {
    let http = shared.subscriptions.http.clone();
    let counters = shared.notification_counters.clone();
    shared.runtime.spawn(async move {
        for attempt in 0..4u64 {
            let sent = http.post(&url).json(&payload).timeout(Duration::from_secs(3)).send().await;
            if sent.as_ref().is_ok_and(|r| r.status().is_success()) {
                counters.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return;
            }
            tokio::time::sleep(Duration::from_millis(500 * (attempt + 1))).await;
        }
        counters.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });
}

/// Sends a lifecycle event (`reauthorizationRequired`, `subscriptionRemoved`, `missed`) to every matching
/// subscription's lifecycle URL; `subscriptionRemoved` also deletes the subscription. Returns how many.
pub(crate) fn lifecycle(shared: &Shared, subscription_id: Option<&str>, user_id: Option<&str>, event: &str, delegated_only: bool) -> usize {
    let mut subs = lock(&shared.subscriptions.subs);
    let chosen: Vec<Subscription> = subs
        .values()
        .filter(|s| subscription_id.is_none_or(|id| s.id == id))
        .filter(|s| {
            user_id
                .is_none_or(|u| s.mailbox.eq_ignore_ascii_case(u) || s.delegated_user.as_deref().is_some_and(|d| d.eq_ignore_ascii_case(u)))
        })
        .filter(|s| !delegated_only || s.delegated_user.is_some())
        .cloned()
        .collect();
    for s in &chosen {
        if event == "subscriptionRemoved" {
            subs.remove(&s.id);
        }
        if let Some(url) = &s.lifecycle_url {
            let item = json!({
                "subscriptionId": s.id,
                "subscriptionExpirationDateTime": expiration_text(s.expiration),
                "tenantId": s.tenant_id,
                "clientState": s.client_state,
                "lifecycleEvent": event,
            });
            deliver(shared, url.clone(), json!({ "value": [item] }));
        }
    }
    chosen.len()
}
