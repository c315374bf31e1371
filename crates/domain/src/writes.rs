//! Read-write features (PRODUCT.md "Read-write features"): what a person may ask the product to
//! write to Microsoft 365, checked here once so the browser and the server agree, and where each
//! write stands on its way through the outbox.

use crate::email::EmailAddress;
use crate::permissions::{AccessLevel, ConnectionMode, is_granted};
use crate::sync::Resource;
use serde::{Deserialize, Serialize};

/// The kinds of write, one per action the product offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WriteKind {
    SendMail,
    Reply,
    ReplyAll,
    Forward,
    CreateEvent,
    CancelEvent,
    CreateContact,
    UpdateContact,
    CreateTask,
    CompleteTask,
    ReopenTask,
}

impl WriteKind {
    pub const ALL: [WriteKind; 11] = [
        WriteKind::SendMail,
        WriteKind::Reply,
        WriteKind::ReplyAll,
        WriteKind::Forward,
        WriteKind::CreateEvent,
        WriteKind::CancelEvent,
        WriteKind::CreateContact,
        WriteKind::UpdateContact,
        WriteKind::CreateTask,
        WriteKind::CompleteTask,
        WriteKind::ReopenTask,
    ];

    /// The stored form and the audit action's suffix: `send_mail`, `cancel_event`, …
    pub fn as_str(self) -> &'static str {
        match self {
            WriteKind::SendMail => "send_mail",
            WriteKind::Reply => "reply",
            WriteKind::ReplyAll => "reply_all",
            WriteKind::Forward => "forward",
            WriteKind::CreateEvent => "create_event",
            WriteKind::CancelEvent => "cancel_event",
            WriteKind::CreateContact => "create_contact",
            WriteKind::UpdateContact => "update_contact",
            WriteKind::CreateTask => "create_task",
            WriteKind::CompleteTask => "complete_task",
            WriteKind::ReopenTask => "reopen_task",
        }
    }

    pub fn parse(s: &str) -> Option<WriteKind> {
        WriteKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// What it writes to.
    pub fn resource(self) -> Resource {
        match self {
            WriteKind::SendMail | WriteKind::Reply | WriteKind::ReplyAll | WriteKind::Forward => Resource::Mail,
            WriteKind::CreateEvent | WriteKind::CancelEvent => Resource::Calendar,
            WriteKind::CreateContact | WriteKind::UpdateContact => Resource::Contacts,
            WriteKind::CreateTask | WriteKind::CompleteTask | WriteKind::ReopenTask => Resource::Tasks,
        }
    }

    /// "Email sent", for the audit log and the pending row once done.
    pub fn done_label(self) -> &'static str {
        match self {
            WriteKind::SendMail => "Email sent",
            WriteKind::Reply | WriteKind::ReplyAll => "Reply sent",
            WriteKind::Forward => "Email forwarded",
            WriteKind::CreateEvent => "Event created",
            WriteKind::CancelEvent => "Event cancelled",
            WriteKind::CreateContact => "Contact created",
            WriteKind::UpdateContact => "Contact saved",
            WriteKind::CreateTask => "Task created",
            WriteKind::CompleteTask => "Task completed",
            WriteKind::ReopenTask => "Task reopened",
        }
    }

    /// "Email not sent" when Microsoft refused it.
    pub fn failed_label(self) -> &'static str {
        match self {
            WriteKind::SendMail => "Email not sent",
            WriteKind::Reply | WriteKind::ReplyAll => "Reply not sent",
            WriteKind::Forward => "Email not forwarded",
            WriteKind::CreateEvent => "Event not created",
            WriteKind::CancelEvent => "Event not cancelled",
            WriteKind::CreateContact => "Contact not created",
            WriteKind::UpdateContact => "Contact not saved",
            WriteKind::CreateTask => "Task not created",
            WriteKind::CompleteTask => "Task not completed",
            WriteKind::ReopenTask => "Task not reopened",
        }
    }

    /// "Sending…" while it waits in the outbox.
    pub fn pending_label(self) -> &'static str {
        match self.resource() {
            Resource::Mail => "Sending…",
            _ => "Saving…",
        }
    }

    /// The Microsoft Graph permissions it needs under `mode`, for the mailbox's own account
    /// (`own`) or another mailbox reached through the service connection; `None` when the product
    /// does not offer it in that mode (application contacts are read-only in the catalogue).
    pub fn permissions(self, mode: ConnectionMode, own: bool) -> Option<&'static [&'static str]> {
        let app = mode == ConnectionMode::ApplicationPermissions;
        Some(match (self.resource(), app, own) {
            (Resource::Mail, false, _) => &["Mail.ReadWrite.Shared", "Mail.Send.Shared"],
            (Resource::Mail, true, _) => &["Mail.ReadWrite", "Mail.Send"],
            (Resource::Calendar, false, true) => &["Calendars.ReadWrite"],
            (Resource::Calendar, false, false) => &["Calendars.ReadWrite.Shared"],
            (Resource::Calendar, true, _) => &["Calendars.ReadWrite"],
            (Resource::Contacts, false, _) => &["Contacts.ReadWrite"],
            (Resource::Contacts, true, _) => return None,
            (Resource::Tasks, false, _) => &["Tasks.ReadWrite"],
            (Resource::Tasks, true, _) => &["Tasks.ReadWrite.All"],
        })
    }
}

