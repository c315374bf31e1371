//! The audit log: who changed what setting, connected, disconnected, granted consent, toggled
//! poll-primary, and when.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Unix seconds.
    pub at: i64,
    /// Who did it, as shown: "Adele Admin <admin@northwind.test>".
    pub actor: String,
    /// A stable code, e.g. `office365.poll_primary_on`.
    pub action: String,
    /// One sentence for people.
    pub summary: String,
}
