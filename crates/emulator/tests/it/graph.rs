//! Graph: users, delta rounds (adds, updates, deletes, moves, 410 recovery), paging, access checks,
//! sendMail, creating items, `$batch`.

use crate::helpers::*;
use m365_emulator::{DEMO_CLIENT_ID, Kind};
use serde_json::{Value, json};

const WINDOW: &str = "startDateTime=2026-06-01T00:00:00Z&endDateTime=2027-06-01T00:00:00Z";

fn ids(items: &[Value]) -> Vec<String> {
    items.iter().filter(|i| i.get("@removed").is_none()).map(|i| i["id"].as_str().unwrap_or("").to_string()).collect()
}

fn removed(items: &[Value]) -> Vec<String> {
    items.iter().filter(|i| i.get("@removed").is_some()).map(|i| i["id"].as_str().unwrap_or("").to_string()).collect()
}

#[tokio::test]
async fn me_and_users_with_paging_select_top_and_filter() {
    let t = spawn().await;
    let at = user_token(&t, "alice@northwind.test").await;
    let me = graph(&t, &at, "/me", &[]).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["id"], "6e1f0a00-0000-4000-8000-000000000002");
    assert_eq!(me.body["userPrincipalName"], "alice@northwind.test");
    assert_eq!(me.body["mail"], "alice@northwind.test");
    assert!(me.body["@odata.context"].as_str().unwrap().ends_with("/v1.0/$metadata#users/$entity"));
    assert!(me.headers.contains_key("request-id") && me.headers.contains_key("client-request-id"));
    // Delegated /users needs User.ReadBasic.All which alice did not consent to.
    let r = graph(&t, &at, "/users", &[]).await;
    assert_eq!(r.status, 403);
    assert_graph_error_shape(&r.text, "Authorization_RequestDenied");

    t.emu.grant_admin_consent(NW, DEMO_CLIENT_ID, &[], &["User.Read.All"]).unwrap();
    let (_, tok) = app_token(&t, NW).await;
    let app = tok["access_token"].as_str().unwrap().to_string();
    let r = graph(&t, &app, "/me", &[]).await;
    assert_eq!(r.status, 400, "/me needs a delegated token");
    let first = graph(&t, &app, "/users?$select=id,displayName,mail,userPrincipalName&$top=3", &[]).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.body["value"].as_array().unwrap().len(), 3);
    let keys: Vec<&str> = first.body["value"][0].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 4, "$select honoured: {keys:?}");
    let next = first.body["@odata.nextLink"].as_str().unwrap();
    assert!(next.contains("$skiptoken="));
    let mut all = first.body["value"].as_array().unwrap().clone();
    let mut url = next.to_string();
    loop {
        let p = graph(&t, &app, &url, &[]).await;
        all.extend(p.body["value"].as_array().unwrap().iter().cloned());
        match p.body["@odata.nextLink"].as_str() {
            Some(n) => url = n.to_string(),
            None => break,
        }
    }
    assert_eq!(all.len(), 7, "all Northwind users, no Fabrikam ones");
    let f = graph(&t, &app, "/users?$filter=startswith(mail,'bo')", &[]).await;
    assert_eq!(f.body["value"].as_array().unwrap().len(), 1);
    assert_eq!(f.body["value"][0]["mail"], "bob@northwind.test");
    let f = graph(&t, &app, "/users?$filter=startswith(userPrincipalName,'a')", &[]).await;
    assert_eq!(f.body["value"].as_array().unwrap().len(), 2, "admin and alice");
    // Directory search needs ConsistencyLevel: eventual.
    let r = graph(&t, &app, "/users?$search=%22displayName:carol%22", &[]).await;
    assert_eq!(r.status, 400);
    let r = t
        .http
        .get(format!("{}/users?$search=%22displayName:chen%22%20OR%20%22mail:bob%22", t.emu.graph_base()))
        .bearer_auth(&app)
        .header("ConsistencyLevel", "eventual")
        .send()
        .await
        .unwrap();
    let found: Value = r.json().await.unwrap();
    let names: Vec<&str> = found["value"].as_array().unwrap().iter().map(|u| u["displayName"].as_str().unwrap()).collect();
    assert_eq!(names, ["Bob Burke", "Carol Chen"]);
    let bad = graph(&t, &app, "/users?$top=1000", &[]).await;
    assert_eq!(bad.status, 400);
    assert!(bad.text.contains("Must be between 1 and 999 inclusive"));
    let u = graph(&t, &app, "/users/carol@northwind.test", &[]).await;
    assert_eq!(u.body["displayName"], "Carol Chen");
    let missing = graph(&t, &app, "/users/erin@fabrikam.test", &[]).await;
    assert_eq!(missing.status, 404, "other tenants' users are invisible");
    t.emu.shutdown().await;
}

