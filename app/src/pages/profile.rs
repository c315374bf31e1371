//! `/profile`: who you are, and your Office 365 connection.

use crate::components::guard::Guarded;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn ProfilePage() -> impl IntoView {
    view! {
        <Title text="Profile"/>
        <Guarded page=|user| view! {
            <div class="page-head">
                <div>
                    <h1>"Profile"</h1>
                    <p class="muted">"Your account and connected services."</p>
                </div>
            </div>
            <div class="grid-2">
                <section class="card">
                    <h2>"Your account"</h2>
                    <dl class="details">
                        <dt>"Name"</dt><dd>{user.display_name.clone()}</dd>
                        <dt>"Email"</dt><dd data-testid="profile-email">{user.email.to_string()}</dd>
                        <dt>"Organization"</dt><dd>{user.org_name.clone()}</dd>
                        <dt>"Role"</dt><dd>{user.role.label()}</dd>
                    </dl>
                </section>
                <section class="card" data-testid="profile-office365">
                    <h2>"Office 365"</h2>
                    <p>
                        <span class="badge badge--neutral">"Not connected"</span>
                    </p>
                    <p>"Office 365 has not been set up for " {user.org_name.clone()} " yet, so there is nothing to connect."</p>
                    <p class="muted">"If you cannot see it, contact your admin."</p>
                </section>
            </div>
        }/>
    }
}
