//! Counters for `/metrics`: plain atomics the server reads and formats itself (this crate does not
//! depend on the server's metrics library).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters, shared by every worker of one process.
#[derive(Debug, Default)]
pub struct SyncMetrics {
    pub items_upserted: AtomicU64,
    pub items_deleted: AtomicU64,
    pub pages_committed: AtomicU64,
    /// HTTP 429 answers from Graph.
    pub throttled: AtomicU64,
    /// Cursors restarted after 410 / SyncStateNotFound.
    pub resyncs: AtomicU64,
    /// Leases claimed from a worker whose lease had expired.
    pub lease_takeovers: AtomicU64,
    /// Runs stopped because another worker took the mailbox over.
    pub leases_lost: AtomicU64,
    pub token_refreshes: AtomicU64,
    pub mailbox_runs_ok: AtomicU64,
    pub mailbox_runs_failed: AtomicU64,
    /// Change notifications accepted (known subscription, matching clientState).
    pub notifications_received: AtomicU64,
    /// Change notifications ignored: unknown subscription, wrong clientState, unreadable.
    pub notifications_ignored: AtomicU64,
    /// Lifecycle notifications acted on (reauthorizationRequired, subscriptionRemoved, missed).
    pub lifecycle_events: AtomicU64,
    pub subscriptions_created: AtomicU64,
    pub subscriptions_renewed: AtomicU64,
    pub subscriptions_deleted: AtomicU64,
    /// Subscriptions Microsoft refused or failed (the mailbox is polled).
    pub subscription_failures: AtomicU64,
    /// Writes performed at Microsoft (mail sent, events, contacts, tasks).
    pub writes_performed: AtomicU64,
    /// Writes that ended failed (Microsoft refused them).
    pub writes_failed: AtomicU64,
    /// JSON batches sent (their inner requests count in `requests_by_status`, one each).
    pub batches: AtomicU64,
    /// Graph requests by HTTP status (0 = no answer: timeout or connection failure).
    requests_by_status: Mutex<BTreeMap<u16, u64>>,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    pub items_upserted: u64,
    pub items_deleted: u64,
    pub pages_committed: u64,
    pub throttled: u64,
    pub resyncs: u64,
    pub lease_takeovers: u64,
    pub leases_lost: u64,
    pub token_refreshes: u64,
    pub mailbox_runs_ok: u64,
    pub mailbox_runs_failed: u64,
    pub notifications_received: u64,
    pub notifications_ignored: u64,
    pub lifecycle_events: u64,
    pub subscriptions_created: u64,
    pub subscriptions_renewed: u64,
    pub subscriptions_deleted: u64,
    pub subscription_failures: u64,
    pub writes_performed: u64,
    pub writes_failed: u64,
    pub batches: u64,
    pub requests_by_status: BTreeMap<u16, u64>,
}

impl MetricsSnapshot {
    pub fn graph_requests(&self) -> u64 {
        self.requests_by_status.values().sum()
    }
}

impl SyncMetrics {
    /// Adds to one counter (the server's notification endpoint counts through this too).
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn request(&self, status: Option<u16>) {
        let mut m = self.requests_by_status.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry(status.unwrap_or(0)).or_default() += 1;
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MetricsSnapshot {
            items_upserted: get(&self.items_upserted),
            items_deleted: get(&self.items_deleted),
            pages_committed: get(&self.pages_committed),
            throttled: get(&self.throttled),
            resyncs: get(&self.resyncs),
            lease_takeovers: get(&self.lease_takeovers),
            leases_lost: get(&self.leases_lost),
            token_refreshes: get(&self.token_refreshes),
            mailbox_runs_ok: get(&self.mailbox_runs_ok),
            mailbox_runs_failed: get(&self.mailbox_runs_failed),
            notifications_received: get(&self.notifications_received),
            notifications_ignored: get(&self.notifications_ignored),
            lifecycle_events: get(&self.lifecycle_events),
            subscriptions_created: get(&self.subscriptions_created),
            subscriptions_renewed: get(&self.subscriptions_renewed),
            subscriptions_deleted: get(&self.subscriptions_deleted),
            subscription_failures: get(&self.subscription_failures),
            writes_performed: get(&self.writes_performed),
            writes_failed: get(&self.writes_failed),
            batches: get(&self.batches),
            requests_by_status: self.requests_by_status.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }
}
