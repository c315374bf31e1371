//! Issue 13 (item 14): the admin-consent callback does not wait for every service-account mailbox
//! to be checked. It records the consent and redirects at once; the mailboxes are checked in the
//! background, a few at a time, each result recorded as it arrives, and then scheduled.

use crate::harness::{ADMIN, demo_form, eventually, spawn};
use domain::views::SaveConfirmations;
use m365_emulator::FaultRule;
use std::time::{Duration, Instant};

/// Every Northwind mailbox of the emulator's directory.
const TEAM: [&str; 7] = [
    "admin@northwind.test",
    "alice@northwind.test",
    "bob@northwind.test",
    "carol@northwind.test",
    "service@northwind.test",
    "dave@northwind.test",
    "mfa@northwind.test",
];

/// What Microsoft takes to open one mailbox here, deliberately slow.
const PROBE: Duration = Duration::from_millis(1500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consent_callback_redirects_at_once_and_the_mailboxes_are_checked_in_the_background() {
    let env = spawn().await;
    let form = domain::office365::SettingsForm { mode: "application".into(), ..demo_form() };
    assert!(env.o365.save_settings(&env.admin.user, &form, SaveConfirmations::default()).await.unwrap().saved);
    for address in TEAM {
        let add = office365::NewServiceAccountUser { address: address.into(), ..Default::default() };
        env.o365.add_service_account_user(&env.admin.user, add).await.unwrap();
    }
    let url = env.o365.start_admin_consent(&env.admin).await.unwrap();
    let callback = m365_emulator::testkit::sign_in(&url, ADMIN).await.unwrap();
    // Opening a mailbox (the probe, GET /users/{id}/mailFolders/inbox) takes Microsoft PROBE each.
    let count = u32::try_from(TEAM.len()).unwrap();
    let delay_ms = Some(u64::try_from(PROBE.as_millis()).unwrap());
    env.emu.inject_fault(FaultRule { route: Some("mailFolders/inbox".into()), delay_ms, count, ..FaultRule::default() });

    let started = Instant::now();
    let landing = env.o365.complete_admin_consent(Some(&env.admin), callback.query()).await.unwrap();
    let answered = started.elapsed();
    assert_eq!(landing, "/settings/integrations/office365/my-connection");
    assert!(answered < PROBE, "the callback waited for a mailbox check: {answered:?}");
    let view = env.o365.service_accounts(&env.admin.user).await.unwrap();
    assert!(view.activated);
    assert_eq!(view.checking.len(), TEAM.len(), "every row says it is being checked: {view:?}");

    // Each result is on the page as soon as its check ends; some arrive before others.
    let partly = std::cell::Cell::new(false);
    let done = eventually("every mailbox is checked", || async {
        let view = env.o365.service_accounts(&env.admin.user).await.unwrap();
        for u in view.users.iter().filter(|u| !view.checking.contains(&u.id)) {
            assert!(u.health.is_some() && u.health_at.is_some(), "a row no longer checking has its result: {u:?}");
        }
        partly.set(partly.get() || (!view.checking.is_empty() && view.checking.len() < TEAM.len()));
        view.checking.is_empty().then_some(view)
    })
    .await;
    let took = started.elapsed();
    assert!(partly.get(), "results arrived one by one, not all at the end");
    assert!(took < PROBE * u32::try_from(TEAM.len()).unwrap() / 2, "checked a few at a time, not one after another: {took:?}");
    assert!(done.users.iter().all(|u| u.health.is_some()), "{done:?}");
    let dave = done.users.iter().find(|u| u.ms_username == "dave@northwind.test").unwrap();
    assert_eq!(dave.health, Some(domain::MailboxHealth::Problem(domain::ReasonCode::MailboxNotLicensed)));

    // Then scheduled: every mailbox the service connection can open, by Microsoft's directory id.
    let reachable = done.users.iter().filter(|u| u.health == Some(domain::MailboxHealth::Ok)).count();
    let service = env.store.service_connection(env.org).await.unwrap().unwrap();
    eventually("the reachable mailboxes are scheduled", || async {
        let mailboxes = env.store.sync_mailboxes_in_org(env.org).await.unwrap();
        let ids: Vec<_> = mailboxes.into_iter().filter(|m| m.connection_id == service.id).filter_map(|m| m.graph_user_id).collect();
        (ids.len() == reachable && ids.iter().all(|id| !id.contains('@'))).then_some(())
    })
    .await;
}
