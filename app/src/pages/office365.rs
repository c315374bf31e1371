//! `/settings/integrations/office365` (admins): Connection Settings, the permissions table, and
//! (as they arrive) My Connection, service account users, team connections and admin consent.

use crate::components::guard::Guarded;
use crate::error::AppError;
use domain::office365::{BACKFILL_DAYS, FieldErrors, SYNC_INTERVALS_MINUTES, SettingsForm};
use domain::permissions::{CATALOGUE, Group};
use domain::views::{Office365View, SaveResult};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[server(endpoint = "load_office365_settings")]
pub async fn load_office365_settings() -> Result<Office365View, AppError> {
    let admin = crate::auth::require_admin().await?;
    Ok(crate::state::office365()?.settings_view(&admin).await?)
}

#[server(endpoint = "save_office365_settings")]
pub async fn save_office365_settings(form: SettingsForm, confirm_poll_primary: Option<String>) -> Result<SaveResult, AppError> {
    let admin = crate::auth::require_admin().await?;
    let confirmed = confirm_poll_primary.as_deref() == Some("yes");
    Ok(crate::state::office365()?.save_settings(&admin, &form, confirmed).await?)
}

/// The sections of the Office 365 settings, each reachable by its own URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Office365Tab {
    Connection,
    MyConnection,
    Team,
    Permissions,
    AdminConsent,
    ServiceAccounts,
}

/// The tab bar shared by the Office 365 settings pages.
#[component]
pub fn Office365Tabs(#[prop(into)] active: Signal<Office365Tab>) -> impl IntoView {
    let current = move |t: Office365Tab| move || (active.get() == t).then_some("page");
    view! {
        <nav class="tabs" aria-label="Office 365 settings">
            <a href="/settings/integrations/office365" aria-current=current(Office365Tab::Connection)>"Connection Settings"</a>
            <a href="/settings/integrations/office365/my-connection" aria-current=current(Office365Tab::MyConnection)>"My Connection"</a>
            <a href="/settings/integrations/office365/service-accounts" aria-current=current(Office365Tab::ServiceAccounts)>"Service account users"</a>
            <a href="/settings/integrations/office365/team" aria-current=current(Office365Tab::Team)>"Team connections"</a>
            <a href="/settings/integrations/office365?tab=permissions" aria-current=current(Office365Tab::Permissions)>"Permissions"</a>
            <a href="/settings/integrations/office365/admin-consent" aria-current=current(Office365Tab::AdminConsent)>"Admin consent"</a>
        </nav>
    }
}

/// Breadcrumbs, title and tabs of an Office 365 settings page that has its own URL.
#[component]
pub fn Office365Header(active: Office365Tab, crumb: &'static str, lead: &'static str) -> impl IntoView {
    view! {
        <nav class="breadcrumbs" aria-label="Breadcrumb">
            <span>"Settings"</span>
            <span aria-hidden="true">"›"</span>
            <a href="/settings/integrations">"All Integrations"</a>
            <span aria-hidden="true">"›"</span>
            <a href="/settings/integrations/office365">"Office 365"</a>
            <span aria-hidden="true">"›"</span>
            <span aria-current="page">{crumb}</span>
        </nav>
        <div class="page-head"><div><h1>"Office 365"</h1><p class="muted">{lead}</p></div></div>
        <Office365Tabs active=active/>
    }
}

type Tab = Office365Tab;

#[component]
pub fn Office365Page() -> impl IntoView {
    // Created here, not inside the guard's async block, so server and browser create resources in
    // the same order and hydration finds the data it expects.
    let query = use_query_map();
    let tab = Memo::new(move |_| match query.read().get("tab").as_deref() {
        Some("permissions") => Tab::Permissions,
        _ => Tab::Connection,
    });
    let save = ServerAction::<SaveOffice365Settings>::new();
    // Reload stored settings only after a successful save: after a refused one the form must keep
    // exactly what was typed.
    let saved_generation = RwSignal::new(0u32);
    Effect::new(move |_| {
        if let Some(Ok(r)) = save.value().get()
            && r.saved
        {
            saved_generation.update(|g| *g += 1);
        }
    });
    let page = Resource::new(move || saved_generation.get(), |_| load_office365_settings());

    view! {
        <Title text="Office 365 settings"/>
        <Guarded admin_only=true page=move |_admin| view! { <Office365Settings tab save page/> }/>
    }
}

