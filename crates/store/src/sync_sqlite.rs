//! [`crate::sync::SyncStore`] on SQLite. Writers are serialized by SQLite itself, so the claim is a
//! single `UPDATE … WHERE id IN (SELECT …)` statement.

use crate::SqliteStore;

crate::sync_common::impl_sync_store!(
    SqliteStore,
    sqlx::Sqlite,
    crate::sync_common::claim_sql!(
        // SQLite takes a bare column from the row that holds the MIN.
        concat!(
            "SELECT x.id AS id, MIN(x.next_due_at) FROM sync_mailboxes x JOIN connections y ON y.id = x.connection_id WHERE ",
            crate::sync_common::claimable!("x", "y", crate::sync_common::sqlite_now!()),
            " GROUP BY x.org_id"
        ),
        "",
        crate::sync_common::sqlite_now!()
    ),
    crate::sync_common::sqlite_now!()
);

crate::subscriptions_common::impl_subscription_store!(SqliteStore);
crate::outbox_common::impl_write_store!(SqliteStore);