/// Why a write is not offered (and refused, whatever the browser sends).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WriteRefusal {
    /// The organization's access level is read-only.
    ReadOnly,
    /// The resource is not synced.
    NotSynced(Resource),
    /// This mode offers no such write.
    NotInMode,
    /// Microsoft has not granted this permission; an admin (or the member, for their own
    /// delegated consent) must grant it.
    Missing(&'static str),
}

impl WriteRefusal {
    pub fn sentence(&self) -> String {
        match self {
            WriteRefusal::ReadOnly => "The organization's Office 365 access is read-only, so nothing can be written.".into(),
            WriteRefusal::NotSynced(r) => format!("{} is not synced, so it cannot be written.", r.label()),
            WriteRefusal::NotInMode => "This connection mode cannot write this.".into(),
            WriteRefusal::Missing(p) => format!("{p} has not been granted. An administrator can grant it on the Admin consent tab."),
        }
    }
}

/// May this write be offered and performed: read-write access, the resource synced, and every
/// permission it needs granted.
pub fn write_allowed(
    kind: WriteKind,
    access: AccessLevel,
    mode: ConnectionMode,
    resources: &[Resource],
    own_mailbox: bool,
    granted: &[String],
) -> Result<(), WriteRefusal> {
    if access != AccessLevel::ReadWrite {
        return Err(WriteRefusal::ReadOnly);
    }
    if !resources.contains(&kind.resource()) {
        return Err(WriteRefusal::NotSynced(kind.resource()));
    }
    let needed = kind.permissions(mode, own_mailbox).ok_or(WriteRefusal::NotInMode)?;
    match needed.iter().find(|p| !is_granted(granted, p)) {
        Some(p) => Err(WriteRefusal::Missing(p)),
        None => Ok(()),
    }
}

/// A message to send (new, or the text and recipients of a reply or forward).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MailDraft {
    pub to: Vec<EmailAddress>,
    pub cc: Vec<EmailAddress>,
    pub bcc: Vec<EmailAddress>,
    pub subject: String,
    pub body: String,
    /// The body is simple HTML rather than plain text.
    pub html: bool,
}

/// A new calendar event. Times are local wall-clock times (`2026-12-03T14:00`) in `time_zone`
/// (an IANA or Windows zone name, as Graph accepts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct EventDraft {
    pub subject: String,
    pub start: String,
    pub end: String,
    pub time_zone: String,
    pub location: String,
    pub attendees: Vec<EmailAddress>,
    pub body: String,
}

/// A contact's fields, new or edited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ContactDraft {
    pub given_name: String,
    pub surname: String,
    pub email: Option<EmailAddress>,
    pub phone: String,
    pub company: String,
    pub job_title: String,
}

/// A new To Do task in `list` (a synced list's id), due on `due` (`2026-12-03`) if given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TaskDraft {
    pub list: String,
    pub title: String,
    pub due: Option<String>,
}

