//! Change notifications: validation handshake, notifications on changes, renew/delete, lifecycle.

use crate::helpers::*;
use axum::body::Bytes;
use axum::extract::{Query, State};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Inbox = Arc<Mutex<Vec<(String, Value)>>>;

/// A webhook receiver: echoes validation tokens on /hook and /life, records notifications; /wrong echoes
/// something else.
async fn receiver() -> (String, Inbox) {
    async fn hook(
        State((inbox, name)): State<(Inbox, &'static str)>,
        Query(q): Query<HashMap<String, String>>,
        body: Bytes,
    ) -> (axum::http::StatusCode, [(&'static str, &'static str); 1], String) {
        if let Some(token) = q.get("validationToken") {
            let reply = if name == "wrong" { "nope".to_string() } else { token.clone() };
            return (axum::http::StatusCode::OK, [("content-type", "text/plain")], reply);
        }
        inbox.lock().unwrap().push((name.to_string(), serde_json::from_slice(&body).unwrap_or(Value::Null)));
        (axum::http::StatusCode::ACCEPTED, [("content-type", "text/plain")], String::new())
    }
    let inbox: Inbox = Arc::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook).with_state((inbox.clone(), "hook")))
        .route("/life", axum::routing::post(hook).with_state((inbox.clone(), "life")))
        .route("/wrong", axum::routing::post(hook).with_state((inbox.clone(), "wrong")));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), inbox)
}

