//! Graph delta queries for the sync engine (MICROSOFT.md §3.3–§3.6, §3.9, §4.2).
//!
//! - Containers: [`MicrosoftClient::containers`] (in `containers.rs`).
//! - One page of changes: [`MicrosoftClient::delta_page`], either from a start request
//!   ([`DeltaStart::Initial`]) or from a stored `@odata.nextLink` / `@odata.deltaLink`
//!   ([`DeltaStart::Link`]). The page ends with a [`DeltaNext`]: more pages of this round, or the
//!   deltaLink that starts the next round.
//! - Items are typed ([`GraphItem`]) with only the fields the product shows (`$select` where Graph
//!   allows it; calendarView delta does not, §3.4). `@removed` entries become [`DeltaItem::Removed`].
//! - Every request asks for immutable ids (`Prefer: IdType="ImmutableId"`, ids stay the same when an
//!   item moves between folders) and a page size (`Prefer: odata.maxpagesize`).
//! - Failures are [`GraphError`]s; [`GraphError::class`] says what the caller should do
//!   ([`FailureClass`]): wait for `Retry-After`, back off, restart the cursor, get a new token, or
//!   stop and ask someone to act.
//!
//! Links are followed only when they point at the configured Graph base, so a bearer token is
//! never sent to another host.

use crate::MicrosoftClient;
use crate::graph::{GraphError, MailboxRef, graph_reason, parse_retry_after};
use domain::{ReasonCode, Resource};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::time::Duration;
use time::OffsetDateTime;

/// `$select` per resource: only what the product shows (§3.3, §3.5, §3.6). calendarView delta
/// takes no `$select` on v1.0 (§3.4).
const MESSAGE_SELECT: &str = "id,subject,from,receivedDateTime,bodyPreview,isRead,parentFolderId,conversationId";
const CONTACT_SELECT: &str = "id,displayName,emailAddresses,companyName,jobTitle,mobilePhone,businessPhones,parentFolderId";
const TASK_SELECT: &str = "id,title,status,importance,dueDateTime,createdDateTime,lastModifiedDateTime,completedDateTime";

/// Where a delta request starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeltaStart {
    /// A new full round (first sync, or after a 410).
    Initial,
    /// A stored `@odata.nextLink` (resume a round) or `@odata.deltaLink` (next incremental round).
    Link(String),
}

/// One delta request.
#[derive(Debug, Clone)]
pub struct DeltaRequest<'a> {
    pub mailbox: &'a MailboxRef,
    pub resource: Resource,
    /// Folder or list id; ignored for [`Resource::Calendar`].
    pub container: Option<&'a str>,
    /// calendarView window (required for a first events request), as ISO 8601 UTC strings.
    pub window: Option<(&'a str, &'a str)>,
    /// Mail only: a first request asks for messages received at or after this instant
    /// (`$filter=receivedDateTime ge …`, the one filter message delta supports, §3.3). Graph keeps
    /// it in the round's links, so it is not sent (nor needed) with a [`DeltaStart::Link`].
    pub received_since: Option<OffsetDateTime>,
    /// `Prefer: odata.maxpagesize`.
    pub page_size: u32,
    pub start: DeltaStart,
}

/// What follows a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeltaNext {
    /// More pages in this round: fetch this link next (a page may be empty and still have one).
    NextLink(String),
    /// The round is complete: store this link and start the next round from it.
    DeltaLink(String),
}

#[derive(Debug, Clone, PartialEq)]
// Pages hold at most a few hundred items, and nearly all are upserts: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum DeltaItem {
    /// Created or changed: upsert by id (replays and duplicates are possible, §3.3).
    Upsert(GraphItem),
    /// `@removed`: deleted, moved out of the container, or (events) outside the window.
    Removed { id: String },
}

