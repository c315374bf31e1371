//! The write outbox (PRODUCT.md "Read-write features"): a write is recorded here with the writer's
//! idempotency key before anything reaches Microsoft, performed by the worker holding the mailbox's
//! lease (its steps and outcome written under that lease's fence), and shown on Activity until the
//! synced item it made replaces it.

use crate::sync::CommitOutcome;
use crate::{StoreError, UnixTime};
use async_trait::async_trait;
use domain::{AuditEntry, OrgId, UserId, WriteRequest, WriteState};
use uuid::Uuid;

/// A write to record.
#[derive(Debug, Clone)]
pub struct NewWrite {
    pub org_id: OrgId,
    /// The synced mailbox it writes to (its worker performs it).
    pub mailbox_id: Uuid,
    /// Who asked.
    pub user_id: UserId,
    /// Who asked, as the audit log names them.
    pub actor: String,
    /// The composer's key: the same key again (a double click, a retried request) is the same write.
    pub key: String,
    pub request: WriteRequest,
    /// What Activity shows for it: a subject, a title or a name, never a body.
    pub headline: String,
    pub now: UnixTime,
}

/// A recorded write.
#[derive(Debug, Clone)]
pub struct OutboxWrite {
    pub id: Uuid,
    pub org_id: OrgId,
    pub mailbox_id: Uuid,
    pub user_id: UserId,
    pub actor: String,
    pub key: String,
    pub request: WriteRequest,
    /// A subject or title, never the body.
    pub headline: String,
    /// What a multi-step write already made at Microsoft (a draft's id).
    pub step: Option<String>,
    pub state: WriteState,
    /// Throttled: not before this time.
    pub not_before: UnixTime,
    /// Calls that may have reached Microsoft: after one, a retry looks before making anything.
    pub attempts: i64,
    pub created_at: UnixTime,
}

#[async_trait]
pub trait WriteStore: Send + Sync + 'static {
    /// Records a write (and makes its mailbox's resource due), or returns the one already recorded
    /// with this user's key; `true` when it is new. `None` when the organization has no such mailbox.
    async fn record_write(&self, new: &NewWrite) -> Result<Option<(OutboxWrite, bool)>, StoreError>;
    async fn write_by_id(&self, id: Uuid) -> Result<Option<OutboxWrite>, StoreError>;
    /// The mailbox's writes still to perform, oldest first.
    async fn pending_writes(&self, mailbox: Uuid) -> Result<Vec<OutboxWrite>, StoreError>;
    /// Before a call that may reach Microsoft: one more attempt, and what the write has made so
    /// far (`step`, kept when `None`); only while `fence` holds.
    async fn note_write_attempt(
        &self,
        mailbox: Uuid,
        fence: i64,
        id: Uuid,
        step: Option<&str>,
        now: UnixTime,
    ) -> Result<CommitOutcome, StoreError>;
    /// Microsoft said to wait: not before `until`; only while `fence` holds.
    async fn hold_write(&self, mailbox: Uuid, fence: i64, id: Uuid, until: UnixTime) -> Result<CommitOutcome, StoreError>;
    /// The outcome, with its audit entry in the same transaction; only while `fence` holds.
    async fn finish_write(
        &self,
        mailbox: Uuid,
        fence: i64,
        id: Uuid,
        outcome: &WriteState,
        audit: &AuditEntry,
        now: UnixTime,
    ) -> Result<CommitOutcome, StoreError>;
    /// The user's writes Activity shows, newest first: pending and failed ones recorded since
    /// `since`, and ones done since `done_since` whose item the sync has not brought in yet (then
    /// the synced row alone is shown; a cancel, whose event is gone, shows until `done_since`).
    async fn writes_shown(&self, org: OrgId, user: UserId, since: UnixTime, done_since: UnixTime) -> Result<Vec<OutboxWrite>, StoreError>;
}
