//! `/settings/integrations/office365/my-connection` (admins): the admin's own Microsoft 365
//! connection, which is the organization's primary integration. Activate, Reconnect, Deactivate,
//! and the permissions Microsoft granted compared with what the settings need.

use crate::components::guard::Guarded;
use crate::error::AppError;
use crate::pages::office365::{Office365Header, Office365Tab};
use domain::ConnectionState;
use domain::permissions::ConnectionMode;
use domain::views::MyConnectionView;
use leptos::prelude::*;
use leptos_meta::Title;

#[server(endpoint = "load_my_connection")]
pub async fn load_my_connection() -> Result<MyConnectionView, AppError> {
    let admin = crate::auth::require_admin().await?;
    Ok(crate::state::office365()?.my_connection(&admin).await?)
}

/// "Sync now": every mailbox of the shown connection is due at once.
#[server(endpoint = "sync_my_connection_now")]
pub async fn sync_my_connection_now() -> Result<(), AppError> {
    let admin = crate::auth::require_admin().await?;
    Ok(crate::state::office365()?.sync_my_connection_now(&admin).await?)
}

#[server(endpoint = "deactivate_my_connection")]
pub async fn deactivate_my_connection() -> Result<(), AppError> {
    let admin = crate::auth::require_admin().await?;
    Ok(crate::state::office365()?.deactivate_my_connection(&admin).await?)
}

#[component]
pub fn MyConnectionPage() -> impl IntoView {
    let deactivate = ServerAction::<DeactivateMyConnection>::new();
    let sync_now = ServerAction::<SyncMyConnectionNow>::new();
    let data = Resource::new(move || (deactivate.version().get(), sync_now.version().get()), |_| load_my_connection());
    view! {
        <Title text="My Connection · Office 365"/>
        <Guarded admin_only=true page=move |_admin| {
            view! {
                <Office365Header active=Office365Tab::MyConnection crumb="My Connection"
                    lead="Sync mail, calendar events, contacts and To Do tasks through Microsoft Graph."/>
                <Suspense fallback=|| view! { <p class="muted">"Loading your connection…"</p> }>
                    {move || Suspend::new(async move {
                        match data.await {
                            Err(e) => view! { <p class="alert alert--error" role="alert">{e.to_string()}</p> }.into_any(),
                            Ok(v) => view! { <MyConnectionCard v deactivate sync_now/> }.into_any(),
                        }
                    })}
                </Suspense>
            }
        }/>
    }
}

#[component]
fn MyConnectionCard(
    v: MyConnectionView,
    deactivate: ServerAction<DeactivateMyConnection>,
    sync_now: ServerAction<SyncMyConnectionNow>,
) -> impl IntoView {
    if !v.enabled {
        return view! {
            <section class="card" data-testid="my-connection">
                <h2>"My Connection"</h2>
                <p>"Enable the integration under " <a href="/settings/integrations/office365">"Connection Settings"</a> " first."</p>
            </section>
        }
        .into_any();
    }
    let connected = v.connection.is_some();
    let (badge_tone, badge_text) = match &v.connection {
        Some(c) if c.state == ConnectionState::Active => ("good", c.state.label()),
        Some(c) => ("warn", c.state.label()),
        None => ("neutral", "Not active"),
    };
    let sync = v.sync.clone();
    let details = v.connection.clone().map(|c| {
        let account = match c.kind {
            domain::ConnectionKind::Application => format!("Application permissions (client ID {})", c.ms_username),
            _ => format!("{} ({})", c.ms_username, c.ms_name),
        };
        view! {
            <dl class="details">
                <dt>"Microsoft account"</dt><dd data-testid="ms-account">{account}</dd>
                <dt>"Tenant"</dt><dd><code>{c.ms_tenant_id.clone()}</code></dd>
                <dt>"Role"</dt><dd>{if c.kind.is_service() { "Service connection for the team" } else if c.is_primary { "Primary integration" } else { "Connection" }}</dd>
                <dt>"Connected"</dt><dd>{crate::pages::audit::format_time(c.updated_at)}</dd>
                <crate::pages::sync_status::SyncDetails summary=sync.clone()/>
            </dl>
        }
    });
    let (title, lead, action, purpose) = match v.mode {
        ConnectionMode::Individual => (
            "My Connection",
            "Your own Microsoft 365 account. Activating it makes it the organization's primary integration.",
            "/oauth/office365/start",
            Some("activate"),
        ),
        ConnectionMode::ServiceUser => (
            "Service connection (service user)",
            "One Microsoft 365 account with delegate access to the team's mailboxes signs in once. Activate and sign in with that account, not your own.",
            "/oauth/office365/start",
            Some("service_user"),
        ),
        ConnectionMode::ApplicationPermissions => (
            "Service connection (application permissions)",
            "No one signs in: a Microsoft 365 administrator grants consent for the organization, then Intelligence360 uses the app's own token.",
            "/oauth/office365/admin-consent/start",
            None,
        ),
    };
    let missing = v.missing.clone();
    let has_missing = !missing.is_empty();
    view! {
        <crate::components::ready::Ready/>
        <section class="card" data-testid="my-connection">
            <div class="switch-row">
                <div>
                    <h2>{title}</h2>
                    <p class="muted">{lead}</p>
                </div>
                <span class=format!("badge badge--{badge_tone}") data-testid="my-connection-state">{badge_text}</span>
            </div>
            {details}
            <div class="confirm__actions connection-actions">
                // A plain form: the browser leaves for Microsoft's sign-in (or admin consent) page.
                <form method="post" action=action>
                    {purpose.map(|p| view! { <input type="hidden" name="purpose" value=p/> })}
                    <button type="submit" class="button button--primary">{if connected { "Reconnect" } else { "Activate" }}</button>
                </form>
                <Show when=move || connected>
                    <ActionForm action=sync_now>
                        <button type="submit" class="button">"Sync now"</button>
                    </ActionForm>
                    <ActionForm action=deactivate>
                        <button type="submit" class="button">"Deactivate"</button>
                    </ActionForm>
                </Show>
            </div>
        </section>
        <section class="card granted-card">
            <h2>"Permissions: granted and needed"</h2>
            <Show when=move || has_missing>
                <ul class="alert alert--error missing-list" data-testid="missing-permissions">
                    {missing.iter().map(|m| view! { <li>{m.clone()}</li> }).collect_view()}
                </ul>
            </Show>
            <div class="table-wrap">
                <table class="permissions" data-testid="granted-table">
                    <thead><tr><th scope="col">"Permission the settings need"</th><th scope="col">"Granted by Microsoft"</th></tr></thead>
                    <tbody>
                        {v.permissions.into_iter().map(|(name, granted)| {
                            let shown = if !connected { "—" } else if granted { "Granted" } else { "Not granted" };
                            let key = name.clone();
                            view! {
                                <tr data-permission=key>
                                    <td><code>{name}</code></td>
                                    <td data-testid="granted">{shown}</td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
    }
    .into_any()
}
