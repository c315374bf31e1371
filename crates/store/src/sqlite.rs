//! The embedded default: one SQLite file, created and migrated on start.

use crate::secrets::Keyring;
use crate::{Backend, StoreError};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

pub struct SqliteStore {
    /// Reads, any number at once (WAL lets them run while a write commits); read-only connections.
    pub(crate) pool: SqlitePool,
    /// Writes, one connection: SQLite lets one writer in at a time, and a writer that finds the
    /// lock taken sleeps in its busy handler (1, 2, 5 ms…) although the lock is free again within
    /// microseconds. Queued here instead, writers take turns as soon as the one before commits.
    pub(crate) writer: SqlitePool,
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
        let pool_of = |connections: u32| {
            SqlitePoolOptions::new()
                .max_connections(connections)
                // An in-process SQLite connection cannot have dropped: no ping to its worker
                // thread before each use (a query is then two hops to that thread, not three).
                .test_before_acquire(false)
        };
        // An in-memory database exists per connection: keep exactly one, for reads and writes.
        let writer = pool_of(1).connect_with(options.clone()).await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        // The read connections cannot write: a write sent to them by mistake fails in every test
        // instead of quietly sleeping on SQLite's lock again.
        let pool = if in_memory { writer.clone() } else { pool_of(8).connect_with(options.read_only(true)).await? };
        Ok(SqliteStore { pool, writer, keyring })
    }

    /// A transaction that will write, on the writer connection. It takes SQLite's write lock at
    /// its start (`BEGIN IMMEDIATE`), so against another process's writer it waits on the busy
    /// timeout; a deferred one that reads first and then writes would fail at once with
    /// "database is locked" while that writer commits.
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'_, sqlx::Sqlite>, sqlx::Error> {
        self.writer.begin_with("BEGIN IMMEDIATE").await
    }

    /// Where a single write statement goes: the one writer connection.
    pub(crate) fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// The pool, for tests that look at raw rows.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

crate::common::impl_store!(SqliteStore, Backend::Sqlite);