impl DeltaItem {
    pub fn id(&self) -> &str {
        match self {
            DeltaItem::Upsert(i) => i.id(),
            DeltaItem::Removed { id } => id,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeltaPage {
    pub items: Vec<DeltaItem>,
    pub next: DeltaNext,
}

/// A mail folder, contact folder or To Do list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    pub id: String,
    pub display_name: String,
    /// Mail folders report how many items they hold: the estimated total of a first sync.
    pub total_items: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
pub struct EmailAddress {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
pub struct Recipient {
    #[serde(default, rename = "emailAddress")]
    pub email_address: EmailAddress,
}

/// `{dateTime, timeZone}` as events and tasks carry them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ZonedDateTime {
    #[serde(default)]
    pub date_time: Option<String>,
    #[serde(default)]
    pub time_zone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: String,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub from: Option<Recipient>,
    #[serde(default)]
    pub received_date_time: Option<String>,
    #[serde(default)]
    pub body_preview: Option<String>,
    #[serde(default)]
    pub is_read: Option<bool>,
    #[serde(default)]
    pub parent_folder_id: Option<String>,
    #[serde(default)]
    pub conversation_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    #[serde(default)]
    pub display_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub id: String,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub start: Option<ZonedDateTime>,
    #[serde(default)]
    pub end: Option<ZonedDateTime>,
    #[serde(default)]
    pub is_all_day: Option<bool>,
    #[serde(default)]
    pub is_cancelled: Option<bool>,
    #[serde(default)]
    pub location: Option<Location>,
    #[serde(default)]
    pub organizer: Option<Recipient>,
    /// `singleInstance`, `occurrence`, `exception`, `seriesMaster`.
    #[serde(default, rename = "type")]
    pub event_type: Option<String>,
    #[serde(default)]
    pub body_preview: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub email_addresses: Vec<EmailAddress>,
    #[serde(default)]
    pub company_name: Option<String>,
    #[serde(default)]
    pub job_title: Option<String>,
    #[serde(default)]
    pub mobile_phone: Option<String>,
    #[serde(default)]
    pub business_phones: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub id: String,
    #[serde(default)]
    pub title: Option<String>,
    /// `notStarted`, `inProgress`, `completed`, `waitingOnOthers`, `deferred`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub importance: Option<String>,
    #[serde(default)]
    pub due_date_time: Option<ZonedDateTime>,
    #[serde(default)]
    pub created_date_time: Option<String>,
    #[serde(default)]
    pub last_modified_date_time: Option<String>,
}

/// A synced item, typed by resource.
#[derive(Debug, Clone, PartialEq)]
pub enum GraphItem {
    Message(Message),
    Event(Event),
    Contact(Contact),
    Task(Task),
}

impl GraphItem {
    pub fn id(&self) -> &str {
        match self {
            GraphItem::Message(m) => &m.id,
            GraphItem::Event(e) => &e.id,
            GraphItem::Contact(c) => &c.id,
            GraphItem::Task(t) => &t.id,
        }
    }
}

/// What a caller should do about a failed Graph request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// 429: wait at least `Retry-After` (exponential backoff when absent), then retry.
    Throttled(Option<Duration>),
    /// 5xx, timeouts, connection failures: back off with jitter (at least `Retry-After` if given).
    Transient(Option<Duration>),
    /// 410 / `SyncStateNotFound` / `resyncRequired`, or a 400 saying the delta token is malformed
    /// (`SyncStateInvalid`): drop this cursor and start a full round.
    CursorExpired,
    /// 401: get a new access token and retry once.
    TokenRejected,
    /// 404 `ErrorItemNotFound` on a folder or list: it is gone; forget its items and cursor.
    ContainerGone,
    /// Someone must act (licence, mailbox access, permission): no retry until they have.
    NeedsAttention(ReasonCode),
    /// Anything else (a bug on either side): log, retry at the next interval.
    Other,
}

/// Error codes (lower case) that mean the delta token can no longer be used, whatever the status:
/// Graph answers a token it cannot read with 400 rather than 410, and then the only way on is a
/// full round, as after a 410.
const CURSOR_EXPIRED_CODES: [&str; 5] =
    ["syncstatenotfound", "resyncrequired", "syncstateinvalid", "errorinvalidsyncstatedata", "invaliddeltatoken"];

impl GraphError {
    /// Classifies the failure for retry decisions (§3.9, §4.2). Codes compare case-insensitively.
    pub fn class(&self) -> FailureClass {
        let code = self.code.to_ascii_lowercase();
        if self.status == Some(410) || CURSOR_EXPIRED_CODES.contains(&code.as_str()) {
            return FailureClass::CursorExpired;
        }
        match self.status {
            None => FailureClass::Transient(self.retry_after),
            Some(429) => FailureClass::Throttled(self.retry_after),
            Some(s) if s >= 500 => FailureClass::Transient(self.retry_after),
            Some(401) => FailureClass::TokenRejected,
            Some(404) if code == "erroritemnotfound" => FailureClass::ContainerGone,
            Some(403) | Some(404) if self.reason != ReasonCode::Unexpected => FailureClass::NeedsAttention(self.reason),
            _ => FailureClass::Other,
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct RawPage {
    #[serde(default)]
    pub(crate) value: Vec<serde_json::Value>,
    #[serde(default, rename = "@odata.nextLink")]
    pub(crate) next_link: Option<String>,
    #[serde(default, rename = "@odata.deltaLink")]
    delta_link: Option<String>,
}

#[derive(Deserialize, Default)]
struct DeltaErrorBody {
    #[serde(default)]
    error: Option<DeltaErrorInner>,
}

#[derive(Deserialize, Default)]
struct DeltaErrorInner {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

pub(crate) fn local_error(code: &str, message: String) -> GraphError {
    GraphError { status: None, code: code.into(), message, request_id: None, retry_after: None, reason: ReasonCode::Unexpected }
}

/// `Retry-After` for the sync engine: seconds (fractions allowed) as given; an HTTP-date names a
/// whole second, so the wait runs to the end of that second (a server that truncated its instant
/// to the second still gets at least what it asked for).
fn sync_retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    sync_retry_after_value(headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?)
}

/// [`sync_retry_after`] of one header value.
pub(crate) fn sync_retry_after_value(v: &str) -> Option<Duration> {
    let v = v.trim();
    let wait = parse_retry_after(v, std::time::SystemTime::now())?;
    if v.parse::<f64>().is_ok() { Some(wait) } else { Some(wait + Duration::from_secs(1)) }
}

/// The `Prefer` header of every sync request: immutable ids, pages of `page_size`.
pub(crate) fn sync_prefer(page_size: u32) -> String {
    format!("IdType=\"ImmutableId\", odata.maxpagesize={}", page_size.clamp(1, 1000))
}

/// A sync request's refusal: its status, Graph's error code and message, and the reason.
pub(crate) fn sync_refusal(status: u16, body: &str, request_id: Option<String>, retry_after: Option<Duration>, other: bool) -> GraphError {
    let inner = serde_json::from_str::<DeltaErrorBody>(body).ok().and_then(|b| b.error).unwrap_or_default();
    let code = inner.code.unwrap_or_default();
    let e = GraphError {
        status: Some(status),
        reason: graph_reason(status, &code, other),
        message: inner.message.unwrap_or_default(),
        request_id,
        retry_after,
        code,
    };
    tracing::debug!(status, code = %e.code, request_id = ?e.request_id, "Graph sync request refused");
    e
}

fn parse_item(kind: Resource, v: serde_json::Value) -> Result<DeltaItem, serde_json::Error> {
    if v.get("@removed").is_some() {
        let id = v.get("id").and_then(|i| i.as_str()).unwrap_or_default().to_string();
        return Ok(DeltaItem::Removed { id });
    }
    Ok(DeltaItem::Upsert(match kind {
        Resource::Mail => GraphItem::Message(serde_json::from_value(v)?),
        Resource::Calendar => GraphItem::Event(serde_json::from_value(v)?),
        Resource::Contacts => GraphItem::Contact(serde_json::from_value(v)?),
        Resource::Tasks => GraphItem::Task(serde_json::from_value(v)?),
    }))
}

/// `receivedDateTime ge 2026-10-01T00:00:00Z`: the instant in UTC, whole seconds (a later
/// fraction is dropped, which only widens the filter by less than a second).
pub(crate) fn received_since_filter(since: OffsetDateTime) -> String {
    let t = since.to_offset(time::UtcOffset::UTC);
    format!(
        "receivedDateTime ge {:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
}

impl MicrosoftClient {
    pub(crate) fn mailbox_segments(mailbox: &MailboxRef) -> (Vec<&str>, bool) {
        match mailbox {
            MailboxRef::Me => (vec!["me"], false),
            MailboxRef::User(id) => (vec!["users", id.as_str()], true),
        }
    }

    pub(crate) fn graph_link(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<String, GraphError> {
        let mut url = self.endpoints.graph_url(segments).map_err(|e| local_error("configuration", e.to_string()))?;
        url.set_query(None);
        let mut s = url.to_string();
        for (i, (k, v)) in query.iter().enumerate() {
            s.push(if i == 0 { '?' } else { '&' });
            s.push_str(k);
            s.push('=');
            s.push_str(&encode(v));
        }
        Ok(s)
    }

    /// True when `link` points under the configured Graph base (same scheme, host, port, path prefix).
    pub(crate) fn is_graph_link(&self, link: &str) -> bool {
        let Ok(base) = self.endpoints.graph_url(&[]) else { return false };
        let Ok(link) = url::Url::parse(link) else { return false };
        link.scheme() == base.scheme()
            && link.host_str() == base.host_str()
            && link.port_or_known_default() == base.port_or_known_default()
            && link.path().starts_with(base.path().trim_end_matches('/'))
    }

    /// A GET with the sync engine's `Prefer` headers; the body parsed as `T` on 2xx.
    pub(crate) async fn sync_get<T: DeserializeOwned>(
        &self,
        token: &SecretString,
        url: &str,
        page_size: u32,
        other_mailbox: bool,
    ) -> Result<T, GraphError> {
        let prefer = sync_prefer(page_size);
        let r = self
            .http
            .get(url)
            .bearer_auth(token.expose_secret())
            .header("Accept", "application/json")
            .header("Prefer", prefer)
            .send()
            .await
            .map_err(GraphError::transport)?;
        let status = r.status().as_u16();
        let request_id = r.headers().get("request-id").and_then(|v| v.to_str().ok()).map(str::to_string);
        let retry = sync_retry_after(r.headers());
        let text = r.text().await.map_err(GraphError::transport)?;
        if (200..300).contains(&status) {
            return serde_json::from_str(&text).map_err(|e| GraphError {
                status: Some(status),
                code: "unexpectedResponse".into(),
                message: format!("not the documented JSON: {e}"),
                request_id,
                retry_after: None,
                reason: ReasonCode::Unexpected,
            });
        }
        Err(sync_refusal(status, &text, request_id, retry, other_mailbox))
    }

    /// The URL of a first delta request (a full round).
    fn delta_start_url(&self, req: &DeltaRequest<'_>) -> Result<String, GraphError> {
        let (mut segs, _) = Self::mailbox_segments(req.mailbox);
        let container = || req.container.ok_or_else(|| local_error("invalidRequest", "a container id is required".into()));
        match req.resource {
            Resource::Mail => {
                segs.extend(["mailFolders", container()?, "messages", "delta"]);
                let filter = req.received_since.map(received_since_filter);
                let mut query = vec![("$select", MESSAGE_SELECT)];
                if let Some(f) = &filter {
                    query.push(("$filter", f.as_str()));
                }
                self.graph_link(&segs, &query)
            }
            Resource::Calendar => {
                let (start, end) = req.window.ok_or_else(|| local_error("invalidRequest", "calendarView delta needs a window".into()))?;
                segs.extend(["calendarView", "delta"]);
                self.graph_link(&segs, &[("startDateTime", start), ("endDateTime", end)])
            }
            Resource::Contacts => {
                segs.extend(["contactFolders", container()?, "contacts", "delta"]);
                self.graph_link(&segs, &[("$select", CONTACT_SELECT)])
            }
            Resource::Tasks => {
                segs.extend(["todo", "lists", container()?, "tasks", "delta"]);
                self.graph_link(&segs, &[("$select", TASK_SELECT)])
            }
        }
    }

    /// Fetches one page of changes. Store [`DeltaPage::next`] together with the page's changes
    /// (one transaction): a `NextLink` resumes this round, a `DeltaLink` starts the next one.
    /// A page whose nextLink is the very link that fetched it is a protocol error
    /// (`repeatedNextLink`, [`FailureClass::Other`]): nothing of it is to be stored.
    pub async fn delta_page(&self, token: &SecretString, req: &DeltaRequest<'_>) -> Result<DeltaPage, GraphError> {
        let other = matches!(req.mailbox, MailboxRef::User(_));
        let url = self.delta_url(req)?;
        let raw: RawPage = self.sync_get(token, &url, req.page_size, other).await?;
        self.delta_page_of(&url, raw, req.resource)
    }

    /// The URL a delta request fetches: the start of a round, or a stored link (Graph's only).
    pub(crate) fn delta_url(&self, req: &DeltaRequest<'_>) -> Result<String, GraphError> {
        match &req.start {
            DeltaStart::Initial => self.delta_start_url(req),
            DeltaStart::Link(link) if self.is_graph_link(link) => Ok(link.clone()),
            DeltaStart::Link(_) => Err(local_error("foreignLink", "a stored delta link does not point at Graph".into())),
        }
    }

    /// The page Graph answered `url` with, checked: it ends in exactly one kind of link, that link
    /// is Graph's, a nextLink moves on, and every item is the documented JSON.
    pub(crate) fn delta_page_of(&self, url: &str, raw: RawPage, resource: Resource) -> Result<DeltaPage, GraphError> {
        let next = match (raw.next_link, raw.delta_link) {
            (Some(n), _) => DeltaNext::NextLink(n),
            (None, Some(d)) => DeltaNext::DeltaLink(d),
            (None, None) => {
                return Err(GraphError {
                    status: Some(200),
                    code: "unexpectedResponse".into(),
                    message: "a delta page had neither nextLink nor deltaLink".into(),
                    request_id: None,
                    retry_after: None,
                    reason: ReasonCode::Unexpected,
                });
            }
        };
        if let DeltaNext::NextLink(l) | DeltaNext::DeltaLink(l) = &next
            && !self.is_graph_link(l)
        {
            return Err(local_error("foreignLink", "a delta link pointed away from Graph".into()));
        }
        if matches!(&next, DeltaNext::NextLink(n) if *n == url) {
            // Following it would fetch this very page again, forever.
            return Err(GraphError {
                status: Some(200),
                code: "repeatedNextLink".into(),
                message: "a delta page's nextLink is the link that fetched it, so its paging would never end".into(),
                request_id: None,
                retry_after: None,
                reason: ReasonCode::Unexpected,
            });
        }
        let items = raw.value.into_iter().map(|v| parse_item(resource, v)).collect::<Result<Vec<_>, _>>().map_err(|e| GraphError {
            status: Some(200),
            code: "unexpectedResponse".into(),
            message: format!("a delta item is not the documented JSON: {e}"),
            request_id: None,
            retry_after: None,
            reason: ReasonCode::Unexpected,
        })?;
        Ok(DeltaPage { items, next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(status: Option<u16>, code: &str, retry: Option<Duration>, reason: ReasonCode) -> GraphError {
        GraphError { status, code: code.into(), message: String::new(), request_id: None, retry_after: retry, reason }
    }

    #[test]
    fn failures_are_classified_for_retry_decisions() {
        let two = Some(Duration::from_millis(2128));
        assert_eq!(err(Some(429), "TooManyRequests", two, ReasonCode::Throttled).class(), FailureClass::Throttled(two));
        assert_eq!(err(Some(503), "serviceNotAvailable", None, ReasonCode::MicrosoftUnavailable).class(), FailureClass::Transient(None));
        assert_eq!(err(None, "transport", None, ReasonCode::MicrosoftUnavailable).class(), FailureClass::Transient(None));
        assert_eq!(err(Some(410), "SyncStateNotFound", None, ReasonCode::Unexpected).class(), FailureClass::CursorExpired);
        assert_eq!(err(Some(400), "resyncRequired", None, ReasonCode::Unexpected).class(), FailureClass::CursorExpired);
        assert_eq!(err(Some(400), "SyncStateInvalid", None, ReasonCode::Unexpected).class(), FailureClass::CursorExpired);
        assert_eq!(err(Some(400), "ErrorInvalidSyncStateData", None, ReasonCode::Unexpected).class(), FailureClass::CursorExpired);
        assert_eq!(
            err(Some(401), "InvalidAuthenticationToken", None, ReasonCode::AccessTokenRejected).class(),
            FailureClass::TokenRejected
        );
        assert_eq!(
            err(Some(404), "MailboxNotEnabledForRESTAPI", None, ReasonCode::MailboxNotLicensed).class(),
            FailureClass::NeedsAttention(ReasonCode::MailboxNotLicensed)
        );
        assert_eq!(
            err(Some(403), "ErrorAccessDenied", None, ReasonCode::NoMailboxAccess).class(),
            FailureClass::NeedsAttention(ReasonCode::NoMailboxAccess)
        );
        assert_eq!(err(Some(404), "ErrorItemNotFound", None, ReasonCode::Unexpected).class(), FailureClass::ContainerGone);
        assert_eq!(err(Some(400), "BadRequest", None, ReasonCode::Unexpected).class(), FailureClass::Other);
    }

    #[test]
    fn the_received_filter_is_utc_iso_8601_in_whole_seconds() {
        use time::macros::datetime;
        assert_eq!(received_since_filter(datetime!(2026-10-01 00:00:00 UTC)), "receivedDateTime ge 2026-10-01T00:00:00Z");
        assert_eq!(received_since_filter(datetime!(2026-10-01 01:30:00 +02:00)), "receivedDateTime ge 2026-09-30T23:30:00Z");
        assert_eq!(received_since_filter(datetime!(2026-03-04 05:06:07.890 UTC)), "receivedDateTime ge 2026-03-04T05:06:07Z");
    }

    #[test]
    fn only_a_first_mail_request_carries_the_received_filter() {
        let client =
            MicrosoftClient::new(crate::Endpoints::parse("https://login.example.test", "https://graph.example.test/v1.0").unwrap())
                .unwrap();
        let mailbox = MailboxRef::User("alice@northwind.test".into());
        let since = time::macros::datetime!(2026-10-01 00:00:00 UTC);
        let req = |resource, container| DeltaRequest {
            mailbox: &mailbox,
            resource,
            container,
            window: Some(("2026-10-01T00:00:00Z", "2027-12-01T00:00:00Z")),
            received_since: Some(since),
            page_size: 10,
            start: DeltaStart::Initial,
        };
        let mail = client.delta_start_url(&req(Resource::Mail, Some("inbox"))).unwrap();
        assert_eq!(
            mail,
            format!(
                "https://graph.example.test/v1.0/users/alice@northwind.test/mailFolders/inbox/messages/delta?$select={}&$filter=receivedDateTime%20ge%202026-10-01T00%3A00%3A00Z",
                encode(MESSAGE_SELECT)
            )
        );
        // What Graph reads back out of the query string is the filter itself.
        let query = url::Url::parse(&mail).unwrap();
        let filter = query.query_pairs().find(|(k, _)| k == "$filter").map(|(_, v)| v.into_owned());
        assert_eq!(filter.as_deref(), Some("receivedDateTime ge 2026-10-01T00:00:00Z"));
        let unfiltered = DeltaRequest { received_since: None, ..req(Resource::Mail, Some("inbox")) };
        assert!(!client.delta_start_url(&unfiltered).unwrap().contains("$filter"));
        // Other resources take no $filter (calendarView delta refuses one, §3.4).
        for (resource, container) in [(Resource::Calendar, None), (Resource::Contacts, Some("c1")), (Resource::Tasks, Some("t1"))] {
            let url = client.delta_start_url(&req(resource, container)).unwrap();
            assert!(!url.contains("filter"), "{url}");
        }
    }

    #[test]
    fn removed_entries_are_deletions_and_others_are_typed() {
        let v = serde_json::json!({"@odata.type": "#microsoft.graph.message", "id": "m1", "@removed": {"reason": "deleted"}});
        assert_eq!(parse_item(Resource::Mail, v).unwrap(), DeltaItem::Removed { id: "m1".into() });
        let v = serde_json::json!({"id": "t1", "title": "Call", "status": "notStarted", "extra": 1});
        let DeltaItem::Upsert(GraphItem::Task(t)) = parse_item(Resource::Tasks, v).unwrap() else { panic!("a task") };
        assert_eq!((t.title.as_deref(), t.status.as_deref()), (Some("Call"), Some("notStarted")));
    }
}
