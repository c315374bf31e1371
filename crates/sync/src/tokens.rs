//! Access tokens for sync runs (MICROSOFT.md §1.4):
//!
//! - delegated connections: the stored access token while it has more than the refresh margin
//!   left, otherwise a refresh — and the **rotated refresh token is saved every time**, together
//!   with the new access token (one statement). Every token write is compare-and-set on the
//!   version of the tokens it started from: when another instance refreshed first, or the owner
//!   reconnected meanwhile, the write does nothing and the tokens that writer saved are used instead
//!   (the lock below is per process; the version is what keeps instances apart);
//! - application permissions: client-credentials tokens, cached per organization until shortly
//!   before they expire;
//! - a refresh that fails for a reason someone must fix (`invalid_grant`: revoked or expired,
//!   consent, MFA, client secret) marks the connection as needing attention with that reason; the
//!   scheduler then leaves it alone until it is reconnected. Faults of the app registration (client
//!   secret, client id: an Intelligence360 admin must act) do not mark connections; runs stop with
//!   that reason until the settings are fixed. Transient failures are retried later.

use crate::error::SyncError;
use crate::metrics::SyncMetrics;
use domain::OrgId;
use domain::office365::Office365Settings;
use domain::permissions::ConnectionMode;
use microsoft::{AppRegistration, MicrosoftClient, SecretString};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use store::{DynStore, UnixTime};
use uuid::Uuid;

/// Which token a mailbox is read with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// The connection's delegated token (`/me`, or `/users/{id}` with `.Shared` scopes).
    Delegated { connection: Uuid },
    /// The organization's client-credentials token (application permissions, `/users/{id}`).
    App { org: OrgId },
}

/// The deployment's own multi-tenant app registration: the operator's process setting, used by
/// every organization that does not bring its own (PRODUCT.md, "The deployment's app
/// registration"). In an organization it signs in through `organizations` until the tenant is
/// pinned, and through the pinned tenant after.
#[derive(Debug, Clone)]
pub struct DeploymentApp {
    pub client_id: String,
    /// A certificate (Microsoft's recommendation) or a client secret.
    pub credential: microsoft::ClientCredential,
}

/// An organization, a tenant and a client id.
type AppTokenKey = (OrgId, String, String);

/// The authority sign-ins of the deployment's app use before an organization's tenant is pinned.
pub const ANY_ORGANIZATION: &str = "organizations";

pub struct TokenSource {
    store: DynStore,
    deployment_app: Option<DeploymentApp>,
    client: MicrosoftClient,
    metrics: Arc<SyncMetrics>,
    /// Refresh this long before expiry.
    margin_secs: i64,
    /// Keyed by organization, tenant and client id: a switch of app registration (the
    /// deployment's or the organization's own, another tenant) never reuses the other's token.
    app_tokens: Mutex<HashMap<AppTokenKey, (SecretString, UnixTime)>>,
    /// One client-credentials request at a time per organization.
    app_fetching: Mutex<HashMap<OrgId, Arc<tokio::sync::Mutex<()>>>>,
    /// One refresh at a time per connection (several mailboxes may share one).
    refreshing: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
    /// The version of the delegated tokens last handed out per connection: a needs-attention mark
    /// for what Graph said about them is conditional on it ([`TokenSource::version_in_use`]).
    versions: Mutex<HashMap<Uuid, i64>>,
}

/// How many times a delegated token is re-read after losing a compare-and-set to another writer.
const MAX_TOKEN_RACES: usize = 3;

fn now() -> UnixTime {
    store::now_unix()
}

impl TokenSource {
    pub fn new(
        store: DynStore,
        client: MicrosoftClient,
        metrics: Arc<SyncMetrics>,
        margin_secs: i64,
        deployment_app: Option<DeploymentApp>,
    ) -> TokenSource {
        TokenSource {
            store,
            deployment_app,
            client,
            metrics,
            margin_secs,
            app_tokens: Mutex::new(HashMap::new()),
            app_fetching: Mutex::new(HashMap::new()),
            refreshing: Mutex::new(HashMap::new()),
            versions: Mutex::new(HashMap::new()),
        }
    }

    /// The version of the connection's tokens this source last handed out, if any: mark the
    /// connection with it ([`store::SyncStore::mark_connection_needs_attention`]) so that a mark for
    /// old tokens does not land on newer ones (a refresh or a reconnect since).
    pub fn version_in_use(&self, connection: Uuid) -> Option<i64> {
        self.versions.lock().unwrap_or_else(|p| p.into_inner()).get(&connection).copied()
    }

