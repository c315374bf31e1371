//! What the sync engine (`crates/sync`) keeps in the database, behind its own trait so it stays
//! apart from [`crate::Store`]:
//!
//! - **Mailboxes** ([`SyncMailbox`]): a connection's own mailbox (`/me`) or, in service-account mode,
//!   another user's (`/users/{id}`), each owned by the platform user whose data it is; paused with a
//!   reason (poll-primary-only, disabled) or scheduled (`next_due_at`).
//! - **Leases**: [`SyncStore::claim_due_mailboxes`] hands due mailboxes to one worker at a time
//!   (`FOR UPDATE SKIP LOCKED` on PostgreSQL), each claim with a new **fencing token**; a lease is
//!   renewed while work goes on, taken over when it expired, and released with the next due time.
//!   Lease times (expiry at claim and renewal, the "has it expired" check of a takeover) come from
//!   the **database's clock**, never an instance's: an instance whose clock runs ahead does not take
//!   over live leases.
//! - **Cursors** per mailbox, resource and container, and **items** with the fields the product
//!   shows. [`SyncStore::commit_page`] writes one page of changes and the new cursor in ONE
//!   transaction, and writes nothing when the fence is stale (the worker lost its lease).
//! - **Resync without duplicates**: items are upserted by Graph id; a 410 starts a new full round
//!   ([`SyncStore::reset_cursor`]), and only when that round completes are the items it did not
//!   see removed.
//! - **Status** per mailbox and resource (last success, next due, last error, throttled until,
//!   first-sync progress, and the number of items, kept by every write to the items in the same
//!   transaction, never counted on a read), read for a whole organization at once
//!   ([`SyncStore::org_sync_overview`]), and the **Activity** page's item listing.
//! - **Tokens** of a connection: read them unsealed (with their **version**), save a refreshed access
//!   token together with the rotated refresh token, mark the connection as needing attention. Both
//!   writes are compare-and-set on the version read, and a reconnect bumps it: a refresh or a mark
//!   racing another instance's refresh or a reconnect never overwrites newer tokens.

use crate::secrets::SecretString;
use crate::{StoreError, UnixTime};
use async_trait::async_trait;
use domain::{OrgId, PauseReason, ReasonCode, Resource, SyncState, UserId};
use uuid::Uuid;

/// A mailbox to schedule (idempotent on `(connection_id, graph_user_id)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSyncMailbox {
    pub org_id: OrgId,
    pub connection_id: Uuid,
    /// The platform user whose data this is (shown on their /activity).
    pub user_id: UserId,
    /// `None`: the connection's own mailbox (`/me`). `Some(id)`: `/users/{id}`.
    pub graph_user_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncMailbox {
    pub id: Uuid,
    pub org_id: OrgId,
    pub connection_id: Uuid,
    pub user_id: UserId,
    pub graph_user_id: Option<String>,
    pub paused: Option<PauseReason>,
    pub next_due_at: UnixTime,
    pub lease_owner: Option<String>,
    pub lease_expires_at: UnixTime,
    pub fence: i64,
    /// Resources Microsoft said changed (change notifications) that this lease's run must sync,
    /// even when the mailbox is not due by time; empty outside a lease.
    pub notified: Vec<Resource>,
}

/// A claimed mailbox: the worker may write while its lease holds, always with this `fence`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub mailbox: SyncMailbox,
    pub fence: i64,
    pub expires_at: UnixTime,
    /// The previous lease had expired without being released (its worker died or stalled).
    pub taken_over: bool,
    /// The mailbox had writes to perform when it was claimed. One recorded later makes the
    /// mailbox due again, so a run that saw none need not look.
    pub writes_waiting: bool,
    /// The mailbox had change-notification subscriptions when it was claimed. Only the lease's
    /// holder makes them, so a run that saw none has none until it makes one.
    pub has_subscriptions: bool,
}

/// A delta cursor: where the next page of (mailbox, resource, container) starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncCursor {
    pub resource: Resource,
    pub container: String,
    /// `None`: start a full round from the beginning.
    pub link: Option<String>,
    /// The link is a deltaLink (the last round completed) rather than a nextLink.
    pub link_is_delta: bool,
    /// Full-round counter (grows on every reset).
    pub round: i64,
    /// This round started from scratch (first sync or after a reset): when it completes, items it
    /// did not see are removed.
    pub full_round: bool,
}

