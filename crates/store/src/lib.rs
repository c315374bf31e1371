//! Where the product keeps what matters: organizations, people, sessions (and, later, connections,
//! tokens and synced data).
//!
//! [`Store`] is a trait of domain-level operations, not CRUD. It has two implementations, each with
//! its own migrations: SQLite (the embedded default, a file under `./data/`) and PostgreSQL (for
//! several server instances against one database). [`open`] picks one from the database URL.
//! One conformance suite (`tests/it`) runs against both.

pub mod accounts;
mod common;
pub mod error;
pub mod outbox;
mod outbox_common;
pub mod password;
mod postgres;
pub mod secrets;
pub mod session_token;
mod sqlite;
pub mod subscriptions;
mod subscriptions_common;
pub mod sync;
mod sync_common;
mod sync_postgres;
mod sync_sqlite;

use async_trait::async_trait;
use domain::office365::Office365Settings;
use domain::{
    AdminConsent, AuditEntry, ConnectionKind, ConnectionSummary, ConsentGrant, EmailAddress, FlowPurpose, MailboxHealth, OrgId, Role,
    ServiceAccountUser, SessionUser, UserId,
};
use secrets::{Keyring, SecretString};
use std::sync::Arc;

pub use error::StoreError;
pub use outbox::WriteStore;
pub use postgres::PgStore;
pub use session_token::{HOST_SESSION_COOKIE, SESSION_COOKIE, SessionCookie, SessionToken, SessionTokenHash};
pub use sqlite::SqliteStore;
pub use subscriptions::SubscriptionStore;
pub use sync::SyncStore;

/// Which database a store writes to; shown by `/healthz` and the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: OrgId,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub org_id: OrgId,
    pub email: EmailAddress,
    pub display_name: String,
    pub role: Role,
}

/// A user with their password hash: only the sign-in code ever sees this.
#[derive(Clone)]
pub struct UserCredentials {
    pub user: User,
    pub password_hash: password::PasswordHash,
}

pub struct NewUser {
    pub org_id: OrgId,
    pub email: EmailAddress,
    pub display_name: String,
    pub role: Role,
    pub password_hash: password::PasswordHash,
}

/// Counts of recent failed sign-ins, for rate limiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SignInFailures {
    pub for_email: u32,
    pub from_ip: u32,
}

/// An authorization request sent to Microsoft, remembered until its callback arrives.
#[derive(Debug, Clone)]
pub struct OAuthFlow {
    pub org_id: OrgId,
    pub user_id: UserId,
    /// The session that started it; the callback must arrive in the same one.
    pub session: SessionTokenHash,
    pub purpose: FlowPurpose,
    pub pkce_verifier: Option<SecretString>,
    pub nonce: Option<String>,
    pub expires_at: UnixTime,
}

/// A connection to create or refresh after a successful sign-in with Microsoft.
#[derive(Debug, Clone)]
pub struct NewConnection {
    pub org_id: OrgId,
    pub user_id: UserId,
    pub kind: ConnectionKind,
    pub is_primary: bool,
    pub ms_tenant_id: String,
    pub ms_object_id: String,
    pub ms_username: String,
    pub ms_name: String,
    pub granted_scopes: Vec<String>,
    pub access_token: SecretString,
    pub access_expires_at: UnixTime,
    pub refresh_token: Option<SecretString>,
}

/// Unix time in seconds. All stored times use it so both databases compare them the same way.
pub type UnixTime = i64;

