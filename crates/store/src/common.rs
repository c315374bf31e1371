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
    Ok(Organization {
        id: OrgId(row.try_get("id")?),
        name: row.try_get("name")?,
    })
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
            }

            async fn create_organization(&self, name: &str) -> Result<$crate::Organization, $crate::StoreError> {
                let id = uuid::Uuid::new_v4();
                sqlx::query("INSERT INTO organizations (id, name, created_at) VALUES ($1, $2, $3)")
                    .bind(id)
                    .bind(name)
                    .bind($crate::now_unix())
                    .execute(&self.pool)
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
                .execute(&self.pool)
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
            ) -> Result<(), $crate::StoreError> {
                sqlx::query(
                    "INSERT INTO sessions (token_hash, user_id, org_id, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&token.0[..])
                .bind(user.id.as_uuid())
                .bind(user.org_id.as_uuid())
                .bind(now)
                .bind(expires_at)
                .execute(&self.pool)
                .await
                .map_err(|e| $crate::StoreError::conflict_or(e, "a session with that token"))?;
                Ok(())
            }

            async fn session_user(
                &self,
                token: &$crate::SessionTokenHash,
                now: $crate::UnixTime,
            ) -> Result<Option<domain::SessionUser>, $crate::StoreError> {
                sqlx::query(
                    "SELECT u.id, u.org_id, u.email, u.display_name, u.role, o.name AS org_name \
                     FROM sessions s JOIN users u ON u.id = s.user_id JOIN organizations o ON o.id = u.org_id \
                     WHERE s.token_hash = $1 AND s.expires_at > $2",
                )
                .bind(&token.0[..])
                .bind(now)
                .fetch_optional(&self.pool)
                .await?
                .map(|r| $crate::common::session_user_from_row(&r))
                .transpose()
            }

            async fn end_session(&self, token: &$crate::SessionTokenHash) -> Result<(), $crate::StoreError> {
                sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                    .bind(&token.0[..])
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn purge_expired_sessions(&self, now: $crate::UnixTime) -> Result<u64, $crate::StoreError> {
                let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn record_sign_in_failure(
                &self,
                email: &str,
                client_ip: &str,
                at: $crate::UnixTime,
            ) -> Result<(), $crate::StoreError> {
                sqlx::query("INSERT INTO sign_in_failures (email, client_ip, at) VALUES ($1, $2, $3)")
                    .bind(email)
                    .bind(client_ip)
                    .bind(at)
                    .execute(&self.pool)
                    .await?;
                // Old rows are useless for rate limiting; drop them while we are here.
                sqlx::query("DELETE FROM sign_in_failures WHERE at < $1")
                    .bind(at - $crate::accounts::FAILURE_WINDOW_SECS)
                    .execute(&self.pool)
                    .await?;
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
                    "SELECT \
                       (SELECT COUNT(*) FROM sign_in_failures WHERE email = $1 AND at >= $3) AS for_email, \
                       (SELECT COUNT(*) FROM sign_in_failures WHERE client_ip = $2 AND at >= $3) AS from_ip",
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
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
        }
    };
}

pub(crate) use impl_store;
