//! The operations whose SQL is the same on SQLite and PostgreSQL, written once.
//!
//! `impl_store!` expands to an `impl Store` for a type with a `pool` field; sqlx binds `$1`-style
//! parameters on both databases. Operations whose SQL differs (row claims with `SKIP LOCKED`,
//! upserts) live in the backend's own module and are passed in as inherent methods.

use crate::{Organization, StoreError, User};
use domain::{EmailAddress, OrgId, Role, SessionUser, UserId};
use sqlx::Row;
use uuid::Uuid;

pub(crate) fn organization_from_row<R: Row>(row: &R) -> Result<Organization, StoreError>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> Uuid: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(Organization { id: OrgId(row.try_get("id")?), name: row.try_get("name")? })
}

pub(crate) fn user_from_row<R: Row>(row: &R) -> Result<User, StoreError>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> Uuid: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let email: String = row.try_get("email")?;
    let role: String = row.try_get("role")?;
    Ok(User {
        id: UserId(row.try_get("id")?),
        org_id: OrgId(row.try_get("org_id")?),
        email: EmailAddress::parse(&email).map_err(|e| StoreError::Corrupt(format!("email {email:?}: {e}")))?,
        display_name: row.try_get("display_name")?,
        role: role.parse::<Role>().map_err(|e| StoreError::Corrupt(e.to_string()))?,
    })
}

pub(crate) fn session_user_from_row<R: Row>(row: &R) -> Result<SessionUser, StoreError>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> Uuid: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let user = user_from_row(row)?;
    Ok(SessionUser {
        user_id: user.id,
        org_id: user.org_id,
        org_name: row.try_get("org_name")?,
        email: user.email,
        display_name: user.display_name,
        role: user.role,
    })
}

/// Failures in the window for one email (`$1`) and from one address (`$2`) since `$3`: what
/// both the attempt that is recorded first and the read-only check count.
pub(crate) const SIGN_IN_FAILURE_COUNTS: &str = "SELECT \
     (SELECT COUNT(*) FROM sign_in_failures WHERE email = $1 AND at >= $3) AS for_email, \
     (SELECT COUNT(*) FROM sign_in_failures WHERE client_ip = $2 AND at >= $3) AS from_ip";