/// What someone asked to write: the kind and its content. Targets (`message`, `event`, `contact`,
/// `task`) are Graph ids of synced items the writer can see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WriteRequest {
    SendMail(MailDraft),
    Reply { message: String, all: bool, draft: MailDraft },
    Forward { message: String, draft: MailDraft },
    CreateEvent(EventDraft),
    CancelEvent { event: String, comment: String },
    CreateContact(ContactDraft),
    UpdateContact { contact: String, draft: ContactDraft },
    CreateTask(TaskDraft),
    SetTaskDone { list: String, task: String, done: bool },
}

/// The longest subject or title accepted, and the longest body (Graph allows more; these keep a
/// composer's mistakes from becoming Microsoft's errors).
pub const MAX_SUBJECT: usize = 255;
pub const MAX_BODY: usize = 100_000;
/// Recipients (to + cc + bcc) or attendees per write.
pub const MAX_RECIPIENTS: usize = 100;

impl WriteRequest {
    pub fn kind(&self) -> WriteKind {
        match self {
            WriteRequest::SendMail(_) => WriteKind::SendMail,
            WriteRequest::Reply { all: false, .. } => WriteKind::Reply,
            WriteRequest::Reply { all: true, .. } => WriteKind::ReplyAll,
            WriteRequest::Forward { .. } => WriteKind::Forward,
            WriteRequest::CreateEvent(_) => WriteKind::CreateEvent,
            WriteRequest::CancelEvent { .. } => WriteKind::CancelEvent,
            WriteRequest::CreateContact(_) => WriteKind::CreateContact,
            WriteRequest::UpdateContact { .. } => WriteKind::UpdateContact,
            WriteRequest::CreateTask(_) => WriteKind::CreateTask,
            WriteRequest::SetTaskDone { done: true, .. } => WriteKind::CompleteTask,
            WriteRequest::SetTaskDone { done: false, .. } => WriteKind::ReopenTask,
        }
    }

    /// What the pending row on Activity shows until the synced item replaces it: a subject, a
    /// title or a name. Never more of the body.
    pub fn headline(&self) -> String {
        match self {
            WriteRequest::SendMail(d) | WriteRequest::Reply { draft: d, .. } | WriteRequest::Forward { draft: d, .. } => d.subject.clone(),
            WriteRequest::CreateEvent(e) => e.subject.clone(),
            WriteRequest::CancelEvent { .. } => "Cancelled event".into(),
            WriteRequest::CreateContact(c) | WriteRequest::UpdateContact { draft: c, .. } => {
                format!("{} {}", c.given_name, c.surname).trim().to_string()
            }
            WriteRequest::CreateTask(t) => t.title.clone(),
            WriteRequest::SetTaskDone { .. } => "Task".into(),
        }
    }

    /// Checks what a person typed; the first problem in their words.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            WriteRequest::SendMail(d) => validate_mail(d, true),
            WriteRequest::Reply { message, draft, all: _ } => non_empty(message, "the message").and_then(|_| validate_mail(draft, false)),
            WriteRequest::Forward { message, draft } => non_empty(message, "the message").and_then(|_| validate_mail(draft, true)),
            WriteRequest::CreateEvent(e) => validate_event(e),
            WriteRequest::CancelEvent { event, comment } => {
                non_empty(event, "the event").and_then(|_| limit(comment, MAX_BODY, "The comment"))
            }
            WriteRequest::CreateContact(c) | WriteRequest::UpdateContact { draft: c, .. } => validate_contact(c),
            WriteRequest::CreateTask(t) => {
                non_empty(&t.list, "a task list")?;
                non_empty(&t.title, "a title")?;
                limit(&t.title, MAX_SUBJECT, "The title")?;
                match &t.due {
                    Some(d) if !is_date(d) => Err("Enter the due date as YYYY-MM-DD.".into()),
                    _ => Ok(()),
                }
            }
            WriteRequest::SetTaskDone { list, task, .. } => non_empty(list, "the task list").and_then(|_| non_empty(task, "the task")),
        }
    }
}

fn non_empty(s: &str, what: &str) -> Result<(), String> {
    if s.trim().is_empty() { Err(format!("Choose {what}.")) } else { Ok(()) }
}

