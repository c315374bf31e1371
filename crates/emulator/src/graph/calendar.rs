//! Calendar: creating events (calendarView delta is in `delta`).

use super::mailbox::Call;
use super::*;

pub(super) fn create_event(call: &Call) -> GResp {
    let mut fields = match call.body_object() {
        Ok(b) => b,
        Err(r) => return r,
    };
    if fields.get("start").and_then(|s| s.get("dateTime")).is_none() || fields.get("end").and_then(|s| s.get("dateTime")).is_none() {
        return err(call.ctx, 400, "ErrorInvalidRequest", "Your request can't be completed. The start and end times are required.");
    }
    let user = &call.user.user;
    fields.entry("isAllDay").or_insert(json!(false));
    fields.entry("isCancelled").or_insert(json!(false));
    fields.entry("showAs").or_insert(json!("busy"));
    fields.entry("attendees").or_insert(json!([]));
    fields.entry("organizer").or_insert(json!({"emailAddress": {"name": user.display_name, "address": user.user_principal_name}}));
    fields.insert("iCalUId".into(), json!(format!("040000008200E00074C5B7101A82E008{}", guid().replace('-', "").to_uppercase())));
    let mut v = call.created(Kind::Event, "calendar", fields);
    v["type"] = json!("singleInstance");
    call.applied(GResp::json(201, &v))
}
