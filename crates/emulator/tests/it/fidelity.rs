//! Request forms real Graph accepts (full function and action names, case-insensitive action
//! parameters, least-privilege permissions) and the behaviours of real Microsoft that the product must
//! survive, each behind a `ProtocolOptions` switch.

use crate::helpers::*;
use m365_emulator::{ProtocolOptions, ThrottleConfig};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;

const WINDOW: &str = "startDateTime=2026-06-01T00:00:00Z&endDateTime=2027-06-01T00:00:00Z";

fn ids(items: &[Value]) -> Vec<String> {
    items.iter().filter_map(|v| v["id"].as_str().map(str::to_string)).collect()
}

#[tokio::test]
async fn delta_answers_under_every_function_name_form() {
    let t = spawn().await;
    let at = user_token(&t, "alice@northwind.test").await;
    let bases = [
        "/me/mailFolders/inbox/messages/".to_string(),
        "/me/mailFolders/".to_string(),
        "/me/contactFolders/contacts/contacts/".to_string(),
        "/me/contacts/".to_string(),
        "/me/todo/lists/".to_string(),
        "/me/todo/lists/tasks/tasks/".to_string(),
    ];
    for base in &bases {
        let (short, _, _) = delta_round(&t, &at, &format!("{base}delta"), &[]).await;
        for form in ["delta()", "microsoft.graph.delta", "microsoft.graph.delta()"] {
            let (items, link, _) = delta_round(&t, &at, &format!("{base}{form}"), &[]).await;
            assert_eq!(ids(&items), ids(&short), "{base}{form}");
            assert!(link.contains("$deltatoken="), "{link}");
        }
    }
    let cal = format!("/me/calendarView/microsoft.graph.delta()?{WINDOW}");
    let (items, _, _) = delta_round(&t, &at, &cal, &[]).await;
    assert!(!items.is_empty());
    let counters = t.emu.counters();
    assert!(counters.requests_matching("GET /me/calendarView/delta", Some(200)) >= 1);
    t.emu.shutdown().await;
}

#[tokio::test]
async fn send_mail_by_full_name_with_pascal_case_parameters() {
    let t = spawn().await;
    let at = user_token(&t, "alice@northwind.test").await;
    let before = t.emu.snapshot("bob@northwind.test", m365_emulator::Kind::Message, "inbox", false).unwrap().len();
    let sent_before = t.emu.snapshot("alice@northwind.test", m365_emulator::Kind::Message, "sentitems", false).unwrap().len();
    let body = json!({
        "Message": {"subject": "Kiota style", "toRecipients": [{"emailAddress": {"address": "bob@northwind.test"}}]},
        "SaveToSentItems": false
    });
    let r = graph_post(&t, &at, "/me/microsoft.graph.sendMail", &body).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let after = t.emu.snapshot("bob@northwind.test", m365_emulator::Kind::Message, "inbox", false).unwrap().len();
    assert_eq!(after, before + 1);
    let sent_after = t.emu.snapshot("alice@northwind.test", m365_emulator::Kind::Message, "sentitems", false).unwrap().len();
    assert_eq!(sent_after, sent_before, "SaveToSentItems: false was honoured");
    let r = graph_post(&t, &at, "/users/alice@northwind.test/sendMail", &json!({"message": {"subject": "x"}})).await;
    assert_eq!(r.status, 400, "no recipients");
    t.emu.shutdown().await;
}

