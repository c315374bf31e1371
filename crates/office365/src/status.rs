//! How a connection's sync is doing, as My Connection, Team connections and Profile show it.

use crate::{Integration, Result};
use domain::Resource;
use domain::office365::Office365Settings;
use domain::views::{MailboxDelivery, SyncSummary};
use store::sync::SyncMailbox;

impl Integration {
    /// The sync of every mailbox of one connection, summed up, from the organization's mailboxes
    /// (a page listing every connection reads them once), with each synced mailbox's change
    /// delivery. `None` when nothing is scheduled.
    pub(crate) async fn sync_summary(
        &self,
        settings: &Office365Settings,
        org_mailboxes: &[SyncMailbox],
        connection: uuid::Uuid,
    ) -> Result<Option<SyncSummary>> {
        let now = store::now_unix();
        let mut statuses = Vec::new();
        for mb in org_mailboxes.iter().filter(|m| m.connection_id == connection) {
            if let Some(s) = self.store.mailbox_status(mb.id).await? {
                statuses.push(s);
            }
        }
        let change_delivery = self.change_delivery(settings, org_mailboxes, connection).await?;
        let Some(state) = statuses.iter().map(|s| s.state(now)).min_by_key(|s| s.urgency()) else {
            return Ok(None);
        };
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
        Ok(Some(SyncSummary {
            state,
            at: now,
            last_sync: statuses.iter().filter_map(|s| s.last_success_at()).min(),
            next_sync: state.has_next_sync().then(|| statuses.iter().map(|s| s.mailbox.next_due_at).min()).flatten(),
            counts,
            error,
            change_delivery,
            interval_minutes: settings.sync_interval_minutes,
        }))
    }

    /// How each synced (not paused) mailbox of the connection learns of changes; another
    /// person's mailbox is named after the service account user (or the member) it belongs to.
    async fn change_delivery(
        &self,
        settings: &Office365Settings,
        org_mailboxes: &[SyncMailbox],
        connection: uuid::Uuid,
    ) -> Result<Vec<MailboxDelivery>> {
        let synced: Vec<&SyncMailbox> = org_mailboxes.iter().filter(|m| m.connection_id == connection && m.paused.is_none()).collect();
        let (mut users, mut people) = (Vec::new(), Vec::new());
        if let Some(org) = synced.iter().find(|m| m.graph_user_id.is_some()).map(|m| m.org_id) {
            users = self.store.service_account_users(org).await?;
            people = self.store.users_in_org(org).await?;
        }
        let mut out = Vec::new();
        for mb in synced {
            let delivery = self.scheduler.engine().change_delivery(settings, mb).await?;
            let mailbox = mb.graph_user_id.as_ref().map(|id| {
                users
                    .iter()
                    .find(|u| u.ms_object_id.as_deref() == Some(id.as_str()))
                    .map(|u| u.display_name.clone())
                    .or_else(|| people.iter().find(|p| p.id == mb.user_id).map(|p| p.display_name.clone()))
                    .unwrap_or_else(|| id.clone())
            });
            out.push(MailboxDelivery { mailbox, delivery });
        }
        Ok(out)
    }

    /// The same for one connection, reading the organization's mailboxes itself.
    pub(crate) async fn connection_sync_summary(
        &self,
        settings: &Office365Settings,
        org: domain::OrgId,
        connection: uuid::Uuid,
    ) -> Result<Option<SyncSummary>> {
        let mailboxes = self.store.sync_mailboxes_in_org(org).await?;
        self.sync_summary(settings, &mailboxes, connection).await
    }
}
