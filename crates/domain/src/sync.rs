//! The synced resources and how a mailbox's sync stands, in one vocabulary for the settings, the
//! store, the Microsoft client, the sync engine and the pages.

use crate::ReasonCode;
use serde::{Deserialize, Serialize};

/// What the product syncs, and what an admin chooses under "what to sync". One name per resource
/// everywhere: settings, cursors and items, delta requests, Activity filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Resource {
    Mail,
    /// Calendar events (the default calendar over the backfill window).
    Calendar,
    Contacts,
    /// To Do tasks.
    Tasks,
}

impl Resource {
    pub const ALL: [Resource; 4] = [Resource::Mail, Resource::Calendar, Resource::Contacts, Resource::Tasks];

    /// The stored form and the Activity filter value: `mail`, `calendar`, `contacts`, `tasks`.
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Mail => "mail",
            Resource::Calendar => "calendar",
            Resource::Contacts => "contacts",
            Resource::Tasks => "tasks",
        }
    }

    /// The stored form; `events` is read as `calendar` (links from before the names were one).
    pub fn parse(s: &str) -> Option<Resource> {
        match s {
            "events" => Some(Resource::Calendar),
            _ => Resource::ALL.into_iter().find(|r| r.as_str() == s),
        }
    }

    /// The settings' name: "Calendar".
    pub fn label(self) -> &'static str {
        match self {
            Resource::Mail => "Mail",
            Resource::Calendar => "Calendar",
            Resource::Contacts => "Contacts",
            Resource::Tasks => "Tasks",
        }
    }

    /// What its items are called where they are listed or counted: "Events".
    pub fn items_label(self) -> &'static str {
        match self {
            Resource::Calendar => "Events",
            other => other.label(),
        }
    }

    /// "Contacts sync is off: Contacts.Read was not granted."
    pub fn sync_label(self) -> &'static str {
        match self {
            Resource::Mail => "Mail sync",
            Resource::Calendar => "Calendar sync",
            Resource::Contacts => "Contacts sync",
            Resource::Tasks => "Tasks sync",
        }
    }
}

/// Why a mailbox is not synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PauseReason {
    /// "Poll primary integration only" is on and this is not the primary connection's mailbox.
    PollPrimaryOnly,
    /// The integration is disabled.
    Disabled,
    /// A member's own connection while the organization syncs through its service account.
    ServiceAccountMode,
}

impl PauseReason {
    const ALL: [PauseReason; 3] = [PauseReason::PollPrimaryOnly, PauseReason::Disabled, PauseReason::ServiceAccountMode];

    pub fn as_str(self) -> &'static str {
        match self {
            PauseReason::PollPrimaryOnly => "poll_primary_only",
            PauseReason::Disabled => "disabled",
            PauseReason::ServiceAccountMode => "service_account_mode",
        }
    }

    pub fn parse(s: &str) -> Option<PauseReason> {
        PauseReason::ALL.into_iter().find(|p| p.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            PauseReason::PollPrimaryOnly => "Paused: only the primary integration is polled",
            PauseReason::Disabled => "Paused: the integration is disabled",
            PauseReason::ServiceAccountMode => "Paused: the organization syncs through its service account",
        }
    }
}

/// How a mailbox learns of changes (PRODUCT.md "Change notifications"): Microsoft tells the product
/// within seconds, or the product asks every sync interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeDelivery {
    /// Change notifications for every synced resource; polling only as a long safety net.
    Live,
    /// Polled at the configured interval, for this reason.
    Polling(PollingReason),
}

/// Why a mailbox is polled rather than notified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PollingReason {
    /// The product's public URL is not https, so Microsoft cannot deliver notifications to it.
    NoHttpsUrl,
    /// Someone else's mailbox read with delegated permissions: Microsoft offers no notifications.
    SharedMailbox,
    /// Notifications are set up once the first full sync has completed.
    FirstSync,
    /// A subscription is being made (again): Microsoft removed one, or it has not been made yet.
    SettingUp,
    /// Microsoft refused or failed a subscription: for which resource, why, and its words.
    Failed { resource: Resource, reason: ReasonCode, detail: String },
}

impl ChangeDelivery {
    /// "Live (change notifications)" or "Polling every 15 minutes".
    pub fn label(&self, interval_minutes: u32) -> String {
        match self {
            ChangeDelivery::Live => "Live (change notifications)".to_string(),
            ChangeDelivery::Polling(_) => {
                format!("Polling every {interval_minutes} minute{}", if interval_minutes == 1 { "" } else { "s" })
            }
        }
    }

