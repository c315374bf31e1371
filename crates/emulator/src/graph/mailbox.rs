//! Operations on one mailbox: the per-family handlers share one call context and these helpers.

use super::delta::{Res, delta};
use super::props::{self, ItemFilter};
use super::*;
use super::{calendar, compose, contacts, mail, todo};
use crate::registry::Effect;
use crate::store::MailboxState;
use std::sync::Mutex;

/// Everything a mailbox operation needs to know about the request it answers.
pub(super) struct Call<'a> {
    pub shared: &'a Shared,
    pub ctx: &'a Ctx,
    pub req: &'a GReq,
    pub grant: &'a AccessGrant,
    pub caller: Option<&'a UserRef>,
    pub user: &'a UserRef,
    /// `Prefer: odata.maxpagesize`
    pub page_pref: Option<usize>,
    /// `Prefer: IdType="ImmutableId"`
    pub immutable: bool,
}

impl Call<'_> {
    pub(super) fn mailbox(&self) -> Arc<Mutex<MailboxState>> {
        self.shared.mailbox(&self.user.user)
    }

    /// Sync state belongs to a client (app + signed-in identity): two connections syncing one mailbox
    /// must not age each other's delta links.
    pub(super) fn stream(&self) -> String {
        format!("{}|{}", self.grant.client_id, self.caller.map(|c| c.user.id.as_str()).unwrap_or("app"))
    }

    /// Adds `Preference-Applied: IdType="ImmutableId"` when the client asked for immutable ids.
    pub(super) fn applied(&self, r: GResp) -> GResp {
        if self.immutable { r.header("Preference-Applied", "IdType=\"ImmutableId\"") } else { r }
    }

    pub(super) fn not_found(&self) -> GResp {
        err(self.ctx, 404, "ErrorItemNotFound", "The specified object was not found in the store.")
    }

    /// The JSON object a create request must carry.
    pub(super) fn body_object(&self) -> Result<Map<String, Value>, GResp> {
        match serde_json::from_slice::<Value>(&self.req.body) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(bad_request(self.ctx, "Empty Payload. JSON content expected.")),
        }
    }

    pub(super) fn query(&self, name: &str) -> Option<String> {
        parse_qs(&self.req.query).get(name).cloned()
    }

    /// Stores a new item, tells subscribers and answers 201 with the item as Graph shows it.
    pub(super) fn created(&self, kind: Kind, container: &str, fields: Map<String, Value>) -> Value {
        let arc = self.mailbox();
        let mut mb = lock(&arc);
        let n = mb.add(kind, container, Value::Object(fields), self.shared.now());
        crate::subscriptions::flush(self.shared, &self.user.user, &mut mb);
        crate::registry::note(self.shared, Effect::Created(kind));
        mb.item_json(kind, n, self.immutable).unwrap_or(Value::Null)
    }

    /// GET of one item of `kind` by id (regular or immutable), with `$expand` and `$select`.
    pub(super) fn item(&self, id: &str, kind: Kind, select_fields: Option<&String>) -> GResp {
        let arc = self.mailbox();
        let mb = lock(&arc);
        match mb.resolve(id).filter(|(k, _)| *k == kind).and_then(|(k, n)| mb.item_full(k, n, self.immutable)) {
            Some(v) => self.applied(GResp::json(200, &select(self.shown(v), select_fields))),
            None => self.not_found(),
        }
    }

    /// An item's full JSON as this request shows it (`$expand`).
    pub(super) fn shown(&self, full: Value) -> Value {
        props::shown(full, self.query("$expand").as_deref())
    }

    /// The `$filter` of a plain collection: none, one we understand, or the 400 Graph answers.
    fn item_filter(&self) -> Result<Option<ItemFilter>, GResp> {
        match self.query("$filter") {
            None => Ok(None),
            Some(f) => ItemFilter::parse(&f)
                .map(Some)
                .ok_or_else(|| err(self.ctx, 400, "ErrorInvalidUrlQueryFilter", "The query filter contains one or more invalid nodes.")),
        }
    }

    /// Items of `kind` matching `filter` among `candidates` (all items, in n order).
    fn matching(&self, mb: &MailboxState, kind: Kind, filter: Option<&ItemFilter>, candidates: Vec<u64>) -> Vec<u64> {
        match filter {
            Some(f) if f.only_added_items() => {
                let added = mb.find(kind, |v| f.matches(v));
                candidates.into_iter().filter(|n| added.binary_search(n).is_ok()).collect()
            }
            Some(f) => candidates.into_iter().filter(|n| mb.item_full(kind, *n, false).is_some_and(|v| f.matches(&v))).collect(),
            None => candidates,
        }
    }

    /// A plain collection of `kind`: the `candidates` (in n order) the request's `$filter` keeps, paged
    /// as [`Call::listing`] does.
    pub(super) fn filtered_listing(
        &self,
        kind: Kind,
        entity: &str,
        candidates: impl FnOnce(&MailboxState) -> Vec<u64>,
        view: impl Fn(Value) -> Value,
    ) -> GResp {
        let filter = match self.item_filter() {
            Ok(f) => f,
            Err(r) => return r,
        };
        let arc = self.mailbox();
        let mb = lock(&arc);
        let ns = self.matching(&mb, kind, filter.as_ref(), candidates(&mb));
        self.listing(&mb, kind, &ns, entity, view)
    }

    /// A plain (non-delta) collection of `ns`: `$top` (default 10, at most 1000) and `$skip` paging
    /// with an `@odata.nextLink`, `$expand`, `$select`; `view` adjusts each item (e.g. `Mail.ReadBasic`).
    pub(super) fn listing(&self, mb: &MailboxState, kind: Kind, ns: &[u64], entity: &str, view: impl Fn(Value) -> Value) -> GResp {
        let q = parse_qs(&self.req.query);
        let top = q.get("$top").and_then(|t| t.parse::<usize>().ok()).unwrap_or(10).clamp(1, 1000);
        let skip = q.get("$skip").and_then(|t| t.parse::<usize>().ok()).unwrap_or(0);
        let sel = q.get("$select");
        let value: Vec<Value> = ns
            .iter()
            .skip(skip)
            .take(top)
            .filter_map(|n| mb.item_full(kind, *n, self.immutable))
            .map(|v| select(view(self.shown(v)), sel))
            .collect();
        let mut body = collection(self.shared, entity, value);
        if skip + top < ns.len() {
            let mut next = form_urlencoded::Serializer::new(String::new());
            for (k, v) in q.iter().filter(|(k, _)| k.as_str() != "$skip") {
                next.append_pair(k, v);
            }
            next.append_pair("$skip", &(skip + top).to_string());
            body["@odata.nextLink"] = json!(format!("{}/v1.0{}?{}", self.shared.base_url, self.req.path, next.finish()));
        }
        self.applied(GResp::json(200, &body))
    }
}

