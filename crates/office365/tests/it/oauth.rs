//! Starting and completing sign-ins and admin consent: refusals end on a page that says why.

use crate::harness::{ADMIN, MEMBER, demo_form, spawn};
use domain::Refusal;
use domain::office365::SettingsForm;
use domain::views::SaveConfirmations;
use office365::Error;

#[tokio::test]
async fn nothing_starts_while_the_integration_is_disabled() {
    let env = spawn().await;
    let e = env.o365.start_sign_in(&env.member, "connect").await.unwrap_err();
    assert!(matches!(e, Error::Refused(Refusal::NotEnabled)), "{e}");
    assert_eq!(e.result_page(), "/connect/result?refused=not_enabled");
}

#[tokio::test]
async fn members_cannot_activate_or_run_admin_consent() {
    let env = spawn().await;
    env.enable().await;
    for purpose in ["activate", "service_user"] {
        let e = env.o365.start_sign_in(&env.member, purpose).await.unwrap_err();
        assert!(matches!(e, Error::Refused(Refusal::AdminsOnly)), "{e}");
    }
    let e = env.o365.start_admin_consent(&env.member).await.unwrap_err();
    assert_eq!(e.status(), 403);
    let e = env.o365.start_sign_in(&env.member, "<script>").await.unwrap_err();
    assert!(matches!(e, Error::Refused(Refusal::Unknown)), "{e}");
}

#[tokio::test]
async fn a_started_sign_in_goes_to_microsoft_with_pkce_and_its_state_works_once_in_its_session() {
    let env = spawn().await;
    env.enable().await;
    let url = env.o365.start_sign_in(&env.member, "connect").await.unwrap();
    assert!(url.starts_with(&env.emu.login_base()), "{url}");
    assert!(url.contains("code_challenge_method=S256") && url.contains("login_hint="), "{url}");
    let state = state_in(&url);

    // Another session presenting this state is refused, and the state is spent.
    let query = format!("code=whatever&state={state}");
    let e = env.o365.complete_sign_in(Some(&env.admin), &query).await.unwrap_err();
    assert!(matches!(e, Error::Refused(Refusal::OtherSession)), "{e}");
    let e = env.o365.complete_sign_in(Some(&env.member), &query).await.unwrap_err();
    assert!(matches!(e, Error::Refused(Refusal::Expired)), "{e}");
    // No session at all, or no state.
    let e = env.o365.complete_sign_in(None, "code=x&state=made-up").await.unwrap_err();
    assert!(matches!(e, Error::Refused(Refusal::Expired)), "{e}");
    let e = env.o365.complete_sign_in(Some(&env.member), "").await.unwrap_err();
    assert_eq!(e.result_page(), format!("/connect/result?reason={}", domain::ReasonCode::SignInNotVerified.as_str()));
}

#[tokio::test]
async fn an_admin_consent_state_is_not_accepted_by_the_sign_in_callback() {
    let env = spawn().await;
    env.enable_with(SettingsForm { mode: "application".into(), ..demo_form() }).await;
    let url = env.o365.start_admin_consent(&env.admin).await.unwrap();
    let state = state_in(&url);
    let e = env.o365.complete_sign_in(Some(&env.admin), &format!("code=x&state={state}")).await.unwrap_err();
    assert!(matches!(e, Error::Refused(Refusal::Expired)), "{e}");
}

#[tokio::test]
async fn a_declined_consent_comes_back_with_microsofts_words() {
    let env = spawn().await;
    env.enable().await;
    let url = env.o365.start_sign_in(&env.member, "connect").await.unwrap();
    let state = state_in(&url);
    let query = format!("error=access_denied&error_description=AADSTS65004%3A+User+declined+to+consent&state={state}");
    let e = env.o365.complete_sign_in(Some(&env.member), &query).await.unwrap_err();
    assert!(matches!(e, Error::Microsoft { .. }), "{e}");
    assert!(e.result_page().starts_with("/connect/result?reason="), "{}", e.result_page());
}

