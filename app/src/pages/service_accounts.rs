//! `/settings/integrations/office365/service-accounts` (admins): in service-account mode, the team
//! members whose mailboxes the service connection syncs. Picked from the Microsoft directory or
//! added by address; each row says whether the service connection can open the mailbox.

use crate::components::guard::Guarded;
use crate::error::AppError;
use crate::pages::audit::format_time;
use crate::pages::office365::{Office365Header, Office365Tab};
use domain::permissions::ConnectionMode;
use domain::{MailboxHealth, ServiceAccountUser};
use leptos::prelude::*;
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAccountsView {
    pub enabled: bool,
    pub mode: ConnectionMode,
    /// The service connection exists (mailboxes can be checked and searched).
    pub activated: bool,
    pub users: Vec<ServiceAccountUser>,
}

/// One person found in the Microsoft directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryPerson {
    pub id: String,
    pub name: String,
    pub address: String,
}

#[server(endpoint = "load_service_accounts")]
pub async fn load_service_accounts() -> Result<ServiceAccountsView, AppError> {
    let admin = crate::auth::require_admin().await?;
    let state = crate::state::app_state()?;
    let settings = state.store.office365_settings(admin.org_id).await?;
    let activated = state.store.service_connection(admin.org_id).await?.is_some_and(|c| c.kind == domain::ConnectionKind::for_mode(settings.mode));
    Ok(ServiceAccountsView {
        enabled: settings.enabled,
        mode: settings.mode,
        activated,
        users: state.store.service_account_users(admin.org_id).await?,
    })
}

/// What a directory search found, or why it could not search (shown next to the search box; a
/// refusal by Microsoft is an answer, not a failed request).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DirectorySearchResult {
    Found(Vec<DirectoryPerson>),
    Problem(String),
}

#[server(endpoint = "search_directory")]
pub async fn search_directory(query: String) -> Result<DirectorySearchResult, AppError> {
    let admin = crate::auth::require_admin().await?;
    let state = crate::state::app_state()?;
    let query = query.trim().to_owned();
    if query.is_empty() {
        return Ok(DirectorySearchResult::Problem("Type the start of a name or an email address.".into()));
    }
    let settings = state.store.office365_settings(admin.org_id).await?;
    let token = match crate::service::service_token(&state, admin.org_id, &settings).await {
        Ok((_, token)) => token,
        Err(crate::service::ServiceFailure::Store(e)) => return Err(e.into()),
        Err(e) => return Ok(DirectorySearchResult::Problem(e.to_string())),
    };
    let found = match state.microsoft.search_users(&token, &query, 10).await {
        Ok(found) => found,
        Err(e) if e.reason == domain::ReasonCode::PermissionMissing => {
            return Ok(DirectorySearchResult::Problem(
                "Microsoft did not allow a directory search with this connection (it needs the User.Read.All \
                 permission). Add people by their email address instead."
                    .into(),
            ));
        }
        Err(e) => return Ok(DirectorySearchResult::Problem(format!("{} {}", e.reason.message(), e.reason.next_step()))),
    };
    Ok(DirectorySearchResult::Found(found
        .into_iter()
        .filter_map(|u| {
            let address = u.mail.clone().or(u.user_principal_name.clone())?;
            Some(DirectoryPerson { name: u.display_name.clone().unwrap_or_else(|| address.clone()), id: u.id, address })
        })
        .collect()))
}

