//! Organization-wide ("admin") consent: what Microsoft's admin consent flow granted for the
//! organization's app registration, and whether a member is waiting for it.

use crate::office365::Office365Settings;
use crate::permissions::ConnectionMode;
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
            ConsentStatus::Requested => "Requested by a member",
            ConsentStatus::Required => "Required",
            ConsentStatus::NotGranted => "Not granted",
        }
    }
}

impl AdminConsent {
    /// The grant, if it was given for the app registration the settings name now.
    pub fn grant_for(&self, settings: &Office365Settings) -> Option<&ConsentGrant> {
        self.granted.as_ref().filter(|g| !settings.client_id.is_empty() && g.client_id.eq_ignore_ascii_case(&settings.client_id))
    }

    pub fn status(&self, settings: &Office365Settings) -> ConsentStatus {
        if self.requested.is_some() {
            ConsentStatus::Requested
        } else if self.grant_for(settings).is_some() {
            ConsentStatus::Granted
        } else if settings.mode == ConnectionMode::ApplicationPermissions {
            ConsentStatus::Required
        } else {
            ConsentStatus::NotGranted
        }
    }

    /// True when an admin should be asked, in the feed, to run the admin consent flow.
    pub fn admin_action_needed(&self, settings: &Office365Settings) -> bool {
        settings.enabled && matches!(self.status(settings), ConsentStatus::Requested | ConsentStatus::Required)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(client: &str) -> ConsentGrant {
        ConsentGrant { by: "Ada".into(), at: 1, tenant_id: "t".into(), client_id: client.into(), scopes: vec![] }
    }

    fn enabled(mode: ConnectionMode) -> Office365Settings {
        Office365Settings { enabled: true, client_id: "abc".into(), mode, ..Office365Settings::default() }
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
        assert!(c.grant_for(&Office365Settings { client_id: String::new(), ..s }).is_none());
    }
}
