//! Service-account mode: the organization's one service connection, a current access token for
//! it, and checks of the mailboxes it syncs.

use crate::{Error, Integration, Result, audit};
use domain::office365::Office365Settings;
use domain::{AuditEntry, ConnectionKind, ConnectionSummary, MailboxHealth, OrgId, ServiceAccountUser, SessionUser};
use store::NewConnection;
use store::secrets::SecretString;

impl Integration {
    /// The organization's app registration with its (unsealed) client secret; the sync engine's
    /// token source builds it, so there is one way to do it.
    pub(crate) async fn app_registration(&self, org: OrgId) -> Result<microsoft::AppRegistration> {
        Ok(self.scheduler.engine().tokens().app_registration(org).await?)
    }

    /// Creates (or renews) the application connection of service-account mode after admin
    /// consent: a client-credentials token proves the consent works, and is kept sealed.
    pub(crate) async fn activate_application(
        &self,
        admin: &SessionUser,
        settings: &Office365Settings,
        tenant_id: &str,
        granted: Vec<String>,
    ) -> Result<ConnectionSummary> {
        let app = self.app_registration(admin.org_id).await?;
        let token = self.microsoft.client_credentials(&app).await.map_err(|e| crate::tenant::token_refusal(settings, e))?;
        let connection = NewConnection {
            org_id: admin.org_id,
            user_id: admin.user_id,
            kind: ConnectionKind::Application,
            is_primary: true,
            ms_tenant_id: tenant_id.to_owned(),
            ms_object_id: String::new(),
            ms_username: settings.app_client_id().unwrap_or_default().to_owned(),
            ms_name: "Application permissions".into(),
            granted_scopes: granted,
            access_token: token.access_token,
            access_expires_at: token.expires_at.unix_timestamp(),
            refresh_token: None,
        };
        let entry = audit(admin, "office365.service_activated", "Activated the service connection with application permissions.".into());
        self.replace_service_connection(admin, &connection, &entry).await
    }

    /// Saves `connection` as the organization's one service connection, removing any other.
    pub(crate) async fn replace_service_connection(
        &self,
        admin: &SessionUser,
        connection: &NewConnection,
        entry: &AuditEntry,
    ) -> Result<ConnectionSummary> {
        for old in self.store.connections_in_org(admin.org_id).await? {
            if old.kind.is_service() && (old.kind != connection.kind || old.user_id != connection.user_id) {
                let removed =
                    audit(admin, "office365.service_replaced", format!("Replaced the previous service connection ({}).", old.ms_username));
                self.store.delete_connection(admin.org_id, old.id, &removed).await?;
            }
        }
        Ok(self.store.save_connection(connection, entry).await?)
    }

    /// A current access token for the service connection, from the sync engine's token source
    /// (which refreshes delegated tokens, saving the rotated refresh token, and caches app-only
    /// ones).
    pub(crate) async fn service_token(&self, org: OrgId, settings: &Office365Settings) -> Result<SecretString> {
        let connection = self.store.service_connection(org).await?.filter(|c| c.kind == ConnectionKind::for_mode(settings.mode));
        let Some(connection) = connection else {
            return Err(Error::NotActivated);
        };
        let kind = match connection.kind {
            ConnectionKind::Application => sync::TokenKind::App { org },
            _ => sync::TokenKind::Delegated { connection: connection.id },
        };
        Ok(self.scheduler.engine().tokens().access_token(kind, false).await?)
    }

    /// Opens each mailbox once with the service connection's token and records what happened, so
    /// each row can say "no access to this mailbox" before any sync runs.
    pub(crate) async fn check_mailboxes(&self, org: OrgId, token: &SecretString, users: &[ServiceAccountUser]) -> Result<()> {
        for user in users {
            let who = user.ms_object_id.clone().unwrap_or_else(|| user.ms_username.clone());
            let health = match self.microsoft.probe_mailbox(token, &microsoft::MailboxRef::User(who)).await {
                Ok(()) => MailboxHealth::Ok,
                Err(e) => MailboxHealth::Problem(e.reason),
            };
            self.store.set_service_account_user_health(org, user.id, None, health, store::now_unix()).await?;
        }
        Ok(())
    }

    /// Checks every service account user's mailbox with a token just obtained.
    pub(crate) async fn check_all_mailboxes(&self, org: OrgId, token: &SecretString) -> Result<()> {
        let users = self.store.service_account_users(org).await?;
        self.check_mailboxes(org, token, &users).await
    }
}
