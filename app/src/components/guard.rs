//! Decides, for every page but sign-in, whether the visitor may see it: visitors go to `/login`,
//! members who open an admin page get a plain "ask your admin" page (HTTP 403), never a blank one.

use crate::auth::use_session;
use crate::components::shell::AppShell;
use domain::SessionUser;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Redirect;
use std::sync::Arc;

#[component]
pub fn Guarded<F, V>(
    /// Members see the "ask your admin" page instead.
    #[prop(optional)]
    admin_only: bool,
    /// The page, given the signed-in person.
    page: F,
) -> impl IntoView
where
    F: Fn(SessionUser) -> V + Send + Sync + 'static,
    V: IntoView + 'static,
{
    let session = use_session();
    let page = Arc::new(page);
    view! {
        <Suspense fallback=|| view! { <div class="page-loading" aria-busy="true">"Loading…"</div> }>
            {move || {
                let page = page.clone();
                Suspend::new(async move {
                    match session.user.await {
                        Ok(Some(user)) if admin_only && !user.is_admin() => {
                            view! { <AppShell user=user.clone()><AdminOnly user/></AppShell> }.into_any()
                        }
                        Ok(Some(user)) => {
                            view! { <AppShell user=user.clone()>{page(user)}<crate::components::ready::Ready/></AppShell> }.into_any()
                        }
                        Ok(None) => view! { <Redirect path="/login"/> }.into_any(),
                        Err(e) => {
                            view! {
                                <main class="centered-message">
                                    <h1>"We could not load your session"</h1>
                                    <p>{e.to_string()}</p>
                                    <a class="button" href="/login">"Sign in again"</a>
                                </main>
                            }
                                .into_any()
                        }
                    }
                })
            }}
        </Suspense>
    }
}

/// What a member sees on an admin page.
#[component]
fn AdminOnly(user: SessionUser) -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
        res.set_status(axum::http::StatusCode::FORBIDDEN);
    }
    view! {
        <Title text="Ask your admin"/>
        <section class="empty-state" data-testid="ask-your-admin">
            <div class="empty-state__icon" aria-hidden="true">"🔒"</div>
            <h1>"This page is for admins"</h1>
            <p>
                "Settings for " <strong>{user.org_name}</strong>
                " can only be changed by an admin. Ask your admin if something here needs to change."
            </p>
            <a class="button" href="/">"Back to Actions"</a>
        </section>
    }
}
