//! What each page shows, as the application layer hands it to the browser. Built on the server by
//! the workflows in `office365`, rendered by `app`; no IO here.

use crate::consent::{AdminConsent, ConsentStatus};
use crate::integration::{IntegrationKind, IntegrationStatus};
use crate::office365::{FieldErrors, Office365Settings, SecretExpiry};
use crate::permissions::ConnectionMode;
use crate::{ChangeDelivery, ConnectionState, ConnectionSummary, PauseReason, ReasonCode, Resource, ServiceAccountUser, SyncState, Tone};
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
    /// Every mailbox the organization syncs or is set to sync (members' own connections and
    /// service account users), so the page can say whose sync a change of connection mode or
    /// "Poll primary integration only" would stop, before it is saved.
    pub mailboxes: Vec<OrgMailbox>,
    /// The client secret has expired or lapses soon.
    pub secret_expiry: Option<SecretExpiry>,
    /// This deployment can receive Microsoft's change notifications (its public URL is https, or
    /// Graph is a local emulator). When not, every mailbox's change delivery is polling.
    pub live_change_delivery: bool,
}

impl Office365View {
    /// The one line Connection Settings shows when this deployment cannot get change
    /// notifications; `None` when it can.
    pub fn change_delivery_note(&self) -> Option<String> {
        if self.live_change_delivery {
            return None;
        }
        let n = self.settings.sync_interval_minutes;
        Some(format!(
            "Change notifications are off: this server's public URL is not https, so every mailbox is polled every {n} minute{}.",
            if n == 1 { "" } else { "s" }
        ))
    }
}

/// How a mailbox is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MailboxSource {
    /// A person's own connection (individual mode); `primary` for the primary integration's.
    OwnConnection { primary: bool },
    /// A service account user's mailbox, read through the service connection.
    ServiceAccountUser,
}

/// One mailbox of the organization, as Connection Settings weighs a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgMailbox {
    /// The connection's or the service account user's id.
    pub id: String,
    /// The member's name (a service account user's display name).
    pub name: String,
    /// The Microsoft account's address.
    pub address: String,
    pub source: MailboxSource,
}

impl OrgMailbox {
    /// Whether it is synced in `mode`, with or without "Poll primary integration only", the
    /// integration being on. The same rules as the scheduler's (`sync::Scheduler::reconcile_org`):
    /// members' own connections only in individual mode, service account users only in a
    /// service-account mode, and with poll-primary only the primary integration's own mailbox.
    pub fn syncs_in(&self, mode: ConnectionMode, poll_primary_only: bool) -> bool {
        match self.source {
            MailboxSource::OwnConnection { primary } => mode == ConnectionMode::Individual && (primary || !poll_primary_only),
            MailboxSource::ServiceAccountUser => mode != ConnectionMode::Individual && !poll_primary_only,
        }
    }

    /// "Alice Anders (alice@northwind.test)".
    pub fn label(&self) -> String {
        if self.name.is_empty() || self.name.eq_ignore_ascii_case(&self.address) {
            self.address.clone()
        } else {
            format!("{} ({})", self.name, self.address)
        }
    }
}

/// The mailboxes syncing in `mode` that turning on "Poll primary integration only" would stop:
/// every one but the primary integration's own, service account users included.
pub fn stopped_by_poll_primary(mailboxes: &[OrgMailbox], mode: ConnectionMode) -> Vec<&OrgMailbox> {
    mailboxes.iter().filter(|m| m.syncs_in(mode, false) && !m.syncs_in(mode, true)).collect()
}

/// Members' own connections that a switch from `from` to `to` stops: a service-account mode
/// syncs only service account users, so every own connection (the admin's too) stops.
pub fn stopped_by_mode_switch(mailboxes: &[OrgMailbox], from: ConnectionMode, to: ConnectionMode) -> Vec<&OrgMailbox> {
    if from != ConnectionMode::Individual || to == ConnectionMode::Individual {
        return Vec::new();
    }
    mailboxes.iter().filter(|m| matches!(m.source, MailboxSource::OwnConnection { .. })).collect()
}

/// The poll-primary confirmation's first sentence: how many mailboxes stop, and whose.
pub fn poll_primary_impact(stopped: &[&OrgMailbox]) -> String {
    match stopped {
        [] => "No mailbox syncs yet; once members connect or service account users are added, only the primary \
               integration's mailbox will be synced."
            .to_owned(),
        [one] => format!("1 mailbox will stop syncing: {}.", one.label()),
        many => format!("{} mailboxes will stop syncing: {}.", many.len(), names(many)),
    }
}

