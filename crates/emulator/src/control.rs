//! Control API: change mailboxes, revoke tokens, expire secrets, switch policy, inject faults, read
//! counters. Served under `/_emulator/...` only when enabled; the same operations are methods on
//! [`crate::RunningEmulator`] for in-process tests.

use crate::generate::{self, Kind};
use crate::registry::{self, Counters, FaultRule};
use crate::{Error, RunningEmulator, Shared, lock, read, write};
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Identifies an item in a mailbox: both id forms, for tests to compare with what Graph returned.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ItemRef {
    pub kind: Kind,
    pub id: String,
    pub immutable_id: String,
}

// ------------------------------------------------------------------ operations

impl Shared {
    fn user_or(&self, key: &str) -> Result<crate::UserRef, Error> {
        self.user(key).ok_or_else(|| Error::NotFound(format!("user {key}")))
    }

    fn container_key(kind: Kind, hash: u64, c: &str) -> Result<String, Error> {
        let known: Vec<&str> = match kind {
            Kind::Message => generate::MAIL_FOLDERS.iter().map(|f| f.key).collect(),
            Kind::Event => vec!["calendar"],
            Kind::Contact => generate::CONTACT_FOLDERS.iter().map(|f| f.0).collect(),
            Kind::Task => generate::TASK_LISTS.iter().map(|f| f.0).collect(),
        };
        generate::parse_container_id(hash, c, &known).ok_or_else(|| Error::NotFound(format!("container {c}")))
    }

    fn item_ref(mb: &crate::store::MailboxState, kind: Kind, n: u64) -> ItemRef {
        let container = mb.container_of(kind, n).unwrap_or_default();
        ItemRef {
            kind,
            id: generate::item_id(mb.ctx.hash, kind, n, None, &container, false),
            immutable_id: generate::item_id(mb.ctx.hash, kind, n, None, &container, true),
        }
    }

