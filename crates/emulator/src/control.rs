//! Control API: change mailboxes, revoke tokens, expire secrets, switch policy, inject faults, read
//! counters. Served under `/_emulator/...` only when enabled; the same operations are methods on
//! [`crate::RunningEmulator`] for in-process tests.

use crate::generate::{self, Kind};
use crate::registry::{self, Counters, FaultRule};
use crate::store::MailboxState;
use crate::{Error, RunningEmulator, Shared, lock, read, write};
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// Identifies an item in a mailbox: both id forms, for tests to compare with what Graph returned.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ItemRef {
    pub kind: Kind,
    pub id: String,
    pub immutable_id: String,
}

// ------------------------------------------------------------------ operations

fn missing(what: &str) -> Error {
    Error::NotFound(what.to_string())
}

/// Graph's defaults for an item the control API adds, where `fields` leaves them out.
fn item_defaults(kind: Kind, user: &crate::UserRef, now: time::OffsetDateTime) -> Value {
    let stamp = generate::graph_datetime(now);
    let start = now + time::Duration::days(1);
    let from = json!({"emailAddress": {"name": "Control API", "address": "control@emulator.test"}});
    match kind {
        Kind::Message => json!({
            "subject": "Message added by the emulator control API",
            "receivedDateTime": stamp,
            "sentDateTime": stamp,
            "isRead": false,
            "isDraft": false,
            "hasAttachments": false,
            "body": {"contentType": "text", "content": "Added through the control API."},
            "bodyPreview": "Added through the control API.",
            "from": from,
            "sender": from,
            "toRecipients": [{"emailAddress": {"name": user.user.display_name, "address": user.user.user_principal_name}}],
            "ccRecipients": [],
            "internetMessageId": format!("<{}@emulator.test>", crate::util::guid()),
        }),
        Kind::Event => json!({
            "subject": "Event added by the emulator control API",
            "start": {"dateTime": generate::zoned_datetime(start), "timeZone": "UTC"},
            "end": {"dateTime": generate::zoned_datetime(start + time::Duration::hours(1)), "timeZone": "UTC"},
            "isAllDay": false,
            "isCancelled": false,
            "attendees": [],
        }),
        Kind::Contact => json!({
            "displayName": "Control Contact",
            "emailAddresses": [{"name": "Control Contact", "address": "contact@emulator.test"}],
        }),
        Kind::Task => json!({
            "title": "Task added by the emulator control API",
            "status": "notStarted",
            "importance": "normal",
        }),
    }
}

impl Shared {
    fn user_or(&self, key: &str) -> Result<crate::UserRef, Error> {
        self.user(key).ok_or_else(|| Error::NotFound(format!("user {key}")))
    }

    fn tenant_or(&self, key: &str) -> Result<usize, Error> {
        self.tenant_index(key).ok_or_else(|| Error::NotFound(format!("tenant {key}")))
    }

    fn container_key(kind: Kind, hash: u64, c: &str) -> Result<String, Error> {
        generate::parse_container_id(hash, c, &kind.container_keys()).ok_or_else(|| Error::NotFound(format!("container {c}")))
    }

    fn item_ref(mb: &MailboxState, kind: Kind, n: u64) -> ItemRef {
        let container = mb.container_of(kind, n).unwrap_or_default();
        ItemRef {
            kind,
            id: generate::item_id(mb.ctx.hash, kind, n, None, &container, false),
            immutable_id: generate::item_id(mb.ctx.hash, kind, n, None, &container, true),
        }
    }

    /// Runs `f` on the user's mailbox, then tells subscribers what it changed.
    fn change_mailbox<T>(&self, user: &str, f: impl FnOnce(&crate::UserRef, &mut MailboxState) -> Result<T, Error>) -> Result<T, Error> {
        let u = self.user_or(user)?;
        let mb_arc = self.mailbox(&u.user);
        let mut mb = lock(&mb_arc);
        let out = f(&u, &mut mb)?;
        crate::subscriptions::flush(self, &u.user, &mut mb);
        Ok(out)
    }

    /// Reads one container of the user's mailbox.
    fn read_container<T>(&self, user: &str, kind: Kind, container: &str, f: impl FnOnce(&MailboxState, &str) -> T) -> Result<T, Error> {
        let u = self.user_or(user)?;
        let mb_arc = self.mailbox(&u.user);
        let mb = lock(&mb_arc);
        let key = Self::container_key(kind, mb.ctx.hash, container)?;
        Ok(f(&mb, &key))
    }

