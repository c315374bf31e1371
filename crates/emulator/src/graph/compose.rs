//! Writing mail: drafts (`POST …/messages`), reply/reply-all/forward drafts (`createReply`,
//! `createReplyAll`, `createForward`), sending a draft (`…/messages/{id}/send`) and the one-step
//! `sendMail`. A sent draft keeps its item (so its immutable id) and moves to Sent Items; every send
//! delivers a copy to each recipient the emulator hosts (MICROSOFT.md §3.7, §7).

use super::mail::param;
use super::mailbox::{Call, stored};
use super::props;
use super::routes::Respond;
use super::*;
use crate::registry::{Effect, note};

/// Properties Graph computes, never taken from a create body.
const READ_ONLY: &[&str] = &[
    "id",
    "isDraft",
    "parentFolderId",
    "changeKey",
    "createdDateTime",
    "lastModifiedDateTime",
    "sentDateTime",
    "receivedDateTime",
    "attachments",
];

fn send_as_denied(ctx: &Ctx) -> GResp {
    err(
        ctx,
        403,
        "ErrorSendAsDenied",
        "The user account which was used to submit this request does not have the right to send mail on behalf of the specified sending account. Cannot submit message.",
    )
}

fn email_json(user: &crate::UserFixture) -> Value {
    json!({"emailAddress": {"name": user.display_name, "address": user.user_principal_name}})
}

fn address(v: Option<&Value>) -> Option<String> {
    v.and_then(|f| f.pointer("/emailAddress/address")).and_then(Value::as_str).map(str::to_string)
}

/// Every recipient address (to, cc, bcc), duplicates removed.
fn recipients(message: &Map<String, Value>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for k in ["toRecipients", "ccRecipients", "bccRecipients"] {
        for r in message.get(k).and_then(Value::as_array).into_iter().flatten() {
            let a = address(Some(r)).unwrap_or_default();
            if !out.iter().any(|o| o.eq_ignore_ascii_case(&a)) {
                out.push(a);
            }
        }
    }
    out
}

/// 400 `ErrorInvalidRecipients` when there is nobody to send to or an address cannot be resolved.
fn recipient_error(ctx: &Ctx, recipients: &[String]) -> Option<GResp> {
    if recipients.is_empty() {
        let msg = "At least one recipient isn't valid., A message can't be sent because it contains no recipients.";
        return Some(err(ctx, 400, "ErrorInvalidRecipients", msg));
    }
    let bad = recipients.iter().find(|a| a.split_once('@').is_none_or(|(l, d)| l.is_empty() || d.is_empty()))?;
    let msg = format!(
        "At least one recipient isn't valid., Recipient '{bad}' isn't resolved. All recipients must be resolved before a message can be submitted."
    );
    Some(err(ctx, 400, "ErrorInvalidRecipients", &msg))
}

/// Text of a body for `bodyPreview`: tags dropped from HTML, whitespace collapsed, 255 characters.
fn preview(body: &Value) -> String {
    let content = body.get("content").and_then(Value::as_str).unwrap_or("");
    let text: String = if body.get("contentType").and_then(Value::as_str) == Some("html") {
        let mut inside = false;
        content
            .chars()
            .filter(|c| {
                match c {
                    '<' => inside = true,
                    '>' if inside => {
                        inside = false;
                        return false;
                    }
                    _ => {}
                }
                !inside
            })
            .collect()
    } else {
        content.to_string()
    };
    text.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(255).collect()
}

/// A draft as the mailbox stores it: the client's properties checked and normalized, Graph's defaults
/// and ids filled in.
fn draft_fields(call: &Call, mut m: Map<String, Value>) -> Result<Map<String, Value>, GResp> {
    let ext = props::extended(&m).map_err(|e| err(call.ctx, 400, "ErrorInvalidExtendedPropertyValue", &e))?;
    m.retain(|k, _| !k.starts_with('@') && !READ_ONLY.contains(&k.as_str()));
    let mut body = m.get("body").cloned().unwrap_or_else(|| json!({"contentType": "text", "content": ""}));
    let kind = body.get("contentType").and_then(Value::as_str).unwrap_or("text").to_ascii_lowercase();
    if kind != "text" && kind != "html" {
        return Err(bad_request(call.ctx, &format!("Invalid value '{kind}' for property 'contentType'.")));
    }
    body["contentType"] = json!(kind);
    m.insert("bodyPreview".into(), json!(preview(&body)));
    m.insert("body".into(), body);
    for k in ["toRecipients", "ccRecipients", "bccRecipients", "replyTo", "categories"] {
        m.entry(k).or_insert(json!([]));
    }
    if let Some(ext) = ext {
        m.insert("singleValueExtendedProperties".into(), Value::Array(ext));
    }
    let domain = call.user.user.user_principal_name.split('@').nth(1).unwrap_or("emulator.test").to_string();
    m.entry("internetMessageId").or_insert_with(|| json!(format!("<{}@{domain}>", guid())));
    m.entry("conversationId").or_insert_with(|| json!(b64url(guid().as_bytes())));
    m.entry("importance").or_insert(json!("normal"));
    m.insert("receivedDateTime".into(), json!(generate::graph_datetime(call.shared.now())));
    m.insert("sentDateTime".into(), Value::Null);
    m.insert("isDraft".into(), json!(true));
    m.insert("isRead".into(), json!(true));
    m.insert("hasAttachments".into(), json!(false));
    m.insert("flag".into(), json!({"flagStatus": "notFlagged"}));
    Ok(m)
}

