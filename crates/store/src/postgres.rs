//! PostgreSQL, for several server instances sharing one database.

use crate::secrets::Keyring;
use crate::{Backend, StoreError};
use sqlx::postgres::{PgPool, PgPoolOptions};
use std::sync::Arc;
use std::time::Duration;

pub struct PgStore {
    pub(crate) pool: PgPool,
    pub(crate) keyring: Arc<Keyring>,
}

impl PgStore {
    pub async fn open(url: &str, keyring: Arc<Keyring>) -> Result<PgStore, StoreError> {
        let pool = PgPoolOptions::new().max_connections(16).acquire_timeout(Duration::from_secs(10)).connect(url).await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(PgStore { pool, keyring })
    }

    /// The pool, for tests that look at raw rows.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

crate::common::impl_store!(PgStore, Backend::Postgres);
