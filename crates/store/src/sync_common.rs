//! The [`crate::sync::SyncStore`] operations, written once for both databases.
//!
//! `impl_sync_store!` expands to an `impl SyncStore` for a type with `pool` (reads) and `keyring`
//! fields and a `writer()` (single write statements; transactions come from `begin_write`).
//! The only SQL that differs is in the claim query (how the candidates in turn order are found,
//! and PostgreSQL's `FOR UPDATE … SKIP LOCKED`; SQLite serializes writers, so a single
//! `UPDATE … WHERE id IN (SELECT …)` is already exclusive), passed in as `$claim_sql`, and how the
//! database tells the time (`$db_now`, unix seconds): lease times
//! come from the database's clock, so instances whose clocks disagree still agree on leases.

/// The database's clock in unix seconds, on SQLite.
macro_rules! sqlite_now {
    () => {
        "CAST(strftime('%s', 'now') AS INTEGER)"
    };
}
pub(crate) use sqlite_now;

/// The database's clock in unix seconds, on PostgreSQL (whole seconds, rounded down like SQLite's).
macro_rules! postgres_now {
    () => {
        "CAST(floor(extract(epoch FROM clock_timestamp())) AS BIGINT)"
    };
}
pub(crate) use postgres_now;

/// Columns of a `SyncMailbox`, in the order `mailbox_from_row!` reads them.
macro_rules! mailbox_columns {
    () => {
        "id, org_id, connection_id, user_id, graph_user_id, paused_reason, next_due_at, lease_owner, lease_expires_at, fence, \
         claimed_resources"
    };
}
pub(crate) use mailbox_columns;

/// Which mailboxes may be claimed, in the words of the claim query's alias `$m` (the mailbox)
/// and `$c` (its connection): due (by time, or by a change notification's pending bits, or
/// holding bits a lost worker claimed), unpaused mailboxes of active connections with a free or
/// expired lease. `$3` is now (the caller's, for due times only); `$db_now` the database's clock,
/// which alone decides lease expiry.
macro_rules! claimable {
    ($m:literal, $c:literal, $db_now:expr) => {
        concat!(
            $m,
            ".paused_reason IS NULL AND ",
            $c,
            ".state = 'active' \
               AND (",
            $m,
            ".next_due_at <= $3 OR ",
            $m,
            ".pending_resources <> 0 OR ",
            $m,
            ".claimed_resources <> 0) \
               AND (",
            $m,
            ".lease_owner IS NULL OR ",
            $m,
            ".lease_expires_at < ",
            $db_now,
            ")"
        )
    };
}
pub(crate) use claimable;

/// The claim query, common part: claims the mailboxes `$candidates` selects (the `id`s of at most
/// `$4` [`claimable`] mailboxes, in turn order); the pending bits move to the claim. `$1` owner,
/// `$2` lease TTL in seconds, `$3` now, `$4` limit. Times are whole seconds, so a lease counts as
/// expired only once its last second has passed (`<`, never `<=`): a lease lasts at least its
/// TTL, never up to a second less.
///
/// Turn order: organizations take turns. Every organization's most overdue claimable mailbox comes
/// before any organization's second, then the rest by due time (ties by id), so one with a
/// thousand-mailbox service account does not hold back another's few. Later claims see the
/// claimed ones leased, so each organization's next mailbox is then its first. How the candidates
/// are found depends on the database.
macro_rules! claim_sql {
    ($candidates:expr, $db_now:expr) => {
        concat!(
            "UPDATE sync_mailboxes SET lease_owner = $1, lease_expires_at = ",
            $db_now,
            " + $2, fence = fence + 1, \
               claim_was_takeover = (lease_owner IS NOT NULL), \
               next_due_at = CASE WHEN next_due_at = 0 THEN 1 ELSE next_due_at END, \
               claimed_resources = claimed_resources | pending_resources, pending_resources = 0 \
             WHERE id IN (",
            $candidates,
            ") AND (lease_owner IS NULL OR lease_expires_at < ",
            $db_now,
            ") RETURNING ",
            $crate::sync_common::mailbox_columns!(),
            ", claim_was_takeover, \
               EXISTS (SELECT 1 FROM write_outbox w WHERE w.mailbox_id = sync_mailboxes.id AND w.state = 'pending') AS writes_waiting, \
               EXISTS (SELECT 1 FROM sync_subscriptions s WHERE s.mailbox_id = sync_mailboxes.id) AS has_subscriptions"
        )
    };
}
pub(crate) use claim_sql;

macro_rules! mailbox_from_row {
    ($row:expr) => {{
        use sqlx::Row as _;
        let row = &$row;
        (|| -> Result<$crate::sync::SyncMailbox, $crate::StoreError> {
            let graph_user_id: String = row.try_get("graph_user_id")?;
            let paused: Option<String> = row.try_get("paused_reason")?;
            Ok($crate::sync::SyncMailbox {
                id: row.try_get("id")?,
                org_id: domain::OrgId(row.try_get("org_id")?),
                connection_id: row.try_get("connection_id")?,
                user_id: domain::UserId(row.try_get("user_id")?),
                graph_user_id: (!graph_user_id.is_empty()).then_some(graph_user_id),
                paused: match paused {
                    Some(p) => Some(
                        ::domain::PauseReason::parse(&p)
                            .ok_or_else(|| $crate::StoreError::Corrupt(format!("sync_mailboxes.paused_reason {p:?}")))?,
                    ),
                    None => None,
                },
                next_due_at: row.try_get("next_due_at")?,
                lease_owner: row.try_get("lease_owner")?,
                lease_expires_at: row.try_get("lease_expires_at")?,
                fence: row.try_get("fence")?,
                notified: $crate::sync::resources_of_bits(row.try_get("claimed_resources")?),
            })
        })()
    }};
}
pub(crate) use mailbox_from_row;

