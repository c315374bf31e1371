//! How a connection's sync is doing, as My Connection, Team connections and Profile show it.
//!
//! A page reads the organization's mailboxes it shows once ([`Integration::org_sync`]: their
//! status with the item counts kept as pages commit, cursors and subscriptions, filtered by the
//! database), and everything it shows is worked out from that read: the number of statements a
//! page view runs does not grow with the number of mailboxes.

use crate::{Integration, Result};
use domain::office365::Office365Settings;
use domain::views::{MailboxDelivery, SyncSummary};
use domain::{OrgId, Resource, ServiceAccountUser};
use std::collections::HashMap;
use store::User;
use store::sync::{MailboxFilter, MailboxOverview, MailboxStatus};

/// The mailboxes a page shows, read once, with what names other people's mailboxes.
pub(crate) struct OrgSync {
    pub(crate) mailboxes: Vec<MailboxOverview>,
    /// The service account users and the members, read only when a synced mailbox is someone
    /// else's (a service connection's).
    users: Vec<ServiceAccountUser>,
    people: Vec<User>,
}

impl Integration {
    /// The organization's mailboxes that `filter` selects, with their status, cursors and
    /// subscriptions, in one read whatever their number.
    pub(crate) async fn org_sync(&self, org: OrgId, filter: MailboxFilter) -> Result<OrgSync> {
        let mailboxes = self.store.org_sync_overview(org, &filter).await?;
        let (mut users, mut people) = (Vec::new(), Vec::new());
        if mailboxes.iter().any(|o| o.status.mailbox.graph_user_id.is_some() && o.status.mailbox.paused.is_none()) {
            users = self.store.service_account_users(org).await?;
            people = self.store.users_in_org(org).await?;
        }
        Ok(OrgSync { mailboxes, users, people })
    }

    /// The sync of every mailbox of one connection, summed up, with each synced mailbox's change
    /// delivery; `None` when nothing is scheduled. Reads nothing: `sync` has it all.
    pub(crate) fn sync_summary(&self, settings: &Office365Settings, sync: &OrgSync, connection: uuid::Uuid) -> Option<SyncSummary> {
        let now = store::now_unix();
        let mine: Vec<&MailboxOverview> = sync.mailboxes.iter().filter(|o| o.status.mailbox.connection_id == connection).collect();
        let statuses: Vec<&MailboxStatus> = mine.iter().map(|o| &o.status).collect();
        let state = statuses.iter().map(|s| s.state(now)).min_by_key(|s| s.urgency())?;
        let mut counts: Vec<(Resource, u64)> = Vec::new();
        for r in statuses.iter().flat_map(|s| s.resources.iter()) {
            match counts.iter_mut().find(|(k, _)| *k == r.resource) {
                Some((_, n)) => *n += r.items,
                None => counts.push((r.resource, r.items)),
            }
        }
        let error = statuses
            .iter()
            .flat_map(|s| s.resources.iter())
            .filter(|r| r.last_error.is_some() && r.last_error_at >= r.last_success_at)
            .find_map(|r| r.last_error);
        Some(SyncSummary {
            state,
            at: now,
            last_sync: statuses.iter().filter_map(|s| s.last_success_at()).min(),
            next_sync: state.has_next_sync().then(|| statuses.iter().map(|s| s.mailbox.next_due_at).min()).flatten(),
            counts,
            error,
            change_delivery: self.change_delivery(settings, sync, &mine),
            interval_minutes: settings.sync_interval_minutes,
        })
    }

    /// How each synced (not paused) mailbox of the connection learns of changes; another
    /// person's mailbox is named after the service account user (or the member) it belongs to.
    fn change_delivery(&self, settings: &Office365Settings, sync: &OrgSync, mine: &[&MailboxOverview]) -> Vec<MailboxDelivery> {
        let synced: Vec<&MailboxOverview> = mine.iter().copied().filter(|o| o.status.mailbox.paused.is_none()).collect();
        let deliveries = self.scheduler.engine().change_deliveries(settings, synced.iter().copied());
        // Looked up once each: a service account may sync thousands of mailboxes.
        let users: HashMap<&str, &str> =
            sync.users.iter().filter_map(|u| Some((u.ms_object_id.as_deref()?, u.display_name.as_str()))).collect();
        let people: HashMap<domain::UserId, &str> = sync.people.iter().map(|p| (p.id, p.display_name.as_str())).collect();
        synced
            .iter()
            .zip(deliveries)
            .map(|(o, delivery)| {
                let mb = &o.status.mailbox;
                let mailbox = mb.graph_user_id.as_ref().map(|id| {
                    users.get(id.as_str()).or_else(|| people.get(&mb.user_id)).map_or_else(|| id.clone(), |name| name.to_string())
                });
                MailboxDelivery { mailbox, delivery }
            })
            .collect()
    }

    /// The same for one connection, reading only its mailboxes.
    pub(crate) async fn connection_sync_summary(
        &self,
        settings: &Office365Settings,
        org: OrgId,
        connection: uuid::Uuid,
    ) -> Result<Option<SyncSummary>> {
        let sync = self.org_sync(org, MailboxFilter { connection: Some(connection), ..MailboxFilter::default() }).await?;
        Ok(self.sync_summary(settings, &sync, connection))
    }
}
