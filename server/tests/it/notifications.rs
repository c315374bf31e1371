//! Change notifications end to end: the server's sync workers subscribe after the first sync, the
//! emulator (playing Microsoft) validates the server's endpoints and posts to them on every change,
//! and the notified mailbox's resource is synced at once. Forged posts change nothing; lifecycle
//! events renew, recreate or catch up; a disconnect deletes the subscriptions; a mailbox Microsoft
//! will not notify about is polled at its interval and says why.

use crate::helpers::{TestApp, fresh_postgres_url, location, serve_instance, spawn_app, spawn_app_tuned};
use domain::{ChangeDelivery, OrgId, PollingReason, Resource};
use m365_emulator::{FaultRule, Kind, testkit};
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::subscriptions::SubscriptionState;
use store::sync::SyncMailbox;

const ADMIN: &str = "admin@northwind.test";
const ALICE: &str = "alice@northwind.test";

/// Signs `email` in through Microsoft's (the emulator's) pages for `purpose` (`activate` for the
/// admin, `connect` for a member) and follows the callback; returns their browser.
async fn connect(app: &TestApp, email: &str, purpose: &str) -> reqwest::Client {
    let client = app.signed_in(email).await;
    let res = client.post(app.url("/oauth/office365/start")).form(&[("purpose", purpose)]).send().await.unwrap();
    let back = testkit::sign_in(&location(&res), email).await.unwrap();
    let res = client.get(back.as_str()).send().await.unwrap();
    assert!(!location(&res).starts_with("/connect/result?refused"), "{email} was refused: {}", location(&res));
    client
}

/// The demo organization enabled with the demo app registration, its admin activated, the
/// schedule reconciled and the first sync run; returns the org and the admin's mailbox.
async fn activated(app: &TestApp) -> (OrgId, SyncMailbox) {
    let org = crate::helpers::enable_demo_integration(app.store.as_ref()).await;
    connect(app, ADMIN, "activate").await;
    app.scheduler.reconcile_org(org).await.unwrap();
    app.scheduler.run_until_idle().await.unwrap();
    let mailboxes = app.store.sync_mailboxes_in_org(org).await.unwrap();
    (org, mailboxes.into_iter().next().unwrap())
}

async fn delivery(app: &TestApp, org: OrgId, mailbox: &SyncMailbox) -> ChangeDelivery {
    let settings = app.store.office365_settings(org).await.unwrap();
    app.scheduler.engine().change_delivery(&settings, mailbox).await.unwrap()
}

async fn has_item(app: &TestApp, mailbox: &SyncMailbox, subject: &str) -> bool {
    let mailbox = mailbox.id;
    app.store.mailbox_items(mailbox, Resource::Mail).await.unwrap().iter().any(|i| i.title == subject)
}

/// Runs the scheduler until `done` holds (a notification arrives in the background), or panics
/// after 10 s.
async fn run_until(app: &TestApp, what: &str, mut done: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        app.scheduler.run_until_idle().await.unwrap();
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: not within 10 s");
}

fn requests(app: &TestApp, route_part: &str) -> u64 {
    app.emu.counters().requests_matching(route_part, None)
}

