//! Saving Connection Settings: the test token request decides which field is wrong, and nothing
//! is stored until Microsoft accepts the app registration.

use crate::harness::{demo_form, spawn};
use domain::views::SaveConfirmations;
use office365::Error;

#[tokio::test]
async fn a_wrong_secret_lands_on_the_secret_field_and_nothing_is_stored() {
    let env = spawn().await;
    let form = domain::office365::SettingsForm { client_secret: "not-the-secret".into(), ..demo_form() };
    let result = env.o365.save_settings(&env.admin.user, &form, SaveConfirmations::default()).await.unwrap();
    assert!(!result.saved);
    assert!(result.errors["client_secret"].contains("rejected this client secret"), "{result:?}");
    assert!(!env.store.office365_settings(env.org).await.unwrap().enabled);
    assert!(env.o365.audit_log(&env.admin.user).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_unknown_app_lands_on_the_client_id_field() {
    let env = spawn().await;
    let form = domain::office365::SettingsForm { client_id: "99999999-2222-4333-8444-555555555555".into(), ..demo_form() };
    let result = env.o365.save_settings(&env.admin.user, &form, SaveConfirmations::default()).await.unwrap();
    assert!(result.errors.contains_key("client_id"), "{result:?}");
}

#[tokio::test]
async fn a_good_app_registration_is_saved_audited_and_shown() {
    let env = spawn().await;
    env.enable().await;
    let view = env.o365.settings_view(&env.admin.user).await.unwrap();
    assert!(view.settings.enabled && view.settings.client_secret_set);
    assert_eq!(view.callback_uri, "http://127.0.0.1:4020/oauth/office365/callback");
    let actions: Vec<String> = env.o365.audit_log(&env.admin.user).await.unwrap().into_iter().map(|a| a.action).collect();
    assert!(actions.contains(&"office365.enabled".to_owned()), "{actions:?}");
}

#[tokio::test]
async fn poll_primary_only_needs_a_confirmation() {
    let env = spawn().await;
    env.enable().await;
    let form = domain::office365::SettingsForm { poll_primary_only: true, client_secret: String::new(), ..demo_form() };
    let unconfirmed = env.o365.save_settings(&env.admin.user, &form, SaveConfirmations::default()).await.unwrap();
    assert!(!unconfirmed.saved && unconfirmed.errors.contains_key("poll_primary_only"));
    assert!(
        env.o365.save_settings(&env.admin.user, &form, SaveConfirmations { poll_primary: true, ..Default::default() }).await.unwrap().saved
    );
    assert!(env.store.office365_settings(env.org).await.unwrap().poll_primary_only);
}

#[tokio::test]
async fn members_cannot_run_admin_workflows() {
    let env = spawn().await;
    let member = &env.member.user;
    assert!(matches!(
        env.o365.save_settings(member, &demo_form(), SaveConfirmations { poll_primary: true, ..Default::default() }).await,
        Err(Error::Forbidden)
    ));
    assert!(matches!(env.o365.settings_view(member).await, Err(Error::Forbidden)));
    assert!(matches!(env.o365.team_connections(member).await, Err(Error::Forbidden)));
    assert!(matches!(env.o365.audit_log(member).await, Err(Error::Forbidden)));
    assert!(matches!(env.o365.deactivate_my_connection(member).await, Err(Error::Forbidden)));
    assert!(matches!(env.o365.search_directory(member, "a").await, Err(Error::Forbidden)));
    assert_eq!(Error::Forbidden.status(), 403);
    assert!(!env.store.office365_settings(env.org).await.unwrap().enabled);
}
