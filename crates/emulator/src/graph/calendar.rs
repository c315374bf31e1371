//! Calendar: creating events (a repeated `transactionId` returns the event already made; hosted
//! attendees get the meeting in their calendars) and cancelling them (organizer only). calendarView
//! delta is in `delta`.

use super::mail::param;
use super::mailbox::{Call, stored};
use super::props;
use super::*;
use crate::registry::{Effect, note};

const NO_TIME: &str = "0001-01-01T00:00:00Z";

fn attendee_addresses(event: &Map<String, Value>) -> Vec<String> {
    event
        .get("attendees")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| a.pointer("/emailAddress/address").and_then(Value::as_str).map(str::to_string))
        .collect()
}

/// The hosted, licensed attendees other than the organizer, once each.
fn hosted_attendees(shared: &Shared, event: &Map<String, Value>, organizer: &crate::UserFixture) -> Vec<crate::UserFixture> {
    let mut out: Vec<crate::UserFixture> = Vec::new();
    for a in attendee_addresses(event) {
        if let Some(u) = shared.user(&a).filter(|u| u.user.licensed && u.user.id != organizer.id)
            && !out.iter().any(|o| o.id == u.user.id)
        {
            out.push(u.user);
        }
    }
    out
}

/// The event as the organizer's calendar stores it: Graph's defaults filled in.
fn event_fields(call: &Call, mut fields: Map<String, Value>) -> Result<Map<String, Value>, GResp> {
    let has = |k: &str| fields.get(k).and_then(|s| s.get("dateTime")).is_some();
    if !has("start") || !has("end") {
        return Err(err(call.ctx, 400, "ErrorInvalidRequest", "Your request can't be completed. The start and end times are required."));
    }
    let ext = props::extended(&fields).map_err(|e| err(call.ctx, 400, "ErrorInvalidExtendedPropertyValue", &e))?;
    fields.retain(|k, _| {
        !k.starts_with('@') && !matches!(k.as_str(), "id" | "iCalUId" | "changeKey" | "createdDateTime" | "lastModifiedDateTime")
    });
    if let Some(ext) = ext {
        fields.insert("singleValueExtendedProperties".into(), Value::Array(ext));
    }
    let user = &call.user.user;
    fields.entry("isAllDay").or_insert(json!(false));
    fields.entry("isCancelled").or_insert(json!(false));
    fields.entry("showAs").or_insert(json!("busy"));
    fields.entry("importance").or_insert(json!("normal"));
    let attendees: Vec<Value> = fields
        .get("attendees")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|a| {
            let mut a = a.clone();
            a.as_object_mut().map(|m| m.entry("type").or_insert(json!("required")));
            a["status"] = json!({"response": "none", "time": NO_TIME});
            a
        })
        .collect();
    fields.insert("attendees".into(), Value::Array(attendees));
    fields.insert("isOrganizer".into(), json!(true));
    fields.insert("responseStatus".into(), json!({"response": "organizer", "time": NO_TIME}));
    fields.insert("organizer".into(), json!({"emailAddress": {"name": user.display_name, "address": user.user_principal_name}}));
    fields.insert("iCalUId".into(), json!(format!("040000008200E00074C5B7101A82E008{}", guid().replace('-', "").to_uppercase())));
    Ok(fields)
}

/// `POST …/events` → 201 the event. The same `transactionId` again (same organizer mailbox) → 201 the
/// event created the first time, nothing new (Microsoft Learn, event resource: "avoid redundant POST
/// operations in case of client retries").
pub(super) fn create_event(call: &Call) -> GResp {
    let fields = match call.body_object().and_then(|b| event_fields(call, b)) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let tx = fields.get("transactionId").and_then(Value::as_str).map(str::to_string);
    let (mut v, created) = {
        let arc = call.mailbox();
        let mut mb = lock(&arc);
        let earlier =
            tx.as_ref().and_then(|tx| mb.find(Kind::Event, |v| v["transactionId"].as_str() == Some(tx.as_str())).first().copied());
        match earlier {
            Some(n) => (mb.item_json(Kind::Event, n, call.immutable).unwrap_or(Value::Null), false),
            None => {
                let n = mb.add(Kind::Event, "calendar", Value::Object(fields.clone()), call.shared.now());
                crate::subscriptions::flush(call.shared, &call.user.user, &mut mb);
                note(call.shared, Effect::Created(Kind::Event));
                (mb.item_json(Kind::Event, n, call.immutable).unwrap_or(Value::Null), true)
            }
        }
    };
    if created {
        invite(call, &fields);
    }
    v["type"] = json!("singleInstance");
    call.applied(GResp::json(201, &v))
}