/// Adds a person; `Ok(Some(message))` when what was typed cannot be added (shown by the form).
#[server(endpoint = "add_service_account_user")]
pub async fn add_service_account_user(
    address: String,
    name: Option<String>,
    directory_id: Option<String>,
) -> Result<Option<String>, AppError> {
    let admin = crate::auth::require_admin().await?;
    let state = crate::state::app_state()?;
    let Ok(address) = domain::EmailAddress::parse(&address) else {
        return Ok(Some("Enter the person's Microsoft 365 email address, like name@company.com.".into()));
    };
    let settings = state.store.office365_settings(admin.org_id).await?;
    if !settings.is_service_account() {
        return Ok(Some("Service account users are only used in service-account mode. Choose it under Connection Settings first.".into()));
    }
    let user = ServiceAccountUser {
        id: uuid::Uuid::new_v4(),
        ms_object_id: directory_id.filter(|d| !d.trim().is_empty()),
        ms_username: address.to_string(),
        display_name: name.filter(|n| !n.trim().is_empty()).unwrap_or_else(|| address.to_string()),
        added_by: admin.audit_label(),
        added_at: store::now_unix(),
        health: None,
        health_at: None,
    };
    let audit = domain::AuditEntry {
        at: user.added_at,
        actor: admin.audit_label(),
        action: "office365.service_user_added".into(),
        summary: format!("Added {address} to the mailboxes the service connection syncs."),
    };
    if !state.store.add_service_account_user(admin.org_id, &user, &audit).await? {
        return Ok(Some(format!("{address} is already in the list.")));
    }
    // Check the mailbox now when the service connection is there; otherwise activation does it.
    if let Ok((_, token)) = crate::service::service_token(&state, admin.org_id, &settings).await {
        crate::service::check_mailboxes(&state, admin.org_id, &token, &[user]).await?;
    }
    crate::service::reconcile_sync(&state, admin.org_id).await;
    Ok(None)
}

#[server(endpoint = "remove_service_account_user")]
pub async fn remove_service_account_user(id: String) -> Result<(), AppError> {
    let admin = crate::auth::require_admin().await?;
    let state = crate::state::app_state()?;
    let id: uuid::Uuid = id.parse().map_err(|_| AppError::invalid("That person is not in the list."))?;
    let Some(user) = state.store.service_account_users(admin.org_id).await?.into_iter().find(|u| u.id == id) else {
        return Err(AppError::invalid("That person is no longer in the list.").respond());
    };
    let audit = domain::AuditEntry {
        at: store::now_unix(),
        actor: admin.audit_label(),
        action: "office365.service_user_removed".into(),
        summary: format!("Removed {} from the mailboxes the service connection syncs.", user.ms_username),
    };
    state.store.remove_service_account_user(admin.org_id, id, &audit).await?;
    crate::service::reconcile_sync(&state, admin.org_id).await;
    Ok(())
}

#[component]
pub fn ServiceAccountsPage() -> impl IntoView {
    let add = ServerAction::<AddServiceAccountUser>::new();
    let remove = ServerAction::<RemoveServiceAccountUser>::new();
    let search = ServerAction::<SearchDirectory>::new();
    let data = Resource::new(move || (add.version().get(), remove.version().get()), |_| load_service_accounts());
    view! {
        <Title text="Service account users · Office 365"/>
        <Guarded admin_only=true page=move |_admin| view! {
            <Office365Header active=Office365Tab::ServiceAccounts crumb="Service account users"
                lead="The team members whose mailboxes the service connection syncs."/>
            <Suspense fallback=|| view! { <p class="muted">"Loading service account users…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <p class="alert alert--error" role="alert">{e.to_string()}</p> }.into_any(),
                        Ok(v) if !v.enabled || v.mode == ConnectionMode::Individual => view! {
                            <section class="card" data-testid="service-accounts-off">
                                <h2>"Service account users"</h2>
                                <p>"These are used in service-account mode, where one connection syncs the whole team. "
                                   "Your organization uses individual connections: each member connects their own account. "
                                   "You can change that under " <a href="/settings/integrations/office365">"Connection Settings"</a> "."</p>
                            </section>
                        }.into_any(),
                        Ok(v) => view! { <ServiceAccounts v add remove search/> }.into_any(),
                    }
                })}
            </Suspense>
        }/>
    }
}

