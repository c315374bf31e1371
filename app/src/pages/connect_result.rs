//! `/connect/result`: where a connection attempt that did not work ends up. It says what happened
//! and what to do next in plain words, with Microsoft's error code for support.

use domain::ReasonCode;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// Refusals the product itself decides, before or after Microsoft.
fn refusal(code: &str) -> (&'static str, &'static str) {
    match code {
        "expired" => (
            "This sign-in link has expired or was already used",
            "Sign-in links work once and for 10 minutes. Start the connection again from Intelligence360.",
        ),
        "other_session" => (
            "This sign-in was started somewhere else",
            "For your safety a connection must finish in the browser session that started it. Start again from this browser.",
        ),
        "not_enabled" => ("Office 365 is not enabled", "An admin has to enable the Office 365 integration first. If you cannot see it, contact your admin."),
        "service_account" => (
            "Your organization connects through a service account",
            "Your admins maintain one connection for everyone, so you do not need to connect your own account.",
        ),
        "admins_only" => ("Only admins can do this", "Ask an admin of your organization."),
        "not_service_user" => (
            "The connection mode changed",
            "A service user signs in only while the connection mode is \"Service account with a service user\". Check Connection Settings and start again.",
        ),
        "internal" => ("Something went wrong on our side", "Nothing was changed. Try again in a minute; if it keeps happening, contact support."),
        _ => ("That did not work", "Start the connection again from Intelligence360."),
    }
}

#[component]
pub fn ConnectResultPage() -> impl IntoView {
    let query = use_query_map();
    let content = move || {
        let q = query.read();
        let code = q.get("code").filter(|c| c.starts_with("AADSTS") && c.len() <= 16 && c[6..].chars().all(|d| d.is_ascii_digit()));
        if let Some(reason) = q.get("reason").and_then(|r| ReasonCode::parse(&r)) {
            (
                "Office 365 was not connected".to_string(),
                reason.message().to_string(),
                reason.next_step().to_string(),
                reason.who_must_act().label().to_string(),
                code,
            )
        } else {
            let (title, next) = refusal(q.get("refused").as_deref().unwrap_or(""));
            (title.to_string(), String::new(), next.to_string(), String::new(), None)
        }
    };
    view! {
        <Title text="Office 365 connection"/>
        <main class="centered-message connect-result" data-testid="connect-result">
            {move || {
                let (title, what, next, who, code) = content();
                view! {
                    <div class="empty-state__icon" aria-hidden="true">"!"</div>
                    <h1>{title}</h1>
                    <Show when={let what = what.clone(); move || !what.is_empty()}>
                        <p data-testid="what-happened">{what.clone()}</p>
                    </Show>
                    <p data-testid="next-step"><strong>"What to do: "</strong>{next}</p>
                    <Show when={let who = who.clone(); move || !who.is_empty()}>
                        <p class="muted">"Who needs to act: " {who.clone()}</p>
                    </Show>
                    <Show when={let code = code.clone(); move || code.is_some()}>
                        <p class="muted" data-testid="microsoft-code">"Microsoft error code for support: " <code>{code.clone()}</code></p>
                    </Show>
                    <p><a class="button button--primary" href="/">"Back to Intelligence360"</a></p>
                }
            }}
        </main>
    }
}
