//! `/settings/integrations` (admins): every integration and the state it is in.

use crate::components::guard::Guarded;
use crate::error::AppError;
use domain::views::IntegrationRow;
use leptos::prelude::*;
use leptos_meta::Title;

#[server(endpoint = "list_integrations")]
pub async fn list_integrations() -> Result<Vec<IntegrationRow>, AppError> {
    let admin = crate::auth::require_admin().await?;
    Ok(crate::state::office365()?.integrations(&admin).await?)
}

#[component]
pub fn IntegrationsPage() -> impl IntoView {
    let rows = Resource::new(|| (), |_| list_integrations());
    view! {
        <Title text="All Integrations"/>
        <Guarded admin_only=true page=move |_admin| {
            view! {
                <nav class="breadcrumbs" aria-label="Breadcrumb">
                    <span>"Settings"</span><span aria-hidden="true">"›"</span><span aria-current="page">"All Integrations"</span>
                </nav>
                <div class="page-head">
                    <div>
                        <h1>"All Integrations"</h1>
                        <p class="muted">"Connect Intelligence360 to the tools your team already uses."</p>
                    </div>
                    <a class="button" href="/settings/audit">"Audit log"</a>
                </div>
                <Suspense fallback=|| view! { <p class="muted">"Loading integrations…"</p> }>
                    {move || Suspend::new(async move {
                        match rows.await {
                            Ok(rows) => view! {
                                <ul class="integrations" data-testid="integrations">
                                    {rows.into_iter().map(|row| view! { <IntegrationItem row/> }).collect_view()}
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
fn IntegrationItem(row: IntegrationRow) -> impl IntoView {
    view! {
        <li class="card integration" data-integration=row.kind.slug()>
            <div class="integration__logo" aria-hidden="true">
                <svg viewBox="0 0 24 24" width="28" height="28">
                    <rect x="2" y="2" width="9.5" height="9.5" fill="#f25022"/>
                    <rect x="12.5" y="2" width="9.5" height="9.5" fill="#7fba00"/>
                    <rect x="2" y="12.5" width="9.5" height="9.5" fill="#00a4ef"/>
                    <rect x="12.5" y="12.5" width="9.5" height="9.5" fill="#ffb900"/>
                </svg>
            </div>
            <div class="integration__text">
                <h2>{row.kind.name()}</h2>
                <p class="muted">{row.kind.summary()}</p>
            </div>
            <span class=format!("badge badge--{}", row.status.tone()) data-testid="integration-status">
                {row.status.label()}
            </span>
            <a class="button" href=format!("/settings/integrations/{}", row.kind.slug())
                aria-label=format!("Open {} settings", row.kind.name())>"Settings"</a>
        </li>
    }
}