/// "A (a@x), B (b@x), C (c@x) and 4 more": a confirmation stays readable for a large team.
pub fn names(mailboxes: &[&OrgMailbox]) -> String {
    const SHOWN: usize = 5;
    let labels: Vec<String> = mailboxes.iter().take(SHOWN).map(|m| m.label()).collect();
    let rest = mailboxes.len().saturating_sub(SHOWN);
    match labels.split_last() {
        None => String::new(),
        Some(_) if rest > 0 => format!("{} and {rest} more", labels.join(", ")),
        Some((last, [])) => last.clone(),
        Some((last, others)) => format!("{} and {last}", others.join(", ")),
    }
}

/// What a switch to a service-account mode does to members' own connections, in one sentence.
pub fn mode_switch_impact(stopped: &[&OrgMailbox]) -> String {
    let whose = match stopped.len() {
        1 => "This member's own connection stops",
        _ => "These members' own connections stop",
    };
    format!("{whose} syncing, because a service account syncs only its service account users: {}.", names(stopped))
}

/// The admin's answers to the confirmations Connection Settings asks for before saving.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaveConfirmations {
    /// Turning on "Poll primary integration only" stops every other mailbox.
    pub poll_primary: bool,
    /// Switching to a service-account mode stops members' own connections.
    pub mode_switch: bool,
    /// With `mode_switch`: also add those members as service account users, so their mailboxes
    /// keep syncing through the service connection.
    pub add_as_service_users: bool,
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
    /// How each of the connection's synced (not paused) mailboxes learns of changes.
    pub change_delivery: Vec<MailboxDelivery>,
    /// The organization's sync interval: how often a polled mailbox is synced.
    pub interval_minutes: u32,
}

/// One synced mailbox's change delivery: Microsoft's change notifications, or polling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxDelivery {
    /// Whose mailbox: `None` for the connection's own, a name for another one it syncs (a
    /// service account user's).
    pub mailbox: Option<String>,
    pub delivery: ChangeDelivery,
}

/// Change delivery as a page shows it: "Live (change notifications)" or "Polling every 15
/// minutes", and when polling, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeDeliveryLine {
    /// Whose mailbox, when the connection's mailboxes differ; `None` when the line is for all.
    pub mailbox: Option<String>,
    pub live: bool,
    pub label: String,
    pub why: Option<String>,
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

    /// The change delivery lines to show: one when every synced mailbox learns of changes the
    /// same way, otherwise one per mailbox, named; none when no mailbox is synced.
    pub fn change_delivery_lines(&self) -> Vec<ChangeDeliveryLine> {
        let line = |mailbox: Option<String>, d: &ChangeDelivery| ChangeDeliveryLine {
            mailbox,
            live: *d == ChangeDelivery::Live,
            label: d.label(self.interval_minutes),
            why: d.why(),
        };
        match self.change_delivery.split_first() {
            None => Vec::new(),
            Some((first, rest)) if rest.iter().all(|m| m.delivery == first.delivery) => vec![line(None, &first.delivery)],
            Some(_) => {
                self.change_delivery.iter().map(|m| line(m.mailbox.clone().or_else(|| Some("Own mailbox".into())), &m.delivery)).collect()
            }
        }
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
    /// The person's Microsoft account is one of the service account users, so in service-account
    /// mode their mailbox syncs through the service connection instead of their own.
    pub service_account_user: bool,
}

/// The profile's word for the person's own connection, its colour, and what is happening in
/// plain words when it is not simply syncing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnConnectionStatus {
    pub tone: Tone,
    pub label: &'static str,
    pub explanation: Option<&'static str>,
}

