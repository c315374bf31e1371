//! Connection Settings: what is shown, and saving a form (validated field by field; a test token
//! request proves the tenant, client id and secret before anything is stored; every change
//! audited; the schedule updated).

use crate::{Integration, Result, admin_only, today};
use domain::office365::{self, Office365Settings, SettingsForm};
use domain::views::{self, MailboxSource, Office365View, OrgMailbox, SaveConfirmations, SaveResult};
use domain::{AuditEntry, ConnectionKind, MailboxHealth, OrgId, ReasonCode, SessionUser, UserId};
use std::collections::HashMap;
use store::secrets::SecretString;

impl Integration {
    pub async fn settings_view(&self, admin: &SessionUser) -> Result<Office365View> {
        admin_only(admin)?;
        let settings = self.settings(admin.org_id).await?;
        Ok(Office365View {
            callback_uri: self.callback_uri(),
            admin_consent_uri: self.admin_consent_uri(),
            mailboxes: self.org_mailboxes(admin.org_id).await?,
            secret_expiry: settings.secret_expiry(&today()),
            live_change_delivery: self.scheduler.engine().config().notification_urls.is_some(),
            settings,
        })
    }

    /// Saves the settings form. `confirmed` holds the admin's answers to what the page asked
    /// first: "N mailboxes will stop syncing" when turning on "Poll primary integration only", and
    /// whose own connections stop when switching to a service-account mode (and whether to add
    /// those people as service account users in the same step).
    pub async fn save_settings(&self, admin: &SessionUser, form: &SettingsForm, confirmed: SaveConfirmations) -> Result<SaveResult> {
        admin_only(admin)?;
        let current = self.settings(admin.org_id).await?;
        let (next, new_secret) = match office365::validate(form, &current, &today(), self.deployment_app().is_some()) {
            Ok(v) => v,
            Err(errors) => return Ok(SaveResult { errors, ..SaveResult::default() }),
        };
        if next.poll_primary_only && !current.poll_primary_only && !confirmed.poll_primary {
            return Ok(SaveResult::field_error(
                "poll_primary_only",
                "Confirm that only the primary integration's mailbox should be synced, or uncheck the box.",
            ));
        }
        // Members' own syncs never stop silently: the page lists them and the admin confirms.
        let mailboxes = self.org_mailboxes(admin.org_id).await?;
        let stopped = views::stopped_by_mode_switch(&mailboxes, current.mode, next.mode);
        if !stopped.is_empty() && !confirmed.mode_switch {
            return Ok(SaveResult::field_error(
                "mode",
                format!("{} Confirm the switch, or keep individual connections.", views::mode_switch_impact(&stopped)),
            ));
        }
        let credentials_changed = new_secret.is_some()
            || next.own_app != current.own_app
            || next.tenant != current.tenant
            || next.client_id != current.client_id
            || (next.enabled && !current.enabled);
        if next.enabled && next.own_app && credentials_changed {
            let secret = match &new_secret {
                Some(s) => SecretString::from(s.as_str()),
                None => match self.store.office365_client_secret(admin.org_id).await? {
                    Some(s) => s,
                    None => return Ok(SaveResult::field_error("client_secret", "Enter the client secret's value.")),
                },
            };
            if let Err(refused) = self.test_token_request(&next, &secret).await {
                return Ok(refused);
            }
        }
        let entries = audit_entries(admin, &current, &next, new_secret.is_some());
        let secret = new_secret.map(SecretString::from);
        self.store.save_office365_settings(admin.org_id, &next, secret.as_ref(), &entries).await?;
        if !stopped.is_empty() && confirmed.add_as_service_users {
            self.add_members_as_service_account_users(admin, &next, &stopped).await?;
        }
        self.reschedule(admin.org_id).await;
        tracing::info!(org = %admin.org_id, user = %admin.user_id, "office 365 settings saved");
        Ok(SaveResult { saved: true, ..SaveResult::default() })
    }

    /// The organization's mailboxes as Connection Settings weighs a change: every member's own
    /// connection, and every service account user the service connection can open (one it cannot
    /// is synced in no mode; its row already says why).
    async fn org_mailboxes(&self, org: OrgId) -> Result<Vec<OrgMailbox>> {
        let own: Vec<_> = self.store.connections_in_org(org).await?.into_iter().filter(|c| c.kind == ConnectionKind::Individual).collect();
        // The people are read only to name their own connections, so only when there are some.
        let names: HashMap<UserId, String> = if own.is_empty() {
            HashMap::new()
        } else {
            self.store.users_in_org(org).await?.into_iter().map(|p| (p.id, p.display_name)).collect()
        };
        let mut mailboxes = Vec::new();
        for c in own {
            let name = names.get(&c.user_id).cloned().unwrap_or(c.ms_name);
            let source = MailboxSource::OwnConnection { primary: c.is_primary };
            mailboxes.push(OrgMailbox { id: c.id.to_string(), name, address: c.ms_username, source });
        }
        for u in self.store.service_account_users(org).await? {
            if !matches!(u.health, Some(MailboxHealth::Problem(r)) if !r.is_transient()) {
                let source = MailboxSource::ServiceAccountUser;
                mailboxes.push(OrgMailbox { id: u.id.to_string(), name: u.display_name, address: u.ms_username, source });
            }
        }
        Ok(mailboxes)
    }

