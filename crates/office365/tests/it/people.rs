//! Service account users and Team connections: what a form or a stale page sends gets a 4xx with
//! words, never a 500.

use crate::harness::{demo_form, spawn};
use domain::ErrorCode;
use domain::views::SaveConfirmations;
use office365::{Error, NewServiceAccountUser};

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