/// An item as stored: what the Activity page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncedItem {
    pub graph_id: String,
    /// Mail folder, contact folder or list id; '' for events.
    pub container: String,
    /// Subject, event subject, contact name, task title.
    pub title: String,
    /// Sender, organizer, email address, task status.
    pub subtitle: String,
    /// Body preview, location, company, importance.
    pub preview: String,
    /// Received, event start, task due or created, unix seconds; orders the Activity page.
    pub occurred_at: Option<UnixTime>,
    /// The shown fields as JSON, for the detail view.
    pub data: String,
}

impl SyncedItem {
    /// What text search matches: title, subtitle, preview, lower case.
    pub fn search_text(&self) -> String {
        format!("{}\n{}\n{}", self.title, self.subtitle, self.preview).to_lowercase()
    }
}

/// How a page ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CursorUpdate {
    /// More pages in this round.
    NextLink(String),
    /// The round completed; the next one starts here.
    DeltaLink(String),
}

impl CursorUpdate {
    /// The link to store and whether it ends the round.
    pub fn link(&self) -> (&str, bool) {
        match self {
            CursorUpdate::NextLink(l) => (l, false),
            CursorUpdate::DeltaLink(l) => (l, true),
        }
    }
}

/// One page of changes for one cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageCommit {
    pub mailbox_id: Uuid,
    pub fence: i64,
    pub resource: Resource,
    pub container: String,
    pub upserts: Vec<SyncedItem>,
    /// Graph ids removed from this container.
    pub deletes: Vec<String>,
    pub cursor: CursorUpdate,
    pub now: UnixTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    Committed {
        /// Items removed because a completed full round did not see them.
        swept: u64,
    },
    /// The fence is stale: another worker holds the mailbox now. Nothing was written.
    LeaseLost,
}

/// Health of one resource of one mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceStatus {
    pub resource: Resource,
    pub last_success_at: Option<UnixTime>,
    pub last_error: Option<ReasonCode>,
    pub last_error_at: Option<UnixTime>,
    pub throttled_until: Option<UnixTime>,
    pub items: u64,
    pub first_sync_done: bool,
    /// During a first sync: the estimated number of items (mail folders report totals).
    pub estimated_total: Option<u64>,
}

impl ResourceStatus {
    /// `(items so far, estimated total)` while a first sync runs and a total is known.
    pub fn progress(&self) -> Option<(u64, u64)> {
        match (self.first_sync_done, self.estimated_total) {
            (false, Some(total)) => Some((self.items.min(total), total)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxStatus {
    pub mailbox: SyncMailbox,
    pub resources: Vec<ResourceStatus>,
}

impl MailboxStatus {
    pub fn state(&self, now: UnixTime) -> SyncState {
        if let Some(p) = self.mailbox.paused {
            return SyncState::Paused(p);
        }
        if self.mailbox.lease_owner.is_some() && self.mailbox.lease_expires_at >= now {
            return SyncState::Syncing;
        }
        if let Some(until) = self.resources.iter().filter_map(|r| r.throttled_until).filter(|t| *t > now).max() {
            return SyncState::Throttled { until };
        }
        if let Some(reason) = self.resources.iter().filter(|r| r.last_error_at >= r.last_success_at).find_map(|r| r.last_error) {
            return SyncState::Failed(reason);
        }
        if self.resources.is_empty() || self.resources.iter().any(|r| !r.first_sync_done) {
            return SyncState::Waiting;
        }
        SyncState::UpToDate
    }

    /// The last time every resource had synced successfully, if all have.
    pub fn last_success_at(&self) -> Option<UnixTime> {
        self.resources.iter().map(|r| r.last_success_at).collect::<Option<Vec<_>>>()?.into_iter().min()
    }
}

/// Which of an organization's mailboxes [`SyncStore::org_sync_overview`] reads; the database
/// does the filtering.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailboxFilter {
    /// Only this connection's mailboxes.
    pub connection: Option<Uuid>,
    /// Only the mailboxes whose data is this person's.
    pub user: Option<UserId>,
    /// Only the mailboxes that sync (not paused).
    pub synced_only: bool,
}

/// A cursor as change delivery judges it: which resource and container, and whether a round
/// started from scratch is still running there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorState {
    pub resource: Resource,
    pub container: String,
    pub full_round: bool,
}

impl From<&SyncCursor> for CursorState {
    fn from(c: &SyncCursor) -> CursorState {
        CursorState { resource: c.resource, container: c.container.clone(), full_round: c.full_round }
    }
}

/// A change-notification subscription as the status pages show it: live until when, or why it
/// failed; never its client state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionStatus {
    pub resource: Resource,
    pub container: String,
    /// Microsoft's subscription exists and expires then.
    pub live_until: Option<UnixTime>,
    /// Not live: the last attempt failed with this reason and Microsoft's words.
    pub failure: Option<(ReasonCode, String)>,
}

impl SubscriptionStatus {
    /// Live and not yet expired at `now`.
    pub fn is_live(&self, now: UnixTime) -> bool {
        self.live_until.is_some_and(|t| t > now)
    }
}

impl From<&crate::subscriptions::Subscription> for SubscriptionStatus {
    fn from(s: &crate::subscriptions::Subscription) -> SubscriptionStatus {
        use crate::subscriptions::SubscriptionState;
        let (live_until, failure) = match &s.state {
            SubscriptionState::Live { expires_at, .. } => (Some(*expires_at), None),
            SubscriptionState::Failed { reason, detail } => (None, Some((*reason, detail.clone()))),
            SubscriptionState::Missing => (None, None),
        };
        SubscriptionStatus { resource: s.resource, container: s.container.clone(), live_until, failure }
    }
}

/// One mailbox as My Connection, Profile, Team connections and Activity show it: its status per
/// resource and what its change delivery is judged by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxOverview {
    pub status: MailboxStatus,
    /// One per subscription target: a resource as a whole (container `""`: its folders or
    /// calendars taken together, `full_round` when any of them is in a round from scratch), and
    /// each To Do list on its own. [`CursorState`]s of single cursors judge change delivery alike.
    pub cursors: Vec<CursorState>,
    pub subscriptions: Vec<SubscriptionStatus>,
}