#[tokio::test]
async fn a_mailbox_is_subscribed_after_its_first_sync_and_a_notification_syncs_only_what_changed() {
    let app = spawn_app().await;
    let (org, mb) = activated(&app).await;

    // One subscription per resource (To Do: per list), at this server's endpoints.
    let held = app.emu.subscriptions();
    let resources: Vec<&str> = held.iter().map(|s| s.resource.as_str()).collect();
    for r in ["me/messages", "me/events", "me/contacts"] {
        assert!(resources.contains(&r), "{r} in {resources:?}");
    }
    assert!(resources.iter().any(|r| r.starts_with("me/todo/lists/") && r.ends_with("/tasks")), "{resources:?}");
    assert!(held.iter().all(|s| s.notification_url == app.url("/webhooks/microsoft/notifications")));
    assert!(held.iter().all(|s| s.lifecycle_url.as_deref() == Some(app.url("/webhooks/microsoft/lifecycle").as_str())));
    let rows = app.store.mailbox_subscriptions(mb.id).await.unwrap();
    assert_eq!(rows.len(), held.len());
    assert!(rows.iter().all(|s| s.is_live(store::now_unix())));
    let mut ids: Vec<String> = rows.iter().filter_map(|s| s.graph_id().map(str::to_owned)).collect();
    let mut theirs: Vec<String> = held.iter().map(|s| s.id.clone()).collect();
    ids.sort();
    theirs.sort();
    assert_eq!(ids, theirs, "the product keeps exactly what Microsoft holds");
    assert_eq!(delivery(&app, org, &mb).await, ChangeDelivery::Live);
    // Live: the next poll is the safety net, hours away, not the 15-minute interval.
    let row = app.store.sync_mailbox(mb.id).await.unwrap().unwrap();
    assert!(row.next_due_at > store::now_unix() + 5 * 3600, "next poll in {} s", row.next_due_at - store::now_unix());

    // A new mail: Microsoft notifies, and only mail is synced.
    let events_before = requests(&app, "calendarView");
    let mail_before = requests(&app, "messages/delta");
    app.emu.add_item(ADMIN, Kind::Message, Some("inbox"), serde_json::json!({"subject": "Arrived by notification"})).unwrap();
    run_until(&app, "the notified mail", async || has_item(&app, &mb, "Arrived by notification").await).await;
    assert!(requests(&app, "messages/delta") > mail_before);
    assert_eq!(requests(&app, "calendarView"), events_before, "the calendar was not notified, so not synced");
    let metrics = app.scheduler.engine().metrics().snapshot();
    assert!(metrics.notifications_received >= 1);
    assert_eq!(metrics.notifications_ignored, 0);
    // The schedule is untouched by the notified run.
    assert_eq!(app.store.sync_mailbox(mb.id).await.unwrap().unwrap().next_due_at, row.next_due_at);
}

