//! A Microsoft 365 connection as people see it: whose it is, which account, and whether it works.

use crate::{OrgId, ReasonCode, UserId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConnectionKind {
    /// A member's own account (individual mode); the admin's is the primary integration.
    Individual,
    /// The one service user of service-account mode, holding delegate access to others' mailboxes.
    ServiceUser,
    /// Service-account mode with application permissions: the app's own client-credentials token,
    /// after admin consent. No user signs in.
    Application,
}

impl ConnectionKind {
    /// The organization-wide connection of service-account mode (either kind).
    pub fn is_service(self) -> bool {
        matches!(self, ConnectionKind::ServiceUser | ConnectionKind::Application)
    }

    /// The kind of connection "Activate" creates in `mode`.
    pub fn for_mode(mode: crate::permissions::ConnectionMode) -> ConnectionKind {
        match mode {
            crate::permissions::ConnectionMode::Individual => ConnectionKind::Individual,
            crate::permissions::ConnectionMode::ServiceUser => ConnectionKind::ServiceUser,
            crate::permissions::ConnectionMode::ApplicationPermissions => ConnectionKind::Application,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionKind::Individual => "individual",
            ConnectionKind::ServiceUser => "service_user",
            ConnectionKind::Application => "application",
        }
    }

    pub fn parse(s: &str) -> Option<ConnectionKind> {
        match s {
            "individual" => Some(ConnectionKind::Individual),
            "service_user" => Some(ConnectionKind::ServiceUser),
            "application" => Some(ConnectionKind::Application),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConnectionState {
    Active,
    NeedsAttention,
}

impl ConnectionState {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionState::Active => "active",
            ConnectionState::NeedsAttention => "needs_attention",
        }
    }

    pub fn parse(s: &str) -> Option<ConnectionState> {
        match s {
            "active" => Some(ConnectionState::Active),
            "needs_attention" => Some(ConnectionState::NeedsAttention),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ConnectionState::Active => "Active",
            ConnectionState::NeedsAttention => "Needs attention",
        }
    }
}

/// Everything about a connection that may be shown; tokens never are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionSummary {
    pub id: uuid::Uuid,
    pub org_id: OrgId,
    pub user_id: UserId,
    pub kind: ConnectionKind,
    pub is_primary: bool,
    /// The Microsoft account: tenant id, object id, sign-in name and display name (from the
    /// verified id_token).
    pub ms_tenant_id: String,
    pub ms_object_id: String,
    pub ms_username: String,
    pub ms_name: String,
    /// What Microsoft actually granted.
    pub granted_scopes: Vec<String>,
    pub state: ConnectionState,
    pub reason: Option<ReasonCode>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Why an OAuth flow was started; decides what the callback does with the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FlowPurpose {
    /// An admin's My Connection > Activate: becomes the primary integration.
    Activate,
    /// A member connecting their own account.
    Connect,
    /// The service user signing in (service-account mode with a service user).
    ServiceUser,
    /// Microsoft's admin consent endpoint (application permissions, granted from the registration).
    AdminConsent,
    /// An admin signing in with the organization's delegated permissions and consenting on behalf
    /// of the organization: the organization-wide grant of exactly those permissions.
    OrganizationConsent,
}

impl FlowPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            FlowPurpose::Activate => "activate",
            FlowPurpose::Connect => "connect",
            FlowPurpose::ServiceUser => "service_user",
            FlowPurpose::AdminConsent => "admin_consent",
            FlowPurpose::OrganizationConsent => "organization_consent",
        }
    }

    pub fn parse(s: &str) -> Option<FlowPurpose> {
        [FlowPurpose::Activate, FlowPurpose::Connect, FlowPurpose::ServiceUser, FlowPurpose::AdminConsent, FlowPurpose::OrganizationConsent]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

/// Why the product itself turned a connection attempt away, before or after Microsoft. The OAuth
/// routes send the browser to `/connect/result?refused=<as_str>`, which explains it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Refusal {
    /// The `state` is unknown, expired, already used, or of another kind of flow.
    Expired,
    /// The callback arrived in another browser session than the one that started it.
    OtherSession,
    NotEnabled,
    /// Members do not connect their own accounts in service-account mode.
    ServiceAccount,
    AdminsOnly,
    /// A service user signs in only in "service account with a service user" mode.
    NotServiceUser,
    /// With the deployment's app registration, members connect once an admin has activated (which
    /// pins the organization's Microsoft 365 tenant).
    NotActivated,
    /// Another Intelligence360 organization is pinned to this Microsoft 365 tenant.
    TenantTaken,
    /// Something failed on our side; the log has the details.
    Internal,
    Unknown,
}