    /// Changes one item (either id form) and answers its reference afterwards.
    fn change_item(
        &self,
        user: &str,
        id: &str,
        f: impl FnOnce(&mut MailboxState, Kind, u64) -> Result<(), Error>,
    ) -> Result<ItemRef, Error> {
        self.change_mailbox(user, |_, mb| {
            let (kind, n) = mb.resolve(id).ok_or_else(|| Error::NotFound(format!("item {id}")))?;
            f(mb, kind, n)?;
            Ok(Self::item_ref(mb, kind, n))
        })
    }

    pub(crate) fn ctl_add(&self, user: &str, kind: Kind, container: Option<&str>, fields: Value) -> Result<ItemRef, Error> {
        let now = self.now();
        self.change_mailbox(user, |u, mb| {
            let key = Self::container_key(kind, mb.ctx.hash, container.unwrap_or(kind.default_container()))?;
            let mut fields = match fields {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            if let Value::Object(defaults) = item_defaults(kind, u, now) {
                for (k, v) in defaults {
                    fields.entry(k).or_insert(v);
                }
            }
            let n = mb.add(kind, &key, Value::Object(fields), now);
            Ok(Self::item_ref(mb, kind, n))
        })
    }

    pub(crate) fn ctl_update(&self, user: &str, id: &str, patch: Value) -> Result<ItemRef, Error> {
        let now = self.now();
        self.change_item(user, id, |mb, kind, n| {
            let Value::Object(p) = patch else {
                return Err(Error::Invalid("patch must be a JSON object".into()));
            };
            mb.update(kind, n, p, now).map(drop).ok_or_else(|| missing(id))
        })
    }

    pub(crate) fn ctl_delete(&self, user: &str, id: &str) -> Result<(), Error> {
        self.change_item(user, id, |mb, kind, n| mb.delete(kind, n).map(drop).ok_or_else(|| missing(id))).map(drop)
    }

    pub(crate) fn ctl_move(&self, user: &str, id: &str, to: &str) -> Result<ItemRef, Error> {
        let now = self.now();
        self.change_item(user, id, |mb, kind, n| {
            let key = Self::container_key(kind, mb.ctx.hash, to)?;
            mb.move_to(kind, n, &key, now).map(drop).ok_or_else(|| missing(id))
        })
    }

    /// Ids of the first `limit` items in a container (tests pick items to change).
    pub(crate) fn ctl_list(&self, user: &str, kind: Kind, container: &str, limit: usize) -> Result<Vec<ItemRef>, Error> {
        self.read_container(user, kind, container, |mb, key| {
            mb.page(kind, key, None, limit).into_iter().map(|n| Self::item_ref(mb, kind, n)).collect()
        })
    }

    pub(crate) fn ctl_snapshot(&self, user: &str, kind: Kind, container: &str, immutable: bool) -> Result<Vec<Value>, Error> {
        self.read_container(user, kind, container, |mb, key| {
            mb.page(kind, key, None, usize::MAX).into_iter().filter_map(|n| mb.item_json(kind, n, immutable)).collect()
        })
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
        let s = app.secrets.iter_mut().find(|s| s.value == secret).ok_or_else(|| missing("secret"))?;
        s.expires = "2000-01-01T00:00:00Z".to_string();
        Ok(())
    }

    /// Changes one tenant of the directory.
    fn change_tenant(&self, tenant: &str, f: impl FnOnce(&mut crate::TenantFixture)) -> Result<(), Error> {
        let ti = self.tenant_or(tenant)?;
        let mut dir = write(&self.dir);
        f(dir.tenants.get_mut(ti).ok_or_else(|| missing(tenant))?);
        Ok(())
    }

    fn tenant_id(&self, tenant: &str) -> Result<String, Error> {
        let ti = self.tenant_or(tenant)?;
        Ok(read(&self.dir).tenants.get(ti).map(|t| t.id.clone()).unwrap_or_default())
    }

    pub(crate) fn ctl_consent_policy(&self, tenant: &str, users_may_consent: bool) -> Result<(), Error> {
        self.change_tenant(tenant, |t| t.users_may_consent = users_may_consent)
    }

    /// Replaces the tenant's application access policy for `client_id` (`None` removes it).
    pub(crate) fn ctl_access_policy(&self, tenant: &str, client_id: &str, policy: Option<(String, Vec<String>)>) -> Result<(), Error> {
        self.change_tenant(tenant, |t| {
            t.application_access_policies.retain(|p| !p.client_id.eq_ignore_ascii_case(client_id));
            if let Some((access_right, mailboxes)) = policy {
                t.application_access_policies.push(crate::AccessPolicyFixture {
                    client_id: client_id.to_string(),
                    access_right,
                    mailboxes,
                });
            }
        })
    }

    pub(crate) fn ctl_set_mfa(&self, user: &str, required: bool) -> Result<(), Error> {
        let (ti, ui) = *self.index.users.get(&user.to_ascii_lowercase()).ok_or_else(|| missing(user))?;
        let mut dir = write(&self.dir);
        if let Some(u) = dir.tenants.get_mut(ti).and_then(|t| t.users.get_mut(ui)) {
            u.mfa_required = required;
        }
        Ok(())
    }

    pub(crate) fn ctl_grant_admin(&self, tenant: &str, client_id: &str, delegated: &[String], application: &[String]) -> Result<(), Error> {
        let tid = self.tenant_id(tenant)?;
        let mut idp = lock(&self.idp);
        let g = idp.admin_grants.entry((tid.to_ascii_lowercase(), client_id.to_ascii_lowercase())).or_default();
        g.delegated.extend(delegated.iter().cloned());
        g.roles.extend(application.iter().cloned());
        Ok(())
    }

    pub(crate) fn ctl_revoke_consent(&self, tenant: &str, user: Option<&str>, client_id: &str) -> Result<(), Error> {
        let tid = self.tenant_id(tenant)?;
        let uid = match user {
            Some(u) => Some(self.user_or(u)?.user.id),
            None => None,
        };
        lock(&self.idp).revoke_consent(&tid, uid.as_deref(), client_id);
        Ok(())
    }

    pub(crate) fn ctl_lifecycle(&self, subscription_id: Option<&str>, user: Option<&str>, event: &str) -> usize {
        let uid = user.and_then(|u| self.user(u)).map(|u| u.user.id);
        crate::subscriptions::lifecycle(self, subscription_id, uid.as_deref(), event, false)
    }

    pub(crate) fn ctl_expire_access(&self) {
        let now = self.now();
        lock(&self.idp).expire_access_tokens(now);
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
        let policy = policy.map(|(right, mailboxes)| (right.to_string(), mailboxes.iter().map(|m| m.to_string()).collect()));
        self.shared.ctl_access_policy(tenant, client_id, policy)
    }
    /// Removes a user's consent (`Some(user)`) or the tenant-wide grant (`None`).
    pub fn revoke_consent(&self, tenant: &str, user: Option<&str>, client_id: &str) -> Result<(), Error> {
        self.shared.ctl_revoke_consent(tenant, user, client_id)
    }
    /// Sends a lifecycle event (`reauthorizationRequired`, `subscriptionRemoved`, `missed`) for one
    /// subscription, or all of a user's; `subscriptionRemoved` deletes them. Returns how many.
    pub fn send_lifecycle_event(&self, subscription_id: Option<&str>, user: Option<&str>, event: &str) -> usize {
        self.shared.ctl_lifecycle(subscription_id, user, event)
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
        self.shared.ctl_expire_access();
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

/// What one control request carries: the path's captures, the query and the JSON body (`null` when
/// there is none).
struct Req {
    path: HashMap<String, String>,
    query: HashMap<String, String>,
    body: Value,
}

impl Req {
    fn path(&self, name: &str) -> &str {
        self.path.get(name).map(String::as_str).unwrap_or("")
    }
    fn query(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }
    fn flag(&self, name: &str) -> bool {
        self.query(name) == Some("true")
    }
    /// A field of the JSON body, absent or `null` as `None`.
    fn opt<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, Error> {
        match self.body.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => T::deserialize(v).map(Some).map_err(|e| Error::Invalid(format!("field `{name}`: {e}"))),
        }
    }
    /// A field the body must carry.
    fn field<T: DeserializeOwned>(&self, name: &str) -> Result<T, Error> {
        self.opt(name)?.ok_or_else(|| Error::Invalid(format!("missing field `{name}`")))
    }
    /// A list of names in the body, empty when absent.
    fn names(&self, name: &str) -> Result<Vec<String>, Error> {
        Ok(self.opt(name)?.unwrap_or_default())
    }
    fn kind(&self) -> Result<Kind, Error> {
        let kind = self.path("kind");
        Kind::parse(kind).ok_or_else(|| Error::Invalid(format!("kind {kind}")))
    }
}

/// A control operation: the request in, the `result` out (or the error).
type Handler = fn(&Shared, &Req) -> Result<Value, Error>;

/// How the answer is wrapped: `{"ok": true, "result": …}`, or the result alone (`/counters`).
#[derive(Clone, Copy)]
enum Wrap {
    Ok,
    Bare,
}

/// The control API, one row per route. Bodies: add `{container?, fields?}`, move `{to}`, mfa
/// `{required}`, expire-secret `{secret}`, consent-policy `{users_may_consent}`, admin-consent
/// `{client_id, delegated?, application?}` (DELETE: `{client_id, user?}`), application-access-policy
/// `{client_id, access_right?, mailboxes?}`, faults: a [`FaultRule`], lifecycle `{event,
/// subscription_id?, user?}`, clock `{seconds}`.
const ROUTES: &[(&str, &str, Handler, Wrap)] = &[
    ("POST", "/_emulator/mailboxes/{user}/{kind}", add, Wrap::Ok),
    ("GET", "/_emulator/mailboxes/{user}/{kind}", list, Wrap::Ok),
    ("PATCH", "/_emulator/mailboxes/{user}/items/{id}", |s, r| done(s.ctl_update(r.path("user"), r.path("id"), r.body.clone())), Wrap::Ok),
    ("DELETE", "/_emulator/mailboxes/{user}/items/{id}", |s, r| done(s.ctl_delete(r.path("user"), r.path("id"))), Wrap::Ok),
    (
        "POST",
        "/_emulator/mailboxes/{user}/items/{id}/move",
        |s, r| done(s.ctl_move(r.path("user"), r.path("id"), &r.field::<String>("to")?)),
        Wrap::Ok,
    ),
    ("POST", "/_emulator/mailboxes/{user}/evict-sync-state", |s, r| done(s.ctl_evict(r.path("user"))), Wrap::Ok),
    ("GET", "/_emulator/mailboxes/{user}/calendar-view", calendar_view, Wrap::Ok),
    ("POST", "/_emulator/users/{user}/revoke-refresh-tokens", |s, r| done(s.ctl_revoke(r.path("user"))), Wrap::Ok),
    ("POST", "/_emulator/users/{user}/mfa", |s, r| done(s.ctl_set_mfa(r.path("user"), r.field("required")?)), Wrap::Ok),
    (
        "POST",
        "/_emulator/apps/{client}/expire-secret",
        |s, r| done(s.ctl_expire_secret(r.path("client"), &r.field::<String>("secret")?)),
        Wrap::Ok,
    ),
    (
        "POST",
        "/_emulator/tenants/{tenant}/consent-policy",
        |s, r| done(s.ctl_consent_policy(r.path("tenant"), r.field("users_may_consent")?)),
        Wrap::Ok,
    ),
    ("POST", "/_emulator/tenants/{tenant}/admin-consent", grant, Wrap::Ok),
    ("DELETE", "/_emulator/tenants/{tenant}/admin-consent", revoke_grant, Wrap::Ok),
    ("POST", "/_emulator/tenants/{tenant}/application-access-policy", access_policy, Wrap::Ok),
    (
        "POST",
        "/_emulator/faults",
        |s, r| {
            registry::add_fault(s, FaultRule::deserialize(&r.body).map_err(|e| Error::Invalid(e.to_string()))?);
            Ok(Value::Null)
        },
        Wrap::Ok,
    ),
    ("POST", "/_emulator/subscriptions/lifecycle", lifecycle, Wrap::Ok),
    (
        "POST",
        "/_emulator/clock/advance",
        |s, r| {
            s.ctl_advance_clock(r.field("seconds")?);
            Ok(Value::Null)
        },
        Wrap::Ok,
    ),
    (
        "POST",
        "/_emulator/tokens/expire-access",
        |s, _| {
            s.ctl_expire_access();
            Ok(Value::Null)
        },
        Wrap::Ok,
    ),
    ("GET", "/_emulator/counters", |s, _| done(Ok(s.ctl_counters())), Wrap::Bare),
    (
        "POST",
        "/_emulator/reset",
        |s, _| {
            s.ctl_reset();
            Ok(Value::Null)
        },
        Wrap::Ok,
    ),
];

pub(crate) fn routes() -> Router<Arc<Shared>> {
    ROUTES.iter().fold(Router::new(), |router, &(method, path, handler, wrap)| {
        let method = Method::from_bytes(method.as_bytes()).ok().and_then(|m| MethodFilter::try_from(m).ok()).unwrap_or(MethodFilter::GET);
        let serve = move |State(s): State<Arc<Shared>>,
                          Path(path): Path<HashMap<String, String>>,
                          Query(query): Query<HashMap<String, String>>,
                          body: Bytes| async move {
            let req = body_json(&body).map(|body| Req { path, query, body });
            reply(req.and_then(|r| handler(&s, &r)), wrap)
        };
        router.route(path, on(method, serve))
    })
}

fn body_json(body: &[u8]) -> Result<Value, Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|e| Error::Invalid(format!("request body: {e}")))
}

