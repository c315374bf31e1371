//! The authorization-code + PKCE sign-in, end to end through the emulator's pages.

use crate::helpers::*;
use domain::ReasonCode;
use microsoft::{ExposeSecret, IdTokenError, MicrosoftError, Prompt, parse_callback};

#[tokio::test]
async fn auth_code_with_pkce_round_trip_yields_a_verified_identity_and_working_tokens() {
    let env = spawn().await;
    let app = app(NW);
    let req = env.client.authorization_request(&app, REDIRECT, SCOPES, Some("alice@northwind.test"), None).unwrap();
    let back = testkit::sign_in(req.url.as_str(), "alice@northwind.test").await.unwrap();
    let cb = parse_callback(back.query()).unwrap();
    assert!(cb.state_matches(&req.state));

    let signed_in = env.client.exchange_code(&app, &cb.code, REDIRECT, &req.pkce_verifier, &req.nonce).await.unwrap();
    let id = &signed_in.identity;
    assert_eq!(id.tenant_id, NW);
    assert_eq!(id.object_id, "6e1f0a00-0000-4000-8000-000000000002");
    assert_eq!(id.username.as_deref(), Some("alice@northwind.test"));
    assert_eq!(id.name.as_deref(), Some("Alice Anders"));
    assert_eq!(id.email.as_deref(), Some("alice@northwind.test"));
    let t = &signed_in.tokens;
    assert!(t.refresh_token.is_some(), "offline_access gives a refresh token");
    assert!(t.granted_scopes.iter().any(|s| s == "https://graph.microsoft.com/Mail.Read"), "{:?}", t.granted_scopes);
    let left = t.expires_at - time::OffsetDateTime::now_utc();
    assert!(left > time::Duration::minutes(50) && left <= time::Duration::hours(1), "{left}");
    assert!(!t.expires_within(time::Duration::minutes(5)));

    // The access token works at Graph, and Graph's id is the id_token's oid.
    let me = env.client.me(&t.access_token).await.unwrap();
    assert_eq!(me.id, id.object_id);
    assert_eq!(me.user_principal_name.as_deref(), Some("alice@northwind.test"));
    env.emu.shutdown().await;
}

#[tokio::test]
async fn a_verified_domain_works_as_the_configured_tenant() {
    let env = spawn().await;
    let app = app("northwind.test");
    assert_eq!(env.client.resolve_tenant_id(&app.tenant).await.unwrap().as_deref(), Some(NW));
    let req = env.client.authorization_request(&app, REDIRECT, SCOPES, None, None).unwrap();
    assert!(req.url.path().starts_with("/northwind.test/oauth2/v2.0/authorize"));
    let back = testkit::sign_in(req.url.as_str(), "bob@northwind.test").await.unwrap();
    let cb = parse_callback(back.query()).unwrap();
    let s = env.client.exchange_code(&app, &cb.code, REDIRECT, &req.pkce_verifier, &req.nonce).await.unwrap();
    assert_eq!(s.identity.tenant_id, NW);
    assert_eq!(s.identity.object_id, "6e1f0a00-0000-4000-8000-000000000003");
    // An unknown domain is refused by Microsoft and reads as "check the tenant id".
    let err = env.client.resolve_tenant_id(&microsoft::Tenant::parse("nowhere.test").unwrap()).await.unwrap_err();
    assert_eq!(err.reason(), ReasonCode::AppNotFound);
    env.emu.shutdown().await;
}

#[tokio::test]
async fn a_callback_from_another_sign_in_fails_the_state_check() {
    let env = spawn().await;
    let app = app(NW);
    let mine = env.client.authorization_request(&app, REDIRECT, SCOPES, None, None).unwrap();
    let theirs = env.client.authorization_request(&app, REDIRECT, SCOPES, None, None).unwrap();
    let back = testkit::sign_in(theirs.url.as_str(), "carol@northwind.test").await.unwrap();
    let cb = parse_callback(back.query()).unwrap();
    assert!(!cb.state_matches(&mine.state), "someone else's callback must not pass for mine");
    assert!(cb.state_matches(&theirs.state));
    env.emu.shutdown().await;
}

#[tokio::test]
async fn a_nonce_other_than_the_one_sent_is_rejected() {
    let env = spawn().await;
    let app = app(NW);
    let req = env.client.authorization_request(&app, REDIRECT, SCOPES, None, None).unwrap();
    let back = testkit::sign_in(req.url.as_str(), "carol@northwind.test").await.unwrap();
    let cb = parse_callback(back.query()).unwrap();
    let err = env.client.exchange_code(&app, &cb.code, REDIRECT, &req.pkce_verifier, "a-replayed-nonce").await.unwrap_err();
    assert!(matches!(err, MicrosoftError::IdToken(IdTokenError::Nonce)), "{err:?}");
    assert_eq!(err.reason(), ReasonCode::SignInNotVerified);
    env.emu.shutdown().await;
}