macro_rules! impl_store {
    ($store:ty, $backend:expr) => {
        #[async_trait::async_trait]
        impl $crate::Store for $store {
            fn backend(&self) -> $crate::Backend {
                $backend
            }

            async fn ping(&self) -> Result<(), $crate::StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn close(&self) {
                self.pool.close().await;
                self.writer().close().await;
            }

            async fn create_organization(&self, name: &str) -> Result<$crate::Organization, $crate::StoreError> {
                let id = uuid::Uuid::new_v4();
                sqlx::query("INSERT INTO organizations (id, name, created_at) VALUES ($1, $2, $3)")
                    .bind(id)
                    .bind(name)
                    .bind($crate::now_unix())
                    .execute(self.writer())
                    .await
                    .map_err(|e| $crate::StoreError::conflict_or(e, "an organization with that name"))?;
                Ok($crate::Organization { id: domain::OrgId(id), name: name.to_owned() })
            }

            async fn organization_by_name(&self, name: &str) -> Result<Option<$crate::Organization>, $crate::StoreError> {
                sqlx::query("SELECT id, name FROM organizations WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|r| $crate::common::organization_from_row(&r))
                    .transpose()
            }

            async fn organization(&self, id: domain::OrgId) -> Result<Option<$crate::Organization>, $crate::StoreError> {
                sqlx::query("SELECT id, name FROM organizations WHERE id = $1")
                    .bind(id.as_uuid())
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|r| $crate::common::organization_from_row(&r))
                    .transpose()
            }

            async fn create_user(&self, new: $crate::NewUser) -> Result<$crate::User, $crate::StoreError> {
                let id = uuid::Uuid::new_v4();
                sqlx::query(
                    "INSERT INTO users (id, org_id, email, display_name, role, password_hash, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(id)
                .bind(new.org_id.as_uuid())
                .bind(new.email.as_str())
                .bind(&new.display_name)
                .bind(new.role.as_str())
                .bind(new.password_hash.as_str())
                .bind($crate::now_unix())
                .execute(self.writer())
                .await
                .map_err(|e| $crate::StoreError::conflict_or(e, "a user with that email"))?;
                Ok($crate::User {
                    id: domain::UserId(id),
                    org_id: new.org_id,
                    email: new.email,
                    display_name: new.display_name,
                    role: new.role,
                })
            }

            async fn user_credentials(
                &self,
                email: &domain::EmailAddress,
            ) -> Result<Option<$crate::UserCredentials>, $crate::StoreError> {
                let row = sqlx::query(
                    "SELECT id, org_id, email, display_name, role, password_hash FROM users WHERE email = $1",
                )
                .bind(email.as_str())
                .fetch_optional(&self.pool)
                .await?;
                match row {
                    None => Ok(None),
                    Some(row) => {
                        use sqlx::Row as _;
                        let hash: String = row.try_get("password_hash")?;
                        Ok(Some($crate::UserCredentials {
                            user: $crate::common::user_from_row(&row)?,
                            password_hash: $crate::password::PasswordHash::from_stored(hash),
                        }))
                    }
                }
            }

            async fn users_in_org(&self, org: domain::OrgId) -> Result<Vec<$crate::User>, $crate::StoreError> {
                sqlx::query(
                    "SELECT id, org_id, email, display_name, role FROM users WHERE org_id = $1 \
                     ORDER BY display_name, email",
                )
                .bind(org.as_uuid())
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map($crate::common::user_from_row)
                .collect()
            }

            async fn start_session(
                &self,
                user: &$crate::User,
                token: &$crate::SessionTokenHash,
                now: $crate::UnixTime,
                expires_at: $crate::UnixTime,
                idle_timeout_secs: i64,
            ) -> Result<(), $crate::StoreError> {
                sqlx::query(
                    "INSERT INTO sessions (token_hash, user_id, org_id, created_at, expires_at, last_used_at, idle_timeout) \
                     VALUES ($1, $2, $3, $4, $5, $4, $6)",
                )
                .bind(&token.0[..])
                .bind(user.id.as_uuid())
                .bind(user.org_id.as_uuid())
                .bind(now)
                .bind(expires_at)
                .bind(idle_timeout_secs)
                .execute(self.writer())
                .await
                .map_err(|e| $crate::StoreError::conflict_or(e, "a session with that token"))?;
                Ok(())
            }

            async fn session_user(
                &self,
                token: &$crate::SessionTokenHash,
                now: $crate::UnixTime,
            ) -> Result<Option<domain::SessionUser>, $crate::StoreError> {
                use sqlx::Row as _;
                let Some(row) = sqlx::query(
                    "SELECT u.id, u.org_id, u.email, u.display_name, u.role, o.name AS org_name, s.last_used_at \
                     FROM sessions s JOIN users u ON u.id = s.user_id JOIN organizations o ON o.id = u.org_id \
                     WHERE s.token_hash = $1 AND s.expires_at > $2 AND s.last_used_at + s.idle_timeout > $2",
                )
                .bind(&token.0[..])
                .bind(now)
                .fetch_optional(&self.pool)
                .await?
                else {
                    return Ok(None);
                };
                let last_used: $crate::UnixTime = row.try_get("last_used_at")?;
                // At most one write a minute per session, whatever the number of requests.
                if now - last_used >= $crate::accounts::SESSION_TOUCH_EVERY_SECS {
                    sqlx::query("UPDATE sessions SET last_used_at = $2 WHERE token_hash = $1 AND last_used_at < $2")
                        .bind(&token.0[..])
                        .bind(now)
                        .execute(self.writer())
                        .await?;
                }
                $crate::common::session_user_from_row(&row).map(Some)
            }

            async fn end_session(&self, token: &$crate::SessionTokenHash) -> Result<(), $crate::StoreError> {
                sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                    .bind(&token.0[..])
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn purge_expired_sessions(&self, now: $crate::UnixTime) -> Result<u64, $crate::StoreError> {
                let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1 OR last_used_at + idle_timeout <= $1")
                    .bind(now)
                    .execute(self.writer())
                    .await?;
                Ok(done.rows_affected())
            }

            async fn begin_sign_in_attempt(
                &self,
                email: &str,
                client_ip: &str,
                now: $crate::UnixTime,
            ) -> Result<Option<i64>, $crate::StoreError> {
                use sqlx::Row as _;
                let since = now - $crate::accounts::FAILURE_WINDOW_SECS;
                let mut tx = self.begin_write().await?;
                if matches!($backend, $crate::Backend::Postgres) {
                    // Attempts for one email, then for one address, are recorded and counted one
                    // at a time (READ COMMITTED would let concurrent ones miss each other). Always
                    // in this order, and nothing else is locked after: no deadlock.
                    for key in [format!("sign-in email {email}"), format!("sign-in address {client_ip}")] {
                        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))").bind(key).execute(&mut *tx).await?;
                    }
                }
                // On SQLite the INSERT takes the database's write lock until the commit: the same.
                let id: i64 = sqlx::query_scalar("INSERT INTO sign_in_failures (email, client_ip, at) VALUES ($1, $2, $3) RETURNING id")
                    .bind(email)
                    .bind(client_ip)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
                let row = sqlx::query(
                    $crate::common::SIGN_IN_FAILURE_COUNTS,
                )
                .bind(email)
                .bind(client_ip)
                .bind(since)
                .fetch_one(&mut *tx)
                .await?;
                let for_email: i64 = row.try_get("for_email")?;
                let from_ip: i64 = row.try_get("from_ip")?;
                if for_email > i64::from($crate::accounts::MAX_FAILURES_PER_EMAIL)
                    || from_ip > i64::from($crate::accounts::MAX_FAILURES_PER_IP)
                {
                    // Refused before any check: this attempt is not kept (it would only extend the lock).
                    tx.rollback().await?;
                    return Ok(None);
                }
                // Old rows are useless for rate limiting; drop them while we are here.
                sqlx::query("DELETE FROM sign_in_failures WHERE at < $1").bind(since).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(Some(id))
            }

            async fn withdraw_sign_in_attempt(&self, attempt: i64) -> Result<(), $crate::StoreError> {
                sqlx::query("DELETE FROM sign_in_failures WHERE id = $1").bind(attempt).execute(self.writer()).await?;
                Ok(())
            }

            async fn sign_in_failures_since(
                &self,
                email: &str,
                client_ip: &str,
                since: $crate::UnixTime,
            ) -> Result<$crate::SignInFailures, $crate::StoreError> {
                use sqlx::Row as _;
                let row = sqlx::query(
                    $crate::common::SIGN_IN_FAILURE_COUNTS,
                )
                .bind(email)
                .bind(client_ip)
                .bind(since)
                .fetch_one(&self.pool)
                .await?;
                let for_email: i64 = row.try_get("for_email")?;
                let from_ip: i64 = row.try_get("from_ip")?;
                Ok($crate::SignInFailures {
                    for_email: u32::try_from(for_email).unwrap_or(u32::MAX),
                    from_ip: u32::try_from(from_ip).unwrap_or(u32::MAX),
                })
            }

            async fn clear_sign_in_failures(&self, email: &str) -> Result<(), $crate::StoreError> {
                sqlx::query("DELETE FROM sign_in_failures WHERE email = $1")
                    .bind(email)
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn office365_settings(
                &self,
                org: domain::OrgId,
            ) -> Result<domain::office365::Office365Settings, $crate::StoreError> {
                use sqlx::Row as _;
                let row = sqlx::query(
                    "SELECT enabled, own_app, pinned_tenant, tenant, client_id, client_secret, client_secret_expires_on, \
                     mode, access, features, sync_interval_minutes, backfill_days, poll_primary_only, setup_action_enabled \
                     FROM office365_settings WHERE org_id = $1",
                )
                .bind(org.as_uuid())
                .fetch_optional(&self.pool)
                .await?;
                let Some(row) = row else {
                    return Ok(domain::office365::Office365Settings::default());
                };
                let corrupt = |what: &str, value: &str| $crate::StoreError::Corrupt(format!("office365_settings.{what} {value:?}"));
                let mode: String = row.try_get("mode")?;
                let access: String = row.try_get("access")?;
                let features: String = row.try_get("features")?;
                let secret: Option<Vec<u8>> = row.try_get("client_secret")?;
                let interval: i32 = row.try_get("sync_interval_minutes")?;
                let backfill: i32 = row.try_get("backfill_days")?;
                Ok(domain::office365::Office365Settings {
                    enabled: row.try_get("enabled")?,
                    own_app: row.try_get("own_app")?,
                    pinned_tenant: row.try_get("pinned_tenant")?,
                    deployment_client_id: None,
                    tenant: row.try_get("tenant")?,
                    client_id: row.try_get("client_id")?,
                    client_secret_set: secret.is_some(),
                    client_secret_expires_on: row.try_get("client_secret_expires_on")?,
                    mode: domain::office365::parse_mode(&mode).ok_or_else(|| corrupt("mode", &mode))?,
                    access: domain::office365::parse_access(&access).ok_or_else(|| corrupt("access", &access))?,
                    resources: features
                        .split(',')
                        .filter(|f| !f.is_empty())
                        .map(|f| domain::Resource::parse(f).ok_or_else(|| corrupt("features", f)))
                        .collect::<Result<_, _>>()?,
                    sync_interval_minutes: u32::try_from(interval).map_err(|_| corrupt("sync_interval_minutes", &interval.to_string()))?,
                    backfill_days: u32::try_from(backfill).map_err(|_| corrupt("backfill_days", &backfill.to_string()))?,
                    poll_primary_only: row.try_get("poll_primary_only")?,
                    setup_action_enabled: row.try_get("setup_action_enabled")?,
                })
            }

            async fn save_office365_settings(
                &self,
                org: domain::OrgId,
                settings: &domain::office365::Office365Settings,
                new_secret: Option<&$crate::secrets::SecretString>,
                audit: &[domain::AuditEntry],
            ) -> Result<(), $crate::StoreError> {
                let sealed = match new_secret {
                    Some(secret) => Some(self.keyring.seal_str(secret, &$crate::common::client_secret_binding(org))?),
                    None => None,
                };
                let features: Vec<&str> = settings.resources.iter().map(|f| f.as_str()).collect();
                let interval = i32::try_from(settings.sync_interval_minutes).unwrap_or(i32::MAX);
                let backfill = i32::try_from(settings.backfill_days).unwrap_or(i32::MAX);
                let mut tx = self.begin_write().await?;
                // COALESCE keeps the stored secret when no new one is given.
                sqlx::query(
                    "INSERT INTO office365_settings (org_id, enabled, tenant, client_id, client_secret, \
                       client_secret_expires_on, mode, access, features, sync_interval_minutes, backfill_days, \
                       poll_primary_only, setup_action_enabled, updated_at, own_app) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
                     ON CONFLICT (org_id) DO UPDATE SET enabled = excluded.enabled, own_app = excluded.own_app, \
                       tenant = excluded.tenant, \
                       client_id = excluded.client_id, \
                       client_secret = COALESCE(excluded.client_secret, office365_settings.client_secret), \
                       client_secret_expires_on = excluded.client_secret_expires_on, mode = excluded.mode, \
                       access = excluded.access, features = excluded.features, \
                       sync_interval_minutes = excluded.sync_interval_minutes, backfill_days = excluded.backfill_days, \
                       poll_primary_only = excluded.poll_primary_only, \
                       setup_action_enabled = excluded.setup_action_enabled, updated_at = excluded.updated_at",
                )
                .bind(org.as_uuid())
                .bind(settings.enabled)
                .bind(&settings.tenant)
                .bind(&settings.client_id)
                .bind(sealed)
                .bind(&settings.client_secret_expires_on)
                .bind(domain::office365::mode_value(settings.mode))
                .bind(domain::office365::access_value(settings.access))
                .bind(features.join(","))
                .bind(interval)
                .bind(backfill)
                .bind(settings.poll_primary_only)
                .bind(settings.setup_action_enabled)
                .bind($crate::now_unix())
                .bind(settings.own_app)
                .execute(&mut *tx)
                .await?;
                for entry in audit {
                    $crate::common::insert_audit!(&mut *tx, org, entry);
                }
                tx.commit().await?;
                Ok(())
            }

            async fn office365_client_secret(
                &self,
                org: domain::OrgId,
            ) -> Result<Option<$crate::secrets::SecretString>, $crate::StoreError> {
                let sealed: Option<Option<Vec<u8>>> =
                    sqlx::query_scalar("SELECT client_secret FROM office365_settings WHERE org_id = $1")
                        .bind(org.as_uuid())
                        .fetch_optional(&self.pool)
                        .await?;
                match sealed.flatten() {
                    Some(bytes) => Ok(Some(self.keyring.open_str(&bytes, &$crate::common::client_secret_binding(org))?)),
                    None => Ok(None),
                }
            }

            async fn pin_tenant(
                &self,
                org: domain::OrgId,
                tenant_id: &str,
                exclusive: bool,
                entry: &domain::AuditEntry,
            ) -> Result<(), $crate::StoreError> {
                const TAKEN: &str = "another organization's pin of this tenant";
                let mut tx = self.begin_write().await?;
                // Exclusive pins (the deployment's app) are unique per tenant; a shared pin (the
                // organization's own registration, or sharing allowed) never conflicts. The partial
                // unique index settles a race between two exclusive pins.
                let taken = sqlx::query(
                    "SELECT 1 FROM office365_settings \
                     WHERE pinned_tenant = $1 AND org_id <> $2 AND pinned_exclusive AND $3",
                )
                .bind(tenant_id)
                .bind(org.as_uuid())
                .bind(exclusive)
                .fetch_optional(&mut *tx)
                .await?;
                if taken.is_some() {
                    return Err($crate::StoreError::Conflict(TAKEN));
                }
                let pinned = sqlx::query("UPDATE office365_settings SET pinned_tenant = $1, pinned_exclusive = $2 WHERE org_id = $3")
                    .bind(tenant_id)
                    .bind(exclusive)
                    .bind(org.as_uuid())
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| $crate::StoreError::conflict_or(e, TAKEN))?;
                if pinned.rows_affected() == 0 {
                    return Err($crate::StoreError::Corrupt("a tenant pinned before the settings were saved".into()));
                }
                $crate::common::insert_audit!(&mut *tx, org, entry);
                tx.commit().await?;
                Ok(())
            }

            async fn record_audit(&self, org: domain::OrgId, entry: &domain::AuditEntry) -> Result<(), $crate::StoreError> {
                $crate::common::insert_audit!(self.writer(), org, entry);
                Ok(())
            }

            async fn audit_log(&self, org: domain::OrgId, limit: u32) -> Result<Vec<domain::AuditEntry>, $crate::StoreError> {
                use sqlx::Row as _;
                sqlx::query(
                    "SELECT actor, action, summary, at FROM audit_log WHERE org_id = $1 ORDER BY at DESC, id DESC LIMIT $2",
                )
                .bind(org.as_uuid())
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(|row| {
                    Ok(domain::AuditEntry {
                        actor: row.try_get("actor")?,
                        action: row.try_get("action")?,
                        summary: row.try_get("summary")?,
                        at: row.try_get("at")?,
                    })
                })
                .collect()
            }

            async fn start_oauth_flow(&self, state: &str, flow: &$crate::OAuthFlow, now: $crate::UnixTime) -> Result<(), $crate::StoreError> {
                let hash = $crate::common::state_hash(state);
                let verifier = match &flow.pkce_verifier {
                    Some(v) => Some(self.keyring.seal_str(v, &$crate::common::verifier_binding(&hash))?),
                    None => None,
                };
                // Old, never-finished flows are useless; drop them while we are here.
                sqlx::query("DELETE FROM oauth_flows WHERE expires_at <= $1").bind(now).execute(self.writer()).await?;
                sqlx::query(
                    "INSERT INTO oauth_flows (state_hash, org_id, user_id, session_hash, purpose, pkce_verifier, nonce, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(&hash[..])
                .bind(flow.org_id.as_uuid())
                .bind(flow.user_id.as_uuid())
                .bind(&flow.session.0[..])
                .bind(flow.purpose.as_str())
                .bind(verifier)
                .bind(&flow.nonce)
                .bind(now)
                .bind(flow.expires_at)
                .execute(self.writer())
                .await?;
                Ok(())
            }

            async fn take_oauth_flow(&self, state: &str, now: $crate::UnixTime) -> Result<Option<$crate::OAuthFlow>, $crate::StoreError> {
                use sqlx::Row as _;
                let hash = $crate::common::state_hash(state);
                // DELETE … RETURNING makes the state single-use even with two callbacks racing.
                let row = sqlx::query(
                    "DELETE FROM oauth_flows WHERE state_hash = $1 \
                     RETURNING org_id, user_id, session_hash, purpose, pkce_verifier, nonce, expires_at",
                )
                .bind(&hash[..])
                .fetch_optional(self.writer())
                .await?;
                let Some(row) = row else { return Ok(None) };
                let expires_at: i64 = row.try_get("expires_at")?;
                if expires_at <= now {
                    return Ok(None);
                }
                let session: Vec<u8> = row.try_get("session_hash")?;
                let purpose: String = row.try_get("purpose")?;
                let verifier: Option<Vec<u8>> = row.try_get("pkce_verifier")?;
                Ok(Some($crate::OAuthFlow {
                    org_id: domain::OrgId(row.try_get("org_id")?),
                    user_id: domain::UserId(row.try_get("user_id")?),
                    session: $crate::SessionTokenHash(
                        session.try_into().map_err(|_| $crate::StoreError::Corrupt("oauth_flows.session_hash".into()))?,
                    ),
                    purpose: domain::FlowPurpose::parse(&purpose)
                        .ok_or_else(|| $crate::StoreError::Corrupt(format!("oauth_flows.purpose {purpose:?}")))?,
                    pkce_verifier: match verifier {
                        Some(v) => Some(self.keyring.open_str(&v, &$crate::common::verifier_binding(&hash))?),
                        None => None,
                    },
                    nonce: row.try_get("nonce")?,
                    expires_at,
                }))
            }

            async fn save_connection(
                &self,
                c: &$crate::NewConnection,
                audit: &domain::AuditEntry,
            ) -> Result<domain::ConnectionSummary, $crate::StoreError> {
                let now = $crate::now_unix();
                let mut tx = self.begin_write().await?;
                let existing: Option<(uuid::Uuid, String, String, String)> = sqlx::query_as(
                    "SELECT id, ms_tenant_id, ms_object_id, ms_username FROM connections \
                     WHERE org_id = $1 AND user_id = $2 AND kind = $3",
                )
                .bind(c.org_id.as_uuid())
                .bind(c.user_id.as_uuid())
                .bind(c.kind.as_str())
                .fetch_optional(&mut *tx)
                .await?;
                let id = existing.as_ref().map_or_else(uuid::Uuid::new_v4, |(id, ..)| *id);
                // Another Microsoft account (tenant id + object id) on the same connection: nothing
                // synced for the old one may stay, be shown under the new one, or have its cursors
                // replayed with the new one's token. Dropping its sync mailboxes drops their cursors,
                // status and items with them (ON DELETE CASCADE); the scheduler makes new ones.
                let replaced = existing.filter(|(_, tenant, object, _)| {
                    !tenant.eq_ignore_ascii_case(&c.ms_tenant_id) || !object.eq_ignore_ascii_case(&c.ms_object_id)
                });
                if replaced.is_some() {
                    sqlx::query("DELETE FROM sync_mailboxes WHERE connection_id = $1").bind(id).execute(&mut *tx).await?;
                }
                let access = self.keyring.seal_str(&c.access_token, &$crate::common::token_binding("access_token", id))?;
                let refresh = match &c.refresh_token {
                    Some(rt) => Some(self.keyring.seal_str(rt, &$crate::common::token_binding("refresh_token", id))?),
                    None => None,
                };
                if c.is_primary {
                    sqlx::query("UPDATE connections SET is_primary = $1 WHERE org_id = $2")
                        .bind(false)
                        .bind(c.org_id.as_uuid())
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query(
                    "INSERT INTO connections (id, org_id, user_id, kind, is_primary, ms_tenant_id, ms_object_id, ms_username, \
                       ms_name, granted_scopes, access_token, access_expires_at, refresh_token, state, reason, reason_at, \
                       created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'active', NULL, NULL, $14, $14) \
                     ON CONFLICT (id) DO UPDATE SET token_version = connections.token_version + 1, \
                       is_primary = excluded.is_primary, ms_tenant_id = excluded.ms_tenant_id, \
                       ms_object_id = excluded.ms_object_id, ms_username = excluded.ms_username, ms_name = excluded.ms_name, \
                       granted_scopes = excluded.granted_scopes, access_token = excluded.access_token, \
                       access_expires_at = excluded.access_expires_at, refresh_token = excluded.refresh_token, \
                       state = 'active', reason = NULL, reason_at = NULL, updated_at = excluded.updated_at",
                )
                .bind(id)
                .bind(c.org_id.as_uuid())
                .bind(c.user_id.as_uuid())
                .bind(c.kind.as_str())
                .bind(c.is_primary)
                .bind(&c.ms_tenant_id)
                .bind(&c.ms_object_id)
                .bind(&c.ms_username)
                .bind(&c.ms_name)
                .bind(c.granted_scopes.join(" "))
                .bind(access)
                .bind(c.access_expires_at)
                .bind(refresh)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                $crate::common::insert_audit!(&mut *tx, c.org_id, audit);
                if let Some((_, _, _, old_username)) = replaced {
                    let removed = domain::AuditEntry {
                        at: audit.at,
                        actor: audit.actor.clone(),
                        action: "office365.account_changed".into(),
                        summary: format!("Reconnected as {}; {old_username}'s synced data was removed.", c.ms_username),
                    };
                    $crate::common::insert_audit!(&mut *tx, c.org_id, &removed);
                }
                let row = sqlx::query($crate::common::CONNECTION_SELECT_BY_ID).bind(id).fetch_one(&mut *tx).await?;
                let summary = $crate::common::connection_from_row!(row)?;
                tx.commit().await?;
                Ok(summary)
            }

            async fn connection_of(
                &self,
                org: domain::OrgId,
                user: domain::UserId,
                kind: domain::ConnectionKind,
            ) -> Result<Option<domain::ConnectionSummary>, $crate::StoreError> {
                let row = sqlx::query($crate::common::CONNECTION_SELECT_BY_OWNER)
                    .bind(org.as_uuid())
                    .bind(user.as_uuid())
                    .bind(kind.as_str())
                    .fetch_optional(&self.pool)
                    .await?;
                match row {
                    Some(row) => Ok(Some($crate::common::connection_from_row!(row)?)),
                    None => Ok(None),
                }
            }

            async fn connections_in_org(&self, org: domain::OrgId) -> Result<Vec<domain::ConnectionSummary>, $crate::StoreError> {
                let rows = sqlx::query($crate::common::CONNECTION_SELECT_BY_ORG).bind(org.as_uuid()).fetch_all(&self.pool).await?;
                rows.into_iter().map(|row| $crate::common::connection_from_row!(row)).collect()
            }

            async fn service_connection(&self, org: domain::OrgId) -> Result<Option<domain::ConnectionSummary>, $crate::StoreError> {
                let row = sqlx::query($crate::common::CONNECTION_SELECT_SERVICE).bind(org.as_uuid()).fetch_optional(&self.pool).await?;
                match row {
                    Some(row) => Ok(Some($crate::common::connection_from_row!(row)?)),
                    None => Ok(None),
                }
            }

            async fn delete_connection(
                &self,
                org: domain::OrgId,
                id: uuid::Uuid,
                audit: &domain::AuditEntry,
            ) -> Result<bool, $crate::StoreError> {
                let mut tx = self.begin_write().await?;
                let done = sqlx::query("DELETE FROM connections WHERE org_id = $1 AND id = $2")
                    .bind(org.as_uuid())
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                $crate::common::insert_audit!(&mut *tx, org, audit);
                tx.commit().await?;
                Ok(true)
            }

            async fn request_admin_consent(
                &self,
                org: domain::OrgId,
                by: &str,
                now: $crate::UnixTime,
            ) -> Result<bool, $crate::StoreError> {
                let mut tx = self.begin_write().await?;
                // Only the first refusal since the last grant is a new request; later ones keep it.
                let done = sqlx::query(
                    "INSERT INTO office365_admin_consent (org_id, requested_by, requested_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (org_id) DO UPDATE SET requested_by = excluded.requested_by, \
                       requested_at = excluded.requested_at \
                     WHERE office365_admin_consent.requested_at IS NULL",
                )
                .bind(org.as_uuid())
                .bind(by)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let new = done.rows_affected() > 0;
                if new {
                    let audit = domain::AuditEntry {
                        at: now,
                        actor: by.to_owned(),
                        action: "office365.admin_approval_requested".into(),
                        summary: "Microsoft asked for an administrator's approval; admins were asked to grant organization-wide consent."
                            .into(),
                    };
                    $crate::common::insert_audit!(&mut *tx, org, &audit);
                }
                tx.commit().await?;
                Ok(new)
            }

            async fn record_admin_consent(
                &self,
                org: domain::OrgId,
                grant: &domain::ConsentGrant,
                audit: &domain::AuditEntry,
            ) -> Result<(), $crate::StoreError> {
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "INSERT INTO office365_admin_consent (org_id, granted_by, granted_at, granted_tenant_id, \
                       granted_client_id, granted_scopes) VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (org_id) DO UPDATE SET requested_by = NULL, requested_at = NULL, \
                       granted_by = excluded.granted_by, granted_at = excluded.granted_at, \
                       granted_tenant_id = excluded.granted_tenant_id, granted_client_id = excluded.granted_client_id, \
                       granted_scopes = excluded.granted_scopes",
                )
                .bind(org.as_uuid())
                .bind(&grant.by)
                .bind(grant.at)
                .bind(&grant.tenant_id)
                .bind(&grant.client_id)
                .bind(grant.scopes.join(" "))
                .execute(&mut *tx)
                .await?;
                $crate::common::insert_audit!(&mut *tx, org, audit);
                tx.commit().await?;
                Ok(())
            }

            async fn admin_consent(&self, org: domain::OrgId) -> Result<domain::AdminConsent, $crate::StoreError> {
                use sqlx::Row as _;
                let row = sqlx::query(
                    "SELECT requested_by, requested_at, granted_by, granted_at, granted_tenant_id, granted_client_id, \
                       granted_scopes FROM office365_admin_consent WHERE org_id = $1",
                )
                .bind(org.as_uuid())
                .fetch_optional(&self.pool)
                .await?;
                let Some(row) = row else {
                    return Ok(domain::AdminConsent::default());
                };
                let requested_by: Option<String> = row.try_get("requested_by")?;
                let requested_at: Option<i64> = row.try_get("requested_at")?;
                let granted_by: Option<String> = row.try_get("granted_by")?;
                let granted_at: Option<i64> = row.try_get("granted_at")?;
                let tenant: Option<String> = row.try_get("granted_tenant_id")?;
                let client: Option<String> = row.try_get("granted_client_id")?;
                let scopes: Option<String> = row.try_get("granted_scopes")?;
                Ok(domain::AdminConsent {
                    requested: match (requested_by, requested_at) {
                        (Some(by), Some(at)) => Some(domain::ConsentRequest { by, at }),
                        _ => None,
                    },
                    granted: match (granted_by, granted_at, tenant, client) {
                        (Some(by), Some(at), Some(tenant_id), Some(client_id)) => Some(domain::ConsentGrant {
                            by,
                            at,
                            tenant_id,
                            client_id,
                            scopes: scopes.unwrap_or_default().split_whitespace().map(str::to_owned).collect(),
                        }),
                        _ => None,
                    },
                })
            }

            async fn add_service_account_user(
                &self,
                org: domain::OrgId,
                user: &domain::ServiceAccountUser,
                audit: &domain::AuditEntry,
            ) -> Result<bool, $crate::StoreError> {
                let mut tx = self.begin_write().await?;
                let done = sqlx::query(
                    "INSERT INTO service_account_users (id, org_id, ms_object_id, ms_username, display_name, added_by, \
                       added_at, health, health_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     ON CONFLICT (org_id, ms_username) DO NOTHING",
                )
                .bind(user.id)
                .bind(org.as_uuid())
                .bind(&user.ms_object_id)
                .bind(user.ms_username.to_lowercase())
                .bind(&user.display_name)
                .bind(&user.added_by)
                .bind(user.added_at)
                .bind(user.health.map(|h| h.as_str()))
                .bind(user.health_at)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                $crate::common::insert_audit!(&mut *tx, org, audit);
                tx.commit().await?;
                Ok(true)
            }

            async fn service_account_users(
                &self,
                org: domain::OrgId,
            ) -> Result<Vec<domain::ServiceAccountUser>, $crate::StoreError> {
                use sqlx::Row as _;
                sqlx::query(
                    "SELECT id, ms_object_id, ms_username, display_name, added_by, added_at, health, health_at \
                     FROM service_account_users WHERE org_id = $1 ORDER BY display_name, ms_username",
                )
                .bind(org.as_uuid())
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(|row| {
                    let health: Option<String> = row.try_get("health")?;
                    Ok(domain::ServiceAccountUser {
                        id: row.try_get("id")?,
                        ms_object_id: row.try_get("ms_object_id")?,
                        ms_username: row.try_get("ms_username")?,
                        display_name: row.try_get("display_name")?,
                        added_by: row.try_get("added_by")?,
                        added_at: row.try_get("added_at")?,
                        health: match health {
                            Some(h) => Some(
                                domain::MailboxHealth::parse(&h)
                                    .ok_or_else(|| $crate::StoreError::Corrupt(format!("service_account_users.health {h:?}")))?,
                            ),
                            None => None,
                        },
                        health_at: row.try_get("health_at")?,
                    })
                })
                .collect()
            }

            async fn set_service_account_user_health(
                &self,
                org: domain::OrgId,
                id: uuid::Uuid,
                ms_object_id: Option<&str>,
                health: domain::MailboxHealth,
                at: $crate::UnixTime,
            ) -> Result<(), $crate::StoreError> {
                sqlx::query(
                    "UPDATE service_account_users SET health = $1, health_at = $2, \
                       ms_object_id = COALESCE($3, ms_object_id) WHERE org_id = $4 AND id = $5",
                )
                .bind(health.as_str())
                .bind(at)
                .bind(ms_object_id)
                .bind(org.as_uuid())
                .bind(id)
                .execute(self.writer())
                .await?;
                Ok(())
            }

            async fn remove_service_account_user(
                &self,
                org: domain::OrgId,
                id: uuid::Uuid,
                audit: &domain::AuditEntry,
            ) -> Result<bool, $crate::StoreError> {
                let mut tx = self.begin_write().await?;
                let done = sqlx::query("DELETE FROM service_account_users WHERE org_id = $1 AND id = $2")
                    .bind(org.as_uuid())
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                $crate::common::insert_audit!(&mut *tx, org, audit);
                tx.commit().await?;
                Ok(true)
            }

            async fn reseal_secrets(&self) -> Result<u64, $crate::StoreError> {
                use sqlx::Row as _;
                let current = self.keyring.current_key_id();
                let rows = sqlx::query("SELECT org_id, client_secret FROM office365_settings WHERE client_secret IS NOT NULL")
                    .fetch_all(&self.pool)
                    .await?;
                let mut count = 0;
                for row in rows {
                    let org = domain::OrgId(row.try_get("org_id")?);
                    let sealed: Vec<u8> = row.try_get("client_secret")?;
                    if $crate::secrets::Keyring::key_id_of(&sealed) == Some(current) {
                        continue;
                    }
                    let binding = $crate::common::client_secret_binding(org);
                    let plain = self.keyring.open(&sealed, &binding)?;
                    let resealed = self.keyring.seal(&plain, &binding)?;
                    sqlx::query("UPDATE office365_settings SET client_secret = $1 WHERE org_id = $2 AND client_secret = $3")
                        .bind(resealed)
                        .bind(org.as_uuid())
                        .bind(sealed)
                        .execute(self.writer())
                        .await?;
                    count += 1;
                }
                for column in ["access_token", "refresh_token"] {
                    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT id, {column} AS sealed FROM connections WHERE {column} IS NOT NULL"
                    )))
                    .fetch_all(&self.pool)
                    .await?;
                    for row in rows {
                        let id: uuid::Uuid = row.try_get("id")?;
                        let sealed: Vec<u8> = row.try_get("sealed")?;
                        if $crate::secrets::Keyring::key_id_of(&sealed) == Some(current) {
                            continue;
                        }
                        let binding = $crate::common::token_binding(column, id);
                        let resealed = self.keyring.seal(&self.keyring.open(&sealed, &binding)?, &binding)?;
                        // The column name comes from the fixed list above, never from input.
                        sqlx::query(sqlx::AssertSqlSafe(format!(
                            "UPDATE connections SET {column} = $1 WHERE id = $2 AND {column} = $3"
                        )))
                        .bind(resealed)
                        .bind(id)
                        .bind(sealed)
                        .execute(self.writer())
                        .await?;
                        count += 1;
                    }
                }
                let rows = sqlx::query("SELECT id, request FROM write_outbox").fetch_all(&self.pool).await?;
                for row in rows {
                    let id: uuid::Uuid = row.try_get("id")?;
                    let sealed: Vec<u8> = row.try_get("request")?;
                    if $crate::secrets::Keyring::key_id_of(&sealed) == Some(current) {
                        continue;
                    }
                    let binding = $crate::outbox_common::request_binding(id);
                    let resealed = self.keyring.seal(&self.keyring.open(&sealed, &binding)?, &binding)?;
                    sqlx::query("UPDATE write_outbox SET request = $1 WHERE id = $2 AND request = $3")
                        .bind(resealed)
                        .bind(id)
                        .bind(sealed)
                        .execute(self.writer())
                        .await?;
                    count += 1;
                }
                let rows = sqlx::query("SELECT graph_id, client_state FROM sync_subscriptions WHERE client_state IS NOT NULL")
                    .fetch_all(&self.pool)
                    .await?;
                for row in rows {
                    let graph_id: String = row.try_get("graph_id")?;
                    let sealed: Vec<u8> = row.try_get("client_state")?;
                    if $crate::secrets::Keyring::key_id_of(&sealed) == Some(current) {
                        continue;
                    }
                    let binding = $crate::subscriptions_common::client_state_binding(&graph_id);
                    let resealed = self.keyring.seal(&self.keyring.open(&sealed, &binding)?, &binding)?;
                    sqlx::query("UPDATE sync_subscriptions SET client_state = $1 WHERE graph_id = $2 AND client_state = $3")
                        .bind(resealed)
                        .bind(&graph_id)
                        .bind(sealed)
                        .execute(self.writer())
                        .await?;
                    count += 1;
                }
                Ok(count)
            }
        }
    };
}

