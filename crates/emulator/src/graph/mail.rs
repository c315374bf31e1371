//! Mail: folders, messages and one message (message delta is in `delta`; drafts, replies and sending
//! are in `compose`).

use super::mailbox::{Call, collection, container};
use super::*;

pub(super) fn folder_json(mb: &crate::store::MailboxState, key: &str) -> Value {
    let def = MAIL_FOLDERS.iter().find(|f| f.key == key);
    let (total, unread) = mb.count_in(Kind::Message, key);
    let parent = def
        .and_then(|d| d.parent)
        .map(|p| generate::folder_id(mb.ctx.hash, p))
        .unwrap_or_else(|| generate::folder_id(mb.ctx.hash, "msgfolderroot"));
    json!({
        "id": generate::folder_id(mb.ctx.hash, key),
        "displayName": def.map(|d| d.name).unwrap_or(key),
        "parentFolderId": parent,
        "childFolderCount": MAIL_FOLDERS.iter().filter(|f| f.parent == Some(key)).count(),
        "unreadItemCount": unread,
        "totalItemCount": total,
        "isHidden": false,
    })
}

/// `GET /me/mailboxSettings` (MailboxSettings.Read): the settings every demo mailbox has.
pub(super) fn mailbox_settings(call: &Call) -> GResp {
    let hash = lock(&call.mailbox()).ctx.hash;
    let v = json!({
        "@odata.context": format!("{}/v1.0/$metadata#users('{}')/mailboxSettings", call.shared.base_url, call.user.user.id),
        "archiveFolder": generate::folder_id(hash, "archive"),
        "timeZone": "UTC",
        "automaticRepliesSetting": {"status": "disabled", "externalAudience": "all"},
        "dateFormat": "yyyy-MM-dd",
        "timeFormat": "HH:mm",
        "userPurpose": "user",
        "language": {"locale": "en-US", "displayName": "English (United States)"},
        "workingHours": {
            "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
            "startTime": "08:00:00.0000000",
            "endTime": "17:00:00.0000000",
            "timeZone": {"name": "UTC"}
        },
        "delegateMeetingMessageDeliveryOptions": "sendToDelegateOnly"
    });
    GResp::json(200, &v)
}

/// The folders whose parent is `parent` (`None` = the top level).
fn folders_under(call: &Call, parent: Option<&str>, entity: &str) -> GResp {
    let arc = call.mailbox();
    let mb = lock(&arc);
    let v: Vec<Value> = MAIL_FOLDERS.iter().filter(|f| f.parent == parent).map(|f| folder_json(&mb, f.key)).collect();
    GResp::json(200, &collection(call.shared, entity, v))
}

pub(super) fn folders(call: &Call) -> GResp {
    folders_under(call, None, "users('{id}')/mailFolders")
}

pub(super) fn child_folders(call: &Call, folder: &str) -> GResp {
    let Some(key) = container(&lock(&call.mailbox()), Kind::Message, folder) else {
        return call.not_found();
    };
    folders_under(call, Some(&key), "users('{id}')/mailFolders('{id}')/childFolders")
}

pub(super) fn folder(call: &Call, folder: &str) -> GResp {
    let arc = call.mailbox();
    let mb = lock(&arc);
    match container(&mb, Kind::Message, folder) {
        Some(key) => GResp::json(200, &folder_json(&mb, &key)),
        None => call.not_found(),
    }
}

pub(super) fn message(call: &Call, id: &str) -> GResp {
    let sel = call.query("$select");
    let r = call.item(id, Kind::Message, sel.as_ref());
    match (&r.body, r.status) {
        (Some(text), 200) if !call.grant.full_mail_read(call.caller.is_some()) => match serde_json::from_str::<Value>(text) {
            Ok(v) => GResp { body: Some(without_body(v).to_string()), ..r },
            Err(_) => r,
        },
        _ => r,
    }
}

/// `GET /me/messages`: messages of every folder, `$filter` by an extended property (or a string
/// property such as `internetMessageId`), `$top`/`$skip`, `$select`, `$expand`.
pub(super) fn messages(call: &Call) -> GResp {
    let all =
        |mb: &crate::store::MailboxState| (0..mb.upper(Kind::Message)).filter(|n| mb.container_of(Kind::Message, *n).is_some()).collect();
    let basic = !call.grant.full_mail_read(call.caller.is_some());
    call.filtered_listing(Kind::Message, "users('{id}')/messages", all, |v| if basic { without_body(v) } else { v })
}

/// What `Mail.ReadBasic` lets a client see of a message: everything but its body.
pub(super) fn without_body(mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        for k in ["body", "bodyPreview", "uniqueBody", "attachments"] {
            m.remove(k);
        }
    }
    v
}

/// An action parameter, its name matched case-insensitively (`Message` as the generated SDKs send it,
/// `message` as the docs write it).
pub(super) fn param<'a>(body: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    body.get(name).or_else(|| body.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
}
