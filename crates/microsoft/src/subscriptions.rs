//! Change-notification subscriptions (MICROSOFT.md §4.3): create, renew, delete, and the shapes of
//! the notifications and lifecycle events Microsoft posts back.
//!
//! Outlook resources live at most 4,230 minutes; a subscription is renewed by `PATCH` with a new
//! `expirationDateTime` and deleted with `DELETE`. Creating one makes Microsoft validate both URLs
//! first (the endpoint must echo `validationToken`), so `create_subscription` only returns once the
//! server answering those URLs has done so.

use crate::MicrosoftClient;
use crate::graph::{GraphError, MailboxRef, parse_json};
use domain::Resource;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use time::OffsetDateTime;

/// Microsoft's longest lifetime for Outlook message, event, contact and To Do task subscriptions.
pub const OUTLOOK_SUBSCRIPTION_MAX_MINUTES: i64 = 4230;

/// What a subscription watches: one resource of one mailbox; To Do tasks per list (`container`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionTarget<'a> {
    pub mailbox: &'a MailboxRef,
    pub resource: Resource,
    /// The To Do list for [`Resource::Tasks`]; ignored for the others, which watch the whole
    /// mailbox (every mail folder, the calendar, the default contacts).
    pub container: Option<&'a str>,
}

impl SubscriptionTarget<'_> {
    /// The `resource` path Microsoft expects (§4.3): `me/messages`, `users/{id}/events`,
    /// `me/todo/lists/{id}/tasks`, … `None` for tasks without a list.
    pub fn resource_path(&self) -> Option<String> {
        let owner = match self.mailbox {
            MailboxRef::Me => "me".to_string(),
            MailboxRef::User(id) => format!("users/{}", path_segment(id)),
        };
        let rest = match self.resource {
            Resource::Mail => "messages".to_string(),
            Resource::Calendar => "events".to_string(),
            Resource::Contacts => "contacts".to_string(),
            Resource::Tasks => format!("todo/lists/{}/tasks", path_segment(self.container?)),
        };
        Some(format!("{owner}/{rest}"))
    }
}

/// Percent-encodes what could end or escape a path segment (ids are base64-like; `/` and `?` must
/// not reach Microsoft as structure).
fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '-' | '_' | '.' | '~' | '=' | '@' | '+' => out.push(c),
            _ => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
        }
    }
    out
}

/// Where Microsoft posts: the notification URL and the lifecycle-notification URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationUrls {
    pub notification: String,
    pub lifecycle: String,
}

/// A subscription as Microsoft created or renewed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: String,
    pub expires_at: OffsetDateTime,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscriptionBody {
    id: String,
    expiration_date_time: String,
}

impl SubscriptionBody {
    fn into_subscription(self, status: u16) -> Result<Subscription, GraphError> {
        let expires_at = parse_graph_time(&self.expiration_date_time).ok_or_else(|| GraphError {
            status: Some(status),
            code: "unexpectedResponse".into(),
            message: format!("expirationDateTime {:?} is not a date-time", self.expiration_date_time),
            request_id: None,
            retry_after: None,
            reason: domain::ReasonCode::Unexpected,
        })?;
        Ok(Subscription { id: self.id, expires_at })
    }
}

/// Graph's date-times: RFC 3339 with up to seven fractional digits (`2025-01-03T11:00:00.0000000Z`).
fn parse_graph_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

fn graph_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.0000000Z", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute(), t.second())
}

impl MicrosoftClient {
    /// `POST /subscriptions` for `created,updated,deleted` on `target`, expiring at `expires_at`
    /// (at most [`OUTLOOK_SUBSCRIPTION_MAX_MINUTES`] ahead), with `client_state` echoed in every
    /// notification. Microsoft validates both URLs before it answers.
    pub async fn create_subscription(
        &self,
        token: &SecretString,
        target: &SubscriptionTarget<'_>,
        urls: &NotificationUrls,
        client_state: &SecretString,
        expires_at: OffsetDateTime,
    ) -> Result<Subscription, GraphError> {
        let resource = target.resource_path().ok_or_else(|| GraphError {
            status: None,
            code: "invalidTarget".into(),
            message: "a To Do subscription needs a list".into(),
            request_id: None,
            retry_after: None,
            reason: domain::ReasonCode::Unexpected,
        })?;
        let body = serde_json::json!({
            "changeType": "created,updated,deleted",
            "notificationUrl": urls.notification,
            "lifecycleNotificationUrl": urls.lifecycle,
            "resource": resource,
            "expirationDateTime": graph_time(expires_at),
            "clientState": client_state.expose_secret(),
            "latestSupportedTlsVersion": "v1_2",
        });
        let url = self.graph_path(&["subscriptions"], &[])?;
        let other = matches!(target.mailbox, MailboxRef::User(_));
        let answer = self.graph_send(reqwest::Method::POST, token, &url, Some(&body), other).await?;
        parse_json::<SubscriptionBody>(&answer)?.into_subscription(answer.status)
    }

