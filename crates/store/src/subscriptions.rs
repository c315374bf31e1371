//! Change-notification subscriptions and the notifications they bring (crates/sync keeps the
//! subscriptions, the server's notification endpoint marks changes):
//!
//! - A [`Subscription`] per mailbox, resource and container (To Do lists one by one): live with
//!   Microsoft's id, its sealed `clientState` and expiry, or failing with a reason, or gone (to be
//!   created again). The worker holding the mailbox's lease writes them, fenced like its pages.
//! - A notification, on any instance, looks its subscription up by Microsoft's id
//!   ([`SubscriptionStore::subscription_by_graph_id`]) and marks the resource changed
//!   ([`SubscriptionStore::note_changes`]): the mailbox is due at once, whoever holds its lease.

use crate::secrets::SecretString;
use crate::sync::CommitOutcome;
use crate::{StoreError, UnixTime};
use async_trait::async_trait;
use domain::{ReasonCode, Resource};
use uuid::Uuid;

/// Where one subscription stands.
#[derive(Debug, Clone)]
pub enum SubscriptionState {
    /// Microsoft sends notifications until `expires_at`; `renew` when it asked for reauthorization.
    Live { graph_id: String, client_state: SecretString, expires_at: UnixTime, renew: bool },
    /// The last attempt to create or renew it failed: `reason`, with Microsoft's words in `detail`.
    Failed { reason: ReasonCode, detail: String },
    /// None at Microsoft now (it removed it, or it was never made): create one.
    Missing,
}

/// One subscription the product keeps.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub mailbox_id: Uuid,
    pub resource: Resource,
    /// '' except To Do lists, watched one by one.
    pub container: String,
    pub state: SubscriptionState,
    /// When it was last created, renewed or tried.
    pub attempted_at: UnixTime,
}

impl Subscription {
    /// Microsoft's id, while it is live.
    pub fn graph_id(&self) -> Option<&str> {
        match &self.state {
            SubscriptionState::Live { graph_id, .. } => Some(graph_id),
            _ => None,
        }
    }

    /// Live and not yet expired at `now`.
    pub fn is_live(&self, now: UnixTime) -> bool {
        matches!(self.state, SubscriptionState::Live { expires_at, .. } if expires_at > now)
    }
}

/// What a lifecycle notification asks (MICROSOFT.md §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionFlag {
    /// `reauthorizationRequired`: renew it on the next run.
    Renew,
    /// `subscriptionRemoved`: Microsoft deleted it; create it again.
    Removed,
}

#[async_trait]
pub trait SubscriptionStore: Send + Sync + 'static {
    /// Every subscription kept for a mailbox.
    async fn mailbox_subscriptions(&self, mailbox: Uuid) -> Result<Vec<Subscription>, StoreError>;
    /// Creates or replaces the row of `(mailbox, resource, container)`, only while `fence` holds.
    async fn save_subscription(&self, fence: i64, subscription: &Subscription, now: UnixTime) -> Result<CommitOutcome, StoreError>;
    /// Forgets one subscription, only while `fence` holds.
    async fn remove_subscription(
        &self,
        mailbox: Uuid,
        fence: i64,
        resource: Resource,
        container: &str,
        now: UnixTime,
    ) -> Result<CommitOutcome, StoreError>;
    /// Forgets every subscription of a mailbox, whoever holds its lease (after they were deleted at
    /// Microsoft, or could not be); returns how many.
    async fn forget_subscriptions(&self, mailbox: Uuid) -> Result<u64, StoreError>;
    /// The live subscription with Microsoft's id `graph_id`, client state unsealed.
    async fn subscription_by_graph_id(&self, graph_id: &str) -> Result<Option<Subscription>, StoreError>;
    /// A lifecycle event for the subscription `graph_id`; false when there is none by that id.
    async fn flag_subscription(&self, graph_id: &str, flag: SubscriptionFlag) -> Result<bool, StoreError>;
    /// Microsoft said these resources of the mailbox changed: it is due at once (coalesced: bits
    /// already set stay set); false when there is no such mailbox.
    async fn note_changes(&self, mailbox: Uuid, resources: &[Resource]) -> Result<bool, StoreError>;
}
