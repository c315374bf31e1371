//! How a connection's sync is doing, in the words My Connection, Team connections and Profile
//! show.

use crate::{Integration, Result};
use domain::views::SyncSummary;
use store::sync::{MailboxSyncState as S, SyncMailbox};

pub(crate) fn state_label(state: S, now: i64) -> String {
    match state {
        S::Paused(p) => p.label().to_owned(),
        S::Syncing => "Syncing".into(),
        S::Throttled { until } => format!("Microsoft asked us to wait; resumes in {} s", (until - now).max(0)),
        S::Failed(r) if r.is_transient() => "Will retry".into(),
        S::Failed(_) => "Last sync failed".into(),
        S::Waiting => "Waiting for its first sync".into(),
        S::UpToDate => "Up to date".into(),
    }
}

/// The most telling state wins: paused, failing, throttled, syncing, waiting, up to date.
fn rank(s: &S) -> u8 {
    match s {
        S::Paused(_) => 0,
        S::Failed(_) => 1,
        S::Throttled { .. } => 2,
        S::Syncing => 3,
        S::Waiting => 4,
        S::UpToDate => 5,
    }
}

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
        let Some(state_now) = statuses.iter().map(|s| s.state(now)).min_by_key(rank) else {
            return Ok(None);
        };
        let tone = match state_now {
            S::UpToDate | S::Syncing => "good",
            S::Waiting => "neutral",
            _ => "warn",
        };
        let mut counts: Vec<(String, u64)> = Vec::new();
        for r in statuses.iter().flat_map(|s| s.resources.iter()) {
            match counts.iter_mut().find(|(k, _)| k == r.resource.label()) {
                Some((_, n)) => *n += r.items,
                None => counts.push((r.resource.label().to_owned(), r.items)),
            }
        }
        let error = statuses
            .iter()
            .flat_map(|s| s.resources.iter())
            .filter(|r| r.last_error.is_some() && r.last_error_at >= r.last_success_at)
            .find_map(|r| r.last_error);
        Ok(Some(SyncSummary {
            state: state_label(state_now, now),
            tone: tone.into(),
            last_sync: statuses.iter().filter_map(|s| s.last_success_at()).min(),
            // Paused, or waiting for someone to act: no time can be promised.
            next_sync: match state_now {
                S::Paused(_) => None,
                S::Failed(r) if !r.is_transient() => None,
                _ => statuses.iter().map(|s| s.mailbox.next_due_at).min(),
            },
            counts,
            error: error.map(|r| format!("{} {}", r.message(), r.next_step())),
            who_must_act: error.map(|r| r.who_must_act().label().to_owned()),
        }))
    }

    /// The same for one connection, reading the organization's mailboxes itself.
    pub(crate) async fn connection_sync_summary(&self, org: domain::OrgId, connection: uuid::Uuid) -> Result<Option<SyncSummary>> {
        let mailboxes = self.store.sync_mailboxes_in_org(org).await?;
        self.sync_summary(&mailboxes, connection).await
    }
}