    /// A client-credentials request with these details; a refusal lands on the field to fix.
    async fn test_token_request(&self, settings: &Office365Settings, secret: &SecretString) -> Result<(), SaveResult> {
        let app = microsoft::AppRegistration::new(&settings.tenant, &settings.client_id, secret.clone())
            .map_err(|e| SaveResult::field_error("tenant", format!("That tenant cannot be used: {e}")))?;
        let Err(err) = self.microsoft.client_credentials(&app).await else {
            return Ok(());
        };
        let code = err.aad().and_then(|a| a.error_codes.first().copied());
        let shown = code.map(|c| format!(" (Microsoft error AADSTS{c})")).unwrap_or_default();
        tracing::warn!(reason = ?err.reason(), code = ?code, "test token request refused");
        let form_error = |message: String| SaveResult { form_error: Some(message), ..SaveResult::default() };
        Err(match err.reason() {
            ReasonCode::ClientSecretInvalid => SaveResult::field_error(
                "client_secret",
                format!("Microsoft rejected this client secret{shown}. Copy the secret's Value, not its ID."),
            ),
            ReasonCode::ClientSecretExpired => SaveResult::field_error(
                "client_secret",
                format!("This client secret has expired{shown}. Create a new one in the Azure portal."),
            ),
            ReasonCode::AppNotFound => {
                SaveResult::field_error("client_id", format!("Microsoft does not know this application (client) ID in this tenant{shown}."))
            }
            ReasonCode::MicrosoftUnavailable | ReasonCode::Throttled => {
                form_error("Microsoft could not be reached to check the client secret, so nothing was saved. Try again in a minute.".into())
            }
            // 90002: the tenant does not exist (MICROSOFT.md §1.1).
            _ if err.aad().is_some_and(|a| a.has_code(90002)) => {
                SaveResult::field_error("tenant", format!("Microsoft does not know this tenant{shown}. Check the directory (tenant) ID."))
            }
            _ => form_error(format!("Microsoft refused the test sign-in with these details{shown}, so nothing was saved.")),
        })
    }
}

/// One entry per kind of change, in words an auditor can read.
fn audit_entries(admin: &SessionUser, old: &Office365Settings, new: &Office365Settings, secret_replaced: bool) -> Vec<AuditEntry> {
    let entry = |action: &str, summary: &str| crate::audit(admin, action, summary.to_owned());
    let mut out = Vec::new();
    if new.enabled != old.enabled {
        out.push(if new.enabled {
            entry("office365.enabled", "Enabled the Office 365 integration.")
        } else {
            entry("office365.disabled", "Disabled the Office 365 integration.")
        });
    }
    if new.poll_primary_only != old.poll_primary_only {
        out.push(if new.poll_primary_only {
            entry(
                "office365.poll_primary_on",
                "Turned on \"Poll primary integration only\": only the primary integration's mailbox is synced.",
            )
        } else {
            entry("office365.poll_primary_off", "Turned off \"Poll primary integration only\": every connection syncs again.")
        });
    }
    if secret_replaced {
        out.push(entry("office365.client_secret_replaced", "Replaced the client secret."));
    }
    let changed: Vec<&str> = [
        (new.own_app != old.own_app, "which app registration is used"),
        (new.tenant != old.tenant, "directory (tenant) ID"),
        (new.client_id != old.client_id, "application (client) ID"),
        (new.client_secret_expires_on != old.client_secret_expires_on, "secret expiry date"),
        (new.mode != old.mode, "connection mode"),
        (new.access != old.access, "access level"),
        (new.resources != old.resources, "what to sync"),
        (new.sync_interval_minutes != old.sync_interval_minutes, "sync interval"),
        (new.backfill_days != old.backfill_days, "first-sync backfill"),
        (new.setup_action_enabled != old.setup_action_enabled, "the member setup action"),
    ]
    .into_iter()
    .filter_map(|(differs, what)| differs.then_some(what))
    .collect();
    if !changed.is_empty() {
        out.push(entry("office365.settings_changed", &format!("Changed {}.", changed.join(", "))));
    }
    out
}
