//! Writing from Activity (PRODUCT.md "Read-write features"): the composers for a new email, a
//! reply, reply all or forward, an event and its cancellation, a contact and a task, the quick
//! Complete/Reopen of a task, and the rows of writes on their way to Microsoft.
//!
//! What may be written comes from the server ([`domain::views::WriteOffer`]); the server refuses
//! anything else whatever the browser sends. A composer takes a key when it opens, so a double
//! click is one write; a refused or invalid write keeps everything typed and says why.

use crate::error::AppError;
use domain::views::{PendingWrite, WriteOffer};
use domain::writes::{ContactDraft, EventDraft, MailDraft, TaskDraft};
use domain::{EmailAddress, WriteKind, WriteRequest};
use leptos::prelude::*;

#[server(endpoint = "load_write_offer")]
pub async fn load_write_offer() -> Result<WriteOffer, AppError> {
    let user = crate::auth::require_user().await?;
    Ok(crate::state::office365()?.write_offer(&user).await?)
}

#[server(endpoint = "load_my_writes")]
pub async fn load_my_writes() -> Result<Vec<PendingWrite>, AppError> {
    let user = crate::auth::require_user().await?;
    Ok(crate::state::office365()?.my_writes(&user).await?)
}

/// Records a write: `key` is the composer's (8–64 of `A-Za-z0-9-_`; the same key is the same
/// write), `request` a [`WriteRequest`] as JSON. 403 with the reason when it is not allowed, 422
/// with the words to show when what was typed does not do.
#[server(endpoint = "record_write")]
pub async fn record_write(key: String, request: String) -> Result<PendingWrite, AppError> {
    let user = crate::auth::require_user().await?;
    let request: WriteRequest = leptos::serde_json::from_str(&request)
        .map_err(|_| office365::Error::Invalid("This form is out of date. Reload the page and try again.".into()))?;
    Ok(crate::state::office365()?.record_write(&user, &key, request).await?)
}

/// A composer's key, made once when it opens: the browser's `crypto.randomUUID()`.
fn new_key() -> String {
    use leptos::wasm_bindgen::JsCast;
    use leptos::web_sys::js_sys::{self, Function, Reflect};
    let global = js_sys::global();
    let uuid = Reflect::get(&global, &"crypto".into()).ok().and_then(|crypto| {
        let f = Reflect::get(&crypto, &"randomUUID".into()).ok()?.dyn_into::<Function>().ok()?;
        f.call0(&crypto).ok()?.as_string()
    });
    uuid.unwrap_or_else(|| {
        // Outside a secure context: time and randomness are still one key per composer.
        let now = js_sys::Date::now() as u64;
        let random = (js_sys::Math::random() * 1e15) as u64;
        format!("k{now:x}-{random:x}")
    })
}

/// The browser's time zone (`Europe/Berlin`), what a new event defaults to.
fn browser_time_zone() -> String {
    use leptos::web_sys::js_sys::{Array, Intl, Object, Reflect};
    let options = Intl::DateTimeFormat::new(&Array::new(), &Object::new()).resolved_options();
    Reflect::get(&options, &"timeZone".into()).ok().and_then(|v| v.as_string()).unwrap_or_else(|| "UTC".into())
}

/// What a composer writes.
#[derive(Debug, Clone, PartialEq)]
pub enum Compose {
    Mail,
    Reply { message: String, all: bool },
    Forward { message: String },
    Event,
    Cancel { event: String, about: String },
    Contact { id: Option<String> },
    Task { lists: Vec<String> },
}

