//! The Actions feed: cards that ask the signed-in person to do something, each with one button.
//!
//! Which cards appear is decided here, from facts the server gathered, so the rules are plain
//! functions that tests can pin down without a database or a browser.

use crate::office365::Office365Settings;
use crate::{ConnectionState, ReasonCode, Role};
use serde::{Deserialize, Serialize};

/// What the card's one button does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CardAction {
    /// Opens a page.
    Link(String),
    /// Starts the Microsoft sign-in for the person's own connection (a form post).
    ConnectOffice365,
    /// Starts Microsoft's admin consent flow for the organization (a form post; admins only).
    GrantAdminConsent,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionCard {
    /// Stable id for tests and analytics, e.g. `office365-setup`.
    pub id: String,
    pub title: String,
    pub body: String,
    pub button: String,
    pub action: CardAction,
}

/// The person's own Office 365 connection, as far as the feed cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnConnection {
    pub state: ConnectionState,
    pub reason: Option<ReasonCode>,
}

/// What the feed needs to know about the organization and the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedFacts {
    pub role: Role,
    pub office365: Office365Settings,
    pub own_connection: Option<OwnConnection>,
    pub admin_consent: crate::AdminConsent,
    /// Today's date (`YYYY-MM-DD`, UTC), for warnings about dates such as the secret's expiry.
    pub today: String,
}

/// True when a member should be prompted to connect their own account: the integration is on, in
/// individual mode, and they have no connection yet.
pub fn may_connect_own_account(facts: &FeedFacts) -> bool {
    facts.office365.enabled && !facts.office365.is_service_account() && facts.own_connection.is_none()
}

/// Where an admin activates their own connection (or the service connection).
pub const MY_CONNECTION: &str = "/settings/integrations/office365/my-connection";

