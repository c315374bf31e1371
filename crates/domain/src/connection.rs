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
    /// Microsoft's admin consent for the organization.
    AdminConsent,
}

impl FlowPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            FlowPurpose::Activate => "activate",
            FlowPurpose::Connect => "connect",
            FlowPurpose::ServiceUser => "service_user",
            FlowPurpose::AdminConsent => "admin_consent",
        }
    }

    pub fn parse(s: &str) -> Option<FlowPurpose> {
        [FlowPurpose::Activate, FlowPurpose::Connect, FlowPurpose::ServiceUser, FlowPurpose::AdminConsent]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}
