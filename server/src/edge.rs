//! The edge: how connections are accepted and served. `axum::serve` has no header-read timeout and
//! no connection cap, so a slow-connection flood (a client sending its request head a byte every
//! few seconds, thousands of times over) would hold sockets and tasks for as long as it liked.
//!
//! Here every connection takes a slot (at most [`Limits::max_connections`]; when all are taken the
//! server stops accepting until one frees, and new connections wait in the kernel's backlog), and a
//! connection that has not sent a whole request head within [`Limits::header_read_timeout`] is
//! closed, whether it is new or idle between keep-alive requests. Whole requests are bounded by
//! [`Limits::request_timeout`] in the router (408), bodies by [`crate::http::MAX_BODY_BYTES`] (413).
//!
//! HTTP/1.1 only: detecting HTTP/2's preface would read from a silent connection with no timeout,
//! and browsers speak HTTP/2 only over TLS, which the reverse proxy in front terminates.

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// The edge's settings (`server --help`: the timeouts, `--max-connections`, `--metrics-*`).
#[derive(Debug, Clone, Default)]
pub struct EdgeConfig {
    pub limits: Limits,
    /// `/metrics` answers only requests with `Authorization: Bearer <token>`.
    pub metrics_token: Option<secrecy::SecretString>,
    /// `/metrics` is served on this address alone, not beside the app.
    pub metrics_bind: Option<SocketAddr>,
}

impl EdgeConfig {
    /// From the flags; a token file that cannot be read, or an empty token, stops the server.
    pub fn from_args(args: &crate::cli::ServeArgs) -> anyhow::Result<EdgeConfig> {
        let token = match (&args.metrics_token, &args.metrics_token_file) {
            (Some(token), _) => Some(token.trim().to_owned()),
            (None, Some(path)) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("--metrics-token-file {}: {e}", path.display()))?
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_owned(),
            ),
            (None, None) => None,
        };
        if token.as_ref().is_some_and(String::is_empty) {
            anyhow::bail!("the /metrics token is empty");
        }
        Ok(EdgeConfig {
            limits: Limits {
                header_read_timeout: Duration::from_secs(args.header_read_timeout),
                request_timeout: Duration::from_secs(args.request_timeout),
                max_connections: args.max_connections,
            },
            metrics_token: token.map(secrecy::SecretString::from),
            metrics_bind: args.metrics_bind,
        })
    }
}

/// What one connection and one request may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Time to send a whole request head (and the longest a keep-alive connection may sit idle).
    pub header_read_timeout: Duration,
    /// Time to produce a response head (408 after it).
    pub request_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { header_read_timeout: Duration::from_secs(15), request_timeout: Duration::from_secs(60), max_connections: 512 }
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` resolves; then stops accepting,
/// lets every connection finish the request it is in (idle ones are closed), and returns once all
/// have. The caller bounds that wait ([`crate::shutdown::serve_with_drain`]).
pub async fn serve(listener: TcpListener, router: Router, limits: &Limits, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let connections = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => slot.map_err(std::io::Error::other)?,
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = accept(&listener) => accepted,
        };
        spawn_connection(&http, &connections, router.clone(), (stream, peer), slot);
    }
    drop(listener);
    connections.shutdown().await;
    Ok(())
}

/// Serves one accepted connection on a task of its own, watched for the graceful shutdown; its
/// `slot` is given back when it closes.
fn spawn_connection(
    http: &hyper::server::conn::http1::Builder,
    connections: &GracefulShutdown,
    router: Router,
    (stream, peer): (tokio::net::TcpStream, SocketAddr),
    slot: tokio::sync::OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    // What `into_make_service_with_connect_info` gives handlers: the connection's peer.
    let service = router.map_request(move |mut req: axum::http::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req
    });
    let connection = connections.watch(http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)));
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, %peer, "connection closed");
        }
        drop(slot);
    });
}

/// The next connection. A failed accept (out of file descriptors, a connection reset before it
/// was accepted) leaves the listener fine, so it waits a moment and tries again rather than spin
/// or stop serving.
async fn accept(listener: &TcpListener) -> (tokio::net::TcpStream, std::net::SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(accepted) => return accepted,
            Err(e) => {
                tracing::warn!(error = %e, "could not accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn edge(args: &[&str]) -> anyhow::Result<EdgeConfig> {
        let cli = crate::cli::Cli::try_parse_from(std::iter::once("server").chain(args.iter().copied()))?;
        EdgeConfig::from_args(&cli.serve)
    }

    #[test]
    fn the_flags_set_the_limits_and_who_reads_metrics() {
        use secrecy::ExposeSecret;
        let defaults = edge(&[]).unwrap();
        assert_eq!(defaults.limits, Limits::default());
        assert!(defaults.metrics_token.is_none() && defaults.metrics_bind.is_none());

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("metrics.token");
        std::fs::write(&file, "from-the-file\n").unwrap();
        let file = file.to_str().unwrap();
        let set = edge(&[
            "--header-read-timeout",
            "3",
            "--max-connections",
            "9",
            "--metrics-bind",
            "127.0.0.1:9100",
            "--metrics-token-file",
            file,
        ])
        .unwrap();
        assert_eq!(set.limits.header_read_timeout, Duration::from_secs(3));
        assert_eq!(set.limits.max_connections, 9);
        assert_eq!(set.metrics_bind, Some("127.0.0.1:9100".parse().unwrap()));
        assert_eq!(set.metrics_token.unwrap().expose_secret(), "from-the-file");
        assert!(edge(&["--metrics-token", " "]).is_err(), "an empty token would let anyone in");
        assert!(edge(&["--session-idle-timeout", "30"]).is_err(), "under the minute between recorded uses");
    }
}
