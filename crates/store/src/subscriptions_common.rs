//! [`crate::subscriptions::SubscriptionStore`], written once for both databases: the SQL is the
//! same, only the database and the store type differ.

/// Columns of a [`crate::subscriptions::Subscription`], in the order `subscription_from_row` reads.
macro_rules! subscription_columns {
    () => {
        "s.mailbox_id, s.resource, s.container, s.graph_id, s.client_state, s.expires_at, s.renew, s.failure, s.failure_detail, \
         s.attempted_at"
    };
}
pub(crate) use subscription_columns;

/// A client state is sealed bound to its subscription's Microsoft id: a sealed value copied onto
/// another row does not open.
pub(crate) fn client_state_binding(graph_id: &str) -> crate::secrets::Binding {
    crate::secrets::Binding::new("sync_subscriptions", "client_state", graph_id)
}

/// The stored form of a state: (graph_id, sealed client state, expires_at, renew, failure, detail).
pub(crate) type StateColumns = (Option<String>, Option<Vec<u8>>, i64, bool, Option<&'static str>, Option<String>);

pub(crate) fn state_columns(
    keyring: &crate::secrets::Keyring,
    state: &crate::subscriptions::SubscriptionState,
) -> Result<StateColumns, crate::StoreError> {
    use crate::subscriptions::SubscriptionState;
    Ok(match state {
        SubscriptionState::Live { graph_id, client_state, expires_at, renew } => {
            let sealed = keyring.seal_str(client_state, &client_state_binding(graph_id))?;
            (Some(graph_id.clone()), Some(sealed), *expires_at, *renew, None, None)
        }
        SubscriptionState::Failed { reason, detail } => (None, None, 0, false, Some(reason.as_str()), Some(detail.clone())),
        SubscriptionState::Missing => (None, None, 0, false, None, None),
    })
}

macro_rules! subscription_from_row {
    ($keyring:expr, $row:expr) => {{
        use sqlx::Row as _;
        let row = &$row;
        (|| -> Result<$crate::subscriptions::Subscription, $crate::StoreError> {
            use $crate::subscriptions::SubscriptionState;
            let graph_id: Option<String> = row.try_get("graph_id")?;
            let sealed: Option<Vec<u8>> = row.try_get("client_state")?;
            let failure: Option<String> = row.try_get("failure")?;
            let state = match (graph_id, sealed, failure) {
                (Some(graph_id), Some(sealed), _) => SubscriptionState::Live {
                    client_state: $keyring.open_str(&sealed, &$crate::subscriptions_common::client_state_binding(&graph_id))?,
                    graph_id,
                    expires_at: row.try_get("expires_at")?,
                    renew: row.try_get("renew")?,
                },
                (_, _, Some(reason)) => SubscriptionState::Failed {
                    reason: $crate::sync_common::reason_of(Some(reason))?.unwrap_or(domain::ReasonCode::Unexpected),
                    detail: row.try_get::<Option<String>, _>("failure_detail")?.unwrap_or_default(),
                },
                _ => SubscriptionState::Missing,
            };
            let resource: String = row.try_get("resource")?;
            Ok($crate::subscriptions::Subscription {
                mailbox_id: row.try_get("mailbox_id")?,
                resource: $crate::sync_common::resource_of(&resource)?,
                container: row.try_get("container")?,
                state,
                attempted_at: row.try_get("attempted_at")?,
            })
        })()
    }};
}
pub(crate) use subscription_from_row;

macro_rules! impl_subscription_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::subscriptions::SubscriptionStore for $store {
            async fn mailbox_subscriptions(
                &self,
                mailbox: uuid::Uuid,
            ) -> Result<Vec<$crate::subscriptions::Subscription>, $crate::StoreError> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    $crate::subscriptions_common::subscription_columns!(),
                    " FROM sync_subscriptions s WHERE s.mailbox_id = $1 ORDER BY s.resource, s.container"
                ))
                .bind(mailbox)
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(|r| $crate::subscriptions_common::subscription_from_row!(self.keyring, r)).collect()
            }

            async fn save_subscription(
                &self,
                fence: i64,
                s: &$crate::subscriptions::Subscription,
                now: $crate::UnixTime,
            ) -> Result<$crate::sync::CommitOutcome, $crate::StoreError> {
                let (graph_id, sealed, expires_at, renew, failure, detail) =
                    $crate::subscriptions_common::state_columns(&self.keyring, &s.state)?;
                let Some(mut tx) = self.begin_fenced(s.mailbox_id, fence, now).await? else {
                    return Ok($crate::sync::CommitOutcome::LeaseLost);
                };
                sqlx::query(
                    "INSERT INTO sync_subscriptions \
                       (mailbox_id, resource, container, graph_id, client_state, expires_at, renew, failure, failure_detail, attempted_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (mailbox_id, resource, container) DO UPDATE SET graph_id = excluded.graph_id, \
                       client_state = excluded.client_state, expires_at = excluded.expires_at, renew = excluded.renew, \
                       failure = excluded.failure, failure_detail = excluded.failure_detail, attempted_at = excluded.attempted_at",
                )
                .bind(s.mailbox_id)
                .bind(s.resource.as_str())
                .bind(&s.container)
                .bind(graph_id)
                .bind(sealed)
                .bind(expires_at)
                .bind(renew)
                .bind(failure)
                .bind(detail)
                .bind(s.attempted_at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok($crate::sync::CommitOutcome::Committed { swept: 0 })
            }

            async fn remove_subscription(
                &self,
                mailbox: uuid::Uuid,
                fence: i64,
                resource: domain::Resource,
                container: &str,
                now: $crate::UnixTime,
            ) -> Result<$crate::sync::CommitOutcome, $crate::StoreError> {
                let Some(mut tx) = self.begin_fenced(mailbox, fence, now).await? else {
                    return Ok($crate::sync::CommitOutcome::LeaseLost);
                };
                sqlx::query("DELETE FROM sync_subscriptions WHERE mailbox_id = $1 AND resource = $2 AND container = $3")
                    .bind(mailbox)
                    .bind(resource.as_str())
                    .bind(container)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok($crate::sync::CommitOutcome::Committed { swept: 0 })
            }

            async fn forget_subscriptions(&self, mailbox: uuid::Uuid) -> Result<u64, $crate::StoreError> {
                let done = sqlx::query("DELETE FROM sync_subscriptions WHERE mailbox_id = $1").bind(mailbox).execute(self.writer()).await?;
                Ok(done.rows_affected())
            }

            async fn subscription_by_graph_id(
                &self,
                graph_id: &str,
            ) -> Result<Option<$crate::subscriptions::Subscription>, $crate::StoreError> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    $crate::subscriptions_common::subscription_columns!(),
                    " FROM sync_subscriptions s WHERE s.graph_id = $1"
                ))
                .bind(graph_id)
                .fetch_optional(&self.pool)
                .await?;
                match row {
                    Some(r) => Ok(Some($crate::subscriptions_common::subscription_from_row!(self.keyring, r)?)),
                    None => Ok(None),
                }
            }

            async fn flag_subscription(
                &self,
                graph_id: &str,
                flag: $crate::subscriptions::SubscriptionFlag,
            ) -> Result<bool, $crate::StoreError> {
                let sql = match flag {
                    $crate::subscriptions::SubscriptionFlag::Renew => "UPDATE sync_subscriptions SET renew = TRUE WHERE graph_id = $1",
                    $crate::subscriptions::SubscriptionFlag::Removed => {
                        "UPDATE sync_subscriptions SET graph_id = NULL, client_state = NULL, expires_at = 0, renew = FALSE \
                         WHERE graph_id = $1"
                    }
                };
                let done = sqlx::query(sql).bind(graph_id).execute(self.writer()).await?;
                Ok(done.rows_affected() > 0)
            }

            async fn note_changes(&self, mailbox: uuid::Uuid, resources: &[domain::Resource]) -> Result<bool, $crate::StoreError> {
                let bits = resources.iter().fold(0i64, |b, r| b | $crate::sync::resource_bit(*r));
                let done = sqlx::query("UPDATE sync_mailboxes SET pending_resources = pending_resources | $1 WHERE id = $2")
                    .bind(bits)
                    .bind(mailbox)
                    .execute(self.writer())
                    .await?;
                Ok(done.rows_affected() > 0)
            }
        }
    };
}
pub(crate) use impl_subscription_store;