impl Compose {
    fn heading(&self) -> &'static str {
        match self {
            Compose::Mail => "New email",
            Compose::Reply { all: false, .. } => "Reply",
            Compose::Reply { all: true, .. } => "Reply all",
            Compose::Forward { .. } => "Forward",
            Compose::Event => "New event",
            Compose::Cancel { .. } => "Cancel event",
            Compose::Contact { id: None } => "New contact",
            Compose::Contact { id: Some(_) } => "Edit contact",
            Compose::Task { .. } => "New task",
        }
    }

    /// For tests and styles: `mail`, `reply`, `cancel`, …
    fn slug(&self) -> &'static str {
        match self {
            Compose::Mail => "mail",
            Compose::Reply { all: false, .. } => "reply",
            Compose::Reply { all: true, .. } => "reply-all",
            Compose::Forward { .. } => "forward",
            Compose::Event => "event",
            Compose::Cancel { .. } => "cancel",
            Compose::Contact { id: None } => "contact",
            Compose::Contact { id: Some(_) } => "edit-contact",
            Compose::Task { .. } => "task",
        }
    }

    fn submit(&self) -> &'static str {
        match self {
            Compose::Mail | Compose::Reply { .. } | Compose::Forward { .. } => "Send",
            Compose::Event => "Create event",
            Compose::Cancel { .. } => "Cancel event",
            Compose::Contact { .. } => "Save contact",
            Compose::Task { .. } => "Create task",
        }
    }
}

/// What is typed in the open composer; kept until the write is recorded.
#[derive(Clone, Copy)]
pub struct Fields {
    to: RwSignal<String>,
    cc: RwSignal<String>,
    bcc: RwSignal<String>,
    pub subject: RwSignal<String>,
    body: RwSignal<String>,
    start: RwSignal<String>,
    end: RwSignal<String>,
    time_zone: RwSignal<String>,
    location: RwSignal<String>,
    attendees: RwSignal<String>,
    given_name: RwSignal<String>,
    surname: RwSignal<String>,
    email: RwSignal<String>,
    phone: RwSignal<String>,
    company: RwSignal<String>,
    job_title: RwSignal<String>,
    due: RwSignal<String>,
    list: RwSignal<String>,
}

impl Fields {
    fn new() -> Fields {
        let s = || RwSignal::new(String::new());
        Fields {
            to: s(),
            cc: s(),
            bcc: s(),
            subject: s(),
            body: s(),
            start: s(),
            end: s(),
            time_zone: s(),
            location: s(),
            attendees: s(),
            given_name: s(),
            surname: s(),
            email: s(),
            phone: s(),
            company: s(),
            job_title: s(),
            due: s(),
            list: s(),
        }
    }

    /// A synced contact's fields, to edit.
    pub fn prefill_contact(&self, c: &ContactDraft) {
        self.given_name.set(c.given_name.clone());
        self.surname.set(c.surname.clone());
        self.email.set(c.email.as_ref().map(|e| e.as_str().to_owned()).unwrap_or_default());
        self.phone.set(c.phone.clone());
        self.company.set(c.company.clone());
        self.job_title.set(c.job_title.clone());
    }

    fn clear(&self) {
        for f in [
            self.to,
            self.cc,
            self.bcc,
            self.subject,
            self.body,
            self.start,
            self.end,
            self.time_zone,
            self.location,
            self.attendees,
            self.given_name,
            self.surname,
            self.email,
            self.phone,
            self.company,
            self.job_title,
            self.due,
            self.list,
        ] {
            f.set(String::new());
        }
    }
}

/// The writing state of the Activity page, shared by its toolbar, rows and composer.
#[derive(Clone, Copy)]
pub struct WriteUi {
    /// The open composer and its key.
    pub composer: RwSignal<Option<(Compose, String)>>,
    pub fields: Fields,
    /// A problem found before sending (the server's words come through `send`).
    pub problem: RwSignal<Option<String>>,
    pub send: ServerAction<RecordWrite>,
    /// Complete/Reopen, sent straight from a task's row.
    pub quick: ServerAction<RecordWrite>,
    /// Bumped to reload the writes on their way.
    pub tick: RwSignal<u32>,
}

thread_local! {
    /// What had focus when the composer opened (browser only: the server never opens one); it
    /// gets focus back when the composer closes.
    static OPENER: std::cell::RefCell<Option<leptos::web_sys::HtmlElement>> = const { std::cell::RefCell::new(None) };
}

impl WriteUi {
    pub fn new() -> WriteUi {
        WriteUi {
            composer: RwSignal::new(None),
            fields: Fields::new(),
            problem: RwSignal::new(None),
            send: ServerAction::new(),
            quick: ServerAction::new(),
            tick: RwSignal::new(0),
        }
    }

