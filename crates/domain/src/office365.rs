//! The organization's Office 365 integration settings, and the rules a settings form must pass.
//!
//! Validation lives here (no IO) so the same checks run on the server and can be unit-tested;
//! the server adds the one check that needs Microsoft: a test token request with the secret.

use crate::permissions::{AccessLevel, ConnectionMode, ScopeSettings};
use crate::sync::Resource;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const SYNC_INTERVALS_MINUTES: [u32; 6] = [5, 15, 30, 60, 240, 1440];
pub const BACKFILL_DAYS: [u32; 5] = [7, 30, 90, 180, 365];

/// What is stored for an organization. The client secret itself is never part of this type: it is
/// sealed in the store and only the fact that one is set travels to the browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Office365Settings {
    pub enabled: bool,
    /// The organization brings its own app registration (the fields below) instead of using the
    /// deployment's. Always the case when the operator configured none.
    pub own_app: bool,
    /// The Microsoft 365 tenant id the organization is pinned to: learned from the verified id_token
    /// of its admin's activation (or of the first sign-in with its own app registration). Every
    /// later sign-in, consent and token must carry it. Never set from a form.
    pub pinned_tenant: Option<String>,
    /// The client id of the deployment's app registration when the operator configured one:
    /// filled in by the application layer from the process settings, never stored.
    pub deployment_client_id: Option<String>,
    /// Own app registration: directory (tenant) ID or a verified domain.
    pub tenant: String,
    /// Application (client) ID.
    pub client_id: String,
    pub client_secret_set: bool,
    /// When the client secret lapses (`YYYY-MM-DD`), so the product can warn before it does.
    pub client_secret_expires_on: Option<String>,
    pub mode: ConnectionMode,
    pub access: AccessLevel,
    pub resources: Vec<Resource>,
    pub sync_interval_minutes: u32,
    pub backfill_days: u32,
    pub poll_primary_only: bool,
    /// Shows members the "Set up Office365 User Integration" action.
    pub setup_action_enabled: bool,
}

impl Default for Office365Settings {
    fn default() -> Self {
        Office365Settings {
            enabled: false,
            own_app: false,
            pinned_tenant: None,
            deployment_client_id: None,
            tenant: String::new(),
            client_id: String::new(),
            client_secret_set: false,
            client_secret_expires_on: None,
            mode: ConnectionMode::Individual,
            access: AccessLevel::ReadOnly,
            resources: Resource::ALL.to_vec(),
            sync_interval_minutes: 15,
            backfill_days: 30,
            poll_primary_only: false,
            setup_action_enabled: true,
        }
    }
}

impl Office365Settings {
    pub fn status(&self) -> crate::IntegrationStatus {
        match (self.enabled, self.is_service_account()) {
            (false, _) => crate::IntegrationStatus::NotSetUp,
            (true, false) => crate::IntegrationStatus::Enabled,
            (true, true) => crate::IntegrationStatus::EnabledAsServiceAccount,
        }
    }

    /// The state Settings > All Integrations shows, given whether something needs an admin
    /// (an expired secret, consent to grant, a service or tenant-wide connection failure).
    pub fn status_with(&self, admin_must_act: bool) -> crate::IntegrationStatus {
        if self.enabled && admin_must_act { crate::IntegrationStatus::NeedsAttention } else { self.status() }
    }

    pub fn scope_settings(&self) -> ScopeSettings {
        ScopeSettings { mode: self.mode, access: self.access, resources: self.resources.clone() }
    }

    /// The application (client) id that sign-ins, consent and tokens use: the organization's own
    /// registration's, or the deployment's.
    pub fn app_client_id(&self) -> Option<&str> {
        let id = if self.own_app { Some(self.client_id.as_str()) } else { self.deployment_client_id.as_deref() };
        id.filter(|id| !id.is_empty())
    }

    pub fn is_service_account(&self) -> bool {
        self.mode != ConnectionMode::Individual
    }
}

/// Admins are warned this many days before the client secret lapses.
pub const SECRET_WARNING_DAYS: i64 = 30;

/// Where the client secret's expiry date stands, when admins should hear about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SecretExpiry {
    Expired { on: String },
    ExpiresSoon { on: String, days: i64 },
}

