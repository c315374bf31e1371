//! What each page shows, as the application layer hands it to the browser. Built on the server by
//! the workflows in `office365`, rendered by `app`; no IO here.

use crate::consent::{AdminConsent, ConsentStatus};
use crate::integration::{IntegrationKind, IntegrationStatus};
use crate::office365::{FieldErrors, Office365Settings, SecretExpiry};
use crate::permissions::ConnectionMode;
use crate::{ConnectionState, ConnectionSummary, ReasonCode, Resource, ServiceAccountUser, SyncState};
use serde::{Deserialize, Serialize};

/// Settings › All Integrations: one row per integration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrationRow {
    pub kind: IntegrationKind,
    pub status: IntegrationStatus,
}

/// The Office 365 Connection Settings page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Office365View {
    /// The form, the permissions table and the requested scope are all derived from these in the
    /// browser (the catalogue is in `domain`, which compiles to wasm): nothing is sent twice.
    pub settings: Office365Settings,
    pub callback_uri: String,
    pub admin_consent_uri: String,
    /// How many connections would stop syncing if only the primary integration were polled.
    pub paused_by_poll_primary: u32,
    /// The client secret has expired or lapses soon.
    pub secret_expiry: Option<SecretExpiry>,
}

/// The outcome of a settings save: either saved, or what to fix (field by field), nothing stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaveResult {
    pub saved: bool,
    pub errors: FieldErrors,
    pub form_error: Option<String>,
}

impl SaveResult {
    /// Nothing stored; `field` says why.
    pub fn field_error(field: &str, message: impl Into<String>) -> SaveResult {
        let mut r = SaveResult::default();
        r.errors.insert(field.into(), message.into());
        r
    }
}

/// How a connection's sync is doing: state, last and next sync, item counts, the last error (and
/// from it who must act).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncSummary {
    pub state: SyncState,
    /// The server's clock when this was read: a throttled state counts down from it, the same in
    /// the server's render and the browser's.
    pub at: i64,
    pub last_sync: Option<i64>,
    pub next_sync: Option<i64>,
    /// Items per resource.
    pub counts: Vec<(Resource, u64)>,
    pub error: Option<ReasonCode>,
}

impl SyncSummary {
    pub fn state_label(&self) -> String {
        self.state.label(self.at)
    }

    /// "Mail 12 · Events 3", or "—".
    pub fn counts_line(&self) -> String {
        if self.counts.is_empty() {
            return "—".to_owned();
        }
        self.counts.iter().map(|(r, n)| format!("{} {n}", r.items_label())).collect::<Vec<_>>().join(" · ")
    }
}

/// My Connection: the admin's own connection (individual mode) or the organization's service
/// connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MyConnectionView {
    pub enabled: bool,
    pub mode: ConnectionMode,
    pub connection: Option<ConnectionSummary>,
    /// Each permission the settings request, and whether Microsoft granted it.
    pub permissions: Vec<(String, bool)>,
    /// "Contacts sync is off: Contacts.Read was not granted."
    pub missing: Vec<String>,
    pub sync: Option<SyncSummary>,
}

/// The Office 365 part of a person's profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileOffice365 {
    pub enabled: bool,
    pub service_account: bool,
    pub connection: Option<ConnectionSummary>,
    pub sync: Option<SyncSummary>,
}

/// Service account users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAccountsView {
    pub enabled: bool,
    pub mode: ConnectionMode,
    /// The service connection exists (mailboxes can be checked and searched).
    pub activated: bool,
    pub users: Vec<ServiceAccountUser>,
}

/// One person found in the Microsoft directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryPerson {
    pub id: String,
    pub name: String,
    pub address: String,
}

/// What a directory search found, or why it could not search (shown next to the search box; a
/// refusal by Microsoft is an answer, not a failed request).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DirectorySearchResult {
    Found(Vec<DirectoryPerson>),
    Problem(String),
}

/// One row of Team connections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamRow {
    pub id: String,
    pub owner: String,
    pub owner_email: String,
    pub ms_username: String,
    pub is_primary: bool,
    pub state: ConnectionState,
    /// Why it needs attention (and from it who must act).
    pub reason: Option<ReasonCode>,
    pub connected_at: i64,
    pub sync: Option<SyncSummary>,
}

/// Where organization-wide consent stands for the configured tenant and app registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminConsentView {
    pub enabled: bool,
    pub tenant: String,
    pub client_id: String,
    pub status: ConsentStatus,
    pub consent: AdminConsent,
    /// True when the grant on record was given for another app registration.
    pub grant_is_for_another_app: bool,
}

/// What Activity asks for: `?kind=&q=&page=&member=`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityQuery {
    pub kind: String,
    pub q: String,
    pub page: u32,
    pub member: String,
}

/// Rows per Activity page.
pub const ACTIVITY_PAGE_SIZE: u32 = 25;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityRow {
    pub kind: Resource,
    pub title: String,
    pub subtitle: String,
    pub preview: String,
    pub when: Option<i64>,
}

/// A first sync's progress for one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressRow {
    pub resource: Resource,
    pub done: u64,
    /// 0 when Microsoft gives no estimate.
    pub total: u64,
    pub finished: bool,
}

/// Activity: a person's synced items, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityView {
    /// Whose data this is.
    pub viewing: String,
    pub viewing_id: String,
    /// Admins: everyone in the organization, to pick from.
    pub members: Vec<(String, String)>,
    /// The person has at least one mailbox being synced.
    pub has_mailbox: bool,
    /// The state of each of the person's mailboxes (distinct), read at `at`.
    pub sync_states: Vec<SyncState>,
    pub at: i64,
    pub progress: Vec<ProgressRow>,
    pub rows: Vec<ActivityRow>,
    pub has_more: bool,
}
