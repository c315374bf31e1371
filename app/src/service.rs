//! Service-account mode on the server: the organization's one service connection, a current access
//! token for it, and checks of the mailboxes it syncs. Used by the settings pages' server functions
//! and by the OAuth routes; the sync engine gets its tokens the same way.

use crate::state::AppState;
use domain::office365::Office365Settings;
use domain::{AuditEntry, ConnectionKind, ConnectionSummary, MailboxHealth, OrgId, ReasonCode, ServiceAccountUser, SessionUser};
use secrecy::ExposeSecret;
use store::secrets::SecretString;
use store::{NewConnection, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ServiceFailure {
    #[error("{} {}", .0.message(), .0.next_step())]
    Microsoft(ReasonCode, Option<u32>),
    #[error("The service connection is not active yet. Activate it under My Connection first.")]
    NotActivated,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ServiceFailure {
    fn microsoft(e: &microsoft::MicrosoftError) -> ServiceFailure {
        ServiceFailure::Microsoft(e.reason(), e.aad().and_then(|a| a.error_codes.first().copied()))
    }

}

/// The organization's app registration with its (unsealed) client secret.
pub async fn app_registration(
    state: &AppState,
    org: OrgId,
    settings: &Office365Settings,
) -> Result<microsoft::AppRegistration, ServiceFailure> {
    let Some(secret) = state.store.office365_client_secret(org).await? else {
        return Err(ServiceFailure::Microsoft(ReasonCode::ClientSecretInvalid, None));
    };
    microsoft::AppRegistration::new(&settings.tenant, &settings.client_id, secrecy::SecretString::from(secret.expose().to_owned()))
        .map_err(|_| ServiceFailure::Microsoft(ReasonCode::AppNotFound, None))
}

/// Creates (or renews) the application connection of service-account mode after admin consent:
/// a client-credentials token proves the consent works, and is kept sealed for the sync.
pub async fn activate_application(
    state: &AppState,
    admin: &SessionUser,
    settings: &Office365Settings,
    tenant_id: &str,
    granted: Vec<String>,
) -> Result<ConnectionSummary, ServiceFailure> {
    let app = app_registration(state, admin.org_id, settings).await?;
    let token = state.microsoft.client_credentials(&app).await.map_err(|e| ServiceFailure::microsoft(&e))?;
    let connection = NewConnection {
        org_id: admin.org_id,
        user_id: admin.user_id,
        kind: ConnectionKind::Application,
        is_primary: true,
        ms_tenant_id: tenant_id.to_owned(),
        ms_object_id: String::new(),
        ms_username: settings.client_id.clone(),
        ms_name: "Application permissions".into(),
        granted_scopes: granted,
        access_token: SecretString::new(token.access_token.expose_secret()),
        access_expires_at: token.expires_at.unix_timestamp(),
        refresh_token: None,
    };
    let audit = AuditEntry {
        at: store::now_unix(),
        actor: admin.audit_label(),
        action: "office365.service_activated".into(),
        summary: "Activated the service connection with application permissions.".into(),
    };
    replace_service_connection(state, admin, &connection, &audit).await
}

/// Saves `connection` as the organization's one service connection, removing any other.
pub async fn replace_service_connection(
    state: &AppState,
    admin: &SessionUser,
    connection: &NewConnection,
    audit: &AuditEntry,
) -> Result<ConnectionSummary, ServiceFailure> {
    for old in state.store.connections_in_org(admin.org_id).await? {
        if old.kind.is_service() && (old.kind != connection.kind || old.user_id != connection.user_id) {
            let removed = AuditEntry {
                at: audit.at,
                actor: admin.audit_label(),
                action: "office365.service_replaced".into(),
                summary: format!("Replaced the previous service connection ({}).", old.ms_username),
            };
            state.store.delete_connection(admin.org_id, old.id, &removed).await?;
        }
    }
    Ok(state.store.save_connection(connection, audit).await?)
}

/// A current access token for the service connection, from the sync engine's token source (which
/// refreshes delegated tokens, saving the rotated refresh token, and caches app-only ones).
pub async fn service_token(
    state: &AppState,
    org: OrgId,
    settings: &Office365Settings,
) -> Result<(ConnectionSummary, secrecy::SecretString), ServiceFailure> {
    let Some(connection) = state.store.service_connection(org).await? else {
        return Err(ServiceFailure::NotActivated);
    };
    if connection.kind != ConnectionKind::for_mode(settings.mode) {
        return Err(ServiceFailure::NotActivated);
    }
    let kind = match connection.kind {
        ConnectionKind::Application => sync::TokenKind::App { org },
        _ => sync::TokenKind::Delegated { connection: connection.id },
    };
    match state.sync.engine().tokens().access_token(kind, false).await {
        Ok(token) => Ok((connection, token)),
        Err(sync::SyncError::Store(e)) => Err(ServiceFailure::Store(e)),
        Err(sync::SyncError::NeedsAttention(r)) => Err(ServiceFailure::Microsoft(r, None)),
        Err(sync::SyncError::Token(e)) => Err(ServiceFailure::microsoft(&e)),
        Err(_) => Err(ServiceFailure::Microsoft(ReasonCode::ClientSecretInvalid, None)),
    }
}

/// Opens each mailbox once with the service connection's token and records what happened, so each
/// row can say "no access to this mailbox" before any sync runs.
pub async fn check_mailboxes(
    state: &AppState,
    org: OrgId,
    token: &secrecy::SecretString,
    users: &[ServiceAccountUser],
) -> Result<(), StoreError> {
    for user in users {
        let who = user.ms_object_id.clone().unwrap_or_else(|| user.ms_username.clone());
        let health = match state.microsoft.probe_mailbox(token, &microsoft::MailboxRef::User(who)).await {
            Ok(()) => MailboxHealth::Ok,
            Err(e) => MailboxHealth::Problem(e.reason),
        };
        state.store.set_service_account_user_health(org, user.id, None, health, store::now_unix()).await?;
    }
    Ok(())
}

/// Tells the sync engine what changed in the organization: which mailboxes exist (members'
/// connections, and in service-account mode every service account user the service connection can
/// open) and which are paused. Failures are logged, never shown: the scheduler's own pass catches up.
pub async fn reconcile_sync(state: &AppState, org: OrgId) {
    if let Err(e) = try_reconcile_sync(state, org).await {
        tracing::warn!(org = %org, error = %e, "could not update the sync schedule");
    }
}

async fn try_reconcile_sync(state: &AppState, org: OrgId) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    state.sync.reconcile_org(org).await?;
    let settings = state.store.office365_settings(org).await?;
    let Some(service) = state.store.service_connection(org).await? else {
        return Ok(());
    };
    let users = state.store.service_account_users(org).await?;
    let people = state.store.users_in_org(org).await?;
    let active = settings.is_service_account() && service.kind == ConnectionKind::for_mode(settings.mode);
    // A mailbox the service connection cannot open is not scheduled: its row already says why.
    let syncable: Vec<&ServiceAccountUser> = if active {
        users.iter().filter(|u| !matches!(u.health, Some(MailboxHealth::Problem(r)) if !r.is_transient())).collect()
    } else {
        Vec::new()
    };
    for u in &syncable {
        // The member whose data it is, when they have an account here; else the connection's owner.
        let owner = people.iter().find(|p| p.email.as_str().eq_ignore_ascii_case(&u.ms_username)).map(|p| p.id).unwrap_or(service.user_id);
        let graph_user_id = u.ms_object_id.clone().unwrap_or_else(|| u.ms_username.clone());
        state
            .sync
            .schedule_mailbox(&store::sync::NewSyncMailbox { org_id: org, connection_id: service.id, user_id: owner, graph_user_id: Some(graph_user_id) })
            .await?;
    }
    for mb in state.sync_store.sync_mailboxes_in_org(org).await?.into_iter().filter(|m| m.connection_id == service.id) {
        let Some(graph) = &mb.graph_user_id else { continue };
        let listed = syncable.iter().any(|u| u.ms_object_id.as_deref() == Some(graph.as_str()) || u.ms_username.eq_ignore_ascii_case(graph));
        if !listed {
            state.sync_store.remove_sync_mailbox(mb.id).await?;
        }
    }
    Ok(())
}
