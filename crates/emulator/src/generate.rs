//! Deterministic mailbox content: every item is a pure function of (seed, mailbox, kind, index).
//!
//! Nothing generated is stored; `store.rs` keeps only overlays (changes made through Graph or the control
//! API). This is what lets the emulator hold 1,000 mailboxes × 10,000 messages in a few megabytes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

/// SplitMix64 finaliser: cheap, well-mixed, and stable across platforms and releases (unlike std's
/// hasher), so the same seed always yields the same mailbox.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub(crate) fn hash_str(s: &str) -> u64 {
    // FNV-1a, then mixed.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    mix(h)
}

pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64, mailbox: u64, salt: u64, n: u64) -> Rng {
        Rng(mix(seed ^ mix(mailbox ^ mix(salt ^ mix(n)))))
    }
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
    pub(crate) fn pick<'a>(&mut self, items: &'a [&'a str]) -> &'a str {
        let i = self.below(items.len() as u64) as usize;
        items.get(i).copied().unwrap_or("")
    }
}

/// Item kinds with overlays and delta.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Kind {
    Message,
    Event,
    Contact,
    Task,
}

impl Kind {
    pub(crate) fn letter(self) -> char {
        match self {
            Kind::Message => 'm',
            Kind::Event => 'e',
            Kind::Contact => 'c',
            Kind::Task => 't',
        }
    }
    fn from_letter(c: &str) -> Option<Kind> {
        match c {
            "m" => Some(Kind::Message),
            "e" => Some(Kind::Event),
            "c" => Some(Kind::Contact),
            "t" => Some(Kind::Task),
            _ => None,
        }
    }
    /// The well-known names (container keys) of this kind's folders or lists.
    pub(crate) fn container_keys(self) -> Vec<&'static str> {
        match self {
            Kind::Message => MAIL_FOLDERS.iter().map(|f| f.key).collect(),
            Kind::Event => vec!["calendar"],
            Kind::Contact => CONTACT_FOLDERS.iter().map(|f| f.0).collect(),
            Kind::Task => TASK_LISTS.iter().map(|f| f.0).collect(),
        }
    }
    /// Where an item goes when no folder or list is named: Inbox, the calendar, Contacts, Tasks.
    pub(crate) fn default_container(self) -> &'static str {
        match self {
            Kind::Message => "inbox",
            Kind::Event => "calendar",
            Kind::Contact => "contacts",
            Kind::Task => "tasks",
        }
    }
    /// Parses the control API's plural names.
    pub fn parse(s: &str) -> Option<Kind> {
        match s.to_ascii_lowercase().as_str() {
            "message" | "messages" | "mail" => Some(Kind::Message),
            "event" | "events" => Some(Kind::Event),
            "contact" | "contacts" => Some(Kind::Contact),
            "task" | "tasks" => Some(Kind::Task),
            _ => None,
        }
    }
}

pub(crate) struct FolderDef {
    pub key: &'static str,
    pub name: &'static str,
    pub parent: Option<&'static str>,
    /// Share of generated messages, in percent.
    pub weight: u64,
}

/// Mail folders every mailbox has; `key`s double as Graph's well-known folder names.
pub(crate) const MAIL_FOLDERS: &[FolderDef] = &[
    FolderDef { key: "inbox", name: "Inbox", parent: None, weight: 50 },
    FolderDef { key: "sentitems", name: "Sent Items", parent: None, weight: 20 },
    FolderDef { key: "archive", name: "Archive", parent: None, weight: 12 },
    FolderDef { key: "projects", name: "Projects", parent: Some("inbox"), weight: 8 },
    FolderDef { key: "deleteditems", name: "Deleted Items", parent: None, weight: 5 },
    FolderDef { key: "drafts", name: "Drafts", parent: None, weight: 3 },
    FolderDef { key: "junkemail", name: "Junk Email", parent: None, weight: 2 },
];

pub(crate) const CONTACT_FOLDERS: &[(&str, &str)] = &[("contacts", "Contacts"), ("suppliers", "Suppliers")];

/// (key, displayName, wellknownListName)
pub(crate) const TASK_LISTS: &[(&str, &str, &str)] =
    &[("tasks", "Tasks", "defaultList"), ("flagged", "Flagged email", "flaggedEmails"), ("projects", "Projects", "none")];

