//! PostgreSQL, for several server instances sharing one database.

use crate::secrets::Keyring;
use crate::{Backend, StoreError};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// How long a session may sit idle inside a transaction before PostgreSQL ends it.
pub const IDLE_IN_TRANSACTION_TIMEOUT: &str = "30s";
/// How long one statement may run.
pub const STATEMENT_TIMEOUT: &str = "60s";

pub struct PgStore {
    pub(crate) pool: PgPool,
    pub(crate) keyring: Arc<Keyring>,
}

impl PgStore {
    pub async fn open(url: &str, keyring: Arc<Keyring>) -> Result<PgStore, StoreError> {
        // A worker frozen inside a transaction must not keep its row locks (and so its mailbox, which
        // `SKIP LOCKED` claims pass over) for as long as it lives: PostgreSQL ends such a session,
        // and any statement running away.
        let options = PgConnectOptions::from_str(url)?
            .options([("idle_in_transaction_session_timeout", IDLE_IN_TRANSACTION_TIMEOUT), ("statement_timeout", STATEMENT_TIMEOUT)]);
        let pool = PgPoolOptions::new().max_connections(16).acquire_timeout(Duration::from_secs(10)).connect_with(options).await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(PgStore { pool, keyring })
    }

    /// A transaction that will write (PostgreSQL's row locks need nothing more).
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'_, sqlx::Postgres>, sqlx::Error> {
        self.pool.begin().await
    }

    /// Where a single write statement goes (PostgreSQL's row locks need no writer of its own).
    pub(crate) fn writer(&self) -> &PgPool {
        &self.pool
    }

    /// The pool, for tests that look at raw rows.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

crate::common::impl_store!(PgStore, Backend::Postgres);