impl ProfileOffice365 {
    /// `None` without a connection. A connection that works but whose sync is paused is not
    /// "Connected" in green: nothing new arrives from it, and the person is told why.
    pub fn own_status(&self) -> Option<OwnConnectionStatus> {
        let c = self.connection.as_ref()?;
        let status = |tone, label, explanation| Some(OwnConnectionStatus { tone, label, explanation });
        if c.state == ConnectionState::NeedsAttention {
            return status(Tone::Warn, "Needs attention", None);
        }
        match self.sync.as_ref().map(|s| s.state) {
            Some(SyncState::Paused(PauseReason::ServiceAccountMode)) if self.service_account_user => status(
                Tone::Neutral,
                "Not in use",
                Some(
                    "Your organization now syncs your mailbox through the service account your admins maintain, so this \
                     connection of yours is no longer used. You can disconnect it.",
                ),
            ),
            Some(SyncState::Paused(PauseReason::ServiceAccountMode)) => status(
                Tone::Warn,
                "Paused",
                Some(
                    "Your organization now connects to Office 365 through a service account your admins maintain, and your \
                     mailbox is not one of those it syncs, so nothing new arrives from your account. What was synced stays. \
                     Ask your admin to add you as a service account user.",
                ),
            ),
            Some(SyncState::Paused(PauseReason::PollPrimaryOnly)) => status(
                Tone::Warn,
                "Paused",
                Some(
                    "Your admins set Office 365 to sync only the primary integration's mailbox, so yours is not synced for \
                     now. What was synced stays, and syncing resumes when they turn that setting off.",
                ),
            ),
            Some(SyncState::Paused(PauseReason::Disabled)) => status(
                Tone::Warn,
                "Paused",
                Some("Your admins turned the Office 365 integration off, so nothing syncs until they turn it on again."),
            ),
            _ => status(Tone::Good, "Connected", None),
        }
    }
}

/// Service account users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAccountsView {
    pub enabled: bool,
    pub mode: ConnectionMode,
    /// The service connection exists (mailboxes can be checked and searched).
    pub activated: bool,
    pub users: Vec<ServiceAccountUser>,
    /// The users whose mailbox check is under way (after an activation, in the background).
    #[serde(default)]
    pub checking: Vec<uuid::Uuid>,
}

/// One person found in the Microsoft directory. No directory object id: adding the person sends
/// back only the address, and the server looks it up with Microsoft again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryPerson {
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
    /// Application permissions: Microsoft's admin consent grants what the app registration lists
    /// (static), rather than the scopes asked for.
    pub application: bool,
    /// What the settings need, i.e. exactly what organization-wide consent asks for.
    pub requested: Vec<String>,
    /// Needed but not in the grant on record (the consent doctor's "new consent needed").
    pub missing: Vec<String>,
    /// Granted beyond what the settings need: a warning, never hidden.
    pub excess: Vec<String>,
    /// Microsoft's admin consent link for exactly these permissions, for an admin who cannot
    /// consent to forward to one who can (once the tenant is known).
    pub forward_link: Option<String>,
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
    /// The item's Graph id: what a reply, a cancel, an edit or a completion names.
    pub id: String,
    /// Its container (a task's To Do list id).
    pub container: String,
    pub title: String,
    pub subtitle: String,
    pub preview: String,
    pub when: Option<i64>,
    /// An event the person whose activity this is organizes (only the organizer cancels it).
    pub organizer: bool,
    /// A completed task, or a cancelled event.
    pub done: bool,
    /// A contact's fields, as its edit form starts.
    pub contact: Option<crate::writes::ContactDraft>,
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

/// A write on Activity until the synced item it made replaces it (PRODUCT.md "Read-write
/// features": "sending…", then the synced item, one row, never two).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingWrite {
    pub id: String,
    pub kind: crate::WriteKind,
    pub resource: crate::Resource,
    /// A subject or title, never the body.
    pub headline: String,
    /// "Sending…", "Email sent", "Email sent failed".
    pub label: String,
    pub pending: bool,
    /// Why it failed, Microsoft's words included.
    pub failure: Option<String>,
    pub who_must_act: Option<crate::WhoMustAct>,
    pub created_at: i64,
}

/// What the caller may write from Activity: the kinds offered, the others with why not, and the
/// synced To Do lists a task can go to.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WriteOffer {
    pub allowed: Vec<crate::WriteKind>,
    pub refused: Vec<(crate::WriteKind, String)>,
    pub task_lists: Vec<String>,
}

