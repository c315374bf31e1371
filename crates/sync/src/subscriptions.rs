//! Change-notification subscriptions, kept by the worker that holds a mailbox's lease (so their
//! Graph calls share the mailbox's 4 slots and `Retry-After` with its sync):
//!
//! - one per synced resource (To Do: per list), made once that resource's first full round is done,
//!   with a fresh random `clientState` each, expiring within Microsoft's maximum;
//! - renewed when less than [`SyncConfig::subscription_renew_before`] is left, or at once when
//!   Microsoft asked for reauthorization; made again when Microsoft removed it or it lapsed;
//! - deleted when its resource is no longer synced, and by [`Engine::retire_subscriptions`] before a
//!   connection goes or its mailbox is paused;
//! - where Microsoft offers none (the public URL is not https; someone else's mailbox through
//!   delegated `.Shared` permissions) or refuses one, the mailbox is polled at the configured
//!   interval, and [`ChangeDelivery`] says why.

use crate::engine::{CallFailure, Engine, RunCtx, SyncConfig};
use crate::error::SyncError;
use crate::metrics::SyncMetrics;
use crate::tokens::{TokenKind, TokenSource};
use domain::office365::Office365Settings;
use domain::permissions::ConnectionMode;
use domain::{ChangeDelivery, PollingReason, Resource};
use microsoft::{GraphError, SecretString, SubscriptionTarget};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use store::UnixTime;
use store::subscriptions::{Subscription, SubscriptionState};
use store::sync::{CommitOutcome, CursorState, MailboxOverview, SubscriptionStatus, SyncMailbox};
use uuid::Uuid;

/// The clock subscription expiries are judged by: this machine's, plus an offset tests move
/// together with Microsoft's (the emulator's) clock, so days can pass in a test.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionClock {
    offset_secs: Arc<AtomicI64>,
}

impl SubscriptionClock {
    pub fn now(&self) -> UnixTime {
        store::now_unix() + self.offset_secs.load(Ordering::Relaxed)
    }

    /// Moves this clock forward (tests).
    pub fn advance(&self, by: std::time::Duration) {
        self.offset_secs.fetch_add(i64::try_from(by.as_secs()).unwrap_or(i64::MAX), Ordering::Relaxed);
    }
}

