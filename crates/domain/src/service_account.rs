//! Service-account mode: the team members whose mailboxes the one service connection syncs.

use crate::ReasonCode;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAccountUser {
    pub id: uuid::Uuid,
    /// The Microsoft directory object id, when known: Microsoft's answer for the address (looked
    /// up by the server) or the member's own connection's; never what a browser sent.
    pub ms_object_id: Option<String>,
    /// Sign-in name / address, lower-case.
    pub ms_username: String,
    pub display_name: String,
    pub added_by: String,
    pub added_at: i64,
    /// The last check of this mailbox: `Ok` when the service connection could open it.
    pub health: Option<MailboxHealth>,
    pub health_at: Option<i64>,
}

impl ServiceAccountUser {
    /// What Graph's `/users/{id}` reaches this mailbox by: the directory id when known, else the
    /// address.
    pub fn graph_user_id(&self) -> &str {
        self.ms_object_id.as_deref().unwrap_or(&self.ms_username)
    }
}

/// Whether the service connection can open a mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MailboxHealth {
    Ok,
    Problem(ReasonCode),
}

impl MailboxHealth {
    pub fn as_str(self) -> &'static str {
        match self {
            MailboxHealth::Ok => "ok",
            MailboxHealth::Problem(r) => r.as_str(),
        }
    }

    pub fn parse(s: &str) -> Option<MailboxHealth> {
        match s {
            "ok" => Some(MailboxHealth::Ok),
            other => ReasonCode::parse(other).map(MailboxHealth::Problem),
        }
    }

    /// Short words for the row: "OK", "No access to this mailbox", …
    pub fn label(self) -> &'static str {
        match self {
            MailboxHealth::Ok => "Mailbox reachable",
            MailboxHealth::Problem(ReasonCode::NoMailboxAccess) => "No access to this mailbox",
            MailboxHealth::Problem(ReasonCode::MailboxNotLicensed) => "No mailbox (licence missing)",
            MailboxHealth::Problem(ReasonCode::PermissionMissing) => "Permission not granted",
            MailboxHealth::Problem(r) if r.is_transient() => "Will retry",
            MailboxHealth::Problem(_) => "Cannot be synced",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_round_trips_through_its_stored_form() {
        for h in [MailboxHealth::Ok, MailboxHealth::Problem(ReasonCode::NoMailboxAccess), MailboxHealth::Problem(ReasonCode::Throttled)] {
            assert_eq!(MailboxHealth::parse(h.as_str()), Some(h));
        }
        assert_eq!(MailboxHealth::parse("nonsense"), None);
        assert_eq!(MailboxHealth::Problem(ReasonCode::NoMailboxAccess).label(), "No access to this mailbox");
    }
}
