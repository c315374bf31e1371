//! The Graph routing table. Every route is one row; functions and actions match by their short name
//! (`delta`, `sendMail`) and by the full names generated SDKs send (`delta()`, `microsoft.graph.delta`,
//! `microsoft.graph.delta()`, `microsoft.graph.sendMail`), with the short name kept as the counter label.

use super::*;

#[derive(Clone, Debug)]
pub(crate) enum Op {
    Me,
    UserGet,
    UsersList,
    MailboxSettings,
    MailFolders,
    ChildFolders(String),
    MailFolder(String),
    MailFoldersDelta,
    MessagesDelta(String),
    Message(String),
    SendMail,
    CalendarViewDelta,
    CreateEvent,
    Event(String),
    ContactFolders,
    ContactsDelta(String),
    CreateContact(String),
    TodoLists,
    TodoListsDelta,
    TasksDelta(String),
    CreateTask(String),
}

pub(super) enum Target {
    Me,
    User(String),
    None,
}

/// One row: method, path below `/me` or `/users/{id}` (`{id}` captures a segment), counter label (when
/// it differs from the path), the operation built from the capture, and the permission it needs.
struct Row {
    get: bool,
    path: &'static str,
    label: Option<&'static str>,
    op: fn(String) -> Op,
    need: Need,
}

const fn get(path: &'static str, op: fn(String) -> Op, need: Need) -> Row {
    Row { get: true, path, label: None, op, need }
}

const fn post(path: &'static str, op: fn(String) -> Op, need: Need) -> Row {
    Row { get: false, path, label: None, op, need }
}

const fn labelled(row: Row, label: &'static str) -> Row {
    Row { label: Some(label), ..row }
}

const TABLE: &[Row] = &[
    get("mailboxSettings", |_| Op::MailboxSettings, Need::MailboxSettingsRead),
    get("mailFolders", |_| Op::MailFolders, Need::MailRead),
    get("mailFolders/delta", |_| Op::MailFoldersDelta, Need::MailRead),
    get("mailFolders/{id}", Op::MailFolder, Need::MailRead),
    get("mailFolders/{id}/childFolders", Op::ChildFolders, Need::MailRead),
    get("mailFolders/{id}/messages/delta", Op::MessagesDelta, Need::MailRead),
    get("messages/{id}", Op::Message, Need::MailRead),
    post("sendMail", |_| Op::SendMail, Need::MailSend),
    get("calendarView/delta", |_| Op::CalendarViewDelta, Need::CalRead),
    post("events", |_| Op::CreateEvent, Need::CalWrite),
    labelled(post("calendar/events", |_| Op::CreateEvent, Need::CalWrite), "events"),
    get("events/{id}", Op::Event, Need::CalRead),
    get("contactFolders", |_| Op::ContactFolders, Need::ContactsRead),
    get("contactFolders/{id}/contacts/delta", Op::ContactsDelta, Need::ContactsRead),
    post("contactFolders/{id}/contacts", Op::CreateContact, Need::ContactsWrite),
    get("contacts/delta", |_| Op::ContactsDelta("contacts".into()), Need::ContactsRead),
    post("contacts", |_| Op::CreateContact("contacts".into()), Need::ContactsWrite),
    get("todo/lists", |_| Op::TodoLists, Need::TasksRead),
    get("todo/lists/delta", |_| Op::TodoListsDelta, Need::TasksRead),
    get("todo/lists/{id}/tasks/delta", Op::TasksDelta, Need::TasksRead),
    post("todo/lists/{id}/tasks", Op::CreateTask, Need::TasksWrite),
];

/// A function or action segment in any of the forms Graph accepts, reduced to its short name.
fn short_name(seg: &str) -> &str {
    let s = seg.strip_suffix("()").unwrap_or(seg);
    match s.get(..16) {
        Some(p) if p.eq_ignore_ascii_case("microsoft.graph.") => &s[16..],
        _ => s,
    }
}

