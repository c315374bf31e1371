//! [`crate::outbox::WriteStore`], written once for both databases.

/// Columns of an [`crate::outbox::OutboxWrite`], in the order `write_from_row` reads them.
macro_rules! write_columns {
    () => {
        "w.id, w.org_id, w.mailbox_id, w.user_id, w.actor, w.idempotency_key, w.request, w.headline, w.step, w.state, w.graph_id, w.failure, \
         w.failure_detail, w.not_before, w.attempts, w.created_at"
    };
}
pub(crate) use write_columns;

/// A write's request is sealed bound to its row.
pub(crate) fn request_binding(id: uuid::Uuid) -> crate::secrets::Binding {
    crate::secrets::Binding::new("write_outbox", "request", id)
}

/// The stored form of a state: (state, graph_id, failure, failure_detail).
pub(crate) fn state_columns(state: &domain::WriteState) -> (&'static str, Option<&str>, Option<&'static str>, Option<&str>) {
    match state {
        domain::WriteState::Pending => ("pending", None, None, None),
        domain::WriteState::Done { graph_id } => ("done", Some(graph_id), None, None),
        domain::WriteState::Failed { reason, detail } => ("failed", None, Some(reason.as_str()), Some(detail)),
    }
}

pub(crate) fn state_of(
    state: &str,
    graph_id: Option<String>,
    failure: Option<String>,
    detail: Option<String>,
) -> Result<domain::WriteState, crate::StoreError> {
    Ok(match state {
        "pending" => domain::WriteState::Pending,
        "done" => domain::WriteState::Done { graph_id: graph_id.unwrap_or_default() },
        "failed" => domain::WriteState::Failed {
            reason: crate::sync_common::reason_of(failure)?.unwrap_or(domain::ReasonCode::Unexpected),
            detail: detail.unwrap_or_default(),
        },
        other => return Err(crate::StoreError::Corrupt(format!("write_outbox.state {other:?}"))),
    })
}

macro_rules! write_from_row {
    ($keyring:expr, $row:expr) => {{
        use sqlx::Row as _;
        let row = &$row;
        (|| -> Result<$crate::outbox::OutboxWrite, $crate::StoreError> {
            let id: uuid::Uuid = row.try_get("id")?;
            let sealed: Vec<u8> = row.try_get("request")?;
            let json = $keyring.open(&sealed, &$crate::outbox_common::request_binding(id))?;
            let request = serde_json::from_slice(&json).map_err(|e| $crate::StoreError::Corrupt(format!("write_outbox.request: {e}")))?;
            let state: String = row.try_get("state")?;
            Ok($crate::outbox::OutboxWrite {
                id,
                org_id: domain::OrgId(row.try_get("org_id")?),
                mailbox_id: row.try_get("mailbox_id")?,
                user_id: domain::UserId(row.try_get("user_id")?),
                actor: row.try_get("actor")?,
                key: row.try_get("idempotency_key")?,
                request,
                headline: row.try_get("headline")?,
                step: row.try_get("step")?,
                state: $crate::outbox_common::state_of(
                    &state,
                    row.try_get("graph_id")?,
                    row.try_get("failure")?,
                    row.try_get("failure_detail")?,
                )?,
                not_before: row.try_get("not_before")?,
                attempts: row.try_get("attempts")?,
                created_at: row.try_get("created_at")?,
            })
        })()
    }};
}
pub(crate) use write_from_row;