#[tokio::test]
async fn forged_or_malformed_notifications_change_nothing() {
    let app = spawn_app().await;
    let (_, mb) = activated(&app).await;
    let http = reqwest::Client::new();
    let post = |path: &'static str, body: String| {
        let http = http.clone();
        let url = app.url(path);
        async move { http.post(url).header("content-type", "application/json").body(body).send().await.unwrap() }
    };
    let real = app.emu.subscriptions().remove(0).id;
    let forged = [
        serde_json::json!({"value": [{"subscriptionId": "00000000-0000-0000-0000-000000000000", "clientState": "guess", "changeType": "created"}]}),
        serde_json::json!({"value": [{"subscriptionId": real, "clientState": "wrong", "changeType": "created"}]}),
        serde_json::json!({"value": [{"subscriptionId": real, "changeType": "created"}]}),
    ];
    for body in &forged {
        assert_eq!(post("/webhooks/microsoft/notifications", body.to_string()).await.status(), 202, "{body}");
    }
    let lifecycle =
        serde_json::json!({"value": [{"subscriptionId": real, "clientState": "wrong", "lifecycleEvent": "subscriptionRemoved"}]});
    assert_eq!(post("/webhooks/microsoft/lifecycle", lifecycle.to_string()).await.status(), 202);
    for bad in ["not json", "{}", r#"{"value":[{}]}"#] {
        let res = post("/webhooks/microsoft/notifications", bad.to_string()).await;
        assert!(res.status().is_client_error(), "{bad}: {}", res.status());
    }
    let huge = "x".repeat(2 * 1024 * 1024);
    assert_eq!(post("/webhooks/microsoft/notifications", huge).await.status(), 413);

    // Nothing became due, nothing was flagged.
    assert!(app.scheduler.run_until_idle().await.unwrap().is_empty(), "a forged notification made the mailbox due");
    let rows = app.store.mailbox_subscriptions(mb.id).await.unwrap();
    assert!(rows.iter().all(|s| matches!(s.state, SubscriptionState::Live { renew: false, .. })));
    let m = app.scheduler.engine().metrics().snapshot();
    assert_eq!((m.notifications_received, m.lifecycle_events), (0, 0));
    assert_eq!(m.notifications_ignored, 4 + 3, "three forged changes, one forged lifecycle event, three unreadable bodies");

    // The validation handshake: the token back, as plain text, on both endpoints.
    for path in ["/webhooks/microsoft/notifications", "/webhooks/microsoft/lifecycle"] {
        let res = http.post(format!("{}?validationToken=Validation%3A%20Testing%20client", app.url(path))).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
        assert_eq!(res.text().await.unwrap(), "Validation: Testing client");
    }
    let long = "a".repeat(5000);
    let res = http.post(format!("{}?validationToken={long}", app.url("/webhooks/microsoft/notifications"))).send().await.unwrap();
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn lifecycle_events_renew_recreate_or_catch_up() {
    let app = spawn_app().await;
    let (_, mb) = activated(&app).await;
    let mail_sub = || app.emu.subscriptions().into_iter().find(|s| s.resource == "me/messages").unwrap();
    let first = mail_sub();

    // reauthorizationRequired: renewed on the run it triggers.
    let patches = requests(&app, "PATCH /subscriptions");
    assert_eq!(app.emu.send_lifecycle_event(Some(&first.id), None, "reauthorizationRequired"), 1);
    run_until(&app, "the renewal", async || requests(&app, "PATCH /subscriptions") > patches).await;
    assert_eq!(mail_sub().id, first.id, "renewed, not replaced");
    let row = app.store.subscription_by_graph_id(&first.id).await.unwrap().unwrap();
    assert!(matches!(row.state, SubscriptionState::Live { renew: false, .. }));

    // subscriptionRemoved: made again, then a delta round.
    let (creates, deltas) = (requests(&app, "POST /subscriptions"), requests(&app, "messages/delta"));
    app.emu.send_lifecycle_event(Some(&first.id), None, "subscriptionRemoved");
    run_until(&app, "the new subscription", async || requests(&app, "POST /subscriptions") > creates).await;
    let second = mail_sub();
    assert_ne!(second.id, first.id);
    assert!(requests(&app, "messages/delta") > deltas, "a delta round after the removal");
    assert!(app.store.subscription_by_graph_id(&second.id).await.unwrap().is_some());
    assert!(app.store.subscription_by_graph_id(&first.id).await.unwrap().is_none());

    // missed: a delta round of that resource, the subscription kept.
    let deltas = requests(&app, "messages/delta");
    app.emu.send_lifecycle_event(Some(&second.id), None, "missed");
    run_until(&app, "the catch-up round", async || requests(&app, "messages/delta") > deltas).await;
    assert_eq!(mail_sub().id, second.id);
    assert_eq!(app.scheduler.engine().metrics().snapshot().lifecycle_events, 3);
    assert_eq!(app.store.mailbox_subscriptions(mb.id).await.unwrap().len(), app.emu.subscriptions().len());
}

#[tokio::test]
async fn disconnecting_or_no_longer_syncing_a_resource_deletes_its_subscriptions_at_microsoft() {
    let app = spawn_app().await;
    let (org, admin_mailbox) = activated(&app).await;
    let alice = connect(&app, ALICE, "connect").await;
    app.scheduler.reconcile_org(org).await.unwrap();
    app.scheduler.run_until_idle().await.unwrap();
    let total = app.emu.subscriptions().len();
    let admins = app.store.mailbox_subscriptions(admin_mailbox.id).await.unwrap().len();
    assert!(total > admins, "Alice has hers too");

    let res = app.call(&alice, "disconnect_own_office365", &[]).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    assert_eq!(app.emu.subscriptions().len(), admins, "Alice's were deleted at Microsoft, the admin's kept");

    // Tasks no longer synced: its subscriptions go on the next run.
    let mut settings = app.store.office365_settings(org).await.unwrap();
    settings.resources.retain(|r| *r != Resource::Tasks);
    app.store.save_office365_settings(org, &settings, None, &[]).await.unwrap();
    app.scheduler.sync_now(admin_mailbox.id).await.unwrap();
    app.scheduler.run_until_idle().await.unwrap();
    let held = app.emu.subscriptions();
    assert!(!held.is_empty() && held.iter().all(|s| !s.resource.contains("/todo/")), "{held:?}");
    assert_eq!(app.store.mailbox_subscriptions(admin_mailbox.id).await.unwrap().len(), held.len());
    assert!(app.scheduler.engine().metrics().snapshot().subscriptions_deleted >= 2);
}