#[tokio::test]
async fn message_delta_round_trips_adds_updates_deletes_and_moves() {
    let t = spawn().await;
    let at = user_token(&t, "alice@northwind.test").await;
    let start = "/me/mailFolders/inbox/messages/delta?$select=subject,isRead,receivedDateTime";
    let (items, delta, pages) = delta_round(&t, &at, start, &["odata.maxpagesize=7"]).await;
    assert!(pages > 1, "paged via nextLink");
    assert!(items.len() >= 20, "inbox holds about half of 60 messages: {}", items.len());
    let expected = t.emu.list_items("alice@northwind.test", Kind::Message, "inbox", 1000).unwrap();
    assert_eq!(items.len(), expected.len());
    let first = &items[0];
    assert_eq!(first["@odata.type"], "#microsoft.graph.message");
    assert!(first.get("subject").is_some() && first.get("body").is_none(), "$select carried into later pages too");
    assert!(delta.contains("$deltatoken="));

    // Same seed → same content: a second emulator returns the same ids and subjects.
    let t2 = spawn().await;
    let at2 = user_token(&t2, "alice@northwind.test").await;
    let (items2, _, _) = delta_round(&t2, &at2, start, &["odata.maxpagesize=7"]).await;
    assert_eq!(items, items2);
    t2.emu.shutdown().await;

    // Nothing changed → empty round.
    let (none, delta, _) = delta_round(&t, &at, &delta, &[]).await;
    assert!(none.is_empty(), "{none:?}");

    // Change things through the control API.
    let added = t.emu.add_item("alice@northwind.test", Kind::Message, Some("inbox"), json!({"subject": "Brand new"})).unwrap();
    let upd = &expected[0];
    t.emu.update_item("alice@northwind.test", &upd.id, json!({"isRead": true, "subject": "Edited"})).unwrap();
    let del = &expected[1];
    t.emu.delete_item("alice@northwind.test", &del.id).unwrap();
    let mv = &expected[2];
    let moved = t.emu.move_item("alice@northwind.test", &mv.id, "archive").unwrap();
    assert_ne!(moved.id, mv.id, "regular id changes on move");
    assert_eq!(moved.immutable_id, mv.immutable_id);

    let (changes, _, _) = delta_round(&t, &at, &delta, &[]).await;
    let got = ids(&changes);
    assert!(got.contains(&added.id) && got.contains(&upd.id), "{changes:?}");
    let edited = changes.iter().find(|c| c["id"] == upd.id.as_str()).unwrap();
    assert_eq!(edited["subject"], "Edited");
    let gone = removed(&changes);
    assert!(gone.contains(&del.id) && gone.contains(&mv.id), "deleted and moved-away both @removed: {changes:?}");
    let r = changes.iter().find(|c| c["id"] == del.id.as_str()).unwrap();
    assert_eq!(r, &json!({"@odata.type": "#microsoft.graph.message", "id": del.id, "@removed": {"reason": "deleted"}}));
    assert_eq!(changes.len(), 4);

    // Archive's own delta: full round contains the moved message under its new id.
    let (archive, _, _) = delta_round(&t, &at, "/me/mailFolders/archive/messages/delta", &["odata.maxpagesize=100"]).await;
    assert!(ids(&archive).contains(&moved.id));
    t.emu.shutdown().await;
}

