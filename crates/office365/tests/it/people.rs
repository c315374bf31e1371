//! Service account users and Team connections: what a form or a stale page sends gets a 4xx with
//! words, never a 500.

use crate::harness::{ADMIN, Env, MEMBER, demo_form, eventually, spawn};
use domain::views::SaveConfirmations;
use domain::{ErrorCode, MailboxHealth, ServiceAccountUser};
use office365::{Error, NewServiceAccountUser};

/// Directory object ids in the emulator's Northwind tenant.
const ALICE_ID: &str = "6e1f0a00-0000-4000-8000-000000000002";
const BOB_ID: &str = "6e1f0a00-0000-4000-8000-000000000003";

/// Service-account mode with application permissions, consented by the admin: the service
/// connection is active and may read the directory.
pub(crate) async fn application_mode_activated(env: &Env) {
    let form = domain::office365::SettingsForm { mode: "application".into(), ..demo_form() };
    assert!(env.o365.save_settings(&env.admin.user, &form, SaveConfirmations::default()).await.unwrap().saved);
    let url = env.o365.start_admin_consent(&env.admin).await.unwrap();
    let callback = m365_emulator::testkit::sign_in(&url, ADMIN).await.unwrap();
    env.o365.complete_admin_consent(Some(&env.admin), callback.query()).await.unwrap();
    assert!(env.checks_done().await.activated);
}

/// The mailbox the service connection syncs for `address`: `/users/{this}`.
async fn synced_as(env: &Env, address: &str) -> Option<String> {
    let service = env.store.service_connection(env.org).await.unwrap().unwrap();
    let users = env.store.service_account_users(env.org).await.unwrap();
    let user = users.iter().find(|u| u.ms_username == address)?;
    let mailboxes = env.store.sync_mailboxes_in_org(env.org).await.unwrap();
    let graph = user.graph_user_id();
    mailboxes.into_iter().filter(|m| m.connection_id == service.id).filter_map(|m| m.graph_user_id).find(|g| g == graph)
}

#[tokio::test]
async fn a_service_account_users_directory_id_is_the_one_microsoft_has_for_the_address() {
    let env = spawn().await;
    application_mode_activated(&env).await;
    // Whatever name the form sent, the row is the address's owner's, as Microsoft knows them.
    let new = NewServiceAccountUser { address: "Alice@Northwind.test".into(), name: Some("Bob Burke".into()) };
    env.o365.add_service_account_user(&env.admin.user, new).await.unwrap();
    let users = env.o365.service_accounts(&env.admin.user).await.unwrap().users;
    assert_eq!(users.len(), 1);
    let alice = &users[0];
    assert_eq!(
        (alice.ms_username.as_str(), alice.ms_object_id.as_deref(), alice.display_name.as_str()),
        (MEMBER, Some(ALICE_ID), "Alice Anders")
    );
    assert_eq!(alice.health, Some(MailboxHealth::Ok), "checked once added");
    assert_eq!(synced_as(&env, MEMBER).await.as_deref(), Some(ALICE_ID));

    // An address Microsoft does not know is refused in words, and nothing is stored.
    let nobody = NewServiceAccountUser { address: "nobody@northwind.test".into(), ..Default::default() };
    let e = env.o365.add_service_account_user(&env.admin.user, nobody).await.unwrap_err();
    assert_eq!((e.code(), e.status()), (ErrorCode::Invalid, 422));
    assert!(matches!(&e, Error::Invalid(m) if m.contains("nobody@northwind.test") && m.contains("nobody with the address")), "{e}");
    assert_eq!(env.o365.service_accounts(&env.admin.user).await.unwrap().users.len(), 1);
}