fn limit(s: &str, max: usize, what: &str) -> Result<(), String> {
    if s.chars().count() > max { Err(format!("{what} is too long (at most {max} characters).")) } else { Ok(()) }
}

fn validate_mail(d: &MailDraft, needs_recipient: bool) -> Result<(), String> {
    if needs_recipient && d.to.is_empty() && d.cc.is_empty() && d.bcc.is_empty() {
        return Err("Add at least one recipient.".into());
    }
    if d.to.len() + d.cc.len() + d.bcc.len() > MAX_RECIPIENTS {
        return Err(format!("At most {MAX_RECIPIENTS} recipients."));
    }
    limit(&d.subject, MAX_SUBJECT, "The subject")?;
    limit(&d.body, MAX_BODY, "The message")
}

fn validate_event(e: &EventDraft) -> Result<(), String> {
    non_empty(&e.subject, "a subject")?;
    limit(&e.subject, MAX_SUBJECT, "The subject")?;
    if !is_local_datetime(&e.start) || !is_local_datetime(&e.end) {
        return Err("Enter the start and end as date and time.".into());
    }
    // Same format, so text order is time order.
    if e.end <= e.start {
        return Err("The event must end after it starts.".into());
    }
    non_empty(&e.time_zone, "a time zone")?;
    if e.attendees.len() > MAX_RECIPIENTS {
        return Err(format!("At most {MAX_RECIPIENTS} attendees."));
    }
    limit(&e.location, MAX_SUBJECT, "The location")?;
    limit(&e.body, MAX_BODY, "The description")
}

fn validate_contact(c: &ContactDraft) -> Result<(), String> {
    if c.given_name.trim().is_empty() && c.surname.trim().is_empty() && c.email.is_none() {
        return Err("Enter a name or an email address.".into());
    }
    for (v, what) in [
        (&c.given_name, "The first name"),
        (&c.surname, "The last name"),
        (&c.company, "The company"),
        (&c.job_title, "The job title"),
        (&c.phone, "The phone number"),
    ] {
        limit(v, MAX_SUBJECT, what)?;
    }
    Ok(())
}

/// `YYYY-MM-DD`.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
        && (1..=12).contains(&s[5..7].parse::<u8>().unwrap_or(0))
        && (1..=31).contains(&s[8..10].parse::<u8>().unwrap_or(0))
}

/// `YYYY-MM-DDTHH:MM` (seconds optional), as a datetime-local input sends it.
fn is_local_datetime(s: &str) -> bool {
    let Some((date, time)) = s.split_once('T') else { return false };
    let t = time.as_bytes();
    let hm = t.len() >= 5
        && t[2] == b':'
        && t[..2].iter().chain(&t[3..5]).all(u8::is_ascii_digit)
        && time[..2].parse::<u8>().is_ok_and(|h| h < 24)
        && time[3..5].parse::<u8>().is_ok_and(|m| m < 60);
    let secs = t.len() == 5 || (t.len() == 8 && t[5] == b':' && t[6..].iter().all(u8::is_ascii_digit));
    is_date(date) && hm && secs
}