    fn hand_out(&self, tokens: store::sync::ConnectionTokens) -> SecretString {
        self.versions.lock().unwrap_or_else(|p| p.into_inner()).insert(tokens.connection_id, tokens.version);
        tokens.access_token
    }

    /// The app registration of an organization, from its Office 365 settings.
    pub async fn app_registration(&self, org: OrgId) -> Result<AppRegistration, SyncError> {
        let settings = self.store.office365_settings(org).await?;
        if !settings.own_app {
            let app = self.deployment_app.as_ref().ok_or_else(|| {
                SyncError::NotConfigured("this server has no app registration of its own; the organization must use its own".into())
            })?;
            let tenant = settings.pinned_tenant.as_deref().unwrap_or(ANY_ORGANIZATION);
            return AppRegistration::with_credential(tenant, &app.client_id, app.credential.clone())
                .map_err(|e| SyncError::NotConfigured(e.to_string()));
        }
        let secret = self.store.office365_client_secret(org).await?.ok_or_else(|| SyncError::NotConfigured("no client secret".into()))?;
        AppRegistration::new(&settings.tenant, &settings.client_id, secret).map_err(|e| SyncError::NotConfigured(e.to_string()))
    }

    /// Which app registration, in which tenant, an organization's app-only token comes from (read
    /// from its settings without unsealing any secret).
    async fn app_token_key(&self, org: OrgId) -> Result<AppTokenKey, SyncError> {
        Ok(self.app_token_key_of(org, &self.store.office365_settings(org).await?))
    }

    fn app_token_key_of(&self, org: OrgId, settings: &Office365Settings) -> AppTokenKey {
        match (&self.deployment_app, settings.own_app) {
            (Some(app), false) => (org, settings.pinned_tenant.clone().unwrap_or_else(|| ANY_ORGANIZATION.into()), app.client_id.clone()),
            _ => (org, settings.tenant.clone(), settings.client_id.clone()),
        }
    }

    /// The app-only token cached for `key`, unless it expires within the margin.
    fn cached_app_token(&self, key: &AppTokenKey) -> Option<SecretString> {
        let cached = self.app_tokens.lock().unwrap_or_else(|p| p.into_inner()).get(key).cloned();
        cached.filter(|(_, expires)| expires - self.margin_secs > now()).map(|(token, _)| token)
    }

    /// Why Microsoft refused a token request of `app`: a refused credential of the deployment's
    /// app is the operator's to fix, not the organization's settings page's.
    fn refusal(&self, app: &AppRegistration, e: &microsoft::MicrosoftError) -> domain::ReasonCode {
        let deployment = self.deployment_app.as_ref().is_some_and(|d| d.client_id.eq_ignore_ascii_case(&app.client_id));
        if deployment { e.reason().with_deployment_app() } else { e.reason() }
    }

    /// Which token a mailbox uses under the organization's connection mode.
    pub fn kind_for(mode: ConnectionMode, org: OrgId, connection: Uuid, other_mailbox: bool) -> TokenKind {
        if mode == ConnectionMode::ApplicationPermissions && other_mailbox {
            TokenKind::App { org }
        } else {
            TokenKind::Delegated { connection }
        }
    }

    /// A usable access token. `force` skips the stored one (Graph answered 401 with it).
    pub async fn access_token(&self, kind: TokenKind, force: bool) -> Result<SecretString, SyncError> {
        self.token(kind, None, force).await
    }

    /// [`TokenSource::access_token`] for a run that has read the organization's settings: an
    /// app-only token cached for the app registration they name is used without reading them
    /// again or waiting for the organization's turn to fetch one.
    pub async fn access_token_as_of(&self, kind: TokenKind, settings: &Office365Settings, force: bool) -> Result<SecretString, SyncError> {
        self.token(kind, Some(settings), force).await
    }

    async fn token(&self, kind: TokenKind, settings: Option<&Office365Settings>, force: bool) -> Result<SecretString, SyncError> {
        match kind {
            TokenKind::Delegated { connection } => self.delegated(connection, force).await,
            TokenKind::App { org } => self.app(org, force, settings).await,
        }
    }