impl Refusal {
    const ALL: [Refusal; 10] = [
        Refusal::NotActivated,
        Refusal::TenantTaken,
        Refusal::Expired,
        Refusal::OtherSession,
        Refusal::NotEnabled,
        Refusal::ServiceAccount,
        Refusal::AdminsOnly,
        Refusal::NotServiceUser,
        Refusal::Internal,
        Refusal::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Expired => "expired",
            Refusal::OtherSession => "other_session",
            Refusal::NotEnabled => "not_enabled",
            Refusal::ServiceAccount => "service_account",
            Refusal::AdminsOnly => "admins_only",
            Refusal::NotServiceUser => "not_service_user",
            Refusal::NotActivated => "not_activated",
            Refusal::TenantTaken => "tenant_taken",
            Refusal::Internal => "internal",
            Refusal::Unknown => "unknown",
        }
    }

    /// Anything unrecognised reads as `Unknown`: the page still says what to do.
    pub fn parse(s: &str) -> Refusal {
        Refusal::ALL.into_iter().find(|r| r.as_str() == s).unwrap_or(Refusal::Unknown)
    }

    pub fn title(self) -> &'static str {
        match self {
            Refusal::Expired => "This sign-in link has expired or was already used",
            Refusal::OtherSession => "This sign-in was started somewhere else",
            Refusal::NotEnabled => "Office 365 is not enabled",
            Refusal::ServiceAccount => "Your organization connects through a service account",
            Refusal::AdminsOnly => "Only admins can do this",
            Refusal::NotServiceUser => "The connection mode changed",
            Refusal::NotActivated => "Office 365 is not activated yet",
            Refusal::TenantTaken => "This Microsoft 365 organization is already connected elsewhere",
            Refusal::Internal => "Something went wrong on our side",
            Refusal::Unknown => "That did not work",
        }
    }

    pub fn next_step(self) -> &'static str {
        match self {
            Refusal::Expired => "Sign-in links work once and for 10 minutes. Start the connection again from Intelligence360.",
            Refusal::OtherSession => {
                "For your safety a connection must finish in the browser session that started it. Start again from this browser."
            }
            Refusal::NotEnabled => "An admin has to enable the Office 365 integration first. If you cannot see it, contact your admin.",
            Refusal::ServiceAccount => "Your admins maintain one connection for everyone, so you do not need to connect your own account.",
            Refusal::AdminsOnly => "Ask an admin of your organization.",
            Refusal::NotServiceUser => {
                "A service user signs in only while the connection mode is \"Service account with a service user\". Check Connection Settings and start again."
            }
            Refusal::NotActivated => {
                "An admin has to activate the integration under My Connection first; that tells Intelligence360 which Microsoft 365 organization is yours. Nothing was stored. Ask your admin."
            }
            Refusal::TenantTaken => {
                "Another Intelligence360 organization is already connected to this Microsoft 365 tenant, and one tenant serves one organization. Nothing was stored. If this is wrong, contact support."
            }
            Refusal::Internal => "Nothing was changed. Try again in a minute; if it keeps happening, contact support.",
            Refusal::Unknown => "Start the connection again from Intelligence360.",
        }
    }
}

#[cfg(test)]
mod refusal_tests {
    use super::Refusal;

    #[test]
    fn every_refusal_reads_back_and_unknown_text_is_unknown() {
        for r in Refusal::ALL {
            assert_eq!(Refusal::parse(r.as_str()), r);
        }
        assert_eq!(Refusal::parse("<script>"), Refusal::Unknown);
    }
}