/// A new `clientState`: 32 random bytes as hex (Microsoft allows 128 characters).
fn new_client_state() -> SecretString {
    let bytes: [u8; 32] = rand::random();
    SecretString::from(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// Why a mailbox cannot have subscriptions at all, whatever its state; `None` when it can.
pub fn polling_only(config: &SyncConfig, settings: &Office365Settings, mailbox: &SyncMailbox) -> Option<PollingReason> {
    if config.notification_urls.is_none() {
        return Some(PollingReason::NoHttpsUrl);
    }
    let delegated = matches!(
        TokenSource::kind_for(settings.mode, mailbox.org_id, mailbox.connection_id, mailbox.graph_user_id.is_some()),
        TokenKind::Delegated { .. }
    );
    (delegated && mailbox.graph_user_id.is_some()).then_some(PollingReason::SharedMailbox)
}

/// The subscriptions a mailbox should have: each synced resource whose first full round is done
/// (every cursor of it at a deltaLink), To Do tasks per list.
fn wanted(resources: &[Resource], cursors: &[CursorState]) -> BTreeSet<(Resource, String)> {
    let mut out = BTreeSet::new();
    for &r in resources {
        let mine: Vec<&CursorState> = cursors.iter().filter(|c| c.resource == r).collect();
        if mine.is_empty() || mine.iter().any(|c| c.full_round) {
            continue;
        }
        match r {
            Resource::Tasks => out.extend(mine.iter().map(|c| (r, c.container.clone()))),
            _ => {
                out.insert((r, String::new()));
            }
        }
    }
    out
}

/// How the mailbox learns of changes, from what it has: live when every resource synced has a
/// live subscription; otherwise the first reason it is polled. The one place this is decided,
/// for a worker's run and for the status pages alike.
pub fn change_delivery(
    config: &SyncConfig,
    settings: &Office365Settings,
    mailbox: &SyncMailbox,
    cursors: &[CursorState],
    kept: &[SubscriptionStatus],
    at: UnixTime,
) -> ChangeDelivery {
    if let Some(reason) = polling_only(config, settings, mailbox) {
        return ChangeDelivery::Polling(reason);
    }
    let resources = crate::resources_for(&settings.resources);
    let want = wanted(&resources, cursors);
    let ready: BTreeSet<Resource> = want.iter().map(|(r, _)| *r).collect();
    if resources.iter().any(|r| !ready.contains(r)) {
        return ChangeDelivery::Polling(PollingReason::FirstSync);
    }
    for (resource, container) in &want {
        let s = kept.iter().find(|s| s.resource == *resource && &s.container == container);
        match s.map(|s| (s.is_live(at), &s.failure)) {
            Some((true, _)) => {}
            Some((false, Some((reason, detail)))) => {
                return ChangeDelivery::Polling(PollingReason::Failed { resource: *resource, reason: *reason, detail: detail.clone() });
            }
            _ => return ChangeDelivery::Polling(PollingReason::SettingUp),
        }
    }
    ChangeDelivery::Live
}

/// What to do with one wanted subscription.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Keep,
    Create,
    Renew(String),
    /// Failed recently: wait before asking Microsoft again.
    Wait,
}

/// The step for a wanted subscription as it stands at `now`: a live one is renewed when Microsoft
/// asked or less than `subscription_renew_before` is left, a lapsed or missing one is made again,
/// and a failed one is tried again `subscription_retry_secs` after the last attempt.
fn step(current: Option<&Subscription>, now: UnixTime, cfg: &SyncConfig) -> Step {
    let renew_before = i64::try_from(cfg.subscription_renew_before.as_secs()).unwrap_or(i64::MAX);
    match current.map(|s| (&s.state, s.attempted_at)) {
        Some((SubscriptionState::Live { graph_id, expires_at, renew, .. }, _)) if *expires_at > now => {
            if *renew || *expires_at - now < renew_before { Step::Renew(graph_id.clone()) } else { Step::Keep }
        }
        Some((SubscriptionState::Failed { .. }, at)) if at + cfg.subscription_retry_secs > now => Step::Wait,
        _ => Step::Create,
    }
}

impl Engine {
    /// Brings the mailbox's subscriptions in line with what it syncs (see the module docs), under
    /// the run's lease. Subscription trouble never fails the run: it is recorded, and the mailbox
    /// is polled meanwhile. Returns how the mailbox learns of changes now.
    pub(crate) async fn keep_subscriptions(&self, ctx: &RunCtx) -> Result<ChangeDelivery, SyncError> {
        let settings = &ctx.settings;
        let store = self.store();
        let cfg = self.config();
        let now = || cfg.subscription_clock.now();
        let polling = polling_only(cfg, settings, &ctx.lease.mailbox);
        // A polled mailbox whose claim saw no subscription has none: nothing to read.
        let kept = if polling.is_some() && !ctx.lease.has_subscriptions {
            Vec::new()
        } else {
            store.mailbox_subscriptions(ctx.lease.mailbox.id).await?
        };
        if let Some(reason) = &polling
            && kept.is_empty()
        {
            // Polled, and no subscription left to remove: nothing to keep.
            return Ok(ChangeDelivery::Polling(reason.clone()));
        }
        let cursors: Vec<CursorState> = store.cursors(ctx.lease.mailbox.id).await?.iter().map(CursorState::from).collect();
        let want = match (polling, &cfg.notification_urls) {
            (None, Some(_)) => wanted(&crate::resources_for(&settings.resources), &cursors),
            _ => BTreeSet::new(),
        };
        let mut wrote = false;
        for s in kept.iter().filter(|s| !want.contains(&(s.resource, s.container.clone()))) {
            if let Some(id) = s.graph_id() {
                let client = &self.inner.client;
                match self.graph(ctx, false, |t| async move { client.delete_subscription(&t, id).await }).await {
                    Ok(()) => SyncMetrics::add(&self.inner.metrics.subscriptions_deleted, 1),
                    Err(CallFailure::Fatal(SyncError::LeaseLost)) => return Err(SyncError::LeaseLost),
                    // It lapses by itself within three days; its notifications find no subscription.
                    Err(_) => tracing::info!(mailbox = %ctx.lease.mailbox.id, "could not delete a change-notification subscription"),
                }
            }
            if store.remove_subscription(ctx.lease.mailbox.id, ctx.lease.fence, s.resource, &s.container, store::now_unix()).await?
                == CommitOutcome::LeaseLost
            {
                return Err(SyncError::LeaseLost);
            }
            wrote = true;
        }
        for (resource, container) in &want {
            let current = kept.iter().find(|s| s.resource == *resource && &s.container == container);
            let step = step(current, now(), cfg);
            let outcome = match step {
                Step::Keep | Step::Wait => continue,
                Step::Renew(id) => match self.renew_subscription(ctx, &id).await {
                    Err(CallFailure::Fatal(SyncError::Graph(e))) if e.status == Some(404) => {
                        self.create_subscription(ctx, *resource, container).await
                    }
                    other => other.map(|s| (s, None)),
                },
                Step::Create => self.create_subscription(ctx, *resource, container).await,
            };
            let state = match outcome {
                Ok((sub, client_state)) => {
                    let client_state = match (client_state, current.map(|c| &c.state)) {
                        (Some(c), _) => c,
                        (None, Some(SubscriptionState::Live { client_state, .. })) => client_state.clone(),
                        (None, _) => continue,
                    };
                    SubscriptionState::Live { graph_id: sub.id, client_state, expires_at: sub.expires_at.unix_timestamp(), renew: false }
                }
                Err(CallFailure::Fatal(SyncError::LeaseLost)) => return Err(SyncError::LeaseLost),
                // Throttled or Microsoft unavailable: the next run tries again; a live one stays.
                Err(CallFailure::Fatal(e @ (SyncError::Throttled(_) | SyncError::Token(_) | SyncError::Store(_)))) => {
                    tracing::info!(mailbox = %ctx.lease.mailbox.id, error = %e, "change-notification upkeep postponed");
                    break;
                }
                Err(failure) => {
                    SyncMetrics::add(&self.inner.metrics.subscription_failures, 1);
                    let (reason, detail) = failure_words(failure);
                    tracing::info!(mailbox = %ctx.lease.mailbox.id, resource = resource.as_str(), ?reason, %detail, "no change notifications");
                    SubscriptionState::Failed { reason, detail }
                }
            };
            let row = Subscription {
                mailbox_id: ctx.lease.mailbox.id,
                resource: *resource,
                container: container.clone(),
                state,
                attempted_at: now(),
            };
            if store.save_subscription(ctx.lease.fence, &row, store::now_unix()).await? == CommitOutcome::LeaseLost {
                return Err(SyncError::LeaseLost);
            }
            wrote = true;
        }
        let kept = if wrote { store.mailbox_subscriptions(ctx.lease.mailbox.id).await? } else { kept };
        let kept: Vec<SubscriptionStatus> = kept.iter().map(SubscriptionStatus::from).collect();
        Ok(change_delivery(cfg, settings, &ctx.lease.mailbox, &cursors, &kept, now()))
    }

    /// How one mailbox learns of changes now, reading its cursors and subscriptions (the tests
    /// and the benchmarks; pages use [`Engine::change_deliveries`]).
    pub async fn change_delivery(&self, settings: &Office365Settings, mailbox: &SyncMailbox) -> Result<ChangeDelivery, SyncError> {
        let cursors: Vec<CursorState> = self.store().cursors(mailbox.id).await?.iter().map(CursorState::from).collect();
        let kept: Vec<SubscriptionStatus> =
            self.store().mailbox_subscriptions(mailbox.id).await?.iter().map(SubscriptionStatus::from).collect();
        Ok(change_delivery(self.config(), settings, mailbox, &cursors, &kept, self.config().subscription_clock.now()))
    }

    /// How each mailbox of an organization's overview ([`store::SyncStore::org_sync_overview`])
    /// learns of changes, from what the overview read: no further reads, one clock reading.
    pub fn change_deliveries<'a>(
        &self,
        settings: &Office365Settings,
        mailboxes: impl IntoIterator<Item = &'a MailboxOverview>,
    ) -> Vec<ChangeDelivery> {
        let at = self.config().subscription_clock.now();
        mailboxes
            .into_iter()
            .map(|o| change_delivery(self.config(), settings, &o.status.mailbox, &o.cursors, &o.subscriptions, at))
            .collect()
    }

    fn expiry(&self) -> time::OffsetDateTime {
        let now =
            time::OffsetDateTime::from_unix_timestamp(self.config().subscription_clock.now()).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        now + time::Duration::minutes(self.config().subscription_lifetime_minutes)
    }

    async fn create_subscription(
        &self,
        ctx: &RunCtx,
        resource: Resource,
        container: &str,
    ) -> Result<(microsoft::Subscription, Option<SecretString>), CallFailure> {
        let Some(urls) = &self.config().notification_urls else {
            return Err(CallFailure::Fatal(SyncError::NotConfigured("no notification URL".into())));
        };
        let client = &self.inner.client;
        let client_state = new_client_state();
        let target = SubscriptionTarget { mailbox: &ctx.mref, resource, container: Some(container) };
        let (target, state, expires) = (&target, &client_state, self.expiry());
        let sub = self.graph(ctx, false, |t| async move { client.create_subscription(&t, target, urls, state, expires).await }).await?;
        SyncMetrics::add(&self.inner.metrics.subscriptions_created, 1);
        Ok((sub, Some(client_state)))
    }

    async fn renew_subscription(&self, ctx: &RunCtx, id: &str) -> Result<microsoft::Subscription, CallFailure> {
        let client = &self.inner.client;
        let expires = self.expiry();
        let sub = self.graph(ctx, false, |t| async move { client.renew_subscription(&t, id, expires).await }).await?;
        SyncMetrics::add(&self.inner.metrics.subscriptions_renewed, 1);
        Ok(sub)
    }

    /// Deletes at Microsoft every live subscription of a connection's mailboxes, with the tokens
    /// the organization's mode uses, and forgets them: before the connection is disconnected.
    pub async fn retire_subscriptions(&self, mode: ConnectionMode, org: domain::OrgId, connection: Uuid) -> Result<(), SyncError> {
        for mb in self.store().sync_mailboxes_in_org(org).await?.iter().filter(|m| m.connection_id == connection) {
            self.retire_mailbox_subscriptions(mode, mb).await?;
        }
        Ok(())
    }

    /// Deletes at Microsoft the live subscriptions of one mailbox (no longer synced) and forgets
    /// them. Best effort: one Microsoft will not delete lapses within three days, and its
    /// notifications find no subscription here.
    pub async fn retire_mailbox_subscriptions(&self, mode: ConnectionMode, mailbox: &SyncMailbox) -> Result<(), SyncError> {
        let kind = TokenSource::kind_for(mode, mailbox.org_id, mailbox.connection_id, mailbox.graph_user_id.is_some());
        for s in self.store().mailbox_subscriptions(mailbox.id).await? {
            let Some(id) = s.graph_id() else { continue };
            match self.delete_once(kind, id).await {
                Ok(()) => SyncMetrics::add(&self.inner.metrics.subscriptions_deleted, 1),
                Err(e) => {
                    tracing::info!(mailbox = %mailbox.id, error = %e, "could not delete a change-notification subscription; it lapses by itself")
                }
            }
        }
        self.store().forget_subscriptions(mailbox.id).await?;
        Ok(())
    }

    /// One `DELETE /subscriptions/{id}` outside a lease (nothing else to share limits with).
    async fn delete_once(&self, kind: TokenKind, id: &str) -> Result<(), SyncError> {
        let token = self.tokens().access_token(kind, false).await?;
        self.inner.client.delete_subscription(&token, id).await.map_err(SyncError::Graph)
    }
}