#[tokio::test]
async fn message_delta_honours_received_date_filter_across_pages() {
    let t = spawn().await;
    let at = user_token(&t, "alice@northwind.test").await;
    let (all, _, _) = delta_round(&t, &at, "/me/mailFolders/inbox/messages/delta", &["odata.maxpagesize=100"]).await;
    let cut = all[all.len() / 2]["receivedDateTime"].as_str().unwrap().to_string();
    let expected: Vec<String> = all
        .iter()
        .filter(|m| m["receivedDateTime"].as_str().unwrap() >= cut.as_str())
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    assert!(!expected.is_empty() && expected.len() < all.len(), "the cut splits the inbox: {} of {}", expected.len(), all.len());
    let (some, delta, _) = delta_round(
        &t,
        &at,
        &format!("/me/mailFolders/inbox/messages/delta?$filter=receivedDateTime%20ge%20{cut}"),
        &["odata.maxpagesize=3"],
    )
    .await;
    assert_eq!(ids(&some), expected);
    // The filter travels in the token: an old message changed later stays out of the view.
    let oldest = all.last().unwrap()["id"].as_str().unwrap().to_string();
    t.emu.update_item("alice@northwind.test", &oldest, json!({"isRead": false})).unwrap();
    let (changes, _, _) = delta_round(&t, &at, &delta, &[]).await;
    assert!(changes.is_empty(), "{changes:?}");
    let bad = graph(&t, &at, "/me/mailFolders/inbox/messages/delta?$filter=subject%20eq%20'x'", &[]).await;
    assert_eq!(bad.status, 400);
    t.emu.shutdown().await;
}

#[tokio::test]
async fn immutable_ids_survive_moves_and_evicted_tokens_answer_410() {
    let t = spawn().await;
    let at = user_token(&t, "bob@northwind.test").await;
    let imm = ["IdType=\"ImmutableId\"", "odata.maxpagesize=50"];
    let r = graph(&t, &at, "/me/mailFolders/inbox/messages/delta", &imm).await;
    let applied = r.headers.get("preference-applied").unwrap().to_str().unwrap().to_string();
    assert!(applied.contains("IdType=\"ImmutableId\"") && applied.contains("odata.maxpagesize=50"), "{applied}");
    let (items, delta, _) = delta_round(&t, &at, "/me/mailFolders/inbox/messages/delta", &imm).await;
    let refs = t.emu.list_items("bob@northwind.test", Kind::Message, "inbox", 1).unwrap();
    assert!(ids(&items).contains(&refs[0].immutable_id));
    t.emu.move_item("bob@northwind.test", &refs[0].id, "archive").unwrap();
    let (arch, _, _) = delta_round(&t, &at, "/me/mailFolders/archive/messages/delta", &imm).await;
    assert!(ids(&arch).contains(&refs[0].immutable_id), "same immutable id in the new folder");

    // Evicted sync state → 410 SyncStateNotFound; a fresh round recovers.
    t.emu.evict_sync_state("bob@northwind.test").unwrap();
    let gone = graph(&t, &at, &delta, &imm).await;
    assert_eq!(gone.status, 410);
    assert_graph_error_shape(&gone.text, "SyncStateNotFound");
    assert!(gone.body["error"]["message"].as_str().unwrap().starts_with("The sync state generation is not found; generation="));
    let (again, _, _) = delta_round(&t, &at, "/me/mailFolders/inbox/messages/delta", &imm).await;
    assert_eq!(again.len(), items.len() - 1);
    // A token for another folder is rejected too.
    let r = graph(&t, &at, &delta.replace("/inbox/", "/archive/"), &[]).await;
    assert_eq!(r.status, 410);
    t.emu.shutdown().await;
}