#[tokio::test]
async fn a_reused_code_or_a_wrong_verifier_is_refused_and_reads_as_start_again() {
    let env = spawn().await;
    let app = app(NW);
    let browser = Browser::new().unwrap();
    let req = env.client.authorization_request(&app, REDIRECT, SCOPES, None, None).unwrap();
    let cb = parse_callback(
        &browser.sign_in(req.url.as_str(), &testkit::SignIn::new("bob@northwind.test")).await.unwrap().callback_query().unwrap(),
    )
    .unwrap();
    env.client.exchange_code(&app, &cb.code, REDIRECT, &req.pkce_verifier, &req.nonce).await.unwrap();
    let again = env.client.exchange_code(&app, &cb.code, REDIRECT, &req.pkce_verifier, &req.nonce).await.unwrap_err();
    let aad = again.aad().expect("Microsoft's error");
    assert!(aad.has_code(54005), "{aad:?}");
    assert_eq!(aad.error, "invalid_grant");
    assert!(aad.trace_id.is_some() && aad.correlation_id.is_some());
    assert_eq!(again.reason(), ReasonCode::SignInNotVerified);

    // SSO: the second sign-in comes straight back; the code is bound to the first verifier.
    let req2 = env.client.authorization_request(&app, REDIRECT, SCOPES, None, None).unwrap();
    let cb2 = parse_callback(
        &browser.sign_in(req2.url.as_str(), &testkit::SignIn::new("bob@northwind.test")).await.unwrap().callback_query().unwrap(),
    )
    .unwrap();
    let err = env.client.exchange_code(&app, &cb2.code, REDIRECT, &req.pkce_verifier, &req2.nonce).await.unwrap_err();
    assert!(err.aad().unwrap().has_code(501481), "{err:?}");
    assert_eq!(err.reason(), ReasonCode::SignInNotVerified);
    env.emu.shutdown().await;
}

#[tokio::test]
async fn signing_in_from_another_organization_is_a_wrong_tenant() {
    let env = spawn().await;
    // A Fabrikam account at Northwind's sign-in: AADSTS50020 on the redirect.
    let req = env.client.authorization_request(&app(NW), REDIRECT, SCOPES, None, None).unwrap();
    let back = testkit::sign_in(req.url.as_str(), "erin@fabrikam.test").await.unwrap();
    let err = parse_callback(back.query()).unwrap_err();
    assert_eq!(err.error_codes, vec![50020]);
    assert_eq!(err.reason, ReasonCode::WrongTenant);
    assert!(err.state_matches(&req.state));

    // A Northwind code redeemed at Fabrikam's token endpoint: AADSTS700005.
    let req = env.client.authorization_request(&app(NW), REDIRECT, SCOPES, None, None).unwrap();
    let back = testkit::sign_in(req.url.as_str(), "alice@northwind.test").await.unwrap();
    let cb = parse_callback(back.query()).unwrap();
    let err = env.client.exchange_code(&app(FB), &cb.code, REDIRECT, &req.pkce_verifier, &req.nonce).await.unwrap_err();
    assert!(err.aad().unwrap().has_code(700005), "{err:?}");
    assert_eq!(err.reason(), ReasonCode::WrongTenant);
    env.emu.shutdown().await;
}

#[tokio::test]
async fn multi_factor_sign_in_completes_and_prompt_none_without_a_session_needs_interaction() {
    let env = spawn().await;
    let app = app(NW);
    let req = env.client.authorization_request(&app, REDIRECT, SCOPES, None, None).unwrap();
    let back = testkit::sign_in(req.url.as_str(), "mfa@northwind.test").await.unwrap();
    let cb = parse_callback(back.query()).unwrap();
    let s = env.client.exchange_code(&app, &cb.code, REDIRECT, &req.pkce_verifier, &req.nonce).await.unwrap();
    assert_eq!(s.identity.username.as_deref(), Some("mfa@northwind.test"));

    let silent = env.client.authorization_request(&app, REDIRECT, SCOPES, None, Some(Prompt::None)).unwrap();
    let page = Browser::new().unwrap().get(silent.url.as_str()).await.unwrap();
    let err = parse_callback(&page.callback_query().unwrap()).unwrap_err();
    assert_eq!(err.error, "login_required");
    assert_eq!(err.reason, ReasonCode::InteractionRequired);
    env.emu.shutdown().await;
}

#[tokio::test]
async fn declining_consent_comes_back_as_consent_declined_for_the_owner() {
    let env = spawn().await;
    let req = env.client.authorization_request(&app(NW), REDIRECT, SCOPES, None, None).unwrap();
    let page = Browser::new()
        .unwrap()
        .sign_in(req.url.as_str(), &testkit::SignIn::new("carol@northwind.test").consent(Consent::Cancel))
        .await
        .unwrap();
    let err = parse_callback(&page.callback_query().unwrap()).unwrap_err();
    assert_eq!(err.reason, ReasonCode::ConsentDeclined);
    assert_eq!(err.who_must_act(), domain::WhoMustAct::Owner);
    assert_eq!(err.error_codes, vec![65004]);
    assert_eq!(err.error_subcode.as_deref(), Some("cancel"));
    assert!(err.state_matches(&req.state));
    // Nothing secret came back.
    assert!(!page.callback_query().unwrap().contains(req.pkce_verifier.expose_secret()));
    env.emu.shutdown().await;
}

