//! Certificate credentials (`private_key_jwt`, MICROSOFT.md §1.4): every token request proves the
//! app with a client assertion signed by the certificate's key instead of a client secret.

use crate::helpers::*;
use crate::tokens::sign_in;
use domain::{ReasonCode, WhoMustAct};
use m365_emulator::{CertificateFixture, DEMO_CLIENT_ID, EmulatorConfig};
use microsoft::{AppRegistration, CertificateCredential, ClientCredential, ExposeSecret, MailboxRef, parse_callback};
use std::sync::{Arc, OnceLock};

type Generated = (String, String, CertificateFixture);

/// The certificate registered on the demo app (RSA key generation is slow: once per binary).
fn registered() -> &'static Generated {
    static CERT: OnceLock<Generated> = OnceLock::new();
    CERT.get_or_init(|| m365_emulator::testkit::generate_certificate("Intelligence360 test", "2035-01-01T00:00:00Z"))
}

/// A well-formed certificate that was never uploaded to the app registration.
fn unregistered() -> &'static Generated {
    static CERT: OnceLock<Generated> = OnceLock::new();
    CERT.get_or_init(|| m365_emulator::testkit::generate_certificate("Not uploaded", "2035-01-01T00:00:00Z"))
}

fn certificate_app(tenant: &str, cert: &Generated) -> AppRegistration {
    let credential = CertificateCredential::from_pem(&cert.0, &cert.1).unwrap();
    AppRegistration::with_credential(tenant, DEMO_CLIENT_ID, ClientCredential::Certificate(Arc::new(credential))).unwrap()
}

/// The demo app with `fixture` among its certificate credentials.
fn register(config: &mut EmulatorConfig, fixture: CertificateFixture) {
    let app = config.fixture.apps.iter_mut().find(|a| a.client_id == DEMO_CLIENT_ID).unwrap();
    app.certificates.push(fixture);
}

#[tokio::test]
async fn a_registered_certificate_gets_app_only_tokens_and_redeems_codes_and_refresh_tokens() {
    let env = spawn_with(|c| register(c, registered().2.clone())).await;
    env.emu.grant_admin_consent(NW, DEMO_CLIENT_ID, &[], &["User.Read.All", "Mail.Read"]).unwrap();

    // Client credentials, twice: each request carries a new assertion (a replayed jti is refused).
    let app = certificate_app(NW, registered());
    for _ in 0..2 {
        let token = env.client.client_credentials(&app).await.unwrap();
        assert!(token.expires_at > time::OffsetDateTime::now_utc() + time::Duration::minutes(50));
        let users = env.client.search_users(&token.access_token, "Alice", 5).await.unwrap();
        assert_eq!(users.len(), 1, "the app-only token works at Graph");
    }
    // A verified domain as the tenant: the assertion's audience is that request's token URL.
    env.client.client_credentials(&certificate_app("northwind.test", registered())).await.unwrap();

    // Authorization code + PKCE, then a refresh, all proven with the certificate.
    let req = env.client.authorization_request(&app, REDIRECT, SCOPES, Some("alice@northwind.test"), None).unwrap();
    let back = testkit::sign_in(req.url.as_str(), "alice@northwind.test").await.unwrap();
    let cb = parse_callback(back.query()).unwrap();
    let signed_in = env.client.exchange_code(&app, &cb.code, REDIRECT, &req.pkce_verifier, &req.nonce).await.unwrap();
    assert_eq!(signed_in.identity.tenant_id, NW);
    assert_eq!(signed_in.identity.username.as_deref(), Some("alice@northwind.test"));
    env.client.probe_mailbox(&signed_in.tokens.access_token, &MailboxRef::Me).await.unwrap();
    let rt = signed_in.tokens.refresh_token.unwrap();
    let refreshed = env.client.refresh(&app, &rt, None).await.unwrap();
    assert_ne!(refreshed.refresh_token.unwrap().expose_secret(), rt.expose_secret());

    // A refresh token from a secret-based sign-in is the app's too: the certificate refreshes it.
    let from_secret = sign_in(&env, "bob@northwind.test", SCOPES).await.tokens.refresh_token.unwrap();
    env.client.refresh(&app, &from_secret, None).await.unwrap();
    env.emu.shutdown().await;
}

#[tokio::test]
async fn a_certificate_not_registered_on_the_app_is_refused_with_microsofts_aadsts700027() {
    let env = spawn_with(|c| register(c, registered().2.clone())).await;
    let stranger = certificate_app(NW, unregistered());
    let thumbprint = &unregistered().2.thumbprint;

    let err = env.client.client_credentials(&stranger).await.unwrap_err();
    let aad = err.aad().unwrap_or_else(|| panic!("Microsoft's OAuth error: {err:?}"));
    assert_eq!(aad.error, "invalid_client");
    assert!(aad.has_code(700027), "{aad:?}");
    assert!(aad.error_description.starts_with("AADSTS700027:"), "{}", aad.error_description);
    // Microsoft names the thumbprint the client sent: the x5t#S256 header arrived as computed.
    assert!(aad.error_description.contains(thumbprint.as_str()), "{}", aad.error_description);
    assert!(aad.trace_id.is_some() && aad.correlation_id.is_some());
    assert_eq!(err.reason(), ReasonCode::ClientSecretInvalid);
    assert_eq!(err.who_must_act(), WhoMustAct::PlatformAdmin);
    assert!(err.to_string().contains("AADSTS700027"), "{err}");

    // The same refusal when redeeming an authorization code.
    let req = env.client.authorization_request(&stranger, REDIRECT, SCOPES, Some("alice@northwind.test"), None).unwrap();
    let back = testkit::sign_in(req.url.as_str(), "alice@northwind.test").await.unwrap();
    let cb = parse_callback(back.query()).unwrap();
    let err = env.client.exchange_code(&stranger, &cb.code, REDIRECT, &req.pkce_verifier, &req.nonce).await.unwrap_err();
    assert!(err.aad().unwrap().has_code(700027), "{err:?}");
    assert_eq!(err.reason(), ReasonCode::ClientSecretInvalid);

    // The registered certificate still works in the same emulator.
    env.client.client_credentials(&certificate_app(NW, registered())).await.unwrap();
    env.emu.shutdown().await;
}

#[tokio::test]
async fn an_expired_certificate_credential_is_refused_too() {
    let mut expired = registered().2.clone();
    expired.expires = "2025-01-01T00:00:00Z".to_string();
    let env = spawn_with(|c| register(c, expired)).await;
    let err = env.client.client_credentials(&certificate_app(NW, registered())).await.unwrap_err();
    let aad = err.aad().unwrap();
    assert!(aad.has_code(700027), "{aad:?}");
    assert!(aad.error_description.contains("expired"), "{}", aad.error_description);
    assert_eq!(err.reason(), ReasonCode::ClientSecretInvalid);
    env.emu.shutdown().await;
}
