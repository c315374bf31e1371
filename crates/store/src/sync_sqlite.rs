//! [`crate::sync::SyncStore`] on SQLite. Writers are serialized by SQLite itself, so the claim is a
//! single `UPDATE … WHERE id IN (SELECT …)` statement.

use crate::SqliteStore;

crate::sync_common::impl_sync_store!(
    SqliteStore,
    sqlx::Sqlite,
    crate::sync_common::claim_sql!("", crate::sync_common::sqlite_now!()),
    crate::sync_common::sqlite_now!()
);

crate::subscriptions_common::impl_subscription_store!(SqliteStore);
crate::outbox_common::impl_write_store!(SqliteStore);