const FIRST: &[&str] = &[
    "Ana", "Ben", "Chloe", "Diego", "Elif", "Farah", "Goran", "Hana", "Ivan", "Jade", "Kofi", "Lena", "Mateo", "Nora", "Omar", "Priya",
    "Quinn", "Rosa", "Sven", "Tariq",
];
const LAST: &[&str] = &[
    "Abbott",
    "Baptiste",
    "Costa",
    "Dvorak",
    "Eriksen",
    "Fujita",
    "Garcia",
    "Hughes",
    "Ibsen",
    "Jansen",
    "Kowalski",
    "Lindqvist",
    "Moreau",
    "Novak",
    "Okafor",
    "Park",
    "Quist",
    "Rossi",
    "Schmidt",
    "Tanaka",
];
const COMPANIES: &[&str] = &["Contoso", "Litware", "Tailspin Toys", "Wingtip", "Adventure Works", "Proseware", "Lamna", "Alpine Ski House"];
const TOPICS: &[&str] = &[
    "Q3 forecast",
    "renewal terms",
    "pricing update",
    "onboarding plan",
    "shipment delay",
    "quarterly review",
    "contract draft",
    "product demo",
    "support escalation",
    "budget approval",
    "partner summit",
    "invoice 4471",
];
const VERBS: &[&str] = &["Re:", "Fwd:", "Question about", "Follow-up on", "Notes from", "Update:", "Draft:", "Reminder:"];
const PLACES: &[&str] = &["Conference Room 1", "Teams meeting", "Harbor Cafe", "Building 4, Room 210", "Customer site", "Board room"];
const TASK_TITLES: &[&str] = &[
    "Send proposal",
    "Call back",
    "Review contract",
    "Prepare slides",
    "Book travel",
    "Update CRM",
    "Renew licence",
    "Check invoice",
    "Schedule demo",
    "Collect feedback",
];

/// Everything the generator needs to know about one mailbox.
#[derive(Clone, Debug)]
pub(crate) struct MailboxCtx {
    pub seed: u64,
    pub hash: u64,
    pub upn: String,
    pub display_name: String,
    pub domain: String,
    pub counts: crate::fixture::MailboxCounts,
    pub anchor: OffsetDateTime,
}

/// Parsed form of an item id (both the regular and the ImmutableId form).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IdParts {
    pub mailbox: u64,
    pub kind: Kind,
    pub n: u64,
    pub occurrence: Option<u32>,
    pub container: Option<String>,
}

// Regular Outlook ids change when an item moves between folders; immutable ids do not
// (MICROSOFT.md §3.1, `Prefer: IdType="ImmutableId"`). So the regular form embeds the container.
const REGULAR_PREFIX: &str = "AAMkAG";
const IMMUTABLE_PREFIX: &str = "AAkALg";

pub(crate) fn item_id(mailbox: u64, kind: Kind, n: u64, occurrence: Option<u32>, container: &str, immutable: bool) -> String {
    let occ = occurrence.map(|k| k.to_string()).unwrap_or_default();
    if immutable {
        format!("{IMMUTABLE_PREFIX}{}", URL_SAFE_NO_PAD.encode(format!("{mailbox:016x}|{}|{n}|{occ}|", kind.letter())))
    } else {
        format!("{REGULAR_PREFIX}{}", URL_SAFE_NO_PAD.encode(format!("{mailbox:016x}|{}|{n}|{occ}|{container}", kind.letter())))
    }
}

pub(crate) fn parse_item_id(id: &str) -> Option<IdParts> {
    let body = id.strip_prefix(REGULAR_PREFIX).or_else(|| id.strip_prefix(IMMUTABLE_PREFIX))?;
    let raw = URL_SAFE_NO_PAD.decode(body).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let mut it = text.split('|');
    let mailbox = u64::from_str_radix(it.next()?, 16).ok()?;
    let kind = Kind::from_letter(it.next()?)?;
    let n = it.next()?.parse().ok()?;
    let occ = it.next()?;
    let occurrence = if occ.is_empty() { None } else { Some(occ.parse().ok()?) };
    let container = it.next().filter(|c| !c.is_empty()).map(str::to_string);
    Some(IdParts { mailbox, kind, n, occurrence, container })
}

pub(crate) fn folder_id(mailbox: u64, key: &str) -> String {
    format!("AAMkAGFo{}", URL_SAFE_NO_PAD.encode(format!("{mailbox:016x}|f|{key}")))
}