/// `POST …/messages` → 201 the draft, in Drafts.
pub(super) fn create_draft(call: &Call) -> GResp {
    let body = match call.body_object() {
        Ok(b) => b,
        Err(r) => return r,
    };
    match draft_fields(call, body) {
        Ok(fields) => call.applied(GResp::json(201, &call.created(Kind::Message, "drafts", fields))),
        Err(r) => r,
    }
}

/// `POST …/messages/{id}/createReply|createReplyAll|createForward` (body optional: `message`,
/// `comment`, and for forwards `toRecipients`) → 201 the response draft, in Drafts.
pub(super) fn create_response(call: &Call, id: &str, how: Respond) -> GResp {
    let params = if call.req.body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        match call.body_object() {
            Ok(b) => b,
            Err(r) => return r,
        }
    };
    let original = stored(&lock(&call.mailbox()), Kind::Message, id);
    let Some((_, original)) = original else {
        return call.not_found();
    };
    let mut m = response_fields(call, &original, how);
    let comment = param(&params, "comment").and_then(Value::as_str).unwrap_or("");
    m.insert("body".into(), json!({"contentType": "html", "content": quoted_body(&original, comment)}));
    if let Some(Value::Object(extra)) = param(&params, "message") {
        m.extend(extra.clone());
    }
    if let Some(to) = param(&params, "toRecipients").filter(|v| v.is_array()) {
        m.insert("toRecipients".into(), to.clone());
    }
    match draft_fields(call, m) {
        Ok(fields) => call.applied(GResp::json(201, &call.created(Kind::Message, "drafts", fields))),
        Err(r) => r,
    }
}

