//! `/connect/result`: where a connection attempt that did not work ends up. It says what happened
//! and what to do next in plain words, with Microsoft's error code for support.

use domain::{ReasonCode, Refusal};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn ConnectResultPage() -> impl IntoView {
    let query = use_query_map();
    let content = move || {
        let q = query.read();
        let code = q.get("code").filter(|c| c.starts_with("AADSTS") && c.len() <= 16 && c[6..].chars().all(|d| d.is_ascii_digit()));
        if q.get("consent").as_deref() == Some("forwarded") {
            (
                "Consent was granted at Microsoft".to_string(),
                "Microsoft reports that an administrator granted Intelligence360's permissions for the organization.".to_string(),
                "Nothing more here. Tell your Intelligence360 admin: members can connect now, and with application permissions the admin presses \"Check consent\" on the Admin consent tab.".to_string(),
                String::new(),
                None,
            )
        } else if let Some(reason) = q.get("reason").and_then(|r| ReasonCode::parse(&r)) {
            (
                "Office 365 was not connected".to_string(),
                reason.message().to_string(),
                reason.next_step().to_string(),
                reason.who_must_act().label().to_string(),
                code,
            )
        } else {
            let refusal = Refusal::parse(q.get("refused").as_deref().unwrap_or(""));
            (refusal.title().to_string(), String::new(), refusal.next_step().to_string(), String::new(), None)
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
