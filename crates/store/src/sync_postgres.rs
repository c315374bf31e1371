//! [`crate::sync::SyncStore`] on PostgreSQL. Several server instances claim concurrently: the
//! candidate rows are locked with `FOR UPDATE … SKIP LOCKED`, so two claimers never pick the same
//! mailbox and neither waits for the other. The turn order's firsts (each organization's most
//! overdue claimable mailbox) come from `DISTINCT ON`, and the candidates are sorted by them.

use crate::PgStore;

crate::sync_common::impl_sync_store!(
    PgStore,
    sqlx::Postgres,
    crate::sync_common::claim_sql!(
        concat!(
            "SELECT d.id FROM sync_mailboxes d JOIN connections c ON c.id = d.connection_id \
               LEFT JOIN (SELECT DISTINCT ON (x.org_id) x.id AS id FROM sync_mailboxes x JOIN connections y ON y.id = x.connection_id WHERE ",
            crate::sync_common::claimable!("x", "y", crate::sync_common::postgres_now!()),
            "   ORDER BY x.org_id, x.next_due_at, x.id) f ON f.id = d.id \
             WHERE ",
            crate::sync_common::claimable!("d", "c", crate::sync_common::postgres_now!()),
            " ORDER BY (f.id IS NULL), d.next_due_at, d.id LIMIT $4 FOR UPDATE OF d SKIP LOCKED"
        ),
        crate::sync_common::postgres_now!()
    ),
    crate::sync_common::postgres_now!()
);

crate::subscriptions_common::impl_subscription_store!(PgStore);
crate::outbox_common::impl_write_store!(PgStore);