/// Resolves a folder/list reference: a well-known name (`inbox`) or an id we issued.
pub(crate) fn parse_container_id(mailbox: u64, s: &str, known: &[&str]) -> Option<String> {
    let lower = s.to_ascii_lowercase();
    if let Some(k) = known.iter().find(|k| **k == lower) {
        return Some((*k).to_string());
    }
    let body = s.strip_prefix("AAMkAGFo")?;
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(body).ok()?).ok()?;
    let mut it = text.split('|');
    let mb = u64::from_str_radix(it.next()?, 16).ok()?;
    if mb != mailbox || it.next()? != "f" {
        return None;
    }
    let key = it.next()?;
    known.iter().find(|k| **k == key).map(|k| (*k).to_string())
}

pub(crate) fn graph_datetime(t: OffsetDateTime) -> String {
    format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute(), t.second())
}

/// Event/task `dateTimeTimeZone.dateTime` form: `2016-12-09T20:30:00.0000000` (no offset; zone given
/// separately, MICROSOFT.md §3.4).
pub(crate) fn zoned_datetime(t: OffsetDateTime) -> String {
    format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.0000000", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute(), t.second())
}

/// Parses Graph date-time forms: `…Z`, `…+01:00`, or zone-less `…(.fffffff)` taken as UTC.
pub(crate) fn parse_datetime(s: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t);
    }
    let trimmed = s.split('.').next().unwrap_or(s);
    OffsetDateTime::parse(&format!("{trimmed}Z"), &Rfc3339).ok()
}

fn person(rng: &mut Rng, domain_hint: Option<&str>) -> (String, String) {
    let first = rng.pick(FIRST);
    let last = rng.pick(LAST);
    let company = rng.pick(COMPANIES);
    let domain = domain_hint.map(str::to_string).unwrap_or_else(|| format!("{}.example", company.to_ascii_lowercase().replace(' ', "")));
    (format!("{first} {last}"), format!("{}.{}@{domain}", first.to_ascii_lowercase(), last.to_ascii_lowercase()))
}

fn email(name: &str, address: &str) -> Value {
    json!({"emailAddress": {"name": name, "address": address}})
}

pub(crate) fn change_key(version: u32, n: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("CQAAABYAAA{n:08x}{version:04x}"))
}

pub(crate) fn etag(version: u32, n: u64) -> String {
    format!("W/\"{}\"", change_key(version, n))
}

// ---------------------------------------------------------------- messages

const SALT_FOLDER: u64 = 1;
const SALT_MESSAGE: u64 = 2;
const SALT_EVENT: u64 = 3;
const SALT_CONTACT: u64 = 4;
const SALT_TASK: u64 = 5;

const SALT_READ: u64 = 6;
const SALT_RECEIVED: u64 = 7;

/// When generated message `n` was received: strictly older as `n` grows (steps of at least 37 minutes,
/// spread over ~90 days for small mailboxes, < 30 minutes of jitter), computed on its own so
/// `$filter=receivedDateTime ge …` needs no message bodies.
pub(crate) fn message_received(ctx: &MailboxCtx, n: u64) -> OffsetDateTime {
    let step = (90 * 24 * 60 / ctx.counts.messages.max(1)).max(37) as i64;
    ctx.anchor - Duration::minutes((n as i64) * step + Rng::new(ctx.seed, ctx.hash, SALT_RECEIVED, n).below(30) as i64)
}

/// Whether generated message `n` is read: its own hash, so folder unread counts need no message bodies.
pub(crate) fn message_read(ctx: &MailboxCtx, n: u64, folder: &str) -> bool {
    folder == "sentitems" || folder == "drafts" || Rng::new(ctx.seed, ctx.hash, SALT_READ, n).below(3) != 0
}

/// Folder a generated message starts in.
pub(crate) fn message_folder(ctx: &MailboxCtx, n: u64) -> &'static str {
    let mut roll = Rng::new(ctx.seed, ctx.hash, SALT_FOLDER, n).below(100);
    for f in MAIL_FOLDERS {
        if roll < f.weight {
            return f.key;
        }
        roll -= f.weight;
    }
    "inbox"
}

#[derive(serde::Serialize)]
pub(crate) struct EmailAddress {
    name: String,
    address: String,
}

#[derive(serde::Serialize)]
pub(crate) struct Recipient {
    #[serde(rename = "emailAddress")]
    email_address: EmailAddress,
}

fn recipient(name: &str, address: &str) -> Recipient {
    Recipient { email_address: EmailAddress { name: name.to_string(), address: address.to_string() } }
}

