//! How a connection's sync is doing, as My Connection, Team connections and Profile show it.

use crate::{Integration, Result};
use domain::Resource;
use domain::views::SyncSummary;
use store::sync::SyncMailbox;

impl Integration {
    /// The sync of every mailbox of one connection, summed up, from the organization's mailboxes
    /// (a page listing every connection reads them once). `None` when nothing is scheduled.
    pub(crate) async fn sync_summary(&self, org_mailboxes: &[SyncMailbox], connection: uuid::Uuid) -> Result<Option<SyncSummary>> {
        let now = store::now_unix();
        let mut statuses = Vec::new();
        for mb in org_mailboxes.iter().filter(|m| m.connection_id == connection) {
            if let Some(s) = self.store.mailbox_status(mb.id).await? {
                statuses.push(s);
            }
        }
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
        }))
    }

    /// The same for one connection, reading the organization's mailboxes itself.
    pub(crate) async fn connection_sync_summary(&self, org: domain::OrgId, connection: uuid::Uuid) -> Result<Option<SyncSummary>> {
        let mailboxes = self.store.sync_mailboxes_in_org(org).await?;
        self.sync_summary(&mailboxes, connection).await
    }
}