pub fn now_unix() -> UnixTime {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The one store handle: the product's operations and, as its supertraits, the sync engine's
/// ([`SyncStore`]), the change-notification subscriptions' ([`SubscriptionStore`]) and the write
/// outbox's ([`WriteStore`]), over one pool (on SQLite, reads over one and writes through a
/// connection of their own, so writers queue rather than sleep on SQLite's lock).
#[async_trait]
pub trait Store: SyncStore + SubscriptionStore + WriteStore {
    fn backend(&self) -> Backend;

    /// A cheap round trip to the database, for `/healthz`.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Closes every connection; later calls fail. Used at shutdown.
    async fn close(&self);

    async fn create_organization(&self, name: &str) -> Result<Organization, StoreError>;
    async fn organization_by_name(&self, name: &str) -> Result<Option<Organization>, StoreError>;
    async fn organization(&self, id: OrgId) -> Result<Option<Organization>, StoreError>;

    /// Fails with [`StoreError::Conflict`] when the email is taken (emails are unique platform-wide,
    /// because sign-in asks only for an email).
    async fn create_user(&self, new: NewUser) -> Result<User, StoreError>;
    async fn user_credentials(&self, email: &EmailAddress) -> Result<Option<UserCredentials>, StoreError>;
    async fn users_in_org(&self, org: OrgId) -> Result<Vec<User>, StoreError>;

    /// A session that ends at `expires_at`, or earlier once unused for `idle_timeout_secs`.
    async fn start_session(
        &self,
        user: &User,
        token: &SessionTokenHash,
        now: UnixTime,
        expires_at: UnixTime,
        idle_timeout_secs: i64,
    ) -> Result<(), StoreError>;
    /// The user behind a live session, or `None` when it is unknown, expired or idle too long.
    /// Records the use (at most once a minute).
    async fn session_user(&self, token: &SessionTokenHash, now: UnixTime) -> Result<Option<SessionUser>, StoreError>;
    async fn end_session(&self, token: &SessionTokenHash) -> Result<(), StoreError>;
    /// Removes sessions past their absolute lifetime or their idle timeout.
    async fn purge_expired_sessions(&self, now: UnixTime) -> Result<u64, StoreError>;

    /// Records a sign-in attempt (`email` normalized) **before** its password is checked, and counts
    /// it with the window's other attempts that were not cleared by a success, in one transaction
    /// (serialized per email and address): `None`, keeping nothing, when that makes more than
    /// [`accounts::MAX_FAILURES_PER_EMAIL`] for the email or [`accounts::MAX_FAILURES_PER_IP`] for the
    /// address; otherwise the attempt's id. A wrong password leaves the attempt as a failure; a
    /// success clears them ([`Store::clear_sign_in_failures`]). So parallel guesses cannot get more
    /// checks than the limit between them.
    async fn begin_sign_in_attempt(&self, email: &str, client_ip: &str, now: UnixTime) -> Result<Option<i64>, StoreError>;
    /// Takes back an attempt whose password was never checked (the server was too busy hashing).
    async fn withdraw_sign_in_attempt(&self, attempt: i64) -> Result<(), StoreError>;
    /// Attempts in the window (failures, and attempts being checked) for the email and the address.
    async fn sign_in_failures_since(&self, email: &str, client_ip: &str, since: UnixTime) -> Result<SignInFailures, StoreError>;
    /// After a successful sign-in the email's failures no longer count against it.
    async fn clear_sign_in_failures(&self, email: &str) -> Result<(), StoreError>;

    /// The organization's Office 365 settings; defaults (not set up) when never saved.
    async fn office365_settings(&self, org: OrgId) -> Result<Office365Settings, StoreError>;
    /// Saves settings, the new client secret if one is given (sealed), and the audit entries
    /// describing the change, all in one transaction: all or nothing.
    async fn save_office365_settings(
        &self,
        org: OrgId,
        settings: &Office365Settings,
        new_secret: Option<&SecretString>,
        audit: &[AuditEntry],
    ) -> Result<(), StoreError>;
    /// The stored client secret, unsealed, for token requests. Never for display.
    async fn office365_client_secret(&self, org: OrgId) -> Result<Option<SecretString>, StoreError>;

    /// Pins the organization to a Microsoft 365 tenant (its id, lower-case), with the audit entry
    /// saying so. Exclusive pins are unique per tenant (`Conflict` when another organization holds
    /// one); shared pins never conflict.
    async fn pin_tenant(&self, org: OrgId, tenant_id: &str, exclusive: bool, entry: &AuditEntry) -> Result<(), StoreError>;
    async fn record_audit(&self, org: OrgId, entry: &AuditEntry) -> Result<(), StoreError>;
    /// Newest first.
    async fn audit_log(&self, org: OrgId, limit: u32) -> Result<Vec<AuditEntry>, StoreError>;

    /// Remembers an authorization request under the `state` sent to Microsoft (only its hash is
    /// stored; the PKCE verifier is sealed).
    async fn start_oauth_flow(&self, state: &str, flow: &OAuthFlow, now: UnixTime) -> Result<(), StoreError>;
    /// Takes (and deletes) the flow for `state`: a second callback with the same state finds
    /// nothing. Expired flows are not returned.
    async fn take_oauth_flow(&self, state: &str, now: UnixTime) -> Result<Option<OAuthFlow>, StoreError>;

    /// Creates or replaces the owner's connection of this kind (reconnecting keeps its id), with
    /// sealed tokens, and records `audit`. A primary connection makes every other one non-primary.
    /// Replacing bumps the tokens' version, so a refresh or a needs-attention mark still in flight
    /// for the old grant writes nothing. Replacing it with another Microsoft account (tenant id or
    /// object id differ) also removes, in the same transaction, everything synced for the old one
    /// (its sync mailboxes with their cursors, status and items), audited as
    /// `office365.account_changed`.
    async fn save_connection(&self, c: &NewConnection, audit: &AuditEntry) -> Result<ConnectionSummary, StoreError>;
    async fn connection_of(&self, org: OrgId, user: UserId, kind: ConnectionKind) -> Result<Option<ConnectionSummary>, StoreError>;
    async fn connections_in_org(&self, org: OrgId) -> Result<Vec<ConnectionSummary>, StoreError>;
    /// The organization's service-account connection (a service user's or the application's).
    async fn service_connection(&self, org: OrgId) -> Result<Option<ConnectionSummary>, StoreError>;
    /// Deletes a connection and its tokens; false when there was none.
    async fn delete_connection(&self, org: OrgId, id: uuid::Uuid, audit: &AuditEntry) -> Result<bool, StoreError>;

    /// Records that Microsoft refused a member with "admin approval required" (and audits it).
    /// Returns false when a request was already pending.
    async fn request_admin_consent(&self, org: OrgId, by: &str, now: UnixTime) -> Result<bool, StoreError>;
    /// Records a completed admin consent and clears any pending request.
    async fn record_admin_consent(&self, org: OrgId, grant: &ConsentGrant, audit: &AuditEntry) -> Result<(), StoreError>;
    async fn admin_consent(&self, org: OrgId) -> Result<AdminConsent, StoreError>;

    /// Adds a mailbox for the service connection to sync; false when that address is already there.
    async fn add_service_account_user(&self, org: OrgId, user: &ServiceAccountUser, audit: &AuditEntry) -> Result<bool, StoreError>;
    async fn service_account_users(&self, org: OrgId) -> Result<Vec<ServiceAccountUser>, StoreError>;
    /// Records whether the service connection could open the mailbox (and its directory id once known).
    async fn set_service_account_user_health(
        &self,
        org: OrgId,
        id: uuid::Uuid,
        ms_object_id: Option<&str>,
        health: MailboxHealth,
        at: UnixTime,
    ) -> Result<(), StoreError>;
    async fn remove_service_account_user(&self, org: OrgId, id: uuid::Uuid, audit: &AuditEntry) -> Result<bool, StoreError>;

    /// Re-seals every stored secret with the keyring's current key (after a key rotation).
    /// Returns how many values were re-sealed.
    async fn reseal_secrets(&self) -> Result<u64, StoreError>;
}

pub type DynStore = Arc<dyn Store>;

/// Opens (creating and migrating as needed) the database a URL names:
/// `sqlite://path/to/file.db`, `sqlite::memory:`, or `postgres://…`.
/// Secrets are sealed and opened with `keyring`, whose key lives outside the database.
pub async fn open(url: &str, keyring: Arc<Keyring>) -> Result<DynStore, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(url, keyring).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::open(url, keyring).await?))
    } else {
        Err(StoreError::UnsupportedUrl)
    }
}
