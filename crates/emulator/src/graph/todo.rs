//! Microsoft To Do: task lists and creating tasks (lists and tasks delta are in `delta`).

use super::mailbox::{Call, collection, container};
use super::*;

pub(super) fn list_json(mb: &crate::store::MailboxState, key: &str) -> Option<Value> {
    let (k, name, wk) = TASK_LISTS.iter().find(|l| l.0 == key)?;
    Some(json!({
        "@odata.etag": generate::etag(0, 0),
        "displayName": name,
        "isOwner": true,
        "isShared": false,
        "wellknownListName": wk,
        "id": generate::folder_id(mb.ctx.hash, k),
    }))
}

pub(super) fn lists(call: &Call) -> GResp {
    let arc = call.mailbox();
    let mb = lock(&arc);
    let v: Vec<Value> = TASK_LISTS.iter().filter_map(|l| list_json(&mb, l.0)).collect();
    GResp::json(200, &collection(call.shared, "users('{id}')/todo/lists", v))
}

pub(super) fn create_task(call: &Call, list: &str) -> GResp {
    let mut fields = match call.body_object() {
        Ok(b) => b,
        Err(r) => return r,
    };
    if fields.get("title").and_then(Value::as_str).is_none_or(str::is_empty) {
        return bad_request(call.ctx, "Invalid request: title is required.");
    }
    let Some(key) = container(&lock(&call.mailbox()), Kind::Task, list) else {
        return call.not_found();
    };
    fields.entry("status").or_insert(json!("notStarted"));
    fields.entry("importance").or_insert(json!("normal"));
    fields.entry("isReminderOn").or_insert(json!(false));
    fields.entry("categories").or_insert(json!([]));
    let v = call.created(Kind::Task, &key, fields);
    call.applied(GResp::json(201, &v))
}