#[tokio::test]
async fn a_multi_tenant_configuration_signs_in_users_of_any_organization() {
    let env = spawn().await;
    let any = app("organizations");
    // Fabrikam forbids user consent, so consent for the organization first (tenant-wide grant).
    env.emu
        .grant_admin_consent(
            FB,
            m365_emulator::DEMO_CLIENT_ID,
            &["openid", "profile", "email", "offline_access", "User.Read", "Mail.Read", "Mail.Read.Shared", "Calendars.ReadWrite"],
            &[],
        )
        .unwrap();
    for (email, tid) in [("alice@northwind.test", NW), ("frank@fabrikam.test", FB)] {
        let req = env.client.authorization_request(&any, REDIRECT, SCOPES, Some(email), None).unwrap();
        assert!(req.url.path().starts_with("/organizations/"));
        let back = testkit::sign_in(req.url.as_str(), email).await.unwrap();
        let cb = parse_callback(back.query()).unwrap();
        let s = env.client.exchange_code(&any, &cb.code, REDIRECT, &req.pkce_verifier, &req.nonce).await.unwrap();
        assert_eq!((s.identity.tenant_id.as_str(), s.identity.username.as_deref()), (tid, Some(email)));
    }
    env.emu.shutdown().await;
}

#[tokio::test]
async fn redeeming_with_another_redirect_uri_than_the_authorize_one_is_refused() {
    let env = spawn().await;
    let app = app(NW);
    let req = env.client.authorization_request(&app, REDIRECT, SCOPES, None, None).unwrap();
    let back = testkit::sign_in(req.url.as_str(), "alice@northwind.test").await.unwrap();
    let cb = parse_callback(back.query()).unwrap();
    let err = env.client.exchange_code(&app, &cb.code, ADMIN_REDIRECT, &req.pkce_verifier, &req.nonce).await.unwrap_err();
    assert_eq!(err.aad().unwrap().error, "invalid_grant");
    assert_eq!(err.reason(), ReasonCode::SignInNotVerified);
    env.emu.shutdown().await;
}

#[tokio::test]
async fn a_guest_and_a_personal_account_are_refused_in_plain_words() {
    let mut guest = String::new();
    let env = spawn_with(|c| {
        guest = c.fixture.add_guest(NW, "erin@fabrikam.test").expect("erin is a Fabrikam member");
        c.fixture.add_personal_account("jo@outlook.test", "Jo Personal");
    })
    .await;

    // Erin, invited into Northwind, signs in at Northwind's authority: the token's `tid` is
    // Northwind's, but her home (and her mailbox) is Fabrikam.
    let req = env.client.authorization_request(&app(NW), REDIRECT, SCOPES, None, None).unwrap();
    let cb = parse_callback(testkit::sign_in(req.url.as_str(), &guest).await.unwrap().query()).unwrap();
    let err = env.client.exchange_code(&app(NW), &cb.code, REDIRECT, &req.pkce_verifier, &req.nonce).await.unwrap_err();
    assert!(matches!(&err, MicrosoftError::IdToken(IdTokenError::GuestAccount { home, .. }) if home.contains(FB)), "{err:?}");
    assert_eq!(err.reason(), ReasonCode::GuestAccount);
    assert!(err.reason().explained().contains("guest"), "{}", err.reason().explained());

    // A personal Microsoft account through `common` (a multi-tenant set-up checks no tenant).
    let common = app("common");
    let req = env.client.authorization_request(&common, REDIRECT, SCOPES, None, None).unwrap();
    let cb = parse_callback(testkit::sign_in(req.url.as_str(), "jo@outlook.test").await.unwrap().query()).unwrap();
    let err = env.client.exchange_code(&common, &cb.code, REDIRECT, &req.pkce_verifier, &req.nonce).await.unwrap_err();
    assert!(matches!(err, MicrosoftError::IdToken(IdTokenError::PersonalAccount)), "{err:?}");
    assert_eq!(err.reason(), ReasonCode::PersonalAccount);
    assert!(err.reason().message().contains("personal Microsoft account"));

    // `organizations` does not let a personal account in at all.
    let orgs = app("organizations");
    let req = env.client.authorization_request(&orgs, REDIRECT, SCOPES, None, None).unwrap();
    let back = testkit::sign_in(req.url.as_str(), "jo@outlook.test").await.unwrap();
    assert_eq!(parse_callback(back.query()).unwrap_err().error_codes, vec![50020]);
    env.emu.shutdown().await;
}
