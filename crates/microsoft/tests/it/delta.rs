//! Delta queries for the sync engine: containers, full and incremental rounds, deletions, moves,
//! expired cursors, throttling and outages, against the emulator.

use crate::helpers::*;
use crate::tokens::sign_in;
use domain::ReasonCode;
use domain::Resource;
use m365_emulator::{FaultRule, Kind};
use microsoft::{
    DeltaItem, DeltaNext, DeltaRequest, DeltaStart, FailureClass, GraphItem, MailboxRef, MicrosoftClient, SecretString, Timeouts,
};
use std::collections::BTreeSet;
use std::time::Duration;

const SYNC_SCOPES: &str = "openid profile email offline_access User.Read Mail.Read Calendars.ReadWrite Contacts.Read Tasks.Read";
const ALICE: &str = "alice@northwind.test";

fn request<'a>(mailbox: &'a MailboxRef, kind: Resource, container: Option<&'a str>, start: DeltaStart) -> DeltaRequest<'a> {
    DeltaRequest {
        mailbox,
        resource: kind,
        container,
        window: Some(("2026-01-01T00:00:00Z", "2027-12-31T00:00:00Z")),
        received_since: None,
        page_size: 7,
        start,
    }
}

/// Runs a whole round: returns the upserted ids, the removed ids, the number of pages and the deltaLink.
async fn round(
    client: &MicrosoftClient,
    token: &SecretString,
    mailbox: &MailboxRef,
    kind: Resource,
    container: Option<&str>,
    start: DeltaStart,
) -> (Vec<String>, Vec<String>, usize, String) {
    let (mut upserts, mut removed, mut pages) = (Vec::new(), Vec::new(), 0);
    let mut start = start;
    loop {
        let page = client.delta_page(token, &request(mailbox, kind, container, start.clone())).await.unwrap();
        pages += 1;
        for item in page.items {
            match item {
                DeltaItem::Upsert(i) => upserts.push(i.id().to_string()),
                DeltaItem::Removed { id } => removed.push(id),
            }
        }
        match page.next {
            DeltaNext::NextLink(l) => start = DeltaStart::Link(l),
            DeltaNext::DeltaLink(l) => return (upserts, removed, pages, l),
        }
    }
}