    /// `PATCH /subscriptions/{id}` with a new expiry (renewal; also what `reauthorizationRequired`
    /// asks for, §4.3).
    pub async fn renew_subscription(&self, token: &SecretString, id: &str, expires_at: OffsetDateTime) -> Result<Subscription, GraphError> {
        let url = self.graph_path(&["subscriptions", id], &[])?;
        let body = serde_json::json!({ "expirationDateTime": graph_time(expires_at) });
        let answer = self.graph_send(reqwest::Method::PATCH, token, &url, Some(&body), false).await?;
        parse_json::<SubscriptionBody>(&answer)?.into_subscription(answer.status)
    }

    /// `DELETE /subscriptions/{id}`; one that is already gone (404) counts as deleted.
    pub async fn delete_subscription(&self, token: &SecretString, id: &str) -> Result<(), GraphError> {
        let url = self.graph_path(&["subscriptions", id], &[])?;
        match self.graph_send(reqwest::Method::DELETE, token, &url, None, false).await {
            Ok(_) => Ok(()),
            Err(e) if e.status == Some(404) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// One item of a notification POST (§4.3). Only what the product acts on is read; the rest
/// (`resource`, `resourceData`) is not needed, since a notification only says "sync this now".
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeNotification {
    pub subscription_id: String,
    #[serde(default)]
    pub client_state: Option<String>,
    /// Set on lifecycle notifications: `reauthorizationRequired`, `subscriptionRemoved`, `missed`.
    #[serde(default)]
    pub lifecycle_event: Option<String>,
}

/// A notification or lifecycle POST's body: `{"value": [...]}`.
#[derive(Debug, Clone, Deserialize)]
pub struct ChangeNotifications {
    pub value: Vec<ChangeNotification>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_paths_follow_the_documented_forms() {
        let me = MailboxRef::Me;
        let other = MailboxRef::User("a/b?c".into());
        let t = |mailbox, resource, container| SubscriptionTarget { mailbox, resource, container }.resource_path();
        assert_eq!(t(&me, Resource::Mail, None).as_deref(), Some("me/messages"));
        assert_eq!(t(&me, Resource::Calendar, None).as_deref(), Some("me/events"));
        assert_eq!(t(&me, Resource::Contacts, Some("ignored")).as_deref(), Some("me/contacts"));
        assert_eq!(t(&me, Resource::Tasks, Some("AAMk=")).as_deref(), Some("me/todo/lists/AAMk=/tasks"));
        assert_eq!(t(&me, Resource::Tasks, None), None);
        assert_eq!(t(&other, Resource::Mail, None).as_deref(), Some("users/a%2Fb%3Fc/messages"));
    }

    #[test]
    fn graph_times_round_trip() {
        let t = time::macros::datetime!(2026-12-03 11:00:05 UTC);
        assert_eq!(graph_time(t), "2026-12-03T11:00:05.0000000Z");
        assert_eq!(parse_graph_time(&graph_time(t)), Some(t));
        assert_eq!(parse_graph_time("2026-12-03T11:00:05Z"), Some(t));
        assert_eq!(parse_graph_time("tomorrow"), None);
    }

    #[test]
    fn notification_bodies_parse_with_or_without_optional_fields() {
        let n: ChangeNotifications = serde_json::from_str(
            r#"{"value":[{"subscriptionId":"s1","clientState":"c","changeType":"created","resource":"Users/u/Messages/m","tenantId":"t"},
                         {"subscriptionId":"s2","lifecycleEvent":"missed"}]}"#,
        )
        .unwrap();
        assert_eq!(n.value.len(), 2);
        assert_eq!(n.value[0].client_state.as_deref(), Some("c"));
        assert_eq!(n.value[1].lifecycle_event.as_deref(), Some("missed"));
        assert!(serde_json::from_str::<ChangeNotifications>(r#"{"value":[{"clientState":"c"}]}"#).is_err());
    }
}