/// A failed subscription's reason and Microsoft's words.
fn failure_words(failure: CallFailure) -> (domain::ReasonCode, String) {
    match failure {
        CallFailure::Fatal(SyncError::Graph(GraphError { reason, message, .. })) => (reason, message),
        CallFailure::Fatal(e) => (e.reason(), String::new()),
        CallFailure::Expired(e) | CallFailure::Unknown(e) => (e.reason, e.message),
        CallFailure::Gone => (domain::ReasonCode::Unexpected, "The resource was not found.".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor(resource: Resource, container: &str, full_round: bool) -> CursorState {
        CursorState { resource, container: container.into(), full_round }
    }

    #[test]
    fn subscriptions_are_wanted_once_a_resources_first_round_is_done() {
        let cursors = [
            cursor(Resource::Mail, "inbox", false),
            cursor(Resource::Mail, "sent", false),
            cursor(Resource::Calendar, "w", true),
            cursor(Resource::Tasks, "list-1", false),
            cursor(Resource::Tasks, "list-2", false),
        ];
        let w = wanted(&Resource::ALL, &cursors);
        let expect: BTreeSet<(Resource, String)> =
            [(Resource::Mail, ""), (Resource::Tasks, "list-1"), (Resource::Tasks, "list-2")].map(|(r, c)| (r, c.to_string())).into();
        assert_eq!(w, expect, "mail once for every folder, tasks per list, calendar not before its first round, contacts never synced");
        assert!(wanted(&[Resource::Contacts], &cursors).is_empty());
    }

    #[test]
    fn change_delivery_is_decided_from_cursor_states_and_subscription_statuses() {
        let cfg = SyncConfig {
            notification_urls: Some(microsoft::NotificationUrls { notification: "https://n".into(), lifecycle: "https://l".into() }),
            ..SyncConfig::default()
        };
        let settings = Office365Settings { resources: vec![Resource::Mail, Resource::Tasks], ..Office365Settings::default() };
        let mailbox = SyncMailbox {
            id: Uuid::nil(),
            org_id: domain::OrgId(Uuid::nil()),
            connection_id: Uuid::nil(),
            user_id: domain::UserId(Uuid::nil()),
            graph_user_id: None,
            paused: None,
            next_due_at: 0,
            lease_owner: None,
            lease_expires_at: 0,
            fence: 1,
            notified: Vec::new(),
        };
        let sub = |resource, container: &str, live_until, failure| SubscriptionStatus {
            resource,
            container: container.into(),
            live_until,
            failure,
        };
        let cursors = [cursor(Resource::Mail, "inbox", false), cursor(Resource::Tasks, "list-1", false)];
        let decide = |cursors: &[CursorState], kept: &[SubscriptionStatus]| change_delivery(&cfg, &settings, &mailbox, cursors, kept, 100);
        let mail_live = sub(Resource::Mail, "", Some(200), None);
        assert_eq!(
            decide(&cursors[..1], std::slice::from_ref(&mail_live)),
            ChangeDelivery::Polling(PollingReason::FirstSync),
            "tasks not yet"
        );
        assert_eq!(decide(&cursors, std::slice::from_ref(&mail_live)), ChangeDelivery::Polling(PollingReason::SettingUp));
        let refused = sub(Resource::Tasks, "list-1", None, Some((domain::ReasonCode::PermissionMissing, "No.".to_string())));
        let failed =
            PollingReason::Failed { resource: Resource::Tasks, reason: domain::ReasonCode::PermissionMissing, detail: "No.".into() };
        assert_eq!(decide(&cursors, &[mail_live.clone(), refused]), ChangeDelivery::Polling(failed));
        let tasks_live = sub(Resource::Tasks, "list-1", Some(101), None);
        assert_eq!(decide(&cursors, &[mail_live.clone(), tasks_live]), ChangeDelivery::Live);
        let lapsed = sub(Resource::Tasks, "list-1", Some(100), None);
        assert_eq!(decide(&cursors, &[mail_live, lapsed]), ChangeDelivery::Polling(PollingReason::SettingUp), "lapsed at 100");
        let no_url = SyncConfig::default();
        let polled = change_delivery(&no_url, &settings, &mailbox, &cursors, &[], 100);
        assert_eq!(polled, ChangeDelivery::Polling(PollingReason::NoHttpsUrl));
    }

    #[test]
    fn subscriptions_are_renewed_a_day_before_they_lapse_and_failures_retried_hourly() {
        let cfg = SyncConfig::default();
        let now = 1_800_000_000;
        let hour = 3600;
        let with = |state| Subscription {
            mailbox_id: Uuid::nil(),
            resource: Resource::Mail,
            container: String::new(),
            state,
            attempted_at: now - 2 * hour,
        };
        let live = |left: i64, renew| {
            with(SubscriptionState::Live { graph_id: "g".into(), client_state: SecretString::from("c"), expires_at: now + left, renew })
        };
        assert_eq!(step(Some(&live(70 * hour, false)), now, &cfg), Step::Keep, "just made");
        assert_eq!(step(Some(&live(25 * hour, false)), now, &cfg), Step::Keep);
        assert_eq!(step(Some(&live(23 * hour, false)), now, &cfg), Step::Renew("g".into()), "within a day of lapsing");
        assert_eq!(step(Some(&live(70 * hour, true)), now, &cfg), Step::Renew("g".into()), "Microsoft asked for reauthorization");
        assert_eq!(step(Some(&live(0, false)), now, &cfg), Step::Create, "lapsed: Microsoft no longer has it");
        assert_eq!(step(None, now, &cfg), Step::Create);
        assert_eq!(step(Some(&with(SubscriptionState::Missing)), now, &cfg), Step::Create, "removed by Microsoft");
        let failed = |ago: i64| Subscription {
            attempted_at: now - ago,
            ..with(SubscriptionState::Failed { reason: domain::ReasonCode::PermissionMissing, detail: String::new() })
        };
        assert_eq!(step(Some(&failed(10 * 60)), now, &cfg), Step::Wait);
        assert_eq!(step(Some(&failed(hour + 1)), now, &cfg), Step::Create);
        // The safety poll of a live mailbox always comes before its subscriptions need renewing.
        assert!(cfg.live_poll_every * 2 < cfg.subscription_renew_before);
        assert!(cfg.subscription_lifetime_minutes <= microsoft::OUTLOOK_SUBSCRIPTION_MAX_MINUTES);
    }

    #[test]
    fn client_states_are_long_random_and_within_microsofts_limit() {
        use microsoft::ExposeSecret;
        let (a, b) = (new_client_state(), new_client_state());
        assert_eq!(a.expose_secret().len(), 64);
        assert_ne!(a.expose_secret(), b.expose_secret());
    }
}