#[tokio::test]
async fn calendar_view_delta_needs_a_window_and_expands_series() {
    let t = spawn().await;
    let at = user_token(&t, "alice@northwind.test").await;
    let r = graph(&t, &at, "/me/calendarView/delta", &[]).await;
    assert_eq!(r.status, 400);
    assert_graph_error_shape(&r.text, "ErrorInvalidParameter");
    let url = format!("/me/calendarView/delta?{WINDOW}");
    let (items, delta, _) = delta_round(&t, &at, &url, &["odata.maxpagesize=5"]).await;
    let types: Vec<&str> = items.iter().map(|e| e["type"].as_str().unwrap_or("")).collect();
    assert!(types.contains(&"singleInstance") && types.contains(&"occurrence") && types.contains(&"exception"), "{types:?}");
    assert!(!types.contains(&"seriesMaster"));
    let occ = items.iter().find(|e| e["type"] == "occurrence").unwrap();
    assert!(occ["seriesMasterId"].is_string());
    assert_eq!(occ["start"]["timeZone"], "UTC");
    assert!(occ["start"]["dateTime"].as_str().unwrap().ends_with(".0000000"));
    // The window travels in the token: the deltaLink has no startDateTime.
    assert!(!delta.contains("startDateTime"));

    // Create an event through Graph; it shows up in the next round; deleting it reports @removed.
    let created = graph_post(&t, &at, "/me/events", &json!({"subject": "Planning", "start": {"dateTime": "2026-12-01T10:00:00", "timeZone": "UTC"}, "end": {"dateTime": "2026-12-01T11:00:00", "timeZone": "UTC"}})).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.body["id"].as_str().unwrap().to_string();
    let (changes, delta, _) = delta_round(&t, &at, &delta, &[]).await;
    assert_eq!(ids(&changes), vec![id.clone()]);
    t.emu.delete_item("alice@northwind.test", &id).unwrap();
    let (changes, _, _) = delta_round(&t, &at, &delta, &[]).await;
    assert_eq!(removed(&changes), vec![id]);
    t.emu.shutdown().await;
}

#[tokio::test]
async fn contact_folders_list_the_folders_inside_the_default_one_which_answers_to_its_well_known_name() {
    let t = spawn().await;
    let at = user_token(&t, "carol@northwind.test").await;
    let default = graph(&t, &at, "/me/contactFolders/contacts", &[]).await;
    assert_eq!(default.status, 200, "{}", default.text);
    assert_eq!(default.body["displayName"], "Contacts");
    let fid = default.body["id"].as_str().unwrap();
    assert_eq!(graph(&t, &at, &format!("/me/contactFolders/{fid}"), &[]).await.body, default.body, "by id as by name");
    assert_eq!(graph(&t, &at, "/me/contactFolders('Contacts')", &[]).await.body["id"], fid);
    let listed = graph(&t, &at, "/me/contactFolders", &[]).await;
    let listed = listed.body["value"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 1, "the default folder is not in the list: {listed:?}");
    assert_eq!((listed[0]["displayName"].as_str(), listed[0]["parentFolderId"].as_str()), (Some("Suppliers"), Some(fid)));
    let children = graph(&t, &at, "/me/contactFolders/contacts/childFolders", &[]).await;
    assert_eq!(children.body["value"].as_array().unwrap(), &listed);
    let sid = listed[0]["id"].as_str().unwrap();
    assert_eq!(graph(&t, &at, &format!("/me/contactFolders/{sid}/childFolders"), &[]).await.body["value"], json!([]));
    assert_eq!(graph(&t, &at, "/me/contactFolders/nowhere", &[]).await.status, 404);

    // App-only through /users/{id}, and the permission it needs.
    t.emu.grant_admin_consent(NW, DEMO_CLIENT_ID, &[], &["Contacts.Read"]).unwrap();
    let (_, app) = app_token(&t, NW).await;
    let app = app["access_token"].as_str().unwrap().to_string();
    let theirs = graph(&t, &app, "/users/carol@northwind.test/contactFolders/contacts", &[]).await;
    assert_eq!((theirs.status, theirs.body["id"].as_str()), (200, Some(fid)));
    let alice = user_tokens(&t, "alice@northwind.test", "openid User.Read Mail.Read").await["access_token"].as_str().unwrap().to_string();
    assert_eq!(graph(&t, &alice, "/me/contactFolders/contacts", &[]).await.status, 403, "needs a contacts permission");
    t.emu.shutdown().await;
}