macro_rules! item_from_row {
    ($row:expr) => {{
        use sqlx::Row as _;
        let row = &$row;
        (|| -> Result<$crate::sync::SyncedItem, $crate::StoreError> {
            Ok($crate::sync::SyncedItem {
                graph_id: row.try_get("graph_id")?,
                container: row.try_get("container")?,
                title: row.try_get("title")?,
                subtitle: row.try_get("subtitle")?,
                preview: row.try_get("preview")?,
                occurred_at: row.try_get("occurred_at")?,
                data: row.try_get("data")?,
            })
        })()
    }};
}
pub(crate) use item_from_row;

/// Columns of a `ResourceStatus` (of `sync_status`), in the order `resource_status_from_row!` reads.
macro_rules! status_columns {
    () => {
        "resource, last_success_at, last_error, last_error_at, throttled_until, first_sync_done, estimated_total, items"
    };
}
pub(crate) use status_columns;

/// A `ResourceStatus` from a row with [`status_columns!`]; `None` when the row has none (a
/// mailbox without status, through a `LEFT JOIN`).
macro_rules! resource_status_from_row {
    ($row:expr) => {{
        use sqlx::Row as _;
        let row = &$row;
        (|| -> Result<Option<$crate::sync::ResourceStatus>, $crate::StoreError> {
            let Some(resource) = row.try_get::<Option<String>, _>("resource")? else {
                return Ok(None);
            };
            let total: Option<i64> = row.try_get("estimated_total")?;
            let items: i64 = row.try_get("items")?;
            Ok(Some($crate::sync::ResourceStatus {
                resource: $crate::sync_common::resource_of(&resource)?,
                last_success_at: row.try_get("last_success_at")?,
                last_error: $crate::sync_common::reason_of(row.try_get("last_error")?)?,
                last_error_at: row.try_get("last_error_at")?,
                throttled_until: row.try_get("throttled_until")?,
                items: u64::try_from(items).unwrap_or(0),
                first_sync_done: row.try_get("first_sync_done")?,
                estimated_total: total.map(|t| u64::try_from(t).unwrap_or(0)),
            }))
        })()
    }};
}
pub(crate) use resource_status_from_row;

/// Which mailboxes of an organization the overview reads (`m` is `sync_mailboxes`): `$1` the
/// organization, `$2` a connection or NULL, `$3` a user or NULL, `$4` synced (unpaused) ones only.
macro_rules! overview_filter {
    () => {
        " WHERE m.org_id = $1 AND ($2 IS NULL OR m.connection_id = $2) AND ($3 IS NULL OR m.user_id = $3) \
           AND (m.paused_reason IS NULL OR NOT $4)"
    };
}
pub(crate) use overview_filter;

fn parse_resource(s: &str) -> Result<domain::Resource, crate::StoreError> {
    domain::Resource::parse(s).ok_or_else(|| crate::StoreError::Corrupt(format!("sync resource {s:?}")))
}

/// Rows per multi-row item statement: a page of the server's default size (100) is one statement,
/// within SQLite's and PostgreSQL's limits on bound parameters (14 per row).
pub(crate) const UPSERT_ROWS: usize = 200;

