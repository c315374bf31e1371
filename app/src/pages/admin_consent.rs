//! `/settings/integrations/office365/admin-consent` (admins): where organization-wide consent stands
//! for the configured tenant and app registration, and the button that runs Microsoft's admin
//! consent flow.

use crate::components::guard::Guarded;
use crate::error::AppError;
use crate::pages::audit::format_time;
use crate::pages::office365::{Office365Header, Office365Tab};
use domain::ConsentStatus;
use domain::views::AdminConsentView;
use leptos::prelude::*;
use leptos_meta::Title;

#[server(endpoint = "load_admin_consent")]
pub async fn load_admin_consent() -> Result<AdminConsentView, AppError> {
    let admin = crate::auth::require_admin().await?;
    Ok(crate::state::office365()?.admin_consent_view(&admin).await?)
}

#[server(endpoint = "check_application_consent")]
pub async fn check_application_consent() -> Result<(), AppError> {
    let admin = crate::auth::require_admin().await?;
    Ok(crate::state::office365()?.check_application_consent(&admin).await?)
}

#[component]
pub fn AdminConsentPage() -> impl IntoView {
    let check = ServerAction::<CheckApplicationConsent>::new();
    let data = Resource::new(move || check.version().get(), |_| load_admin_consent());
    view! {
        <Title text="Admin consent · Office 365"/>
        <Guarded admin_only=true page=move |_admin| {
            view! {
                <Office365Header active=Office365Tab::AdminConsent crumb="Admin consent"
                    lead="Consent once for the whole organization, so members connect without being asked."/>
                <Suspense fallback=|| view! { <p class="muted">"Loading consent…"</p> }>
                    {move || Suspend::new(async move {
                        match data.await {
                            Err(e) => view! { <p class="alert alert--error" role="alert">{e.to_string()}</p> }.into_any(),
                            Ok(v) => view! { <ConsentCard v check/> }.into_any(),
                        }
                    })}
                </Suspense>
            }
        }/>
    }
}