#[tokio::test]
async fn contacts_and_todo_delta_and_creation() {
    let t = spawn().await;
    let at = user_token(&t, "carol@northwind.test").await;
    let fid = graph(&t, &at, "/me/contactFolders/contacts", &[]).await.body["id"].as_str().unwrap().to_string();
    let (contacts, delta, _) = delta_round(&t, &at, &format!("/me/contactFolders/{fid}/contacts/delta"), &["odata.maxpagesize=10"]).await;
    assert_eq!(contacts.len(), 24, "30 contacts, every fifth a supplier");
    assert!(contacts[0]["emailAddresses"][0]["address"].is_string());
    let made = graph_post(&t, &at, &format!("/me/contactFolders/{fid}/contacts"), &json!({"givenName": "Pat", "surname": "Lee"})).await;
    assert_eq!(made.status, 201);
    assert_eq!(made.body["displayName"], "Pat Lee");
    let (changes, _, _) = delta_round(&t, &at, &delta, &[]).await;
    assert_eq!(ids(&changes), vec![made.body["id"].as_str().unwrap().to_string()]);

    let lists = graph(&t, &at, "/me/todo/lists", &[]).await;
    let default = lists.body["value"].as_array().unwrap().iter().find(|l| l["wellknownListName"] == "defaultList").unwrap().clone();
    let lid = default["id"].as_str().unwrap();
    let (ldelta, _, _) = delta_round(&t, &at, "/me/todo/lists/delta", &[]).await;
    assert_eq!(ldelta.len(), 3);
    let (tasks, tdelta, _) = delta_round(&t, &at, &format!("/me/todo/lists/{lid}/tasks/delta"), &[]).await;
    assert_eq!(tasks.len(), 15, "20 tasks, every fourth in Projects");
    assert!(tasks.iter().all(|t| t["@odata.type"] == "#microsoft.graph.todoTask" && t["status"].is_string()));
    let made = graph_post(&t, &at, &format!("/me/todo/lists/{lid}/tasks"), &json!({"title": "Follow up"})).await;
    assert_eq!(made.status, 201);
    let (changes, _, _) = delta_round(&t, &at, &tdelta, &[]).await;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["title"], "Follow up");
    let (fdelta, _, _) = delta_round(&t, &at, "/me/mailFolders/delta", &[]).await;
    assert!(fdelta.iter().any(|f| f["displayName"] == "Inbox" && f["totalItemCount"].as_u64().unwrap() > 0));
    t.emu.shutdown().await;
}

