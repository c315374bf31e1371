//! Writes to Microsoft 365 (MICROSOFT.md §7), each in a form that can be made exactly once:
//!
//! - mail is a **draft created, then sent by id** (`POST …/messages`, `createReply`,
//!   `createReplyAll`, `createForward`, then `POST …/messages/{id}/send`); the draft carries the
//!   write's key as a single-value extended property, so after a lost answer the mailbox can be
//!   asked whether the draft exists ([`MicrosoftClient::find_messages_by_key`]) and, by its
//!   immutable id, whether it was sent ([`MicrosoftClient::message_state`]);
//! - events carry the key as `transactionId`, which Graph itself uses to refuse a duplicate;
//! - contacts carry it as an extended property, To Do tasks as a linked resource's `externalId`;
//! - completing, reopening and editing are `PATCH`es, the same however often they are sent.
//!
//! Every request asks for immutable ids, so a draft keeps its id when it moves to Sent Items.

use crate::MicrosoftClient;
use crate::graph::{GraphError, GraphText, MailboxRef, parse_json};
use domain::writes::{ContactDraft, EventDraft, MailDraft, TaskDraft};
use reqwest::Method;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};

/// The named property a draft or contact carries the write's key in (in the public-strings
/// property set, as Graph's docs show for custom named properties).
pub const WRITE_KEY_PROPERTY: &str = "String {00020329-0000-0000-C000-000000000046} Name i360WriteKey";
/// The application name on a To Do task's linked resource.
pub const LINKED_APPLICATION: &str = "Intelligence360";

/// A message as far as an exactly-once send cares.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageRef {
    pub id: String,
    #[serde(default)]
    pub is_draft: bool,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

#[derive(Deserialize)]
struct Listed<T> {
    value: Vec<T>,
    #[serde(default, rename = "@odata.nextLink")]
    next_link: Option<String>,
}

fn recipients(list: &[domain::EmailAddress]) -> Value {
    Value::Array(list.iter().map(|a| json!({"emailAddress": {"address": a.as_str()}})).collect())
}

fn key_property(key: &str) -> Value {
    json!([{"id": WRITE_KEY_PROPERTY, "value": key}])
}

/// The message properties of a draft (new, or the recipients and text set on a reply/forward).
fn message_body(d: &MailDraft, key: &str) -> Value {
    let mut m = json!({
        "body": {"contentType": if d.html { "HTML" } else { "Text" }, "content": d.body},
        "singleValueExtendedProperties": key_property(key),
    });
    if !d.subject.is_empty() {
        m["subject"] = json!(d.subject);
    }
    for (field, list) in [("toRecipients", &d.to), ("ccRecipients", &d.cc), ("bccRecipients", &d.bcc)] {
        if !list.is_empty() {
            m[field] = recipients(list);
        }
    }
    m
}

fn event_body(e: &EventDraft, key: &str) -> Value {
    let at = |t: &str| json!({"dateTime": if t.len() == 16 { format!("{t}:00") } else { t.to_string() }, "timeZone": e.time_zone});
    let attendees: Vec<Value> = e.attendees.iter().map(|a| json!({"emailAddress": {"address": a.as_str()}, "type": "required"})).collect();
    json!({
        "subject": e.subject,
        "body": {"contentType": "Text", "content": e.body},
        "start": at(&e.start),
        "end": at(&e.end),
        "location": {"displayName": e.location},
        "attendees": attendees,
        "transactionId": key,
    })
}

fn contact_body(c: &ContactDraft) -> Value {
    let name = format!("{} {}", c.given_name, c.surname).trim().to_string();
    let emails: Vec<Value> = c.email.iter().map(|e| json!({"address": e.as_str(), "name": name})).collect();
    let phones: Vec<&str> = if c.phone.trim().is_empty() { vec![] } else { vec![c.phone.trim()] };
    json!({
        "givenName": c.given_name,
        "surname": c.surname,
        "emailAddresses": emails,
        "businessPhones": phones,
        "companyName": c.company,
        "jobTitle": c.job_title,
    })
}