pub fn cards_for(facts: &FeedFacts) -> Vec<ActionCard> {
    let mut cards = Vec::new();
    let settings = &facts.office365;
    if facts.role == Role::Admin && !settings.enabled {
        cards.push(ActionCard {
            id: "office365-setup".into(),
            title: "Set up the Office 365 integration".into(),
            body: "Connect Intelligence360 to Microsoft 365 so your team's mail, calendar, contacts and \
                   tasks stay in sync."
                .into(),
            button: "Open Office 365 settings".into(),
            action: CardAction::Link("/settings/integrations/office365".into()),
        });
    }
    // Step 5 of the help article: once enabled, an admin activates their own connection, which
    // becomes the primary integration. In service-account mode My Connection is the service
    // connection instead, which the admin-consent card (application permissions) covers.
    if facts.role == Role::Admin && may_connect_own_account(facts) {
        cards.push(ActionCard {
            id: "office365-activate".into(),
            title: "Activate your connection".into(),
            body: "Office 365 is enabled. Activate your own connection under My Connection: you sign in with \
                   Microsoft once, and your mailbox becomes the organization's primary integration."
                .into(),
            button: "Open My Connection".into(),
            action: CardAction::Link(MY_CONNECTION.into()),
        });
    }
    if let Some(own) = &facts.own_connection
        && own.state == ConnectionState::NeedsAttention
        && settings.enabled
    {
        let reason = own.reason.unwrap_or(ReasonCode::Unexpected);
        // Tenant-wide faults are for admins to fix; the owner's card would only frustrate.
        if !reason.is_tenant_wide() {
            cards.push(ActionCard {
                id: "office365-reconnect".into(),
                title: "Reconnect Office 365".into(),
                body: reason.explained(),
                button: "Reconnect".into(),
                action: CardAction::ConnectOffice365,
            });
        }
    }
    if facts.role == Role::Admin
        && let Some(expiry) = settings.secret_expiry(&facts.today)
    {
        cards.push(ActionCard {
            id: "office365-secret-expiry".into(),
            title: "Renew the Office 365 client secret".into(),
            body: format!(
                "{} Create a new client secret for the app registration in the Microsoft Entra admin center and \
                 enter it, with its expiry date, under Connection Settings.",
                expiry.sentence()
            ),
            button: "Open Connection Settings".into(),
            action: CardAction::Link("/settings/integrations/office365".into()),
        });
    }
    if facts.role == Role::Admin && facts.admin_consent.admin_action_needed(settings) {
        let body = match &facts.admin_consent.requested {
            Some(r) => format!(
                "{} could not connect Office 365: your Microsoft 365 organization only lets administrators \
                 approve Intelligence360. Grant consent once for everyone and members connect without being asked.",
                r.by
            ),
            None => "Service-account mode with application permissions needs a Microsoft 365 administrator to \
                     grant consent for the organization before anything can sync."
                .into(),
        };
        cards.push(ActionCard {
            id: "office365-admin-consent".into(),
            title: "Grant organization-wide consent".into(),
            body,
            button: "Grant consent".into(),
            action: CardAction::GrantAdminConsent,
        });
    }
    if facts.role == Role::Member && settings.setup_action_enabled && may_connect_own_account(facts) {
        cards.push(ActionCard {
            id: "office365-user-setup".into(),
            title: "Set up Office365 User Integration".into(),
            body: "Authorize Intelligence360 to access your Office 365 account so your mail, calendar, \
                   contacts and tasks appear here."
                .into(),
            button: "Connect Office 365".into(),
            action: CardAction::ConnectOffice365,
        });
    }
    cards
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(role: Role, enabled: bool) -> FeedFacts {
        FeedFacts {
            role,
            office365: Office365Settings { enabled, ..Office365Settings::default() },
            own_connection: None,
            admin_consent: crate::AdminConsent::default(),
            today: "2026-11-29".into(),
        }
    }

    /// An admin of an enabled organization whose own connection is active.
    fn activated_admin() -> FeedFacts {
        FeedFacts { own_connection: Some(OwnConnection { state: ConnectionState::Active, reason: None }), ..facts(Role::Admin, true) }
    }

    fn ids(f: &FeedFacts) -> Vec<String> {
        cards_for(f).into_iter().map(|c| c.id).collect()
    }

    #[test]
    fn admins_are_asked_to_set_up_office365_until_it_is_enabled() {
        let cards = cards_for(&facts(Role::Admin, false));
        assert_eq!(cards.len(), 1);
        assert_eq!(cards[0].title, "Set up the Office 365 integration");
        assert!(!ids(&facts(Role::Admin, true)).contains(&"office365-setup".to_string()));
    }

    #[test]
    fn once_enabled_admins_are_asked_to_activate_their_own_connection() {
        let f = facts(Role::Admin, true);
        let cards = cards_for(&f);
        assert_eq!(ids(&f), ["office365-activate"]);
        assert_eq!(cards[0].title, "Activate your connection");
        assert_eq!(cards[0].action, CardAction::Link("/settings/integrations/office365/my-connection".into()));
        assert!(ids(&facts(Role::Admin, false)).iter().all(|id| id != "office365-activate"), "not before Enable");
        let mut active = f.clone();
        active.own_connection = Some(OwnConnection { state: ConnectionState::Active, reason: None });
        assert!(ids(&active).is_empty(), "activated: nothing to do");
        let mut service = f.clone();
        service.office365.mode = crate::permissions::ConnectionMode::ServiceUser;
        assert!(!ids(&service).contains(&"office365-activate".to_string()), "individual mode only");
        assert!(!ids(&facts(Role::Member, true)).contains(&"office365-activate".to_string()), "members get the setup card");
    }

    #[test]
    fn members_get_the_setup_card_only_when_the_admin_switched_it_on() {
        assert!(ids(&facts(Role::Member, false)).is_empty());
        assert_eq!(ids(&facts(Role::Member, true)), ["office365-user-setup"]);
        let mut off = facts(Role::Member, true);
        off.office365.setup_action_enabled = false;
        assert!(ids(&off).is_empty());
        assert!(!may_connect_own_account(&facts(Role::Member, false)));
        assert!(may_connect_own_account(&off), "the profile prompt still shows");
    }

    #[test]
    fn service_account_mode_shows_members_no_connect_prompts() {
        let mut f = facts(Role::Member, true);
        f.office365.mode = crate::permissions::ConnectionMode::ApplicationPermissions;
        assert!(ids(&f).is_empty());
        assert!(!may_connect_own_account(&f));
    }

    #[test]
    fn a_connection_needing_attention_asks_its_owner_to_reconnect() {
        let mut f = facts(Role::Member, true);
        f.own_connection = Some(OwnConnection { state: ConnectionState::Active, reason: None });
        assert!(ids(&f).is_empty(), "connected: nothing to do");
        f.own_connection = Some(OwnConnection { state: ConnectionState::NeedsAttention, reason: Some(ReasonCode::RefreshTokenRevoked) });
        let cards = cards_for(&f);
        assert_eq!(cards.len(), 1);
        assert_eq!(cards[0].title, "Reconnect Office 365");
        assert!(cards[0].body.contains("revoked"), "{}", cards[0].body);
        f.own_connection = Some(OwnConnection { state: ConnectionState::NeedsAttention, reason: Some(ReasonCode::ClientSecretExpired) });
        assert!(ids(&f).is_empty(), "tenant-wide faults go to admins instead");
    }

    #[test]
    fn admins_are_asked_to_grant_consent_when_a_member_was_refused() {
        let mut f = activated_admin();
        f.admin_consent.requested = Some(crate::ConsentRequest { by: "Bob Member <bob@example.com>".into(), at: 1 });
        let cards = cards_for(&f);
        assert_eq!(cards.len(), 1);
        assert_eq!(cards[0].title, "Grant organization-wide consent");
        assert_eq!(cards[0].action, CardAction::GrantAdminConsent);
        assert!(cards[0].body.starts_with("Bob Member"), "{}", cards[0].body);
        let mut member = f.clone();
        member.role = Role::Member;
        assert!(!ids(&member).contains(&"office365-admin-consent".to_string()), "members cannot grant it");
    }

    #[test]
    fn admins_are_asked_to_renew_a_secret_that_lapses_soon() {
        let mut f = activated_admin();
        f.office365.own_app = true;
        f.office365.client_secret_expires_on = Some("2026-12-09".into());
        let cards = cards_for(&f);
        assert_eq!(ids(&f), ["office365-secret-expiry"]);
        assert!(cards[0].body.starts_with("The client secret expires on 2026-12-09, in 10 days."), "{}", cards[0].body);
        f.role = Role::Member;
        assert!(!ids(&f).contains(&"office365-secret-expiry".to_string()));
    }
}
