//! Change notifications arriving from Microsoft (MICROSOFT.md §4.3): which mailbox and resource
//! changed, checked against the subscription's `clientState`, and marked due in the store so the
//! instance holding that mailbox's lease — this one or another — syncs it. No Graph call is made
//! here: Microsoft wants an answer within 3 seconds, and nothing in a notification can make the
//! server call anywhere.

use crate::{Error, Integration, Result};
use microsoft::{ChangeNotification, ChangeNotifications, ExposeSecret, secrets_match};
use std::sync::atomic::AtomicU64;
use store::subscriptions::{Subscription, SubscriptionFlag, SubscriptionState};
use sync::SyncMetrics;

/// What a batch of notifications did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NotificationOutcome {
    /// Items from a known subscription with its `clientState`: acted on.
    pub accepted: usize,
    /// Items from an unknown subscription or with another `clientState`: nothing changed.
    pub ignored: usize,
}

/// What a lifecycle event asks of the product.
fn lifecycle_flag(event: &str) -> Option<Option<SubscriptionFlag>> {
    match event {
        "reauthorizationRequired" => Some(Some(SubscriptionFlag::Renew)),
        "subscriptionRemoved" => Some(Some(SubscriptionFlag::Removed)),
        // Notifications were lost: a delta round catches up.
        "missed" => Some(None),
        _ => None,
    }
}

impl Integration {
    /// A POST to the notification URL: each item from a subscription this product keeps, with
    /// its `clientState`, makes that mailbox's resource due now (bursts coalesce into one run).
    /// A body that is not Microsoft's shape is refused (400); items that do not check out are
    /// ignored and counted, changing nothing.
    pub async fn receive_change_notifications(&self, body: &[u8]) -> Result<NotificationOutcome> {
        let mut outcome = NotificationOutcome::default();
        for item in self.parse(body)?.value {
            match self.verified(&item).await? {
                Some(s) => {
                    self.store.note_changes(s.mailbox_id, &[s.resource]).await?;
                    outcome.accepted += 1;
                }
                None => outcome.ignored += 1,
            }
        }
        self.count(&outcome, |m| &m.notifications_received);
        if outcome.accepted > 0 {
            self.scheduler.wake();
        }
        Ok(outcome)
    }

    /// A POST to the lifecycle URL: `reauthorizationRequired` renews the subscription on the
    /// mailbox's next run, `subscriptionRemoved` makes it again, and both, like `missed`, run a
    /// delta round of the resource at once.
    pub async fn receive_lifecycle_notifications(&self, body: &[u8]) -> Result<NotificationOutcome> {
        let mut outcome = NotificationOutcome::default();
        for item in self.parse(body)?.value {
            let flag = item.lifecycle_event.as_deref().and_then(lifecycle_flag);
            let (Some(flag), Some(s)) = (flag, self.verified(&item).await?) else {
                outcome.ignored += 1;
                continue;
            };
            tracing::info!(mailbox = %s.mailbox_id, resource = s.resource.as_str(), event = ?item.lifecycle_event, "lifecycle notification");
            if let Some(flag) = flag {
                self.store.flag_subscription(&item.subscription_id, flag).await?;
            }
            self.store.note_changes(s.mailbox_id, &[s.resource]).await?;
            outcome.accepted += 1;
        }
        self.count(&outcome, |m| &m.lifecycle_events);
        if outcome.accepted > 0 {
            self.scheduler.wake();
        }
        Ok(outcome)
    }

    /// The live subscription an item names, when its `clientState` is that subscription's
    /// (compared in constant time).
    async fn verified(&self, item: &ChangeNotification) -> Result<Option<Subscription>> {
        let Some(s) = self.store.subscription_by_graph_id(&item.subscription_id).await? else {
            return Ok(None);
        };
        let SubscriptionState::Live { client_state, .. } = &s.state else {
            return Ok(None);
        };
        let matches = item.client_state.as_deref().is_some_and(|got| secrets_match(got, client_state.expose_secret()));
        Ok(matches.then_some(s))
    }

    /// Microsoft's `{"value": [...]}`; anything else is refused (400) and counted as ignored.
    fn parse(&self, body: &[u8]) -> Result<ChangeNotifications> {
        serde_json::from_slice(body).map_err(|_| {
            SyncMetrics::add(&self.scheduler.engine().metrics().notifications_ignored, 1);
            Error::Invalid("This is not a Microsoft Graph change notification.".into())
        })
    }

    fn count(&self, outcome: &NotificationOutcome, accepted: impl Fn(&SyncMetrics) -> &AtomicU64) {
        let metrics = self.scheduler.engine().metrics();
        SyncMetrics::add(accepted(&metrics), outcome.accepted as u64);
        SyncMetrics::add(&metrics.notifications_ignored, outcome.ignored as u64);
        if outcome.ignored > 0 {
            tracing::info!(ignored = outcome.ignored, "ignored change notifications that did not match a subscription");
        }
    }
}
