//! Connection Settings: what is shown, and saving a form (validated field by field; a test token
//! request proves the tenant, client id and secret before anything is stored; every change
//! audited; the schedule updated).

use crate::{Integration, Result, admin_only, today};
use domain::office365::{self, Office365Settings, SettingsForm};
use domain::views::{Office365View, SaveResult};
use domain::{AuditEntry, ReasonCode, SessionUser};
use store::secrets::SecretString;

impl Integration {
    pub async fn settings_view(&self, admin: &SessionUser) -> Result<Office365View> {
        admin_only(admin)?;
        let settings = self.store.office365_settings(admin.org_id).await?;
        let not_primary = self.store.connections_in_org(admin.org_id).await?.iter().filter(|c| !c.is_primary).count();
        Ok(Office365View {
            callback_uri: self.callback_uri(),
            admin_consent_uri: self.admin_consent_uri(),
            paused_by_poll_primary: u32::try_from(not_primary).unwrap_or(u32::MAX),
            secret_expiry: settings.secret_expiry(&today()),
            settings,
        })
    }

    /// Saves the settings form. `confirmed` is the admin's answer to "N connections will stop
    /// syncing" when turning on "Poll primary integration only".
    pub async fn save_settings(&self, admin: &SessionUser, form: &SettingsForm, confirmed: bool) -> Result<SaveResult> {
        admin_only(admin)?;
        let current = self.store.office365_settings(admin.org_id).await?;
        let (next, new_secret) = match office365::validate(form, &current, &today()) {
            Ok(v) => v,
            Err(errors) => return Ok(SaveResult { errors, ..SaveResult::default() }),
        };
        if next.poll_primary_only && !current.poll_primary_only && !confirmed {
            return Ok(SaveResult::field_error(
                "poll_primary_only",
                "Confirm that only the primary integration's mailbox should be synced, or uncheck the box.",
            ));
        }
        let credentials_changed = new_secret.is_some()
            || next.tenant != current.tenant
            || next.client_id != current.client_id
            || (next.enabled && !current.enabled);
        if next.enabled && credentials_changed {
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
        self.reschedule(admin.org_id).await;
        tracing::info!(org = %admin.org_id, user = %admin.user_id, "office 365 settings saved");
        Ok(SaveResult { saved: true, ..SaveResult::default() })
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
