//! `/settings/integrations/office365/service-accounts` (admins): in service-account mode, the team
//! members whose mailboxes the service connection syncs. Picked from the Microsoft directory or
//! added by address; each row says whether the service connection can open the mailbox. After an
//! activation the mailboxes are checked in the background: their rows say "Checking…" and the page
//! reads the list again every two seconds until every result is in.

use crate::components::guard::Guarded;
use crate::error::AppError;
use crate::pages::audit::format_time;
use crate::pages::office365::{Office365Header, Office365Tab};
use domain::MailboxHealth;
use domain::permissions::ConnectionMode;
use domain::views::{DirectoryPerson, DirectorySearchResult, ServiceAccountsView};
use leptos::prelude::*;
use leptos_meta::Title;

#[server(endpoint = "load_service_accounts")]
pub async fn load_service_accounts() -> Result<ServiceAccountsView, AppError> {
    let admin = crate::auth::require_admin().await?;
    Ok(crate::state::office365()?.service_accounts(&admin).await?)
}

#[server(endpoint = "search_directory")]
pub async fn search_directory(query: String) -> Result<DirectorySearchResult, AppError> {
    let admin = crate::auth::require_admin().await?;
    Ok(crate::state::office365()?.search_directory(&admin, &query).await?)
}

/// Adds a person; `Ok(Some(message))` when what was typed cannot be added (shown by the form).
/// Only the address (and a name to show) comes from the browser: whose mailbox it is, the server
/// asks Microsoft.
#[server(endpoint = "add_service_account_user")]
pub async fn add_service_account_user(address: String, name: Option<String>) -> Result<Option<String>, AppError> {
    let admin = crate::auth::require_admin().await?;
    let new = office365::NewServiceAccountUser { address, name };
    match crate::state::office365()?.add_service_account_user(&admin, new).await {
        Ok(()) => Ok(None),
        Err(office365::Error::Invalid(message)) => Ok(Some(message)),
        Err(e) => Err(e.into()),
    }
}

#[server(endpoint = "remove_service_account_user")]
pub async fn remove_service_account_user(id: String) -> Result<(), AppError> {
    let admin = crate::auth::require_admin().await?;
    Ok(crate::state::office365()?.remove_service_account_user(&admin, &id).await?)
}

#[component]
pub fn ServiceAccountsPage() -> impl IntoView {
    let add = ServerAction::<AddServiceAccountUser>::new();
    let remove = ServerAction::<RemoveServiceAccountUser>::new();
    let search = ServerAction::<SearchDirectory>::new();
    // Read again every two seconds while mailbox checks run in the background, so their results
    // show as they arrive.
    let tick = RwSignal::new(0u32);
    let data = Resource::new(move || (add.version().get(), remove.version().get(), tick.get()), |_| load_service_accounts());
    Effect::new(move |_| {
        let poll = move || {
            if data.get_untracked().and_then(Result::ok).is_some_and(|v| !v.checking.is_empty()) {
                tick.update(|n| *n += 1);
            }
        };
        if let Ok(handle) = set_interval_with_handle(poll, std::time::Duration::from_secs(2)) {
            on_cleanup(move || handle.clear());
        }
    });
    view! {
        <Title text="Service account users · Office 365"/>
        <Guarded admin_only=true page=move |_admin| view! {
            <Office365Header active=Office365Tab::ServiceAccounts crumb="Service account users"
                lead="The team members whose mailboxes the service connection syncs."/>
            <Transition fallback=|| view! { <p class="muted">"Loading service account users…"</p> }>
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
            </Transition>
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
        Some(Ok(DirectorySearchResult::Problem(p))) => {
            Some(view! { <p class="field-error" role="alert" data-testid="search-error">{p}</p> }.into_any())
        }
        Some(Ok(DirectorySearchResult::Found(people))) if people.is_empty() => {
            Some(view! { <p class="muted" data-testid="search-empty">"Nobody in the directory matches."</p> }.into_any())
        }
        Some(Ok(DirectorySearchResult::Found(people))) => Some(
            view! {
                <ul class="directory-results" data-testid="directory-results">
                    {people.into_iter().map(|p| {
                        let DirectoryPerson { name, address } = p;
                        let (shown_name, shown_address, key) = (name.clone(), address.clone(), address.clone());
                        view! {
                            <li data-address=key>
                                <span><strong>{shown_name}</strong> " " <span class="muted">{shown_address}</span></span>
                                <ActionForm action=add>
                                    <input type="hidden" name="address" value=address/>
                                    <input type="hidden" name="name" value=name/>
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
    let checking = v.checking.clone();
    let checking_note = (!checking.is_empty()).then(|| {
        let n = checking.len();
        let what = if n == 1 { "1 mailbox".to_owned() } else { format!("{n} mailboxes") };
        view! {
            <p class="muted" role="status" data-testid="checking-note">
                {format!("Checking {what} with the service connection; each result shows here as it arrives.")}
            </p>
        }
    });
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
            {checking_note}
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
                                _ if checking.contains(&u.id) => ("neutral", "Checking…"),
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
