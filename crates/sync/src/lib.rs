//! # The Microsoft Graph sync engine
//!
//! Keeps each connected mailbox's mail, calendar events, contacts and To Do tasks in the database,
//! correctly and within Microsoft's limits (PRODUCT.md "Sync", ARCHITECTURE.md's state machine,
//! MICROSOFT.md §3–§4). Nothing here knows Leptos or the server; the server wires it in:
//!
//! ```text
//! let store = store::open(url, keyring).await?;         // one handle: Store + SyncStore
//! let engine = sync::Engine::new(store.clone(), microsoft_client, sync::SyncConfig::default());
//! let scheduler = sync::Scheduler::new(engine);
//! scheduler.clone().spawn(shutdown_rx);                 // the workers, in every instance
//! scheduler.reconcile_org(org).await?;                  // after connect / disconnect / settings saved /
//!                                                       // service account users changed; the loop
//!                                                       // re-runs it every `reconcile_every`
//! scheduler.sync_now(mailbox_id).await?;                // "Sync now"
//! scheduler.engine().metrics().snapshot();              // /metrics
//! store.mailbox_status(mailbox_id).await?;              // My Connection, Team connections, progress bars
//! store.activity_items(&query).await?;                  // /activity
//! ```
//!
//! - **Scheduler** ([`Scheduler`]): claims due mailboxes through the store with a lease and a
//!   fencing token, renews the lease while working, releases it with the next due time; stale
//!   leases are taken over by any instance; a worker that lost its lease writes nothing. It alone
//!   keeps the schedule right: [`Scheduler::reconcile_org`] decides which mailboxes exist (members'
//!   connections, service account users) and which are paused, and its loop re-runs that for every
//!   organization, so a reconcile that failed heals by itself.
//! - **Delta engines** ([`Engine`]): per resource and container, each with its own cursor; a page and
//!   its cursor are committed in one fenced transaction; a 410 restarts that one cursor, and items
//!   the resync did not see are removed only when it completes (no duplicates, no ghosts).
//! - **Tokens** ([`tokens::TokenSource`]): refresh before expiry, the rotated refresh token saved
//!   every time; client-credentials tokens cached per organization; a refresh refused for a reason
//!   someone must fix marks the connection "needs attention", and it is not retried meanwhile.
//! - **Limits** ([`limiter`]): ≤ 4 Graph requests in flight per mailbox, `Retry-After` (seconds,
//!   fractions, HTTP-dates) obeyed for the whole mailbox, exponential backoff with jitter on 5xx and
//!   timeouts, each mailbox gated on its own so one's throttling never stalls another.
//! - **Counters** ([`SyncMetrics`]) for `/metrics`.
//!
//! Within one mailbox a run sends its requests one after another; mailboxes run in parallel. Four
//! concurrent requests to one mailbox would be allowed, but a request still in flight when another
//! gets a 429 arrives after that `Retry-After` was handed out, which Microsoft counts against the
//! mailbox; the semaphore of 4 stays as the hard cap (a timed-out request keeps its slot a while,
//! since Microsoft may still be running it).

mod batch;
mod engine;
mod error;
mod items;
pub mod limiter;
mod metrics;
pub mod outbox;
mod scheduler;
pub mod subscriptions;
pub mod tokens;

pub use engine::{
    CommitBarrier, DEFAULT_POOL_BOUND, Engine, RunReport, SyncConfig, default_max_concurrent_mailboxes, events_window, resources_for,
};
pub use error::SyncError;
pub use metrics::{MetricsSnapshot, SyncMetrics};
pub use scheduler::{MailboxOutcome, Scheduler};
pub use tokens::{ANY_ORGANIZATION, DeploymentApp, TokenKind, TokenSource};