#[tokio::test]
async fn a_mailbox_whose_subscription_dies_is_polled_at_its_interval_and_says_why() {
    let app = spawn_app().await;
    let (org, mb) = activated(&app).await;
    assert_eq!(delivery(&app, org, &mb).await, ChangeDelivery::Live);

    // Microsoft removes the mail subscription and refuses to make another.
    app.emu.inject_fault(FaultRule { route: Some("/subscriptions".into()), status: Some(403), count: u32::MAX, ..FaultRule::default() });
    let mail = app.emu.subscriptions().into_iter().find(|s| s.resource == "me/messages").unwrap();
    assert_eq!(app.emu.send_lifecycle_event(Some(&mail.id), None, "subscriptionRemoved"), 1);
    run_until(&app, "the refused re-creation", async || {
        matches!(delivery(&app, org, &mb).await, ChangeDelivery::Polling(PollingReason::Failed { .. }))
    })
    .await;

    // Synced all the same; polled every 15 minutes, and the page can say why.
    assert!(!app.store.mailbox_items(mb.id, Resource::Mail).await.unwrap().is_empty());
    let delivery = delivery(&app, org, &mb).await;
    assert!(matches!(delivery, ChangeDelivery::Polling(PollingReason::Failed { .. })), "{delivery:?}");
    assert!(delivery.why().unwrap().contains("could not be kept"), "{:?}", delivery.why());
    assert_eq!(delivery.label(15), "Polling every 15 minutes");
    let due_in = app.store.sync_mailbox(mb.id).await.unwrap().unwrap().next_due_at - store::now_unix();
    assert!((14 * 60..=15 * 60).contains(&due_in), "next poll in {due_in} s");
    assert!(!app.emu.subscriptions().iter().any(|s| s.resource == "me/messages"));
    assert!(app.scheduler.engine().metrics().snapshot().subscription_failures >= 1);

    // A change still arrives by polling (its due time, brought forward here).
    app.emu.add_item(ADMIN, Kind::Message, Some("inbox"), serde_json::json!({"subject": "Arrived by polling"})).unwrap();
    app.scheduler.sync_now(mb.id).await.unwrap();
    app.scheduler.run_until_idle().await.unwrap();
    assert!(has_item(&app, &mb, "Arrived by polling").await);
    // Not asked again within the hour: no request storm against a refusing Microsoft.
    let tries = requests(&app, "POST /subscriptions");
    app.scheduler.sync_now(mb.id).await.unwrap();
    app.scheduler.run_until_idle().await.unwrap();
    assert_eq!(requests(&app, "POST /subscriptions"), tries);
}

