//! Organization-wide ("admin") consent: what Microsoft's admin consent flow granted for the
//! organization's app registration, and whether a member is waiting for it.

use crate::office365::Office365Settings;
use crate::permissions::{ConnectionMode, Permission, SIGN_IN_SCOPES, is_granted, permission_name};
use serde::{Deserialize, Serialize};

/// A member was refused by Microsoft with "admin approval required".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRequest {
    /// Who was refused, as the audit log names people.
    pub by: String,
    pub at: i64,
}

/// The result of a completed admin consent flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentGrant {
    pub by: String,
    pub at: i64,
    /// The Microsoft tenant the consent was given in (as returned by Microsoft, checked against the
    /// configured tenant).
    pub tenant_id: String,
    /// The application (client) ID that was consented to; a new app registration needs new consent.
    pub client_id: String,
    /// What Microsoft says it granted (`scope` of the callback; empty when it does not say).
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminConsent {
    /// Pending request from a member; cleared when an admin grants consent.
    pub requested: Option<ConsentRequest>,
    pub granted: Option<ConsentGrant>,
}

/// Where organization-wide consent stands for the current settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConsentStatus {
    /// Granted for the app registration in the settings.
    Granted,
    /// Granted for the app registration, but the settings now need permissions the grant lacks
    /// (after a switch to read-write, or another resource): new consent is needed.
    Insufficient,
    /// A member is waiting: Microsoft told them only an admin can approve the app.
    Requested,
    /// Service account with application permissions cannot work without it.
    Required,
    /// Not granted, and nothing needs it yet (members consent for themselves).
    NotGranted,
}

impl ConsentStatus {
    pub fn label(self) -> &'static str {
        match self {
            ConsentStatus::Granted => "Granted for the organization",
            ConsentStatus::Insufficient => "Needs new consent",
            ConsentStatus::Requested => "Requested by a member",
            ConsentStatus::Required => "Required",
            ConsentStatus::NotGranted => "Not granted",
        }
    }
}

impl AdminConsent {
    /// The grant, if it was given for the app registration the settings name now.
    pub fn grant_for(&self, settings: &Office365Settings) -> Option<&ConsentGrant> {
        let client_id = settings.app_client_id()?;
        self.granted.as_ref().filter(|g| g.client_id.eq_ignore_ascii_case(client_id))
    }