impl WriteOffer {
    pub fn allows(&self, kind: crate::WriteKind) -> bool {
        self.allowed.contains(&kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConnectionMode::{ApplicationPermissions, Individual, ServiceUser};

    fn own(name: &str, primary: bool) -> OrgMailbox {
        OrgMailbox {
            id: name.into(),
            name: name.into(),
            address: format!("{}@northwind.test", name.to_lowercase()),
            source: MailboxSource::OwnConnection { primary },
        }
    }

    fn service_user(name: &str) -> OrgMailbox {
        OrgMailbox { source: MailboxSource::ServiceAccountUser, ..own(name, false) }
    }

    fn labels(m: &[&OrgMailbox]) -> Vec<String> {
        m.iter().map(|m| m.label()).collect()
    }

    #[test]
    fn poll_primary_stops_every_mailbox_but_the_primary_integrations_own() {
        let org = [own("Adele", true), own("Alice", false), service_user("Bob"), service_user("Carol")];
        assert_eq!(labels(&stopped_by_poll_primary(&org, Individual)), ["Alice (alice@northwind.test)"]);
        assert_eq!(
            labels(&stopped_by_poll_primary(&org, ApplicationPermissions)),
            ["Bob (bob@northwind.test)", "Carol (carol@northwind.test)"],
            "service account users count too"
        );
        assert_eq!(stopped_by_poll_primary(&org, ServiceUser).len(), 2);
    }

    #[test]
    fn the_poll_primary_confirmation_says_how_many_mailboxes_stop_and_whose() {
        assert_eq!(
            poll_primary_impact(&[]),
            "No mailbox syncs yet; once members connect or service account users are added, only the primary \
             integration's mailbox will be synced."
        );
        let alice = own("Alice", false);
        assert_eq!(poll_primary_impact(&[&alice]), "1 mailbox will stop syncing: Alice (alice@northwind.test).");
        let team: Vec<OrgMailbox> = ["A", "B", "C", "D", "E", "F", "G"].into_iter().map(service_user).collect();
        let stopped: Vec<&OrgMailbox> = team.iter().collect();
        assert_eq!(poll_primary_impact(&stopped[..2]), "2 mailboxes will stop syncing: A (a@northwind.test) and B (b@northwind.test).");
        assert!(poll_primary_impact(&stopped).starts_with("7 mailboxes will stop syncing: A (a@northwind.test), "));
        assert!(poll_primary_impact(&stopped).ends_with("E (e@northwind.test) and 2 more."), "{}", poll_primary_impact(&stopped));
    }

    #[test]
    fn switching_to_a_service_account_stops_every_members_own_connection() {
        let org = [own("Adele", true), own("Alice", false), service_user("Bob")];
        for to in [ApplicationPermissions, ServiceUser] {
            let stopped = stopped_by_mode_switch(&org, Individual, to);
            assert_eq!(labels(&stopped), ["Adele (adele@northwind.test)", "Alice (alice@northwind.test)"]);
            assert!(stopped.iter().all(|m| m.syncs_in(Individual, false) && !m.syncs_in(to, false)));
        }
        assert!(stopped_by_mode_switch(&org, Individual, Individual).is_empty());
        assert!(stopped_by_mode_switch(&org, ApplicationPermissions, ServiceUser).is_empty(), "no own connection syncs there");
        assert!(stopped_by_mode_switch(&[service_user("Bob")], Individual, ServiceUser).is_empty());
        let alice = own("Alice", false);
        assert_eq!(
            mode_switch_impact(&[&alice]),
            "This member's own connection stops syncing, because a service account syncs only its service account \
             users: Alice (alice@northwind.test)."
        );
    }

    fn profile(sync: Option<SyncState>, service_account_user: bool) -> ProfileOffice365 {
        let connection = ConnectionSummary {
            id: uuid::Uuid::nil(),
            org_id: crate::OrgId(uuid::Uuid::nil()),
            user_id: crate::UserId(uuid::Uuid::nil()),
            kind: crate::ConnectionKind::Individual,
            is_primary: false,
            ms_tenant_id: String::new(),
            ms_object_id: String::new(),
            ms_username: "alice@northwind.test".into(),
            ms_name: "Alice".into(),
            granted_scopes: Vec::new(),
            state: ConnectionState::Active,
            reason: None,
            created_at: 0,
            updated_at: 0,
        };
        ProfileOffice365 {
            enabled: true,
            service_account: true,
            connection: Some(connection),
            sync: sync.map(|state| SyncSummary { state, ..summary(Vec::new()) }),
            service_account_user,
        }
    }

    fn summary(change_delivery: Vec<MailboxDelivery>) -> SyncSummary {
        SyncSummary {
            state: SyncState::UpToDate,
            at: 0,
            last_sync: None,
            next_sync: None,
            counts: Vec::new(),
            error: None,
            change_delivery,
            interval_minutes: 60,
        }
    }

    fn delivery(mailbox: Option<&str>, delivery: ChangeDelivery) -> MailboxDelivery {
        MailboxDelivery { mailbox: mailbox.map(str::to_owned), delivery }
    }

    #[test]
    fn change_delivery_is_one_line_when_every_mailbox_learns_of_changes_the_same_way() {
        assert_eq!(summary(Vec::new()).change_delivery_lines(), [], "no synced mailbox, nothing to say");
        let live = summary(vec![delivery(None, ChangeDelivery::Live)]).change_delivery_lines();
        assert_eq!(live, [ChangeDeliveryLine { mailbox: None, live: true, label: "Live (change notifications)".into(), why: None }]);
        let polled = ChangeDelivery::Polling(crate::PollingReason::FirstSync);
        let both = summary(vec![delivery(Some("Bob"), polled.clone()), delivery(Some("Carol"), polled.clone())]);
        let lines = both.change_delivery_lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!((lines[0].mailbox.as_deref(), lines[0].live), (None, false));
        assert_eq!(lines[0].label, "Polling every 60 minutes");
        assert_eq!(lines[0].why, polled.why(), "the reason in the user's words");
    }

    #[test]
    fn mailboxes_that_differ_get_a_named_line_each() {
        let shared = ChangeDelivery::Polling(crate::PollingReason::SharedMailbox);
        let lines = summary(vec![delivery(None, ChangeDelivery::Live), delivery(Some("Bob Baker"), shared)]).change_delivery_lines();
        let shown: Vec<(Option<&str>, &str, bool)> =
            lines.iter().map(|l| (l.mailbox.as_deref(), l.label.as_str(), l.why.is_some())).collect();
        assert_eq!(
            shown,
            [(Some("Own mailbox"), "Live (change notifications)", false), (Some("Bob Baker"), "Polling every 60 minutes", true)]
        );
    }

    #[test]
    fn connection_settings_say_so_in_one_line_when_notifications_are_off() {
        let mut view = Office365View {
            settings: Office365Settings { sync_interval_minutes: 60, ..Office365Settings::default() },
            callback_uri: String::new(),
            admin_consent_uri: String::new(),
            mailboxes: Vec::new(),
            secret_expiry: None,
            live_change_delivery: true,
        };
        assert_eq!(view.change_delivery_note(), None);
        view.live_change_delivery = false;
        assert_eq!(
            view.change_delivery_note().as_deref(),
            Some("Change notifications are off: this server's public URL is not https, so every mailbox is polled every 60 minutes.")
        );
    }

    #[test]
    fn a_paused_connection_is_not_shown_as_connected() {
        assert_eq!(profile(Some(SyncState::UpToDate), false).own_status().map(|s| (s.tone, s.label)), Some((Tone::Good, "Connected")));
        for reason in [PauseReason::ServiceAccountMode, PauseReason::PollPrimaryOnly, PauseReason::Disabled] {
            let status = profile(Some(SyncState::Paused(reason)), false).own_status().unwrap();
            assert_eq!((status.tone, status.label), (Tone::Warn, "Paused"), "{reason:?}");
            assert!(status.explanation.is_some(), "{reason:?}: says why in plain words");
        }
        let moved = profile(Some(SyncState::Paused(PauseReason::ServiceAccountMode)), true).own_status().unwrap();
        assert_eq!((moved.tone, moved.label), (Tone::Neutral, "Not in use"));
        assert!(moved.explanation.unwrap().contains("through the service account"));
        let stranded = profile(Some(SyncState::Paused(PauseReason::ServiceAccountMode)), false).own_status().unwrap();
        assert!(stranded.explanation.unwrap().contains("Ask your admin to add you as a service account user."));
        let mut broken = profile(Some(SyncState::Paused(PauseReason::ServiceAccountMode)), false);
        if let Some(c) = broken.connection.as_mut() {
            c.state = ConnectionState::NeedsAttention;
        }
        assert_eq!(broken.own_status().map(|s| s.label), Some("Needs attention"));
        assert_eq!(ProfileOffice365 { connection: None, ..broken }.own_status(), None);
    }
}