/// Where a write stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WriteState {
    /// Recorded; waiting for the mailbox's worker (or its `Retry-After`).
    Pending,
    /// Performed at Microsoft; the item it made or changed has this Graph id.
    Done { graph_id: String },
    /// Cannot succeed: why, Microsoft's words, and so who must act.
    Failed { reason: crate::ReasonCode, detail: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> EmailAddress {
        EmailAddress::parse(s).unwrap()
    }

    #[test]
    fn kinds_round_trip_and_map_to_their_resource() {
        for k in WriteKind::ALL {
            assert_eq!(WriteKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(WriteKind::ReplyAll.resource(), Resource::Mail);
        assert_eq!(WriteKind::ReopenTask.resource(), Resource::Tasks);
    }

    #[test]
    fn writes_need_read_write_access_the_resource_and_every_permission() {
        use AccessLevel::*;
        use ConnectionMode::*;
        let all = Resource::ALL;
        let granted: Vec<String> =
            ["Mail.ReadWrite.Shared", "Mail.Send.Shared", "Calendars.ReadWrite", "Tasks.ReadWrite"].map(String::from).to_vec();
        assert_eq!(write_allowed(WriteKind::SendMail, ReadOnly, Individual, &all, true, &granted), Err(WriteRefusal::ReadOnly));
        assert_eq!(write_allowed(WriteKind::SendMail, ReadWrite, Individual, &all, true, &granted), Ok(()));
        assert_eq!(
            write_allowed(WriteKind::SendMail, ReadWrite, Individual, &[Resource::Calendar], true, &granted),
            Err(WriteRefusal::NotSynced(Resource::Mail))
        );
        assert_eq!(
            write_allowed(WriteKind::CreateContact, ReadWrite, Individual, &all, true, &granted),
            Err(WriteRefusal::Missing("Contacts.ReadWrite"))
        );
        // Another mailbox's calendar needs the shared permission; application mode writes no contacts.
        assert_eq!(
            write_allowed(WriteKind::CreateEvent, ReadWrite, ServiceUser, &all, false, &granted),
            Err(WriteRefusal::Missing("Calendars.ReadWrite.Shared"))
        );
        assert_eq!(
            write_allowed(WriteKind::CreateContact, ReadWrite, ApplicationPermissions, &all, false, &granted),
            Err(WriteRefusal::NotInMode)
        );
        let qualified = vec!["https://graph.microsoft.com/Mail.ReadWrite".to_string(), "https://graph.microsoft.com/Mail.Send".to_string()];
        assert_eq!(write_allowed(WriteKind::Forward, ReadWrite, ApplicationPermissions, &all, false, &qualified), Ok(()));
        assert!(WriteRefusal::Missing("Mail.Send").sentence().contains("Admin consent"));
    }

    #[test]
    fn what_people_type_is_checked_in_their_words() {
        let mail = MailDraft { to: vec![addr("bob@northwind.test")], subject: "Hi".into(), body: "Hello".into(), ..Default::default() };
        assert_eq!(WriteRequest::SendMail(mail.clone()).validate(), Ok(()));
        assert_eq!(WriteRequest::SendMail(MailDraft { to: vec![], ..mail.clone() }).validate(), Err("Add at least one recipient.".into()));
        assert_eq!(
            WriteRequest::Reply { message: "m1".into(), all: false, draft: MailDraft::default() }.validate(),
            Ok(()),
            "a reply's recipients come from the message"
        );
        assert!(WriteRequest::SendMail(MailDraft { subject: "x".repeat(300), ..mail }).validate().unwrap_err().contains("too long"));
        let event = EventDraft {
            subject: "Review".into(),
            start: "2026-12-03T14:00".into(),
            end: "2026-12-03T15:00".into(),
            time_zone: "Europe/Berlin".into(),
            ..Default::default()
        };
        assert_eq!(WriteRequest::CreateEvent(event.clone()).validate(), Ok(()));
        let backwards = EventDraft { end: "2026-12-03T13:00".into(), ..event.clone() };
        assert_eq!(WriteRequest::CreateEvent(backwards).validate(), Err("The event must end after it starts.".into()));
        assert!(WriteRequest::CreateEvent(EventDraft { start: "tomorrow".into(), ..event }).validate().is_err());
        let task = TaskDraft { list: "l1".into(), title: "Call back".into(), due: Some("2026-12-03".into()) };
        assert_eq!(WriteRequest::CreateTask(task.clone()).validate(), Ok(()));
        assert!(WriteRequest::CreateTask(TaskDraft { due: Some("2026-13-03".into()), ..task.clone() }).validate().is_err());
        assert!(WriteRequest::CreateTask(TaskDraft { title: " ".into(), ..task }).validate().is_err());
        assert!(WriteRequest::CreateContact(ContactDraft::default()).validate().is_err());
        let c = ContactDraft { email: Some(addr("new@contoso.test")), ..Default::default() };
        assert_eq!(WriteRequest::CreateContact(c).validate(), Ok(()));
    }

    #[test]
    fn headlines_never_carry_the_body() {
        let d = MailDraft { subject: "Quarterly numbers".into(), body: "secret figures".into(), ..Default::default() };
        let h = WriteRequest::SendMail(d).headline();
        assert_eq!(h, "Quarterly numbers");
    }
}