#[derive(serde::Serialize)]
pub(crate) struct ItemBody {
    #[serde(rename = "contentType")]
    content_type: &'static str,
    content: String,
}

#[derive(serde::Serialize)]
pub(crate) struct Flag {
    #[serde(rename = "flagStatus")]
    flag_status: &'static str,
}

/// A generated message as a typed value, so delta pages can be serialized straight into the response
/// without building a `serde_json::Value` tree per item (the hot path of every benchmark).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GenMessage {
    created_date_time: String,
    last_modified_date_time: String,
    categories: [&'static str; 0],
    received_date_time: String,
    sent_date_time: String,
    has_attachments: bool,
    internet_message_id: String,
    subject: String,
    body_preview: String,
    importance: &'static str,
    conversation_id: String,
    is_read: bool,
    is_draft: bool,
    body: ItemBody,
    sender: Recipient,
    from: Recipient,
    to_recipients: Vec<Recipient>,
    cc_recipients: Vec<Recipient>,
    bcc_recipients: Vec<Recipient>,
    flag: Flag,
}

/// Generated message `n` (without id/parentFolderId, which depend on where it lives now).
pub(crate) fn message(ctx: &MailboxCtx, n: u64, folder: &str) -> Value {
    serde_json::to_value(message_typed(ctx, n, folder)).unwrap_or(Value::Null)
}

pub(crate) fn message_typed(ctx: &MailboxCtx, n: u64, folder: &str) -> GenMessage {
    let mut rng = Rng::new(ctx.seed, ctx.hash, SALT_MESSAGE, n);
    let (other_name, other_addr) = person(&mut rng, None);
    let (colleague_name, colleague_addr) = person(&mut rng, Some(&ctx.domain));
    let subject = format!("{} {}", rng.pick(VERBS), rng.pick(TOPICS));
    let received = message_received(ctx, n);
    let body = format!(
        "Hi {},\n\nFollowing up on the {} with {}. Could you take a look before Friday?\n\nThanks,\n{}",
        ctx.display_name.split(' ').next().unwrap_or(""),
        rng.pick(TOPICS),
        rng.pick(COMPANIES),
        other_name
    );
    let outgoing = folder == "sentitems" || folder == "drafts";
    let (from, to) = if outgoing {
        ((ctx.display_name.as_str(), ctx.upn.as_str()), (other_name.as_str(), other_addr.as_str()))
    } else {
        ((other_name.as_str(), other_addr.as_str()), (ctx.display_name.as_str(), ctx.upn.as_str()))
    };
    let cc = if rng.below(4) == 0 { vec![recipient(&colleague_name, &colleague_addr)] } else { Vec::new() };
    let stamp = graph_datetime(received);
    GenMessage {
        created_date_time: stamp.clone(),
        last_modified_date_time: stamp.clone(),
        categories: [],
        received_date_time: stamp,
        sent_date_time: graph_datetime(received - Duration::seconds(4)),
        has_attachments: rng.below(6) == 0,
        internet_message_id: format!("<{:016x}.{n}@{}>", ctx.hash, if outgoing { ctx.domain.as_str() } else { "mail.example" }),
        subject,
        body_preview: body.chars().take(255).collect::<String>().replace('\n', " "),
        importance: if rng.below(10) == 0 { "high" } else { "normal" },
        conversation_id: URL_SAFE_NO_PAD.encode(format!("{:016x}|conv|{}", ctx.hash, n / 3)),
        is_read: message_read(ctx, n, folder),
        is_draft: folder == "drafts",
        body: ItemBody { content_type: "text", content: body },
        sender: recipient(from.0, from.1),
        from: recipient(from.0, from.1),
        to_recipients: vec![recipient(to.0, to.1)],
        cc_recipients: cc,
        bcc_recipients: Vec::new(),
        flag: Flag { flag_status: if rng.below(8) == 0 { "flagged" } else { "notFlagged" } },
    }
}

// ---------------------------------------------------------------- events

/// The shape of generated event `n`; recurring series are weekly with one exception and one cancelled
/// occurrence, so calendarView carries all three instance types (MICROSOFT.md §3.4).
pub(crate) struct EventPlan {
    pub start: OffsetDateTime,
    pub minutes: i64,
    pub all_day: bool,
    pub occurrences: u32,
    pub exception: Option<u32>,
    pub cancelled: Option<u32>,
    pub subject: String,
    pub location: String,
    pub attendees: Vec<(String, String)>,
}

