//! `/profile`: who you are, and your Office 365 connection.

use crate::components::guard::Guarded;
use crate::error::AppError;
use domain::views::ProfileOffice365;
use leptos::prelude::*;
use leptos_meta::Title;

#[server(endpoint = "load_profile_office365")]
pub async fn load_profile_office365() -> Result<ProfileOffice365, AppError> {
    let user = crate::auth::require_user().await?;
    Ok(crate::state::office365()?.profile(&user).await?)
}

/// Disconnect: deletes the person's own connection and its tokens, and records it.
#[server(endpoint = "disconnect_own_office365")]
pub async fn disconnect_own_office365() -> Result<(), AppError> {
    let user = crate::auth::require_user().await?;
    Ok(crate::state::office365()?.disconnect_own(&user).await?)
}

#[component]
pub fn ProfilePage() -> impl IntoView {
    let disconnect = ServerAction::<DisconnectOwnOffice365>::new();
    let office365 = Resource::new(move || disconnect.version().get(), |_| load_profile_office365());
    view! {
        <Title text="Profile"/>
        <Guarded page=move |user| {
            let org_name = user.org_name.clone();
            view! {
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
                    <Suspense fallback=|| view! { <section class="card"><p class="muted">"Loading…"</p></section> }>
                        {
                            let org_name = org_name.clone();
                            move || {
                                let org_name = org_name.clone();
                                Suspend::new(async move {
                                    match office365.await {
                                        Err(e) => view! { <section class="card"><p class="alert alert--error">{e.to_string()}</p></section> }.into_any(),
                                        Ok(o) => view! { <Office365Card o org_name disconnect/> }.into_any(),
                                    }
                                })
                            }
                        }
                    </Suspense>
                </div>
            }
        }/>
    }
}

#[component]
fn Office365Card(o: ProfileOffice365, org_name: String, disconnect: ServerAction<DisconnectOwnOffice365>) -> impl IntoView {
    let body = match (&o.connection, o.enabled, o.service_account) {
        (Some(c), _, _) => {
            // Not a green "Connected" while nothing syncs: the badge and a sentence say why.
            let status = o.own_status();
            let tone = status.as_ref().map_or(domain::Tone::Neutral, |s| s.tone);
            let label = status.as_ref().map_or("", |s| s.label);
            let explanation = status.and_then(|s| s.explanation);
            let reason = c.reason.map(|r| r.explained());
            view! {
                <p><span class=format!("badge badge--{}", tone.as_str()) data-testid="profile-connection-state">{label}</span></p>
                {explanation.map(|e| {
                    let class = if tone == domain::Tone::Warn { "alert alert--warn" } else { "alert" };
                    view! { <p class=class data-testid="profile-sync-note">{e}</p> }
                })}
                <dl class="details">
                    <dt>"Microsoft account"</dt><dd data-testid="profile-ms-account">{c.ms_username.clone()}</dd>
                    <dt>"Connected"</dt><dd>{crate::pages::audit::format_time(c.updated_at)}</dd>
                    <crate::pages::sync_status::SyncDetails summary=o.sync.clone()/>
                </dl>
                {reason.map(|r| view! { <p class="alert alert--error" data-testid="profile-reason">{r}</p> })}
                <div class="confirm__actions connection-actions">
                    {(c.state == domain::ConnectionState::NeedsAttention).then(|| view! {
                        // A plain form: the browser leaves for Microsoft's sign-in page.
                        <form method="post" action="/oauth/office365/start">
                            <input type="hidden" name="purpose" value="connect"/>
                            <button type="submit" class="button button--primary">"Reconnect"</button>
                        </form>
                    })}
                    <ActionForm action=disconnect>
                        <button type="submit" class="button">"Disconnect"</button>
                    </ActionForm>
                </div>
            }
            .into_any()
        }
        (None, true, false) => view! {
            <p><span class="badge badge--neutral" data-testid="profile-connection-state">"Not connected"</span></p>
            <p>"Connect your Office 365 account so your mail, calendar, contacts and tasks appear in Intelligence360."</p>
            <form method="post" action="/oauth/office365/start" data-testid="profile-connect">
                <input type="hidden" name="purpose" value="connect"/>
                <button type="submit" class="button button--primary">"Connect Office 365"</button>
            </form>
        }
        .into_any(),
        (None, true, true) => view! {
            <p><span class="badge badge--good" data-testid="profile-connection-state">"Managed by your admins"</span></p>
            <p>{format!("{org_name} connects to Office 365 through a service account that your admins maintain, so there is nothing for you to connect.")}</p>
            <p class="muted">"If you cannot see your data, contact your admin."</p>
        }
        .into_any(),
        (None, false, _) => view! {
            <p><span class="badge badge--neutral" data-testid="profile-connection-state">"Not connected"</span></p>
            <p>{format!("Office 365 has not been set up for {org_name} yet, so there is nothing to connect.")}</p>
            <p class="muted">"If you cannot see it, contact your admin."</p>
        }
        .into_any(),
    };
    view! {
        <section class="card" data-testid="profile-office365">
            <crate::components::ready::Ready/>
            <h2>"Office 365"</h2>
            {body}
        </section>
    }
}
