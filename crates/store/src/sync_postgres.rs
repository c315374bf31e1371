//! [`crate::sync::SyncStore`] on PostgreSQL. Several server instances claim concurrently: the
//! candidate rows are locked with `FOR UPDATE … SKIP LOCKED`, so two claimers never pick the same
//! mailbox and neither waits for the other.

use crate::PgStore;

crate::sync_common::impl_sync_store!(
    PgStore,
    sqlx::Postgres,
    crate::sync_common::claim_sql!("FOR UPDATE OF m SKIP LOCKED", crate::sync_common::postgres_now!()),
    crate::sync_common::postgres_now!()
);

crate::subscriptions_common::impl_subscription_store!(PgStore);
crate::outbox_common::impl_write_store!(PgStore);
