//! Outlook's per application + mailbox limits (MICROSOFT.md §4.1): 4 concurrent requests
//! (429 `ApplicationThrottled`) and 10,000 requests per 10 minutes (429 `TooManyRequests` + Retry-After).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct ThrottleConfig {
    pub enabled: bool,
    pub max_concurrent_per_mailbox: u32,
    pub max_requests_per_window: u32,
    pub window: Duration,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig { enabled: true, max_concurrent_per_mailbox: 4, max_requests_per_window: 10_000, window: Duration::from_secs(600) }
    }
}

impl ThrottleConfig {
    pub fn disabled() -> Self {
        ThrottleConfig { enabled: false, ..ThrottleConfig::default() }
    }
    /// Same shape, scaled down for fast tests: e.g. `scaled(100)` allows 100 requests per 6 s.
    pub fn scaled(divisor: u32) -> Self {
        let d = divisor.max(1);
        ThrottleConfig {
            enabled: true,
            max_concurrent_per_mailbox: 4,
            max_requests_per_window: (10_000 / d).max(1),
            window: Duration::from_secs_f64(600.0 / f64::from(d)),
        }
    }
}

#[derive(Default)]
struct Bucket {
    inflight: u32,
    window_start: Option<Instant>,
    count: u32,
    retry_not_before: Option<Instant>,
    /// When that Retry-After was handed out: a request sent before it (an inner request of a batch
    /// that arrived earlier) could not know it.
    retry_given_at: Option<Instant>,
}

impl Bucket {
    /// A Retry-After handed out `now`, running `until`: it extends a running one, which keeps the
    /// instant it was first given.
    fn hold_off(&mut self, now: Instant, until: Instant) {
        match self.retry_not_before {
            Some(t) if t > now => self.retry_not_before = Some(t.max(until)),
            _ => (self.retry_not_before, self.retry_given_at) = (Some(until), Some(now)),
        }
    }
}

pub(crate) struct Throttle {
    pub cfg: Mutex<ThrottleConfig>,
    buckets: Arc<Mutex<HashMap<(String, String), Bucket>>>,
}

pub(crate) enum Refusal {
    Concurrency,
    Rate { retry_after_secs: f64 },
}

/// Holds a concurrency slot until dropped.
pub(crate) struct Permit {
    key: (String, String),
    buckets: Arc<Mutex<HashMap<(String, String), Bucket>>>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(b) = crate::lock(&self.buckets).get_mut(&self.key) {
            b.inflight = b.inflight.saturating_sub(1);
        }
    }
}

pub(crate) struct Admission {
    pub permit: Option<Permit>,
    pub refusal: Option<Refusal>,
    /// In flight for this app+mailbox including this request.
    pub concurrency: u32,
    /// This request was sent after a Retry-After was given to this app+mailbox and arrived before
    /// it had elapsed.
    pub early_retry: bool,
}

impl Throttle {
    pub(crate) fn new(cfg: ThrottleConfig) -> Throttle {
        Throttle { cfg: Mutex::new(cfg), buckets: Arc::new(Mutex::new(HashMap::new())) }
    }

    /// Admits a request `sent_at` an instant (its own arrival; for a batch's inner request, the
    /// batch's).
    pub(crate) fn admit(&self, app: &str, mailbox: &str, sent_at: Instant) -> Admission {
        let cfg = crate::lock(&self.cfg).clone();
        let key = (app.to_ascii_lowercase(), mailbox.to_ascii_lowercase());
        let now = Instant::now();
        let mut buckets = crate::lock(&self.buckets);
        let b = buckets.entry(key.clone()).or_default();
        let early_retry = b.retry_not_before.is_some_and(|t| now < t) && b.retry_given_at.is_some_and(|g| g <= sent_at);
        let concurrency = b.inflight + 1;
        if cfg.enabled {
            if b.inflight >= cfg.max_concurrent_per_mailbox {
                return Admission { permit: None, refusal: Some(Refusal::Concurrency), concurrency, early_retry };
            }
            let start = *b.window_start.get_or_insert(now);
            if now.duration_since(start) >= cfg.window {
                b.window_start = Some(now);
                b.count = 0;
            }
            if b.count >= cfg.max_requests_per_window {
                let left = cfg.window.saturating_sub(now.duration_since(b.window_start.unwrap_or(now)));
                let secs = (left.as_secs_f64() * 1000.0).ceil() / 1000.0;
                let secs = secs.max(0.001);
                b.hold_off(now, now + Duration::from_secs_f64(secs));
                return Admission { permit: None, refusal: Some(Refusal::Rate { retry_after_secs: secs }), concurrency, early_retry };
            }
            b.count += 1;
        }
        b.inflight += 1;
        Admission { permit: Some(Permit { key, buckets: self.buckets.clone() }), refusal: None, concurrency, early_retry }
    }

    /// Remember a Retry-After handed out (by throttling or an injected fault).
    pub(crate) fn note_retry_after(&self, app: &str, mailbox: &str, secs: f64) {
        let key = (app.to_ascii_lowercase(), mailbox.to_ascii_lowercase());
        let now = Instant::now();
        let mut buckets = crate::lock(&self.buckets);
        buckets.entry(key).or_default().hold_off(now, now + Duration::from_secs_f64(secs.max(0.0)));
    }

    pub(crate) fn reset(&self) {
        crate::lock(&self.buckets).retain(|_, b| {
            b.count = 0;
            b.window_start = None;
            b.retry_not_before = None;
            b.inflight > 0
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifth_concurrent_request_is_refused_and_slot_frees_on_drop() {
        let t = Throttle::new(ThrottleConfig::default());
        let permits: Vec<_> = (0..4).map(|_| t.admit("app", "mbx", Instant::now()).permit.unwrap()).collect();
        assert!(matches!(t.admit("app", "mbx", Instant::now()).refusal, Some(Refusal::Concurrency)));
        assert!(t.admit("app", "other", Instant::now()).permit.is_some(), "other mailboxes unaffected");
        drop(permits);
        assert!(t.admit("app", "mbx", Instant::now()).permit.is_some());
    }

    #[test]
    fn rate_limit_gives_retry_after_and_flags_early_retries() {
        let t = Throttle::new(ThrottleConfig { max_requests_per_window: 2, ..ThrottleConfig::default() });
        assert!(t.admit("a", "m", Instant::now()).permit.is_some());
        assert!(t.admit("a", "m", Instant::now()).permit.is_some());
        let third = t.admit("a", "m", Instant::now());
        match third.refusal {
            Some(Refusal::Rate { retry_after_secs }) => assert!(retry_after_secs > 590.0),
            _ => panic!("expected rate refusal"),
        }
        assert!(t.admit("a", "m", Instant::now()).early_retry);
    }

    /// A batch's inner requests were all sent with the batch: one that meets a Retry-After given
    /// to an earlier request of the same batch is not an early retry; a request sent later is.
    #[test]
    fn a_retry_after_given_inside_a_batch_does_not_flag_the_batchs_later_requests() {
        let t = Throttle::new(ThrottleConfig::default());
        let batch_sent = Instant::now();
        std::thread::sleep(Duration::from_millis(2));
        t.note_retry_after("a", "m", 5.0);
        assert!(!t.admit("a", "m", batch_sent).early_retry);
        assert!(t.admit("a", "m", Instant::now()).early_retry);
        // Extending the running Retry-After keeps when it was first given.
        t.note_retry_after("a", "m", 9.0);
        assert!(!t.admit("a", "m", batch_sent).early_retry);
    }
}