#[tokio::test]
async fn calendars_read_alone_lets_calendar_view_delta_through() {
    let t = spawn().await;
    let tokens = user_tokens(&t, "alice@northwind.test", "openid offline_access Calendars.Read").await;
    let at = tokens["access_token"].as_str().unwrap();
    let r = graph(&t, at, &format!("/me/calendarView/delta?{WINDOW}"), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = graph(&t, at, "/me/mailFolders/inbox/messages/delta", &[]).await;
    assert_eq!(r.status, 403);
    assert_graph_error_shape(&r.text, "ErrorAccessDenied");
    t.emu.shutdown().await;
}

#[tokio::test]
async fn mail_read_basic_shows_messages_without_their_body() {
    let t = spawn().await;
    let tokens = user_tokens(&t, "alice@northwind.test", "openid offline_access Mail.ReadBasic").await;
    let at = tokens["access_token"].as_str().unwrap();
    let (items, _, _) = delta_round(&t, at, "/me/mailFolders/inbox/messages/delta", &[]).await;
    assert!(!items.is_empty());
    for m in &items {
        assert!(m.get("subject").is_some(), "{m}");
        assert!(m.get("body").is_none() && m.get("bodyPreview").is_none(), "{m}");
    }
    let id = items[0]["id"].as_str().unwrap();
    let r = graph(&t, at, &format!("/me/messages/{id}"), &[]).await;
    assert_eq!(r.status, 200);
    assert!(r.body.get("body").is_none());
    // Mail.Read shows the body.
    let full = user_token(&t, "alice@northwind.test").await;
    let r = graph(&t, &full, &format!("/me/messages/{id}"), &[]).await;
    assert!(r.body.get("body").is_some());
    t.emu.shutdown().await;
}

#[tokio::test]
async fn mailbox_settings_need_a_mailbox_settings_permission() {
    let t = spawn().await;
    let tokens = user_tokens(&t, "alice@northwind.test", "openid offline_access MailboxSettings.Read Contacts.Read.Shared").await;
    let at = tokens["access_token"].as_str().unwrap();
    let r = graph(&t, at, "/me/mailboxSettings", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["timeZone"], "UTC");
    let r = graph(&t, at, "/me/contacts/delta", &[]).await;
    assert_eq!(r.status, 200, "Contacts.Read.Shared reads one's own contacts: {}", r.text);
    // Consent accumulates per user, so the one without MailboxSettings.Read is another user.
    let other = user_token(&t, "bob@northwind.test").await;
    assert_eq!(graph(&t, &other, "/me/mailboxSettings", &[]).await.status, 403);
    t.emu.shutdown().await;
}

#[tokio::test]
async fn access_token_lifetimes_vary_between_60_and_90_minutes() {
    let t = spawn_with(|c| c.protocol = ProtocolOptions::realistic()).await;
    let mut seen = HashSet::new();
    for _ in 0..8 {
        let (status, body) = app_token(&t, NW).await;
        assert_eq!(status, 200, "{body}");
        let e = body["expires_in"].as_i64().unwrap();
        assert!((3600..=5400).contains(&e), "{e}");
        seen.insert(e);
    }
    assert!(seen.len() > 1, "lifetimes vary: {seen:?}");
    t.emu.shutdown().await;
}

#[tokio::test]
async fn token_scope_may_list_short_names() {
    let t = spawn_with(|c| c.protocol.short_scope_names = true).await;
    let body = user_tokens(&t, "alice@northwind.test", SCOPES).await;
    let scope = body["scope"].as_str().unwrap();
    assert!(!scope.contains("https://"), "{scope}");
    let names: Vec<&str> = scope.split(' ').collect();
    for n in ["User.Read", "Mail.Read", "profile", "openid", "email"] {
        assert!(names.contains(&n), "{n} in {scope}");
    }
    t.emu.shutdown().await;
    let t = spawn().await;
    let body = user_tokens(&t, "alice@northwind.test", SCOPES).await;
    assert!(body["scope"].as_str().unwrap().contains("https://graph.microsoft.com/User.Read"));
    t.emu.shutdown().await;
}

#[tokio::test]
async fn top_is_ignored_on_message_delta_when_switched_on() {
    let t = spawn().await;
    let at = user_token(&t, "alice@northwind.test").await;
    let r = graph(&t, &at, "/me/mailFolders/inbox/messages/delta?$top=2", &[]).await;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 2);
    t.emu.shutdown().await;
    let t = spawn_with(|c| c.protocol.ignore_top_on_message_delta = true).await;
    let at = user_token(&t, "alice@northwind.test").await;
    let r = graph(&t, &at, "/me/mailFolders/inbox/messages/delta?$top=2", &[]).await;
    assert!(r.body["value"].as_array().unwrap().len() > 2, "{}", r.text);
    let r = graph(&t, &at, "/me/mailFolders/inbox/messages/delta", &["odata.maxpagesize=3"]).await;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 3);
    t.emu.shutdown().await;
}