impl MailboxOverview {
    /// A mailbox with nothing known of it yet.
    pub fn new(mailbox: SyncMailbox) -> MailboxOverview {
        MailboxOverview { status: MailboxStatus { mailbox, resources: Vec::new() }, cursors: Vec::new(), subscriptions: Vec::new() }
    }
}

/// What the Activity page asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemQuery {
    pub org_id: OrgId,
    pub user_id: UserId,
    pub resource: Option<Resource>,
    /// Case-insensitive substring of title, subtitle or preview.
    pub text: Option<String>,
    pub offset: u32,
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityItem {
    pub resource: Resource,
    pub item: SyncedItem,
}

/// A connection's tokens, unsealed, for the sync engine only.
#[derive(Debug, Clone)]
pub struct ConnectionTokens {
    pub connection_id: Uuid,
    pub org_id: OrgId,
    pub ms_tenant_id: String,
    pub access_token: SecretString,
    pub access_expires_at: UnixTime,
    pub refresh_token: Option<SecretString>,
    pub needs_attention: bool,
    /// The tokens' version: every token write is compare-and-set on it (see
    /// [`SyncStore::save_refreshed_tokens`]); a reconnect bumps it.
    pub version: i64,
}

#[async_trait]
pub trait SyncStore: Send + Sync + 'static {
    // ---- mailboxes and scheduling

    /// Schedules a mailbox (due now); returns the existing one when already scheduled.
    async fn ensure_sync_mailbox(&self, new: &NewSyncMailbox, now: UnixTime) -> Result<SyncMailbox, StoreError>;
    async fn sync_mailbox(&self, id: Uuid) -> Result<Option<SyncMailbox>, StoreError>;
    async fn sync_mailboxes_in_org(&self, org: OrgId) -> Result<Vec<SyncMailbox>, StoreError>;
    /// Every organization with at least one connection (so with a schedule to keep right), each
    /// once: the scheduler's periodic pass reconciles them one by one.
    async fn orgs_with_connections(&self) -> Result<Vec<OrgId>, StoreError>;
    /// Pauses (with a reason) or resumes (`None`, due now) a mailbox.
    async fn set_mailbox_paused(&self, id: Uuid, paused: Option<PauseReason>, now: UnixTime) -> Result<(), StoreError>;
    /// Unschedules a mailbox and forgets its cursors and items.
    async fn remove_sync_mailbox(&self, id: Uuid) -> Result<bool, StoreError>;
    /// "Sync now": due immediately (a running lease is not disturbed).
    async fn request_sync_now(&self, id: Uuid) -> Result<(), StoreError>;

    // ---- leases

    /// Claims up to `limit` mailboxes due at `now` (unpaused, of active connections) whose lease is
    /// free or expired, for `owner`, for `ttl_secs`. Never hands one mailbox to two claimers.
    /// Whether a lease has expired, and the new lease's expiry, are decided by the **database's
    /// clock**, not `now`: an instance whose clock runs ahead does not take over live leases.
    async fn claim_due_mailboxes(&self, owner: &str, now: UnixTime, ttl_secs: i64, limit: u32) -> Result<Vec<Lease>, StoreError>;
    /// The earliest due time of a mailbox the claim could take once that time comes (unpaused, of
    /// an active connection, with no lease held): the scheduler sleeps until then rather than
    /// polling for it. `None` when nothing is scheduled.
    async fn next_due_at(&self) -> Result<Option<UnixTime>, StoreError>;
    /// Extends a lease still held with `fence` to `ttl_secs` from now by the database's clock;
    /// false when it was lost.
    async fn renew_lease(&self, mailbox: Uuid, fence: i64, ttl_secs: i64) -> Result<bool, StoreError>;
    /// Ends a lease and schedules the next sync; false when the lease was already lost.
    async fn release_lease(&self, mailbox: Uuid, fence: i64, next_due_at: UnixTime) -> Result<bool, StoreError>;

    // ---- cursors and items

    async fn cursors(&self, mailbox: Uuid) -> Result<Vec<SyncCursor>, StoreError>;
    /// Writes a page of changes and its cursor in one transaction, or nothing when `fence` is
    /// stale. When the cursor becomes a deltaLink at the end of a full round, items of this
    /// container the round did not see are removed.
    async fn commit_page(&self, page: &PageCommit) -> Result<CommitOutcome, StoreError>;
    /// After a 410: the cursor restarts with a new full round (items stay until it completes).
    async fn reset_cursor(
        &self,
        mailbox: Uuid,
        fence: i64,
        resource: Resource,
        container: &str,
        now: UnixTime,
    ) -> Result<CommitOutcome, StoreError>;
    /// A container disappeared (folder deleted): its cursor and items go.
    async fn drop_container(&self, mailbox: Uuid, fence: i64, resource: Resource, container: &str) -> Result<CommitOutcome, StoreError>;

    /// The quiet end of a run, in one transaction: each of `links` (a page that brought nothing
    /// and ended an incremental round) moves its container's link on, and each of `succeeded`
    /// is recorded as a completed pass at `now`; nothing (`LeaseLost`) when `fence` is stale.
    async fn commit_quiet(
        &self,
        mailbox: Uuid,
        fence: i64,
        links: &[PageCommit],
        succeeded: &[Resource],
        now: UnixTime,
    ) -> Result<CommitOutcome, StoreError>;

    // ---- status

    /// Records a failure (reason code) and, when throttled, until when; nothing (`LeaseLost`) when
    /// `fence` is stale: a worker that lost its lease cannot overwrite the status.
    async fn record_resource_error(
        &self,
        mailbox: Uuid,
        fence: i64,
        resource: Resource,
        reason: ReasonCode,
        throttled_until: Option<UnixTime>,
        now: UnixTime,
    ) -> Result<CommitOutcome, StoreError>;
    /// The estimated total of a first sync (sum of the containers' item counts).
    async fn set_estimated_total(&self, mailbox: Uuid, resource: Resource, total: Option<u64>) -> Result<(), StoreError>;
    /// A mailbox's status per resource, with the item counts kept as pages commit.
    async fn mailbox_status(&self, mailbox: Uuid) -> Result<Option<MailboxStatus>, StoreError>;
    /// Every mailbox of an organization that `filter` selects (the database filters), oldest
    /// first, each with its status per resource (item counts included), its cursors' first-round
    /// state and its subscriptions: what the status pages show, in the same three statements
    /// however many mailboxes there are.
    async fn org_sync_overview(&self, org: OrgId, filter: &MailboxFilter) -> Result<Vec<MailboxOverview>, StoreError>;

    // ---- reading items

    /// The Activity page: newest first, optional resource and text filter, paged.
    async fn activity_items(&self, q: &ItemQuery) -> Result<Vec<ActivityItem>, StoreError>;
    /// Every stored item of a mailbox and resource (tests and the benchmark compare with Graph).
    async fn mailbox_items(&self, mailbox: Uuid, resource: Resource) -> Result<Vec<SyncedItem>, StoreError>;
    /// One stored item of a mailbox by its Graph id (what a reply, a cancel or an edit names).
    async fn mailbox_item(&self, mailbox: Uuid, resource: Resource, graph_id: &str) -> Result<Option<SyncedItem>, StoreError>;

    // ---- tokens

    async fn connection_tokens(&self, connection: Uuid) -> Result<Option<ConnectionTokens>, StoreError>;
    /// Saves a refreshed access token and the rotated refresh token together (one statement), only
    /// while the stored tokens are still of `version` (the one the refresh started from); then the
    /// version grows and the connection is active (the refresh proved the grant alive, whatever a
    /// racing refresh of the same tokens concluded). False, writing nothing, when another writer
    /// (another instance's refresh, a reconnect) got there first: re-read and use its tokens.
    async fn save_refreshed_tokens(
        &self,
        connection: Uuid,
        version: i64,
        access_token: &SecretString,
        access_expires_at: UnixTime,
        refresh_token: Option<&SecretString>,
        now: UnixTime,
    ) -> Result<bool, StoreError>;
    /// The connection needs someone to act (`reason` says who); the scheduler skips it until it is
    /// reconnected (`save_connection` makes it active again). Only while its tokens are still of
    /// `version` (the ones found wanting); false, marking nothing, when newer tokens were saved.
    async fn mark_connection_needs_attention(
        &self,
        connection: Uuid,
        version: i64,
        reason: ReasonCode,
        now: UnixTime,
    ) -> Result<bool, StoreError>;
}

