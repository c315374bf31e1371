//! Refresh tokens (rotation, revocation, expiry) and client credentials (the settings page's test
//! token request).

use crate::helpers::*;
use domain::{ReasonCode, WhoMustAct};
use m365_emulator::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_EXPIRED_SECRET};
use microsoft::{ExposeSecret, SignIn, parse_callback};
use std::time::Duration;

pub async fn sign_in(env: &Env, email: &str, scopes: &str) -> SignIn {
    let app = app(if email.ends_with("fabrikam.test") { FB } else { NW });
    let req = env.client.authorization_request(&app, REDIRECT, scopes, Some(email), None).unwrap();
    let back = testkit::sign_in(req.url.as_str(), email).await.unwrap();
    let cb = parse_callback(back.query()).unwrap();
    env.client.exchange_code(&app, &cb.code, REDIRECT, &req.pkce_verifier, &req.nonce).await.unwrap()
}

#[tokio::test]
async fn token_lifetimes_and_short_scope_names_are_taken_as_microsoft_sends_them() {
    // Real tokens live 60–90 minutes and `scope` may use short names (`Mail.Read profile openid`).
    let env = spawn_with(|c| c.protocol = m365_emulator::ProtocolOptions::realistic()).await;
    let app = app(NW);
    let first = sign_in(&env, "alice@northwind.test", SCOPES).await.tokens;
    let mut rt = first.refresh_token.clone().unwrap();
    let mut lifetimes = std::collections::BTreeSet::new();
    for _ in 0..6 {
        let t = env.client.refresh(&app, &rt, None).await.unwrap();
        let lifetime = (t.expires_at - time::OffsetDateTime::now_utc()).whole_seconds();
        assert!((3590..=5400).contains(&lifetime), "expires_at follows expires_in: {lifetime}s");
        lifetimes.insert(lifetime / 10);
        assert!(t.granted_scopes.iter().any(|s| s == "Mail.Read"), "short names as sent: {:?}", t.granted_scopes);
        for needed in ["Mail.Read", "Calendars.ReadWrite", "User.Read"] {
            assert!(domain::permissions::is_granted(&t.granted_scopes, needed), "{needed} in {:?}", t.granted_scopes);
        }
        rt = t.refresh_token.unwrap();
    }
    assert!(lifetimes.len() > 1, "no fixed lifetime: {lifetimes:?}");
    env.emu.shutdown().await;
}

#[tokio::test]
async fn refresh_rotates_the_refresh_token_and_the_old_one_keeps_working_until_revoked() {
    let env = spawn().await;
    let app = app(NW);
    let first = sign_in(&env, "alice@northwind.test", SCOPES).await.tokens;
    let rt1 = first.refresh_token.clone().unwrap();

    let second = env.client.refresh(&app, &rt1, None).await.unwrap();
    let rt2 = second.refresh_token.clone().expect("a new refresh token every time");
    assert_ne!(rt2.expose_secret(), rt1.expose_secret());
    assert_ne!(second.access_token.expose_secret(), first.access_token.expose_secret());
    assert!(second.granted_scopes.iter().any(|s| s.ends_with("/Mail.Read")));
    env.client.me(&second.access_token).await.unwrap();

    // The old one is not revoked by rotation (§1.4): still usable.
    env.client.refresh(&app, &rt1, None).await.unwrap();
    // A narrower scope is allowed.
    let narrow = env.client.refresh(&app, &rt2, Some("https://graph.microsoft.com/User.Read offline_access")).await.unwrap();
    assert!(narrow.refresh_token.is_some());

    // Admin "revoke sessions": every refresh token of alice is now dead.
    env.emu.revoke_refresh_tokens("alice@northwind.test").unwrap();
    for rt in [&rt1, &rt2] {
        let err = env.client.refresh(&app, rt, None).await.unwrap_err();
        assert!(err.aad().unwrap().has_code(50173), "{err:?}");
        assert_eq!(err.reason(), ReasonCode::RefreshTokenRevoked);
        assert_eq!(err.who_must_act(), WhoMustAct::Owner);
    }
    // A token that never existed is unusable too.
    let err = env.client.refresh(&app, &secret("1.AXnot-a-token"), None).await.unwrap_err();
    assert_eq!(err.reason(), ReasonCode::RefreshTokenRevoked);
    env.emu.shutdown().await;
}

