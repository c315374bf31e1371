//! How a connection's sync is doing, in the words My Connection, Team connections and Profile show:
//! state, last and next sync, item counts, the last error and who must act, and each mailbox's
//! change delivery (Microsoft's change notifications, or polling and why).

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
            let delivery = (!s.change_delivery.is_empty()).then(|| {
                view! { <dt>"Change delivery"</dt><dd><ChangeDeliveryLines summary=s.clone()/></dd> }
            });
            view! {
                <dt>"Sync"</dt><dd><SyncBadge summary=s.clone() testid="sync-state"/></dd>
                {delivery}
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

/// How the connection's mailboxes learn of changes: "Live (change notifications)" or "Polling
/// every N minutes" with the reason in one short line; a line per mailbox when they differ.
#[component]
pub fn ChangeDeliveryLines(summary: SyncSummary) -> impl IntoView {
    summary
        .change_delivery_lines()
        .into_iter()
        .map(|l| {
            let class = if l.live { "change-delivery change-delivery--live" } else { "change-delivery" };
            view! {
                <div class=class data-testid="change-delivery" data-live=l.live.to_string()>
                    {l.mailbox.map(|m| view! { <span class="change-delivery__mailbox">{m} ": "</span> })}
                    <span data-testid="change-delivery-label">{l.label}</span>
                    {l.why.map(|w| view! { <span class="change-delivery__why muted" data-testid="change-delivery-why">{w}</span> })}
                </div>
            }
        })
        .collect_view()
}