pub(crate) use impl_store;

/// Inserts an audit entry inside an open transaction (`$conn` is `&mut *tx`).
macro_rules! insert_audit {
    ($conn:expr, $org:expr, $audit:expr) => {{
        let audit: &domain::AuditEntry = $audit;
        sqlx::query("INSERT INTO audit_log (org_id, actor, action, summary, at) VALUES ($1, $2, $3, $4, $5)")
            .bind($org.as_uuid())
            .bind(&audit.actor)
            .bind(&audit.action)
            .bind(&audit.summary)
            .bind(audit.at)
            .execute($conn)
            .await?;
    }};
}
pub(crate) use insert_audit;

pub(crate) fn state_hash(state: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(state.as_bytes()).into()
}

pub(crate) fn verifier_binding(state_hash: &[u8; 32]) -> crate::secrets::Binding {
    let hex: String = state_hash.iter().map(|b| format!("{b:02x}")).collect();
    crate::secrets::Binding::new("oauth_flows", "pkce_verifier", hex)
}

pub(crate) fn token_binding(column: &str, connection: uuid::Uuid) -> crate::secrets::Binding {
    crate::secrets::Binding::new("connections", column, connection)
}

macro_rules! connection_columns {
    () => {
        "SELECT id, org_id, user_id, kind, is_primary, ms_tenant_id, ms_object_id, ms_username, ms_name, \
         granted_scopes, state, reason, created_at, updated_at FROM connections"
    };
}