#[tokio::test]
async fn select_is_ignored_on_todo_tasks_when_switched_on() {
    let url = "/me/todo/lists/tasks/tasks/delta?$select=title";
    let t = spawn().await;
    let at = user_token(&t, "alice@northwind.test").await;
    let (items, _, _) = delta_round(&t, &at, url, &[]).await;
    assert!(items.iter().all(|i| i.get("status").is_none()));
    t.emu.shutdown().await;
    let t = spawn_with(|c| c.protocol.ignore_select_on_tasks = true).await;
    let at = user_token(&t, "alice@northwind.test").await;
    let (items, _, _) = delta_round(&t, &at, url, &[]).await;
    assert!(!items.is_empty());
    assert!(items.iter().all(|i| i.get("status").is_some()), "whole tasks");
    t.emu.shutdown().await;
}

#[tokio::test]
async fn calendar_view_delta_can_repeat_items_across_pages() {
    let url = format!("/me/calendarView/delta?{WINDOW}");
    let t = spawn().await;
    let at = user_token(&t, "alice@northwind.test").await;
    let (plain, _, _) = delta_round(&t, &at, &url, &["odata.maxpagesize=3"]).await;
    let unique: HashSet<String> = ids(&plain).into_iter().collect();
    assert_eq!(unique.len(), plain.len(), "no repeats by default");
    t.emu.shutdown().await;
    let t = spawn_with(|c| c.protocol.repeat_calendar_items_across_pages = true).await;
    let at = user_token(&t, "alice@northwind.test").await;
    let (items, _, pages) = delta_round(&t, &at, &url, &["odata.maxpagesize=3"]).await;
    let repeated: HashSet<String> = ids(&items).into_iter().collect();
    assert!(pages > 1);
    assert!(items.len() > repeated.len(), "some item comes twice");
    assert_eq!(repeated, unique, "the same set once de-duplicated");
    t.emu.shutdown().await;
}

#[tokio::test]
async fn directory_requests_are_throttled_with_retry_after() {
    let t = spawn_with(|c| {
        c.protocol.throttle_directory = true;
        c.throttling = ThrottleConfig { max_requests_per_window: 3, window: Duration::from_secs(30), ..ThrottleConfig::default() };
    })
    .await;
    let at = user_token(&t, "alice@northwind.test").await;
    for _ in 0..3 {
        assert_eq!(graph(&t, &at, "/me", &[]).await.status, 200);
    }
    let r = graph(&t, &at, "/me", &[]).await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert_graph_error_shape(&r.text, "TooManyRequests");
    assert!(r.headers.get("retry-after").is_some());
    t.emu.shutdown().await;
}

#[tokio::test]
async fn realistic_profile_fails_some_requests_with_503_or_504() {
    let t = spawn_with(|c| c.protocol.transient_failure_rate = 1.0).await;
    let at = user_token(&t, "alice@northwind.test").await;
    let r = graph(&t, &at, "/me/mailFolders", &[]).await;
    assert!(r.status == 503 || r.status == 504, "{}", r.status);
    assert_eq!(r.headers.get("retry-after").unwrap(), "1");
    let code = if r.status == 503 { "serviceNotAvailable" } else { "gatewayTimeout" };
    assert_graph_error_shape(&r.text, code);
    t.emu.shutdown().await;
}

#[tokio::test]
async fn an_undecodable_delta_token_is_answered_like_microsoft() {
    let url = "/me/mailFolders/inbox/messages/delta?$deltatoken=not-a-token!";
    let t = spawn().await;
    let at = user_token(&t, "alice@northwind.test").await;
    let r = graph(&t, &at, url, &[]).await;
    assert_eq!(r.status, 410);
    assert_graph_error_shape(&r.text, "SyncStateInvalid");
    t.emu.shutdown().await;
    assert_eq!(ProtocolOptions::realistic().undecodable_delta_token_status, 410, "the realistic profile answers as Outlook does");
    let t = spawn_with(|c| c.protocol.undecodable_delta_token_status = 400).await;
    let at = user_token(&t, "alice@northwind.test").await;
    let r = graph(&t, &at, url, &[]).await;
    assert_eq!(r.status, 400);
    assert_graph_error_shape(&r.text, "SyncStateInvalid");
    t.emu.shutdown().await;
}
