//! The embedded default: one SQLite file, created and migrated on start.

use crate::secrets::Keyring;
use crate::{Backend, StoreError};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
    pub(crate) keyring: Arc<Keyring>,
}

impl SqliteStore {
    pub async fn open(url: &str, keyring: Arc<Keyring>) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            // WAL lets the sync workers write while pages read.
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            // Deleted rows (a disconnected account's mail) are overwritten, not left readable in
            // the file's free pages and so in every copy of it.
            .pragma("secure_delete", "ON")
            .busy_timeout(Duration::from_secs(10));
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let pool = SqlitePoolOptions::new()
            // An in-memory database exists per connection: keep exactly one.
            .max_connections(if in_memory { 1 } else { 8 })
            // An in-process SQLite connection cannot have dropped: no ping to its worker thread
            // before each use (a query is then two hops to that thread, not three).
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(SqliteStore { pool, keyring })
    }

    /// A transaction that will write. It takes SQLite's write lock at its start (`BEGIN
    /// IMMEDIATE`), so it waits its turn on the busy timeout; a deferred one that reads first and
    /// then writes would fail at once with "database is locked" while another writer commits.
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'_, sqlx::Sqlite>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    /// The pool, for tests that look at raw rows.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

crate::common::impl_store!(SqliteStore, Backend::Sqlite);