#[tokio::test]
async fn access_checks_licence_delegates_and_tokens() {
    let t = spawn().await;
    // No token / garbage / expired → 401 InvalidAuthenticationToken with WWW-Authenticate.
    let r = t.http.get(format!("{}/me", t.emu.graph_base())).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("www-authenticate").unwrap().to_str().unwrap().starts_with("Bearer realm=\"\""));
    assert_graph_error_shape(&r.text().await.unwrap(), "InvalidAuthenticationToken");
    let r = graph(&t, "garbage", "/me", &[]).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"]["message"], "CompactToken parsing failed with error code: 80049217");

    // Unlicensed Dave: profile yes, mailbox 404 MailboxNotEnabledForRESTAPI.
    let dave = user_token(&t, "dave@northwind.test").await;
    assert_eq!(graph(&t, &dave, "/me", &[]).await.status, 200);
    let r = graph(&t, &dave, "/me/mailFolders/inbox/messages/delta", &[]).await;
    assert_eq!(r.status, 404);
    assert_graph_error_shape(&r.text, "MailboxNotEnabledForRESTAPI");

    // Alice cannot open Bob's mailbox (no .Shared scope, no rights).
    let alice = user_token(&t, "alice@northwind.test").await;
    let r = graph(&t, &alice, "/users/bob@northwind.test/mailFolders/inbox/messages/delta", &[]).await;
    assert_eq!(r.status, 403);
    assert_graph_error_shape(&r.text, "ErrorAccessDenied");

    // The service user with .Shared scopes opens Alice's and Bob's mailboxes but not Carol's.
    let shared_scopes = "openid profile offline_access User.Read Mail.Read.Shared Calendars.Read.Shared";
    let svc = user_tokens(&t, "service@northwind.test", shared_scopes).await["access_token"].as_str().unwrap().to_string();
    for (upn, expected) in [("alice@northwind.test", 200), ("bob@northwind.test", 200), ("carol@northwind.test", 403)] {
        let r = graph(&t, &svc, &format!("/users/{upn}/mailFolders/inbox/messages/delta"), &[]).await;
        assert_eq!(r.status, expected, "{upn}: {}", r.text);
    }
    let r = graph(&t, &svc, &format!("/users/alice@northwind.test/calendarView/delta?{WINDOW}"), &[]).await;
    assert_eq!(r.status, 200);
    let r = graph(&t, &svc, "/users/alice@northwind.test/contactFolders", &[]).await;
    assert_eq!(r.status, 403, "no Contacts.Read.Shared granted");

    // Expired access token → 401 "Access token has expired or is not yet valid."
    t.emu.expire_access_tokens();
    let r = graph(&t, &alice, "/me", &[]).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"]["message"], "Access token has expired or is not yet valid.");
    // Unknown segment → 400 BadRequest.
    let alice = user_token(&t, "alice@northwind.test").await;
    let r = graph(&t, &alice, "/me/teleporter", &[]).await;
    assert_eq!(r.status, 400);
    assert_graph_error_shape(&r.text, "BadRequest");
    t.emu.shutdown().await;
}

#[tokio::test]
async fn send_mail_is_accepted_saved_and_delivered() {
    let t = spawn().await;
    let bob = user_token(&t, "bob@northwind.test").await;
    let alice = user_token(&t, "alice@northwind.test").await;
    let (_, alice_delta, _) = delta_round(&t, &alice, "/me/mailFolders/inbox/messages/delta", &["odata.maxpagesize=200"]).await;
    let (_, sent_delta, _) = delta_round(&t, &bob, "/me/mailFolders/sentitems/messages/delta", &["odata.maxpagesize=200"]).await;
    let msg = json!({"message": {"subject": "Lunch?", "body": {"contentType": "text", "content": "At noon"}, "toRecipients": [{"emailAddress": {"address": "alice@northwind.test", "name": "Alice"}}]}, "saveToSentItems": true});
    let r = graph_post(&t, &bob, "/me/sendMail", &msg).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert!(r.text.is_empty(), "202 with an empty body");
    let (inbox, _, _) = delta_round(&t, &alice, &alice_delta, &[]).await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0]["subject"], "Lunch?");
    assert_eq!(inbox[0]["from"]["emailAddress"]["address"], "bob@northwind.test");
    let (sent, _, _) = delta_round(&t, &bob, &sent_delta, &[]).await;
    assert_eq!(sent.len(), 1, "copy in Sent Items");
    // Sending as Carol without rights → 403 ErrorSendAsDenied.
    let mut as_carol = msg.clone();
    as_carol["message"]["from"] = json!({"emailAddress": {"address": "carol@northwind.test"}});
    let r = graph_post(&t, &bob, "/me/sendMail", &as_carol).await;
    assert_eq!(r.status, 403);
    assert_graph_error_shape(&r.text, "ErrorSendAsDenied");
    // No recipients → 400.
    let r = graph_post(&t, &bob, "/me/sendMail", &json!({"message": {"subject": "nobody"}})).await;
    assert_eq!(r.status, 400);
    t.emu.shutdown().await;
}