#[tokio::test]
async fn a_directory_id_stored_for_another_person_is_replaced_by_microsofts_at_the_check() {
    let env = spawn().await;
    // A row whose directory id is Bob's under Alice's address (what a forged add form could store
    // before the server looked addresses up), waiting for the service connection.
    let form = domain::office365::SettingsForm { mode: "application".into(), ..demo_form() };
    assert!(env.o365.save_settings(&env.admin.user, &form, SaveConfirmations::default()).await.unwrap().saved);
    let forged = ServiceAccountUser {
        id: uuid::Uuid::new_v4(),
        ms_object_id: Some(BOB_ID.into()),
        ms_username: MEMBER.into(),
        display_name: "Alice Anders".into(),
        added_by: ADMIN.into(),
        added_at: store::now_unix(),
        health: None,
        health_at: None,
    };
    let entry = domain::AuditEntry { at: 1, actor: ADMIN.into(), action: "office365.service_user_added".into(), summary: String::new() };
    assert!(env.store.add_service_account_user(env.org, &forged, &entry).await.unwrap());

    // Activation checks every mailbox: by Microsoft's id for the address, which is then stored.
    application_mode_activated(&env).await;
    let users = env.o365.service_accounts(&env.admin.user).await.unwrap().users;
    assert_eq!(users[0].ms_object_id.as_deref(), Some(ALICE_ID), "Bob's id is still stored for Alice's address");
    // Scheduled once the checks have ended.
    let synced = eventually("Alice's mailbox is scheduled", || async { synced_as(&env, MEMBER).await }).await;
    assert_eq!(synced, ALICE_ID, "Bob's mailbox would be synced as Alice's");
    let mailboxes = env.store.sync_mailboxes_in_org(env.org).await.unwrap();
    assert!(mailboxes.iter().all(|m| m.graph_user_id.as_deref() != Some(BOB_ID)), "{mailboxes:?}");
}

#[tokio::test]
async fn service_account_users_are_added_once_and_removed() {
    let env = spawn().await;
    let form = domain::office365::SettingsForm { mode: "application".into(), ..demo_form() };
    assert!(env.o365.save_settings(&env.admin.user, &form, SaveConfirmations::default()).await.unwrap().saved);
    let add = |address: &str| NewServiceAccountUser { address: address.into(), ..Default::default() };

    let bad = env.o365.add_service_account_user(&env.admin.user, add("not an address")).await.unwrap_err();
    assert_eq!(bad.code(), ErrorCode::Invalid);
    env.o365.add_service_account_user(&env.admin.user, add("bob@northwind.test")).await.unwrap();
    let again = env.o365.add_service_account_user(&env.admin.user, add("BOB@northwind.test")).await.unwrap_err();
    assert!(again.to_string().contains("already in the list"), "{again}");

    let view = env.o365.service_accounts(&env.admin.user).await.unwrap();
    assert_eq!(view.users.len(), 1);
    assert!(!view.activated, "no admin consent yet, so no service connection");
    let id = view.users[0].id.to_string();
    env.o365.remove_service_account_user(&env.admin.user, &id).await.unwrap();
    let gone = env.o365.remove_service_account_user(&env.admin.user, &id).await.unwrap_err();
    assert_eq!(gone.status(), 404);
    let garbage = env.o365.remove_service_account_user(&env.admin.user, "'; drop table").await.unwrap_err();
    assert_eq!(garbage.status(), 404);
}

#[tokio::test]
async fn service_account_users_need_service_account_mode() {
    let env = spawn().await;
    env.enable().await;
    let new = NewServiceAccountUser { address: "bob@northwind.test".into(), ..Default::default() };
    let e = env.o365.add_service_account_user(&env.admin.user, new).await.unwrap_err();
    assert!(matches!(e, Error::Invalid(ref m) if m.contains("service-account mode")), "{e}");
}

#[tokio::test]
async fn a_directory_search_before_activation_says_why_instead_of_failing() {
    let env = spawn().await;
    let form = domain::office365::SettingsForm { mode: "application".into(), ..demo_form() };
    assert!(env.o365.save_settings(&env.admin.user, &form, SaveConfirmations::default()).await.unwrap().saved);
    match env.o365.search_directory(&env.admin.user, "ali").await.unwrap() {
        domain::views::DirectorySearchResult::Problem(p) => assert!(p.contains("not active yet"), "{p}"),
        other => panic!("expected a problem, got {other:?}"),
    }
}

#[tokio::test]
async fn team_connection_actions_on_unknown_rows_are_not_found() {
    let env = spawn().await;
    for id in ["00000000-0000-4000-8000-000000000000", "garbage"] {
        let e = env.o365.disconnect_team_connection(&env.admin.user, id).await.unwrap_err();
        assert_eq!(e.status(), 404, "{e}");
        let e = env.o365.sync_team_connection_now(&env.admin.user, id).await.unwrap_err();
        assert_eq!(e.status(), 404, "{e}");
    }
    assert!(env.o365.team_connections(&env.admin.user).await.unwrap().is_empty());
}
