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
    Messages,
    Message(String),
    CreateMessage,
    Respond(String, Respond),
    Send(String),
    SendMail,
    CalendarViewDelta,
    CreateEvent,
    Event(String),
    CancelEvent(String),
    ContactFolders,
    ContactFolder(String),
    ContactChildFolders(String),
    ContactsDelta(String),
    CreateContact(String),
    Contacts,
    Contact(String),
    UpdateContact(String),
    TodoLists,
    TodoListsDelta,
    TasksDelta(String),
    CreateTask(String),
    Tasks(String),
    Task(String, String),
    UpdateTask(String, String),
}

/// The three ways to answer a message with a draft.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Respond {
    Reply,
    ReplyAll,
    Forward,
}

pub(super) enum Target {
    Me,
    User(String),
    None,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Verb {
    Get,
    Post,
    Patch,
}

/// Builds the operation from the path's `{id}` captures (one or two).
#[derive(Clone, Copy)]
enum Build {
    One(fn(String) -> Op),
    Two(fn(String, String) -> Op),
}

/// One row: method, path below `/me` or `/users/{id}` (`{id}` captures a segment), counter label (when
/// it differs from the path), the operation built from the captures, and the permission it needs.
struct Row {
    verb: Verb,
    path: &'static str,
    label: Option<&'static str>,
    op: Build,
    need: Need,
}

const fn get(path: &'static str, op: fn(String) -> Op, need: Need) -> Row {
    Row { verb: Verb::Get, path, label: None, op: Build::One(op), need }
}

const fn post(path: &'static str, op: fn(String) -> Op, need: Need) -> Row {
    Row { verb: Verb::Post, path, label: None, op: Build::One(op), need }
}

const fn patch(path: &'static str, op: fn(String) -> Op, need: Need) -> Row {
    Row { verb: Verb::Patch, path, label: None, op: Build::One(op), need }
}

const fn two(verb: Verb, path: &'static str, op: fn(String, String) -> Op, need: Need) -> Row {
    Row { verb, path, label: None, op: Build::Two(op), need }
}

const fn labelled(row: Row, label: &'static str) -> Row {
    Row { label: Some(label), ..row }
}

// Order matters where a literal segment and `{id}` compete (`contacts/delta` before `contacts/{id}`).
const TABLE: &[Row] = &[
    get("mailboxSettings", |_| Op::MailboxSettings, Need::MailboxSettingsRead),
    get("mailFolders", |_| Op::MailFolders, Need::MailRead),
    get("mailFolders/delta", |_| Op::MailFoldersDelta, Need::MailRead),
    get("mailFolders/{id}", Op::MailFolder, Need::MailRead),
    get("mailFolders/{id}/childFolders", Op::ChildFolders, Need::MailRead),
    get("mailFolders/{id}/messages/delta", Op::MessagesDelta, Need::MailRead),
    get("messages", |_| Op::Messages, Need::MailRead),
    get("messages/{id}", Op::Message, Need::MailRead),
    post("messages", |_| Op::CreateMessage, Need::MailWrite),
    post("messages/{id}/createReply", |id| Op::Respond(id, Respond::Reply), Need::MailWrite),
    post("messages/{id}/createReplyAll", |id| Op::Respond(id, Respond::ReplyAll), Need::MailWrite),
    post("messages/{id}/createForward", |id| Op::Respond(id, Respond::Forward), Need::MailWrite),
    post("messages/{id}/send", Op::Send, Need::MailSend),
    post("sendMail", |_| Op::SendMail, Need::MailSend),
    get("calendarView/delta", |_| Op::CalendarViewDelta, Need::CalRead),
    post("events", |_| Op::CreateEvent, Need::CalWrite),
    labelled(post("calendar/events", |_| Op::CreateEvent, Need::CalWrite), "events"),
    get("events/{id}", Op::Event, Need::CalRead),
    labelled(get("calendar/events/{id}", Op::Event, Need::CalRead), "events/{id}"),
    post("events/{id}/cancel", Op::CancelEvent, Need::CalWrite),
    labelled(post("calendar/events/{id}/cancel", Op::CancelEvent, Need::CalWrite), "events/{id}/cancel"),
    get("contactFolders", |_| Op::ContactFolders, Need::ContactsRead),
    get("contactFolders/{id}", Op::ContactFolder, Need::ContactsRead),
    get("contactFolders/{id}/childFolders", Op::ContactChildFolders, Need::ContactsRead),
    get("contactFolders/{id}/contacts/delta", Op::ContactsDelta, Need::ContactsRead),
    post("contactFolders/{id}/contacts", Op::CreateContact, Need::ContactsWrite),
    get("contacts/delta", |_| Op::ContactsDelta("contacts".into()), Need::ContactsRead),
    get("contacts", |_| Op::Contacts, Need::ContactsRead),
    get("contacts/{id}", Op::Contact, Need::ContactsRead),
    post("contacts", |_| Op::CreateContact("contacts".into()), Need::ContactsWrite),
    patch("contacts/{id}", Op::UpdateContact, Need::ContactsWrite),
    get("todo/lists", |_| Op::TodoLists, Need::TasksRead),
    get("todo/lists/delta", |_| Op::TodoListsDelta, Need::TasksRead),
    get("todo/lists/{id}/tasks/delta", Op::TasksDelta, Need::TasksRead),
    get("todo/lists/{id}/tasks", Op::Tasks, Need::TasksRead),
    two(Verb::Get, "todo/lists/{id}/tasks/{id}", Op::Task, Need::TasksRead),
    post("todo/lists/{id}/tasks", Op::CreateTask, Need::TasksWrite),
    two(Verb::Patch, "todo/lists/{id}/tasks/{id}", Op::UpdateTask, Need::TasksWrite),
];

/// A function or action segment in any of the forms Graph accepts, reduced to its short name.
fn short_name(seg: &str) -> &str {
    let s = seg.strip_suffix("()").unwrap_or(seg);
    match s.get(..16) {
        Some(p) if p.eq_ignore_ascii_case("microsoft.graph.") => &s[16..],
        _ => s,
    }
}

/// Matches `segs` against a row's path; `Some(captures)` on success.
fn matches(path: &str, segs: &[&str]) -> Option<Vec<String>> {
    let parts: Vec<&str> = path.split('/').collect();
    if parts.len() != segs.len() {
        return None;
    }
    let mut captures = Vec::new();
    for (p, s) in parts.iter().zip(segs) {
        if *p == "{id}" {
            captures.push(s.to_string());
        } else if !p.eq_ignore_ascii_case(short_name(s)) {
            return None;
        }
    }
    Some(captures)
}

fn build(op: Build, mut captures: Vec<String>) -> Op {
    let second = if captures.len() > 1 { captures.pop().unwrap_or_default() } else { String::new() };
    let first = captures.pop().unwrap_or_default();
    match op {
        Build::One(f) => f(first),
        Build::Two(f) => f(first, second),
    }
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
    let verb = match *method {
        Method::GET => Verb::Get,
        Method::POST => Verb::Post,
        Method::PATCH => Verb::Patch,
        _ => return None,
    };
    if rest.is_empty() {
        let op = match target {
            Target::Me => Op::Me,
            _ => Op::UserGet,
        };
        return (verb == Verb::Get).then(|| (format!("{method} {prefix}"), target, op, Need::Profile));
    }
    TABLE
        .iter()
        .filter(|r| r.verb == verb)
        .find_map(|r| {
            let captures = matches(r.path, &rest)?;
            let label = r.label.unwrap_or(r.path);
            let template = format!("{method} {prefix}/{label}");
            Some((template, Target::None, build(r.op, captures), r.need))
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
        assert!(route(&Method::GET, &segs("me/contacts/microsoft.graph.deltas")).is_some_and(|r| matches!(r.2, Op::Contact(_))));
        for form in ["send", "microsoft.graph.send", "microsoft.graph.send()"] {
            let (t, _, op, need) = route(&Method::POST, &segs(&format!("me/messages/m1/{form}"))).unwrap();
            assert_eq!(t, "POST /me/messages/{id}/send", "{form}");
            assert!(matches!(op, Op::Send(id) if id == "m1"));
            assert_eq!(need, Need::MailSend);
        }
        let (t, _, op, _) = route(&Method::POST, &segs("users/a@b/messages/m1/microsoft.graph.createReplyAll")).unwrap();
        assert_eq!(t, "POST /users/{id}/messages/{id}/createReplyAll");
        assert!(matches!(op, Op::Respond(id, Respond::ReplyAll) if id == "m1"));
        let (t, _, _, _) = route(&Method::POST, &segs("me/calendar/events/e1/microsoft.graph.cancel")).unwrap();
        assert_eq!(t, "POST /me/events/{id}/cancel");
    }

    #[test]
    fn two_captures_and_patch_routes() {
        let (t, _, op, need) = route(&Method::PATCH, &segs("me/todo/lists/l1/tasks/t1")).unwrap();
        assert_eq!(t, "PATCH /me/todo/lists/{id}/tasks/{id}");
        assert!(matches!(op, Op::UpdateTask(l, t) if l == "l1" && t == "t1"));
        assert_eq!(need, Need::TasksWrite);
        let (_, _, op, _) = route(&Method::GET, &segs("me/todo/lists/l1/tasks/delta")).unwrap();
        assert!(matches!(op, Op::TasksDelta(l) if l == "l1"), "delta wins over a task id");
        let (_, _, op, _) = route(&Method::GET, &segs("me/contacts/delta")).unwrap();
        assert!(matches!(op, Op::ContactsDelta(_)));
        let (_, _, op, need) = route(&Method::PATCH, &segs("me/contacts/c1")).unwrap();
        assert!(matches!(op, Op::UpdateContact(c) if c == "c1"));
        assert_eq!(need, Need::ContactsWrite);
        assert!(route(&Method::DELETE, &segs("me/contacts/c1")).is_none());
    }

    #[test]
    fn odata_key_segments_unfold() {
        assert_eq!(path_segments("/me/mailFolders('inbox')/messages/delta"), ["me", "mailFolders", "inbox", "messages", "delta"]);
        assert_eq!(path_segments("/users('a%40b.test')/mailFolders"), ["users", "a@b.test", "mailFolders"]);
    }
}
