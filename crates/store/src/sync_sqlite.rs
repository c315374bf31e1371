//! [`crate::sync::SyncStore`] on SQLite. Writers take turns (SQLite lets one in at a time, and the
//! store sends every write through its one writer connection), so the claim is a single
//! `UPDATE … WHERE id IN (SELECT …)` statement.
//!
//! The candidates are read in due order through the indexes on `(next_due_at, id)` and
//! `(org_id, next_due_at, id)`, each read stopping at what it needs: every organization's first
//! claimable mailbox, and the first `$4` claimable mailboxes overall (the turn order's rest is
//! among them). A claim then costs the leased mailboxes it steps over, not a sort of every
//! claimable one (a thousand due after a "sync now").
//!
//! The limit is cast: SQLite plans a bare `LIMIT ?` for the value bound, and so prepares the
//! statement again at every claim (at a thousand mailboxes a claim took 1.2 ms so, 0.37 ms cast).

use crate::SqliteStore;

/// Whether mailbox `$m` (joined to its connection `$c`) may be claimed now.
macro_rules! claimable_here {
    ($m:literal, $c:literal) => {
        crate::sync_common::claimable!($m, $c, crate::sync_common::sqlite_now!())
    };
}

crate::sync_common::impl_sync_store!(
    SqliteStore,
    sqlx::Sqlite,
    crate::sync_common::claim_sql!(
        concat!(
            "SELECT id FROM (\
               SELECT m.id AS id, 0 AS turn, m.next_due_at AS due FROM sync_mailboxes m WHERE m.id IN (\
                 SELECT (SELECT x.id FROM sync_mailboxes x JOIN connections y ON y.id = x.connection_id \
                         WHERE x.org_id = o.id AND ",
            claimable_here!("x", "y"),
            "        ORDER BY x.next_due_at, x.id LIMIT 1) FROM organizations o) \
               UNION ALL \
               SELECT * FROM (SELECT d.id, 1, d.next_due_at FROM sync_mailboxes d JOIN connections c ON c.id = d.connection_id \
                              WHERE ",
            claimable_here!("d", "c"),
            "              ORDER BY d.next_due_at, d.id LIMIT CAST($4 AS INTEGER))\
             ) GROUP BY id ORDER BY MIN(turn), MIN(due), id LIMIT CAST($4 AS INTEGER)"
        ),
        crate::sync_common::sqlite_now!()
    ),
    crate::sync_common::sqlite_now!()
);

crate::subscriptions_common::impl_subscription_store!(SqliteStore);
crate::outbox_common::impl_write_store!(SqliteStore);