    /// Why it polls, in the user's words; `None` when live.
    pub fn why(&self) -> Option<String> {
        let ChangeDelivery::Polling(reason) = self else { return None };
        Some(match reason {
            PollingReason::NoHttpsUrl => "Change notifications need an https public URL that Microsoft can reach.".to_string(),
            PollingReason::SharedMailbox => {
                "Microsoft sends no change notifications for other people's mailboxes read with delegated permissions.".to_string()
            }
            PollingReason::FirstSync => "Change notifications start once the first full sync has completed.".to_string(),
            PollingReason::SettingUp => "Change notifications are being set up with Microsoft.".to_string(),
            PollingReason::Failed { resource, reason, detail } => {
                let said = if detail.is_empty() { String::new() } else { format!(" Microsoft said: {detail}") };
                format!("Change notifications for {} could not be kept. {}{said}", resource.label().to_lowercase(), reason.message())
            }
        })
    }
}

/// The state My Connection, Team connections, Profile and Activity show for a mailbox's sync (the
/// connection's own needs-attention state comes from the connection and takes precedence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncState {
    Paused(PauseReason),
    /// A worker holds the lease right now.
    Syncing,
    /// Microsoft asked us to wait; syncing resumes by itself at this time (unix seconds).
    Throttled {
        until: i64,
    },
    /// The last run failed for this reason (who must act follows from it).
    Failed(ReasonCode),
    /// Never completed a first sync yet (and not running now).
    Waiting,
    UpToDate,
}

/// The colour of a state's badge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Tone {
    Good,
    Neutral,
    Warn,
}

impl Tone {
    /// The CSS modifier: `badge--good`.
    pub fn as_str(self) -> &'static str {
        match self {
            Tone::Good => "good",
            Tone::Neutral => "neutral",
            Tone::Warn => "warn",
        }
    }
}

impl SyncState {
    /// In words, at `now` (a throttled state counts down).
    pub fn label(self, now: i64) -> String {
        match self {
            SyncState::Paused(p) => p.label().to_owned(),
            SyncState::Syncing => "Syncing".into(),
            SyncState::Throttled { until } => format!("Microsoft asked us to wait; resumes in {} s", (until - now).max(0)),
            SyncState::Failed(r) if r.is_transient() => "Will retry".into(),
            SyncState::Failed(_) => "Last sync failed".into(),
            SyncState::Waiting => "Waiting for its first sync".into(),
            SyncState::UpToDate => "Up to date".into(),
        }
    }

    pub fn tone(self) -> Tone {
        match self {
            SyncState::UpToDate | SyncState::Syncing => Tone::Good,
            SyncState::Waiting => Tone::Neutral,
            _ => Tone::Warn,
        }
    }

    /// Of several mailboxes' states, the most telling one is shown: paused, failing, throttled,
    /// syncing, waiting, up to date.
    pub fn urgency(self) -> u8 {
        match self {
            SyncState::Paused(_) => 0,
            SyncState::Failed(_) => 1,
            SyncState::Throttled { .. } => 2,
            SyncState::Syncing => 3,
            SyncState::Waiting => 4,
            SyncState::UpToDate => 5,
        }
    }

    /// Whether a next sync time can be promised: not while paused or waiting for someone to act.
    pub fn has_next_sync(self) -> bool {
        !matches!(self, SyncState::Paused(_)) && !matches!(self, SyncState::Failed(r) if !r.is_transient())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_and_pause_reasons_read_back_their_stored_forms() {
        for r in Resource::ALL {
            assert_eq!(Resource::parse(r.as_str()), Some(r));
        }
        assert_eq!(Resource::parse("events"), Some(Resource::Calendar));
        assert_eq!(Resource::Calendar.items_label(), "Events");
        for p in PauseReason::ALL {
            assert_eq!(PauseReason::parse(p.as_str()), Some(p));
        }
    }

    #[test]
    fn states_read_as_people_expect() {
        assert_eq!(SyncState::Throttled { until: 130 }.label(100), "Microsoft asked us to wait; resumes in 30 s");
        assert_eq!(SyncState::Failed(ReasonCode::MicrosoftUnavailable).label(0), "Will retry");
        assert!(SyncState::Failed(ReasonCode::MicrosoftUnavailable).has_next_sync());
        assert!(!SyncState::Failed(ReasonCode::RefreshTokenExpired).has_next_sync());
        assert!(!SyncState::Paused(PauseReason::Disabled).has_next_sync());
        assert_eq!(SyncState::UpToDate.tone(), Tone::Good);
        assert!(SyncState::Paused(PauseReason::Disabled).urgency() < SyncState::UpToDate.urgency());
    }
}