    /// The permissions the settings request that the grant on record does not hold (all of them
    /// without a grant for this app registration), in catalogue order. A grant whose scopes
    /// Microsoft did not name (the v1 endpoint's answer) is taken at its word.
    pub fn missing(&self, settings: &Office365Settings) -> Vec<&'static Permission> {
        let requested = settings.scope_settings().requested();
        match self.grant_for(settings) {
            None => requested,
            Some(grant) if grant.scopes.is_empty() => Vec::new(),
            Some(grant) => requested.into_iter().filter(|p| !is_granted(&grant.scopes, p.graph_name)).collect(),
        }
    }

    /// What the grant on record holds beyond what the settings need (a registration listing more
    /// application permissions than the mode uses grants them all): shown as a warning. The
    /// sign-in scopes every consent carries are never "more".
    pub fn excess(&self, settings: &Office365Settings) -> Vec<String> {
        let requested = settings.scope_settings().requested();
        let Some(grant) = self.grant_for(settings) else { return Vec::new() };
        grant
            .scopes
            .iter()
            .map(|g| permission_name(g))
            .filter(|name| !SIGN_IN_SCOPES.iter().chain(requested.iter().map(|p| &p.graph_name)).any(|n| n.eq_ignore_ascii_case(name)))
            .map(str::to_owned)
            .collect()
    }

    pub fn status(&self, settings: &Office365Settings) -> ConsentStatus {
        if self.requested.is_some() {
            ConsentStatus::Requested
        } else if self.grant_for(settings).is_some() {
            if self.missing(settings).is_empty() { ConsentStatus::Granted } else { ConsentStatus::Insufficient }
        } else if settings.mode == ConnectionMode::ApplicationPermissions {
            ConsentStatus::Required
        } else {
            ConsentStatus::NotGranted
        }
    }

    /// True when an admin should be asked, in the feed, to run the admin consent flow.
    pub fn admin_action_needed(&self, settings: &Office365Settings) -> bool {
        let needs_new_grant =
            settings.mode == ConnectionMode::ApplicationPermissions && self.status(settings) == ConsentStatus::Insufficient;
        settings.enabled && (matches!(self.status(settings), ConsentStatus::Requested | ConsentStatus::Required) || needs_new_grant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(client: &str) -> ConsentGrant {
        ConsentGrant { by: "Ada".into(), at: 1, tenant_id: "t".into(), client_id: client.into(), scopes: vec![] }
    }

    fn granted(client: &str, settings: &Office365Settings) -> ConsentGrant {
        let scopes =
            settings.scope_settings().requested().iter().map(|p| format!("https://graph.microsoft.com/{}", p.graph_name)).collect();
        ConsentGrant { scopes, ..grant(client) }
    }

    #[test]
    fn a_read_only_grant_is_insufficient_after_switching_to_read_write() {
        use crate::permissions::AccessLevel;
        for mode in [ConnectionMode::Individual, ConnectionMode::ServiceUser, ConnectionMode::ApplicationPermissions] {
            let read_only = enabled(mode);
            let c = AdminConsent { requested: None, granted: Some(granted("abc", &read_only)) };
            assert_eq!(c.status(&read_only), ConsentStatus::Granted, "{mode:?}");
            assert!(c.missing(&read_only).is_empty() && c.excess(&read_only).is_empty(), "{mode:?}");

            let read_write = Office365Settings { access: AccessLevel::ReadWrite, ..read_only.clone() };
            assert_eq!(c.status(&read_write), ConsentStatus::Insufficient, "{mode:?}");
            let missing: Vec<_> = c.missing(&read_write).iter().map(|p| p.graph_name).collect();
            let wanted: Vec<_> = read_write
                .scope_settings()
                .requested()
                .iter()
                .filter(|p| p.access == AccessLevel::ReadWrite)
                .map(|p| p.graph_name)
                .collect();
            assert_eq!(missing, wanted, "{mode:?}: exactly the read-write permissions are missing");
            assert_eq!(c.admin_action_needed(&read_write), mode == ConnectionMode::ApplicationPermissions, "{mode:?}");
            // Back to read-only with a read-write grant: more than needed is said, never hidden.
            let wide = AdminConsent { requested: None, granted: Some(granted("abc", &read_write)) };
            assert!(!wide.excess(&read_only).is_empty(), "{mode:?}");
        }
    }

    fn enabled(mode: ConnectionMode) -> Office365Settings {
        Office365Settings { enabled: true, own_app: true, client_id: "abc".into(), mode, ..Office365Settings::default() }
    }

    #[test]
    fn a_pending_request_asks_admins_until_consent_is_granted() {
        let s = enabled(ConnectionMode::Individual);
        let mut c = AdminConsent::default();
        assert_eq!(c.status(&s), ConsentStatus::NotGranted);
        assert!(!c.admin_action_needed(&s), "individual mode needs no admin consent by default");
        c.requested = Some(ConsentRequest { by: "Bob".into(), at: 2 });
        assert_eq!(c.status(&s), ConsentStatus::Requested);
        assert!(c.admin_action_needed(&s));
        assert!(!c.admin_action_needed(&Office365Settings { enabled: false, ..s.clone() }), "not while switched off");
        c.requested = None;
        c.granted = Some(grant("ABC"));
        assert_eq!(c.status(&s), ConsentStatus::Granted, "client ids compare case-insensitively");
        assert!(!c.admin_action_needed(&s));
    }

    #[test]
    fn application_permissions_need_consent_for_the_current_app_registration() {
        let s = enabled(ConnectionMode::ApplicationPermissions);
        let mut c = AdminConsent { requested: None, granted: Some(grant("old-app")) };
        assert_eq!(c.status(&s), ConsentStatus::Required, "consent for another app does not count");
        assert!(c.admin_action_needed(&s));
        c.granted = Some(grant("abc"));
        assert_eq!(c.status(&s), ConsentStatus::Granted);
        let deployment = Office365Settings { own_app: false, deployment_client_id: Some("dep".into()), ..s.clone() };
        assert_eq!(c.status(&deployment), ConsentStatus::Required, "a grant for the own app is not one for the deployment's");
        c.granted = Some(grant("DEP"));
        assert_eq!(c.status(&deployment), ConsentStatus::Granted);
        assert!(c.grant_for(&Office365Settings { client_id: String::new(), ..s }).is_none());
    }
}