#[tokio::test]
async fn a_member_connects_through_microsofts_pages_and_the_mailbox_is_scheduled() {
    let env = spawn().await;
    env.enable().await;
    let url = env.o365.start_sign_in(&env.member, "connect").await.unwrap();
    let callback = m365_emulator::testkit::sign_in(&url, MEMBER).await.unwrap();
    let landing = env.o365.complete_sign_in(Some(&env.member), callback.query()).await.unwrap();
    assert_eq!(landing, "/profile");

    let profile = env.o365.profile(&env.member.user).await.unwrap();
    let connection = profile.connection.expect("connected");
    assert_eq!(connection.ms_username, MEMBER);
    assert!(!connection.is_primary);
    assert!(profile.sync.is_some(), "the new connection's mailbox is scheduled");
    let rows = env.o365.team_connections(&env.admin.user).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].owner_email, MEMBER);

    // Replaying the same callback finds nothing.
    let e = env.o365.complete_sign_in(Some(&env.member), callback.query()).await.unwrap_err();
    assert!(matches!(e, Error::Refused(Refusal::Expired)), "{e}");

    env.o365.disconnect_own(&env.member.user).await.unwrap();
    let profile = env.o365.profile(&env.member.user).await.unwrap();
    assert!(profile.connection.is_none() && profile.sync.is_none());
    let actions: Vec<String> = env.o365.audit_log(&env.admin.user).await.unwrap().into_iter().map(|a| a.action).collect();
    assert!(actions.contains(&"office365.connected".into()) && actions.contains(&"office365.disconnected".into()), "{actions:?}");
}

#[tokio::test]
async fn the_admins_activation_is_the_primary_integration() {
    let env = spawn().await;
    env.enable().await;
    // Step 5 of the help article: the admin's feed asks for the activation until it is done.
    let cards = |cards: Vec<domain::ActionCard>| cards.into_iter().map(|c| c.id).collect::<Vec<_>>();
    assert!(cards(env.o365.action_cards(&env.admin.user).await.unwrap()).contains(&"office365-activate".to_owned()));
    let url = env.o365.start_sign_in(&env.admin, "activate").await.unwrap();
    let callback = m365_emulator::testkit::sign_in(&url, ADMIN).await.unwrap();
    let landing = env.o365.complete_sign_in(Some(&env.admin), callback.query()).await.unwrap();
    assert_eq!(landing, "/settings/integrations/office365/my-connection");
    let view = env.o365.my_connection(&env.admin.user).await.unwrap();
    assert!(view.connection.as_ref().is_some_and(|c| c.is_primary));
    assert!(view.permissions.iter().all(|(_, granted)| *granted), "{:?}", view.permissions);
    assert!(view.missing.is_empty());
    assert!(!cards(env.o365.action_cards(&env.admin.user).await.unwrap()).contains(&"office365-activate".to_owned()));
    env.o365.deactivate_my_connection(&env.admin.user).await.unwrap();
    assert!(env.o365.my_connection(&env.admin.user).await.unwrap().connection.is_none());
}

#[tokio::test]
async fn admin_consent_in_application_mode_activates_the_service_connection() {
    let env = spawn().await;
    let form = domain::office365::SettingsForm { mode: "application".into(), ..crate::harness::demo_form() };
    assert!(env.o365.save_settings(&env.admin.user, &form, SaveConfirmations::default()).await.unwrap().saved);
    let add = office365::NewServiceAccountUser { address: MEMBER.into(), ..Default::default() };
    env.o365.add_service_account_user(&env.admin.user, add).await.unwrap();

    let url = env.o365.start_admin_consent(&env.admin).await.unwrap();
    let callback = m365_emulator::testkit::sign_in(&url, ADMIN).await.unwrap();
    let landing = env.o365.complete_admin_consent(Some(&env.admin), callback.query()).await.unwrap();
    assert_eq!(landing, "/settings/integrations/office365/my-connection");

    let accounts = env.checks_done().await;
    assert!(accounts.activated);
    assert_eq!(accounts.users[0].health, Some(domain::MailboxHealth::Ok), "the mailbox was checked at activation");
    let consent = env.o365.admin_consent_view(&env.admin.user).await.unwrap();
    assert_eq!(consent.consent.granted.map(|g| g.tenant_id), Some(crate::harness::NW.to_owned()));
}

/// The `state` parameter of the URL a start workflow sent the browser to.
fn state_in(url: &str) -> String {
    crate::harness::param(url, "state").unwrap()
}
