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
