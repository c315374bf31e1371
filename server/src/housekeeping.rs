//! What expires in the database is removed now and then: ended sessions (a session past its
//! absolute lifetime is refused at once; this keeps the table from growing without end).

use std::time::Duration;
use store::DynStore;

/// How often expired sessions are purged.
pub const EVERY: Duration = Duration::from_secs(3600);

/// One sweep: the number of expired sessions removed.
pub async fn sweep(store: &DynStore) -> Result<u64, store::StoreError> {
    let removed = store.purge_expired_sessions(store::now_unix()).await?;
    if removed > 0 {
        tracing::info!(removed, "purged expired sessions");
    }
    Ok(removed)
}

/// Sweeps at start and every [`EVERY`] until `stop` turns true. A failed sweep is logged and
/// tried again next time.
pub fn spawn(store: DynStore, mut stop: tokio::sync::watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(EVERY);
        loop {
            tokio::select! {
                _ = ticks.tick() => {
                    if let Err(e) = sweep(&store).await {
                        tracing::warn!(error = %e, "could not purge expired sessions; trying again later");
                    }
                }
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
        }
    })
}