/// `items` with each key once, at its last occurrence (a later one is newer), in their order:
/// one statement must not write a row twice.
pub(crate) fn last_of_each<'a, T, K: std::hash::Hash + Eq>(items: &'a [T], key: impl Fn(&'a T) -> K) -> Vec<&'a T> {
    let mut seen = std::collections::HashSet::new();
    let mut kept: Vec<&T> = items.iter().rev().filter(|i| seen.insert(key(i))).collect();
    kept.reverse();
    kept
}

pub(crate) fn resource_of(s: &str) -> Result<domain::Resource, crate::StoreError> {
    parse_resource(s)
}

pub(crate) fn reason_of(s: Option<String>) -> Result<Option<domain::ReasonCode>, crate::StoreError> {
    match s {
        Some(r) => Ok(Some(domain::ReasonCode::parse(&r).ok_or_else(|| crate::StoreError::Corrupt(format!("sync reason {r:?}")))?)),
        None => Ok(None),
    }
}

macro_rules! impl_sync_store {
    ($store:ty, $db:ty, $claim_sql:expr, $db_now:expr) => {
        impl $store {
            /// The fence check every guarded write starts with: touches the mailbox row (taking
            /// its write lock) only while `fence` is current, and returns the mailbox's owner
            /// (organization and user) then.
            async fn sync_fence_holds(
                tx: &mut sqlx::Transaction<'_, $db>,
                mailbox: uuid::Uuid,
                fence: i64,
                now: $crate::UnixTime,
            ) -> Result<Option<(uuid::Uuid, uuid::Uuid)>, $crate::StoreError> {
                use sqlx::Row as _;
                let row = sqlx::query(
                    "UPDATE sync_mailboxes SET last_commit_at = $1 WHERE id = $2 AND fence = $3 AND lease_owner IS NOT NULL \
                     RETURNING org_id, user_id",
                )
                .bind(now)
                .bind(mailbox)
                .bind(fence)
                .fetch_optional(&mut **tx)
                .await?;
                row.map(|r| Ok((r.try_get("org_id")?, r.try_get("user_id")?))).transpose()
            }
        }

        impl $store {
            /// A transaction for a guarded write, begun only while `fence` is current (the
            /// mailbox row then stays locked until it ends); `None`, with nothing written, when
            /// another worker holds the mailbox now.
            async fn begin_fenced(
                &self,
                mailbox: uuid::Uuid,
                fence: i64,
                now: $crate::UnixTime,
            ) -> Result<Option<sqlx::Transaction<'_, $db>>, $crate::StoreError> {
                Ok(self.begin_fenced_owned(mailbox, fence, now).await?.map(|(tx, _)| tx))
            }

            /// [`Self::begin_fenced`], with the mailbox's owner (organization, user).
            async fn begin_fenced_owned(
                &self,
                mailbox: uuid::Uuid,
                fence: i64,
                now: $crate::UnixTime,
            ) -> Result<Option<(sqlx::Transaction<'_, $db>, (uuid::Uuid, uuid::Uuid))>, $crate::StoreError> {
                let mut tx = self.begin_write().await?;
                match Self::sync_fence_holds(&mut tx, mailbox, fence, now).await? {
                    Some(owner) => Ok(Some((tx, owner))),
                    None => {
                        tx.rollback().await?;
                        Ok(None)
                    }
                }
            }
        }

        impl $store {
            /// The page's cursor, made at the start of a full round when it is the first page of
            /// its container: `(round, full_round)`, in one statement.
            async fn page_cursor(
                tx: &mut sqlx::Transaction<'_, $db>,
                page: &$crate::sync::PageCommit,
            ) -> Result<(i64, bool), $crate::StoreError> {
                use sqlx::Row as _;
                let cursor = sqlx::query(
                    "INSERT INTO sync_cursors (mailbox_id, resource, container, link, link_is_delta, round, full_round, updated_at) \
                     VALUES ($1, $2, $3, NULL, FALSE, 1, TRUE, $4) ON CONFLICT (mailbox_id, resource, container) \
                     DO UPDATE SET updated_at = excluded.updated_at RETURNING round, full_round",
                )
                .bind(page.mailbox_id)
                .bind(page.resource.as_str())
                .bind(&page.container)
                .bind(page.now)
                .fetch_one(&mut **tx)
                .await?;
                Ok((cursor.try_get("round")?, cursor.try_get("full_round")?))
            }

            /// Upserts the page's items, seen in `round`, for the mailbox's `owner` (organization,
            /// user): one multi-row statement per [`UPSERT_ROWS`] items. Returns how many are new.
            async fn upsert_page_items(
                tx: &mut sqlx::Transaction<'_, $db>,
                page: &$crate::sync::PageCommit,
                owner: (uuid::Uuid, uuid::Uuid),
                round: i64,
            ) -> Result<u64, $crate::StoreError> {
                if page.upserts.is_empty() {
                    return Ok(0);
                }
                let ids: std::collections::BTreeSet<&str> = page.upserts.iter().map(|i| i.graph_id.as_str()).collect();
                let existing = Self::stored_of(tx, page, &ids).await?;
                let rows = $crate::sync_common::last_of_each(&page.upserts, |i| i.graph_id.as_str());
                for chunk in rows.chunks($crate::sync_common::UPSERT_ROWS) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO sync_items (mailbox_id, org_id, user_id, resource, container, graph_id, title, subtitle, preview, \
                           occurred_at, data, search_text, seen_round, updated_at) ",
                    );
                    q.push_values(chunk, |mut row, item| {
                        row.push_bind(page.mailbox_id)
                            .push_bind(owner.0)
                            .push_bind(owner.1)
                            .push_bind(page.resource.as_str())
                            .push_bind(page.container.clone())
                            .push_bind(item.graph_id.clone())
                            .push_bind(item.title.clone())
                            .push_bind(item.subtitle.clone())
                            .push_bind(item.preview.clone())
                            .push_bind(item.occurred_at)
                            .push_bind(item.data.clone())
                            .push_bind(item.search_text())
                            .push_bind(round)
                            .push_bind(page.now);
                    });
                    q.push(
                        " ON CONFLICT (mailbox_id, resource, container, graph_id) DO UPDATE SET title = excluded.title, \
                           subtitle = excluded.subtitle, preview = excluded.preview, occurred_at = excluded.occurred_at, \
                           data = excluded.data, search_text = excluded.search_text, seen_round = excluded.seen_round, \
                           updated_at = excluded.updated_at",
                    );
                    q.build().execute(&mut **tx).await?;
                }
                Ok((ids.len() as u64).saturating_sub(existing))
            }

            /// Removes the page's deleted items (one statement per [`UPSERT_ROWS`] ids); returns
            /// how many were stored.
            async fn delete_page_items(
                tx: &mut sqlx::Transaction<'_, $db>,
                page: &$crate::sync::PageCommit,
            ) -> Result<u64, $crate::StoreError> {
                let mut removed = 0;
                for chunk in page.deletes.chunks($crate::sync_common::UPSERT_ROWS) {
                    let mut q = sqlx::QueryBuilder::<$db>::new("DELETE FROM sync_items WHERE mailbox_id = ");
                    q.push_bind(page.mailbox_id).push(" AND resource = ").push_bind(page.resource.as_str());
                    q.push(" AND container = ").push_bind(page.container.clone()).push(" AND graph_id IN (");
                    let mut list = q.separated(", ");
                    for id in chunk {
                        list.push_bind(id.clone());
                    }
                    q.push(")");
                    removed += q.build().execute(&mut **tx).await?.rows_affected();
                }
                Ok(removed)
            }

            /// How many of `ids` the page's container already holds. The lists are padded (with
            /// their last id) to a power of two, so a handful of statement shapes serve every page.
            async fn stored_of(
                tx: &mut sqlx::Transaction<'_, $db>,
                page: &$crate::sync::PageCommit,
                ids: &std::collections::BTreeSet<&str>,
            ) -> Result<u64, $crate::StoreError> {
                let ids: Vec<&str> = ids.iter().copied().collect();
                let mut stored = 0;
                for chunk in ids.chunks(512) {
                    let mut q = sqlx::QueryBuilder::<$db>::new("SELECT COUNT(*) FROM sync_items WHERE mailbox_id = ");
                    q.push_bind(page.mailbox_id).push(" AND resource = ").push_bind(page.resource.as_str());
                    q.push(" AND container = ").push_bind(page.container.clone()).push(" AND graph_id IN (");
                    let mut list = q.separated(", ");
                    let Some(last) = chunk.last() else { continue };
                    let padded = chunk.iter().chain(std::iter::repeat_n(last, chunk.len().next_power_of_two() - chunk.len()));
                    for id in padded {
                        list.push_bind(id.to_string());
                    }
                    q.push(")");
                    let n: i64 = q.build_query_scalar().fetch_one(&mut **tx).await?;
                    stored += u64::try_from(n).unwrap_or(0);
                }
                Ok(stored)
            }

            /// Moves the page's cursor on; at the end of a full round, removes what the round did
            /// not see and returns how many.
            async fn advance_page_cursor(
                tx: &mut sqlx::Transaction<'_, $db>,
                page: &$crate::sync::PageCommit,
                round: i64,
                full_round: bool,
            ) -> Result<u64, $crate::StoreError> {
                let (link, is_delta) = page.cursor.link();
                let mut swept = 0;
                if is_delta && full_round {
                    // The full round is complete: whatever it did not see is gone.
                    let done = sqlx::query(
                        "DELETE FROM sync_items WHERE mailbox_id = $1 AND resource = $2 AND container = $3 AND seen_round < $4",
                    )
                    .bind(page.mailbox_id)
                    .bind(page.resource.as_str())
                    .bind(&page.container)
                    .bind(round)
                    .execute(&mut **tx)
                    .await?;
                    swept = done.rows_affected();
                }
                // A deltaLink ends the round (and with it a full round); a nextLink keeps it going.
                sqlx::query(
                    "UPDATE sync_cursors SET link = $1, link_is_delta = $2, full_round = (full_round AND NOT $2), updated_at = $3 \
                     WHERE mailbox_id = $4 AND resource = $5 AND container = $6",
                )
                .bind(link)
                .bind(is_delta)
                .bind(page.now)
                .bind(page.mailbox_id)
                .bind(page.resource.as_str())
                .bind(&page.container)
                .execute(&mut **tx)
                .await?;
                Ok(swept)
            }

            /// Keeps the mailbox's item count of `resource` right: `added` new items, `removed`
            /// gone, in the transaction that added and removed them.
            async fn count_items(
                tx: &mut sqlx::Transaction<'_, $db>,
                mailbox: uuid::Uuid,
                resource: ::domain::Resource,
                added: u64,
                removed: u64,
            ) -> Result<(), $crate::StoreError> {
                let delta = i64::try_from(added).unwrap_or(i64::MAX) - i64::try_from(removed).unwrap_or(i64::MAX);
                if delta == 0 {
                    return Ok(());
                }
                sqlx::query(
                    "INSERT INTO sync_status (mailbox_id, resource, items) VALUES ($1, $2, $3) \
                     ON CONFLICT (mailbox_id, resource) DO UPDATE SET items = sync_status.items + excluded.items",
                )
                .bind(mailbox)
                .bind(resource.as_str())
                .bind(delta)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }
        }

        impl $store {
            /// The overview's mailboxes, each with its status per resource (one statement: the
            /// mailboxes joined with their status rows).
            async fn overview_statuses(
                &self,
                org: domain::OrgId,
                filter: &$crate::sync::MailboxFilter,
            ) -> Result<Vec<$crate::sync::MailboxOverview>, $crate::StoreError> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    $crate::sync_common::mailbox_columns!(),
                    ", s.resource, s.last_success_at, s.last_error, s.last_error_at, s.throttled_until, s.first_sync_done, \
                       s.estimated_total, s.items \
                     FROM sync_mailboxes m LEFT JOIN sync_status s ON s.mailbox_id = m.id",
                    $crate::sync_common::overview_filter!(),
                    " ORDER BY m.created_at, m.id, s.resource"
                ))
                .bind(org.as_uuid())
                .bind(filter.connection)
                .bind(filter.user.map(|u| u.as_uuid()))
                .bind(filter.synced_only)
                .fetch_all(&self.pool)
                .await?;
                let mut out: Vec<$crate::sync::MailboxOverview> = Vec::new();
                for row in rows {
                    let mailbox = $crate::sync_common::mailbox_from_row!(row)?;
                    let resource = $crate::sync_common::resource_status_from_row!(row)?;
                    let same = out.last().is_some_and(|o| o.status.mailbox.id == mailbox.id);
                    if !same {
                        out.push($crate::sync::MailboxOverview::new(mailbox));
                    }
                    if let (Some(o), Some(r)) = (out.last_mut(), resource) {
                        o.status.resources.push(r);
                    }
                }
                Ok(out)
            }

            /// The overview's mailboxes' cursors, one per subscription target (see
            /// [`MailboxOverview::cursors`](crate::sync::MailboxOverview)): whether a round from
            /// scratch is running there, no links. A mailbox's many mail folders come back as one
            /// row, so the status pages read a few rows per mailbox rather than one per folder.
            async fn overview_cursors(
                &self,
                org: domain::OrgId,
                filter: &$crate::sync::MailboxFilter,
            ) -> Result<Vec<(uuid::Uuid, $crate::sync::CursorState)>, $crate::StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query(concat!(
                    "SELECT c.mailbox_id, c.resource, CASE WHEN c.resource = 'tasks' THEN c.container ELSE '' END AS target, \
                       MAX(CASE WHEN c.full_round THEN 1 ELSE 0 END) = 1 AS full_round \
                     FROM sync_cursors c JOIN sync_mailboxes m ON m.id = c.mailbox_id",
                    $crate::sync_common::overview_filter!(),
                    " GROUP BY c.mailbox_id, c.resource, target ORDER BY c.mailbox_id, c.resource, target"
                ))
                .bind(org.as_uuid())
                .bind(filter.connection)
                .bind(filter.user.map(|u| u.as_uuid()))
                .bind(filter.synced_only)
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter()
                    .map(|r| {
                        let resource: String = r.try_get("resource")?;
                        let cursor = $crate::sync::CursorState {
                            resource: $crate::sync_common::resource_of(&resource)?,
                            container: r.try_get("target")?,
                            full_round: r.try_get("full_round")?,
                        };
                        Ok((r.try_get("mailbox_id")?, cursor))
                    })
                    .collect()
            }

            /// The overview's mailboxes' subscriptions, as far as the pages show them (never a
            /// client state: nothing is unsealed).
            async fn overview_subscriptions(
                &self,
                org: domain::OrgId,
                filter: &$crate::sync::MailboxFilter,
            ) -> Result<Vec<(uuid::Uuid, $crate::sync::SubscriptionStatus)>, $crate::StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query(concat!(
                    "SELECT s.mailbox_id, s.resource, s.container, s.failure, s.failure_detail, \
                       CASE WHEN s.graph_id IS NOT NULL AND s.client_state IS NOT NULL THEN s.expires_at END AS live_until \
                     FROM sync_subscriptions s JOIN sync_mailboxes m ON m.id = s.mailbox_id",
                    $crate::sync_common::overview_filter!(),
                    " ORDER BY s.mailbox_id, s.resource, s.container"
                ))
                .bind(org.as_uuid())
                .bind(filter.connection)
                .bind(filter.user.map(|u| u.as_uuid()))
                .bind(filter.synced_only)
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter()
                    .map(|r| {
                        let resource: String = r.try_get("resource")?;
                        let live_until: Option<i64> = r.try_get("live_until")?;
                        // A live one's failure (none is stored) is not looked at.
                        let failure = match $crate::sync_common::reason_of(r.try_get("failure")?)? {
                            Some(reason) if live_until.is_none() => {
                                Some((reason, r.try_get::<Option<String>, _>("failure_detail")?.unwrap_or_default()))
                            }
                            _ => None,
                        };
                        let status = $crate::sync::SubscriptionStatus {
                            resource: $crate::sync_common::resource_of(&resource)?,
                            container: r.try_get("container")?,
                            live_until,
                            failure,
                        };
                        Ok((r.try_get("mailbox_id")?, status))
                    })
                    .collect()
            }
        }

        #[async_trait::async_trait]
        impl $crate::sync::SyncStore for $store {
            async fn ensure_sync_mailbox(
                &self,
                new: &$crate::sync::NewSyncMailbox,
                now: $crate::UnixTime,
            ) -> Result<$crate::sync::SyncMailbox, $crate::StoreError> {
                let graph_user = new.graph_user_id.clone().unwrap_or_default();
                sqlx::query(
                    "INSERT INTO sync_mailboxes (id, org_id, connection_id, user_id, graph_user_id, next_due_at, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (connection_id, graph_user_id) DO NOTHING",
                )
                .bind(uuid::Uuid::new_v4())
                .bind(new.org_id.as_uuid())
                .bind(new.connection_id)
                .bind(new.user_id.as_uuid())
                .bind(&graph_user)
                .bind(now)
                .execute(self.writer())
                .await?;
                let row = sqlx::query(concat!(
                    "SELECT ",
                    $crate::sync_common::mailbox_columns!(),
                    " FROM sync_mailboxes WHERE connection_id = $1 AND graph_user_id = $2"
                ))
                .bind(new.connection_id)
                .bind(&graph_user)
                .fetch_one(&self.pool)
                .await?;
                $crate::sync_common::mailbox_from_row!(row)
            }

            async fn sync_mailbox(&self, id: uuid::Uuid) -> Result<Option<$crate::sync::SyncMailbox>, $crate::StoreError> {
                let row = sqlx::query(concat!("SELECT ", $crate::sync_common::mailbox_columns!(), " FROM sync_mailboxes WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                match row {
                    Some(r) => Ok(Some($crate::sync_common::mailbox_from_row!(r)?)),
                    None => Ok(None),
                }
            }

            async fn sync_mailboxes_in_org(&self, org: domain::OrgId) -> Result<Vec<$crate::sync::SyncMailbox>, $crate::StoreError> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    $crate::sync_common::mailbox_columns!(),
                    " FROM sync_mailboxes WHERE org_id = $1 ORDER BY created_at, id"
                ))
                .bind(org.as_uuid())
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(|r| $crate::sync_common::mailbox_from_row!(r)).collect()
            }

            async fn orgs_with_connections(&self) -> Result<Vec<domain::OrgId>, $crate::StoreError> {
                let ids: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT DISTINCT org_id FROM connections ORDER BY org_id")
                    .fetch_all(&self.pool)
                    .await?;
                Ok(ids.into_iter().map(domain::OrgId).collect())
            }

            async fn set_mailbox_paused(
                &self,
                id: uuid::Uuid,
                paused: Option<::domain::PauseReason>,
                now: $crate::UnixTime,
            ) -> Result<(), $crate::StoreError> {
                match paused {
                    Some(p) => {
                        sqlx::query("UPDATE sync_mailboxes SET paused_reason = $1 WHERE id = $2")
                            .bind(p.as_str())
                            .bind(id)
                            .execute(self.writer())
                            .await?;
                    }
                    None => {
                        // Resuming makes it due now, unless it was not paused at all.
                        sqlx::query(
                            "UPDATE sync_mailboxes SET paused_reason = NULL, \
                               next_due_at = CASE WHEN paused_reason IS NULL THEN next_due_at ELSE $1 END WHERE id = $2",
                        )
                        .bind(now)
                        .bind(id)
                        .execute(self.writer())
                        .await?;
                    }
                }
                Ok(())
            }

            async fn remove_sync_mailbox(&self, id: uuid::Uuid) -> Result<bool, $crate::StoreError> {
                let done = sqlx::query("DELETE FROM sync_mailboxes WHERE id = $1").bind(id).execute(self.writer()).await?;
                Ok(done.rows_affected() > 0)
            }

            async fn request_sync_now(&self, id: uuid::Uuid) -> Result<(), $crate::StoreError> {
                sqlx::query("UPDATE sync_mailboxes SET next_due_at = 0 WHERE id = $1").bind(id).execute(self.writer()).await?;
                Ok(())
            }

            async fn claim_due_mailboxes(
                &self,
                owner: &str,
                now: $crate::UnixTime,
                ttl_secs: i64,
                limit: u32,
            ) -> Result<Vec<$crate::sync::Lease>, $crate::StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query($claim_sql)
                    .bind(owner)
                    .bind(ttl_secs)
                    .bind(now)
                    .bind(i64::from(limit))
                    .fetch_all(self.writer())
                    .await?;
                rows.into_iter()
                    .map(|r| {
                        let mailbox = $crate::sync_common::mailbox_from_row!(r)?;
                        Ok($crate::sync::Lease {
                            fence: mailbox.fence,
                            expires_at: mailbox.lease_expires_at,
                            taken_over: r.try_get("claim_was_takeover")?,
                            writes_waiting: r.try_get("writes_waiting")?,
                            has_subscriptions: r.try_get("has_subscriptions")?,
                            mailbox,
                        })
                    })
                    .collect()
            }

            async fn next_due_at(&self) -> Result<Option<$crate::UnixTime>, $crate::StoreError> {
                let next: Option<i64> = sqlx::query_scalar(
                    "SELECT MIN(m.next_due_at) FROM sync_mailboxes m JOIN connections c ON c.id = m.connection_id \
                     WHERE m.paused_reason IS NULL AND c.state = 'active' AND m.lease_owner IS NULL",
                )
                .fetch_one(&self.pool)
                .await?;
                Ok(next)
            }

            async fn renew_lease(&self, mailbox: uuid::Uuid, fence: i64, ttl_secs: i64) -> Result<bool, $crate::StoreError> {
                let done = sqlx::query(concat!(
                    "UPDATE sync_mailboxes SET lease_expires_at = ",
                    $db_now,
                    " + $1 WHERE id = $2 AND fence = $3 AND lease_owner IS NOT NULL"
                ))
                .bind(ttl_secs)
                .bind(mailbox)
                .bind(fence)
                .execute(self.writer())
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn release_lease(&self, mailbox: uuid::Uuid, fence: i64, next_due_at: $crate::UnixTime) -> Result<bool, $crate::StoreError> {
                // A "sync now" that arrived during the run (next_due_at = 0) is kept, and so are
                // change notifications (pending bits); the ones this run claimed are done.
                let done = sqlx::query(
                    "UPDATE sync_mailboxes SET lease_owner = NULL, lease_expires_at = 0, claimed_resources = 0, \
                       next_due_at = CASE WHEN next_due_at = 0 THEN 0 ELSE $1 END \
                     WHERE id = $2 AND fence = $3 AND lease_owner IS NOT NULL",
                )
                .bind(next_due_at)
                .bind(mailbox)
                .bind(fence)
                .execute(self.writer())
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn cursors(&self, mailbox: uuid::Uuid) -> Result<Vec<$crate::sync::SyncCursor>, $crate::StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query(
                    "SELECT resource, container, link, link_is_delta, round, full_round FROM sync_cursors \
                     WHERE mailbox_id = $1 ORDER BY resource, container",
                )
                .bind(mailbox)
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter()
                    .map(|r| {
                        let resource: String = r.try_get("resource")?;
                        Ok($crate::sync::SyncCursor {
                            resource: $crate::sync_common::resource_of(&resource)?,
                            container: r.try_get("container")?,
                            link: r.try_get("link")?,
                            link_is_delta: r.try_get("link_is_delta")?,
                            round: r.try_get("round")?,
                            full_round: r.try_get("full_round")?,
                        })
                    })
                    .collect()
            }

            async fn commit_page(&self, page: &$crate::sync::PageCommit) -> Result<$crate::sync::CommitOutcome, $crate::StoreError> {
                let Some((mut tx, owner)) = self.begin_fenced_owned(page.mailbox_id, page.fence, page.now).await? else {
                    return Ok($crate::sync::CommitOutcome::LeaseLost);
                };
                let (round, full_round) = Self::page_cursor(&mut tx, page).await?;
                let added = Self::upsert_page_items(&mut tx, page, owner, round).await?;
                let removed = Self::delete_page_items(&mut tx, page).await?;
                let swept = Self::advance_page_cursor(&mut tx, page, round, full_round).await?;
                Self::count_items(&mut tx, page.mailbox_id, page.resource, added, removed + swept).await?;
                tx.commit().await?;
                Ok($crate::sync::CommitOutcome::Committed { swept })
            }

            async fn reset_cursor(
                &self,
                mailbox: uuid::Uuid,
                fence: i64,
                resource: ::domain::Resource,
                container: &str,
                now: $crate::UnixTime,
            ) -> Result<$crate::sync::CommitOutcome, $crate::StoreError> {
                let Some(mut tx) = self.begin_fenced(mailbox, fence, now).await? else {
                    return Ok($crate::sync::CommitOutcome::LeaseLost);
                };
                sqlx::query(
                    "UPDATE sync_cursors SET link = NULL, link_is_delta = FALSE, round = round + 1, full_round = TRUE, updated_at = $1 \
                     WHERE mailbox_id = $2 AND resource = $3 AND container = $4",
                )
                .bind(now)
                .bind(mailbox)
                .bind(resource.as_str())
                .bind(container)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok($crate::sync::CommitOutcome::Committed { swept: 0 })
            }

            async fn drop_container(
                &self,
                mailbox: uuid::Uuid,
                fence: i64,
                resource: ::domain::Resource,
                container: &str,
            ) -> Result<$crate::sync::CommitOutcome, $crate::StoreError> {
                let Some(mut tx) = self.begin_fenced(mailbox, fence, $crate::now_unix()).await? else {
                    return Ok($crate::sync::CommitOutcome::LeaseLost);
                };
                let done = sqlx::query("DELETE FROM sync_items WHERE mailbox_id = $1 AND resource = $2 AND container = $3")
                    .bind(mailbox)
                    .bind(resource.as_str())
                    .bind(container)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM sync_cursors WHERE mailbox_id = $1 AND resource = $2 AND container = $3")
                    .bind(mailbox)
                    .bind(resource.as_str())
                    .bind(container)
                    .execute(&mut *tx)
                    .await?;
                Self::count_items(&mut tx, mailbox, resource, 0, done.rows_affected()).await?;
                tx.commit().await?;
                Ok($crate::sync::CommitOutcome::Committed { swept: done.rows_affected() })
            }

            async fn commit_quiet(
                &self,
                mailbox: uuid::Uuid,
                fence: i64,
                links: &[$crate::sync::PageCommit],
                succeeded: &[::domain::Resource],
                now: $crate::UnixTime,
            ) -> Result<$crate::sync::CommitOutcome, $crate::StoreError> {
                let Some(mut tx) = self.begin_fenced(mailbox, fence, now).await? else {
                    return Ok($crate::sync::CommitOutcome::LeaseLost);
                };
                // Each in one statement: the links (a pass ends with one page per container), then
                // the passes. A completed pass also completes the resource's first sync.
                // One row per cursor, its last link: a statement must not update a row twice.
                let links = $crate::sync_common::last_of_each(links, |p| (p.resource, p.container.as_str()));
                if !links.is_empty() {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "UPDATE sync_cursors SET link = v.column3, link_is_delta = v.column4, updated_at = v.column5 FROM (",
                    );
                    q.push_values(links, |mut row, page| {
                        let (link, is_delta) = page.cursor.link();
                        row.push_bind(page.resource.as_str())
                            .push_bind(page.container.clone())
                            .push_bind(link.to_string())
                            .push_bind(is_delta)
                            .push_bind(page.now);
                    });
                    q.push(") AS v WHERE sync_cursors.mailbox_id = ")
                        .push_bind(mailbox)
                        .push(" AND sync_cursors.resource = v.column1 AND sync_cursors.container = v.column2 AND sync_cursors.full_round = FALSE");
                    q.build().execute(&mut *tx).await?;
                }
                if !succeeded.is_empty() {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO sync_status (mailbox_id, resource, last_success_at, last_error, last_error_at, throttled_until, first_sync_done) ",
                    );
                    q.push_values(succeeded, |mut row, resource| {
                        row.push_bind(mailbox)
                            .push_bind(resource.as_str())
                            .push_bind(now)
                            .push("NULL, NULL, NULL, TRUE");
                    });
                    q.push(
                        " ON CONFLICT (mailbox_id, resource) DO UPDATE SET \
                           last_success_at = excluded.last_success_at, last_error = NULL, last_error_at = NULL, throttled_until = NULL, \
                           first_sync_done = TRUE",
                    );
                    q.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok($crate::sync::CommitOutcome::Committed { swept: 0 })
            }

            async fn record_resource_error(
                &self,
                mailbox: uuid::Uuid,
                fence: i64,
                resource: ::domain::Resource,
                reason: domain::ReasonCode,
                throttled_until: Option<$crate::UnixTime>,
                now: $crate::UnixTime,
            ) -> Result<$crate::sync::CommitOutcome, $crate::StoreError> {
                let Some(mut tx) = self.begin_fenced(mailbox, fence, now).await? else {
                    return Ok($crate::sync::CommitOutcome::LeaseLost);
                };
                sqlx::query(
                    "INSERT INTO sync_status (mailbox_id, resource, last_error, last_error_at, throttled_until) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (mailbox_id, resource) DO UPDATE SET \
                       last_error = excluded.last_error, last_error_at = excluded.last_error_at, throttled_until = excluded.throttled_until",
                )
                .bind(mailbox)
                .bind(resource.as_str())
                .bind(reason.as_str())
                .bind(now)
                .bind(throttled_until)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok($crate::sync::CommitOutcome::Committed { swept: 0 })
            }

            async fn set_estimated_total(
                &self,
                mailbox: uuid::Uuid,
                resource: ::domain::Resource,
                total: Option<u64>,
            ) -> Result<(), $crate::StoreError> {
                let total = total.map(|t| i64::try_from(t).unwrap_or(i64::MAX));
                sqlx::query(
                    "INSERT INTO sync_status (mailbox_id, resource, estimated_total) VALUES ($1, $2, $3) \
                     ON CONFLICT (mailbox_id, resource) DO UPDATE SET estimated_total = excluded.estimated_total",
                )
                .bind(mailbox)
                .bind(resource.as_str())
                .bind(total)
                .execute(self.writer())
                .await?;
                Ok(())
            }

            async fn mailbox_status(&self, mailbox: uuid::Uuid) -> Result<Option<$crate::sync::MailboxStatus>, $crate::StoreError> {
                let Some(mb) = $crate::sync::SyncStore::sync_mailbox(self, mailbox).await? else {
                    return Ok(None);
                };
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    $crate::sync_common::status_columns!(),
                    " FROM sync_status WHERE mailbox_id = $1 ORDER BY resource"
                ))
                .bind(mailbox)
                .fetch_all(&self.pool)
                .await?;
                let mut resources = Vec::new();
                for r in rows {
                    resources.extend($crate::sync_common::resource_status_from_row!(r)?);
                }
                resources.sort_by_key(|r| r.resource);
                Ok(Some($crate::sync::MailboxStatus { mailbox: mb, resources }))
            }

            async fn org_sync_overview(
                &self,
                org: domain::OrgId,
                filter: &$crate::sync::MailboxFilter,
            ) -> Result<Vec<$crate::sync::MailboxOverview>, $crate::StoreError> {
                let mut out = self.overview_statuses(org, filter).await?;
                let at: std::collections::HashMap<uuid::Uuid, usize> =
                    out.iter().enumerate().map(|(i, o)| (o.status.mailbox.id, i)).collect();
                for (mailbox, cursor) in self.overview_cursors(org, filter).await? {
                    if let Some(&i) = at.get(&mailbox) {
                        out[i].cursors.push(cursor);
                    }
                }
                for (mailbox, subscription) in self.overview_subscriptions(org, filter).await? {
                    if let Some(&i) = at.get(&mailbox) {
                        out[i].subscriptions.push(subscription);
                    }
                }
                Ok(out)
            }

            async fn activity_items(&self, q: &$crate::sync::ItemQuery) -> Result<Vec<$crate::sync::ActivityItem>, $crate::StoreError> {
                use sqlx::Row as _;
                let pattern = q.text.as_deref().map(str::trim).filter(|t| !t.is_empty()).map($crate::sync::like_pattern);
                let rows = sqlx::query(
                    "SELECT resource, container, graph_id, title, subtitle, preview, occurred_at, data FROM sync_items \
                     WHERE org_id = $1 AND user_id = $2 AND ($3 IS NULL OR resource = $3) \
                       AND ($4 IS NULL OR search_text LIKE $4 ESCAPE '\\') \
                     ORDER BY COALESCE(occurred_at, 0) DESC, graph_id LIMIT $5 OFFSET $6",
                )
                .bind(q.org_id.as_uuid())
                .bind(q.user_id.as_uuid())
                .bind(q.resource.map(|r| r.as_str()))
                .bind(pattern)
                .bind(i64::from(q.limit.min(500)))
                .bind(i64::from(q.offset))
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter()
                    .map(|r| {
                        let resource: String = r.try_get("resource")?;
                        Ok($crate::sync::ActivityItem {
                            resource: $crate::sync_common::resource_of(&resource)?,
                            item: $crate::sync_common::item_from_row!(r)?,
                        })
                    })
                    .collect()
            }

            async fn mailbox_items(
                &self,
                mailbox: uuid::Uuid,
                resource: ::domain::Resource,
            ) -> Result<Vec<$crate::sync::SyncedItem>, $crate::StoreError> {
                let rows = sqlx::query(
                    "SELECT container, graph_id, title, subtitle, preview, occurred_at, data FROM sync_items \
                     WHERE mailbox_id = $1 AND resource = $2 ORDER BY container, graph_id",
                )
                .bind(mailbox)
                .bind(resource.as_str())
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(|r| $crate::sync_common::item_from_row!(r)).collect()
            }

            async fn mailbox_item(
                &self,
                mailbox: uuid::Uuid,
                resource: ::domain::Resource,
                graph_id: &str,
            ) -> Result<Option<$crate::sync::SyncedItem>, $crate::StoreError> {
                let row = sqlx::query(
                    "SELECT container, graph_id, title, subtitle, preview, occurred_at, data FROM sync_items \
                     WHERE mailbox_id = $1 AND resource = $2 AND graph_id = $3 LIMIT 1",
                )
                .bind(mailbox)
                .bind(resource.as_str())
                .bind(graph_id)
                .fetch_optional(&self.pool)
                .await?;
                match row {
                    Some(r) => Ok(Some($crate::sync_common::item_from_row!(r)?)),
                    None => Ok(None),
                }
            }

            async fn connection_tokens(&self, connection: uuid::Uuid) -> Result<Option<$crate::sync::ConnectionTokens>, $crate::StoreError> {
                use sqlx::Row as _;
                let Some(row) = sqlx::query(
                    "SELECT id, org_id, ms_tenant_id, access_token, access_expires_at, refresh_token, state, token_version \
                     FROM connections WHERE id = $1",
                )
                .bind(connection)
                .fetch_optional(&self.pool)
                .await?
                else {
                    return Ok(None);
                };
                let access: Vec<u8> = row.try_get("access_token")?;
                let refresh: Option<Vec<u8>> = row.try_get("refresh_token")?;
                let state: String = row.try_get("state")?;
                Ok(Some($crate::sync::ConnectionTokens {
                    connection_id: connection,
                    org_id: domain::OrgId(row.try_get("org_id")?),
                    ms_tenant_id: row.try_get("ms_tenant_id")?,
                    access_token: self.keyring.open_str(&access, &$crate::common::token_binding("access_token", connection))?,
                    access_expires_at: row.try_get("access_expires_at")?,
                    refresh_token: match refresh {
                        Some(rt) => Some(self.keyring.open_str(&rt, &$crate::common::token_binding("refresh_token", connection))?),
                        None => None,
                    },
                    needs_attention: state != domain::ConnectionState::Active.as_str(),
                    version: row.try_get("token_version")?,
                }))
            }

            async fn save_refreshed_tokens(
                &self,
                connection: uuid::Uuid,
                version: i64,
                access_token: &$crate::secrets::SecretString,
                access_expires_at: $crate::UnixTime,
                refresh_token: Option<&$crate::secrets::SecretString>,
                now: $crate::UnixTime,
            ) -> Result<bool, $crate::StoreError> {
                let access = self.keyring.seal_str(access_token, &$crate::common::token_binding("access_token", connection))?;
                let refresh = match refresh_token {
                    Some(rt) => Some(self.keyring.seal_str(rt, &$crate::common::token_binding("refresh_token", connection))?),
                    None => None,
                };
                // One statement: both tokens or neither, and only over the tokens this refresh
                // started from. Microsoft may omit a new refresh token; then the stored one stays.
                // The refresh proved the grant alive: a needs-attention mark a racing refresh of
                // the same (then already rotated) tokens made is lifted.
                let done = sqlx::query(
                    "UPDATE connections SET access_token = $1, access_expires_at = $2, \
                       refresh_token = COALESCE($3, refresh_token), updated_at = $4, \
                       token_version = token_version + 1, state = $5, reason = NULL, reason_at = NULL \
                     WHERE id = $6 AND token_version = $7",
                )
                .bind(access)
                .bind(access_expires_at)
                .bind(refresh)
                .bind(now)
                .bind(domain::ConnectionState::Active.as_str())
                .bind(connection)
                .bind(version)
                .execute(self.writer())
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn mark_connection_needs_attention(
                &self,
                connection: uuid::Uuid,
                version: i64,
                reason: domain::ReasonCode,
                now: $crate::UnixTime,
            ) -> Result<bool, $crate::StoreError> {
                let done = sqlx::query(
                    "UPDATE connections SET state = $1, reason = $2, reason_at = $3, updated_at = $3 \
                     WHERE id = $4 AND token_version = $5",
                )
                .bind(domain::ConnectionState::NeedsAttention.as_str())
                .bind(reason.as_str())
                .bind(now)
                .bind(connection)
                .bind(version)
                .execute(self.writer())
                .await?;
                Ok(done.rows_affected() > 0)
            }
        }
    };
}
pub(crate) use impl_sync_store;
