//! `/activity`: the signed-in person's synced mail, events, contacts and tasks, newest first,
//! searchable and paginated; admins may pick any member. During a first sync, a progress bar per
//! resource. Everything is in the URL (`?kind=&q=&page=&member=`), so the page reads without
//! JavaScript and every view can be linked.

use crate::components::guard::Guarded;
use crate::error::AppError;
use crate::pages::audit::format_time;
use crate::pages::compose::{Compose, Composer, Fields, PendingRows, WriteBar, WriteUi, load_my_writes, load_write_offer};
use domain::WriteKind;
use domain::views::{ActivityRow, ActivityView, PendingWrite, WriteOffer};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[server(endpoint = "load_activity")]
pub async fn load_activity(kind: String, q: String, page: u32, member: String) -> Result<ActivityView, AppError> {
    let user = crate::auth::require_user().await?;
    let query = domain::views::ActivityQuery { kind, q, page, member };
    Ok(crate::state::office365()?.activity(&user, &query).await?)
}

/// The Activity URL for these filters.
fn href(kind: &str, q: &str, page: u32, member: &str) -> String {
    let mut parts = Vec::new();
    for (k, v) in [("kind", kind), ("q", q), ("member", member)] {
        if !v.is_empty() {
            parts.push(format!("{k}={}", urlencoding(v)));
        }
    }
    if page > 0 {
        parts.push(format!("page={page}"));
    }
    if parts.is_empty() { "/activity".into() } else { format!("/activity?{}", parts.join("&")) }
}

