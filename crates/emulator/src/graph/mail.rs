//! Mail: folders, one message, and `sendMail` (message delta is in `delta`).

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

pub(super) fn send_mail(call: &Call) -> GResp {
    let ctx = call.ctx;
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&call.req.body) else {
        return err(ctx, 400, "ErrorInvalidRequest", "Cannot read the request body. JSON content expected.");
    };
    let Some(Value::Object(message)) = param(&body, "message").cloned() else {
        return err(ctx, 400, "ErrorInvalidParameter", "The value of the parameter 'Message' is empty.");
    };
    let recipients = recipients(&message);
    if recipients.is_empty() {
        return err(
            ctx,
            400,
            "ErrorInvalidRecipients",
            "At least one recipient isn't valid., A message can't be sent because it contains no recipients.",
        );
    }
    let from_addr = message.get("from").and_then(|f| f.pointer("/emailAddress/address")).and_then(Value::as_str).map(str::to_string);
    if let Some(from) = &from_addr
        && !may_send_as(call, from)
    {
        return err(
            ctx,
            403,
            "ErrorSendAsDenied",
            "The user account which was used to submit this request does not have the right to send mail on behalf of the specified sending account. Cannot submit message.",
        );
    }
    let stored = stored_message(call, &message);
    let save = param(&body, "saveToSentItems").and_then(Value::as_bool) != Some(false);
    deliver(call, stored, save, from_addr.is_some(), recipients);
    GResp::empty(202)
}

fn recipients(message: &Map<String, Value>) -> Vec<String> {
    ["toRecipients", "ccRecipients", "bccRecipients"]
        .iter()
        .flat_map(|k| message.get(*k).and_then(Value::as_array).cloned().unwrap_or_default())
        .filter_map(|r| r.pointer("/emailAddress/address").and_then(Value::as_str).map(str::to_string))
        .collect()
}

/// Sending "from" someone else needs Send As / on behalf rights (§3.7).
fn may_send_as(call: &Call, from: &str) -> bool {
    if from.eq_ignore_ascii_case(&call.user.user.user_principal_name) {
        return true;
    }
    match (call.caller, call.shared.user(from)) {
        (Some(c), Some(owner)) => allowed(call.grant, Some(c), &owner, Need::MailSend),
        (None, Some(_)) => call.grant.has_role(&["Mail.Send"]),
        _ => false,
    }
}

/// The message as the mailboxes store it: sender, timestamps, ids and defaults filled in.
fn stored_message(call: &Call, message: &Map<String, Value>) -> Map<String, Value> {
    let user = &call.user.user;
    let stamp = generate::graph_datetime(call.shared.now());
    let sender = json!({"emailAddress": {"name": user.display_name, "address": user.user_principal_name}});
    let mut stored = message.clone();
    stored.remove("attachments");
    stored.entry("from").or_insert(sender.clone());
    stored.insert("sender".into(), sender);
    for k in ["toRecipients", "ccRecipients", "bccRecipients", "categories"] {
        stored.entry(k).or_insert(json!([]));
    }
    let content = message.get("body").and_then(|b| b.get("content")).and_then(Value::as_str).unwrap_or("").to_string();
    stored.entry("body").or_insert(json!({"contentType": "text", "content": ""}));
    stored.insert("bodyPreview".into(), json!(content.chars().take(255).collect::<String>()));
    stored.insert("receivedDateTime".into(), json!(stamp));
    stored.insert("sentDateTime".into(), json!(stamp));
    let attached = message.get("attachments").and_then(Value::as_array).is_some_and(|a| !a.is_empty());
    stored.insert("hasAttachments".into(), json!(attached));
    let domain = user.user_principal_name.split('@').nth(1).unwrap_or("emulator.test");
    stored.insert("internetMessageId".into(), json!(format!("<{}@{domain}>", guid())));
    stored.insert("conversationId".into(), json!(b64url(guid().as_bytes())));
    stored.insert("isDraft".into(), json!(false));
    stored.entry("importance").or_insert(json!("normal"));
    stored.insert("flag".into(), json!({"flagStatus": "notFlagged"}));
    stored
}

/// A copy to Sent Items (of the signed-in sender when sending as someone else), and one to the inbox
/// of every recipient the emulator hosts (same tenant or not), so mail flows between demo users.
fn deliver(call: &Call, stored: Map<String, Value>, save: bool, explicit_from: bool, recipients: Vec<String>) {
    let now = call.shared.now();
    if save {
        let copy_owner = call.caller.filter(|_| explicit_from).cloned().unwrap_or_else(|| call.user.clone());
        let mut sent = stored.clone();
        sent.insert("isRead".into(), json!(true));
        add_and_notify(call.shared, &copy_owner.user, "sentitems", sent, now);
    }
    for r in recipients {
        if let Some(rcpt) = call.shared.user(&r).filter(|u| u.user.licensed) {
            let mut inbound = stored.clone();
            inbound.insert("isRead".into(), json!(false));
            add_and_notify(call.shared, &rcpt.user, "inbox", inbound, now);
        }
    }
}

fn add_and_notify(shared: &Shared, owner: &crate::UserFixture, folder: &str, message: Map<String, Value>, now: time::OffsetDateTime) {
    let arc = shared.mailbox(owner);
    let mut mb = lock(&arc);
    mb.add(Kind::Message, folder, Value::Object(message), now);
    crate::subscriptions::flush(shared, owner, &mut mb);
}