#[component]
fn ServiceAccounts(
    v: ServiceAccountsView,
    add: ServerAction<AddServiceAccountUser>,
    remove: ServerAction<RemoveServiceAccountUser>,
    search: ServerAction<SearchDirectory>,
) -> impl IntoView {
    let add_error = move || {
        let message = match add.value().get() {
            Some(Ok(Some(problem))) => problem,
            Some(Err(e)) => e.to_string(),
            _ => return None,
        };
        Some(view! { <p class="field-error" role="alert" data-testid="add-error">{message}</p> })
    };
    let remove_error = move || match remove.value().get() {
        Some(Err(e)) => Some(view! { <p class="alert alert--error" role="alert">{e.to_string()}</p> }),
        _ => None,
    };
    let not_activated = (!v.activated).then(|| {
        view! {
            <p class="alert alert--warn" data-testid="service-not-activated">
                "The service connection is not active yet, so mailboxes cannot be checked or searched. "
                <a href="/settings/integrations/office365/my-connection">"Activate it under My Connection"</a> "."
            </p>
        }
    });
    let results = move || match search.value().get() {
        None => None,
        Some(Err(e)) => Some(view! { <p class="field-error" role="alert" data-testid="search-error">{e.to_string()}</p> }.into_any()),
        Some(Ok(DirectorySearchResult::Problem(p))) => Some(view! { <p class="field-error" role="alert" data-testid="search-error">{p}</p> }.into_any()),
        Some(Ok(DirectorySearchResult::Found(people))) if people.is_empty() => Some(view! { <p class="muted" data-testid="search-empty">"Nobody in the directory matches."</p> }.into_any()),
        Some(Ok(DirectorySearchResult::Found(people))) => Some(
            view! {
                <ul class="directory-results" data-testid="directory-results">
                    {people.into_iter().map(|p| {
                        let DirectoryPerson { id, name, address } = p;
                        let (shown_name, shown_address, key) = (name.clone(), address.clone(), address.clone());
                        view! {
                            <li data-address=key>
                                <span><strong>{shown_name}</strong> " " <span class="muted">{shown_address}</span></span>
                                <ActionForm action=add>
                                    <input type="hidden" name="address" value=address/>
                                    <input type="hidden" name="name" value=name/>
                                    <input type="hidden" name="directory_id" value=id/>
                                    <button type="submit" class="button">"Add"</button>
                                </ActionForm>
                            </li>
                        }
                    }).collect_view()}
                </ul>
            }
            .into_any(),
        ),
    };
    let users = v.users.clone();
    let empty = users.is_empty();
    view! {
        <crate::components::ready::Ready/>
        <div class="stack">
        {not_activated}
        <section class="card">
            <h2>"Add people"</h2>
            <div class="add-people">
                <ActionForm action=search attr:class="inline-form" attr:data-testid="directory-search">
                    <label for="directory-query">"Search the Microsoft directory"</label>
                    <div class="inline-form__row">
                        <input id="directory-query" name="query" type="search" placeholder="Name or email address" autocomplete="off"/>
                        <button type="submit" class="button">"Search"</button>
                    </div>
                </ActionForm>
                <ActionForm action=add attr:class="inline-form" attr:data-testid="add-by-address">
                    <label for="add-address">"Or add by email address"</label>
                    <div class="inline-form__row">
                        <input id="add-address" name="address" type="text" inputmode="email" placeholder="name@company.com" autocomplete="off"/>
                        <button type="submit" class="button">"Add"</button>
                    </div>
                </ActionForm>
            </div>
            {results}
            {add_error}
        </section>
        <section class="card table-wrap">
            {remove_error}
            <Show when=move || !empty fallback=|| view! {
                <p class="muted" data-testid="service-accounts-empty">"Nobody yet: the service connection syncs no mailbox until you add people."</p>
            }>
                <table data-testid="service-accounts">
                    <thead><tr>
                        <th scope="col">"Person"</th><th scope="col">"Mailbox"</th><th scope="col">"Checked"</th>
                        <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                    </tr></thead>
                    <tbody>
                        {users.clone().into_iter().map(|u| {
                            let (tone, label) = match u.health {
                                None => ("neutral", "Not checked yet"),
                                Some(h @ MailboxHealth::Ok) => ("good", h.label()),
                                Some(h) => ("warn", h.label()),
                            };
                            let id = u.id.to_string();
                            view! {
                                <tr data-address=u.ms_username.clone()>
                                    <td>{u.display_name.clone()}<br/><span class="muted">{u.ms_username.clone()}</span></td>
                                    <td><span class=format!("badge badge--{tone}") data-testid="mailbox-health">{label}</span></td>
                                    <td>{u.health_at.map(format_time).unwrap_or_else(|| "—".into())}</td>
                                    <td>
                                        <ActionForm action=remove>
                                            <input type="hidden" name="id" value=id/>
                                            <button type="submit" class="button">"Remove"</button>
                                        </ActionForm>
                                    </td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </Show>
        </section>
        </div>
    }
}
