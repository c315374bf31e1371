//! The fault and counter registry: injected faults waiting for matching requests, and what was served
//! (requests by route and status, per-mailbox concurrency, 429s). Graph and the identity platform record
//! into it; the control API reads and fills it.

use crate::util::format_retry_after;
use crate::{Shared, UserFixture, lock};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Make the next `count` requests matching `route` (substring of the path, e.g. `messages/delta` or
/// `/oauth2/v2.0/token`) and/or `mailbox` (UPN or id) fail with `status` and/or be delayed.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct FaultRule {
    #[serde(default)]
    pub route: Option<String>,
    #[serde(default)]
    pub mailbox: Option<String>,
    /// 429 (with Retry-After), 500, 503, 410, … ; `None` = only delay.
    #[serde(default)]
    pub status: Option<u16>,
    /// Seconds; sent as `Retry-After` (fractions allowed, §4.2).
    #[serde(default)]
    pub retry_after: Option<f64>,
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// Send `Retry-After` as an HTTP-date instead of seconds (both forms are legal, RFC 9110 §10.2.3).
    #[serde(default)]
    pub retry_after_as_date: bool,
    /// Fire on this share of matching requests (e.g. 0.1) instead of on every one; `count` still caps
    /// how often it fires (use `u32::MAX` for "until reset").
    #[serde(default)]
    pub probability: Option<f64>,
    /// Only requests with this HTTP method (`POST`, `PATCH`, …); `None` = any.
    #[serde(default)]
    pub method: Option<String>,
    /// Perform the operation first (it is applied, counted under `Counters::performed` and notified),
    /// then answer with this rule's status and/or delay instead of the real response: the response is
    /// lost, as when a gateway times out after the mailbox did the work.
    #[serde(default)]
    pub after_performing: bool,
    pub count: u32,
}