/// The stored item `id` (either id form) when it is of `kind`: its number and its full JSON object.
pub(super) fn stored(mb: &MailboxState, kind: Kind, id: &str) -> Option<(u64, Map<String, Value>)> {
    let (k, n) = mb.resolve(id).filter(|(k, _)| *k == kind)?;
    match mb.item_full(k, n, false)? {
        Value::Object(m) => Some((n, m)),
        _ => None,
    }
}

/// Resolves a folder/list id (or well-known name) of `kind` in this mailbox.
pub(super) fn container(mb: &MailboxState, kind: Kind, id: &str) -> Option<String> {
    generate::parse_container_id(mb.ctx.hash, id, &kind.container_keys())
}

pub(super) fn collection(shared: &Shared, entity: &str, value: Vec<Value>) -> Value {
    json!({"@odata.context": format!("{}/v1.0/$metadata#{entity}", shared.base_url), "value": value})
}

pub(super) fn mailbox_op(call: &Call, op: Op) -> GResp {
    match op {
        Op::MailboxSettings => mail::mailbox_settings(call),
        Op::MailFolders => mail::folders(call),
        Op::ChildFolders(f) => mail::child_folders(call, &f),
        Op::MailFolder(f) => mail::folder(call, &f),
        Op::Messages => mail::messages(call),
        Op::Message(id) => mail::message(call, &id),
        Op::CreateMessage => compose::create_draft(call),
        Op::Respond(id, how) => compose::create_response(call, &id, how),
        Op::Send(id) => compose::send_draft(call, &id),
        Op::SendMail => compose::send_mail(call),
        Op::Event(id) => call.item(&id, Kind::Event, call.query("$select").as_ref()),
        Op::CreateEvent => calendar::create_event(call),
        Op::CancelEvent(id) => calendar::cancel_event(call, &id),
        Op::ContactFolders => contacts::folders(call),
        Op::ContactFolder(f) => contacts::folder(call, &f),
        Op::ContactChildFolders(f) => contacts::child_folders(call, &f),
        Op::CreateContact(f) => contacts::create_contact(call, &f),
        Op::Contacts => contacts::list(call),
        Op::Contact(id) => call.item(&id, Kind::Contact, call.query("$select").as_ref()),
        Op::UpdateContact(id) => contacts::update_contact(call, &id),
        Op::TodoLists => todo::lists(call),
        Op::CreateTask(l) => todo::create_task(call, &l),
        Op::Tasks(l) => todo::tasks(call, &l),
        Op::Task(l, t) => todo::task(call, &l, &t),
        Op::UpdateTask(l, t) => todo::update_task(call, &l, &t),
        Op::MailFoldersDelta => call.applied(delta(call, Res::Folders, "*")),
        Op::TodoListsDelta => call.applied(delta(call, Res::Lists, "*")),
        Op::CalendarViewDelta => call.applied(delta(call, Res::Events, "calendar")),
        Op::MessagesDelta(f) => container_delta(call, Res::Messages, &f),
        Op::ContactsDelta(f) => container_delta(call, Res::Contacts, &f),
        Op::TasksDelta(l) => container_delta(call, Res::Tasks, &l),
        Op::Me | Op::UserGet | Op::UsersList => bad_request(call.ctx, "Invalid request."),
    }
}

/// Delta over one folder or list, addressed by id or well-known name.
fn container_delta(call: &Call, res: Res, id: &str) -> GResp {
    let key = container(&lock(&call.mailbox()), res.kind(), id);
    match key {
        Some(key) => call.applied(delta(call, res, &key)),
        None => call.not_found(),
    }
}
