//! `/activity`: the signed-in person's synced mail, events, contacts and tasks.

use crate::components::guard::Guarded;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn ActivityPage() -> impl IntoView {
    view! {
        <Title text="Activity"/>
        <Guarded page=|_user| view! {
            <div class="page-head">
                <div>
                    <h1>"Activity"</h1>
                    <p class="muted">"Your synced emails, calendar events, contacts and tasks."</p>
                </div>
            </div>
            <section class="empty-state" data-testid="activity-empty">
                <div class="empty-state__icon" aria-hidden="true">"✉"</div>
                <h2>"Nothing synced yet"</h2>
                <p>"Once your Office 365 account is connected, your mail, calendar, contacts and tasks appear here."</p>
            </section>
        }/>
    }
}
