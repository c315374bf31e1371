//! Service account users: the team members whose mailboxes the service connection syncs, picked
//! from the Microsoft directory or added by address; each mailbox checked once added.

use crate::service::DirectoryAnswer;
use crate::{Error, Integration, Result, admin_only, audit};
use domain::office365::Office365Settings;
use domain::views::{DirectoryPerson, DirectorySearchResult, OrgMailbox, ServiceAccountsView};
use domain::{ConnectionKind, EmailAddress, OrgId, ReasonCode, ServiceAccountUser, SessionUser};

/// What the add form sent. No directory object id: the server asks Microsoft whose mailbox the
/// address is, so nobody can attach one person's mailbox under another's address.
#[derive(Debug, Clone, Default)]
pub struct NewServiceAccountUser {
    pub address: String,
    /// The name shown on the row when Microsoft does not say one.
    pub name: Option<String>,
}

impl Integration {
    pub async fn service_accounts(&self, admin: &SessionUser) -> Result<ServiceAccountsView> {
        admin_only(admin)?;
        let settings = self.settings(admin.org_id).await?;
        let service = self.store.service_connection(admin.org_id).await?;
        let users = self.store.service_account_users(admin.org_id).await?;
        Ok(ServiceAccountsView {
            enabled: settings.enabled,
            mode: settings.mode,
            activated: service.is_some_and(|c| c.kind == ConnectionKind::for_mode(settings.mode)),
            checking: self.checks.pending(&users),
            users,
        })
    }

    /// Searches the Microsoft directory with the service connection. Microsoft refusing is an
    /// answer shown next to the search box, not a failed request.
    pub async fn search_directory(&self, admin: &SessionUser, query: &str) -> Result<DirectorySearchResult> {
        admin_only(admin)?;
        let query = query.trim();
        if query.is_empty() {
            return Ok(DirectorySearchResult::Problem("Type the start of a name or an email address.".into()));
        }
        let settings = self.settings(admin.org_id).await?;
        let token = match self.service_token(admin.org_id, &settings).await {
            Ok(token) => token,
            Err(e @ Error::Internal(_)) => return Err(e),
            Err(e) => return Ok(DirectorySearchResult::Problem(e.to_string())),
        };
        let found = match self.microsoft.search_users(&token, query, 10).await {
            Ok(found) => found,
            Err(e) if e.reason == ReasonCode::PermissionMissing => {
                return Ok(DirectorySearchResult::Problem(
                    "Microsoft did not allow a directory search with this connection (it needs the User.Read.All \
                     permission). Add people by their email address instead."
                        .into(),
                ));
            }
            Err(e) => return Ok(DirectorySearchResult::Problem(Error::from(e).to_string())),
        };
        Ok(DirectorySearchResult::Found(
            found
                .into_iter()
                .filter_map(|u| {
                    let address = u.mail.clone().or(u.user_principal_name.clone())?;
                    Some(DirectoryPerson { name: u.display_name.clone().unwrap_or_else(|| address.clone()), address })
                })
                .collect(),
        ))
    }

    /// Adds a person; what was typed but cannot be added is an `Invalid` error the form shows.
    /// With the service connection active, the address is looked up in the Microsoft directory
    /// and the person's directory object id is Microsoft's answer (an address Microsoft does not
    /// know is refused); before activation, or when the connection may not read the directory,
    /// the mailbox is reached by its address until a check learns the id.
    pub async fn add_service_account_user(&self, admin: &SessionUser, new: NewServiceAccountUser) -> Result<()> {
        admin_only(admin)?;
        let address = EmailAddress::parse(&new.address)
            .map_err(|_| Error::Invalid("Enter the person's Microsoft 365 email address, like name@company.com.".into()))?;
        let settings = self.settings(admin.org_id).await?;
        if !settings.is_service_account() {
            return Err(Error::Invalid(
                "Service account users are only used in service-account mode. Choose it under Connection Settings first.".into(),
            ));
        }
        let token = match self.service_token(admin.org_id, &settings).await {
            Ok(token) => Some(token),
            Err(e @ Error::Internal(_)) => return Err(e),
            Err(_) => None,
        };
        let found = match &token {
            Some(token) => match self.look_up(token, address.as_str()).await {
                DirectoryAnswer::Found(found) => Some(found),
                DirectoryAnswer::Unknown => {
                    return Err(Error::Invalid(format!(
                        "Microsoft 365 has nobody with the address {address} in your organization's directory. Check the \
                         spelling, or search the directory for the person."
                    )));
                }
                DirectoryAnswer::CannotLook => None,
            },
            None => None,
        };
        let (directory_id, name) = match found {
            Some(u) => (Some(u.id), u.display_name.or(new.name)),
            None => (None, new.name),
        };
        let user = new_service_account_user(admin, address.as_str(), name, directory_id);
        let entry = audit(admin, "office365.service_user_added", format!("Added {address} to the mailboxes the service connection syncs."));
        if !self.store.add_service_account_user(admin.org_id, &user, &entry).await? {
            return Err(Error::Invalid(format!("{address} is already in the list.")));
        }
        if let Some(token) = token {
            self.probe_and_record(admin.org_id, &token, &user, user.graph_user_id(), None).await?;
        }
        self.reschedule(admin.org_id).await;
        Ok(())
    }

