//! The frame around every signed-in page: the header with navigation and the account menu.

use crate::auth::use_session;
use domain::SessionUser;
use leptos::prelude::*;
use leptos_router::components::A;

#[component]
pub fn AppShell(user: SessionUser, children: Children) -> impl IntoView {
    let session = use_session();
    let is_admin = user.is_admin();
    let initials = user.initials();
    view! {
        <a class="skip-link" href="#main">"Skip to content"</a>
        <header class="topbar">
            <div class="topbar__inner">
                <A href="/" attr:class="brand">
                    <span class="brand__mark" aria-hidden="true">"i360"</span>
                    <span class="brand__name">"Intelligence360"</span>
                </A>
                <nav class="mainnav" aria-label="Main">
                    <A href="/" exact=true>"Actions"</A>
                    <A href="/activity">"Activity"</A>
                    <A href="/profile">"Profile"</A>
                    <Show when=move || is_admin>
                        <A href="/settings/integrations">"Settings"</A>
                    </Show>
                </nav>
                <div class="account">
                    <span class="avatar" aria-hidden="true">{initials}</span>
                    <span class="account__who">
                        <span class="account__name" data-testid="account-name">{user.display_name.clone()}</span>
                        <span class="account__meta">{user.org_name.clone()} " · " {user.role.label()}</span>
                    </span>
                    <ActionForm action=session.logout attr:class="account__logout">
                        <button type="submit" class="button button--ghost">"Sign out"</button>
                    </ActionForm>
                </div>
            </div>
        </header>
        <main id="main" class="page">{children()}</main>
    }
}
