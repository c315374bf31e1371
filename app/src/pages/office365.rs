//! `/settings/integrations/office365` (admins): Connection Settings, the permissions table, and
//! (as they arrive) My Connection, service account users, team connections and admin consent.

use crate::components::guard::Guarded;
use crate::error::AppError;
use domain::office365::{BACKFILL_DAYS, FieldErrors, SYNC_INTERVALS_MINUTES, SettingsForm, parse_mode};
use domain::permissions::{CATALOGUE, Group};
use domain::views::{self, Office365View, OrgMailbox, SaveResult};
use leptos::attr::Attribute;
use leptos::html::{Button, Div, Input};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[server(endpoint = "load_office365_settings")]
pub async fn load_office365_settings() -> Result<Office365View, AppError> {
    let admin = crate::auth::require_admin().await?;
    Ok(crate::state::office365()?.settings_view(&admin).await?)
}

/// Saves Connection Settings with the admin's answers to the page's confirmations (each "yes"
/// or absent): poll the primary integration only, switch to a service account although members'
/// own connections stop, and add those members as service account users.
#[server(endpoint = "save_office365_settings")]
pub async fn save_office365_settings(
    form: SettingsForm,
    confirm_poll_primary: Option<String>,
    confirm_mode_switch: Option<String>,
    add_as_service_users: Option<String>,
) -> Result<SaveResult, AppError> {
    let admin = crate::auth::require_admin().await?;
    let yes = |answer: Option<String>| answer.as_deref() == Some("yes");
    let confirmed = domain::views::SaveConfirmations {
        poll_primary: yes(confirm_poll_primary),
        mode_switch: yes(confirm_mode_switch),
        add_as_service_users: yes(add_as_service_users),
    };
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
    let refused = move || form_error().is_some() || !errors().is_empty();
    let pending = save.pending();

    // After a refused save the summary at the top of the form takes focus (and, as an alert, is
    // announced), so keyboard and screen reader users start from what to fix.
    let summary = NodeRef::<Div>::new();
    Effect::new(move |_| {
        if save.value().with(|r| matches!(r, Some(Ok(r)) if !r.saved) || matches!(r, Some(Err(_))))
            && let Some(summary) = summary.get()
        {
            let _ = summary.focus();
        }
    });

    // The connection mode as chosen in the form, and the mailboxes it and poll-primary weigh.
    let stored_mode = page.settings.mode;
    let mode = RwSignal::new(f.mode.clone());
    let chosen_mode = move || parse_mode(&mode.get()).unwrap_or(stored_mode);
    let mailboxes = StoredValue::new(page.mailboxes.clone());

    // Switching to a service-account mode stops members' own connections: the page lists whose,
    // and offers to add them as service account users, before anything is saved.
    let mode_inputs: [(&'static str, NodeRef<Input>); 3] =
        [("individual", NodeRef::new()), ("application", NodeRef::new()), ("service_user", NodeRef::new())];
    let focus_mode = move |value: &str| {
        if let Some((_, input)) = mode_inputs.iter().find(|(v, _)| *v == value) {
            focus(*input);
        }
    };
    let switch_stops = move || -> Vec<OrgMailbox> {
        mailboxes.with_value(|m| views::stopped_by_mode_switch(m, stored_mode, chosen_mode()).into_iter().cloned().collect())
    };
    let mode_confirming = RwSignal::new(false);
    let mode_confirmed = RwSignal::new(false);
    let add_as_users = RwSignal::new(true);
    let mode_yes = NodeRef::<Button>::new();
    focus_when_open(mode_confirming, mode_yes);
    let pick_mode = Callback::new(move |value: String| {
        mode.set(value);
        let stops = !switch_stops().is_empty();
        mode_confirming.set(stops && !mode_confirmed.get_untracked());
        if !stops {
            mode_confirmed.set(false);
        }
    });
    let mode_title = move || match switch_stops().len() {
        1 => "1 member's own connection will stop syncing.".to_owned(),
        n => format!("{n} members' own connections will stop syncing."),
    };

    // "Poll primary integration only": checking it asks for confirmation naming the impact.
    let poll_box = NodeRef::<Input>::new();
    let poll_yes = NodeRef::<Button>::new();
    let poll_checked = RwSignal::new(f.poll_primary_only);
    let confirming = RwSignal::new(false);
    let confirmed = RwSignal::new(page.settings.poll_primary_only);
    focus_when_open(confirming, poll_yes);
    let poll_stops = move || mailboxes.with_value(|m| views::stopped_by_poll_primary(m, chosen_mode()).len());
    let impact = move || mailboxes.with_value(|m| views::poll_primary_impact(&views::stopped_by_poll_primary(m, chosen_mode())));

    let access = RwSignal::new(f.access.clone());
    // Without the deployment's app the organization's own registration is the only way.
    let deployment_client = page.settings.deployment_client_id.clone();
    let own_app = RwSignal::new(f.own_app || deployment_client.is_none());
    let secret_placeholder = if page.settings.client_secret_set { "Stored — leave empty to keep it" } else { "Paste the secret's Value" };
    let interval = f.sync_interval_minutes.clone();
    let backfill = f.backfill_days.clone();
    // Without change notifications every mailbox is polled at the interval: one line says so.
    let change_delivery_note = page.change_delivery_note();

    view! {
        <crate::components::ready::Ready/>
        <ActionForm action=save attr:class="settings-form" attr:novalidate=true>
            <Show when=refused>
                <div class="form-summary" tabindex="-1" node_ref=summary data-testid="form-summary">
                    <Show when=move || form_error().is_some()>
                        <p class="alert alert--error" role="alert" data-testid="form-error">{form_error}</p>
                    </Show>
                    <Show when=move || !errors().is_empty()>
                        <p class="alert alert--error" role="alert" data-testid="form-has-errors">
                            "Nothing was saved. Fix the fields marked below and save again."
                        </p>
                    </Show>
                </div>
            </Show>
            <section class="card settings-section">
                <div class="switch-row">
                    <div>
                        <h2>"Connection Settings"</h2>
                        <p class="muted">"Turn the integration on, then activate it under My Connection."</p>
                    </div>
                    <label class="switch">
                        <input type="checkbox" name="form[enabled]" value="true" checked=f.enabled data-testid="enable"/>
                        <span class="switch__track" aria-hidden="true"></span>
                        <span>"Enable"</span>
                    </label>
                </div>
            </section>

            <section class="card settings-section" data-testid="app-registration">
                <h2>"Microsoft app registration"</h2>
                {deployment_client.clone().map(|client| view! {
                    <p data-testid="deployment-app">
                        "Intelligence360 connects through its own Microsoft app (application ID " <code>{client}</code>
                        "): there is nothing to enter. Microsoft shows its name and the permissions when you activate."
                    </p>
                    <label class="check-row">
                        <input type="checkbox" name="form[own_app]" value="true" data-testid="own-app"
                            prop:checked=move || own_app.get() on:change=move |ev| own_app.set(event_target_checked(&ev))/>
                        " Use your own app registration (for organizations whose policy requires one)"
                    </label>
                })}
                {deployment_client.is_none().then(|| view! { <input type="hidden" name="form[own_app]" value="true"/> })}
                <div data-testid="own-app-fields" hidden=move || !own_app.get()>
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
                </div>
                {page.settings.pinned_tenant.clone().map(|t| view! {
                    <p class="muted" data-testid="pinned-tenant">"Your Microsoft 365 tenant: " <code>{t}</code>
                        " (learned when you activated; every sign-in must come from it)."</p>
                })}
            </section>

            <section class="card settings-section">
                <h2>"How your team connects"</h2>
                <fieldset class="choices" {..invalid_attrs("mode", Signal::derive(error_for("mode")))}>
                    <legend>"Connection mode"</legend>
                    <Choice name="form[mode]" value="individual" selected=mode on_pick=pick_mode input_ref=mode_inputs[0].1
                        title="Individual connections"
                        detail="Each member connects their own Microsoft 365 account. Your own activation is the primary integration."/>
                    <Choice name="form[mode]" value="application" selected=mode on_pick=pick_mode input_ref=mode_inputs[1].1
                        title="Service account — application permissions (recommended)"
                        detail="An admin grants consent for the organization once; no one signs in. You pick whose mailboxes are synced."/>
                    <Choice name="form[mode]" value="service_user" selected=mode on_pick=pick_mode input_ref=mode_inputs[2].1
                        title="Service account — a service user"
                        detail="One Microsoft 365 account with delegate access to the team's mailboxes signs in once."/>
                    <FieldError id="mode" error=Signal::derive(error_for("mode"))/>
                </fieldset>
                <Show when=move || mode_confirming.get()>
                    <div class="confirm" role="alertdialog" aria-labelledby="mode-confirm-title" aria-describedby="mode-confirm-why"
                        data-testid="mode-switch-confirm">
                        <p id="mode-confirm-title"><strong>{mode_title}</strong></p>
                        <p id="mode-confirm-why">
                            "A service account syncs only its service account users, not members' own connections. These stop syncing; what they synced stays:"
                        </p>
                        <ul class="confirm__list" data-testid="mode-switch-stops">
                            {move || switch_stops().into_iter().map(|m| view! { <li>{m.label()}</li> }).collect_view()}
                        </ul>
                        <label class="check-row">
                            <input type="checkbox" data-testid="add-as-service-users"
                                prop:checked=move || add_as_users.get()
                                on:change=move |ev| add_as_users.set(event_target_checked(&ev))/>
                            " Also add them as service account users"
                        </label>
                        <p class="muted">"Their mailboxes then keep syncing through the service connection once it is activated."</p>
                        <div class="confirm__actions">
                            <button type="button" class="button button--danger" node_ref=mode_yes
                                on:click=move |_| {
                                    mode_confirmed.set(true);
                                    mode_confirming.set(false);
                                    focus_mode(&mode.get_untracked());
                                }>
                                "Switch to a service account"
                            </button>
                            <button type="button" class="button"
                                on:click=move |_| {
                                    let back = domain::office365::mode_value(stored_mode);
                                    mode.set(back.to_owned());
                                    mode_confirming.set(false);
                                    focus_mode(back);
                                }>
                                "Cancel"
                            </button>
                        </div>
                    </div>
                </Show>
                <input type="hidden" name="confirm_mode_switch" value=move || if mode_confirmed.get() { "yes" } else { "" }/>
                <input type="hidden" name="add_as_service_users"
                    value=move || if mode_confirmed.get() && add_as_users.get() { "yes" } else { "" }/>
                <fieldset class="choices choices--inline" {..invalid_attrs("access", Signal::derive(error_for("access")))}>
                    <legend>"Access level"</legend>
                    <Choice name="form[access]" value="read_only" selected=access
                        title="Read-only" detail="Sync only."/>
                    <Choice name="form[access]" value="read_write" selected=access
                        title="Read-write" detail="Also send mail and create events, contacts and tasks."/>
                    <FieldError id="access" error=Signal::derive(error_for("access"))/>
                </fieldset>
            </section>

            <section class="card settings-section">
                <h2>"What to sync"</h2>
                <fieldset class="checks" {..invalid_attrs("features", Signal::derive(error_for("features")))}>
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
                {change_delivery_note.map(|note| view! { <p class="change-delivery-note" data-testid="change-delivery-note">{note}</p> })}
            </section>

            <section class="card settings-section">
                <h2>"Polling"</h2>
                <label class="check-row">
                    <input type="checkbox" name="form[poll_primary_only]" value="true" data-testid="poll-primary" node_ref=poll_box
                        aria-invalid=move || error_for("poll_primary_only")().is_some().then_some("true")
                        aria-describedby=move || match error_for("poll_primary_only")() {
                            Some(_) => "poll-primary-warning poll_primary_only-error",
                            None => "poll-primary-warning",
                        }
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
                <p class="warning-box" id="poll-primary-warning" data-testid="poll-primary-warning">
                    "🚨 WARNING 🚨 Do NOT check \"Poll primary integration only\": checking this option will result in only the primary user's emails being synced."
                </p>
                <Show when=move || confirming.get()>
                    <div class="confirm" role="alertdialog" aria-labelledby="poll-confirm-title" data-testid="poll-primary-confirm">
                        <p id="poll-confirm-title"><strong>{impact}</strong>
                            {move || (poll_stops() > 0).then_some(" Only the primary integration's mailbox will be synced until you turn this off.")}</p>
                        <div class="confirm__actions">
                            <button type="button" class="button button--danger" node_ref=poll_yes
                                on:click=move |_| { confirmed.set(true); confirming.set(false); focus(poll_box); }>
                                "Yes, poll the primary integration only"
                            </button>
                            <button type="button" class="button"
                                on:click=move |_| { poll_checked.set(false); confirming.set(false); focus(poll_box); }>
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

/// A labelled control with its error. The control (the child) is tied to the error: described by
/// it and marked invalid while it is shown, so a screen reader reads the message with the field.
#[component]
fn Field(id: &'static str, label: &'static str, error: Signal<Option<String>>, children: Children) -> impl IntoView {
    let control = children().add_any_attr(invalid_attrs(id, error));
    view! {
        <div class="field" class:field--invalid=move || error.get().is_some()>
            <label for=id>{label}</label>
            {control}
            <FieldError id error/>
        </div>
    }
}

/// `aria-invalid="true"` and `aria-describedby` pointing at [`FieldError`]'s message, while
/// `error` is shown; neither otherwise (a description that is not in the page describes nothing).
fn invalid_attrs(id: &'static str, error: Signal<Option<String>>) -> impl Attribute {
    (
        leptos::attr::aria_invalid(move || error.with(Option::is_some).then_some("true")),
        leptos::attr::aria_describedby(move || error.with(Option::is_some).then(|| format!("{id}-error"))),
    )
}

/// Moves focus to a confirmation's first button whenever it opens, so keyboard and screen reader
/// users land in the dialog instead of staying on what opened it.
fn focus_when_open(open: RwSignal<bool>, first_button: NodeRef<Button>) {
    Effect::new(move |_| {
        if open.get()
            && let Some(button) = first_button.get()
        {
            let _ = button.focus();
        }
    });
}

/// Gives an input focus back when a confirmation about it closes.
fn focus(input: NodeRef<Input>) {
    if let Some(input) = input.get_untracked() {
        let _ = input.focus();
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

/// One radio of a group; `selected` holds the group's value, `on_pick` hears the person's choice.
#[component]
fn Choice(
    name: &'static str,
    value: &'static str,
    selected: RwSignal<String>,
    title: &'static str,
    detail: &'static str,
    #[prop(optional)] on_pick: Option<Callback<String>>,
    #[prop(optional)] input_ref: NodeRef<Input>,
) -> impl IntoView {
    let picked = move |_| match on_pick {
        Some(on_pick) => on_pick.run(value.to_owned()),
        None => selected.set(value.to_owned()),
    };
    view! {
        <label class="choice">
            <input type="radio" name=name value=value node_ref=input_ref
                checked=selected.get_untracked() == value
                prop:checked=move || selected.get() == value
                on:change=picked/>
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
                "When someone connects, Microsoft shows a dialogue listing these permissions. The first column is Microsoft's \
                 wording for administrators (its admin consent page and the Entra admin center); \"What members see\" is the \
                 wording of the consent page a member accepts when connecting. Every sign-in also asks for "
                <code>"openid profile email offline_access User.Read"</code>". The current settings request: "
                <code data-testid="requested-scope">{scope.authorization_scope()}</code>
            </p>
            <div class="table-wrap">
                <table class="permissions" data-testid="permissions-table">
                    <thead>
                        <tr>
                            <th scope="col">"What you see in the OAuth dialogue…"</th>
                            <th scope="col">"What members see"</th>
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
                                <tr class="group-row"><th colspan="7" scope="rowgroup">{g.label()}</th></tr>
                                {CATALOGUE.iter().filter(|p| p.group == g).map(|p| view! {
                                    <tr data-permission=p.graph_name data-kind=p.kind.label().to_lowercase()>
                                        <td>{p.dialogue}</td>
                                        <td data-testid="user-dialogue">{match p.user_dialogue {
                                            Some(words) => view! { <span>{words}</span> }.into_any(),
                                            None => view! { <span class="muted">"None: only an admin consents"</span> }.into_any(),
                                        }}</td>
                                        <td>{p.meaning}</td>
                                        <td><code class="permission-name">{breakable(p.graph_name)}</code></td>
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

/// A Graph permission name that wraps only after its dots (`Calendars.<wbr>ReadWrite.<wbr>Shared`),
/// never inside a word; the stylesheet keeps words whole.
fn breakable(name: &'static str) -> impl IntoView {
    name.split_inclusive('.').enumerate().map(|(i, part)| view! { {(i > 0).then(|| view! { <wbr/> })} {part} }).collect_view()
}
