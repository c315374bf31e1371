//! The integrations the platform offers and the states an admin sees them in.

use serde::{Deserialize, Serialize};

/// Integrations that really work. Only these are listed on Settings > All Integrations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IntegrationKind {
    Office365,
}

impl IntegrationKind {
    pub const ALL: [IntegrationKind; 1] = [IntegrationKind::Office365];

    pub fn name(self) -> &'static str {
        match self {
            IntegrationKind::Office365 => "Office 365",
        }
    }

    /// The path segment of the integration's settings page.
    pub fn slug(self) -> &'static str {
        match self {
            IntegrationKind::Office365 => "office365",
        }
    }

    pub fn summary(self) -> &'static str {
        match self {
            IntegrationKind::Office365 => {
                "Sync mail, calendar events, contacts and To Do tasks from Microsoft 365 through Microsoft Graph."
            }
        }
    }
}

/// What Settings > All Integrations says about an integration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IntegrationStatus {
    NotSetUp,
    Enabled,
    EnabledAsServiceAccount,
    NeedsAttention,
}

impl IntegrationStatus {
    pub fn label(self) -> &'static str {
        match self {
            IntegrationStatus::NotSetUp => "Not set up",
            IntegrationStatus::Enabled => "Enabled",
            IntegrationStatus::EnabledAsServiceAccount => "Enabled as service account",
            IntegrationStatus::NeedsAttention => "Needs attention",
        }
    }

    /// A CSS modifier so the badge colour follows the state.
    pub fn tone(self) -> &'static str {
        match self {
            IntegrationStatus::NotSetUp => "neutral",
            IntegrationStatus::Enabled | IntegrationStatus::EnabledAsServiceAccount => "good",
            IntegrationStatus::NeedsAttention => "warn",
        }
    }
}