    async fn app(&self, org: OrgId, force: bool, settings: Option<&Office365Settings>) -> Result<SecretString, SyncError> {
        if !force && let Some(token) = settings.and_then(|s| self.cached_app_token(&self.app_token_key_of(org, s))) {
            return Ok(token);
        }
        let lock = self.app_fetching.lock().unwrap_or_else(|p| p.into_inner()).entry(org).or_default().clone();
        let _one_at_a_time = lock.lock().await;
        let key = self.app_token_key(org).await?;
        if !force && let Some(token) = self.cached_app_token(&key) {
            return Ok(token);
        }
        let app = self.app_registration(org).await?;
        match self.client.client_credentials(&app).await {
            Ok(t) => {
                SyncMetrics::add(&self.metrics.token_refreshes, 1);
                let expires = t.expires_at.unix_timestamp();
                self.app_tokens.lock().unwrap_or_else(|p| p.into_inner()).insert(key, (t.access_token.clone(), expires));
                Ok(t.access_token)
            }
            Err(e) if e.reason().is_transient() => Err(SyncError::Token(e)),
            Err(e) => Err(SyncError::NeedsAttention(self.refusal(&app, &e))),
        }
    }

    /// The connection's stored tokens; `NeedsAttention` (with the stored reason) when it is marked.
    async fn stored_tokens(&self, connection: Uuid) -> Result<store::sync::ConnectionTokens, SyncError> {
        let tokens = self.store.connection_tokens(connection).await?.ok_or(SyncError::NotConfigured("the connection is gone".into()))?;
        if tokens.needs_attention {
            let reason = self
                .store
                .connections_in_org(tokens.org_id)
                .await?
                .into_iter()
                .find(|c| c.id == connection)
                .and_then(|c| c.reason)
                .unwrap_or(domain::ReasonCode::ConsentRequired);
            return Err(SyncError::NeedsAttention(reason));
        }
        Ok(tokens)
    }

    async fn delegated(&self, connection: Uuid, force: bool) -> Result<SecretString, SyncError> {
        let lock = self.refreshing.lock().unwrap_or_else(|p| p.into_inner()).entry(connection).or_default().clone();
        let _one_at_a_time = lock.lock().await;
        let mut tokens = self.stored_tokens(connection).await?;
        if !force && tokens.access_expires_at - self.margin_secs > now() {
            return Ok(self.hand_out(tokens));
        }
        for _ in 0..MAX_TOKEN_RACES {
            let version = tokens.version;
            let Some(rt) = tokens.refresh_token.clone() else {
                let reason = domain::ReasonCode::RefreshTokenExpired;
                if self.store.mark_connection_needs_attention(connection, version, reason, now()).await? {
                    return Err(SyncError::NeedsAttention(reason));
                }
                // Newer tokens were saved meanwhile: use those.
                tokens = self.stored_tokens(connection).await?;
                return Ok(self.hand_out(tokens));
            };
            let app = self.app_registration(tokens.org_id).await?;
            match self.client.refresh(&app, &rt, None).await {
                Ok(fresh) => {
                    SyncMetrics::add(&self.metrics.token_refreshes, 1);
                    let expires_at = fresh.expires_at.unix_timestamp();
                    if self
                        .store
                        .save_refreshed_tokens(connection, version, &fresh.access_token, expires_at, fresh.refresh_token.as_ref(), now())
                        .await?
                    {
                        self.versions.lock().unwrap_or_else(|p| p.into_inner()).insert(connection, version + 1);
                        return Ok(fresh.access_token);
                    }
                    // Another instance refreshed these tokens first, or the owner reconnected: what
                    // it saved is current (and this refresh's rotated token is not kept over it).
                    tracing::info!(%connection, "tokens were saved by another writer during the refresh; using those");
                    tokens = self.stored_tokens(connection).await?;
                    return Ok(self.hand_out(tokens));
                }
                Err(e) if e.reason().is_transient() => return Err(SyncError::Token(e)),
                Err(e) if e.reason().who_must_act() == domain::WhoMustAct::PlatformAdmin => {
                    // The app registration's fault (client secret, client id): not this connection's.
                    // Every connection would be marked and then need its owner to reconnect; instead
                    // the error is shown and the sync resumes once an admin fixes the settings.
                    return Err(SyncError::NeedsAttention(self.refusal(&app, &e)));
                }
                Err(e) => {
                    let reason = e.reason();
                    if self.store.mark_connection_needs_attention(connection, version, reason, now()).await? {
                        tracing::warn!(%connection, ?reason, "refresh refused: the connection needs attention");
                        return Err(SyncError::NeedsAttention(reason));
                    }
                    // Refused because another writer had already rotated (or replaced) the refresh
                    // token this one read: the tokens it saved are current.
                    tracing::info!(%connection, ?reason, "refresh refused for tokens another writer has replaced; using the new ones");
                    tokens = self.stored_tokens(connection).await?;
                    if tokens.access_expires_at - self.margin_secs > now() {
                        return Ok(self.hand_out(tokens));
                    }
                }
            }
        }
        Err(SyncError::NotConfigured("the connection's tokens kept changing during refresh".into()))
    }
}
