//! Graph writes done exactly once: drafts sent by id, replies and forwards, the extended-property
//! filter, event `transactionId`, invitations and cancel, contact and task updates, permissions, and
//! faults that answer after performing.

use crate::helpers::*;
use m365_emulator::{DEMO_CLIENT_ID, FaultRule, Kind};
use serde_json::{Value, json};

const IMMUTABLE: &str = "IdType=\"ImmutableId\"";
const PROP: &str = "String {8c1f52d4-3b0e-4f6a-9d2e-7a5b1c0e9f31} Name i360WriteKey";
const WRITER: &str = "openid offline_access User.Read Mail.ReadWrite Mail.Send Calendars.ReadWrite Contacts.ReadWrite Tasks.ReadWrite";

async fn token_with(t: &TestEmu, email: &str, scopes: &str) -> String {
    user_tokens(t, email, scopes).await["access_token"].as_str().unwrap().to_string()
}

/// A write as the product sends it: JSON body (or none), `Prefer: IdType="ImmutableId"`.
async fn write(t: &TestEmu, token: &str, method: reqwest::Method, path: &str, body: Option<&Value>) -> GraphReply {
    let mut req = t.http.request(method, format!("{}{path}", t.emu.graph_base())).bearer_auth(token).header("Prefer", IMMUTABLE);
    if let Some(b) = body {
        req = req.json(b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap_or_default();
    GraphReply { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::Null), text }
}

async fn post(t: &TestEmu, token: &str, path: &str, body: Option<&Value>) -> GraphReply {
    write(t, token, reqwest::Method::POST, path, body).await
}

async fn patch(t: &TestEmu, token: &str, path: &str, body: &Value) -> GraphReply {
    write(t, token, reqwest::Method::PATCH, path, Some(body)).await
}

async fn get(t: &TestEmu, token: &str, path: &str) -> GraphReply {
    graph(t, token, path, &[IMMUTABLE]).await
}

fn to(addr: &str) -> Value {
    json!([{"emailAddress": {"address": addr}}])
}

fn draft(subject: &str, rcpt: &str, key: &str) -> Value {
    json!({"subject": subject, "body": {"contentType": "HTML", "content": "<p>Hello <b>there</b></p>"}, "toRecipients": to(rcpt),
           "ccRecipients": [], "bccRecipients": [], "singleValueExtendedProperties": [{"id": PROP, "value": key}]})
}

fn by_key(key: &str) -> String {
    let f = format!("singleValueExtendedProperties/Any(ep: ep/id eq '{PROP}' and ep/value eq '{key}')");
    format!("$filter={}&$select=id,isDraft", form_urlencoded::byte_serialize(f.as_bytes()).collect::<String>())
}

fn inbox_subjects(t: &TestEmu, user: &str, subject: &str) -> usize {
    t.emu.snapshot(user, Kind::Message, "inbox", false).unwrap().iter().filter(|m| m["subject"] == subject).count()
}

#[tokio::test]
async fn a_draft_sent_by_id_is_delivered_once_and_cannot_be_sent_again() {
    let t = spawn().await;
    let bob = token_with(&t, "bob@northwind.test", WRITER).await;
    let drafts_id = get(&t, &bob, "/me/mailFolders/drafts").await.body["id"].clone();
    let sent_id = get(&t, &bob, "/me/mailFolders/sentitems").await.body["id"].clone();

    let r = post(&t, &bob, "/me/messages", Some(&draft("Quarterly numbers", "alice@northwind.test", "k-1"))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["isDraft"], true);
    assert_eq!(r.body["parentFolderId"], drafts_id);
    assert_eq!(r.body["body"]["contentType"], "html");
    assert_eq!(r.body["bodyPreview"], "Hello there");
    assert!(r.body.get("singleValueExtendedProperties").is_none(), "returned only on $expand");
    assert!(r.body["internetMessageId"].as_str().unwrap().starts_with('<'));
    let id = r.body["id"].as_str().unwrap().to_string();

    let expand = format!("$expand=singleValueExtendedProperties($filter=id eq '{PROP}')");
    let g = get(&t, &bob, &format!("/me/messages/{id}?{expand}")).await;
    assert_eq!(g.body["singleValueExtendedProperties"][0]["value"], "k-1", "{}", g.text);
    let found = get(&t, &bob, &format!("/me/messages?{}", by_key("k-1"))).await;
    assert_eq!(found.status, 200, "{}", found.text);
    assert_eq!(found.body["value"].as_array().unwrap().len(), 1);
    assert_eq!(found.body["value"][0]["id"], id.as_str());
    assert_eq!(found.body["value"][0]["isDraft"], true);
    assert!(found.body["value"][0].get("subject").is_none(), "$select honoured");
    assert_eq!(get(&t, &bob, &format!("/me/messages?{}", by_key("other"))).await.body["value"].as_array().unwrap().len(), 0);

    let before = inbox_subjects(&t, "alice@northwind.test", "Quarterly numbers");
    let r = post(&t, &bob, &format!("/me/messages/{id}/send"), None).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert!(r.text.is_empty());
    let sent = get(&t, &bob, &format!("/me/messages/{id}")).await;
    assert_eq!(sent.status, 200, "the immutable id survives the move to Sent Items: {}", sent.text);
    assert_eq!(sent.body["isDraft"], false);
    assert_eq!(sent.body["parentFolderId"], sent_id);
    assert!(sent.body["sentDateTime"].is_string());
    assert_eq!(sent.body["from"]["emailAddress"]["address"], "bob@northwind.test");
    assert_eq!(inbox_subjects(&t, "alice@northwind.test", "Quarterly numbers"), before + 1);
    let delivered = t.emu.snapshot("alice@northwind.test", Kind::Message, "inbox", false).unwrap();
    let copy = delivered.iter().find(|m| m["subject"] == "Quarterly numbers").unwrap();
    assert_eq!(copy["isRead"], false);
    assert_eq!(copy["internetMessageId"], sent.body["internetMessageId"]);

    let again = post(&t, &bob, &format!("/me/messages/{id}/microsoft.graph.send"), None).await;
    assert_eq!(again.status, 404, "{}", again.text);
    assert_graph_error_shape(&again.text, "ErrorItemNotFound");
    assert_eq!(inbox_subjects(&t, "alice@northwind.test", "Quarterly numbers"), before + 1, "delivered once");
    let after = get(&t, &bob, &format!("/me/messages?{}", by_key("k-1"))).await;
    assert_eq!(after.body["value"][0]["isDraft"], false, "the key finds the sent message");
    let c = t.emu.counters();
    assert_eq!((c.sent, c.delivered), (1, 1));
    assert_eq!(c.performed_matching("POST /me/messages/{id}/send", Some(202)), 1);
    assert_eq!(c.performed_matching("POST /me/messages/{id}/send", Some(404)), 1);
    assert_eq!(c.created.get("message"), Some(&1));
    t.emu.shutdown().await;
}

#[tokio::test]
async fn reply_reply_all_and_forward_make_drafts_outlook_style() {
    let t = spawn().await;
    let alice = token_with(&t, "alice@northwind.test", WRITER).await;
    let bob = token_with(&t, "bob@northwind.test", WRITER).await;
    let msg = json!({"message": {"subject": "Offsite", "body": {"contentType": "text", "content": "Who comes?"},
        "toRecipients": to("bob@northwind.test"), "ccRecipients": to("carol@northwind.test")}});
    assert_eq!(graph_post(&t, &alice, "/me/sendMail", &msg).await.status, 202);
    let inbox = t.emu.snapshot("bob@northwind.test", Kind::Message, "inbox", true).unwrap();
    let original = inbox.iter().find(|m| m["subject"] == "Offsite").unwrap().clone();
    let oid = original["id"].as_str().unwrap();

    let reply = post(&t, &bob, &format!("/me/messages/{oid}/createReply"), None).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.body["subject"], "RE: Offsite");
    assert_eq!(reply.body["isDraft"], true);
    assert_eq!(reply.body["toRecipients"][0]["emailAddress"]["address"], "alice@northwind.test");
    assert_eq!(reply.body["ccRecipients"].as_array().unwrap().len(), 0);
    assert_eq!(reply.body["conversationId"], original["conversationId"]);

    let all = post(&t, &bob, &format!("/me/messages/{oid}/createReplyAll"), Some(&json!({"comment": "Count me in"}))).await;
    assert_eq!(all.status, 201, "{}", all.text);
    let addrs =
        |v: &Value| v.as_array().unwrap().iter().map(|r| r["emailAddress"]["address"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(addrs(&all.body["toRecipients"]), ["alice@northwind.test"], "bob is not replying to himself");
    assert_eq!(addrs(&all.body["ccRecipients"]), ["carol@northwind.test"]);
    assert!(all.body["body"]["content"].as_str().unwrap().contains("Count me in"));

    let fw_body = json!({"comment": "FYI", "toRecipients": to("erin@fabrikam.test"),
        "message": {"singleValueExtendedProperties": [{"id": PROP, "value": "fw-1"}]}});
    let fw = post(&t, &bob, &format!("/me/messages/{oid}/createForward"), Some(&fw_body)).await;
    assert_eq!(fw.status, 201, "{}", fw.text);
    assert_eq!(fw.body["subject"], "FW: Offsite");
    assert_eq!(addrs(&fw.body["toRecipients"]), ["erin@fabrikam.test"]);
    assert_eq!(get(&t, &bob, &format!("/me/messages?{}", by_key("fw-1"))).await.body["value"].as_array().unwrap().len(), 1);

    let before = inbox_subjects(&t, "alice@northwind.test", "RE: Offsite");
    let rid = reply.body["id"].as_str().unwrap();
    assert_eq!(post(&t, &bob, &format!("/me/messages/{rid}/send"), None).await.status, 202);
    assert_eq!(inbox_subjects(&t, "alice@northwind.test", "RE: Offsite"), before + 1);
    let fid = fw.body["id"].as_str().unwrap();
    assert_eq!(post(&t, &bob, &format!("/me/messages/{fid}/send"), None).await.status, 202);
    assert_eq!(inbox_subjects(&t, "erin@fabrikam.test", "FW: Offsite"), 1, "hosted recipients in another tenant get it too");
    let missing = post(&t, &bob, "/me/messages/AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0nope/createReply", None).await;
    assert_eq!(missing.status, 404);
    t.emu.shutdown().await;
}

#[tokio::test]
async fn sending_needs_mail_send_and_send_on_behalf_rights() {
    let t = spawn().await;
    // Mail.ReadWrite without Mail.Send: the draft is made, the send refused.
    let no_send = token_with(&t, "bob@northwind.test", "openid offline_access User.Read Mail.ReadWrite").await;
    let d = post(&t, &no_send, "/me/messages", Some(&draft("Nope", "alice@northwind.test", "p-1"))).await;
    assert_eq!(d.status, 201, "{}", d.text);
    let r = post(&t, &no_send, &format!("/me/messages/{}/send", d.body["id"].as_str().unwrap()), None).await;
    assert_eq!(r.status, 403);
    assert_graph_error_shape(&r.text, "ErrorAccessDenied");
    // Mail.Read alone cannot create drafts.
    let reader = token_with(&t, "admin@northwind.test", "openid offline_access User.Read Mail.Read").await;
    assert_eq!(post(&t, &reader, "/me/messages", Some(&draft("x", "alice@northwind.test", "p-2"))).await.status, 403);
    // From Carol's mailbox without Send on Behalf there → ErrorSendAsDenied.
    let bob = token_with(&t, "bob@northwind.test", WRITER).await;
    let mut as_carol = draft("As Carol", "alice@northwind.test", "p-3");
    as_carol["from"] = json!({"emailAddress": {"address": "carol@northwind.test"}});
    let d = post(&t, &bob, "/me/messages", Some(&as_carol)).await;
    let r = post(&t, &bob, &format!("/me/messages/{}/send", d.body["id"].as_str().unwrap()), None).await;
    assert_eq!(r.status, 403);
    assert_graph_error_shape(&r.text, "ErrorSendAsDenied");
    assert_eq!(inbox_subjects(&t, "alice@northwind.test", "As Carol"), 0);

    // The service account holds Full Access and Send on Behalf on Alice's mailbox.
    let shared = "openid offline_access User.Read Mail.ReadWrite.Shared Mail.Send.Shared";
    let service = token_with(&t, "service@northwind.test", shared).await;
    let d = post(&t, &service, "/users/alice@northwind.test/messages", Some(&draft("On behalf", "bob@northwind.test", "p-4"))).await;
    assert_eq!(d.status, 201, "{}", d.text);
    let id = d.body["id"].as_str().unwrap();
    let r = post(&t, &service, &format!("/users/alice@northwind.test/messages/{id}/send"), None).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let sent = get(&t, &service, &format!("/users/alice@northwind.test/messages/{id}")).await;
    assert_eq!(sent.body["from"]["emailAddress"]["address"], "alice@northwind.test");
    assert_eq!(sent.body["sender"]["emailAddress"]["address"], "service@northwind.test");
    assert_eq!(inbox_subjects(&t, "bob@northwind.test", "On behalf"), 1);
    // Carol has no rights on Alice's mailbox at all.
    let carol = token_with(&t, "carol@northwind.test", shared).await;
    let r = post(&t, &carol, "/users/alice@northwind.test/messages", Some(&draft("x", "bob@northwind.test", "p-5"))).await;
    assert_eq!(r.status, 403);

    // Application permissions: Mail.ReadWrite makes drafts, only Mail.Send sends them.
    t.emu.grant_admin_consent(NW, DEMO_CLIENT_ID, &[], &["Mail.ReadWrite"]).unwrap();
    let app = app_token(&t, NW).await.1["access_token"].as_str().unwrap().to_string();
    let d = post(&t, &app, "/users/carol@northwind.test/messages", Some(&draft("App mail", "bob@northwind.test", "p-6"))).await;
    assert_eq!(d.status, 201, "{}", d.text);
    let send = format!("/users/carol@northwind.test/messages/{}/send", d.body["id"].as_str().unwrap());
    assert_eq!(post(&t, &app, &send, None).await.status, 403);
    t.emu.grant_admin_consent(NW, DEMO_CLIENT_ID, &[], &["Mail.ReadWrite", "Mail.Send"]).unwrap();
    let app = app_token(&t, NW).await.1["access_token"].as_str().unwrap().to_string();
    assert_eq!(post(&t, &app, &send, None).await.status, 202);
    assert_eq!(inbox_subjects(&t, "bob@northwind.test", "App mail"), 1);
    t.emu.shutdown().await;
}

#[tokio::test]
async fn full_access_without_send_on_behalf_cannot_send() {
    let t = spawn_with(|c| {
        for u in &mut c.fixture.tenants[0].users {
            u.send_on_behalf.clear();
        }
    })
    .await;
    let service = token_with(&t, "service@northwind.test", "openid offline_access User.Read Mail.ReadWrite.Shared Mail.Send.Shared").await;
    let d = post(&t, &service, "/users/alice@northwind.test/messages", Some(&draft("Held back", "bob@northwind.test", "q-1"))).await;
    assert_eq!(d.status, 201, "Full Access is enough to make the draft: {}", d.text);
    let r = post(&t, &service, &format!("/users/alice@northwind.test/messages/{}/send", d.body["id"].as_str().unwrap()), None).await;
    assert_eq!(r.status, 403);
    assert_graph_error_shape(&r.text, "ErrorSendAsDenied");
    let r = graph_post(
        &t,
        &service,
        "/users/alice@northwind.test/sendMail",
        &json!({"message": draft("Held back", "bob@northwind.test", "q-2")}),
    )
    .await;
    assert_eq!(r.status, 403, "sendMail shares the rule");
    assert_eq!(inbox_subjects(&t, "bob@northwind.test", "Held back"), 0);
    t.emu.shutdown().await;
}

#[tokio::test]
async fn a_write_failed_after_performing_was_done_once() {
    let t = spawn().await;
    let bob = token_with(&t, "bob@northwind.test", WRITER).await;
    let d = post(&t, &bob, "/me/messages", Some(&draft("Lost answer", "alice@northwind.test", "f-1"))).await;
    let id = d.body["id"].as_str().unwrap().to_string();
    let lost = |route: &str| FaultRule {
        route: Some(route.into()),
        method: Some("POST".into()),
        status: Some(504),
        after_performing: true,
        count: 1,
        ..FaultRule::default()
    };
    t.emu.inject_fault(lost("/send"));
    let r = post(&t, &bob, &format!("/me/messages/{id}/send"), None).await;
    assert_eq!(r.status, 504, "{}", r.text);
    assert_graph_error_shape(&r.text, "gatewayTimeout");
    assert_eq!(inbox_subjects(&t, "alice@northwind.test", "Lost answer"), 1, "performed before the fault answered");
    // The client checks the mailbox: the key finds the message, no longer a draft.
    let found = get(&t, &bob, &format!("/me/messages?{}", by_key("f-1"))).await;
    assert_eq!(found.body["value"][0]["isDraft"], false);
    let c = t.emu.counters();
    assert_eq!(c.performed_matching("POST /me/messages/{id}/send", Some(202)), 1);
    assert_eq!(c.requests_matching("POST /me/messages/{id}/send", Some(504)), 1);
    assert_eq!(c.sent, 1);

    // An event create whose answer is lost, retried with its transactionId: one event.
    t.emu.inject_fault(lost("/events"));
    let ev = json!({"subject": "Retry-safe", "transactionId": "tx-lost-1",
        "start": {"dateTime": "2026-12-10T10:00:00", "timeZone": "UTC"}, "end": {"dateTime": "2026-12-10T11:00:00", "timeZone": "UTC"}});
    assert_eq!(post(&t, &bob, "/me/events", Some(&ev)).await.status, 504);
    let r = post(&t, &bob, "/me/events", Some(&ev)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(t.emu.counters().created.get("event"), Some(&1));
    assert_eq!(t.emu.counters().performed_matching("POST /me/events", Some(201)), 2);
    t.emu.shutdown().await;
}

fn meeting(tx: &str) -> Value {
    json!({"subject": "Kick-off", "transactionId": tx, "body": {"contentType": "text", "content": "Agenda"},
        "start": {"dateTime": "2026-12-14T09:00:00", "timeZone": "UTC"}, "end": {"dateTime": "2026-12-14T10:00:00", "timeZone": "UTC"},
        "location": {"displayName": "Room 1"},
        "attendees": [{"type": "required", "emailAddress": {"address": "bob@northwind.test", "name": "Bob"}},
                      {"type": "optional", "emailAddress": {"address": "someone@elsewhere.test"}}]})
}

fn calendar_copy(t: &TestEmu, user: &str, ical: &Value) -> Option<Value> {
    t.emu.snapshot(user, Kind::Event, "calendar", true).unwrap().into_iter().find(|e| e["iCalUId"] == *ical)
}

#[tokio::test]
async fn events_dedup_by_transaction_id_invite_attendees_and_cancel_by_the_organizer_only() {
    let t = spawn().await;
    let alice = token_with(&t, "alice@northwind.test", WRITER).await;
    let bob = token_with(&t, "bob@northwind.test", WRITER).await;
    let first = post(&t, &alice, "/me/events", Some(&meeting("tx-1"))).await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(first.body["transactionId"], "tx-1");
    assert_eq!(first.body["isOrganizer"], true);
    let again = post(&t, &alice, "/me/calendar/events", Some(&meeting("tx-1"))).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.body["id"], first.body["id"], "the same transactionId returns the first event");
    let other = post(&t, &alice, "/me/events", Some(&meeting("tx-2"))).await;
    assert_ne!(other.body["id"], first.body["id"]);
    let c = t.emu.counters();
    assert_eq!((c.created.get("event"), c.invitations), (Some(&2), 2));

    let ical = first.body["iCalUId"].clone();
    let copy = calendar_copy(&t, "bob@northwind.test", &ical).expect("bob got the invitation");
    assert_eq!(copy["isOrganizer"], false);
    assert_eq!(copy["responseStatus"]["response"], "notResponded");
    assert_eq!(copy["organizer"]["emailAddress"]["address"], "alice@northwind.test");
    assert!(copy.get("transactionId").is_none());

    let bob_cancel = post(&t, &bob, &format!("/me/events/{}/cancel", copy["id"].as_str().unwrap()), Some(&json!({"comment": "no"}))).await;
    assert_eq!(bob_cancel.status, 400, "{}", bob_cancel.text);
    assert_eq!(bob_cancel.body["error"]["message"], "Your request can't be completed. You need to be an organizer to cancel a meeting.");

    let eid = first.body["id"].as_str().unwrap();
    let r = post(&t, &alice, &format!("/me/events/{eid}/cancel"), Some(&json!({"comment": "Postponed"}))).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert!(r.text.is_empty());
    assert_eq!(get(&t, &alice, &format!("/me/events/{eid}")).await.status, 404, "the organizer's event is gone");
    let cancelled = calendar_copy(&t, "bob@northwind.test", &ical).unwrap();
    assert_eq!(cancelled["isCancelled"], true);
    assert_eq!(cancelled["subject"], "Canceled: Kick-off");
    assert_eq!(post(&t, &alice, &format!("/me/events/{eid}/cancel"), None).await.status, 404);
    // Consent accumulates per user, so the read-only client is Carol's.
    let reader = token_with(&t, "carol@northwind.test", "openid offline_access User.Read Calendars.Read").await;
    let own = &t.emu.snapshot("carol@northwind.test", Kind::Event, "calendar", true).unwrap()[0]["id"];
    let r = post(&t, &reader, &format!("/me/events/{}/cancel", own.as_str().unwrap()), None).await;
    assert_eq!(r.status, 403, "Calendars.ReadWrite needed");
    t.emu.shutdown().await;
}

#[tokio::test]
async fn contacts_carry_extended_properties_and_patch_merges() {
    let t = spawn().await;
    let at = token_with(&t, "alice@northwind.test", WRITER).await;
    let body = json!({"givenName": "Pat", "surname": "Lee", "emailAddresses": [{"address": "pat@lee.test", "name": "Pat Lee"}],
        "singleValueExtendedProperties": [{"id": PROP, "value": "c-1"}]});
    let r = post(&t, &at, "/me/contacts", Some(&body)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["displayName"], "Pat Lee");
    let id = r.body["id"].as_str().unwrap().to_string();
    let found = get(&t, &at, &format!("/me/contacts?{}", by_key("c-1"))).await;
    assert_eq!(found.status, 200, "{}", found.text);
    assert_eq!(found.body["value"].as_array().unwrap().len(), 1);
    assert_eq!(found.body["value"][0]["id"], id.as_str());

    let p = patch(&t, &at, &format!("/me/contacts/{id}"), &json!({"surname": "Lee-Smith", "jobTitle": "CTO"})).await;
    assert_eq!(p.status, 200, "{}", p.text);
    assert_eq!(p.body["displayName"], "Pat Lee-Smith");
    assert_eq!(p.body["jobTitle"], "CTO");
    assert_eq!(p.body["emailAddresses"][0]["address"], "pat@lee.test", "untouched properties stay");
    let g = get(&t, &at, &format!("/me/contacts/{id}?$expand=singleValueExtendedProperties")).await;
    assert_eq!(g.body["singleValueExtendedProperties"][0]["value"], "c-1");
    let reader = token_with(&t, "carol@northwind.test", "openid offline_access User.Read Contacts.Read").await;
    let own = &t.emu.snapshot("carol@northwind.test", Kind::Contact, "contacts", true).unwrap()[0]["id"];
    assert_eq!(patch(&t, &reader, &format!("/me/contacts/{}", own.as_str().unwrap()), &json!({"jobTitle": "x"})).await.status, 403);
    assert_eq!(patch(&t, &at, "/me/contacts/AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0nope", &json!({})).await.status, 404);
    t.emu.shutdown().await;
}

#[tokio::test]
async fn tasks_keep_linked_resources_and_complete_and_reopen() {
    let t = spawn().await;
    let at = token_with(&t, "alice@northwind.test", WRITER).await;
    let lists = get(&t, &at, "/me/todo/lists").await;
    let list = lists.body["value"].as_array().unwrap().iter().find(|l| l["wellknownListName"] == "defaultList").unwrap()["id"].clone();
    let list = list.as_str().unwrap();
    let since =
        (time::OffsetDateTime::now_utc() - time::Duration::minutes(5)).format(&time::format_description::well_known::Rfc3339).unwrap();
    let body = json!({"title": "Call Pat back", "dueDateTime": {"dateTime": "2026-12-20T00:00:00", "timeZone": "UTC"},
        "linkedResources": [{"applicationName": "Intelligence360", "externalId": "act-42", "displayName": "Activity 42", "webUrl": "https://crm.test/a/42"}]});
    let r = post(&t, &at, &format!("/me/todo/lists/{list}/tasks"), Some(&body)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["status"], "notStarted");
    let tid = r.body["id"].as_str().unwrap().to_string();

    let q = format!("$filter=createdDateTime ge {since}&$expand=linkedResources");
    let listed = get(&t, &at, &format!("/me/todo/lists/{list}/tasks?{}", q.replace(' ', "%20").replace('+', "%2B"))).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let items = listed.body["value"].as_array().unwrap();
    assert_eq!(items.len(), 1, "only the new task is that recent: {items:?}");
    assert_eq!(items[0]["linkedResources"][0]["externalId"], "act-42");
    assert!(items[0]["linkedResources"][0]["id"].is_string());
    let plain = get(&t, &at, &format!("/me/todo/lists/{list}/tasks/{tid}")).await;
    assert!(plain.body.get("linkedResources").is_none());

    let done = patch(&t, &at, &format!("/me/todo/lists/{list}/tasks/{tid}"), &json!({"status": "completed"})).await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(done.body["status"], "completed");
    assert!(done.body["completedDateTime"]["dateTime"].is_string());
    let reopened = patch(&t, &at, &format!("/me/todo/lists/{list}/tasks/{tid}"), &json!({"status": "notStarted"})).await;
    assert_eq!(reopened.body["status"], "notStarted");
    assert!(reopened.body.get("completedDateTime").is_none(), "{}", reopened.text);
    assert_eq!(reopened.body["title"], "Call Pat back");

    let reader = token_with(&t, "carol@northwind.test", "openid offline_access User.Read Tasks.Read").await;
    let own = &t.emu.snapshot("carol@northwind.test", Kind::Task, "tasks", true).unwrap()[0]["id"];
    let own_path = format!("/me/todo/lists/tasks/tasks/{}", own.as_str().unwrap());
    assert_eq!(patch(&t, &reader, &own_path, &json!({"status": "completed"})).await.status, 403);
    t.emu.grant_admin_consent(NW, DEMO_CLIENT_ID, &[], &["Tasks.ReadWrite.All"]).unwrap();
    let app = app_token(&t, NW).await.1["access_token"].as_str().unwrap().to_string();
    let path = format!("/users/alice@northwind.test/todo/lists/{list}/tasks/{tid}");
    assert_eq!(patch(&t, &app, &path, &json!({"status": "completed"})).await.status, 200);
    assert_eq!(patch(&t, &at, "/me/todo/lists/tasks/tasks/AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0nope", &json!({})).await.status, 404);
    t.emu.shutdown().await;
}
