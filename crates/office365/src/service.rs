//! Service-account mode: the organization's one service connection, a current access token for
//! it, and checks of the mailboxes it syncs.

use crate::{Error, Integration, Result, audit};
use domain::office365::Office365Settings;
use domain::{AuditEntry, ConnectionKind, ConnectionSummary, MailboxHealth, OrgId, ServiceAccountUser, SessionUser};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
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
                self.delete_connection(admin.org_id, old.id, &removed).await?;
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
    /// each row can say "no access to this mailbox" before any sync runs. Each address is looked
    /// up in the directory first, and Microsoft's object id for it is the one stored; when the
    /// connection may not read the directory, the mailbox is opened as stored (id or address).
    ///
    /// Runs in the background and returns at once: [`CHECKS_AT_ONCE`] mailboxes at a time, each
    /// result recorded as it arrives; until its check ends a row is listed as checking
    /// ([`Checks::pending`]). When every check has ended the schedule is updated, with the
    /// directory ids learned.
    pub(crate) fn check_mailboxes(&self, org: OrgId, token: &SecretString, users: Vec<ServiceAccountUser>) {
        let checks: Vec<(ServiceAccountUser, Checking)> = users
            .into_iter()
            .map(|u| {
                let checking = Checking::start(&self.checks, u.id);
                (u, checking)
            })
            .collect();
        let (this, token) = (self.clone(), token.clone());
        tokio::spawn(async move {
            this.check_each(org, &token, checks).await;
            this.reschedule(org).await;
        });
    }

    /// The checks of [`Integration::check_mailboxes`], at most [`CHECKS_AT_ONCE`] at a time.
    async fn check_each(&self, org: OrgId, token: &SecretString, checks: Vec<(ServiceAccountUser, Checking)>) {
        // Refused once (a service user has no directory permission): not asked again for every row.
        let directory = Arc::new(AtomicBool::new(true));
        let mut running = tokio::task::JoinSet::new();
        for (user, checking) in checks {
            if running.len() >= CHECKS_AT_ONCE {
                running.join_next().await;
            }
            let (this, token, directory) = (self.clone(), token.clone(), directory.clone());
            running.spawn(async move {
                if let Err(e) = this.check_mailbox(org, &token, &user, &directory).await {
                    tracing::warn!(org = %org, error = %e, "could not record a mailbox check");
                }
                drop(checking);
            });
        }
        while running.join_next().await.is_some() {}
    }

    /// Looks `user`'s address up in the directory (while `directory` says it may be read), then
    /// probes the mailbox and records the answer.
    async fn check_mailbox(&self, org: OrgId, token: &SecretString, user: &ServiceAccountUser, directory: &AtomicBool) -> Result<()> {
        let answer =
            if directory.load(Ordering::Relaxed) { self.look_up(token, &user.ms_username).await } else { DirectoryAnswer::CannotLook };
        match answer {
            DirectoryAnswer::Found(found) => self.probe_and_record(org, token, user, &found.id, Some(&found.id)).await,
            // Nobody has this address (any more): its mailbox, not a stored id's, is the one to open.
            DirectoryAnswer::Unknown => self.probe_and_record(org, token, user, &user.ms_username, None).await,
            DirectoryAnswer::CannotLook => {
                directory.store(false, Ordering::Relaxed);
                self.probe_and_record(org, token, user, user.graph_user_id(), None).await
            }
        }
    }

    /// Probes the mailbox `who` (a directory id or an address) for `user`'s row and records its
    /// health, with the directory id `learned` for it, if any.
    pub(crate) async fn probe_and_record(
        &self,
        org: OrgId,
        token: &SecretString,
        user: &ServiceAccountUser,
        who: &str,
        learned: Option<&str>,
    ) -> Result<()> {
        let health = match self.microsoft.probe_mailbox(token, &microsoft::MailboxRef::User(who.to_owned())).await {
            Ok(()) => MailboxHealth::Ok,
            Err(e) => MailboxHealth::Problem(e.reason),
        };
        self.store.set_service_account_user_health(org, user.id, learned, health, store::now_unix()).await?;
        Ok(())
    }

    /// Who the directory says has this address.
    pub(crate) async fn look_up(&self, token: &SecretString, address: &str) -> DirectoryAnswer {
        match self.microsoft.find_user(token, address).await {
            Ok(Some(found)) => DirectoryAnswer::Found(found),
            Ok(None) => DirectoryAnswer::Unknown,
            Err(e) => {
                tracing::info!(reason = e.reason.as_str(), "could not look an address up in the Microsoft directory");
                DirectoryAnswer::CannotLook
            }
        }
    }

    /// Checks every service account user's mailbox with a token just obtained, in the background
    /// ([`Integration::check_mailboxes`]), and then updates the schedule.
    pub(crate) async fn check_all_mailboxes(&self, org: OrgId, token: &SecretString) -> Result<()> {
        let users = self.store.service_account_users(org).await?;
        self.check_mailboxes(org, token, users);
        Ok(())
    }
}

/// Mailboxes checked at once in the background (each a directory lookup and a probe): a 96-person
/// team at Microsoft's latency is checked in seconds, without a burst Graph would throttle.
pub(crate) const CHECKS_AT_ONCE: usize = 6;

/// The service account users whose mailbox check is under way in this process, with how many
/// checks of each (two activations in a row may overlap).
#[derive(Default)]
pub(crate) struct Checks(Mutex<HashMap<uuid::Uuid, usize>>);

impl Checks {
    /// Of `users`, those whose check has not ended yet.
    pub(crate) fn pending(&self, users: &[ServiceAccountUser]) -> Vec<uuid::Uuid> {
        let checking = self.0.lock().unwrap_or_else(|p| p.into_inner());
        users.iter().map(|u| u.id).filter(|id| checking.contains_key(id)).collect()
    }
}

/// One check under way: listed in [`Checks`] until dropped, however the check ends.
pub(crate) struct Checking {
    checks: Arc<Checks>,
    user: uuid::Uuid,
}

impl Checking {
    fn start(checks: &Arc<Checks>, user: uuid::Uuid) -> Checking {
        *checks.0.lock().unwrap_or_else(|p| p.into_inner()).entry(user).or_default() += 1;
        Checking { checks: checks.clone(), user }
    }
}

impl Drop for Checking {
    fn drop(&mut self) {
        let mut checking = self.checks.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = checking.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                checking.remove(&self.user);
            }
        }
    }
}

/// What the Microsoft directory answered about an address.
pub(crate) enum DirectoryAnswer {
    Found(microsoft::GraphUser),
    /// Nobody in the directory has it.
    Unknown,
    /// The lookup was refused (no directory permission) or failed (Microsoft unavailable).
    CannotLook,
}