fn urlencoding(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[component]
pub fn ActivityPage() -> impl IntoView {
    let query = use_query_map();
    let params = Memo::new(move |_| {
        let q = query.read();
        (
            q.get("kind").and_then(|k| domain::Resource::parse(&k)).map(|r| r.as_str().to_owned()).unwrap_or_default(),
            q.get("q").unwrap_or_default(),
            q.get("page").and_then(|p| p.parse::<u32>().ok()).unwrap_or(0).min(10_000),
            q.get("member").unwrap_or_default(),
        )
    });
    let ui = WriteUi::new();
    provide_context(ui);
    // Bumped when a write's synced item has replaced its row: the list is read again.
    let refresh = RwSignal::new(0u32);
    let data = Resource::new(move || (params.get(), refresh.get()), |((kind, q, page, member), _)| load_activity(kind, q, page, member));
    let offer = Resource::new(|| (), |_| load_write_offer());
    let writes = Resource::new(move || ui.tick.get(), |_| load_my_writes());
    watch_writes(ui, writes, refresh);
    view! {
        <Title text="Activity"/>
        <Guarded page=move |user| {
            let me = user.user_id.to_string();
            let own = Memo::new(move |_| {
                let member = params.with(|p| p.3.clone());
                member.is_empty() || member == me
            });
            view! {
                <div class="page-head">
                    <div>
                        <h1>"Activity"</h1>
                        <p class="muted">"Synced emails, calendar events, contacts and tasks, newest first."</p>
                    </div>
                </div>
                {move || own.get().then(|| view! {
                    <Suspense>
                        {move || Suspend::new(async move { offer.await.ok().map(|offer| view! { <WriteBar offer/> }) })}
                    </Suspense>
                    <Composer/>
                    {move || match ui.quick.value().get() {
                        Some(Err(e)) => Some(view! { <p class="alert alert--error" role="alert" data-testid="quick-error">{e.to_string()}</p> }),
                        _ => None,
                    }}
                    <Transition>
                        {move || Suspend::new(async move {
                            let kind = params.with_untracked(|p| p.0.clone());
                            writes.await.ok().map(|writes| view! { <PendingRows writes kind/> })
                        })}
                    </Transition>
                })}
                <Transition fallback=|| view! { <p class="muted">"Loading activity…"</p> }>
                    {move || Suspend::new(async move {
                        let (kind, q, page, member) = params.get_untracked();
                        let offer = if own.get_untracked() { offer.await.unwrap_or_default() } else { WriteOffer::default() };
                        match data.await {
                            Err(e) => view! { <p class="alert alert--error" role="alert">{e.to_string()}</p> }.into_any(),
                            Ok(v) => view! { <Activity v kind q page member offer/> }.into_any(),
                        }
                    })}
                </Transition>
            }
        }/>
    }
}

/// How long a done write is followed for its synced item to replace it.
const FOLLOW_DONE_SECS: i64 = 180;

/// While a write is on its way (pending, or done and not yet synced), reads the writes again every
/// few seconds; when one leaves the list (its synced item replaced it), reads the activity again.
fn watch_writes(ui: WriteUi, writes: Resource<Result<Vec<PendingWrite>, AppError>>, refresh: RwSignal<u32>) {
    let shown = StoredValue::new(Vec::<String>::new());
    Effect::new(move |_| {
        if let Some(Ok(list)) = writes.get() {
            let now: Vec<String> = list.iter().map(|w| w.id.clone()).collect();
            let gone = shown.with_value(|before| before.iter().any(|id| !now.contains(id)));
            shown.set_value(now);
            if gone {
                refresh.update(|n| *n += 1);
            }
        }
    });
    // A write recorded here is followed even when Microsoft is so quick that its synced item
    // replaced it before the list was read again; a task completed from its row shows its pending
    // row at once (the composer asks for that itself).
    for action in [ui.send, ui.quick] {
        Effect::new(move |_| {
            if let Some(Ok(w)) = action.value().get() {
                shown.update_value(|ids| ids.push(w.id.clone()));
                ui.tick.update(|n| *n += 1);
            }
        });
    }
    Effect::new(move |_| {
        let poll = move || {
            // Pending, or done a short while ago and waiting for its synced item (a done write
            // whose item never comes, such as an event cancelled since, is not waited for).
            let now = (leptos::web_sys::js_sys::Date::now() / 1000.0) as i64;
            let waiting = |w: &PendingWrite| w.pending || (w.failure.is_none() && now - w.created_at < FOLLOW_DONE_SECS);
            let on_its_way = writes.get_untracked().and_then(Result::ok).is_some_and(|l| l.iter().any(waiting));
            if on_its_way {
                ui.tick.update(|n| *n += 1);
            }
        };
        if let Ok(handle) = set_interval_with_handle(poll, std::time::Duration::from_secs(3)) {
            on_cleanup(move || handle.clear());
        }
    });
}

/// What a row of the viewer's own activity offers: reply, reply all and forward on a message;
/// cancel on an event they organize; edit on a contact; complete or reopen on a task.
fn row_actions(r: &ActivityRow, offer: &WriteOffer, title_id: &str) -> Option<impl IntoView + use<>> {
    let ui = expect_context::<WriteUi>();
    let mut buttons: Vec<AnyView> = Vec::new();
    let button = |label: &'static str, title_id: &str, compose: Compose, prefill: Box<dyn Fn(&Fields) + Send + Sync>| {
        view! {
            <button type="button" class="button button--small" aria-describedby=title_id.to_owned()
                on:click=move |_| ui.open(compose.clone(), |f| prefill(f))>{label}</button>
        }
        .into_any()
    };
    let id = r.id.clone();
    let subject = r.title.clone();
    match r.kind {
        domain::Resource::Mail => {
            let re = format!("Re: {subject}");
            if offer.allows(WriteKind::Reply) {
                let re = re.clone();
                let prefill = Box::new(move |f: &Fields| f.subject.set(re.clone()));
                buttons.push(button("Reply", title_id, Compose::Reply { message: id.clone(), all: false }, prefill));
            }
            if offer.allows(WriteKind::ReplyAll) {
                let prefill = Box::new(move |f: &Fields| f.subject.set(re.clone()));
                buttons.push(button("Reply all", title_id, Compose::Reply { message: id.clone(), all: true }, prefill));
            }
            if offer.allows(WriteKind::Forward) {
                let fw = format!("Fw: {subject}");
                let prefill = Box::new(move |f: &Fields| f.subject.set(fw.clone()));
                buttons.push(button("Forward", title_id, Compose::Forward { message: id.clone() }, prefill));
            }
        }
        domain::Resource::Calendar if r.organizer && !r.done && offer.allows(WriteKind::CancelEvent) => {
            let compose = Compose::Cancel { event: id.clone(), about: subject.clone() };
            buttons.push(button("Cancel", title_id, compose, Box::new(|_| {})));
        }
        domain::Resource::Contacts if offer.allows(WriteKind::UpdateContact) => {
            let c = r.contact.clone().unwrap_or_default();
            let prefill = Box::new(move |f: &Fields| f.prefill_contact(&c));
            buttons.push(button("Edit", title_id, Compose::Contact { id: Some(id.clone()) }, prefill));
        }
        domain::Resource::Tasks => {
            let (kind, label, done) =
                if r.done { (WriteKind::ReopenTask, "Reopen", false) } else { (WriteKind::CompleteTask, "Complete", true) };
            if offer.allows(kind) {
                let slot = StoredValue::new(None::<String>);
                let (list, task) = (r.container.clone(), id.clone());
                buttons.push(
                    view! {
                        <button type="button" class="button button--small" aria-describedby=title_id.to_owned()
                            disabled=move || ui.quick.pending().get()
                            on:click=move |_| ui.set_task_done(WriteUi::quick_key(slot), list.clone(), task.clone(), done)>{label}</button>
                    }
                    .into_any(),
                );
            }
        }
        _ => {}
    }
    (!buttons.is_empty()).then(|| view! { <div class="activity-item__actions">{buttons}</div> })
}