    /// Opens a composer with a fresh key and empty (or prefilled) fields.
    pub fn open(&self, compose: Compose, prefill: impl FnOnce(&Fields)) {
        self.fields.clear();
        self.problem.set(None);
        self.send.value().set(None);
        match &compose {
            Compose::Event => self.fields.time_zone.set(browser_time_zone()),
            Compose::Task { lists } => self.fields.list.set(lists.first().cloned().unwrap_or_default()),
            _ => {}
        }
        prefill(&self.fields);
        if self.composer.get_untracked().is_none() {
            use leptos::wasm_bindgen::JsCast;
            let active = document().active_element().and_then(|e| e.dyn_into::<leptos::web_sys::HtmlElement>().ok());
            OPENER.with(|o| *o.borrow_mut() = active);
        }
        self.composer.set(Some((compose, new_key())));
    }

    /// Closes the composer and gives focus back to what opened it (when it is still there).
    pub fn close(&self) {
        self.composer.set(None);
        if let Some(opener) = OPENER.with(|o| o.borrow_mut().take()).filter(|e| e.is_connected()) {
            let _ = opener.focus();
        }
    }

    /// Sends the open composer's write.
    fn submit(&self) {
        let Some((compose, key)) = self.composer.get_untracked() else { return };
        if self.send.pending().get_untracked() {
            return;
        }
        let request = build(&compose, &self.fields).and_then(|r| r.validate().map(|_| r));
        match request.and_then(|r| leptos::serde_json::to_string(&r).map_err(|e| e.to_string())) {
            Err(problem) => self.problem.set(Some(problem)),
            Ok(request) => {
                self.problem.set(None);
                self.send.dispatch(RecordWrite { key, request });
            }
        }
    }

    /// Completes or reopens a task from its row; `key` is the row's, made on the first click.
    pub fn set_task_done(&self, key: String, list: String, task: String, done: bool) {
        if let Ok(request) = leptos::serde_json::to_string(&WriteRequest::SetTaskDone { list, task, done }) {
            self.quick.dispatch(RecordWrite { key, request });
        }
    }

    /// A key for a quick action, kept in `slot` so that a second click repeats the same write.
    pub fn quick_key(slot: StoredValue<Option<String>>) -> String {
        if let Some(k) = slot.get_value() {
            return k;
        }
        let k = new_key();
        slot.set_value(Some(k.clone()));
        k
    }
}

impl Default for WriteUi {
    fn default() -> Self {
        WriteUi::new()
    }
}

/// Addresses typed into one field, separated by commas, semicolons or spaces.
fn addresses(raw: &str, field: &str) -> Result<Vec<EmailAddress>, String> {
    raw.split([',', ';', ' ', '\n', '\t'])
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| EmailAddress::parse(a).map_err(|_| format!("{field}: “{a}” is not an email address.")))
        .collect()
}

fn mail(f: &Fields) -> Result<MailDraft, String> {
    Ok(MailDraft {
        to: addresses(&f.to.get_untracked(), "To")?,
        cc: addresses(&f.cc.get_untracked(), "Cc")?,
        bcc: addresses(&f.bcc.get_untracked(), "Bcc")?,
        subject: f.subject.get_untracked().trim().to_owned(),
        body: f.body.get_untracked(),
        html: false,
    })
}

