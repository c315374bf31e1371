//! Microsoft To Do: task lists, listing, creating (with `linkedResources`) and updating tasks (lists
//! and tasks delta are in `delta`).

use super::mailbox::{Call, collection, container};
use super::props;
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
    fields.retain(|k, _| {
        !k.starts_with('@') && !matches!(k.as_str(), "id" | "createdDateTime" | "lastModifiedDateTime" | "completedDateTime")
    });
    if let Some(links) = props::linked_resources(&fields) {
        fields.insert("linkedResources".into(), links);
    }
    if fields.get("status").and_then(Value::as_str) == Some("completed") {
        fields.insert("completedDateTime".into(), completed_now(call));
    }
    fields.entry("status").or_insert(json!("notStarted"));
    fields.entry("importance").or_insert(json!("normal"));
    fields.entry("isReminderOn").or_insert(json!(false));
    fields.entry("categories").or_insert(json!([]));
    let v = call.created(Kind::Task, &key, fields);
    call.applied(GResp::json(201, &v))
}

fn completed_now(call: &Call) -> Value {
    json!({"dateTime": generate::zoned_datetime(call.shared.now()), "timeZone": "UTC"})
}

/// `$filter=createdDateTime ge|gt {datetime}` on a task list (the only filter supported here).
fn created_filter(call: &Call) -> Result<Option<(bool, i64)>, GResp> {
    let Some(f) = call.query("$filter") else {
        return Ok(None);
    };
    let mut parts = f.split_whitespace();
    let (prop, op, value) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let at = generate::parse_datetime(value.trim_matches('\''));
    match (prop.eq_ignore_ascii_case("createdDateTime"), op.to_ascii_lowercase().as_str(), at, parts.next()) {
        (true, "ge", Some(t), None) => Ok(Some((false, t.unix_timestamp()))),
        (true, "gt", Some(t), None) => Ok(Some((true, t.unix_timestamp()))),
        _ => Err(err(call.ctx, 400, "invalidRequest", "Invalid filter clause")),
    }
}

/// `GET …/todo/lists/{id}/tasks`: `$filter=createdDateTime ge …`, `$top`/`$skip`, `$expand=linkedResources`.
pub(super) fn tasks(call: &Call, list: &str) -> GResp {
    let filter = match created_filter(call) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let arc = call.mailbox();
    let mb = lock(&arc);
    let Some(key) = container(&mb, Kind::Task, list) else {
        return call.not_found();
    };
    let mut ns = mb.page(Kind::Task, &key, None, usize::MAX);
    if let Some((strict, at)) = filter {
        let created = |n: u64| {
            mb.item_full(Kind::Task, n, false)
                .and_then(|v| v.get("createdDateTime").and_then(Value::as_str).and_then(generate::parse_datetime))
                .map(|t| t.unix_timestamp())
        };
        ns.retain(|n| created(*n).is_some_and(|c| if strict { c > at } else { c >= at }));
    }
    call.listing(&mb, Kind::Task, &ns, "users('{id}')/todo/lists('{id}')/tasks", |v| v)
}

/// The task `task_id` of list `list`, if it is there.
fn locate(mb: &crate::store::MailboxState, list: &str, task_id: &str) -> Option<u64> {
    let key = container(mb, Kind::Task, list)?;
    let (kind, n) = mb.resolve(task_id)?;
    (kind == Kind::Task && mb.container_of(kind, n).as_deref() == Some(key.as_str())).then_some(n)
}

/// `GET …/todo/lists/{id}/tasks/{id}` (with `$expand=linkedResources`).
pub(super) fn task(call: &Call, list: &str, task_id: &str) -> GResp {
    let arc = call.mailbox();
    let mb = lock(&arc);
    match locate(&mb, list, task_id).and_then(|n| mb.item_full(Kind::Task, n, call.immutable)) {
        Some(v) => call.applied(GResp::json(200, &call.shown(v))),
        None => call.not_found(),
    }
}

/// `PATCH …/todo/lists/{id}/tasks/{id}` → 200 the task; `status: completed` sets `completedDateTime`,
/// any other status clears it.
pub(super) fn update_task(call: &Call, list: &str, task_id: &str) -> GResp {
    let mut patch = match call.body_object() {
        Ok(b) => b,
        Err(r) => return r,
    };
    patch
        .retain(|k, _| !k.starts_with('@') && !matches!(k.as_str(), "id" | "createdDateTime" | "lastModifiedDateTime" | "linkedResources"));
    let arc = call.mailbox();
    let mut mb = lock(&arc);
    let Some(n) = locate(&mb, list, task_id) else {
        return call.not_found();
    };
    match patch.get("status").and_then(Value::as_str) {
        Some("completed") => {
            let done = patch.get("completedDateTime").filter(|v| v.is_object()).cloned().unwrap_or_else(|| completed_now(call));
            patch.insert("completedDateTime".into(), done);
        }
        Some(_) => {
            patch.insert("completedDateTime".into(), Value::Null);
        }
        None => {}
    }
    mb.update(Kind::Task, n, patch, call.shared.now());
    crate::subscriptions::flush(call.shared, &call.user.user, &mut mb);
    match mb.item_json(Kind::Task, n, call.immutable) {
        Some(v) => call.applied(GResp::json(200, &v)),
        None => call.not_found(),
    }
}