fn snapshot_ids(env: &Env, kind: Kind, container: &str) -> BTreeSet<String> {
    env.emu.snapshot(ALICE, kind, container, true).unwrap().iter().map(|v| v["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn containers_are_listed_for_each_resource() {
    let env = spawn().await;
    let token = sign_in(&env, ALICE, SYNC_SCOPES).await.tokens.access_token;
    let folders = env.client.containers(&token, &MailboxRef::Me, Resource::Mail).await.unwrap();
    let names: BTreeSet<&str> = folders.iter().map(|f| f.display_name.as_str()).collect();
    assert!(names.contains("Inbox") && names.contains("Projects"), "nested folders included: {names:?}");
    assert_eq!(folders.len(), 7);
    let total: u64 = folders.iter().map(|f| f.total_items.unwrap()).sum();
    assert_eq!(total, 60, "the demo mailbox holds 60 messages");
    assert_eq!(env.client.containers(&token, &MailboxRef::Me, Resource::Contacts).await.unwrap().len(), 2);
    assert_eq!(env.client.containers(&token, &MailboxRef::Me, Resource::Tasks).await.unwrap().len(), 3);

    // App-only, through /users/{id}.
    env.emu
        .grant_admin_consent(NW, m365_emulator::DEMO_CLIENT_ID, &[], &["Mail.Read", "Contacts.Read", "Tasks.Read.All", "Calendars.Read"])
        .unwrap();
    let app_token = env.client.client_credentials(&app(NW)).await.unwrap().access_token;
    let bob = MailboxRef::User("6e1f0a00-0000-4000-8000-000000000003".into());
    assert_eq!(env.client.containers(&app_token, &bob, Resource::Mail).await.unwrap().len(), 7);
    env.emu.shutdown().await;
}

#[tokio::test]
async fn a_full_round_then_an_incremental_one_with_changes_deletions_and_moves() {
    let env = spawn().await;
    let token = sign_in(&env, ALICE, SYNC_SCOPES).await.tokens.access_token;
    let me = MailboxRef::Me;
    let (ids, removed, pages, delta) = round(&env.client, &token, &me, Resource::Mail, Some("inbox"), DeltaStart::Initial).await;
    assert!(removed.is_empty());
    assert!(pages > 1, "small pages: {pages}");
    let unique: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(unique, snapshot_ids(&env, Kind::Message, "inbox"), "immutable ids, every message once");

    // Nothing changed: an incremental round is empty.
    let (ids2, removed2, _, delta) = round(&env.client, &token, &me, Resource::Mail, Some("inbox"), DeltaStart::Link(delta)).await;
    assert!(ids2.is_empty() && removed2.is_empty());

    let added = env.emu.add_item(ALICE, Kind::Message, Some("inbox"), serde_json::json!({"subject": "New one"})).unwrap();
    let victims = env.emu.list_items(ALICE, Kind::Message, "inbox", 3).unwrap();
    env.emu.update_item(ALICE, &victims[0].immutable_id, serde_json::json!({"subject": "Edited"})).unwrap();
    env.emu.delete_item(ALICE, &victims[1].immutable_id).unwrap();
    env.emu.move_item(ALICE, &victims[2].immutable_id, "archive").unwrap();
    let (ids3, removed3, _, _) = round(&env.client, &token, &me, Resource::Mail, Some("inbox"), DeltaStart::Link(delta)).await;
    let ids3: BTreeSet<String> = ids3.into_iter().collect();
    assert!(ids3.contains(&added.immutable_id) && ids3.contains(&victims[0].immutable_id), "{ids3:?}");
    let removed3: BTreeSet<String> = removed3.into_iter().collect();
    assert!(removed3.contains(&victims[1].immutable_id) && removed3.contains(&victims[2].immutable_id), "{removed3:?}");
    env.emu.shutdown().await;
}

#[tokio::test]
async fn a_first_mail_round_with_received_since_gets_only_newer_mail_and_its_links_keep_the_filter() {
    let env = spawn().await;
    let token = sign_in(&env, ALICE, SYNC_SCOPES).await.tokens.access_token;
    let me = MailboxRef::Me;
    let received = |v: &serde_json::Value| {
        time::OffsetDateTime::parse(v["receivedDateTime"].as_str().unwrap(), &time::format_description::well_known::Rfc3339).unwrap()
    };
    let inbox = env.emu.snapshot(ALICE, Kind::Message, "inbox", true).unwrap();
    let mut times: Vec<time::OffsetDateTime> = inbox.iter().map(received).collect();
    times.sort();
    // Whole seconds, between two messages: half the inbox on each side.
    let since = times[times.len() / 2].replace_nanosecond(0).unwrap();
    let expected: BTreeSet<String> = inbox.iter().filter(|v| received(v) >= since).map(|v| v["id"].as_str().unwrap().to_string()).collect();
    assert!(expected.len() >= 3 && expected.len() < inbox.len(), "{} of {}", expected.len(), inbox.len());

    let mut got = BTreeSet::new();
    let mut start = DeltaStart::Initial;
    let delta = loop {
        let req = DeltaRequest { received_since: Some(since), ..request(&me, Resource::Mail, Some("inbox"), start.clone()) };
        let page = env.client.delta_page(&token, &req).await.unwrap();
        got.extend(page.items.iter().map(|i| i.id().to_string()));
        match page.next {
            DeltaNext::NextLink(l) => start = DeltaStart::Link(l),
            DeltaNext::DeltaLink(l) => break l,
        }
    };
    assert_eq!(got, expected);

    // The next round, from the deltaLink alone: a new message comes, an older one changing does not.
    let oldest = inbox.iter().min_by_key(|v| received(v)).unwrap()["id"].as_str().unwrap().to_string();
    env.emu.update_item(ALICE, &oldest, serde_json::json!({"subject": "Old but edited"})).unwrap();
    let added = env.emu.add_item(ALICE, Kind::Message, Some("inbox"), serde_json::json!({"subject": "Arrived later"})).unwrap();
    let (ids, _, _, _) = round(&env.client, &token, &me, Resource::Mail, Some("inbox"), DeltaStart::Link(delta)).await;
    assert_eq!(ids, vec![added.immutable_id]);
    env.emu.shutdown().await;
}

#[tokio::test]
async fn each_resource_yields_typed_items_with_the_shown_fields() {
    let env = spawn().await;
    let token = sign_in(&env, ALICE, SYNC_SCOPES).await.tokens.access_token;
    let me = MailboxRef::Me;
    let page = env.client.delta_page(&token, &request(&me, Resource::Mail, Some("inbox"), DeltaStart::Initial)).await.unwrap();
    let DeltaItem::Upsert(GraphItem::Message(m)) = &page.items[0] else { panic!("a message: {:?}", page.items[0]) };
    assert!(m.subject.is_some() && m.received_date_time.is_some() && m.from.is_some());

    let (events, _, _, _) = round(&env.client, &token, &me, Resource::Calendar, None, DeltaStart::Initial).await;
    let view: BTreeSet<String> = env
        .emu
        .calendar_view(ALICE, "2026-01-01T00:00:00Z", "2027-12-31T00:00:00Z", true)
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(events.into_iter().collect::<BTreeSet<_>>(), view);

    for (kind, lists) in [
        (Resource::Contacts, env.client.containers(&token, &me, Resource::Contacts).await.unwrap()),
        (Resource::Tasks, env.client.containers(&token, &me, Resource::Tasks).await.unwrap()),
    ] {
        // Some containers are empty; the first item of any will do.
        let mut first = None;
        for list in &lists {
            let page = env.client.delta_page(&token, &request(&me, kind, Some(&list.id), DeltaStart::Initial)).await.unwrap();
            first = first.or(page.items.into_iter().next());
        }
        match (first, kind) {
            (Some(DeltaItem::Upsert(GraphItem::Contact(c))), Resource::Contacts) => assert!(c.display_name.is_some()),
            (Some(DeltaItem::Upsert(GraphItem::Task(t))), Resource::Tasks) => assert!(t.title.is_some()),
            other => panic!("unexpected {other:?}"),
        }
    }
    env.emu.shutdown().await;
}

#[tokio::test]
async fn an_evicted_cursor_is_expired_and_a_new_round_works() {
    let env = spawn().await;
    let token = sign_in(&env, ALICE, SYNC_SCOPES).await.tokens.access_token;
    let me = MailboxRef::Me;
    let (_, _, _, delta) = round(&env.client, &token, &me, Resource::Mail, Some("inbox"), DeltaStart::Initial).await;
    env.emu.evict_sync_state(ALICE).unwrap();
    let err = env.client.delta_page(&token, &request(&me, Resource::Mail, Some("inbox"), DeltaStart::Link(delta))).await.unwrap_err();
    assert_eq!(err.status, Some(410));
    assert_eq!(err.class(), FailureClass::CursorExpired);
    let (ids, _, _, _) = round(&env.client, &token, &me, Resource::Mail, Some("inbox"), DeltaStart::Initial).await;
    assert_eq!(ids.into_iter().collect::<BTreeSet<_>>(), snapshot_ids(&env, Kind::Message, "inbox"));
    env.emu.shutdown().await;
}

#[tokio::test]
async fn a_400_for_an_unreadable_delta_token_is_an_expired_cursor_too() {
    let env = spawn_with(|c| c.protocol.undecodable_delta_token_status = 400).await;
    let token = sign_in(&env, ALICE, SYNC_SCOPES).await.tokens.access_token;
    let me = MailboxRef::Me;
    let (_, _, _, delta) = round(&env.client, &token, &me, Resource::Mail, Some("inbox"), DeltaStart::Initial).await;
    let (base, _) = delta.split_once("$deltatoken=").expect("a deltaLink carries a $deltatoken");
    let mangled = format!("{base}$deltatoken=not-a-token");
    let err = env.client.delta_page(&token, &request(&me, Resource::Mail, Some("inbox"), DeltaStart::Link(mangled))).await.unwrap_err();
    assert_eq!((err.status, err.code.as_str()), (Some(400), "SyncStateInvalid"));
    assert_eq!(err.class(), FailureClass::CursorExpired, "resync, as after a 410");
    env.emu.shutdown().await;
}

#[tokio::test]
async fn throttling_outages_and_timeouts_are_classified() {
    let env = spawn().await;
    let token = sign_in(&env, ALICE, SYNC_SCOPES).await.tokens.access_token;
    let me = MailboxRef::Me;
    let req = request(&me, Resource::Mail, Some("inbox"), DeltaStart::Initial);
    let fault = |status: Option<u16>, retry_after: Option<f64>, as_date: bool, delay_ms: Option<u64>| FaultRule {
        route: Some("messages/delta".into()),
        status,
        retry_after,
        retry_after_as_date: as_date,
        delay_ms,
        count: 1,
        ..FaultRule::default()
    };
    env.emu.inject_fault(fault(Some(429), Some(2.128), false, None));
    let err = env.client.delta_page(&token, &req).await.unwrap_err();
    assert_eq!(err.class(), FailureClass::Throttled(Some(Duration::from_millis(2128))));
    assert_eq!(err.reason, ReasonCode::Throttled);

    env.emu.inject_fault(fault(Some(429), Some(30.0), true, None));
    let err = env.client.delta_page(&token, &req).await.unwrap_err();
    let FailureClass::Throttled(Some(wait)) = err.class() else { panic!("throttled with a date: {err:?}") };
    assert!(wait > Duration::from_secs(25) && wait <= Duration::from_secs(31), "{wait:?}");

    env.emu.inject_fault(fault(Some(503), None, false, None));
    assert_eq!(env.client.delta_page(&token, &req).await.unwrap_err().class(), FailureClass::Transient(None));

    let impatient = MicrosoftClient::with_timeouts(
        endpoints(&env.emu),
        Timeouts { connect: Duration::from_secs(1), request: Duration::from_millis(300) },
    )
    .unwrap();
    env.emu.inject_fault(fault(None, None, false, Some(2_000)));
    assert_eq!(impatient.delta_page(&token, &req).await.unwrap_err().class(), FailureClass::Transient(None));

    // A stored link that points elsewhere is refused before any token is sent.
    let foreign = request(&me, Resource::Mail, Some("inbox"), DeltaStart::Link("https://evil.example/v1.0/me/messages/delta".into()));
    assert_eq!(env.client.delta_page(&token, &foreign).await.unwrap_err().code, "foreignLink");
    env.emu.shutdown().await;
}

#[tokio::test]
async fn someone_elses_mailbox_without_access_needs_attention() {
    let env = spawn().await;
    let service =
        sign_in(&env, "service@northwind.test", "openid profile offline_access User.Read Mail.Read Mail.Read.Shared").await.tokens;
    let carol = MailboxRef::User("carol@northwind.test".into());
    let err = env
        .client
        .delta_page(&service.access_token, &request(&carol, Resource::Mail, Some("inbox"), DeltaStart::Initial))
        .await
        .unwrap_err();
    assert_eq!(err.class(), FailureClass::NeedsAttention(ReasonCode::NoMailboxAccess));
    let dave = sign_in(&env, "dave@northwind.test", SYNC_SCOPES).await.tokens;
    let err = env.client.containers(&dave.access_token, &MailboxRef::Me, Resource::Mail).await.unwrap_err();
    assert_eq!(err.class(), FailureClass::NeedsAttention(ReasonCode::MailboxNotLicensed));
    env.emu.shutdown().await;
}