#[component]
fn Office365Settings(
    tab: Memo<Tab>,
    save: ServerAction<SaveOffice365Settings>,
    page: Resource<Result<Office365View, AppError>>,
) -> impl IntoView {
    view! {
        <nav class="breadcrumbs" aria-label="Breadcrumb">
            <span>"Settings"</span>
            <span aria-hidden="true">"›"</span>
            <a href="/settings/integrations">"All Integrations"</a>
            <span aria-hidden="true">"›"</span>
            <span aria-current="page">"Office 365"</span>
        </nav>
        <Suspense fallback=|| view! { <p class="muted">"Loading settings…"</p> }>
            {move || Suspend::new(async move {
                match page.await {
                    Err(e) => view! { <p class="alert alert--error" role="alert">{e.to_string()}</p> }.into_any(),
                    Ok(p) => view! {
                        <div class="page-head">
                            <div>
                                <h1>"Office 365"</h1>
                                <p class="muted">"Sync mail, calendar events, contacts and To Do tasks through Microsoft Graph."</p>
                            </div>
                            <span class=format!("badge badge--{}", p.settings.status().tone()) data-testid="office365-status">
                                {p.settings.status().label()}
                            </span>
                        </div>
                        <Show when={
                            let on = p.settings.poll_primary_only;
                            move || on
                        }>
                            <div class="banner banner--warn" role="status" data-testid="poll-primary-banner">
                                <strong>"Poll primary integration only is on."</strong>
                                " Only the primary integration's mailbox is synced; every other connection is paused by this setting."
                            </div>
                        </Show>
                        {p.secret_expiry.clone().map(|e| view! {
                            <div class="banner banner--warn" role="status" data-testid="secret-expiry-banner">
                                <strong>{e.sentence()}</strong>
                                " Enter a new client secret and its expiry date below."
                            </div>
                        })}
                        <Office365Tabs active=tab/>
                        {
                            let p2 = p.clone();
                            move || match tab.get() {
                                Tab::Connection => view! { <ConnectionSettings page=p2.clone() save/> }.into_any(),
                                _ => view! { <PermissionsTable page=p2.clone()/> }.into_any(),
                            }
                        }
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn ConnectionSettings(page: Office365View, save: ServerAction<SaveOffice365Settings>) -> impl IntoView {
    let f = SettingsForm::from_settings(&page.settings);
    let result = move || save.value().get();
    let errors = move || match result() {
        Some(Ok(r)) => r.errors,
        _ => FieldErrors::new(),
    };
    let error_for = move |field: &'static str| move || errors().get(field).cloned();
    let form_error = move || match result() {
        Some(Ok(r)) => r.form_error,
        Some(Err(e)) => Some(e.to_string()),
        None => None,
    };
    let saved = move || matches!(result(), Some(Ok(r)) if r.saved);
    let pending = save.pending();

    // "Poll primary integration only": checking it asks for confirmation naming the impact.
    let poll_checked = RwSignal::new(f.poll_primary_only);
    let confirming = RwSignal::new(false);
    let confirmed = RwSignal::new(page.settings.poll_primary_only);
    let paused = page.paused_by_poll_primary;
    let impact = move || match paused {
        1 => "1 connection will stop syncing.".to_string(),
        n => format!("{n} connections will stop syncing."),
    };

    let secret_placeholder = if page.settings.client_secret_set { "Stored — leave empty to keep it" } else { "Paste the secret's Value" };
    let interval = f.sync_interval_minutes.clone();
    let backfill = f.backfill_days.clone();

    view! {
        <crate::components::ready::Ready/>
        <ActionForm action=save attr:class="settings-form" attr:novalidate=true>
            <section class="card settings-section">
                <div class="switch-row">
                    <div>
                        <h2>"Connection Settings"</h2>
                        <p class="muted">"Turn the integration on once the app registration below is filled in."</p>
                    </div>
                    <label class="switch">
                        <input type="checkbox" name="form[enabled]" value="true" checked=f.enabled data-testid="enable"/>
                        <span class="switch__track" aria-hidden="true"></span>
                        <span>"Enable"</span>
                    </label>
                </div>
            </section>

            <section class="card settings-section">
                <h2>"Microsoft app registration"</h2>
                <p class="muted">
                    "From your app registration in the Microsoft Entra admin center. Register these redirect URIs on it: "
                    <code data-testid="callback-uri">{page.callback_uri.clone()}</code> " and "
                    <code>{page.admin_consent_uri.clone()}</code> "."
                </p>
                <div class="field-grid">
                    <Field id="tenant" label="Directory (tenant) ID or domain" error=Signal::derive(error_for("tenant"))>
                        <input id="tenant" name="form[tenant]" type="text" value=f.tenant.clone()
                            placeholder="contoso.com or 00000000-0000-0000-0000-000000000000" autocomplete="off" spellcheck="false"/>
                    </Field>
                    <Field id="client_id" label="Application (client) ID" error=Signal::derive(error_for("client_id"))>
                        <input id="client_id" name="form[client_id]" type="text" value=f.client_id.clone()
                            placeholder="00000000-0000-0000-0000-000000000000" autocomplete="off" spellcheck="false"/>
                    </Field>
                    <Field id="client_secret" label="Client secret" error=Signal::derive(error_for("client_secret"))>
                        <input id="client_secret" name="form[client_secret]" type="password" value=""
                            placeholder=secret_placeholder autocomplete="new-password"/>
                    </Field>
                    <Field id="client_secret_expires_on" label="Client secret expires on" error=Signal::derive(error_for("client_secret_expires_on"))>
                        <input id="client_secret_expires_on" name="form[client_secret_expires_on]" type="date"
                            value=f.client_secret_expires_on.clone()/>
                    </Field>
                </div>
            </section>

            <section class="card settings-section">
                <h2>"How your team connects"</h2>
                <fieldset class="choices" aria-describedby="mode-error">
                    <legend>"Connection mode"</legend>
                    <Choice name="form[mode]" value="individual" current=f.mode.clone()
                        title="Individual connections"
                        detail="Each member connects their own Microsoft 365 account. Your own activation is the primary integration."/>
                    <Choice name="form[mode]" value="application" current=f.mode.clone()
                        title="Service account — application permissions (recommended)"
                        detail="An admin grants consent for the organization once; no one signs in. You pick whose mailboxes are synced."/>
                    <Choice name="form[mode]" value="service_user" current=f.mode.clone()
                        title="Service account — a service user"
                        detail="One Microsoft 365 account with delegate access to the team's mailboxes signs in once."/>
                    <FieldError id="mode" error=Signal::derive(error_for("mode"))/>
                </fieldset>
                <fieldset class="choices choices--inline">
                    <legend>"Access level"</legend>
                    <Choice name="form[access]" value="read_only" current=f.access.clone()
                        title="Read-only" detail="Sync only."/>
                    <Choice name="form[access]" value="read_write" current=f.access.clone()
                        title="Read-write" detail="Also send mail and create events, contacts and tasks."/>
                    <FieldError id="access" error=Signal::derive(error_for("access"))/>
                </fieldset>
            </section>

            <section class="card settings-section">
                <h2>"What to sync"</h2>
                <fieldset class="checks">
                    <legend class="visually-hidden">"Resources"</legend>
                    <label><input type="checkbox" name="form[sync_mail]" value="true" checked=f.sync_mail/>" Mail"</label>
                    <label><input type="checkbox" name="form[sync_calendar]" value="true" checked=f.sync_calendar/>" Calendar events"</label>
                    <label><input type="checkbox" name="form[sync_contacts]" value="true" checked=f.sync_contacts/>" Contacts"</label>
                    <label><input type="checkbox" name="form[sync_tasks]" value="true" checked=f.sync_tasks/>" To Do tasks"</label>
                </fieldset>
                <FieldError id="features" error=Signal::derive(error_for("features"))/>
                <div class="field-grid">
                    <Field id="sync_interval_minutes" label="Sync interval" error=Signal::derive(error_for("sync_interval_minutes"))>
                        <select id="sync_interval_minutes" name="form[sync_interval_minutes]">
                            {SYNC_INTERVALS_MINUTES.into_iter().map(|m| {
                                let label = match m { 60 => "Every hour".to_string(), 240 => "Every 4 hours".to_string(), 1440 => "Once a day".to_string(), m => format!("Every {m} minutes") };
                                view! { <option value=m.to_string() selected=interval == m.to_string()>{label}</option> }
                            }).collect_view()}
                        </select>
                    </Field>
                    <Field id="backfill_days" label="First sync reaches back" error=Signal::derive(error_for("backfill_days"))>
                        <select id="backfill_days" name="form[backfill_days]">
                            {BACKFILL_DAYS.into_iter().map(|d| {
                                let label = match d { 365 => "1 year".to_string(), d => format!("{d} days") };
                                view! { <option value=d.to_string() selected=backfill == d.to_string()>{label}</option> }
                            }).collect_view()}
                        </select>
                    </Field>
                </div>
            </section>

            <section class="card settings-section">
                <h2>"Polling"</h2>
                <label class="check-row">
                    <input type="checkbox" name="form[poll_primary_only]" value="true" data-testid="poll-primary"
                        prop:checked=move || poll_checked.get()
                        on:change=move |ev| {
                            let on = event_target_checked(&ev);
                            poll_checked.set(on);
                            if on && !confirmed.get_untracked() {
                                confirming.set(true);
                            }
                            if !on {
                                confirming.set(false);
                                confirmed.set(false);
                            }
                        }/>
                    " Poll primary integration only"
                </label>
                <p class="warning-box" data-testid="poll-primary-warning">
                    "🚨 WARNING 🚨 Do NOT check \"Poll primary integration only\": checking this option will result in only the primary user's emails being synced."
                </p>
                <Show when=move || confirming.get()>
                    <div class="confirm" role="alertdialog" aria-labelledby="poll-confirm-title" data-testid="poll-primary-confirm">
                        <p id="poll-confirm-title"><strong>{impact}</strong>
                            " Only the primary integration's mailbox will be synced until you turn this off."</p>
                        <div class="confirm__actions">
                            <button type="button" class="button button--danger"
                                on:click=move |_| { confirmed.set(true); confirming.set(false); }>
                                "Yes, poll the primary integration only"
                            </button>
                            <button type="button" class="button"
                                on:click=move |_| { poll_checked.set(false); confirming.set(false); }>
                                "Cancel"
                            </button>
                        </div>
                    </div>
                </Show>
                <input type="hidden" name="confirm_poll_primary" value=move || if confirmed.get() { "yes" } else { "" }/>
                <FieldError id="poll_primary_only" error=Signal::derive(error_for("poll_primary_only"))/>
            </section>

            <section class="card settings-section">
                <h2>"Member prompts"</h2>
                <label class="check-row">
                    <input type="checkbox" name="form[setup_action_enabled]" value="true" checked=f.setup_action_enabled/>
                    " Show members the \"Set up Office365 User Integration\" action"
                </label>
            </section>

            <div class="form-actions">
                <Show when=move || form_error().is_some()>
                    <p class="alert alert--error" role="alert" data-testid="form-error">{form_error}</p>
                </Show>
                <Show when=move || !errors().is_empty()>
                    <p class="alert alert--error" role="alert" data-testid="form-has-errors">
                        "Nothing was saved. Fix the fields marked below and save again."
                    </p>
                </Show>
                <Show when=saved>
                    <p class="alert alert--ok" role="status" data-testid="saved">"Settings saved."</p>
                </Show>
                <button type="submit" class="button button--primary" disabled=move || pending.get()>
                    {move || if pending.get() { "Checking with Microsoft…" } else { "Save settings" }}
                </button>
            </div>
        </ActionForm>
    }
}

#[component]
fn Field(id: &'static str, label: &'static str, error: Signal<Option<String>>, children: Children) -> impl IntoView {
    view! {
        <div class="field" class:field--invalid=move || error.get().is_some()>
            <label for=id>{label}</label>
            {children()}
            <FieldError id error/>
        </div>
    }
}

#[component]
fn FieldError(id: &'static str, error: Signal<Option<String>>) -> impl IntoView {
    view! {
        <Show when=move || error.get().is_some()>
            <p class="field-error" id=format!("{id}-error") data-error-for=id>{move || error.get()}</p>
        </Show>
    }
}

#[component]
fn Choice(name: &'static str, value: &'static str, current: String, title: &'static str, detail: &'static str) -> impl IntoView {
    view! {
        <label class="choice">
            <input type="radio" name=name value=value checked=current == value/>
            <span>
                <span class="choice__title">{title}</span>
                <span class="choice__detail">{detail}</span>
            </span>
        </label>
    }
}

#[component]
fn PermissionsTable(page: Office365View) -> impl IntoView {
    let groups = [Group::ReadOnly, Group::ReadWrite];
    let scope = page.settings.scope_settings();
    view! {
        <section class="card">
            <h2>"OAuth permissions"</h2>
            <p class="muted">
                "When someone connects, Microsoft shows a dialogue listing these permissions. Every sign-in also asks for "
                <code>"openid profile email offline_access User.Read"</code>". The current settings request: "
                <code data-testid="requested-scope">{scope.authorization_scope()}</code>
            </p>
            <div class="table-wrap">
                <table class="permissions" data-testid="permissions-table">
                    <thead>
                        <tr>
                            <th scope="col">"What you see in the OAuth dialogue…"</th>
                            <th scope="col">"What it means…"</th>
                            <th scope="col">"Graph permission"</th>
                            <th scope="col">"Type"</th>
                            <th scope="col">"Admin consent"</th>
                            <th scope="col">"Requested now"</th>
                        </tr>
                    </thead>
                    {groups.into_iter().map(|g| {
                        let scope = scope.clone();
                        view! {
                            <tbody>
                                <tr class="group-row"><th colspan="6" scope="rowgroup">{g.label()}</th></tr>
                                {CATALOGUE.iter().filter(|p| p.group == g).map(|p| view! {
                                    <tr data-permission=p.graph_name data-kind=p.kind.label().to_lowercase()>
                                        <td>{p.dialogue}</td>
                                        <td>{p.meaning}</td>
                                        <td><code>{p.graph_name}</code></td>
                                        <td>{p.kind.label()}</td>
                                        <td>{if p.admin_consent { "Yes" } else { "No" }}</td>
                                        <td data-testid="requested">{if scope.requests(p) { "Yes" } else { "—" }}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        }
                    }).collect_view()}
                </table>
            </div>
        </section>
    }
}
