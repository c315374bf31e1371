//! Starting and completing sign-ins and admin consent: refusals end on a page that says why.

use crate::harness::spawn;
use domain::Refusal;
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
    let state = url::Url::parse(&url).unwrap().query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();

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
    env.enable().await;
    let url = env.o365.start_admin_consent(&env.admin).await.unwrap();
    let state = url::Url::parse(&url).unwrap().query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    let e = env.o365.complete_sign_in(Some(&env.admin), &format!("code=x&state={state}")).await.unwrap_err();
    assert!(matches!(e, Error::Refused(Refusal::Expired)), "{e}");
}

#[tokio::test]
async fn a_declined_consent_comes_back_with_microsofts_words() {
    let env = spawn().await;
    env.enable().await;
    let url = env.o365.start_sign_in(&env.member, "connect").await.unwrap();
    let state = url::Url::parse(&url).unwrap().query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    let query = format!("error=access_denied&error_description=AADSTS65004%3A+User+declined+to+consent&state={state}");
    let e = env.o365.complete_sign_in(Some(&env.member), &query).await.unwrap_err();
    assert!(matches!(e, Error::Microsoft { .. }), "{e}");
    assert!(e.result_page().starts_with("/connect/result?reason="), "{}", e.result_page());
}