#[tokio::test]
async fn batch_runs_requests_in_order_with_depends_on_and_424() {
    let t = spawn().await;
    let at = user_token(&t, "alice@northwind.test").await;
    let body = json!({"requests": [
        {"id": "1", "method": "GET", "url": "/me"},
        {"id": "2", "method": "GET", "url": "/me/mailFolders/inbox/messages/delta", "headers": {"Prefer": "odata.maxpagesize=5"}, "dependsOn": ["1"]},
        {"id": "3", "method": "GET", "url": "/users/carol@northwind.test/mailFolders/inbox/messages/delta"},
        {"id": "4", "method": "GET", "url": "/me", "dependsOn": ["3"]},
        {"id": "5", "method": "POST", "url": "/me/todo/lists/tasks/tasks", "headers": {"Content-Type": "application/json"}, "body": {"title": "From a batch"}}
    ]});
    let r = graph_post(&t, &at, "/$batch", &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let responses = r.body["responses"].as_array().unwrap();
    let by = |id: &str| responses.iter().find(|x| x["id"] == id).unwrap().clone();
    assert_eq!(by("1")["status"], 200);
    assert_eq!(by("1")["body"]["userPrincipalName"], "alice@northwind.test");
    assert_eq!(by("2")["status"], 200);
    assert_eq!(by("2")["body"]["value"].as_array().unwrap().len(), 5);
    assert!(by("2")["body"]["@odata.nextLink"].is_string());
    assert_eq!(by("3")["status"], 403);
    assert_eq!(by("3")["body"]["error"]["code"], "ErrorAccessDenied");
    assert_eq!(by("4")["status"], 424, "failed dependency");
    assert_eq!(by("5")["status"], 201);

    let too_many: Vec<Value> = (0..21).map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/me"})).collect();
    let r = graph_post(&t, &at, "/$batch", &json!({"requests": too_many})).await;
    assert_eq!(r.status, 400);
    assert_graph_error_shape(&r.text, "BadRequest");
    let dup = json!({"requests": [{"id": "1", "method": "GET", "url": "/me"}, {"id": "1", "method": "GET", "url": "/me"}]});
    assert_eq!(graph_post(&t, &at, "/$batch", &dup).await.status, 400);
    // Inner requests are throttled individually: an injected 429 shows up inside with Retry-After.
    t.emu.inject_fault(m365_emulator::FaultRule {
        route: Some("calendarView".into()),
        status: Some(429),
        retry_after: Some(2.128),
        count: 1,
        ..Default::default()
    });
    let r = graph_post(
        &t,
        &at,
        "/$batch",
        &json!({"requests": [{"id": "a", "method": "GET", "url": format!("/me/calendarView/delta?{WINDOW}")}]}),
    )
    .await;
    assert_eq!(r.body["responses"][0]["status"], 429);
    assert_eq!(r.body["responses"][0]["headers"]["Retry-After"], "2.128");
    assert_eq!(r.body["responses"][0]["body"]["error"]["innerError"]["code"], "429");
    t.emu.shutdown().await;
}

#[tokio::test]
async fn application_access_policy_limits_app_only_mailbox_access() {
    let t = spawn().await;
    t.emu.grant_admin_consent(NW, DEMO_CLIENT_ID, &[], &["Mail.Read", "Tasks.Read.All"]).unwrap();
    let (_, tok) = app_token(&t, NW).await;
    let app = tok["access_token"].as_str().unwrap().to_string();
    t.emu.set_application_access_policy(NW, DEMO_CLIENT_ID, Some(("RestrictAccess", &["alice@northwind.test"]))).unwrap();
    assert_eq!(graph(&t, &app, "/users/alice@northwind.test/mailFolders/inbox/messages/delta", &[]).await.status, 200);
    let r = graph(&t, &app, "/users/bob@northwind.test/mailFolders/inbox/messages/delta", &[]).await;
    assert_eq!(r.status, 403);
    assert_graph_error_shape(&r.text, "ErrorAccessDenied");
    assert_eq!(r.body["error"]["message"], "Access to OData is disabled.");
    assert_eq!(graph(&t, &app, "/users/bob@northwind.test/todo/lists", &[]).await.status, 200, "policies do not cover To Do (§5)");
    // Over HTTP: DenyAccess for alice only.
    let r = t
        .http
        .post(format!("{}/_emulator/tenants/{NW}/application-access-policy", t.emu.base_url()))
        .json(&json!({"client_id": DEMO_CLIENT_ID, "access_right": "DenyAccess", "mailboxes": ["alice@northwind.test"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(graph(&t, &app, "/users/alice@northwind.test/mailFolders", &[]).await.status, 403);
    assert_eq!(graph(&t, &app, "/users/bob@northwind.test/mailFolders", &[]).await.status, 200);
    t.emu.set_application_access_policy(NW, DEMO_CLIENT_ID, None).unwrap();
    assert_eq!(graph(&t, &app, "/users/alice@northwind.test/mailFolders", &[]).await.status, 200);
    t.emu.shutdown().await;
}

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_thousand_mailboxes_of_ten_thousand_messages_fit_in_little_memory() {
    let t = spawn_with(|c| {
        c.throttling = m365_emulator::ThrottleConfig::disabled();
        c.fixture.set_all_counts(m365_emulator::MailboxCounts { messages: 10_000, events: 25, contacts: 30, tasks: 20 });
        let template = c.fixture.tenants[0].users[1].clone();
        for i in 0..1000 {
            c.fixture.tenants[0].users.push(m365_emulator::UserFixture {
                id: format!("b0000000-0000-4000-8000-{i:012}"),
                user_principal_name: format!("user{i:04}@northwind.test"),
                display_name: format!("Scale User {i}"),
                ..template.clone()
            });
        }
    })
    .await;
    t.emu.grant_admin_consent(NW, DEMO_CLIENT_ID, &[], &["Mail.Read"]).unwrap();
    let (_, tok) = app_token(&t, NW).await;
    let app = tok["access_token"].as_str().unwrap().to_string();
    let before = rss_mb();
    for i in 0..1000 {
        let r =
            graph(&t, &app, &format!("/users/user{i:04}@northwind.test/mailFolders/inbox/messages/delta"), &["odata.maxpagesize=5"]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["value"].as_array().unwrap().len(), 5);
    }
    let grown = rss_mb() - before;
    assert!(grown < 64.0, "touching 1,000 mailboxes grew RSS by {grown:.1} MB");
    let folders = graph(&t, &app, "/users/user0999@northwind.test/mailFolders/delta", &[]).await;
    let total: u64 = folders.body["value"].as_array().unwrap().iter().map(|f| f["totalItemCount"].as_u64().unwrap()).sum();
    assert_eq!(total, 10_000);
    t.emu.shutdown().await;
}

#[tokio::test]
async fn links_of_rounds_older_than_three_generations_are_gone() {
    let t = spawn().await;
    let at = user_token(&t, "carol@northwind.test").await;
    let (_, first, _) = delta_round(&t, &at, "/me/contactFolders/contacts/contacts/delta", &["odata.maxpagesize=100"]).await;
    // Three more rounds from the latest link each time: fine.
    let mut link = first.clone();
    for _ in 0..3 {
        let (_, next, _) = delta_round(&t, &at, &link, &[]).await;
        link = next;
    }
    let r = graph(&t, &at, &first, &[]).await;
    assert_eq!(r.status, 410, "the first round's link is too old now");
    assert!(
        r.body["error"]["message"].as_str().unwrap().starts_with("The sync state generation is not found; generation=1;[highest=4]"),
        "{}",
        r.text
    );
    assert_eq!(graph(&t, &at, &link, &[]).await.status, 200, "the newest link still works");
    // Another client (an app-only token) syncing the same folder has its own generations.
    t.emu.grant_admin_consent(NW, DEMO_CLIENT_ID, &[], &["Contacts.Read"]).unwrap();
    let (_, tok) = app_token(&t, NW).await;
    let app = tok["access_token"].as_str().unwrap().to_string();
    let (_, app_link, _) = delta_round(&t, &app, "/users/carol@northwind.test/contactFolders/contacts/contacts/delta", &[]).await;
    for _ in 0..5 {
        let (_, next, _) = delta_round(&t, &at, &link, &[]).await;
        link = next;
    }
    assert_eq!(graph(&t, &app, &app_link, &[]).await.status, 200);
    t.emu.shutdown().await;
}
