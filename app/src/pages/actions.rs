//! `/`, the Actions feed: cards asking the signed-in person to do something.

use crate::components::guard::Guarded;
use crate::error::AppError;
use domain::ActionCard;
use leptos::prelude::*;
use leptos_meta::Title;

#[server(endpoint = "action_cards")]
pub async fn action_cards() -> Result<Vec<ActionCard>, AppError> {
    let user = crate::auth::require_user().await?;
    Ok(crate::state::office365()?.action_cards(&user).await?)
}

#[component]
pub fn ActionsPage() -> impl IntoView {
    // Created here, not inside the guard's async block, so server and browser create resources in
    // the same order and hydration finds the data it expects.
    let cards = Resource::new(|| (), |_| action_cards());
    view! {
        <Title text="Actions"/>
        <Guarded page=move |user| {
            view! {
                <div class="page-head">
                    <div>
                        <h1>"Actions"</h1>
                        <p class="muted">"Hello " {user.display_name} ". Things that need you show up here."</p>
                    </div>
                </div>
                <Suspense fallback=|| view! { <p class="muted">"Loading actions…"</p> }>
                    {move || Suspend::new(async move {
                        match cards.await {
                            Ok(cards) if cards.is_empty() => view! { <EmptyFeed/> }.into_any(),
                            Ok(cards) => view! {
                                <ul class="cards" data-testid="action-cards">
                                    {cards.into_iter().map(|c| view! { <Card card=c/> }).collect_view()}
                                </ul>
                            }.into_any(),
                            Err(e) => view! { <p class="alert alert--error" role="alert">{e.to_string()}</p> }.into_any(),
                        }
                    })}
                </Suspense>
            }
        }/>
    }
}

#[component]
fn Card(card: ActionCard) -> impl IntoView {
    view! {
        <li class="card action-card" data-action=card.id.clone()>
            <div class="action-card__body">
                <h2>{card.title}</h2>
                <p>{card.body}</p>
            </div>
            {match card.action {
                domain::CardAction::Link(href) => view! { <a class="button button--primary" href=href>{card.button}</a> }.into_any(),
                // A plain form: the browser leaves for Microsoft's sign-in page.
                domain::CardAction::ConnectOffice365 => view! {
                    <form method="post" action="/oauth/office365/start">
                        <input type="hidden" name="purpose" value="connect"/>
                        <button type="submit" class="button button--primary">{card.button}</button>
                    </form>
                }.into_any(),
                domain::CardAction::GrantAdminConsent => view! {
                    <form method="post" action="/oauth/office365/admin-consent/start">
                        <button type="submit" class="button button--primary">{card.button}</button>
                    </form>
                }.into_any(),
            }}
        </li>
    }
}

#[component]
fn EmptyFeed() -> impl IntoView {
    view! {
        <section class="empty-state" data-testid="actions-empty">
            <div class="empty-state__icon" aria-hidden="true">"✓"</div>
            <h2>"You're all caught up"</h2>
            <p>"Nothing needs your attention right now. New actions, like connecting an account, will appear here."</p>
        </section>
    }
}