/// The write the composer's fields describe.
fn build(compose: &Compose, f: &Fields) -> Result<WriteRequest, String> {
    let text = |s: RwSignal<String>| s.get_untracked().trim().to_owned();
    Ok(match compose {
        Compose::Mail => WriteRequest::SendMail(mail(f)?),
        Compose::Reply { message, all } => WriteRequest::Reply { message: message.clone(), all: *all, draft: mail(f)? },
        Compose::Forward { message } => WriteRequest::Forward { message: message.clone(), draft: mail(f)? },
        Compose::Event => WriteRequest::CreateEvent(EventDraft {
            subject: text(f.subject),
            start: text(f.start),
            end: text(f.end),
            time_zone: text(f.time_zone),
            location: text(f.location),
            attendees: addresses(&f.attendees.get_untracked(), "Attendees")?,
            body: f.body.get_untracked(),
        }),
        Compose::Cancel { event, .. } => WriteRequest::CancelEvent { event: event.clone(), comment: f.body.get_untracked() },
        Compose::Contact { id } => {
            let email = text(f.email);
            let email = if email.is_empty() {
                None
            } else {
                Some(EmailAddress::parse(&email).map_err(|_| format!("Email: “{email}” is not an email address."))?)
            };
            let draft = ContactDraft {
                given_name: text(f.given_name),
                surname: text(f.surname),
                email,
                phone: text(f.phone),
                company: text(f.company),
                job_title: text(f.job_title),
            };
            match id {
                None => WriteRequest::CreateContact(draft),
                Some(id) => WriteRequest::UpdateContact { contact: id.clone(), draft },
            }
        }
        Compose::Task { .. } => WriteRequest::CreateTask(TaskDraft {
            list: text(f.list),
            title: text(f.subject),
            due: Some(text(f.due)).filter(|d| !d.is_empty()),
        }),
    })
}

/// The "New …" buttons, or one line saying why nothing can be written.
#[component]
pub fn WriteBar(offer: WriteOffer) -> impl IntoView {
    let ui = expect_context::<WriteUi>();
    if offer.allowed.is_empty() {
        // Everything refused for one reason (read-only, say): that reason, once.
        let first = offer.refused.first().map(|(_, why)| why.clone());
        let one = first.as_ref().filter(|w| offer.refused.iter().all(|(_, why)| why == *w));
        return one.map(|why| view! { <p class="muted write-hint" data-testid="write-hint">{why.clone()}</p> }).into_any();
    }
    let lists = offer.task_lists.clone();
    let buttons = [
        (WriteKind::SendMail, "New email", Compose::Mail),
        (WriteKind::CreateEvent, "New event", Compose::Event),
        (WriteKind::CreateContact, "New contact", Compose::Contact { id: None }),
        (WriteKind::CreateTask, "New task", Compose::Task { lists: lists.clone() }),
    ]
    .into_iter()
    .filter(|(kind, _, _)| offer.allows(*kind) && (*kind != WriteKind::CreateTask || !lists.is_empty()))
    .map(|(_, label, compose)| {
        view! {
            <button type="button" class="button" on:click=move |_| ui.open(compose.clone(), |_| {})>
                <span aria-hidden="true">"+"</span> {label}
            </button>
        }
    })
    .collect_view();
    view! { <div class="write-bar" role="group" aria-label="Write to Office 365" data-testid="write-bar">{buttons}</div> }.into_any()
}

/// The open composer, if any.
#[component]
pub fn Composer() -> impl IntoView {
    let ui = expect_context::<WriteUi>();
    // A recorded write closes the composer (the page then shows its row).
    Effect::new(move |_| {
        if let Some(Ok(_)) = ui.send.value().get() {
            ui.close();
        }
    });
    move || ui.composer.get().map(|(compose, key)| view! { <ComposerForm compose key/> })
}

