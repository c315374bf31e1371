//! Who is signed in and what they may do.

use crate::{EmailAddress, OrgId, UserId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A person's role in their organization. Admins configure integrations; members use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Member,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role '{0}': expected 'admin' or 'member'")]
pub struct RoleParseError(pub String);

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Role::Admin => "Admin",
            Role::Member => "Member",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = RoleParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            other => Err(RoleParseError(other.to_string())),
        }
    }
}

/// The signed-in person as the pages see them. Carries nothing secret: it is sent to the browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionUser {
    pub user_id: UserId,
    pub org_id: OrgId,
    pub org_name: String,
    pub email: EmailAddress,
    pub display_name: String,
    pub role: Role,
}

impl SessionUser {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// How the audit log names this person: `Adele Admin <admin@northwind.test>`.
    pub fn audit_label(&self) -> String {
        format!("{} <{}>", self.display_name, self.email)
    }

    /// Up to two letters for the avatar in the header.
    pub fn initials(&self) -> String {
        let mut letters = self
            .display_name
            .split_whitespace()
            .filter_map(|w| w.chars().next())
            .filter(|c| c.is_alphanumeric())
            .take(2)
            .collect::<String>();
        if letters.is_empty() {
            letters = self.email.as_str().chars().take(1).collect();
        }
        letters.to_uppercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_text() {
        for r in [Role::Admin, Role::Member] {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        assert_eq!(" ADMIN ".parse::<Role>().unwrap(), Role::Admin);
        assert!("owner".parse::<Role>().is_err());
    }

    #[test]
    fn initials_come_from_the_name_or_the_email() {
        let mut u = SessionUser {
            user_id: UserId(uuid::Uuid::nil()),
            org_id: OrgId(uuid::Uuid::nil()),
            org_name: "Northwind".into(),
            email: EmailAddress::parse("alice@northwind.test").unwrap(),
            display_name: "Alice Anders".into(),
            role: Role::Member,
        };
        assert_eq!(u.initials(), "AA");
        u.display_name = "  ".into();
        assert_eq!(u.initials(), "A");
    }
}
