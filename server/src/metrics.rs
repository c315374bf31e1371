//! Prometheus text for `/metrics`: request counts and latencies by matched route.
//!
//! Keyed by the route pattern (`/api/login`, `/settings/integrations`), never the raw path, so ids
//! in URLs cannot blow up the number of series.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use subtle::ConstantTimeEq;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Default)]
struct Series {
    count: u64,
    sum_secs: f64,
    buckets: [u64; BUCKETS.len()],
}

#[derive(Default)]
pub struct Metrics {
    // (route, method, status) -> series. A BTreeMap keeps the output stable for readers and tests.
    requests: Mutex<BTreeMap<(String, String, u16), Series>>,
}

impl Metrics {
    pub fn observe(&self, route: &str, method: &str, status: u16, secs: f64) {
        let mut map = match self.requests.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        let s = map.entry((route.to_owned(), method.to_owned(), status)).or_default();
        s.count += 1;
        s.sum_secs += secs;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                s.buckets[i] += 1;
            }
        }
    }

    pub fn render(&self) -> String {
        let map = match self.requests.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut out = String::new();
        out.push_str("# HELP http_requests_total HTTP requests served, by matched route, method and status.\n");
        out.push_str("# TYPE http_requests_total counter\n");
        for ((route, method, status), s) in map.iter() {
            let _ = writeln!(out, "http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {}", escape(route), s.count);
        }
        out.push_str("# HELP http_request_duration_seconds Time to produce the response head.\n");
        out.push_str("# TYPE http_request_duration_seconds histogram\n");
        for ((route, method, status), s) in map.iter() {
            let labels = format!("route=\"{}\",method=\"{method}\",status=\"{status}\"", escape(route));
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(out, "http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {}", s.buckets[i]);
            }
            let _ = writeln!(out, "http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}", s.count);
            let _ = writeln!(out, "http_request_duration_seconds_sum{{{labels}}} {}", s.sum_secs);
            let _ = writeln!(out, "http_request_duration_seconds_count{{{labels}}} {}", s.count);
        }
        out
    }
}

/// The sync engine's counters in Prometheus text.
pub fn render_sync(s: &sync::MetricsSnapshot) -> String {
    let mut out = String::new();
    let counters: [(&str, &str, u64); 20] = [
        ("sync_items_upserted_total", "Synced items written (new or changed).", s.items_upserted),
        ("sync_items_deleted_total", "Synced items removed (deleted in Microsoft 365, or gone after a resync).", s.items_deleted),
        ("sync_pages_committed_total", "Pages of changes committed with their cursor.", s.pages_committed),
        ("sync_graph_batches_total", "JSON batches sent to Graph (their requests count in graph_requests_total).", s.batches),
        ("sync_throttled_total", "Graph answers of 429 Too Many Requests.", s.throttled),
        ("sync_resyncs_total", "Cursors restarted after 410 / SyncStateNotFound.", s.resyncs),
        ("sync_lease_takeovers_total", "Expired leases of another worker taken over.", s.lease_takeovers),
        ("sync_leases_lost_total", "Runs that stopped because their lease was taken.", s.leases_lost),
        ("sync_token_refreshes_total", "Access tokens refreshed.", s.token_refreshes),
        ("sync_mailbox_runs_ok_total", "Mailbox sync runs that completed.", s.mailbox_runs_ok),
        ("sync_mailbox_runs_failed_total", "Mailbox sync runs that failed.", s.mailbox_runs_failed),
        (
            "change_notifications_received_total",
            "Change notifications accepted (known subscription and clientState).",
            s.notifications_received,
        ),
        (
            "change_notifications_ignored_total",
            "Change notifications ignored (unknown subscription, wrong clientState, unreadable).",
            s.notifications_ignored,
        ),
        ("change_notification_lifecycle_events_total", "Lifecycle notifications acted on.", s.lifecycle_events),
        ("subscriptions_created_total", "Change-notification subscriptions created.", s.subscriptions_created),
        ("subscriptions_renewed_total", "Change-notification subscriptions renewed.", s.subscriptions_renewed),
        ("subscriptions_deleted_total", "Change-notification subscriptions deleted.", s.subscriptions_deleted),
        ("writes_performed_total", "Writes performed at Microsoft (mail sent, events, contacts, tasks).", s.writes_performed),
        ("writes_failed_total", "Writes Microsoft refused (they end failed with the reason).", s.writes_failed),
        ("subscription_failures_total", "Subscriptions Microsoft refused or failed (those mailboxes are polled).", s.subscription_failures),
    ];
    for (name, help, value) in counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
    }
    out.push_str("# HELP graph_requests_total Microsoft Graph requests by HTTP status (0: no answer).\n");
    out.push_str("# TYPE graph_requests_total counter\n");
    for (status, n) in &s.requests_by_status {
        let _ = writeln!(out, "graph_requests_total{{status=\"{status}\"}} {n}");
    }
    out
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

pub async fn record(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let route = match req.extensions().get::<MatchedPath>() {
        Some(p) => p.as_str().to_owned(),
        // Static files and unknown paths share one series.
        None => "(unmatched)".to_owned(),
    };
    let method = method_label(req.method());
    let started = Instant::now();
    let res = next.run(req).await;
    metrics.observe(&route, method, res.status().as_u16(), started.elapsed().as_secs_f64());
    res
}

/// The `method` label: the standard methods by name, anything else `OTHER`, so a client inventing
/// methods cannot add series without end.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "OTHER",
    }
}

/// Whether a request may read `/metrics`: always without a token configured, else only with
/// `Authorization: Bearer <token>` (compared in constant time).
pub fn authorized(token: Option<&SecretString>, headers: &HeaderMap) -> bool {
    let Some(token) = token else { return true };
    let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    given.is_some_and(|given| bool::from(given.trim().as_bytes().ct_eq(token.expose_secret().as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_cumulative_buckets() {
        let m = Metrics::default();
        m.observe("/healthz", "GET", 200, 0.003);
        m.observe("/healthz", "GET", 200, 0.2);
        m.observe("/api/login", "POST", 422, 0.06);
        let text = m.render();
        assert!(text.contains("http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 2"));
        assert!(text.contains("http_requests_total{route=\"/api/login\",method=\"POST\",status=\"422\"} 1"));
        assert!(text.contains("http_request_duration_seconds_bucket{route=\"/healthz\",method=\"GET\",status=\"200\",le=\"0.005\"} 1"));
        assert!(text.contains("http_request_duration_seconds_bucket{route=\"/healthz\",method=\"GET\",status=\"200\",le=\"0.25\"} 2"));
        assert!(text.contains("http_request_duration_seconds_count{route=\"/healthz\",method=\"GET\",status=\"200\"} 2"));
    }

    #[test]
    fn invented_methods_share_one_label() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "OTHER");
        assert_eq!(method_label(&Method::from_bytes(b"get").unwrap()), "OTHER");
    }

    #[test]
    fn a_token_is_needed_only_when_one_is_configured() {
        let mut headers = HeaderMap::new();
        assert!(authorized(None, &headers));
        let token = SecretString::from("s3cret-token");
        assert!(!authorized(Some(&token), &headers));
        headers.insert(header::AUTHORIZATION, "Bearer s3cret-tokem".parse().unwrap());
        assert!(!authorized(Some(&token), &headers));
        headers.insert(header::AUTHORIZATION, "Bearer s3cret-token".parse().unwrap());
        assert!(authorized(Some(&token), &headers));
    }
}
