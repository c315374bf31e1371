//! Connections as people manage them: My Connection (the admin's own or the service connection),
//! a member's own on Profile, and every member's on Team connections; Sync now, Deactivate and
//! Disconnect.

use crate::{Error, Integration, Result, admin_only, audit};
use domain::permissions::ConnectionMode;
use domain::views::{MyConnectionView, ProfileOffice365, TeamRow};
use domain::{ConnectionKind, ConnectionSummary, SessionUser};

impl Integration {
    /// The connection My Connection is about: in individual mode the admin's own, in
    /// service-account mode the organization's one service connection.
    async fn shown_connection(&self, admin: &SessionUser, mode: ConnectionMode) -> Result<Option<ConnectionSummary>> {
        Ok(match mode {
            ConnectionMode::Individual => self.store.connection_of(admin.org_id, admin.user_id, ConnectionKind::Individual).await?,
            _ => self.store.service_connection(admin.org_id).await?.filter(|c| c.kind == ConnectionKind::for_mode(mode)),
        })
    }

    pub async fn my_connection(&self, admin: &SessionUser) -> Result<MyConnectionView> {
        admin_only(admin)?;
        let settings = self.settings(admin.org_id).await?;
        let connection = self.shown_connection(admin, settings.mode).await?;
        let scope = settings.scope_settings();
        let granted = connection.as_ref().map(|c| c.granted_scopes.clone()).unwrap_or_default();
        let sync = match &connection {
            Some(c) => self.connection_sync_summary(&settings, admin.org_id, c.id).await?,
            None => None,
        };
        Ok(MyConnectionView {
            sync,
            enabled: settings.enabled,
            mode: settings.mode,
            permissions: scope.granted_status(&granted).into_iter().map(|(name, ok)| (name.to_owned(), ok)).collect(),
            missing: match connection {
                Some(_) => scope.missing(&granted).iter().map(|m| m.sentence()).collect(),
                None => Vec::new(),
            },
            connection,
        })
    }

    /// "Sync now" on My Connection: every mailbox of the shown connection is due at once.
    pub async fn sync_my_connection_now(&self, admin: &SessionUser) -> Result<()> {
        admin_only(admin)?;
        let settings = self.settings(admin.org_id).await?;
        if let Some(c) = self.shown_connection(admin, settings.mode).await? {
            self.scheduler.sync_connection_now(admin.org_id, c.id).await?;
        }
        Ok(())
    }

    /// Deactivate: the shown connection and its tokens are deleted.
    pub async fn deactivate_my_connection(&self, admin: &SessionUser) -> Result<()> {
        admin_only(admin)?;
        let settings = self.settings(admin.org_id).await?;
        if let Some(c) = self.shown_connection(admin, settings.mode).await? {
            let what = if c.kind.is_service() { "the service connection" } else { "My Connection" };
            let entry = audit(admin, "office365.deactivated", format!("Deactivated {what} ({}); its tokens were deleted.", c.ms_username));
            self.delete_connection(admin.org_id, c.id, &entry).await?;
            self.reschedule(admin.org_id).await;
        }
        Ok(())
    }

    pub async fn profile(&self, user: &SessionUser) -> Result<ProfileOffice365> {
        let settings = self.settings(user.org_id).await?;
        let connection = self.store.connection_of(user.org_id, user.user_id, ConnectionKind::Individual).await?;
        let sync = match &connection {
            Some(c) => self.connection_sync_summary(&settings, user.org_id, c.id).await?,
            None => None,
        };
        // Whether the service connection syncs this person's mailbox instead: a service account
        // user it can open, with their Microsoft identity (the one on their own connection) or
        // their address.
        let service_account_user = settings.is_service_account()
            && self.store.service_account_users(user.org_id).await?.iter().any(|u| {
                let openable = !matches!(u.health, Some(domain::MailboxHealth::Problem(r)) if !r.is_transient());
                openable
                    && (u.ms_username.eq_ignore_ascii_case(user.email.as_str())
                        || connection.as_ref().is_some_and(|c| {
                            u.ms_username.eq_ignore_ascii_case(&c.ms_username)
                                || (!c.ms_object_id.is_empty() && u.ms_object_id.as_deref() == Some(c.ms_object_id.as_str()))
                        }))
            });
        Ok(ProfileOffice365 {
            enabled: settings.enabled,
            service_account: settings.is_service_account(),
            connection,
            sync,
            service_account_user,
        })
    }

    /// Disconnect on Profile: the person's own connection and its tokens are deleted.
    pub async fn disconnect_own(&self, user: &SessionUser) -> Result<()> {
        if let Some(c) = self.store.connection_of(user.org_id, user.user_id, ConnectionKind::Individual).await? {
            let entry =
                audit(user, "office365.disconnected", format!("Disconnected Office 365 ({}); its tokens were deleted.", c.ms_username));
            self.delete_connection(user.org_id, c.id, &entry).await?;
            self.reschedule(user.org_id).await;
        }
        Ok(())
    }

    /// Team connections: every connection in the organization with its owner and sync state.
    pub async fn team_connections(&self, admin: &SessionUser) -> Result<Vec<TeamRow>> {
        admin_only(admin)?;
        let settings = self.settings(admin.org_id).await?;
        let people = self.store.users_in_org(admin.org_id).await?;
        // Every connection's mailboxes in one read: the page's statements do not grow with them.
        let org_sync = self.org_sync(admin.org_id, store::sync::MailboxFilter::default()).await?;
        let mut rows = Vec::new();
        for c in self.store.connections_in_org(admin.org_id).await? {
            let sync = self.sync_summary(&settings, &org_sync, c.id);
            let owner = people.iter().find(|u| u.id == c.user_id);
            rows.push(TeamRow {
                id: c.id.to_string(),
                owner: owner.map(|u| u.display_name.clone()).unwrap_or_else(|| "Former member".into()),
                owner_email: owner.map(|u| u.email.to_string()).unwrap_or_default(),
                ms_username: c.ms_username,
                is_primary: c.is_primary,
                state: c.state,
                reason: c.reason,
                connected_at: c.updated_at,
                sync,
            });
        }
        Ok(rows)
    }

    /// "Sync now" on one Team connections row (`id` as the browser sent it).
    pub async fn sync_team_connection_now(&self, admin: &SessionUser, id: &str) -> Result<()> {
        let c = self.team_connection(admin, id).await?;
        self.scheduler.sync_connection_now(admin.org_id, c.id).await?;
        Ok(())
    }

    /// Disconnect on one Team connections row.
    pub async fn disconnect_team_connection(&self, admin: &SessionUser, id: &str) -> Result<()> {
        let c = self.team_connection(admin, id).await?;
        let entry = audit(
            admin,
            "office365.disconnected",
            format!("Disconnected the Office 365 connection of {}; its tokens were deleted.", c.ms_username),
        );
        self.delete_connection(admin.org_id, c.id, &entry).await?;
        self.reschedule(admin.org_id).await;
        Ok(())
    }

    /// A connection of the admin's organization by the id a page sent.
    async fn team_connection(&self, admin: &SessionUser, id: &str) -> Result<ConnectionSummary> {
        admin_only(admin)?;
        let id: uuid::Uuid = id.parse().map_err(|_| Error::NotFound("That connection does not exist."))?;
        self.store
            .connections_in_org(admin.org_id)
            .await?
            .into_iter()
            .find(|c| c.id == id)
            .ok_or(Error::NotFound("That connection no longer exists."))
    }
}