    pub(crate) fn ctl_add(&self, user: &str, kind: Kind, container: Option<&str>, fields: Value) -> Result<ItemRef, Error> {
        let u = self.user_or(user)?;
        let mb_arc = self.mailbox(&u.user);
        let mut mb = lock(&mb_arc);
        let default = match kind {
            Kind::Message => "inbox",
            Kind::Event => "calendar",
            Kind::Contact => "contacts",
            Kind::Task => "tasks",
        };
        let key = Self::container_key(kind, mb.ctx.hash, container.unwrap_or(default))?;
        let mut fields = match fields {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let now = self.now();
        let stamp = generate::graph_datetime(now);
        match kind {
            Kind::Message => {
                fields.entry("subject").or_insert(json!("Message added by the emulator control API"));
                fields.entry("receivedDateTime").or_insert(json!(stamp));
                fields.entry("sentDateTime").or_insert(json!(stamp));
                fields.entry("isRead").or_insert(json!(false));
                fields.entry("isDraft").or_insert(json!(false));
                fields.entry("hasAttachments").or_insert(json!(false));
                fields.entry("body").or_insert(json!({"contentType": "text", "content": "Added through the control API."}));
                fields.entry("bodyPreview").or_insert(json!("Added through the control API."));
                let from = json!({"emailAddress": {"name": "Control API", "address": "control@emulator.test"}});
                fields.entry("from").or_insert(from.clone());
                fields.entry("sender").or_insert(from);
                fields
                    .entry("toRecipients")
                    .or_insert(json!([{"emailAddress": {"name": u.user.display_name, "address": u.user.user_principal_name}}]));
                fields.entry("ccRecipients").or_insert(json!([]));
                fields.entry("internetMessageId").or_insert(json!(format!("<{}@emulator.test>", crate::util::guid())));
            }
            Kind::Event => {
                let start = now + time::Duration::days(1);
                fields.entry("subject").or_insert(json!("Event added by the emulator control API"));
                fields.entry("start").or_insert(json!({"dateTime": generate::zoned_datetime(start), "timeZone": "UTC"}));
                fields
                    .entry("end")
                    .or_insert(json!({"dateTime": generate::zoned_datetime(start + time::Duration::hours(1)), "timeZone": "UTC"}));
                fields.entry("isAllDay").or_insert(json!(false));
                fields.entry("isCancelled").or_insert(json!(false));
                fields.entry("attendees").or_insert(json!([]));
            }
            Kind::Contact => {
                fields.entry("displayName").or_insert(json!("Control Contact"));
                fields.entry("emailAddresses").or_insert(json!([{"name": "Control Contact", "address": "contact@emulator.test"}]));
            }
            Kind::Task => {
                fields.entry("title").or_insert(json!("Task added by the emulator control API"));
                fields.entry("status").or_insert(json!("notStarted"));
                fields.entry("importance").or_insert(json!("normal"));
            }
        }
        let n = mb.add(kind, &key, Value::Object(fields), now);
        crate::subscriptions::flush(self, &u.user, &mut mb);
        Ok(Self::item_ref(&mb, kind, n))
    }

    fn resolve_item(mb: &crate::store::MailboxState, id: &str) -> Result<(Kind, u64), Error> {
        mb.resolve(id).ok_or_else(|| Error::NotFound(format!("item {id}")))
    }

    pub(crate) fn ctl_update(&self, user: &str, id: &str, patch: Value) -> Result<ItemRef, Error> {
        let u = self.user_or(user)?;
        let mb_arc = self.mailbox(&u.user);
        let mut mb = lock(&mb_arc);
        let (kind, n) = Self::resolve_item(&mb, id)?;
        let Value::Object(p) = patch else {
            return Err(Error::Invalid("patch must be a JSON object".into()));
        };
        mb.update(kind, n, p, self.now()).ok_or_else(|| Error::NotFound(id.to_string()))?;
        crate::subscriptions::flush(self, &u.user, &mut mb);
        Ok(Self::item_ref(&mb, kind, n))
    }

    pub(crate) fn ctl_delete(&self, user: &str, id: &str) -> Result<(), Error> {
        let u = self.user_or(user)?;
        let mb_arc = self.mailbox(&u.user);
        let mut mb = lock(&mb_arc);
        let (kind, n) = Self::resolve_item(&mb, id)?;
        mb.delete(kind, n).ok_or_else(|| Error::NotFound(id.to_string()))?;
        crate::subscriptions::flush(self, &u.user, &mut mb);
        Ok(())
    }

    pub(crate) fn ctl_move(&self, user: &str, id: &str, to: &str) -> Result<ItemRef, Error> {
        let u = self.user_or(user)?;
        let mb_arc = self.mailbox(&u.user);
        let mut mb = lock(&mb_arc);
        let (kind, n) = Self::resolve_item(&mb, id)?;
        let key = Self::container_key(kind, mb.ctx.hash, to)?;
        mb.move_to(kind, n, &key, self.now()).ok_or_else(|| Error::NotFound(id.to_string()))?;
        crate::subscriptions::flush(self, &u.user, &mut mb);
        Ok(Self::item_ref(&mb, kind, n))
    }

    /// Ids of the first `limit` items in a container (tests pick items to change).
    pub(crate) fn ctl_list(&self, user: &str, kind: Kind, container: &str, limit: usize) -> Result<Vec<ItemRef>, Error> {
        let u = self.user_or(user)?;
        let mb_arc = self.mailbox(&u.user);
        let mb = lock(&mb_arc);
        let key = Self::container_key(kind, mb.ctx.hash, container)?;
        Ok(mb.page(kind, &key, None, limit).into_iter().map(|n| Self::item_ref(&mb, kind, n)).collect())
    }

    pub(crate) fn ctl_snapshot(&self, user: &str, kind: Kind, container: &str, immutable: bool) -> Result<Vec<Value>, Error> {
        let u = self.user_or(user)?;
        let mb_arc = self.mailbox(&u.user);
        let mb = lock(&mb_arc);
        let key = Self::container_key(kind, mb.ctx.hash, container)?;
        Ok(mb.page(kind, &key, None, usize::MAX).into_iter().filter_map(|n| mb.item_json(kind, n, immutable)).collect())
    }

    pub(crate) fn ctl_calendar_view(&self, user: &str, start: &str, end: &str, immutable: bool) -> Result<Vec<Value>, Error> {
        let u = self.user_or(user)?;
        let (Some(s), Some(e)) = (generate::parse_datetime(start), generate::parse_datetime(end)) else {
            return Err(Error::Invalid("start and end must be ISO 8601 date-times".into()));
        };
        let mb_arc = self.mailbox(&u.user);
        let mb = lock(&mb_arc);
        let mut out = Vec::new();
        for n in mb.page(Kind::Event, "calendar", None, usize::MAX) {
            out.extend(mb.event_instances(n, immutable).into_iter().filter(|i| i.start < e && i.end > s).map(|i| i.json));
        }
        Ok(out)
    }

    pub(crate) fn ctl_evict(&self, user: &str) -> Result<(), Error> {
        let u = self.user_or(user)?;
        let mb_arc = self.mailbox(&u.user);
        lock(&mb_arc).epoch += 1;
        Ok(())
    }

    pub(crate) fn ctl_revoke(&self, user: &str) -> Result<(), Error> {
        let u = self.user_or(user)?;
        // Strictly after every grant issued so far (grants compare with `issued < valid_from`).
        let at = self.now() + time::Duration::milliseconds(1);
        lock(&self.idp).revoke_user(&u.user.id, at);
        // Delegated Outlook subscriptions die with the user's credentials (§4.3).
        crate::subscriptions::lifecycle(self, None, Some(&u.user.id), "subscriptionRemoved", true);
        Ok(())
    }

    pub(crate) fn ctl_expire_secret(&self, client_id: &str, secret: &str) -> Result<(), Error> {
        let mut dir = write(&self.dir);
        let app = dir
            .apps
            .iter_mut()
            .find(|a| a.client_id.eq_ignore_ascii_case(client_id))
            .ok_or_else(|| Error::NotFound(format!("app {client_id}")))?;
        let s = app.secrets.iter_mut().find(|s| s.value == secret).ok_or_else(|| Error::NotFound("secret".into()))?;
        s.expires = "2000-01-01T00:00:00Z".to_string();
        Ok(())
    }

    pub(crate) fn ctl_consent_policy(&self, tenant: &str, users_may_consent: bool) -> Result<(), Error> {
        let ti = self.tenant_index(tenant).ok_or_else(|| Error::NotFound(format!("tenant {tenant}")))?;
        let mut dir = write(&self.dir);
        let t = dir.tenants.get_mut(ti).ok_or_else(|| Error::NotFound(tenant.to_string()))?;
        t.users_may_consent = users_may_consent;
        Ok(())
    }

    pub(crate) fn ctl_set_mfa(&self, user: &str, required: bool) -> Result<(), Error> {
        let (ti, ui) = *self.index.users.get(&user.to_ascii_lowercase()).ok_or_else(|| Error::NotFound(user.to_string()))?;
        let mut dir = write(&self.dir);
        if let Some(u) = dir.tenants.get_mut(ti).and_then(|t| t.users.get_mut(ui)) {
            u.mfa_required = required;
        }
        Ok(())
    }

    pub(crate) fn ctl_grant_admin(&self, tenant: &str, client_id: &str, delegated: &[String], application: &[String]) -> Result<(), Error> {
        let ti = self.tenant_index(tenant).ok_or_else(|| Error::NotFound(format!("tenant {tenant}")))?;
        let tid = read(&self.dir).tenants.get(ti).map(|t| t.id.clone()).unwrap_or_default();
        let mut idp = lock(&self.idp);
        let g = idp.admin_grants.entry((tid.to_ascii_lowercase(), client_id.to_ascii_lowercase())).or_default();
        g.delegated.extend(delegated.iter().cloned());
        g.roles.extend(application.iter().cloned());
        Ok(())
    }

    pub(crate) fn ctl_revoke_consent(&self, tenant: &str, user: Option<&str>, client_id: &str) -> Result<(), Error> {
        let ti = self.tenant_index(tenant).ok_or_else(|| Error::NotFound(format!("tenant {tenant}")))?;
        let tid = read(&self.dir).tenants.get(ti).map(|t| t.id.clone()).unwrap_or_default();
        let uid = match user {
            Some(u) => Some(self.user_or(u)?.user.id),
            None => None,
        };
        lock(&self.idp).revoke_consent(&tid, uid.as_deref(), client_id);
        Ok(())
    }

    pub(crate) fn ctl_advance_clock(&self, secs: i64) {
        self.clock_offset.fetch_add(secs, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn ctl_counters(&self) -> Counters {
        registry::counters(self)
    }

    pub(crate) fn ctl_reset(&self) {
        registry::reset(self);
        self.throttle.reset();
    }
}

// ------------------------------------------------------------------ Rust API

impl RunningEmulator {
    /// Adds an item (`fields` = Graph JSON, defaults filled in) to `container` (`inbox`, `archive`,
    /// `calendar`, `contacts`, `suppliers`, `tasks`, … or an id); `None` = the default container.
    pub fn add_item(&self, user: &str, kind: Kind, container: Option<&str>, fields: Value) -> Result<ItemRef, Error> {
        self.shared.ctl_add(user, kind, container, fields)
    }
    /// Merges `patch` into an item (regular or immutable id).
    pub fn update_item(&self, user: &str, id: &str, patch: Value) -> Result<ItemRef, Error> {
        self.shared.ctl_update(user, id, patch)
    }
    pub fn delete_item(&self, user: &str, id: &str) -> Result<(), Error> {
        self.shared.ctl_delete(user, id)
    }
    /// Moves a message to another folder (its regular id changes, the immutable id does not).
    pub fn move_item(&self, user: &str, id: &str, to_container: &str) -> Result<ItemRef, Error> {
        self.shared.ctl_move(user, id, to_container)
    }
    /// The first `limit` items of a container.
    pub fn list_items(&self, user: &str, kind: Kind, container: &str, limit: usize) -> Result<Vec<ItemRef>, Error> {
        self.shared.ctl_list(user, kind, container, limit)
    }
    /// Everything in a container now, as Graph JSON (what a correct sync must end up holding).
    pub fn snapshot(&self, user: &str, kind: Kind, container: &str, immutable_ids: bool) -> Result<Vec<Value>, Error> {
        self.shared.ctl_snapshot(user, kind, container, immutable_ids)
    }
    /// The calendar view (single instances, occurrences, exceptions) overlapping [start, end).
    pub fn calendar_view(&self, user: &str, start: &str, end: &str, immutable_ids: bool) -> Result<Vec<Value>, Error> {
        self.shared.ctl_calendar_view(user, start, end, immutable_ids)
    }
    /// Evicts every delta token of this mailbox: next use answers 410 SyncStateNotFound.
    pub fn evict_sync_state(&self, user: &str) -> Result<(), Error> {
        self.shared.ctl_evict(user)
    }
    /// Admin "revoke sessions": the user's refresh tokens fail with AADSTS50173.
    pub fn revoke_refresh_tokens(&self, user: &str) -> Result<(), Error> {
        self.shared.ctl_revoke(user)
    }
    pub fn expire_client_secret(&self, client_id: &str, secret: &str) -> Result<(), Error> {
        self.shared.ctl_expire_secret(client_id, secret)
    }
    pub fn set_users_may_consent(&self, tenant: &str, allowed: bool) -> Result<(), Error> {
        self.shared.ctl_consent_policy(tenant, allowed)
    }
    pub fn set_mfa_required(&self, user: &str, required: bool) -> Result<(), Error> {
        self.shared.ctl_set_mfa(user, required)
    }
    /// Tenant-wide admin consent without the browser flow (set-up for service-account tests).
    pub fn grant_admin_consent(&self, tenant: &str, client_id: &str, delegated: &[&str], application: &[&str]) -> Result<(), Error> {
        let d: Vec<String> = delegated.iter().map(|s| s.to_string()).collect();
        let a: Vec<String> = application.iter().map(|s| s.to_string()).collect();
        self.shared.ctl_grant_admin(tenant, client_id, &d, &a)
    }
    /// Replaces the tenant's application access policy for `client_id` (`None` removes it): with
    /// `RestrictAccess` only `mailboxes` are reachable app-only; with `DenyAccess` all but them.
    pub fn set_application_access_policy(&self, tenant: &str, client_id: &str, policy: Option<(&str, &[&str])>) -> Result<(), Error> {
        let ti = self.shared.tenant_index(tenant).ok_or_else(|| Error::NotFound(format!("tenant {tenant}")))?;
        let mut dir = write(&self.shared.dir);
        let t = dir.tenants.get_mut(ti).ok_or_else(|| Error::NotFound(tenant.to_string()))?;
        t.application_access_policies.retain(|p| !p.client_id.eq_ignore_ascii_case(client_id));
        if let Some((right, mailboxes)) = policy {
            t.application_access_policies.push(crate::AccessPolicyFixture {
                client_id: client_id.to_string(),
                access_right: right.to_string(),
                mailboxes: mailboxes.iter().map(|m| m.to_string()).collect(),
            });
        }
        Ok(())
    }
    /// Removes a user's consent (`Some(user)`) or the tenant-wide grant (`None`).
    pub fn revoke_consent(&self, tenant: &str, user: Option<&str>, client_id: &str) -> Result<(), Error> {
        self.shared.ctl_revoke_consent(tenant, user, client_id)
    }
    /// Sends a lifecycle event (`reauthorizationRequired`, `subscriptionRemoved`, `missed`) for one
    /// subscription, or all of a user's; `subscriptionRemoved` deletes them. Returns how many.
    pub fn send_lifecycle_event(&self, subscription_id: Option<&str>, user: Option<&str>, event: &str) -> usize {
        let uid = user.and_then(|u| self.shared.user(u)).map(|u| u.user.id);
        crate::subscriptions::lifecycle(&self.shared, subscription_id, uid.as_deref(), event, false)
    }
    /// Every change-notification subscription Microsoft holds now.
    pub fn subscriptions(&self) -> Vec<crate::SubscriptionInfo> {
        crate::subscriptions::list(&self.shared)
    }
    /// Rolls the token signing key (JWKS `kid` changes); with `keep_previous` the old key stays published
    /// beside the new one. Returns the new `kid`.
    pub fn rotate_signing_key(&self, keep_previous: bool) -> Result<String, Error> {
        self.shared.keys.rotate(keep_previous).map_err(Error::Keys)
    }
    /// Holds back (or lets through again) the random 503/504s of `ProtocolOptions::transient_failure_rate`,
    /// e.g. while a test reads the mailbox over Graph to check what a sync stored. `reset` lets them through.
    pub fn pause_random_failures(&self, paused: bool) {
        registry::pause_random_failures(&self.shared, paused);
    }
    pub fn inject_fault(&self, rule: FaultRule) {
        registry::add_fault(&self.shared, rule);
    }
    /// Moves the emulator's clock (codes, token expiry, refresh-token inactivity).
    pub fn advance_clock(&self, by: std::time::Duration) {
        self.shared.ctl_advance_clock(by.as_secs() as i64);
    }
    /// Makes every refresh token (of `user`, or all) look `by` older (inactivity tests).
    pub fn age_refresh_tokens(&self, user: Option<&str>, by: std::time::Duration) {
        let uid = user.and_then(|u| self.shared.user(u)).map(|u| u.user.id);
        lock(&self.shared.idp).age_refresh_tokens(uid.as_deref(), time::Duration::seconds(by.as_secs() as i64));
    }
    /// Expires every access token issued so far (Graph answers 401).
    pub fn expire_access_tokens(&self) {
        let now = self.shared.now();
        lock(&self.shared.idp).expire_access_tokens(now);
    }
    pub fn set_throttling(&self, config: crate::ThrottleConfig) {
        *lock(&self.shared.throttle.cfg) = config;
    }
    pub fn counters(&self) -> Counters {
        self.shared.ctl_counters()
    }
    /// Clears counters, faults and throttling windows (not mailbox content or grants).
    pub fn reset(&self) {
        self.shared.ctl_reset()
    }
}

// ------------------------------------------------------------------ HTTP

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_emulator/mailboxes/{user}/{kind}", post(http_add).get(http_list))
        .route("/_emulator/mailboxes/{user}/items/{id}", axum::routing::patch(http_update).delete(http_delete))
        .route("/_emulator/mailboxes/{user}/items/{id}/move", post(http_move))
        .route("/_emulator/mailboxes/{user}/evict-sync-state", post(http_evict))
        .route("/_emulator/mailboxes/{user}/calendar-view", get(http_calendar_view))
        .route("/_emulator/users/{user}/revoke-refresh-tokens", post(http_revoke))
        .route("/_emulator/users/{user}/mfa", post(http_mfa))
        .route("/_emulator/apps/{client}/expire-secret", post(http_expire))
        .route("/_emulator/tenants/{tenant}/consent-policy", post(http_policy))
        .route("/_emulator/tenants/{tenant}/admin-consent", post(http_grant).delete(http_revoke_grant))
        .route("/_emulator/faults", post(http_fault))
        .route("/_emulator/tenants/{tenant}/application-access-policy", post(http_access_policy))
        .route("/_emulator/subscriptions/lifecycle", post(http_lifecycle))
        .route("/_emulator/clock/advance", post(http_clock))
        .route("/_emulator/tokens/expire-access", post(http_expire_access))
        .route("/_emulator/counters", get(http_counters))
        .route("/_emulator/reset", post(http_reset))
}

fn reply<T: Serialize>(r: Result<T, Error>) -> Response {
    match r {
        Ok(v) => (StatusCode::OK, Json(json!({"ok": true, "result": v}))).into_response(),
        Err(Error::NotFound(m)) => (StatusCode::NOT_FOUND, Json(json!({"ok": false, "error": m}))).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, Json(json!({"ok": false, "error": e.to_string()}))).into_response(),
    }
}

#[derive(Deserialize)]
struct AddBody {
    #[serde(default)]
    container: Option<String>,
    #[serde(default)]
    fields: Value,
}

async fn http_add(State(s): State<Arc<Shared>>, Path((user, kind)): Path<(String, String)>, Json(b): Json<AddBody>) -> Response {
    let Some(kind) = Kind::parse(&kind) else {
        return reply::<()>(Err(Error::Invalid(format!("kind {kind}"))));
    };
    reply(s.ctl_add(&user, kind, b.container.as_deref(), b.fields))
}

async fn http_list(
    State(s): State<Arc<Shared>>,
    Path((user, kind)): Path<(String, String)>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let Some(kind) = Kind::parse(&kind) else {
        return reply::<()>(Err(Error::Invalid(format!("kind {kind}"))));
    };
    let container = q.get("container").cloned().unwrap_or_else(|| match kind {
        Kind::Message => "inbox".into(),
        Kind::Event => "calendar".into(),
        Kind::Contact => "contacts".into(),
        Kind::Task => "tasks".into(),
    });
    let limit = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(10);
    if q.get("full").is_some_and(|v| v == "true") {
        let immutable = q.get("immutable").is_some_and(|v| v == "true");
        return reply(s.ctl_snapshot(&user, kind, &container, immutable));
    }
    reply(s.ctl_list(&user, kind, &container, limit))
}

async fn http_update(State(s): State<Arc<Shared>>, Path((user, id)): Path<(String, String)>, Json(patch): Json<Value>) -> Response {
    reply(s.ctl_update(&user, &id, patch))
}

async fn http_delete(State(s): State<Arc<Shared>>, Path((user, id)): Path<(String, String)>) -> Response {
    reply(s.ctl_delete(&user, &id))
}

#[derive(Deserialize)]
struct MoveBody {
    to: String,
}

async fn http_move(State(s): State<Arc<Shared>>, Path((user, id)): Path<(String, String)>, Json(b): Json<MoveBody>) -> Response {
    reply(s.ctl_move(&user, &id, &b.to))
}

async fn http_calendar_view(
    State(s): State<Arc<Shared>>,
    Path(user): Path<String>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let immutable = q.get("immutable").is_some_and(|v| v == "true");
    reply(s.ctl_calendar_view(
        &user,
        q.get("start").map(String::as_str).unwrap_or(""),
        q.get("end").map(String::as_str).unwrap_or(""),
        immutable,
    ))
}

async fn http_evict(State(s): State<Arc<Shared>>, Path(user): Path<String>) -> Response {
    reply(s.ctl_evict(&user))
}

async fn http_expire_access(State(s): State<Arc<Shared>>) -> Response {
    let now = s.now();
    lock(&s.idp).expire_access_tokens(now);
    reply(Ok(()))
}

async fn http_revoke(State(s): State<Arc<Shared>>, Path(user): Path<String>) -> Response {
    reply(s.ctl_revoke(&user))
}

#[derive(Deserialize)]
struct MfaBody {
    required: bool,
}

async fn http_mfa(State(s): State<Arc<Shared>>, Path(user): Path<String>, Json(b): Json<MfaBody>) -> Response {
    reply(s.ctl_set_mfa(&user, b.required))
}

#[derive(Deserialize)]
struct SecretBody {
    secret: String,
}

async fn http_expire(State(s): State<Arc<Shared>>, Path(client): Path<String>, Json(b): Json<SecretBody>) -> Response {
    reply(s.ctl_expire_secret(&client, &b.secret))
}

#[derive(Deserialize)]
struct PolicyBody {
    users_may_consent: bool,
}

async fn http_policy(State(s): State<Arc<Shared>>, Path(tenant): Path<String>, Json(b): Json<PolicyBody>) -> Response {
    reply(s.ctl_consent_policy(&tenant, b.users_may_consent))
}

#[derive(Deserialize)]
struct GrantBody {
    client_id: String,
    #[serde(default)]
    delegated: Vec<String>,
    #[serde(default)]
    application: Vec<String>,
}

async fn http_grant(State(s): State<Arc<Shared>>, Path(tenant): Path<String>, Json(b): Json<GrantBody>) -> Response {
    reply(s.ctl_grant_admin(&tenant, &b.client_id, &b.delegated, &b.application))
}

#[derive(Deserialize)]
struct RevokeGrantBody {
    client_id: String,
    /// One user's consent; without it, the tenant-wide (admin) grant.
    #[serde(default)]
    user: Option<String>,
}

async fn http_revoke_grant(State(s): State<Arc<Shared>>, Path(tenant): Path<String>, Json(b): Json<RevokeGrantBody>) -> Response {
    reply(s.ctl_revoke_consent(&tenant, b.user.as_deref(), &b.client_id))
}

#[derive(Deserialize)]
struct LifecycleBody {
    event: String,
    #[serde(default)]
    subscription_id: Option<String>,
    #[serde(default)]
    user: Option<String>,
}

async fn http_lifecycle(State(s): State<Arc<Shared>>, Json(b): Json<LifecycleBody>) -> Response {
    let uid = b.user.as_deref().and_then(|u| s.user(u)).map(|u| u.user.id);
    reply(Ok(crate::subscriptions::lifecycle(&s, b.subscription_id.as_deref(), uid.as_deref(), &b.event, false)))
}

#[derive(Deserialize)]
struct AccessPolicyBody {
    client_id: String,
    /// `RestrictAccess` or `DenyAccess`; absent removes the policy.
    #[serde(default)]
    access_right: Option<String>,
    #[serde(default)]
    mailboxes: Vec<String>,
}

async fn http_access_policy(State(s): State<Arc<Shared>>, Path(tenant): Path<String>, Json(b): Json<AccessPolicyBody>) -> Response {
    let Some(ti) = s.tenant_index(&tenant) else {
        return reply::<()>(Err(Error::NotFound(format!("tenant {tenant}"))));
    };
    let mut dir = write(&s.dir);
    if let Some(t) = dir.tenants.get_mut(ti) {
        t.application_access_policies.retain(|p| !p.client_id.eq_ignore_ascii_case(&b.client_id));
        if let Some(right) = b.access_right {
            t.application_access_policies.push(crate::AccessPolicyFixture {
                client_id: b.client_id,
                access_right: right,
                mailboxes: b.mailboxes,
            });
        }
    }
    reply(Ok(()))
}

async fn http_fault(State(s): State<Arc<Shared>>, Json(rule): Json<FaultRule>) -> Response {
    registry::add_fault(&s, rule);
    reply(Ok(()))
}

#[derive(Deserialize)]
struct ClockBody {
    seconds: i64,
}

async fn http_clock(State(s): State<Arc<Shared>>, Json(b): Json<ClockBody>) -> Response {
    s.ctl_advance_clock(b.seconds);
    reply(Ok(()))
}

async fn http_counters(State(s): State<Arc<Shared>>) -> Response {
    (StatusCode::OK, Json(s.ctl_counters())).into_response()
}

async fn http_reset(State(s): State<Arc<Shared>>) -> Response {
    s.ctl_reset();
    reply(Ok(()))
}