fn reply(r: Result<Value, Error>, wrap: Wrap) -> Response {
    match (r, wrap) {
        (Ok(v), Wrap::Bare) => (StatusCode::OK, Json(v)).into_response(),
        (Ok(v), Wrap::Ok) => (StatusCode::OK, Json(json!({"ok": true, "result": v}))).into_response(),
        (Err(Error::NotFound(m)), _) => (StatusCode::NOT_FOUND, Json(json!({"ok": false, "error": m}))).into_response(),
        (Err(e), _) => (StatusCode::BAD_REQUEST, Json(json!({"ok": false, "error": e.to_string()}))).into_response(),
    }
}

fn done<T: Serialize>(r: Result<T, Error>) -> Result<Value, Error> {
    r.and_then(|v| serde_json::to_value(v).map_err(|e| Error::Invalid(e.to_string())))
}

fn add(s: &Shared, r: &Req) -> Result<Value, Error> {
    let container: Option<String> = r.opt("container")?;
    let fields = r.opt("fields")?.unwrap_or(Value::Null);
    done(s.ctl_add(r.path("user"), r.kind()?, container.as_deref(), fields))
}

/// `?container=…&limit=…`, or with `full=true` the whole container as Graph JSON (`immutable=true`).
fn list(s: &Shared, r: &Req) -> Result<Value, Error> {
    let kind = r.kind()?;
    let container = r.query("container").unwrap_or(kind.default_container());
    if r.flag("full") {
        return done(s.ctl_snapshot(r.path("user"), kind, container, r.flag("immutable")));
    }
    let limit = r.query("limit").and_then(|l| l.parse().ok()).unwrap_or(10);
    done(s.ctl_list(r.path("user"), kind, container, limit))
}

