//! Graph items → stored rows: the fields the Activity page shows, and the text it searches.

use microsoft::{GraphItem, Recipient};
use serde_json::json;
use store::UnixTime;
use store::sync::SyncedItem;

/// `2026-11-02T09:30:00Z`, or calendar-style `2026-11-02T09:30:00.0000000` (UTC: no
/// `Prefer: outlook.timezone` is sent, §3.4), as unix seconds.
pub(crate) fn parse_graph_time(s: &str) -> Option<UnixTime> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t.unix_timestamp());
    }
    let head = s.get(..19)?;
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    time::PrimitiveDateTime::parse(head, &fmt).ok().map(|t| t.assume_utc().unix_timestamp())
}

fn person(r: &Option<Recipient>) -> String {
    let Some(r) = r else { return String::new() };
    match (&r.email_address.name, &r.email_address.address) {
        (Some(n), Some(a)) if !n.is_empty() => format!("{n} <{a}>"),
        (_, Some(a)) => a.clone(),
        (Some(n), None) => n.clone(),
        (None, None) => String::new(),
    }
}

/// The stored row for an item of `container`.
pub(crate) fn to_row(item: &GraphItem, container: &str) -> SyncedItem {
    let (title, subtitle, preview, occurred_at, data) = match item {
        GraphItem::Message(m) => (
            m.subject.clone().unwrap_or_default(),
            person(&m.from),
            m.body_preview.clone().unwrap_or_default(),
            m.received_date_time.as_deref().and_then(parse_graph_time),
            json!({"isRead": m.is_read, "conversationId": m.conversation_id, "receivedDateTime": m.received_date_time}),
        ),
        GraphItem::Event(e) => {
            let start = e.start.as_ref().and_then(|s| s.date_time.clone());
            let end = e.end.as_ref().and_then(|s| s.date_time.clone());
            let location = e.location.as_ref().and_then(|l| l.display_name.clone()).unwrap_or_default();
            (
                e.subject.clone().unwrap_or_default(),
                person(&e.organizer),
                if e.is_cancelled == Some(true) { format!("Cancelled. {location}").trim().to_string() } else { location },
                start.as_deref().and_then(parse_graph_time),
                json!({"start": start, "end": end, "isAllDay": e.is_all_day, "isCancelled": e.is_cancelled, "type": e.event_type}),
            )
        }
        GraphItem::Contact(c) => {
            let email = c.email_addresses.iter().find_map(|e| e.address.clone()).unwrap_or_default();
            let work = [c.job_title.clone(), c.company_name.clone()].into_iter().flatten().collect::<Vec<_>>().join(", ");
            (
                c.display_name.clone().unwrap_or_default(),
                email,
                work,
                None,
                json!({"mobilePhone": c.mobile_phone, "businessPhones": c.business_phones}),
            )
        }
        GraphItem::Task(t) => {
            let due = t.due_date_time.as_ref().and_then(|d| d.date_time.clone());
            (
                t.title.clone().unwrap_or_default(),
                t.status.clone().unwrap_or_default(),
                t.importance.clone().unwrap_or_default(),
                due.as_deref().or(t.created_date_time.as_deref()).and_then(parse_graph_time),
                json!({"due": due, "created": t.created_date_time, "lastModified": t.last_modified_date_time}),
            )
        }
    };
    SyncedItem {
        graph_id: item.id().to_string(),
        container: container.to_string(),
        title,
        subtitle,
        preview,
        occurred_at,
        data: data.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_times_parse_in_both_shapes() {
        assert_eq!(parse_graph_time("1970-01-01T00:01:00Z"), Some(60));
        assert_eq!(parse_graph_time("1970-01-01T00:01:00.0000000"), Some(60));
        assert_eq!(parse_graph_time("soon"), None);
    }
}