#[component]
fn ComposerForm(compose: Compose, key: String) -> impl IntoView {
    let ui = expect_context::<WriteUi>();
    let f = ui.fields;
    let form = NodeRef::<leptos::html::Form>::new();
    // Focus goes to the first field when the composer opens.
    Effect::new(move |_| {
        use leptos::wasm_bindgen::JsCast;
        if let Some(form) = form.get()
            && let Ok(Some(first)) = form.query_selector("input, textarea, select")
            && let Ok(first) = first.dyn_into::<leptos::web_sys::HtmlElement>()
        {
            let _ = first.focus();
        }
    });
    let close = move || ui.close();
    let error = move || {
        let message = ui.problem.get().or_else(|| match ui.send.value().get() {
            Some(Err(e)) => Some(e.to_string()),
            _ => None,
        })?;
        Some(view! { <p class="alert alert--error composer__error" role="alert" data-testid="write-error">{message}</p> })
    };
    let field = |id: &'static str, label: &'static str, value: RwSignal<String>, kind: &'static str, hint: Option<&'static str>| {
        let hint_id = hint.map(|_| format!("{id}-hint"));
        view! {
            <div class="field">
                <label for=id>{label}</label>
                <input id=id type=kind bind:value=value aria-describedby=hint_id.clone()/>
                {hint.map(|h| view! { <span class="muted field-hint" id=hint_id.unwrap_or_default()>{h}</span> })}
            </div>
        }
    };
    let area = |id: &'static str, label: &'static str, value: RwSignal<String>| {
        view! {
            <div class="field field--wide">
                <label for=id>{label}</label>
                <textarea id=id rows="6" bind:value=value></textarea>
            </div>
        }
    };
    let several = Some("Separate addresses with commas.");
    let fields = match &compose {
        Compose::Mail | Compose::Forward { .. } => view! {
            {field("compose-to", "To", f.to, "text", several)}
            {field("compose-cc", "Cc", f.cc, "text", None)}
            {field("compose-bcc", "Bcc", f.bcc, "text", None)}
            {field("compose-subject", "Subject", f.subject, "text", None)}
            {area("compose-body", "Message", f.body)}
        }
        .into_any(),
        Compose::Reply { all, .. } => {
            let who = if *all { "The sender and everyone on the message get it." } else { "The sender gets it." };
            view! {
                <p class="muted field--wide">{who} " Add more people below if you like."</p>
                {field("compose-to", "Also to", f.to, "text", several)}
                {field("compose-cc", "Cc", f.cc, "text", None)}
                {field("compose-subject", "Subject", f.subject, "text", None)}
                {area("compose-body", "Message", f.body)}
            }
            .into_any()
        }
        Compose::Event => view! {
            {field("compose-subject", "Subject", f.subject, "text", None)}
            {field("compose-location", "Location", f.location, "text", None)}
            {field("compose-start", "Starts", f.start, "datetime-local", None)}
            {field("compose-end", "Ends", f.end, "datetime-local", None)}
            {field("compose-tz", "Time zone", f.time_zone, "text", Some("As Microsoft 365 knows it, e.g. Europe/Berlin."))}
            {field("compose-attendees", "Attendees", f.attendees, "text", several)}
            {area("compose-body", "Description", f.body)}
        }
        .into_any(),
        Compose::Cancel { about, .. } => view! {
            <p class="field--wide">"Cancel " <strong>{about.clone()}</strong> " and tell its attendees."</p>
            {area("compose-body", "Message to attendees (optional)", f.body)}
        }
        .into_any(),
        Compose::Contact { .. } => view! {
            {field("compose-given", "First name", f.given_name, "text", None)}
            {field("compose-surname", "Last name", f.surname, "text", None)}
            {field("compose-email", "Email", f.email, "email", None)}
            {field("compose-phone", "Phone", f.phone, "tel", None)}
            {field("compose-company", "Company", f.company, "text", None)}
            {field("compose-job", "Job title", f.job_title, "text", None)}
        }
        .into_any(),
        Compose::Task { lists } => {
            let several_lists = lists.len() > 1;
            let options = lists
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    let label = if several_lists { format!("List {}", i + 1) } else { "Tasks".to_owned() };
                    view! { <option value=id.clone()>{label}</option> }
                })
                .collect_view();
            view! {
                {field("compose-title", "Title", f.subject, "text", None)}
                {field("compose-due", "Due date (optional)", f.due, "date", None)}
                <div class="field">
                    <label for="compose-list">"List"</label>
                    <select id="compose-list" bind:value=f.list>{options}</select>
                </div>
            }
            .into_any()
        }
    };
    let heading = compose.heading();
    let submit = compose.submit();
    let kind = compose.slug();
    view! {
        <section class="card composer" aria-labelledby="composer-title" data-testid="composer" data-compose=kind data-key=key
            on:keydown=move |ev| if ev.key() == "Escape" { close() }>
            <h2 id="composer-title">{heading}</h2>
            <form node_ref=form class="composer__form" novalidate
                on:input=move |_| ui.problem.set(None)
                on:submit=move |ev| { ev.prevent_default(); ui.submit(); }>
                {fields}
                <div class="composer__actions field--wide">
                    {error}
                    <div class="composer__buttons">
                        <button type="button" class="button button--ghost" on:click=move |_| close()>"Discard"</button>
                        <button type="submit" class="button button--primary" data-testid="compose-submit"
                            disabled=move || ui.send.pending().get()>{submit}</button>
                    </div>
                </div>
            </form>
        </section>
    }
}