macro_rules! impl_write_store {
    ($store:ty) => {
        impl $store {
            async fn write_where(
                &self,
                clause: &'static str,
                id: uuid::Uuid,
            ) -> Result<Vec<$crate::outbox::OutboxWrite>, $crate::StoreError> {
                let sql = format!(
                    "SELECT {} FROM write_outbox w WHERE {clause} ORDER BY w.created_at, w.id",
                    $crate::outbox_common::write_columns!()
                );
                // The clause is one of this file's constants, never input.
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_all(&self.pool).await?;
                rows.into_iter().map(|r| $crate::outbox_common::write_from_row!(self.keyring, r)).collect()
            }
        }

        #[async_trait::async_trait]
        impl $crate::outbox::WriteStore for $store {
            async fn record_write(
                &self,
                new: &$crate::outbox::NewWrite,
            ) -> Result<Option<($crate::outbox::OutboxWrite, bool)>, $crate::StoreError> {
                let id = uuid::Uuid::new_v4();
                let json = serde_json::to_vec(&new.request).map_err(|e| $crate::StoreError::Corrupt(format!("write request: {e}")))?;
                let sealed = self.keyring.seal(&json, &$crate::outbox_common::request_binding(id))?;
                let kind = new.request.kind();
                let mut tx = self.begin_write().await?;
                let inserted = sqlx::query(
                    "INSERT INTO write_outbox (id, org_id, mailbox_id, user_id, actor, idempotency_key, kind, resource, request, headline, \
                       state, created_at, updated_at) \
                     SELECT $1, $2, $3, $4, $11, $5, $6, $7, $8, $9, 'pending', $10, $10 \
                     WHERE EXISTS (SELECT 1 FROM sync_mailboxes WHERE id = $3 AND org_id = $2) \
                     ON CONFLICT (user_id, idempotency_key) DO NOTHING",
                )
                .bind(id)
                .bind(new.org_id.as_uuid())
                .bind(new.mailbox_id)
                .bind(new.user_id.as_uuid())
                .bind(&new.key)
                .bind(kind.as_str())
                .bind(kind.resource().as_str())
                .bind(sealed)
                .bind(&new.headline)
                .bind(new.now)
                .bind(&new.actor)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    > 0;
                if inserted {
                    sqlx::query("UPDATE sync_mailboxes SET pending_resources = pending_resources | $1 WHERE id = $2")
                        .bind($crate::sync::resource_bit(kind.resource()))
                        .bind(new.mailbox_id)
                        .execute(&mut *tx)
                        .await?;
                }
                let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM write_outbox w WHERE w.user_id = $1 AND w.idempotency_key = $2",
                    $crate::outbox_common::write_columns!()
                )))
                .bind(new.user_id.as_uuid())
                .bind(&new.key)
                .fetch_optional(&mut *tx)
                .await?;
                tx.commit().await?;
                match row {
                    Some(row) => Ok(Some(($crate::outbox_common::write_from_row!(self.keyring, row)?, inserted))),
                    None => Ok(None),
                }
            }

            async fn write_by_id(&self, id: uuid::Uuid) -> Result<Option<$crate::outbox::OutboxWrite>, $crate::StoreError> {
                Ok(self.write_where("w.id = $1", id).await?.into_iter().next())
            }

            async fn pending_writes(&self, mailbox: uuid::Uuid) -> Result<Vec<$crate::outbox::OutboxWrite>, $crate::StoreError> {
                self.write_where("w.mailbox_id = $1 AND w.state = 'pending'", mailbox).await
            }

            async fn note_write_attempt(
                &self,
                mailbox: uuid::Uuid,
                fence: i64,
                id: uuid::Uuid,
                step: Option<&str>,
                now: $crate::UnixTime,
            ) -> Result<$crate::sync::CommitOutcome, $crate::StoreError> {
                let Some(mut tx) = self.begin_fenced(mailbox, fence, now).await? else {
                    return Ok($crate::sync::CommitOutcome::LeaseLost);
                };
                sqlx::query(
                    "UPDATE write_outbox SET attempts = attempts + 1, step = COALESCE($1, step), updated_at = $2 \
                     WHERE id = $3 AND mailbox_id = $4 AND state = 'pending'",
                )
                .bind(step)
                .bind(now)
                .bind(id)
                .bind(mailbox)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok($crate::sync::CommitOutcome::Committed { swept: 0 })
            }

            async fn hold_write(
                &self,
                mailbox: uuid::Uuid,
                fence: i64,
                id: uuid::Uuid,
                until: $crate::UnixTime,
            ) -> Result<$crate::sync::CommitOutcome, $crate::StoreError> {
                let Some(mut tx) = self.begin_fenced(mailbox, fence, $crate::now_unix()).await? else {
                    return Ok($crate::sync::CommitOutcome::LeaseLost);
                };
                sqlx::query("UPDATE write_outbox SET not_before = $1 WHERE id = $2 AND mailbox_id = $3")
                    .bind(until)
                    .bind(id)
                    .bind(mailbox)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok($crate::sync::CommitOutcome::Committed { swept: 0 })
            }

            async fn finish_write(
                &self,
                mailbox: uuid::Uuid,
                fence: i64,
                id: uuid::Uuid,
                outcome: &domain::WriteState,
                audit: &domain::AuditEntry,
                now: $crate::UnixTime,
            ) -> Result<$crate::sync::CommitOutcome, $crate::StoreError> {
                let (state, graph_id, failure, detail) = $crate::outbox_common::state_columns(outcome);
                let Some(mut tx) = self.begin_fenced(mailbox, fence, now).await? else {
                    return Ok($crate::sync::CommitOutcome::LeaseLost);
                };
                let org: Option<uuid::Uuid> = sqlx::query_scalar(
                    "UPDATE write_outbox SET state = $1, graph_id = $2, failure = $3, failure_detail = $4, updated_at = $5 \
                     WHERE id = $6 AND mailbox_id = $7 AND state = 'pending' RETURNING org_id",
                )
                .bind(state)
                .bind(graph_id)
                .bind(failure)
                .bind(detail)
                .bind(now)
                .bind(id)
                .bind(mailbox)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(org) = org {
                    $crate::common::insert_audit!(&mut *tx, domain::OrgId(org), audit);
                }
                tx.commit().await?;
                Ok($crate::sync::CommitOutcome::Committed { swept: 0 })
            }

            async fn writes_shown(
                &self,
                org: domain::OrgId,
                user: domain::UserId,
                since: $crate::UnixTime,
                done_since: $crate::UnixTime,
            ) -> Result<Vec<$crate::outbox::OutboxWrite>, $crate::StoreError> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    $crate::outbox_common::write_columns!(),
                    " FROM write_outbox w WHERE w.org_id = $1 AND w.user_id = $2 AND w.created_at >= $3 \
                       AND NOT (w.state = 'done' AND (w.updated_at < $4 OR EXISTS (SELECT 1 FROM sync_items i \
                                WHERE i.mailbox_id = w.mailbox_id AND i.resource = w.resource AND i.graph_id = w.graph_id))) \
                     ORDER BY w.created_at DESC, w.id LIMIT 50"
                ))
                .bind(org.as_uuid())
                .bind(user.as_uuid())
                .bind(since)
                .bind(done_since)
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(|r| $crate::outbox_common::write_from_row!(self.keyring, r)).collect()
            }
        }
    };
}
pub(crate) use impl_write_store;
