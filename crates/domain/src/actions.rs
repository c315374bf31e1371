//! The Actions feed: cards that ask the signed-in person to do something, each with one button.
//!
//! Which cards appear is decided here, from facts the server gathered, so the rules are plain
//! functions that tests can pin down without a database or a browser.

use crate::{IntegrationStatus, Role};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionCard {
    /// Stable id for tests and analytics, e.g. `office365-setup`.
    pub id: String,
    pub title: String,
    pub body: String,
    pub button: String,
    pub href: String,
}

/// What the feed needs to know about the organization and the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedFacts {
    pub role: Role,
    pub office365: IntegrationStatus,
}

pub fn cards_for(facts: &FeedFacts) -> Vec<ActionCard> {
    let mut cards = Vec::new();
    if facts.role == Role::Admin && facts.office365 == IntegrationStatus::NotSetUp {
        cards.push(ActionCard {
            id: "office365-setup".into(),
            title: "Set up the Office 365 integration".into(),
            body: "Connect Intelligence360 to Microsoft 365 so your team's mail, calendar, contacts and \
                   tasks stay in sync."
                .into(),
            button: "Open Office 365 settings".into(),
            href: "/settings/integrations/office365".into(),
        });
    }
    cards
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admins_are_asked_to_set_up_office365_until_it_is_enabled() {
        let cards = cards_for(&FeedFacts { role: Role::Admin, office365: IntegrationStatus::NotSetUp });
        assert_eq!(cards.len(), 1);
        assert_eq!(cards[0].title, "Set up the Office 365 integration");
        let none = cards_for(&FeedFacts { role: Role::Admin, office365: IntegrationStatus::Enabled });
        assert!(none.is_empty());
    }

    #[test]
    fn members_are_not_asked_to_configure_anything() {
        let cards = cards_for(&FeedFacts { role: Role::Member, office365: IntegrationStatus::NotSetUp });
        assert!(cards.is_empty());
    }
}