impl FaultRule {
    /// `Retry-After` header value for this rule, if any.
    pub(crate) fn retry_after_header(&self, secs: f64) -> String {
        if self.retry_after_as_date {
            let at = time::OffsetDateTime::now_utc() + time::Duration::seconds_f64(secs.ceil());
            at.format(&time::format_description::well_known::Rfc2822)
                .map(|s| s.replace("+0000", "GMT"))
                .unwrap_or_else(|_| format_retry_after(secs))
        } else {
            format_retry_after(secs)
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RouteCounter {
    pub route: String,
    pub status: u16,
    pub count: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct MailboxCounter {
    /// UPN, lower case.
    pub mailbox: String,
    pub requests: u64,
    /// Highest number of this mailbox's requests in flight at once (per app), counting an arrival that
    /// was refused with `ApplicationThrottled`: a well-behaved client never makes this exceed 4.
    pub max_concurrency: u32,
    pub throttled: u64,
    /// Some request arrived before a Retry-After given for this mailbox had elapsed.
    pub retried_before_retry_after: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Counters {
    pub requests: Vec<RouteCounter>,
    pub mailboxes: Vec<MailboxCounter>,
    /// 429 responses served (throttling and injected).
    pub throttled: u64,
    /// Change and lifecycle notifications delivered to / given up on webhook endpoints.
    #[serde(default)]
    pub notifications_delivered: u64,
    #[serde(default)]
    pub notifications_failed: u64,
    /// Requests whose operation really ran, by route template and the status the operation itself
    /// produced (also when an `after_performing` fault then answered something else).
    #[serde(default)]
    pub performed: Vec<RouteCounter>,
    /// Items created by Graph requests, per kind (`message` drafts, `event`, `contact`, `task`); copies
    /// delivered to recipients and attendees are not counted here.
    #[serde(default)]
    pub created: BTreeMap<String, u64>,
    /// Messages sent (`send` of a draft or `sendMail`).
    #[serde(default)]
    pub sent: u64,
    /// Message copies put in recipients' inboxes.
    #[serde(default)]
    pub delivered: u64,
    /// Meeting copies put in attendees' calendars.
    #[serde(default)]
    pub invitations: u64,
}

impl Counters {
    /// Sum of requests whose route contains `route_part` (and has `status`, if given).
    pub fn requests_matching(&self, route_part: &str, status: Option<u16>) -> u64 {
        self.requests.iter().filter(|r| r.route.contains(route_part) && status.is_none_or(|s| s == r.status)).map(|r| r.count).sum()
    }
    /// Sum of performed operations whose route contains `route_part` (and has `status`, if given).
    pub fn performed_matching(&self, route_part: &str, status: Option<u16>) -> u64 {
        self.performed.iter().filter(|r| r.route.contains(route_part) && status.is_none_or(|s| s == r.status)).map(|r| r.count).sum()
    }
    pub fn mailbox(&self, upn: &str) -> Option<&MailboxCounter> {
        self.mailboxes.iter().find(|m| m.mailbox.eq_ignore_ascii_case(upn))
    }
}

#[derive(Default)]
pub(crate) struct ControlState {
    faults: Vec<FaultRule>,
    routes: BTreeMap<(String, u16), u64>,
    performed: BTreeMap<(String, u16), u64>,
    created: BTreeMap<String, u64>,
    sent: u64,
    delivered: u64,
    invitations: u64,
    mailboxes: BTreeMap<String, MailboxCounter>,
    throttled: u64,
    /// The realistic profile's random 503/504s are held back (a test's own checks run undisturbed).
    random_failures_paused: bool,
}

pub(crate) fn pause_random_failures(shared: &Shared, paused: bool) {
    lock(&shared.control).random_failures_paused = paused;
}

pub(crate) fn random_failures_paused(shared: &Shared) -> bool {
    lock(&shared.control).random_failures_paused
}

pub(crate) fn count(shared: &Shared, route: &str, status: u16, mailbox: Option<&str>) {
    let mut c = lock(&shared.control);
    *c.routes.entry((route.to_string(), status)).or_default() += 1;
    if let Some(m) = mailbox {
        let e = c
            .mailboxes
            .entry(m.to_ascii_lowercase())
            .or_insert_with(|| MailboxCounter { mailbox: m.to_ascii_lowercase(), ..MailboxCounter::default() });
        e.requests += 1;
    }
}

/// An operation that really ran (see `Counters::performed`).
pub(crate) fn note_performed(shared: &Shared, route: &str, status: u16) {
    *lock(&shared.control).performed.entry((route.to_string(), status)).or_default() += 1;
}

/// What a write did: an item created by a request, a message sent, a copy delivered, an invitation.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Effect {
    Created(crate::generate::Kind),
    Sent,
    Delivered,
    Invited,
}

pub(crate) fn note(shared: &Shared, effect: Effect) {
    let mut c = lock(&shared.control);
    match effect {
        Effect::Created(kind) => *c.created.entry(format!("{kind:?}").to_ascii_lowercase()).or_default() += 1,
        Effect::Sent => c.sent += 1,
        Effect::Delivered => c.delivered += 1,
        Effect::Invited => c.invitations += 1,
    }
}

pub(crate) fn note_admission(shared: &Shared, upn: &str, concurrency: u32, early: bool) {
    let mut c = lock(&shared.control);
    let e = c
        .mailboxes
        .entry(upn.to_ascii_lowercase())
        .or_insert_with(|| MailboxCounter { mailbox: upn.to_ascii_lowercase(), ..MailboxCounter::default() });
    e.max_concurrency = e.max_concurrency.max(concurrency);
    e.retried_before_retry_after |= early;
}

pub(crate) fn note_throttled(shared: &Shared, upn: &str) {
    let mut c = lock(&shared.control);
    c.throttled += 1;
    let e = c
        .mailboxes
        .entry(upn.to_ascii_lowercase())
        .or_insert_with(|| MailboxCounter { mailbox: upn.to_ascii_lowercase(), ..MailboxCounter::default() });
    e.throttled += 1;
}

/// A directory request refused with 429 (counted in `throttled`, under no mailbox).
pub(crate) fn note_directory_throttled(shared: &Shared) {
    lock(&shared.control).throttled += 1;
}

/// Consumes one use of the first fault rule matching this request.
pub(crate) fn take_fault(shared: &Shared, method: &str, path: &str, mailbox: Option<&UserFixture>) -> Option<FaultRule> {
    let mut c = lock(&shared.control);
    let lower = path.to_ascii_lowercase();
    let idx = c.faults.iter().position(|f| {
        f.count > 0
            && f.method.as_ref().is_none_or(|m| m.eq_ignore_ascii_case(method))
            && f.route.as_ref().is_none_or(|r| lower.contains(&r.to_ascii_lowercase()))
            && f.mailbox
                .as_ref()
                .is_none_or(|m| mailbox.is_some_and(|u| u.user_principal_name.eq_ignore_ascii_case(m) || u.id.eq_ignore_ascii_case(m)))
            && f.probability.is_none_or(|p| rand::random::<f64>() < p)
    })?;
    let rule = c.faults.get_mut(idx)?;
    rule.count -= 1;
    let out = rule.clone();
    if rule.count == 0 {
        c.faults.remove(idx);
    }
    Some(out)
}

pub(crate) fn add_fault(shared: &Shared, rule: FaultRule) {
    lock(&shared.control).faults.push(rule);
}

/// Clears counters and pending faults.
pub(crate) fn reset(shared: &Shared) {
    *lock(&shared.control) = ControlState::default();
}

pub(crate) fn counters(shared: &Shared) -> Counters {
    use std::sync::atomic::Ordering::Relaxed;
    let c = lock(&shared.control);
    Counters {
        requests: c
            .routes
            .iter()
            .map(|((route, status), count)| RouteCounter { route: route.clone(), status: *status, count: *count })
            .collect(),
        mailboxes: c.mailboxes.values().cloned().collect(),
        throttled: c.throttled,
        notifications_delivered: shared.notification_counters.0.load(Relaxed),
        notifications_failed: shared.notification_counters.1.load(Relaxed),
        performed: c
            .performed
            .iter()
            .map(|((route, status), count)| RouteCounter { route: route.clone(), status: *status, count: *count })
            .collect(),
        created: c.created.clone(),
        sent: c.sent,
        delivered: c.delivered,
        invitations: c.invitations,
    }
}