/// Matches `segs` against a row's path; `Some(capture)` on success.
fn matches(path: &str, segs: &[&str]) -> Option<String> {
    let parts: Vec<&str> = path.split('/').collect();
    if parts.len() != segs.len() {
        return None;
    }
    let mut capture = String::new();
    for (p, s) in parts.iter().zip(segs) {
        if *p == "{id}" {
            capture = s.to_string();
        } else if !p.eq_ignore_ascii_case(short_name(s)) {
            return None;
        }
    }
    Some(capture)
}

/// (route template for counters, target, operation, permission needed)
pub(super) fn route(method: &Method, segs: &[String]) -> Option<(String, Target, Op, Need)> {
    let (target, prefix, rest): (Target, &str, &[String]) = match segs {
        [first, rest @ ..] if first.eq_ignore_ascii_case("me") => (Target::Me, "/me", rest),
        [first] if first.eq_ignore_ascii_case("users") => {
            return (method == Method::GET).then(|| {
                let t = "GET /users".to_string();
                (t, Target::None, Op::UsersList, Need::Directory)
            });
        }
        [first, id, rest @ ..] if first.eq_ignore_ascii_case("users") => (Target::User(id.clone()), "/users/{id}", rest),
        _ => return None,
    };
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    let (get, post) = (*method == Method::GET, *method == Method::POST);
    if rest.is_empty() {
        let op = match target {
            Target::Me => Op::Me,
            _ => Op::UserGet,
        };
        return get.then(|| (format!("{method} {prefix}"), target, op, Need::Profile));
    }
    TABLE
        .iter()
        .filter(|r| if r.get { get } else { post })
        .find_map(|r| {
            let capture = matches(r.path, &rest)?;
            let label = r.label.unwrap_or(r.path);
            let template = format!("{method} {prefix}/{label}");
            Some((template, Target::None, (r.op)(capture), r.need))
        })
        .map(|(t, _, op, need)| (t, target, op, need))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(s: &str) -> Vec<String> {
        s.split('/').map(str::to_string).collect()
    }

    #[test]
    fn routes_map_me_and_users_alike() {
        let (t, _, op, need) = route(&Method::GET, &segs("me/mailFolders/inbox/messages/delta")).unwrap();
        assert_eq!(t, "GET /me/mailFolders/{id}/messages/delta");
        assert!(matches!(op, Op::MessagesDelta(f) if f == "inbox"));
        assert_eq!(need, Need::MailRead);
        let (t, target, _, _) = route(&Method::GET, &segs("users/bob@x/calendarView/delta")).unwrap();
        assert_eq!(t, "GET /users/{id}/calendarView/delta");
        assert!(matches!(target, Target::User(u) if u == "bob@x"));
        assert!(route(&Method::DELETE, &segs("me/mailFolders")).is_none());
        let (t, _, _, _) = route(&Method::POST, &segs("me/calendar/events")).unwrap();
        assert_eq!(t, "POST /me/events");
    }

    #[test]
    fn full_function_and_action_names_share_the_short_route() {
        for form in ["delta", "delta()", "microsoft.graph.delta", "microsoft.graph.delta()"] {
            let path = format!("me/contactFolders/f1/contacts/{form}");
            let (t, _, op, _) = route(&Method::GET, &segs(&path)).unwrap();
            assert_eq!(t, "GET /me/contactFolders/{id}/contacts/delta", "{form}");
            assert!(matches!(op, Op::ContactsDelta(f) if f == "f1"));
        }
        let (t, _, op, _) = route(&Method::POST, &segs("users/a@b/microsoft.graph.sendMail")).unwrap();
        assert_eq!(t, "POST /users/{id}/sendMail");
        assert!(matches!(op, Op::SendMail));
        assert!(route(&Method::GET, &segs("me/contacts/microsoft.graph.deltas")).is_none());
    }

    #[test]
    fn odata_key_segments_unfold() {
        assert_eq!(path_segments("/me/mailFolders('inbox')/messages/delta"), ["me", "mailFolders", "inbox", "messages", "delta"]);
        assert_eq!(path_segments("/users('a%40b.test')/mailFolders"), ["users", "a@b.test", "mailFolders"]);
    }
}