/// The stored bit of each resource in `pending_resources` / `claimed_resources`.
pub fn resource_bit(resource: Resource) -> i64 {
    match resource {
        Resource::Mail => 1,
        Resource::Calendar => 2,
        Resource::Contacts => 4,
        Resource::Tasks => 8,
    }
}

/// The resources whose bits are set.
pub fn resources_of_bits(bits: i64) -> Vec<Resource> {
    Resource::ALL.into_iter().filter(|r| bits & resource_bit(*r) != 0).collect()
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
pub(crate) fn like_pattern(text: &str) -> String {
    let mut out = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
        assert_eq!(like_pattern("Hello"), "%hello%");
    }

    #[test]
    fn a_mailbox_state_is_derived_from_its_lease_and_resources() {
        let mailbox = SyncMailbox {
            id: Uuid::nil(),
            org_id: OrgId(Uuid::nil()),
            connection_id: Uuid::nil(),
            user_id: UserId(Uuid::nil()),
            graph_user_id: None,
            paused: None,
            next_due_at: 0,
            lease_owner: None,
            lease_expires_at: 0,
            fence: 1,
            notified: Vec::new(),
        };
        let res = |first_sync_done, last_error: Option<ReasonCode>, throttled_until| ResourceStatus {
            resource: Resource::Mail,
            last_success_at: Some(10),
            last_error,
            last_error_at: last_error.map(|_| 20),
            throttled_until,
            items: 1,
            first_sync_done,
            estimated_total: None,
        };
        let mut st = MailboxStatus { mailbox, resources: vec![] };
        assert_eq!(st.state(100), SyncState::Waiting);
        st.resources = vec![res(true, None, None)];
        assert_eq!(st.state(100), SyncState::UpToDate);
        assert_eq!(st.last_success_at(), Some(10));
        st.resources = vec![res(true, Some(ReasonCode::Throttled), Some(200))];
        assert_eq!(st.state(100), SyncState::Throttled { until: 200 });
        assert_eq!(st.state(300), SyncState::Failed(ReasonCode::Throttled));
        st.mailbox.lease_owner = Some("w".into());
        st.mailbox.lease_expires_at = 150;
        assert_eq!(st.state(100), SyncState::Syncing);
        st.mailbox.paused = Some(PauseReason::PollPrimaryOnly);
        assert_eq!(st.state(100), SyncState::Paused(PauseReason::PollPrimaryOnly));
    }

    #[test]
    fn resource_bits_round_trip() {
        let bits = resource_bit(Resource::Mail) | resource_bit(Resource::Tasks);
        assert_eq!(resources_of_bits(bits), vec![Resource::Mail, Resource::Tasks]);
        assert_eq!(resources_of_bits(0), Vec::<Resource>::new());
        let all = Resource::ALL.iter().fold(0, |b, r| b | resource_bit(*r));
        assert_eq!(resources_of_bits(all), Resource::ALL.to_vec());
        assert_eq!(all.count_ones(), 4, "one bit each");
    }

    #[test]
    fn names_round_trip() {
        for r in Resource::ALL {
            assert_eq!(Resource::parse(r.as_str()), Some(r));
        }
        for p in [PauseReason::PollPrimaryOnly, PauseReason::Disabled] {
            assert_eq!(PauseReason::parse(p.as_str()), Some(p));
        }
    }
}