/// The writes on their way: "Sending…", "Email sent" until the synced item replaces the row, or
/// failed with Microsoft's reason and who must act.
#[component]
pub fn PendingRows(writes: Vec<PendingWrite>, kind: String) -> impl IntoView {
    let rows: Vec<_> = writes.into_iter().filter(|w| kind.is_empty() || w.resource.as_str() == kind).collect();
    (!rows.is_empty()).then(|| {
        view! {
            <ul class="activity-list card pending-writes" data-testid="pending-writes" aria-label="Writes on their way to Office 365">
                {rows.into_iter().map(|w| {
                    let tone = if w.failure.is_some() { "danger" } else if w.pending { "warn" } else { "good" };
                    let label = w.label.clone();
                    let state = if w.failure.is_some() { "failed" } else if w.pending { "pending" } else { "done" };
                    let failure = w.failure.clone().map(|text| {
                        let who = w.who_must_act.map(|who| format!(" ({})", who.label())).unwrap_or_default();
                        view! { <p class="field-error" data-testid="write-failure">{text}{who}</p> }
                    });
                    view! {
                        <li class="activity-item activity-item--pending" data-kind=w.resource.as_str() data-write-kind=w.kind.as_str()
                            data-state=state>
                            <span class=format!("badge badge--{tone}") data-testid="write-state">{label}</span>
                            <div class="activity-item__body">
                                <strong class="activity-item__title">{w.headline.clone()}</strong>
                                <span class="muted">{w.resource.items_label()}</span>
                                {failure}
                            </div>
                            <time class="muted">{crate::pages::audit::format_time(w.created_at)}</time>
                        </li>
                    }
                }).collect_view()}
            </ul>
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_read_one_by_one_and_a_bad_one_is_named() {
        let got = addresses("bob@northwind.test, carol@northwind.test;\n dan@contoso.test", "To").unwrap();
        assert_eq!(
            got.iter().map(EmailAddress::as_str).collect::<Vec<_>>(),
            ["bob@northwind.test", "carol@northwind.test", "dan@contoso.test"]
        );
        assert_eq!(addresses("  ", "Cc").unwrap(), vec![]);
        assert_eq!(addresses("bob@northwind.test, bob@northwind", "To").unwrap_err(), "To: “bob@northwind” is not an email address.");
    }

    #[test]
    fn a_composer_builds_the_write_its_fields_describe() {
        Owner::new_root(None).with(composer_builds);
    }

    fn composer_builds() {
        let f = Fields::new();
        f.to.set("bob@northwind.test".into());
        f.subject.set(" Hello ".into());
        f.body.set("Hi".into());
        match build(&Compose::Reply { message: "m1".into(), all: true }, &f).unwrap() {
            WriteRequest::Reply { message, all, draft } => {
                assert_eq!((message.as_str(), all, draft.subject.as_str(), draft.body.as_str()), ("m1", true, "Hello", "Hi"));
                assert_eq!(draft.to.len(), 1);
            }
            other => panic!("{other:?}"),
        }
        f.subject.set("Call back".into());
        f.list.set("list-1".into());
        let task = build(&Compose::Task { lists: vec!["list-1".into()] }, &f).unwrap();
        assert_eq!(task, WriteRequest::CreateTask(TaskDraft { list: "list-1".into(), title: "Call back".into(), due: None }));
        f.email.set("not an address".into());
        assert!(build(&Compose::Contact { id: Some("c1".into()) }, &f).unwrap_err().starts_with("Email:"));
    }
}