/// Subject, recipients and conversation of a response, as Outlook derives them.
fn response_fields(call: &Call, original: &Map<String, Value>, how: Respond) -> Map<String, Value> {
    let me = &call.user.user.user_principal_name;
    let list = |k: &str| original.get(k).and_then(Value::as_array).cloned().unwrap_or_default();
    let not_me = |r: &Value| !address(Some(r)).is_some_and(|a| a.eq_ignore_ascii_case(me));
    let reply_to = list("replyTo");
    let author: Vec<Value> = if reply_to.is_empty() { original.get("from").cloned().into_iter().collect() } else { reply_to };
    let (to, cc): (Vec<Value>, Vec<Value>) = match how {
        Respond::Reply => (author, Vec::new()),
        Respond::ReplyAll => {
            let mut to = author;
            for r in list("toRecipients").into_iter().filter(not_me) {
                if !to.iter().any(|t| address(Some(t)).map(|a| a.to_ascii_lowercase()) == address(Some(&r)).map(|a| a.to_ascii_lowercase()))
                {
                    to.push(r);
                }
            }
            (to, list("ccRecipients").into_iter().filter(not_me).collect())
        }
        Respond::Forward => (Vec::new(), Vec::new()),
    };
    let prefix = if how == Respond::Forward { "FW: " } else { "RE: " };
    let subject = original.get("subject").and_then(Value::as_str).unwrap_or("");
    let already = subject.get(..prefix.len()).is_some_and(|p| p.eq_ignore_ascii_case(prefix));
    let mut m = Map::new();
    m.insert("subject".into(), json!(if already { subject.to_string() } else { format!("{prefix}{subject}") }));
    m.insert("toRecipients".into(), Value::Array(to));
    m.insert("ccRecipients".into(), Value::Array(cc));
    m.insert("conversationId".into(), original.get("conversationId").cloned().unwrap_or(Value::Null));
    m
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The comment above Outlook's header block and the original message.
fn quoted_body(original: &Map<String, Value>, comment: &str) -> String {
    let who = |v: Option<&Value>| {
        let name = v.and_then(|f| f.pointer("/emailAddress/name")).and_then(Value::as_str).unwrap_or("");
        format!("{} &lt;{}&gt;", escape(name), escape(&address(v).unwrap_or_default()))
    };
    let to: Vec<String> = original.get("toRecipients").and_then(Value::as_array).into_iter().flatten().map(|r| who(Some(r))).collect();
    let text = |k: &str| escape(original.get(k).and_then(Value::as_str).unwrap_or(""));
    let old = original.get("body").and_then(|b| b.get("content")).and_then(Value::as_str).unwrap_or("");
    format!(
        "<html><body><div>{}</div><hr><div><b>From:</b> {}<br><b>Sent:</b> {}<br><b>To:</b> {}<br><b>Subject:</b> {}</div><div>{}</div></body></html>",
        escape(comment),
        who(original.get("from")),
        text("sentDateTime"),
        to.join("; "),
        text("subject"),
        old
    )
}

/// `POST …/messages/{id}/send` → 202: the draft becomes the sent message in Sent Items (same item, so
/// the same immutable id) and hosted recipients get a copy. No longer a draft → 404.
pub(super) fn send_draft(call: &Call, id: &str) -> GResp {
    let arc = call.mailbox();
    let mut mb = lock(&arc);
    let Some((n, draft)) = stored(&mb, Kind::Message, id).filter(|(_, d)| d.get("isDraft") == Some(&json!(true))) else {
        return call.not_found();
    };
    let to = recipients(&draft);
    if let Some(r) = recipient_error(call.ctx, &to) {
        return r;
    }
    let owner = &call.user.user;
    let from_addr = address(draft.get("from")).unwrap_or_else(|| owner.user_principal_name.clone());
    let Some(from) = call.shared.user(&from_addr).filter(|f| may_send_from(call.grant, call.caller, Some(f))) else {
        return send_as_denied(call.ctx);
    };
    let now = call.shared.now();
    let stamp = json!(generate::graph_datetime(now));
    let signer = call.caller.map(|c| &c.user).unwrap_or(owner);
    let mut patch = Map::new();
    for (k, v) in [("isDraft", json!(false)), ("isRead", json!(true)), ("sentDateTime", stamp.clone()), ("receivedDateTime", stamp)] {
        patch.insert(k.into(), v);
    }
    patch.insert("from".into(), email_json(&from.user));
    patch.insert("sender".into(), email_json(signer));
    mb.update(Kind::Message, n, patch, now);
    mb.move_to(Kind::Message, n, "sentitems", now);
    crate::subscriptions::flush(call.shared, owner, &mut mb);
    let sent = mb.item_full(Kind::Message, n, false);
    drop(mb);
    if let Some(Value::Object(sent)) = sent {
        deliver(call.shared, &sent, &to);
    }
    note(call.shared, Effect::Sent);
    GResp::empty(202)
}

/// `POST …/sendMail` → 202: a copy to Sent Items (of the signed-in sender when sending from someone
/// else, unless `saveToSentItems` is false) and one to each hosted recipient.
pub(super) fn send_mail(call: &Call) -> GResp {
    let ctx = call.ctx;
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&call.req.body) else {
        return err(ctx, 400, "ErrorInvalidRequest", "Cannot read the request body. JSON content expected.");
    };
    let Some(Value::Object(message)) = param(&body, "message").cloned() else {
        return err(ctx, 400, "ErrorInvalidParameter", "The value of the parameter 'Message' is empty.");
    };
    let to = recipients(&message);
    if let Some(r) = recipient_error(ctx, &to) {
        return r;
    }
    let owner = &call.user.user;
    let explicit_from = address(message.get("from"));
    let from_addr = explicit_from.clone().unwrap_or_else(|| owner.user_principal_name.clone());
    let Some(from) = call.shared.user(&from_addr).filter(|f| may_send_from(call.grant, call.caller, Some(f))) else {
        return send_as_denied(ctx);
    };
    let mut stored = match draft_fields(call, message) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let stamp = json!(generate::graph_datetime(call.shared.now()));
    stored.insert("sentDateTime".into(), stamp);
    stored.insert("isDraft".into(), json!(false));
    stored.insert("from".into(), email_json(&from.user));
    stored.insert("sender".into(), email_json(call.caller.map(|c| &c.user).unwrap_or(owner)));
    if param(&body, "saveToSentItems").and_then(Value::as_bool) != Some(false) {
        let copy_owner = call.caller.filter(|_| explicit_from.is_some()).map(|c| &c.user).unwrap_or(owner);
        add_and_notify(call.shared, copy_owner, "sentitems", stored.clone());
    }
    deliver(call.shared, &stored, &to);
    note(call.shared, Effect::Sent);
    GResp::empty(202)
}

/// A copy of a sent message in the inbox of every recipient the emulator hosts (same tenant or not):
/// unread, without the Bcc line and without the sender's extended properties.
fn deliver(shared: &Shared, sent: &Map<String, Value>, recipients: &[String]) {
    let mut copy = sent.clone();
    copy.retain(|k, _| {
        !k.starts_with('@') && !matches!(k.as_str(), "id" | "changeKey" | "parentFolderId" | "createdDateTime" | "lastModifiedDateTime")
    });
    copy.remove("bccRecipients");
    copy.remove("singleValueExtendedProperties");
    copy.insert("isRead".into(), json!(false));
    copy.insert("isDraft".into(), json!(false));
    let mut done: Vec<String> = Vec::new();
    for r in recipients {
        let Some(rcpt) = shared.user(r).filter(|u| u.user.licensed) else {
            continue;
        };
        if done.contains(&rcpt.user.id) {
            continue;
        }
        done.push(rcpt.user.id.clone());
        add_and_notify(shared, &rcpt.user, "inbox", copy.clone());
        note(shared, Effect::Delivered);
    }
}

fn add_and_notify(shared: &Shared, owner: &crate::UserFixture, folder: &str, message: Map<String, Value>) {
    let arc = shared.mailbox(owner);
    let mut mb = lock(&arc);
    mb.add(Kind::Message, folder, Value::Object(message), shared.now());
    crate::subscriptions::flush(shared, owner, &mut mb);
}