async fn wait_for(inbox: &Inbox, pred: impl Fn(&(String, Value)) -> bool) -> (String, Value) {
    for _ in 0..100 {
        if let Some(found) = inbox.lock().unwrap().iter().find(|e| pred(e)).cloned() {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("notification did not arrive; got {:?}", inbox.lock().unwrap());
}

#[tokio::test]
async fn subscriptions_validate_notify_renew_and_end_with_lifecycle_events() {
    let t = spawn().await;
    let (hooks, inbox) = receiver().await;
    let at = user_token(&t, "alice@northwind.test").await;
    let tomorrow =
        (time::OffsetDateTime::now_utc() + time::Duration::days(1)).format(&time::format_description::well_known::Rfc3339).unwrap();
    let body = |url: &str, resource: &str, exp: &str| {
        json!({"changeType": "created,updated,deleted", "notificationUrl": url, "lifecycleNotificationUrl": format!("{hooks}/life"),
               "resource": resource, "expirationDateTime": exp, "clientState": "s3cret", "latestSupportedTlsVersion": "v1_2"})
    };
    let created =
        graph_post(&t, &at, "/subscriptions", &body(&format!("{hooks}/hook"), "me/mailFolders('inbox')/messages", &tomorrow)).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let sub_id = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(created.body["clientState"], "s3cret");
    assert_eq!(created.body["changeType"], "created,updated,deleted");
    assert_eq!(created.body["applicationId"], m365_emulator::DEMO_CLIENT_ID);
    assert!(created.body["expirationDateTime"].as_str().unwrap().ends_with('Z'));

    // Refusals: endpoint that does not echo, too long a lifetime, someone else's mailbox.
    let r = graph_post(&t, &at, "/subscriptions", &body(&format!("{hooks}/wrong"), "me/messages", &tomorrow)).await;
    assert_eq!(r.status, 400);
    assert!(r.text.contains("validation"));
    let far = (time::OffsetDateTime::now_utc() + time::Duration::days(4)).format(&time::format_description::well_known::Rfc3339).unwrap();
    assert_eq!(graph_post(&t, &at, "/subscriptions", &body(&format!("{hooks}/hook"), "me/messages", &far)).await.status, 400);
    assert_eq!(
        graph_post(&t, &at, "/subscriptions", &body(&format!("{hooks}/hook"), "users/bob@northwind.test/messages", &tomorrow)).await.status,
        403
    );

    // A new message → "created" with the item's id, clientState and tenant.
    let added = t.emu.add_item("alice@northwind.test", m365_emulator::Kind::Message, Some("inbox"), json!({"subject": "ping"})).unwrap();
    let (_, note) = wait_for(&inbox, |(n, v)| n == "hook" && v["value"][0]["changeType"] == "created").await;
    let n = &note["value"][0];
    assert_eq!(n["subscriptionId"], sub_id.as_str());
    assert_eq!(n["clientState"], "s3cret");
    assert_eq!(n["tenantId"], NW);
    assert_eq!(n["resourceData"]["id"], added.id.as_str());
    assert_eq!(n["resourceData"]["@odata.type"], "#Microsoft.Graph.Message");
    assert!(n["resource"].as_str().unwrap().starts_with("Users/6e1f0a00-0000-4000-8000-000000000002/Messages/"));
    // Moving it out of the inbox is a "deleted" for an inbox subscription.
    t.emu.move_item("alice@northwind.test", &added.id, "archive").unwrap();
    wait_for(&inbox, |(n, v)| n == "hook" && v["value"][0]["changeType"] == "deleted").await;
    // Changes elsewhere (archive) do not notify this subscription.
    let before = inbox.lock().unwrap().len();
    let archived = t.emu.list_items("alice@northwind.test", m365_emulator::Kind::Message, "archive", 1).unwrap();
    t.emu.update_item("alice@northwind.test", &archived[0].id, json!({"isRead": true})).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(inbox.lock().unwrap().len(), before);

    // Renew, list, then a password-reset style revocation removes the delegated subscription.
    let renewed = t
        .http
        .patch(format!("{}/subscriptions/{sub_id}", t.emu.graph_base()))
        .bearer_auth(&at)
        .json(&json!({"expirationDateTime": tomorrow}))
        .send()
        .await
        .unwrap();
    assert_eq!(renewed.status(), 200);
    let list = graph(&t, &at, "/subscriptions", &[]).await;
    assert_eq!(list.body["value"].as_array().unwrap().len(), 1);
    t.emu.revoke_refresh_tokens("alice@northwind.test").unwrap();
    let (_, life) = wait_for(&inbox, |(n, _)| n == "life").await;
    assert_eq!(life["value"][0]["lifecycleEvent"], "subscriptionRemoved");
    assert_eq!(life["value"][0]["subscriptionId"], sub_id.as_str());
    assert_eq!(graph(&t, &at, &format!("/subscriptions/{sub_id}"), &[]).await.status, 404);
    assert!(t.emu.counters().notifications_delivered >= 3);
    t.emu.shutdown().await;
}

#[tokio::test]
async fn app_only_subscriptions_reach_any_mailbox_and_get_missed_events() {
    let t = spawn().await;
    let (hooks, inbox) = receiver().await;
    t.emu.grant_admin_consent(NW, m365_emulator::DEMO_CLIENT_ID, &[], &["Calendars.Read"]).unwrap();
    let (_, tok) = app_token(&t, NW).await;
    let app = tok["access_token"].as_str().unwrap();
    let exp = (time::OffsetDateTime::now_utc() + time::Duration::hours(2)).format(&time::format_description::well_known::Rfc3339).unwrap();
    let r = graph_post(&t, app, "/subscriptions", &json!({"changeType": "created", "notificationUrl": format!("{hooks}/hook"), "lifecycleNotificationUrl": format!("{hooks}/life"), "resource": "users/bob@northwind.test/events", "expirationDateTime": exp})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r2 = graph_post(&t, app, "/subscriptions", &json!({"changeType": "created", "notificationUrl": format!("{hooks}/hook"), "resource": "users/bob@northwind.test/messages", "expirationDateTime": exp})).await;
    assert_eq!(r2.status, 403, "no Mail.Read role");
    t.emu.add_item("bob@northwind.test", m365_emulator::Kind::Event, None, json!({"subject": "standup"})).unwrap();
    let (_, note) = wait_for(&inbox, |(n, _)| n == "hook").await;
    assert_eq!(note["value"][0]["resourceData"]["@odata.type"], "#Microsoft.Graph.Event");
    assert_eq!(t.emu.send_lifecycle_event(None, Some("bob@northwind.test"), "missed"), 1);
    let (_, life) = wait_for(&inbox, |(n, _)| n == "life").await;
    assert_eq!(life["value"][0]["lifecycleEvent"], "missed");
    let del = t
        .http
        .delete(format!("{}/subscriptions/{}", t.emu.graph_base(), r.body["id"].as_str().unwrap()))
        .bearer_auth(app)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204);
    t.emu.shutdown().await;
}

#[tokio::test]
async fn writes_notify_the_sender_recipients_and_attendees() {
    let t = spawn().await;
    let (hooks, inbox) = receiver().await;
    let writer = "openid offline_access User.Read Mail.Read Mail.ReadWrite Mail.Send Calendars.ReadWrite";
    let alice = user_tokens(&t, "alice@northwind.test", writer).await["access_token"].as_str().unwrap().to_string();
    let bob = user_token(&t, "bob@northwind.test").await;
    let tomorrow =
        (time::OffsetDateTime::now_utc() + time::Duration::days(1)).format(&time::format_description::well_known::Rfc3339).unwrap();
    let subscribe = |resource: &str, state: &str| {
        json!({"changeType": "created,updated,deleted", "notificationUrl": format!("{hooks}/hook"), "resource": resource,
               "expirationDateTime": tomorrow, "clientState": state})
    };
    for (token, resource, state) in [
        (&alice, "me/mailFolders('sentitems')/messages", "alice-sent"),
        (&bob, "me/mailFolders('inbox')/messages", "bob-inbox"),
        (&bob, "me/events", "bob-events"),
    ] {
        let r = graph_post(&t, token, "/subscriptions", &subscribe(resource, state)).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let draft = json!({"subject": "Notify me", "toRecipients": [{"emailAddress": {"address": "bob@northwind.test"}}]});
    let d = graph_post(&t, &alice, "/me/messages", &draft).await;
    assert_eq!(d.status, 201, "{}", d.text);
    let sent = graph_post(&t, &alice, &format!("/me/messages/{}/send", d.body["id"].as_str().unwrap()), &json!({})).await;
    assert_eq!(sent.status, 202, "{}", sent.text);
    let has = |state: &'static str, change: &'static str| {
        move |(_, v): &(String, Value)| {
            v["value"].as_array().unwrap().iter().any(|n| n["clientState"] == state && n["changeType"] == change)
        }
    };
    wait_for(&inbox, has("alice-sent", "created")).await;
    wait_for(&inbox, has("bob-inbox", "created")).await;
    let meeting = json!({"subject": "Sync", "start": {"dateTime": "2026-12-14T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2026-12-14T09:30:00", "timeZone": "UTC"}, "attendees": [{"emailAddress": {"address": "bob@northwind.test"}}]});
    let ev = graph_post(&t, &alice, "/me/events", &meeting).await;
    assert_eq!(ev.status, 201, "{}", ev.text);
    wait_for(&inbox, has("bob-events", "created")).await;
    let r = graph_post(&t, &alice, &format!("/me/events/{}/cancel", ev.body["id"].as_str().unwrap()), &json!({"comment": "Off"})).await;
    assert_eq!(r.status, 202);
    wait_for(&inbox, has("bob-events", "updated")).await;
    t.emu.shutdown().await;
}