#[component]
fn Activity(v: ActivityView, kind: String, q: String, page: u32, member: String, offer: WriteOffer) -> impl IntoView {
    let picker = (!v.members.is_empty()).then(|| {
        let current = v.viewing_id.clone();
        let (k, text) = (kind.clone(), q.clone());
        view! {
            <form method="get" action="/activity" class="inline-form member-picker" data-testid="member-picker">
                <label for="member">"Whose activity"</label>
                <div class="inline-form__row">
                    <select id="member" name="member">
                        {v.members.iter().map(|(id, name)| {
                            let selected = *id == current;
                            view! { <option value=id.clone() selected=selected>{name.clone()}</option> }
                        }).collect_view()}
                    </select>
                    <input type="hidden" name="kind" value=k/>
                    <input type="hidden" name="q" value=text/>
                    <button type="submit" class="button">"Show"</button>
                </div>
            </form>
        }
    });
    let tabs = {
        let filters = domain::Resource::ALL.map(|r| (r.as_str(), r.items_label()));
        std::iter::once(("", "All"))
            .chain(filters)
            .map(|(value, label)| {
                let current = (kind == value).then_some("page");
                view! { <a href=href(value, &q, 0, &member) aria-current=current>{label}</a> }
            })
            .collect_view()
    };
    let progress = (!v.progress.is_empty()).then(|| {
        view! {
            <section class="card sync-progress" data-testid="sync-progress">
                <h2>"First sync in progress"</h2>
                {v.progress.iter().map(|p| {
                    let bar = if p.finished {
                        let label = format!("{}: {} — done", p.resource.items_label(), p.done);
                        view! { <span>{label.clone()}</span><progress max="1" value="1" aria-label=label></progress> }.into_any()
                    } else if p.total > 0 {
                        let label = format!("{}: {} of {}", p.resource.items_label(), p.done, p.total);
                        view! { <span>{label.clone()}</span><progress max=p.total.to_string() value=p.done.to_string() aria-label=label></progress> }.into_any()
                    } else {
                        // No estimate: an indeterminate bar and the count so far.
                        let label = format!("{}: {} so far", p.resource.items_label(), p.done);
                        view! { <span>{label.clone()}</span><progress aria-label=label></progress> }.into_any()
                    };
                    view! { <div class="progress-row" data-resource=p.resource.items_label()>{bar}</div> }
                }).collect_view()}
            </section>
        }
    });
    let states = v.sync_states.iter().map(|s| s.label(v.at)).collect::<Vec<_>>().join("; ");
    let state_line = (!states.is_empty()).then(|| view! { <p class="muted" data-testid="activity-sync-state">"Sync: " {states}</p> });
    let body = if v.rows.is_empty() {
        let (title, text) = if !q.trim().is_empty() {
            ("Nothing matches", "Try other words, or clear the search.".to_string())
        } else if v.has_mailbox {
            ("Nothing here yet", "Items appear as soon as the sync has fetched them.".to_string())
        } else {
            (
                "Nothing synced yet",
                format!("Once {}'s Office 365 account is connected, mail, calendar, contacts and tasks appear here.", v.viewing),
            )
        };
        view! {
            <section class="empty-state" data-testid="activity-empty">
                <div class="empty-state__icon" aria-hidden="true">"✉"</div>
                <h2>{title}</h2>
                <p>{text}</p>
            </section>
        }
        .into_any()
    } else {
        view! {
            <ul class="activity-list card" data-testid="activity-items">
                {v.rows.iter().enumerate().map(|(i, r)| {
                    let title_id = format!("activity-item-{i}");
                    let actions = row_actions(r, &offer, &title_id);
                    view! {
                        <li class="activity-item" data-kind=r.kind.as_str() data-id=r.id.clone()>
                            <span class="badge badge--neutral">{r.kind.items_label()}</span>
                            <div class="activity-item__body">
                                <strong class="activity-item__title" id=title_id>{r.title.clone()}</strong>
                                <span class="muted">{r.subtitle.clone()}</span>
                                <p class="activity-item__preview">{r.preview.clone()}</p>
                                {actions}
                            </div>
                            <time class="muted">{r.when.map(format_time).unwrap_or_default()}</time>
                        </li>
                    }
                }).collect_view()}
            </ul>
        }
        .into_any()
    };
    let prev = (page > 0).then(|| view! { <a class="button" href=href(&kind, &q, page - 1, &member)>"← Newer"</a> });
    let next = v.has_more.then(|| view! { <a class="button" href=href(&kind, &q, page + 1, &member) data-testid="older">"Older →"</a> });
    view! {
        <div class="activity-controls">
            {picker}
            <form method="get" action="/activity" class="inline-form" role="search" data-testid="activity-search">
                <label for="activity-q">"Search"</label>
                <div class="inline-form__row">
                    <input id="activity-q" name="q" type="search" value=q.clone() placeholder="Subject, sender, name, task…"/>
                    <input type="hidden" name="kind" value=kind.clone()/>
                    <input type="hidden" name="member" value=member.clone()/>
                    <button type="submit" class="button">"Search"</button>
                </div>
            </form>
        </div>
        <p class="muted">"Showing " <strong data-testid="activity-viewing">{v.viewing.clone()}</strong></p>
        {state_line}
        {progress}
        <nav class="tabs" aria-label="What to show">{tabs}</nav>
        {body}
        <nav class="pager" aria-label="Pages">{prev}{next}</nav>
    }
}
