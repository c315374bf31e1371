//! `/login`: email and password. A wrong password says so next to the form and keeps the email.

use crate::auth::use_session;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Redirect;

#[component]
pub fn LoginPage() -> impl IntoView {
    let session = use_session();
    let login = session.login;
    let error = move || login.value().get().and_then(Result::err).map(|e| e.to_string());
    let pending = login.pending();

    view! {
        <Title text="Sign in"/>
        <Suspense>
            {move || Suspend::new(async move {
                // Already signed in: nothing to do here.
                matches!(session.user.await, Ok(Some(_))).then(|| view! { <Redirect path="/"/> })
            })}
        </Suspense>
        <crate::components::ready::Ready/>
        <main class="auth">
            <div class="auth__card">
                <div class="auth__brand">
                    <span class="brand__mark" aria-hidden="true">"i360"</span>
                    <span class="brand__name">"Intelligence360"</span>
                </div>
                <h1>"Sign in"</h1>
                <p class="muted">"Use the email and password your admin gave you."</p>
                <ActionForm action=login attr:class="form" attr:novalidate=true>
                    <div class="field">
                        <label for="email">"Email"</label>
                        <input id="email" name="email" type="email" autocomplete="username" required
                            autofocus placeholder="you@company.com"/>
                    </div>
                    <div class="field">
                        <label for="password">"Password"</label>
                        <input id="password" name="password" type="password" autocomplete="current-password" required/>
                    </div>
                    <Show when=move || error().is_some()>
                        <p class="alert alert--error" role="alert" data-testid="login-error">{error}</p>
                    </Show>
                    <button type="submit" class="button button--primary button--block" disabled=move || pending.get()>
                        {move || if pending.get() { "Signing in…" } else { "Sign in" }}
                    </button>
                </ActionForm>
            </div>
            <p class="auth__foot muted">"Trouble signing in? Ask your organization's admin."</p>
        </main>
    }
}
