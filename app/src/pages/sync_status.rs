//! How a connection's sync is doing, in the words My Connection, Team connections and Profile show:
//! state, last and next sync, item counts, the last error and who must act.

use domain::views::SyncSummary;
use leptos::prelude::*;

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
            let error = s.error.map(|r| {
                view! {
                    <dt>"Last error"</dt>
                    <dd data-testid="sync-error">{r.explained()} " " <span class="muted">"(" {r.who_must_act().label()} ")"</span></dd>
                }
            });
            view! {
                <dt>"Sync"</dt><dd><SyncBadge summary=s.clone() testid="sync-state"/></dd>
                <dt>"Last sync"</dt><dd data-testid="last-sync">{when(s.last_sync, "Not synced yet")}</dd>
                <dt>"Next sync"</dt><dd data-testid="next-sync">{when(s.next_sync, "—")}</dd>
                <dt>"Items"</dt><dd data-testid="sync-counts">{s.counts_line()}</dd>
                {error}
            }
            .into_any()
        }
    }
}

/// The sync state as a coloured badge.
#[component]
pub fn SyncBadge(summary: SyncSummary, #[prop(optional)] testid: Option<&'static str>) -> impl IntoView {
    view! {
        <span class=format!("badge badge--{}", summary.state.tone().as_str()) data-testid=testid>{summary.state_label()}</span>
    }
}