    /// After a confirmed switch to a service-account mode (`settings`, already saved): the members
    /// whose own connections stopped become service account users, each resolved by the Microsoft
    /// identity on their connection (directory object id and sign-in name), so their mailboxes
    /// keep syncing through the service connection. Anyone already listed stays as they are.
    pub(crate) async fn add_members_as_service_account_users(
        &self,
        admin: &SessionUser,
        settings: &Office365Settings,
        stopped: &[&OrgMailbox],
    ) -> Result<()> {
        let mut added = Vec::new();
        for c in self.store.connections_in_org(admin.org_id).await? {
            let Some(member) = stopped.iter().find(|m| m.id == c.id.to_string()) else { continue };
            let user = new_service_account_user(admin, &c.ms_username, Some(member.name.clone()), Some(c.ms_object_id.clone()));
            let entry = audit(
                admin,
                "office365.service_user_added",
                format!(
                    "Added {} to the mailboxes the service connection syncs, as their own connection stops syncing in \
                     service-account mode.",
                    user.ms_username
                ),
            );
            if self.store.add_service_account_user(admin.org_id, &user, &entry).await? {
                added.push(user);
            }
        }
        self.check_new_mailboxes(admin.org_id, settings, added).await
    }

    /// Checks newly listed mailboxes (in the background) when the service connection is there;
    /// otherwise activation does it.
    async fn check_new_mailboxes(&self, org: OrgId, settings: &Office365Settings, users: Vec<ServiceAccountUser>) -> Result<()> {
        if users.is_empty() {
            return Ok(());
        }
        if let Ok(token) = self.service_token(org, settings).await {
            self.check_mailboxes(org, &token, users);
        }
        Ok(())
    }

    pub async fn remove_service_account_user(&self, admin: &SessionUser, id: &str) -> Result<()> {
        admin_only(admin)?;
        let id: uuid::Uuid = id.parse().map_err(|_| Error::NotFound("That person is not in the list."))?;
        let users = self.store.service_account_users(admin.org_id).await?;
        let user = users.into_iter().find(|u| u.id == id).ok_or(Error::NotFound("That person is no longer in the list."))?;
        let entry = audit(
            admin,
            "office365.service_user_removed",
            format!("Removed {} from the mailboxes the service connection syncs.", user.ms_username),
        );
        self.store.remove_service_account_user(admin.org_id, id, &entry).await?;
        self.reschedule(admin.org_id).await;
        Ok(())
    }
}

/// A service account user as added now by `admin`, not checked yet.
fn new_service_account_user(admin: &SessionUser, address: &str, name: Option<String>, directory_id: Option<String>) -> ServiceAccountUser {
    ServiceAccountUser {
        id: uuid::Uuid::new_v4(),
        ms_object_id: directory_id.filter(|d| !d.trim().is_empty()),
        ms_username: address.to_lowercase(),
        display_name: name.filter(|n| !n.trim().is_empty()).unwrap_or_else(|| address.to_owned()),
        added_by: admin.audit_label(),
        added_at: store::now_unix(),
        health: None,
        health_at: None,
    }
}