pub(crate) const CONNECTION_SELECT_BY_ID: &str = concat!(connection_columns!(), " WHERE id = $1");
pub(crate) const CONNECTION_SELECT_BY_OWNER: &str = concat!(connection_columns!(), " WHERE org_id = $1 AND user_id = $2 AND kind = $3");
pub(crate) const CONNECTION_SELECT_SERVICE: &str =
    concat!(connection_columns!(), " WHERE org_id = $1 AND kind IN ('service_user', 'application') ORDER BY updated_at DESC LIMIT 1");
pub(crate) const CONNECTION_SELECT_BY_ORG: &str =
    concat!(connection_columns!(), " WHERE org_id = $1 ORDER BY is_primary DESC, ms_name, created_at");

/// Reads a `ConnectionSummary` from a row selected with `connection_columns!()` (a macro so it works
/// on both databases' row types without a wall of trait bounds).
macro_rules! connection_from_row {
    ($row:expr) => {{
        use sqlx::Row as _;
        let row = &$row;
        (|| -> Result<domain::ConnectionSummary, $crate::StoreError> {
            let corrupt = |what: &str, v: &str| $crate::StoreError::Corrupt(format!("connections.{what} {v:?}"));
            let kind: String = row.try_get("kind")?;
            let state: String = row.try_get("state")?;
            let reason: Option<String> = row.try_get("reason")?;
            let scopes: String = row.try_get("granted_scopes")?;
            Ok(domain::ConnectionSummary {
                id: row.try_get("id")?,
                org_id: domain::OrgId(row.try_get("org_id")?),
                user_id: domain::UserId(row.try_get("user_id")?),
                kind: domain::ConnectionKind::parse(&kind).ok_or_else(|| corrupt("kind", &kind))?,
                is_primary: row.try_get("is_primary")?,
                ms_tenant_id: row.try_get("ms_tenant_id")?,
                ms_object_id: row.try_get("ms_object_id")?,
                ms_username: row.try_get("ms_username")?,
                ms_name: row.try_get("ms_name")?,
                granted_scopes: scopes.split_whitespace().map(str::to_owned).collect(),
                state: domain::ConnectionState::parse(&state).ok_or_else(|| corrupt("state", &state))?,
                reason: match reason {
                    Some(r) => Some(domain::ReasonCode::parse(&r).ok_or_else(|| corrupt("reason", &r))?),
                    None => None,
                },
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
            })
        })()
    }};
}
pub(crate) use connection_from_row;

/// Where the client secret is sealed: one organization's settings row.
pub(crate) fn client_secret_binding(org: OrgId) -> crate::secrets::Binding {
    crate::secrets::Binding::new("office365_settings", "client_secret", org)
}
