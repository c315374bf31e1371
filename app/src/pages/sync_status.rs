//! How a connection's sync is doing, in the words My Connection, Team connections and Profile show:
//! state, last and next sync, item counts, the last error and who must act.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncSummary {
    /// "Up to date", "Syncing", "Paused: only the primary integration is polled", …
    pub state: String,
    /// CSS tone of the badge.
    pub tone: String,
    pub last_sync: Option<i64>,
    pub next_sync: Option<i64>,
    /// Items per resource.
    pub counts: Vec<(String, u64)>,
    /// The last error in plain words, and who must act on it.
    pub error: Option<String>,
    pub who_must_act: Option<String>,
}

#[cfg(feature = "ssr")]
pub fn state_label(state: store::sync::MailboxSyncState, now: i64) -> String {
    use store::sync::MailboxSyncState as S;
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

/// The sync of every mailbox of one connection, summed up. `None` when nothing is scheduled.
#[cfg(feature = "ssr")]
pub async fn summary_for_connection(
    state: &crate::state::AppState,
    org: domain::OrgId,
    connection: uuid::Uuid,
) -> Result<Option<SyncSummary>, crate::error::AppError> {
    let mailboxes = state.sync_store.sync_mailboxes_in_org(org).await?;
    summary_among(state, &mailboxes, connection).await
}

/// The same, from the organization's mailboxes already loaded (a page listing every connection
/// reads them once).
#[cfg(feature = "ssr")]
pub async fn summary_among(
    state: &crate::state::AppState,
    org_mailboxes: &[store::sync::SyncMailbox],
    connection: uuid::Uuid,
) -> Result<Option<SyncSummary>, crate::error::AppError> {
    use store::sync::MailboxSyncState as S;
    let now = store::now_unix();
    let mut statuses = Vec::new();
    for mb in org_mailboxes.iter().filter(|m| m.connection_id == connection) {
        if let Some(s) = state.sync_store.mailbox_status(mb.id).await? {
            statuses.push(s);
        }
    }
    let Some(first) = statuses.first() else { return Ok(None) };
    // The most telling state wins: paused, failing, throttled, syncing, waiting, up to date.
    let rank = |s: &S| match s {
        S::Paused(_) => 0,
        S::Failed(_) => 1,
        S::Throttled { .. } => 2,
        S::Syncing => 3,
        S::Waiting => 4,
        S::UpToDate => 5,
    };
    let state_now = statuses.iter().map(|s| s.state(now)).min_by_key(|s| rank(s)).unwrap_or(first.state(now));
    let tone = match state_now {
        S::UpToDate | S::Syncing => "good",
        S::Waiting => "neutral",
        _ => "warn",
    };
    let mut counts: Vec<(String, u64)> = Vec::new();
    for s in &statuses {
        for r in &s.resources {
            match counts.iter_mut().find(|(k, _)| k == r.resource.label()) {
                Some((_, n)) => *n += r.items,
                None => counts.push((r.resource.label().to_owned(), r.items)),
            }
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

fn when(t: Option<i64>, none: &'static str) -> String {
    t.map(crate::pages::audit::format_time).unwrap_or_else(|| none.to_owned())
}

/// `<dt>/<dd>` pairs for a details list.
#[component]
pub fn SyncDetails(summary: Option<SyncSummary>) -> impl IntoView {
    match summary {
        None => view! {
            <dt>"Sync"</dt><dd data-testid="sync-state">"Not scheduled yet"</dd>
        }
        .into_any(),
        Some(s) => {
            let counts = if s.counts.is_empty() {
                "—".to_owned()
            } else {
                s.counts.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(" · ")
            };
            let error = s.error.clone().map(|e| {
                let who = s.who_must_act.clone().unwrap_or_default();
                view! { <dt>"Last error"</dt><dd data-testid="sync-error">{e} " " <span class="muted">"(" {who} ")"</span></dd> }
            });
            view! {
                <dt>"Sync"</dt><dd><span class=format!("badge badge--{}", s.tone) data-testid="sync-state">{s.state.clone()}</span></dd>
                <dt>"Last sync"</dt><dd data-testid="last-sync">{when(s.last_sync, "Not synced yet")}</dd>
                <dt>"Next sync"</dt><dd data-testid="next-sync">{when(s.next_sync, "—")}</dd>
                <dt>"Items"</dt><dd data-testid="sync-counts">{counts}</dd>
                {error}
            }
            .into_any()
        }
    }
}