/// `users/{id}` or `me`, then the rest.
fn segments<'a>(mailbox: &'a MailboxRef, rest: &[&'a str]) -> Vec<&'a str> {
    let mut s = match mailbox {
        MailboxRef::Me => vec!["me"],
        MailboxRef::User(id) => vec!["users", id.as_str()],
    };
    s.extend_from_slice(rest);
    s
}

/// An OData string literal: single quotes doubled.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl MicrosoftClient {
    /// One write request to the mailbox's `rest` path; Graph's answer.
    async fn write(
        &self,
        method: Method,
        token: &SecretString,
        mailbox: &MailboxRef,
        rest: &[&str],
        body: Option<&Value>,
    ) -> Result<GraphText, GraphError> {
        let url = self.graph_path(&segments(mailbox, rest), &[])?;
        self.graph_send(method, token, &url, body, matches!(mailbox, MailboxRef::User(_))).await
    }

    /// [`MicrosoftClient::write`], its answer read as the documented JSON.
    async fn write_json<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        token: &SecretString,
        mailbox: &MailboxRef,
        rest: &[&str],
        body: Option<&Value>,
    ) -> Result<T, GraphError> {
        parse_json(&self.write(method, token, mailbox, rest, body).await?)
    }

    /// A new draft (`POST …/messages`) carrying the write's key.
    pub async fn create_draft(
        &self,
        token: &SecretString,
        mailbox: &MailboxRef,
        draft: &MailDraft,
        key: &str,
    ) -> Result<MessageRef, GraphError> {
        self.write_json(Method::POST, token, mailbox, &["messages"], Some(&message_body(draft, key))).await
    }

    /// A draft reply (`createReply` / `createReplyAll`) or forward (`createForward`) to `message`,
    /// with the typed text as its comment and any recipients the writer set.
    pub async fn create_response(
        &self,
        token: &SecretString,
        mailbox: &MailboxRef,
        message: &str,
        action: ResponseAction,
        draft: &MailDraft,
        key: &str,
    ) -> Result<MessageRef, GraphError> {
        let mut props = message_body(draft, key);
        // The comment is the text; the draft's own body is the quoted original.
        if let Some(m) = props.as_object_mut() {
            m.remove("body");
        }
        let body = json!({"message": props, "comment": draft.body});
        self.write_json(Method::POST, token, mailbox, &["messages", message, action.as_str()], Some(&body)).await
    }

    /// Sends a draft by id (`POST …/messages/{id}/send`, 202).
    pub async fn send_draft(&self, token: &SecretString, mailbox: &MailboxRef, id: &str) -> Result<(), GraphError> {
        self.write(Method::POST, token, mailbox, &["messages", id, "send"], None).await.map(|_| ())
    }

    /// A message by its immutable id (is it still a draft?); `None` when the mailbox has no such
    /// message.
    pub async fn message_state(&self, token: &SecretString, mailbox: &MailboxRef, id: &str) -> Result<Option<MessageRef>, GraphError> {
        let url = self.graph_path(&segments(mailbox, &["messages", id]), &[("$select", "id,isDraft")])?;
        match self.graph_get(token, &url, matches!(mailbox, MailboxRef::User(_))).await {
            Ok(m) => Ok(Some(m)),
            Err(e) if e.status == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The messages (any folder) carrying this write's key.
    pub async fn find_messages_by_key(&self, token: &SecretString, mailbox: &MailboxRef, key: &str) -> Result<Vec<MessageRef>, GraphError> {
        self.find_by_key(token, mailbox, "messages", key, "id,isDraft").await
    }

    /// The contacts carrying this write's key.
    pub async fn find_contacts_by_key(&self, token: &SecretString, mailbox: &MailboxRef, key: &str) -> Result<Vec<String>, GraphError> {
        let found: Vec<MessageRef> = self.find_by_key(token, mailbox, "contacts", key, "id").await?;
        Ok(found.into_iter().map(|m| m.id).collect())
    }

    async fn find_by_key(
        &self,
        token: &SecretString,
        mailbox: &MailboxRef,
        collection: &str,
        key: &str,
        select: &str,
    ) -> Result<Vec<MessageRef>, GraphError> {
        let filter =
            format!("singleValueExtendedProperties/Any(ep: ep/id eq {} and ep/value eq {})", literal(WRITE_KEY_PROPERTY), literal(key));
        let url = self.graph_path(&segments(mailbox, &[collection]), &[("$filter", filter.as_str()), ("$select", select)])?;
        let page: Listed<MessageRef> = self.graph_get(token, &url, matches!(mailbox, MailboxRef::User(_))).await?;
        Ok(page.value)
    }

    /// A new event with the write's key as `transactionId`: Graph creates it once however often
    /// this is sent. Returns its id.
    pub async fn create_event(
        &self,
        token: &SecretString,
        mailbox: &MailboxRef,
        event: &EventDraft,
        key: &str,
    ) -> Result<String, GraphError> {
        let c: Created = self.write_json(Method::POST, token, mailbox, &["events"], Some(&event_body(event, key))).await?;
        Ok(c.id)
    }

    /// Cancels a meeting the mailbox organizes (`POST …/events/{id}/cancel`, 202), telling the
    /// attendees `comment`.
    pub async fn cancel_event(&self, token: &SecretString, mailbox: &MailboxRef, id: &str, comment: &str) -> Result<(), GraphError> {
        let body = json!({"comment": comment});
        self.write(Method::POST, token, mailbox, &["events", id, "cancel"], Some(&body)).await.map(|_| ())
    }

    /// A new contact carrying the write's key. Returns its id.
    pub async fn create_contact(
        &self,
        token: &SecretString,
        mailbox: &MailboxRef,
        contact: &ContactDraft,
        key: &str,
    ) -> Result<String, GraphError> {
        let mut body = contact_body(contact);
        body["singleValueExtendedProperties"] = key_property(key);
        let c: Created = self.write_json(Method::POST, token, mailbox, &["contacts"], Some(&body)).await?;
        Ok(c.id)
    }

    /// Saves a contact's fields (`PATCH …/contacts/{id}`).
    pub async fn update_contact(
        &self,
        token: &SecretString,
        mailbox: &MailboxRef,
        id: &str,
        contact: &ContactDraft,
    ) -> Result<String, GraphError> {
        let c: Created = self.write_json(Method::PATCH, token, mailbox, &["contacts", id], Some(&contact_body(contact))).await?;
        Ok(c.id)
    }

    /// A new To Do task in `list`, linked to the write's key. Returns its id.
    pub async fn create_task(&self, token: &SecretString, mailbox: &MailboxRef, task: &TaskDraft, key: &str) -> Result<String, GraphError> {
        let mut body = json!({
            "title": task.title,
            "linkedResources": [{"applicationName": LINKED_APPLICATION, "externalId": key, "displayName": task.title}],
        });
        if let Some(due) = &task.due {
            body["dueDateTime"] = json!({"dateTime": format!("{due}T00:00:00"), "timeZone": "UTC"});
        }
        let c: Created = self.write_json(Method::POST, token, mailbox, &["todo", "lists", &task.list, "tasks"], Some(&body)).await?;
        Ok(c.id)
    }

    /// The task in `list` linked to this write's key, among the tasks created since `since` (an
    /// RFC 3339 time).
    pub async fn find_task_by_key(
        &self,
        token: &SecretString,
        mailbox: &MailboxRef,
        list: &str,
        key: &str,
        since: &str,
    ) -> Result<Option<String>, GraphError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Linked {
            #[serde(default)]
            external_id: Option<String>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct TaskRef {
            id: String,
            #[serde(default)]
            linked_resources: Vec<Linked>,
        }
        let filter = format!("createdDateTime ge {since}");
        let mut url = self.graph_path(
            &segments(mailbox, &["todo", "lists", list, "tasks"]),
            &[("$filter", filter.as_str()), ("$expand", "linkedResources")],
        )?;
        // A few pages at most: the task was created moments ago.
        for _ in 0..5 {
            let page: Listed<TaskRef> = self.graph_get(token, &url, matches!(mailbox, MailboxRef::User(_))).await?;
            if let Some(t) = page.value.into_iter().find(|t| t.linked_resources.iter().any(|l| l.external_id.as_deref() == Some(key))) {
                return Ok(Some(t.id));
            }
            match page.next_link {
                Some(next) => url = next,
                None => break,
            }
        }
        Ok(None)
    }

    /// Completes or reopens a task (`PATCH …/tasks/{id}` with `status`).
    pub async fn set_task_done(
        &self,
        token: &SecretString,
        mailbox: &MailboxRef,
        list: &str,
        id: &str,
        done: bool,
    ) -> Result<String, GraphError> {
        let body = json!({"status": if done { "completed" } else { "notStarted" }});
        let c: Created = self.write_json(Method::PATCH, token, mailbox, &["todo", "lists", list, "tasks", id], Some(&body)).await?;
        Ok(c.id)
    }
}

/// Which draft response to a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseAction {
    Reply,
    ReplyAll,
    Forward,
}

