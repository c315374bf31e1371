//! Graceful shutdown: what systemd and Kubernetes send (SIGTERM) and Ctrl-C (SIGINT) stop the
//! server the same way. It stops accepting connections, lets the requests in flight finish within
//! a drain timeout, and stops the sync workers at once so their leases are handed back rather than
//! left to expire. SIGHUP reads the key file again ([`on_hangup`]).

use std::future::{Future, IntoFuture};
use std::time::Duration;
use tokio::time::Instant;

/// The stop signals, listened to from the moment this is created (so a signal that arrives
/// while the server is still starting is not lost: the server stops as soon as it serves).
pub struct Signals {
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    pub fn listen() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let listen = |kind: SignalKind, name: &str| match signal(kind) {
                Ok(signal) => Some(signal),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for {name}; it will stop the server at once");
                    None
                }
            };
            Signals { terminate: listen(SignalKind::terminate(), "SIGTERM"), interrupt: listen(SignalKind::interrupt(), "SIGINT") }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// Resolves with the signal's name when one arrives.
    #[cfg(unix)]
    pub async fn received(self) -> &'static str {
        async fn next(signal: Option<tokio::signal::unix::Signal>, name: &'static str) -> &'static str {
            match signal {
                Some(mut signal) => {
                    signal.recv().await;
                    name
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            name = next(self.terminate, "SIGTERM") => name,
            name = next(self.interrupt, "SIGINT") => name,
        }
    }

    /// Resolves with the signal's name when one arrives.
    #[cfg(not(unix))]
    pub async fn received(self) -> &'static str {
        match tokio::signal::ctrl_c().await {
            Ok(()) => "Ctrl-C",
            Err(_) => std::future::pending().await,
        }
    }
}

/// Calls `reload` on every SIGHUP (the operator's "read your files again": the key file) for as
/// long as the process runs. Without a listener SIGHUP would end the process.
pub fn on_hangup(reload: impl Fn() + Send + 'static) {
    #[cfg(unix)]
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(mut hangups) => {
            tokio::spawn(async move {
                while hangups.recv().await.is_some() {
                    reload();
                }
            });
        }
        Err(e) => tracing::warn!(error = %e, "cannot listen for SIGHUP; restart the server to reload the key file"),
    }
    #[cfg(not(unix))]
    let _ = reload;
}

/// How a serve loop ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// Every request in flight finished within the drain timeout.
    Drained,
    /// The drain timeout passed with requests still running; they are cut.
    TimedOut,
}

/// Runs `serve` (an `axum::serve(..).with_graceful_shutdown(..)`) until its shutdown future has
/// fired (`begun` resolves) and then at most `drain` longer. Returns how it ended and the deadline
/// the drain had, for whatever else must stop in that time.
pub async fn serve_with_drain<S, E>(serve: S, begun: impl Future<Output = ()>, drain: Duration) -> Result<(Ended, Instant), E>
where
    S: IntoFuture<Output = Result<(), E>>,
{
    let serve = serve.into_future();
    tokio::pin!(serve);
    tokio::select! {
        result = &mut serve => {
            result?;
            Ok((Ended::Drained, Instant::now() + drain))
        }
        () = begun => {
            let deadline = Instant::now() + drain;
            match tokio::time::timeout_at(deadline, &mut serve).await {
                Ok(result) => result.map(|()| (Ended::Drained, deadline)),
                Err(_) => Ok((Ended::TimedOut, deadline)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn requests_that_finish_within_the_timeout_are_drained() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let serve = async {
            let _ = rx.await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok::<(), std::io::Error>(())
        };
        let begun = async {
            let _ = tx.send(());
        };
        let (ended, _) = serve_with_drain(serve, begun, Duration::from_secs(5)).await.unwrap();
        assert_eq!(ended, Ended::Drained);
    }

    #[tokio::test]
    async fn requests_still_running_at_the_timeout_are_cut() {
        let serve = std::future::pending::<Result<(), std::io::Error>>();
        let started = std::time::Instant::now();
        let (ended, deadline) = serve_with_drain(serve, async {}, Duration::from_millis(100)).await.unwrap();
        assert_eq!(ended, Ended::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(deadline <= Instant::now());
    }

    #[tokio::test]
    async fn a_server_that_fails_on_its_own_reports_the_error() {
        let serve = async { Err::<(), _>(std::io::Error::other("listener gone")) };
        let result = serve_with_drain(serve, std::future::pending(), Duration::from_secs(1)).await;
        assert!(result.is_err());
    }
}
