//! Operations on one mailbox: the per-family handlers share one call context and these helpers.

use super::delta::{Res, delta};
use super::*;
use super::{calendar, contacts, mail, todo};
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
        mb.item_json(kind, n, self.immutable).unwrap_or(Value::Null)
    }

    /// GET of one item of `kind` by id (regular or immutable).
    pub(super) fn item(&self, id: &str, kind: Kind, select_fields: Option<&String>) -> GResp {
        let arc = self.mailbox();
        let mb = lock(&arc);
        match mb.resolve(id).filter(|(k, _)| *k == kind).and_then(|(k, n)| mb.item_json(k, n, self.immutable)) {
            Some(v) => self.applied(GResp::json(200, &select(v, select_fields))),
            None => self.not_found(),
        }
    }
}

/// The container keys (well-known names) of a kind's folders or lists.
pub(super) fn container_keys(kind: Kind) -> Vec<&'static str> {
    match kind {
        Kind::Message => MAIL_FOLDERS.iter().map(|f| f.key).collect(),
        Kind::Contact => CONTACT_FOLDERS.iter().map(|f| f.0).collect(),
        Kind::Task => TASK_LISTS.iter().map(|f| f.0).collect(),
        Kind::Event => vec!["calendar"],
    }
}

/// Resolves a folder/list id (or well-known name) of `kind` in this mailbox.
pub(super) fn container(mb: &MailboxState, kind: Kind, id: &str) -> Option<String> {
    generate::parse_container_id(mb.ctx.hash, id, &container_keys(kind))
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
        Op::Message(id) => mail::message(call, &id),
        Op::SendMail => mail::send_mail(call),
        Op::Event(id) => call.item(&id, Kind::Event, None),
        Op::CreateEvent => calendar::create_event(call),
        Op::ContactFolders => contacts::folders(call),
        Op::CreateContact(f) => contacts::create_contact(call, &f),
        Op::TodoLists => todo::lists(call),
        Op::CreateTask(l) => todo::create_task(call, &l),
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