impl ResponseAction {
    fn as_str(self) -> &'static str {
        match self {
            ResponseAction::Reply => "createReply",
            ResponseAction::ReplyAll => "createReplyAll",
            ResponseAction::Forward => "createForward",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> domain::EmailAddress {
        domain::EmailAddress::parse(s).unwrap()
    }

    #[test]
    fn a_draft_carries_its_recipients_text_and_key() {
        let d = MailDraft {
            to: vec![addr("bob@northwind.test")],
            subject: "Hi".into(),
            body: "<p>Hello</p>".into(),
            html: true,
            ..Default::default()
        };
        let m = message_body(&d, "k-1");
        assert_eq!(m["toRecipients"][0]["emailAddress"]["address"], "bob@northwind.test");
        assert_eq!(m["body"]["contentType"], "HTML");
        assert_eq!(m["singleValueExtendedProperties"][0]["value"], "k-1");
        assert!(m.get("ccRecipients").is_none(), "empty lists are left to Outlook");
    }

    #[test]
    fn an_event_has_zoned_times_attendees_and_its_transaction_id() {
        let e = EventDraft {
            subject: "Review".into(),
            start: "2026-12-03T14:00".into(),
            end: "2026-12-03T15:00:00".into(),
            time_zone: "Europe/Berlin".into(),
            attendees: vec![addr("bob@northwind.test")],
            ..Default::default()
        };
        let v = event_body(&e, "k-2");
        assert_eq!(v["start"], json!({"dateTime": "2026-12-03T14:00:00", "timeZone": "Europe/Berlin"}));
        assert_eq!(v["end"]["dateTime"], "2026-12-03T15:00:00");
        assert_eq!(v["attendees"][0]["type"], "required");
        assert_eq!(v["transactionId"], "k-2");
    }

    #[test]
    fn literals_are_quoted_for_odata() {
        assert_eq!(literal("it's"), "'it''s'");
    }
}