#[component]
fn ConsentCard(v: AdminConsentView, check: ServerAction<CheckApplicationConsent>) -> impl IntoView {
    if !v.enabled {
        return view! {
            <section class="card" data-testid="admin-consent">
                <h2>"Organization-wide consent"</h2>
                <p>"Enable the integration and enter the app registration under "
                    <a href="/settings/integrations/office365">"Connection Settings"</a> " first."</p>
            </section>
        }
        .into_any();
    }
    let tone = match v.status {
        ConsentStatus::Granted => "good",
        ConsentStatus::Requested | ConsentStatus::Required | ConsentStatus::Insufficient => "warn",
        ConsentStatus::NotGranted => "neutral",
    };
    let request = v.consent.requested.clone().map(|r| {
        view! {
            <p class="alert alert--warn" data-testid="consent-request">
                {r.by} " tried to connect on " {format_time(r.at)}
                ", and Microsoft answered that only an administrator can approve Intelligence360 in this organization."
            </p>
        }
    });
    let grant = v.consent.granted.clone().map(|g| {
        // Microsoft names them with the resource prefix; people know them by the short name.
        let scopes = if g.scopes.is_empty() {
            view! { <span>"As configured on the app registration"</span> }.into_any()
        } else {
            let mut names: Vec<String> = g.scopes.iter().map(|s| domain::permissions::permission_name(s).to_owned()).collect();
            names.sort();
            names.dedup();
            view! { <ul class="chips">{names.into_iter().map(|n| view! { <li><code>{n}</code></li> }).collect_view()}</ul> }.into_any()
        };
        view! {
            <dl class="details" data-testid="consent-grant">
                <dt>"Granted by"</dt><dd>{g.by}</dd>
                <dt>"When"</dt><dd>{format_time(g.at)}</dd>
                <dt>"Tenant"</dt><dd><code>{g.tenant_id}</code></dd>
                <dt>"Application (client) ID"</dt><dd><code>{g.client_id}</code></dd>
                <dt>"Permissions"</dt><dd class="scopes">{scopes}</dd>
            </dl>
        }
    });
    let stale = v.grant_is_for_another_app.then(|| {
        view! {
            <p class="alert alert--warn">"The consent on record was given for a different app registration. Grant it again for the current one."</p>
        }
    });
    // The consent doctor: what new consent the current settings need, and what is granted beyond them.
    let missing = (!v.missing.is_empty() && v.consent.granted.is_some()).then(|| {
        view! {
            <p class="alert alert--warn" data-testid="consent-missing">
                "The settings now need permissions the consent on record does not include: "
                {v.missing.join(", ")}
                ". Nothing is widened without you: grant consent again for exactly what is asked below."
            </p>
        }
    });
    let excess = (!v.excess.is_empty()).then(|| {
        view! {
            <p class="alert alert--warn" data-testid="consent-excess">
                "Microsoft granted more than the current settings need: " {v.excess.join(", ")}
                ". An administrator can remove those permissions in the Microsoft Entra admin center (Enterprise applications)."
            </p>
        }
    });
    let asks_lead = if v.application {
        "Application permissions are fixed on the app registration: Microsoft's admin consent grants every one it lists. Intelligence360 uses these, and warns above if more were granted:"
    } else {
        "Exactly these delegated permissions, for the current mode, access level and resources:"
    };
    let asks = view! {
        <div data-testid="consent-asks">
            <h3>"What consent asks for"</h3>
            <p class="muted">{asks_lead}</p>
            <ul class="chips">{v.requested.iter().map(|n| view! { <li><code>{n.clone()}</code></li> }).collect_view()}</ul>
        </div>
    };
    // For an admin who cannot consent: Microsoft's own link, for exactly these permissions.
    let forward = v.forward_link.clone().map(|link| {
        view! {
            <div data-testid="consent-forward">
                <h3>"Not a Microsoft 365 administrator?"</h3>
                <p class="muted">"Send this link to one (a Global Administrator, Privileged Role Administrator or Cloud "
                    "Application Administrator). It asks Microsoft for exactly the permissions above; no Intelligence360 account is needed."</p>
                <p><input type="text" readonly=true class="forward-link" aria-label="Admin consent link to forward" value=link/></p>
            </div>
        }
    });
    let check_button = (v.application && v.status != ConsentStatus::Granted).then(|| {
        let result = move || check.value().get();
        view! {
            <ActionForm action=check>
                <button type="submit" class="button" data-testid="check-consent">"Check consent"</button>
            </ActionForm>
            {move || match result() {
                Some(Err(e)) => Some(view! { <p class="alert alert--error" role="alert" data-testid="check-consent-error">{e.to_string()}</p> }),
                _ => None,
            }}
        }
    });
    let button = if v.status == ConsentStatus::Granted { "Grant consent again" } else { "Grant organization-wide consent" };
    view! {
        <section class="card" data-testid="admin-consent">
            <div class="switch-row">
                <div>
                    <h2>"Organization-wide consent"</h2>
                    <p class="muted">
                        "Microsoft's admin consent approves Intelligence360's permissions for everyone in tenant "
                        <code>{v.tenant}</code> " (application " <code>{v.client_id}</code> "). "
                        "It is needed when your organization does not let users approve apps themselves, and for "
                        "service-account mode with application permissions."
                    </p>
                </div>
                <span class=format!("badge badge--{tone}") data-testid="consent-status">{v.status.label()}</span>
            </div>
            {request}
            {stale}
            {missing}
            {excess}
            {grant}
            {asks}
            <p class="muted">"You will sign in to Microsoft with an account that may grant consent for the organization "
                "(a Global Administrator, Privileged Role Administrator or Cloud Application Administrator) and tick "
                "\"Consent on behalf of your organization\". If that is not you, ask one of them to sign in to "
                "Intelligence360 as an admin and press this button, or to grant these permissions to Intelligence360 "
                "in the Microsoft Entra admin center."</p>
            // A plain form: the browser leaves for Microsoft's admin consent page.
            <form method="post" action="/oauth/office365/admin-consent/start">
                <button type="submit" class="button button--primary" data-testid="grant-consent">{button}</button>
            </form>
            {check_button}
            {forward}
        </section>
    }
    .into_any()
}