fn calendar_view(s: &Shared, r: &Req) -> Result<Value, Error> {
    done(s.ctl_calendar_view(r.path("user"), r.query("start").unwrap_or(""), r.query("end").unwrap_or(""), r.flag("immutable")))
}

fn grant(s: &Shared, r: &Req) -> Result<Value, Error> {
    done(s.ctl_grant_admin(r.path("tenant"), &r.field::<String>("client_id")?, &r.names("delegated")?, &r.names("application")?))
}

/// One user's consent (`user`), or without it the tenant-wide (admin) grant.
fn revoke_grant(s: &Shared, r: &Req) -> Result<Value, Error> {
    let user: Option<String> = r.opt("user")?;
    done(s.ctl_revoke_consent(r.path("tenant"), user.as_deref(), &r.field::<String>("client_id")?))
}

/// `access_right`: `RestrictAccess` or `DenyAccess`; absent removes the policy.
fn access_policy(s: &Shared, r: &Req) -> Result<Value, Error> {
    let policy = r.opt::<String>("access_right")?.map(|right| r.names("mailboxes").map(|m| (right, m))).transpose()?;
    done(s.ctl_access_policy(r.path("tenant"), &r.field::<String>("client_id")?, policy))
}

fn lifecycle(s: &Shared, r: &Req) -> Result<Value, Error> {
    let (subscription, user): (Option<String>, Option<String>) = (r.opt("subscription_id")?, r.opt("user")?);
    done(Ok(s.ctl_lifecycle(subscription.as_deref(), user.as_deref(), &r.field::<String>("event")?)))
}