#[tokio::test]
async fn refresh_failures_say_why_inactivity_mfa_or_lost_consent() {
    let env = spawn().await;
    let app = app(NW);
    let bob = sign_in(&env, "bob@northwind.test", SCOPES).await.tokens.refresh_token.unwrap();
    let carol = sign_in(&env, "carol@northwind.test", SCOPES).await.tokens.refresh_token.unwrap();
    let alice = sign_in(&env, "alice@northwind.test", SCOPES).await.tokens.refresh_token.unwrap();

    env.emu.age_refresh_tokens(Some("bob@northwind.test"), Duration::from_secs(91 * 24 * 3600));
    let err = env.client.refresh(&app, &bob, None).await.unwrap_err();
    assert!(err.aad().unwrap().has_code(700082));
    assert_eq!(err.aad().unwrap().suberror.as_deref(), Some("bad_token"));
    assert_eq!(err.reason(), ReasonCode::RefreshTokenExpired);

    env.emu.set_mfa_required("carol@northwind.test", true).unwrap();
    let err = env.client.refresh(&app, &carol, None).await.unwrap_err();
    assert!(err.aad().unwrap().has_code(50076));
    assert_eq!(err.reason(), ReasonCode::InteractionRequired);

    env.emu.revoke_consent(NW, Some("alice@northwind.test"), DEMO_CLIENT_ID).unwrap();
    let err = env.client.refresh(&app, &alice, None).await.unwrap_err();
    assert!(err.aad().unwrap().has_code(65001));
    assert_eq!(err.reason(), ReasonCode::ConsentRequired);
    env.emu.shutdown().await;
}

#[tokio::test]
async fn client_credentials_validates_the_secret_on_the_settings_page() {
    let env = spawn().await;
    let token = env.client.client_credentials(&app(NW)).await.unwrap();
    assert!(!token.access_token.expose_secret().is_empty());
    assert!(token.expires_at > time::OffsetDateTime::now_utc() + time::Duration::minutes(50));
    assert!(!format!("{token:?}").contains(token.access_token.expose_secret()), "Debug redacts the token");

    let wrong = env.client.client_credentials(&app_with(NW, DEMO_CLIENT_ID, "not-the-secret")).await.unwrap_err();
    assert!(wrong.aad().unwrap().has_code(7000215), "{wrong:?}");
    assert_eq!(wrong.reason(), ReasonCode::ClientSecretInvalid);
    assert_eq!(wrong.who_must_act(), WhoMustAct::PlatformAdmin);
    assert!(!format!("{wrong:?}").contains("not-the-secret"));

    let expired = env.client.client_credentials(&app_with(NW, DEMO_CLIENT_ID, DEMO_EXPIRED_SECRET)).await.unwrap_err();
    assert!(expired.aad().unwrap().has_code(7000222));
    assert_eq!(expired.reason(), ReasonCode::ClientSecretExpired);

    // A secret that expires later (control API) flips from valid to expired.
    env.emu.expire_client_secret(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET).unwrap();
    assert_eq!(env.client.client_credentials(&app(NW)).await.unwrap_err().reason(), ReasonCode::ClientSecretExpired);

    let unknown_app = env.client.client_credentials(&app_with(NW, "99999999-2222-4333-8444-555555555555", "x")).await.unwrap_err();
    assert_eq!(unknown_app.reason(), ReasonCode::AppNotFound);
    env.emu.shutdown().await;
}

#[tokio::test]
async fn client_credentials_in_a_tenant_that_never_consented_is_app_not_found_and_needs_a_tenant() {
    let env = spawn().await;
    let err = env.client.client_credentials(&app(FB)).await.unwrap_err();
    assert!(err.aad().unwrap().has_code(700016), "{err:?}");
    assert_eq!(err.reason(), ReasonCode::AppNotFound);
    // `organizations` cannot be used for app-only tokens: the admin must enter the tenant id.
    let err = env.client.client_credentials(&app("organizations")).await.unwrap_err();
    assert_eq!(err.reason(), ReasonCode::AppNotFound, "{err:?}");
    env.emu.shutdown().await;
}