impl SecretExpiry {
    pub fn sentence(&self) -> String {
        match self {
            SecretExpiry::Expired { on } => {
                format!("The client secret expired on {on}: Microsoft refuses it and nothing syncs until a new one is entered.")
            }
            SecretExpiry::ExpiresSoon { on, days: 0 } => format!("The client secret expires today ({on})."),
            SecretExpiry::ExpiresSoon { on, days: 1 } => format!("The client secret expires tomorrow ({on})."),
            SecretExpiry::ExpiresSoon { on, days } => format!("The client secret expires on {on}, in {days} days."),
        }
    }
}

impl Office365Settings {
    /// A warning when the secret's expiry date (as entered) is past or within
    /// [`SECRET_WARNING_DAYS`] of `today` (`YYYY-MM-DD`).
    pub fn secret_expiry(&self, today: &str) -> Option<SecretExpiry> {
        if !self.enabled || !self.own_app {
            return None;
        }
        let on = self.client_secret_expires_on.clone()?;
        let days = days_from_civil(&on)? - days_from_civil(today)?;
        if days < 0 {
            Some(SecretExpiry::Expired { on })
        } else if days <= SECRET_WARNING_DAYS {
            Some(SecretExpiry::ExpiresSoon { on, days })
        } else {
            None
        }
    }
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (the proleptic Gregorian calendar).
fn days_from_civil(date: &str) -> Option<i64> {
    let mut parts = date.split('-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let d: i64 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// The settings form as typed, before validation. Every field is text so nothing typed is lost
/// when validation fails: the form is shown again with exactly these values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
// An unchecked checkbox is simply absent from a submitted form: absent means false.
#[serde(default)]
pub struct SettingsForm {
    pub enabled: bool,
    /// "Use your own app registration".
    pub own_app: bool,
    pub tenant: String,
    pub client_id: String,
    /// Empty keeps the stored secret.
    pub client_secret: String,
    pub client_secret_expires_on: String,
    pub mode: String,
    pub access: String,
    pub sync_mail: bool,
    pub sync_calendar: bool,
    pub sync_contacts: bool,
    pub sync_tasks: bool,
    pub sync_interval_minutes: String,
    pub backfill_days: String,
    pub poll_primary_only: bool,
    pub setup_action_enabled: bool,
}

/// Messages keyed by form field name.
pub type FieldErrors = BTreeMap<String, String>;

pub fn mode_value(mode: ConnectionMode) -> &'static str {
    match mode {
        ConnectionMode::Individual => "individual",
        ConnectionMode::ServiceUser => "service_user",
        ConnectionMode::ApplicationPermissions => "application",
    }
}

pub fn parse_mode(s: &str) -> Option<ConnectionMode> {
    match s {
        "individual" => Some(ConnectionMode::Individual),
        "service_user" => Some(ConnectionMode::ServiceUser),
        "application" => Some(ConnectionMode::ApplicationPermissions),
        _ => None,
    }
}

pub fn access_value(a: AccessLevel) -> &'static str {
    match a {
        AccessLevel::ReadOnly => "read_only",
        AccessLevel::ReadWrite => "read_write",
    }
}

pub fn parse_access(s: &str) -> Option<AccessLevel> {
    match s {
        "read_only" => Some(AccessLevel::ReadOnly),
        "read_write" => Some(AccessLevel::ReadWrite),
        _ => None,
    }
}

impl SettingsForm {
    /// The form pre-filled from stored settings (the secret field stays empty: it is write-only).
    pub fn from_settings(s: &Office365Settings) -> SettingsForm {
        SettingsForm {
            enabled: s.enabled,
            own_app: s.own_app,
            tenant: s.tenant.clone(),
            client_id: s.client_id.clone(),
            client_secret: String::new(),
            client_secret_expires_on: s.client_secret_expires_on.clone().unwrap_or_default(),
            mode: mode_value(s.mode).into(),
            access: access_value(s.access).into(),
            sync_mail: s.resources.contains(&Resource::Mail),
            sync_calendar: s.resources.contains(&Resource::Calendar),
            sync_contacts: s.resources.contains(&Resource::Contacts),
            sync_tasks: s.resources.contains(&Resource::Tasks),
            sync_interval_minutes: s.sync_interval_minutes.to_string(),
            backfill_days: s.backfill_days.to_string(),
            poll_primary_only: s.poll_primary_only,
            setup_action_enabled: s.setup_action_enabled,
        }
    }
}

/// True for the 8-4-4-4-12 hex shape Microsoft uses for tenant and application ids.
pub fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5 && parts.iter().zip([8, 4, 4, 4, 12]).all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn is_domain(s: &str) -> bool {
    s.contains('.')
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// The app registration part of a valid form.
struct AppFields {
    tenant: String,
    client_id: String,
    expires_on: Option<String>,
    new_secret: Option<String>,
}

/// Checks the organization's own app registration fields (required when enabling with them).
fn own_app_fields(form: &SettingsForm, current: &Office365Settings, today: &str, errors: &mut FieldErrors) -> AppFields {
    let tenant = form.tenant.trim().to_ascii_lowercase();
    let client_id = form.client_id.trim().to_ascii_lowercase();
    let secret = form.client_secret.trim().to_owned();
    let expires = form.client_secret_expires_on.trim().to_owned();

    if tenant.is_empty() {
        if form.enabled {
            errors.insert("tenant".into(), "Enter the directory (tenant) ID or your Microsoft 365 domain.".into());
        }
    } else if matches!(tenant.as_str(), "common" | "organizations" | "consumers") {
        // Client credentials and admin consent need a real tenant (MICROSOFT.md §1.1, §1.8).
        errors.insert("tenant".into(), "Enter your organization's own tenant, not a shared one.".into());
    } else if !is_guid(&tenant) && !is_domain(&tenant) {
        errors.insert(
            "tenant".into(),
            "Enter a directory (tenant) ID like 4f1c6a0e-2d3b-4c5a-9e8f-0a1b2c3d4e5f, or a domain like contoso.com.".into(),
        );
    }

    if client_id.is_empty() {
        if form.enabled {
            errors.insert("client_id".into(), "Enter the application (client) ID of your app registration.".into());
        }
    } else if !is_guid(&client_id) {
        errors.insert("client_id".into(), "An application (client) ID looks like 11111111-2222-4333-8444-555555555555.".into());
    }

    if secret.is_empty() && !current.client_secret_set && form.enabled {
        errors.insert("client_secret".into(), "Enter the client secret's value.".into());
    } else if secret.len() > 512 {
        errors.insert("client_secret".into(), "That is too long to be a client secret.".into());
    } else if !secret.is_empty() && secret.chars().any(char::is_whitespace) {
        errors.insert("client_secret".into(), "A client secret has no spaces; copy its Value, not its ID.".into());
    }

    let expires_on = if expires.is_empty() {
        None
    } else if !is_date(&expires) {
        errors.insert("client_secret_expires_on".into(), "Use the date format YYYY-MM-DD.".into());
        None
    } else if expires.as_str() < today {
        errors.insert(
            "client_secret_expires_on".into(),
            "This date is in the past: the secret has expired. Create a new one in the Azure portal.".into(),
        );
        None
    } else {
        Some(expires)
    };
    AppFields { tenant, client_id, expires_on, new_secret: (!secret.is_empty()).then_some(secret) }
}

/// Checks the form against everything that can be checked without Microsoft. `today` is
/// `YYYY-MM-DD`; `deployment_app` says whether the operator configured the deployment's own app
/// registration (without one, the organization's own is the only way). On success returns the
/// settings to store and the new secret, if one was typed.
pub fn validate(
    form: &SettingsForm,
    current: &Office365Settings,
    today: &str,
    deployment_app: bool,
) -> Result<(Office365Settings, Option<String>), FieldErrors> {
    let mut errors = FieldErrors::new();
    let own_app = form.own_app || !deployment_app;
    // With the deployment's app the own registration's fields are not in play: what was stored
    // stays, so switching back later finds it again.
    let app = if own_app {
        own_app_fields(form, current, today, &mut errors)
    } else {
        AppFields {
            tenant: current.tenant.clone(),
            client_id: current.client_id.clone(),
            expires_on: current.client_secret_expires_on.clone(),
            new_secret: None,
        }
    };

    let mode = parse_mode(&form.mode).unwrap_or_else(|| {
        errors.insert("mode".into(), "Choose how members connect.".into());
        current.mode
    });
    let access = parse_access(&form.access).unwrap_or_else(|| {
        errors.insert("access".into(), "Choose read-only or read-write.".into());
        current.access
    });

    let resources: Vec<Resource> = [
        (form.sync_mail, Resource::Mail),
        (form.sync_calendar, Resource::Calendar),
        (form.sync_contacts, Resource::Contacts),
        (form.sync_tasks, Resource::Tasks),
    ]
    .into_iter()
    .filter_map(|(on, f)| on.then_some(f))
    .collect();
    if resources.is_empty() && form.enabled {
        errors.insert("features".into(), "Choose at least one thing to sync.".into());
    }

    let interval = form.sync_interval_minutes.trim().parse::<u32>().ok().filter(|m| SYNC_INTERVALS_MINUTES.contains(m));
    if interval.is_none() {
        errors.insert("sync_interval_minutes".into(), "Choose one of the listed sync intervals.".into());
    }
    let backfill = form.backfill_days.trim().parse::<u32>().ok().filter(|d| BACKFILL_DAYS.contains(d));
    if backfill.is_none() {
        errors.insert("backfill_days".into(), "Choose how far back the first sync reaches.".into());
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    let new_secret = app.new_secret;
    Ok((
        Office365Settings {
            enabled: form.enabled,
            own_app,
            pinned_tenant: current.pinned_tenant.clone(),
            deployment_client_id: current.deployment_client_id.clone(),
            tenant: app.tenant,
            client_id: app.client_id,
            client_secret_set: current.client_secret_set || new_secret.is_some(),
            client_secret_expires_on: app.expires_on,
            mode,
            access,
            resources,
            sync_interval_minutes: interval.unwrap_or(current.sync_interval_minutes),
            backfill_days: backfill.unwrap_or(current.backfill_days),
            poll_primary_only: form.poll_primary_only,
            setup_action_enabled: form.setup_action_enabled,
        },
        new_secret,
    ))
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<u32>().ok());
    matches!((num(0..4), num(5..7), num(8..10)), (Some(y), Some(m), Some(d)) if y >= 2000 && (1..=12).contains(&m) && (1..=31).contains(&d))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> SettingsForm {
        SettingsForm {
            enabled: true,
            own_app: true,
            tenant: " 4F1C6A0E-2D3B-4C5A-9E8F-0A1B2C3D4E5F ".into(),
            client_id: "11111111-2222-4333-8444-555555555555".into(),
            client_secret: "demo-client-secret".into(),
            client_secret_expires_on: "2027-12-31".into(),
            mode: "individual".into(),
            access: "read_only".into(),
            sync_mail: true,
            sync_calendar: true,
            sync_contacts: false,
            sync_tasks: true,
            sync_interval_minutes: "15".into(),
            backfill_days: "30".into(),
            poll_primary_only: false,
            setup_action_enabled: true,
        }
    }

    #[test]
    fn a_good_form_becomes_settings_and_a_new_secret() {
        let (s, secret) = validate(&good(), &Office365Settings::default(), "2026-11-29", false).unwrap();
        assert!(s.enabled && s.client_secret_set);
        assert_eq!(s.tenant, "4f1c6a0e-2d3b-4c5a-9e8f-0a1b2c3d4e5f");
        assert_eq!(s.resources, vec![Resource::Mail, Resource::Calendar, Resource::Tasks]);
        assert_eq!(secret.as_deref(), Some("demo-client-secret"));
        let mut by_domain = good();
        by_domain.tenant = "northwind.test".into();
        assert!(validate(&by_domain, &Office365Settings::default(), "2026-11-29", false).is_ok());
    }

    #[test]
    fn bad_values_are_refused_field_by_field() {
        let form = SettingsForm {
            tenant: "not a tenant".into(),
            client_id: "1234".into(),
            client_secret: "has space".into(),
            client_secret_expires_on: "31/12/2027".into(),
            sync_mail: false,
            sync_calendar: false,
            sync_contacts: false,
            sync_tasks: false,
            sync_interval_minutes: "7".into(),
            backfill_days: "abc".into(),
            ..good()
        };
        let errors = validate(&form, &Office365Settings::default(), "2026-11-29", false).unwrap_err();
        let fields: Vec<&str> = errors.keys().map(String::as_str).collect();
        assert_eq!(
            fields,
            ["backfill_days", "client_id", "client_secret", "client_secret_expires_on", "features", "sync_interval_minutes", "tenant"]
        );
    }

    #[test]
    fn the_stored_secret_is_kept_when_the_field_is_left_empty() {
        let current = Office365Settings { client_secret_set: true, ..Office365Settings::default() };
        let form = SettingsForm { client_secret: String::new(), ..good() };
        let (s, secret) = validate(&form, &current, "2026-11-29", false).unwrap();
        assert!(s.client_secret_set);
        assert_eq!(secret, None);
        let fresh = validate(&form, &Office365Settings::default(), "2026-11-29", false).unwrap_err();
        assert!(fresh.contains_key("client_secret"), "enabling without any secret is refused");
    }

    #[test]
    fn an_expired_secret_date_and_shared_tenants_are_refused() {
        let form = SettingsForm { client_secret_expires_on: "2026-01-01".into(), tenant: "common".into(), ..good() };
        let errors = validate(&form, &Office365Settings::default(), "2026-11-29", false).unwrap_err();
        assert!(errors["client_secret_expires_on"].contains("expired"));
        assert!(errors["tenant"].contains("not a shared one"));
    }

    #[test]
    fn a_disabled_integration_may_be_saved_half_filled() {
        let form = SettingsForm { enabled: false, tenant: String::new(), client_id: String::new(), client_secret: String::new(), ..good() };
        assert!(validate(&form, &Office365Settings::default(), "2026-11-29", false).is_ok());
    }

    #[test]
    fn the_form_round_trips_stored_settings() {
        let stored = Office365Settings {
            enabled: true,
            own_app: true,
            tenant: "northwind.test".into(),
            client_id: "11111111-2222-4333-8444-555555555555".into(),
            client_secret_set: true,
            ..Default::default()
        };
        let form = SettingsForm::from_settings(&stored);
        assert_eq!(form.client_secret, "", "the secret is write-only");
        let (back, _) = validate(&form, &stored, "2026-11-29", false).map_err(|e| format!("{e:?}")).unwrap();
        assert_eq!(back, stored);
    }

    #[test]
    fn with_the_deployment_app_no_registration_is_typed_and_the_stored_one_is_kept() {
        let current = Office365Settings {
            tenant: "northwind.test".into(),
            client_id: "11111111-2222-4333-8444-555555555555".into(),
            client_secret_set: true,
            pinned_tenant: Some("4f1c6a0e-2d3b-4c5a-9e8f-0a1b2c3d4e5f".into()),
            ..Office365Settings::default()
        };
        let form = SettingsForm {
            own_app: false,
            tenant: "garbage typed then hidden".into(),
            client_id: String::new(),
            client_secret: "x y".into(),
            ..good()
        };
        let (s, secret) = validate(&form, &current, "2026-11-29", true).unwrap();
        assert!(s.enabled && !s.own_app);
        assert_eq!((s.tenant.as_str(), secret), ("northwind.test", None), "the own registration's fields are not in play");
        assert_eq!(s.pinned_tenant, current.pinned_tenant, "a form never changes the pinned tenant");
        let without_operator = validate(&form, &current, "2026-11-29", false).unwrap_err();
        assert!(without_operator.contains_key("tenant"), "without a deployment app the own registration is required");
        let own = SettingsForm { own_app: true, ..form };
        assert!(validate(&own, &current, "2026-11-29", true).unwrap_err().contains_key("client_secret"));
    }

    #[test]
    fn admins_are_warned_thirty_days_before_the_secret_lapses() {
        let mut s = Office365Settings {
            enabled: true,
            own_app: true,
            client_secret_expires_on: Some("2027-01-10".into()),
            ..Office365Settings::default()
        };
        assert_eq!(s.secret_expiry("2026-12-10"), None, "31 days ahead: not yet");
        assert_eq!(s.secret_expiry("2026-12-11"), Some(SecretExpiry::ExpiresSoon { on: "2027-01-10".into(), days: 30 }));
        assert_eq!(s.secret_expiry("2027-01-10").unwrap().sentence(), "The client secret expires today (2027-01-10).");
        assert!(matches!(s.secret_expiry("2027-01-11"), Some(SecretExpiry::Expired { .. })));
        assert_eq!(days_from_civil("1970-01-01"), Some(0));
        assert_eq!(days_from_civil("2000-03-01").unwrap() - days_from_civil("2000-02-28").unwrap(), 2, "leap year");
        s.client_secret_expires_on = None;
        assert_eq!(s.secret_expiry("2027-01-11"), None);
    }
}