/// Puts the meeting in every hosted attendee's calendar: their copy names the organizer and waits for
/// an answer (`notResponded`).
fn invite(call: &Call, event: &Map<String, Value>) {
    let mut copy = event.clone();
    for k in ["transactionId", "singleValueExtendedProperties"] {
        copy.remove(k);
    }
    copy.insert("isOrganizer".into(), json!(false));
    copy.insert("responseStatus".into(), json!({"response": "notResponded", "time": NO_TIME}));
    copy.insert("responseRequested".into(), json!(true));
    for u in hosted_attendees(call.shared, event, &call.user.user) {
        let arc = call.shared.mailbox(&u);
        let mut mb = lock(&arc);
        mb.add(Kind::Event, "calendar", Value::Object(copy.clone()), call.shared.now());
        crate::subscriptions::flush(call.shared, &u, &mut mb);
        note(call.shared, Effect::Invited);
    }
}

/// `POST …/events/{id}/cancel` `{comment}` → 202: the organizer's event goes (to Deleted Items, out of
/// the calendar) and the attendees' copies are marked cancelled. An attendee → 400.
pub(super) fn cancel_event(call: &Call, id: &str) -> GResp {
    let params = if call.req.body.iter().all(u8::is_ascii_whitespace) { Ok(Map::new()) } else { call.body_object() };
    if let Err(r) = params {
        return r;
    }
    let owner = &call.user.user;
    let arc = call.mailbox();
    let mut mb = lock(&arc);
    let Some((n, event)) = stored(&mb, Kind::Event, id) else {
        return call.not_found();
    };
    let organizer = event.get("organizer").and_then(|o| o.pointer("/emailAddress/address")).and_then(Value::as_str);
    let is_organizer = event.get("isOrganizer").and_then(Value::as_bool).unwrap_or(false)
        && organizer.is_none_or(|o| o.eq_ignore_ascii_case(&owner.user_principal_name));
    if !is_organizer {
        let msg = "Your request can't be completed. You need to be an organizer to cancel a meeting.";
        return err(call.ctx, 400, "ErrorInvalidRequest", msg);
    }
    mb.delete(Kind::Event, n);
    crate::subscriptions::flush(call.shared, owner, &mut mb);
    drop(mb);
    let uid = event.get("iCalUId").cloned().unwrap_or(Value::Null);
    let subject = event.get("subject").and_then(Value::as_str).unwrap_or("");
    let comment = params.ok().and_then(|p| param(&p, "comment").and_then(Value::as_str).map(str::to_string));
    for u in hosted_attendees(call.shared, &event, owner) {
        let arc = call.shared.mailbox(&u);
        let mut mb = lock(&arc);
        for copy in mb.find(Kind::Event, |v| v.get("iCalUId") == Some(&uid)) {
            let mut patch = Map::new();
            patch.insert("isCancelled".into(), json!(true));
            patch.insert("subject".into(), json!(format!("Canceled: {subject}")));
            if let Some(c) = &comment {
                patch.insert("body".into(), json!({"contentType": "text", "content": c}));
                patch.insert("bodyPreview".into(), json!(c.chars().take(255).collect::<String>()));
            }
            mb.update(Kind::Event, copy, patch, call.shared.now());
        }
        crate::subscriptions::flush(call.shared, &u, &mut mb);
    }
    GResp::empty(202)
}