#[tokio::test]
async fn subscriptions_are_renewed_a_day_before_they_lapse_and_keep_delivering_after_the_first_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let store = store::open(&crate::helpers::sqlite_url(&dir), Arc::new(store::secrets::Keyring::ephemeral())).await.unwrap();
    // Days pass in this test: the product's subscription clock and Microsoft's move together.
    let clock = sync::subscriptions::SubscriptionClock::default();
    let app = spawn_app_tuned(store, dir, server::client_address::TrustedProxies::default(), {
        let clock = clock.clone();
        |c| c.subscription_clock = clock
    })
    .await;
    let pass = |hours: u64| {
        let by = Duration::from_secs(hours * 3600);
        clock.advance(by);
        app.emu.advance_clock(by);
    };
    let (_, mb) = activated(&app).await;
    let before = app.emu.subscriptions();
    let run = async || {
        app.scheduler.sync_now(mb.id).await.unwrap();
        app.scheduler.run_until_idle().await.unwrap();
    };

    // 45 hours in, 25 are left: nothing to renew yet.
    pass(45);
    run().await;
    assert_eq!(requests(&app, "PATCH /subscriptions"), 0);
    // 47 hours in, within a day of lapsing: each is renewed once, keeping its id.
    pass(2);
    run().await;
    assert_eq!(requests(&app, "PATCH /subscriptions") as usize, before.len(), "each one renewed once");
    let after = app.emu.subscriptions();
    assert_eq!(after.iter().map(|s| &s.id).collect::<Vec<_>>(), before.iter().map(|s| &s.id).collect::<Vec<_>>());
    for (s, old) in after.iter().zip(&before) {
        assert!(
            s.expiration >= old.expiration + Duration::from_secs(46 * 3600),
            "{} renewed to {} (was {})",
            s.resource,
            s.expiration,
            old.expiration
        );
    }
    assert_eq!(app.scheduler.engine().metrics().snapshot().subscriptions_renewed as usize, before.len());

    // 72 hours in, past the first expiry: the renewed subscriptions still deliver.
    pass(25);
    app.emu.add_item(ADMIN, Kind::Message, Some("inbox"), serde_json::json!({"subject": "After the first expiry"})).unwrap();
    run_until(&app, "the notified mail", async || has_item(&app, &mb, "After the first expiry").await).await;
}

#[tokio::test]
async fn on_two_instances_a_notification_landing_on_the_one_without_the_lease_is_synced_by_the_holder() {
    let Some(url) = fresh_postgres_url().await else { return };
    let keyring = Arc::new(store::secrets::Keyring::ephemeral());
    let store_a = store::open(&url, keyring.clone()).await.unwrap();
    let store_b = store::open(&url, keyring).await.unwrap();
    // Microsoft's posts reach instance B (say, the load balancer sent them there); A does the syncing.
    let listener_b = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let b = format!("http://{}", listener_b.local_addr().unwrap());
    let urls = microsoft::NotificationUrls {
        notification: format!("{b}/webhooks/microsoft/notifications"),
        lifecycle: format!("{b}/webhooks/microsoft/lifecycle"),
    };
    let app = spawn_app_tuned(store_a, tempfile::tempdir().unwrap(), Default::default(), |c| {
        c.notification_urls = Some(urls);
        c.poll_every = Duration::from_millis(100);
    })
    .await;
    let scheduler_b = serve_instance(store_b, &app.emu, listener_b, Default::default(), |_| {});
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let loop_a = app.scheduler.clone().spawn(stopped);

    let org = crate::helpers::enable_demo_integration(app.store.as_ref()).await;
    connect(&app, ADMIN, "activate").await;
    app.scheduler.reconcile_org(org).await.unwrap();
    let started = Instant::now();
    while !app.emu.subscriptions().iter().any(|s| s.resource == "me/messages") {
        assert!(started.elapsed() < Duration::from_secs(20), "no subscription made by A's loop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(app.emu.subscriptions().iter().all(|s| s.notification_url.starts_with(&b)), "validated by B");
    let mb = app.store.sync_mailboxes_in_org(org).await.unwrap().remove(0);

    app.emu.add_item(ADMIN, Kind::Message, Some("inbox"), serde_json::json!({"subject": "Posted to B, synced by A"})).unwrap();
    let started = Instant::now();
    while !has_item(&app, &mb, "Posted to B, synced by A").await {
        assert!(started.elapsed() < Duration::from_secs(10), "the mail posted to B was not synced by A");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A's notified run is counted once it has released its lease, just after the commit.
    let started = Instant::now();
    while app.scheduler.engine().metrics().snapshot().mailbox_runs_ok < 2 {
        assert!(started.elapsed() < Duration::from_secs(5), "A's notified run did not end");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (a, b) = (app.scheduler.engine().metrics().snapshot(), scheduler_b.engine().metrics().snapshot());
    assert_eq!((a.notifications_received, b.notifications_received), (0, 1), "B received it");
    assert_eq!(b.mailbox_runs_ok + b.mailbox_runs_failed, 0, "B never synced: it holds no lease");
    stop.send(true).unwrap();
    loop_a.await.unwrap();
}
