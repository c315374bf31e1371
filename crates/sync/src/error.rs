//! What can stop a mailbox's sync run.

use domain::{ReasonCode, Resource};
use microsoft::{GraphError, MicrosoftError};
use store::{StoreError, UnixTime};

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Another worker holds the mailbox now (the fencing token is stale): nothing more is written.
    #[error("the lease on this mailbox was lost")]
    LeaseLost,
    /// Someone must act (reconnect, licence, access, consent); not retried until they have.
    #[error("needs attention: {0:?}")]
    NeedsAttention(ReasonCode),
    /// Microsoft asked to wait longer than a worker waits in place: resume at this time.
    #[error("throttled until {0}")]
    Throttled(UnixTime),
    /// Graph kept failing (transient faults beyond the retry budget, or an unexpected answer).
    #[error("Graph: {0}")]
    Graph(GraphError),
    /// The token endpoint is unavailable; retried later.
    #[error("Microsoft sign-in: {0}")]
    Token(MicrosoftError),
    /// The organization's Office 365 settings are incomplete (no client id, secret or tenant).
    #[error("the Office 365 integration is not configured: {0}")]
    NotConfigured(String),
    /// A container's delta paging did not end within [`crate::SyncConfig::max_delta_pages_per_run`]
    /// pages: Graph is chaining nextLinks forever. The pages committed stay, each with its nextLink,
    /// so the next run goes on from the last one.
    #[error("Graph's {} delta did not end after {pages} pages in one run; the next run goes on from the last page saved", resource.as_str())]
    PagingDidNotEnd { resource: Resource, pages: u32 },
}

impl SyncError {
    /// The reason code shown on the connection's status for this failure.
    /// A failure that passes by itself (Microsoft or the database briefly unavailable): tried again
    /// after a backoff with jitter, not after a flat wait.
    pub fn is_transient(&self) -> bool {
        match self {
            SyncError::Store(_) => true,
            SyncError::Graph(e) => e.reason.is_transient(),
            SyncError::Token(e) => e.reason().is_transient(),
            _ => false,
        }
    }

    pub fn reason(&self) -> ReasonCode {
        match self {
            SyncError::NeedsAttention(r) => *r,
            SyncError::Throttled(_) => ReasonCode::Throttled,
            SyncError::Graph(e) => e.reason,
            SyncError::Token(e) => e.reason(),
            SyncError::Store(_) | SyncError::LeaseLost | SyncError::NotConfigured(_) | SyncError::PagingDidNotEnd { .. } => {
                ReasonCode::Unexpected
            }
        }
    }
}