pub(crate) fn event_plan(ctx: &MailboxCtx, n: u64) -> EventPlan {
    let mut rng = Rng::new(ctx.seed, ctx.hash, SALT_EVENT, n);
    let day = rng.below(270) as i64 - 90;
    let hour = 8 + rng.below(9) as i64;
    let all_day = n % 11 == 3;
    let midnight = ctx.anchor.replace_time(time::Time::MIDNIGHT);
    let start = if all_day { midnight + Duration::days(day) } else { midnight + Duration::days(day) + Duration::hours(hour) };
    let lengths = [30, 45, 60, 90];
    let minutes = if all_day { 24 * 60 } else { lengths[rng.below(4) as usize] };
    let recurring = n.is_multiple_of(5);
    let attendees = (0..1 + rng.below(3)).map(|_| person(&mut rng, None)).collect();
    EventPlan {
        start,
        minutes,
        all_day,
        occurrences: if recurring { 6 } else { 1 },
        exception: if recurring { Some(2) } else { None },
        cancelled: if recurring { Some(4) } else { None },
        subject: format!("{} – {}", rng.pick(TOPICS), rng.pick(COMPANIES)),
        location: rng.pick(PLACES).to_string(),
        attendees,
    }
}

/// Base JSON of generated event `n` (series master for recurring ones).
pub(crate) fn event(ctx: &MailboxCtx, n: u64) -> Value {
    let p = event_plan(ctx, n);
    let end = p.start + Duration::minutes(p.minutes);
    let attendees: Vec<Value> = p
        .attendees
        .iter()
        .map(|(name, addr)| json!({"type": "required", "status": {"response": "none", "time": "0001-01-01T00:00:00Z"}, "emailAddress": {"name": name, "address": addr}}))
        .collect();
    let recurrence = if p.occurrences > 1 {
        json!({
            "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": [weekday(p.start)], "firstDayOfWeek": "sunday"},
            "range": {"type": "numbered", "startDate": p.start.date().to_string(), "numberOfOccurrences": p.occurrences, "recurrenceTimeZone": "UTC"}
        })
    } else {
        Value::Null
    };
    json!({
        "createdDateTime": graph_datetime(ctx.anchor - Duration::days(100)),
        "lastModifiedDateTime": graph_datetime(ctx.anchor - Duration::days(100)),
        "iCalUId": format!("040000008200E00074C5B7101A82E008{:016X}{n:08X}", ctx.hash),
        "subject": p.subject,
        "bodyPreview": "Agenda to follow.",
        "body": {"contentType": "text", "content": "Agenda to follow."},
        "importance": "normal",
        "isAllDay": p.all_day,
        "isCancelled": false,
        "isOrganizer": true,
        "showAs": "busy",
        "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
        "start": {"dateTime": zoned_datetime(p.start), "timeZone": "UTC"},
        "end": {"dateTime": zoned_datetime(end), "timeZone": "UTC"},
        "location": {"displayName": p.location},
        "attendees": attendees,
        "organizer": email(&ctx.display_name, &ctx.upn),
        "recurrence": recurrence,
        "onlineMeeting": null,
        "webLink": format!("https://outlook.office365.com/owa/?itemid={n}&exvsurl=1&path=/calendar/item"),
    })
}

fn weekday(t: OffsetDateTime) -> &'static str {
    match t.weekday() {
        time::Weekday::Monday => "monday",
        time::Weekday::Tuesday => "tuesday",
        time::Weekday::Wednesday => "wednesday",
        time::Weekday::Thursday => "thursday",
        time::Weekday::Friday => "friday",
        time::Weekday::Saturday => "saturday",
        time::Weekday::Sunday => "sunday",
    }
}

// ---------------------------------------------------------------- contacts and tasks

pub(crate) fn contact_folder(n: u64) -> &'static str {
    if n % 5 == 4 { "suppliers" } else { "contacts" }
}

pub(crate) fn contact(ctx: &MailboxCtx, n: u64) -> Value {
    let mut rng = Rng::new(ctx.seed, ctx.hash, SALT_CONTACT, n);
    let first = rng.pick(FIRST);
    let last = rng.pick(LAST);
    let company = rng.pick(COMPANIES);
    let domain = format!("{}.example", company.to_ascii_lowercase().replace(' ', ""));
    let addr = format!("{}.{}{}@{domain}", first.to_ascii_lowercase(), last.to_ascii_lowercase(), n);
    json!({
        "createdDateTime": graph_datetime(ctx.anchor - Duration::days(200 - (n % 150) as i64)),
        "lastModifiedDateTime": graph_datetime(ctx.anchor - Duration::days(200 - (n % 150) as i64)),
        "displayName": format!("{first} {last}"),
        "givenName": first,
        "surname": last,
        "emailAddresses": [{"name": format!("{first} {last}"), "address": addr}],
        "businessPhones": [format!("+1 555 01{:02}", rng.below(100))],
        "mobilePhone": format!("+1 555 02{:02}", rng.below(100)),
        "homePhones": [],
        "companyName": company,
        "jobTitle": rng.pick(&["Buyer", "CFO", "Account Executive", "Engineer", "Office Manager"]),
    })
}

pub(crate) fn task_list(n: u64) -> &'static str {
    if n % 4 == 3 { "projects" } else { "tasks" }
}

pub(crate) fn task(ctx: &MailboxCtx, n: u64) -> Value {
    let mut rng = Rng::new(ctx.seed, ctx.hash, SALT_TASK, n);
    let created = ctx.anchor - Duration::days(rng.below(60) as i64);
    let due = ctx.anchor + Duration::days(rng.below(40) as i64 - 10);
    let status = ["notStarted", "notStarted", "inProgress", "completed", "waitingOnOthers"][rng.below(5) as usize];
    let title = format!("{} ({})", rng.pick(TASK_TITLES), rng.pick(COMPANIES));
    let importance = ["low", "normal", "normal", "high"][rng.below(4) as usize];
    let mut v = json!({
        "importance": importance,
        "isReminderOn": false,
        "status": status,
        "title": title,
        "createdDateTime": graph_datetime(created),
        "lastModifiedDateTime": graph_datetime(created),
        "categories": [],
        "body": {"content": "", "contentType": "text"},
        "dueDateTime": {"dateTime": zoned_datetime(due.replace_time(time::Time::MIDNIGHT)), "timeZone": "UTC"},
    });
    if status == "completed" {
        v["completedDateTime"] = json!({"dateTime": zoned_datetime(created + Duration::days(1)), "timeZone": "UTC"});
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::MailboxCounts;

    fn ctx(seed: u64) -> MailboxCtx {
        MailboxCtx {
            seed,
            hash: hash_str("alice"),
            upn: "alice@northwind.test".into(),
            display_name: "Alice Anders".into(),
            domain: "northwind.test".into(),
            counts: MailboxCounts::default(),
            anchor: OffsetDateTime::UNIX_EPOCH + Duration::days(20_000),
        }
    }

    #[test]
    fn same_seed_same_content_different_seed_different_content() {
        assert_eq!(message(&ctx(1), 5, "inbox"), message(&ctx(1), 5, "inbox"));
        assert_ne!(message(&ctx(1), 5, "inbox"), message(&ctx(2), 5, "inbox"));
        assert_eq!(event(&ctx(1), 10), event(&ctx(1), 10));
    }

    #[test]
    fn ids_round_trip_and_regular_ids_embed_the_folder() {
        let id = item_id(42, Kind::Message, 7, None, "inbox", false);
        let p = parse_item_id(&id).unwrap();
        assert_eq!((p.mailbox, p.kind, p.n, p.container.as_deref()), (42, Kind::Message, 7, Some("inbox")));
        assert_ne!(id, item_id(42, Kind::Message, 7, None, "archive", false));
        assert_eq!(item_id(42, Kind::Message, 7, None, "inbox", true), item_id(42, Kind::Message, 7, None, "archive", true));
        let occ = parse_item_id(&item_id(1, Kind::Event, 3, Some(2), "calendar", true)).unwrap();
        assert_eq!(occ.occurrence, Some(2));
    }

    #[test]
    fn folders_spread_messages_roughly_by_weight() {
        let c = ctx(9);
        let inbox = (0..1000).filter(|n| message_folder(&c, *n) == "inbox").count();
        assert!((400..600).contains(&inbox), "inbox got {inbox}");
        assert_eq!(parse_container_id(3, &folder_id(3, "archive"), &["inbox", "archive"]).as_deref(), Some("archive"));
        assert_eq!(parse_container_id(3, "Inbox", &["inbox"]).as_deref(), Some("inbox"));
    }
}
