//! id_token validation with Microsoft's (the emulator's) real tokens and keys: forged signatures,
//! unknown keys and tokens meant for another app are refused.

use crate::helpers::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::ReasonCode;
use m365_emulator::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET};
use microsoft::{ExposeSecret, IdTokenError, MicrosoftClient, MicrosoftError, parse_callback};
use rsa::pkcs1v15::SigningKey;
use rsa::signature::{SignatureEncoding, Signer};
use serde_json::Value;
use std::time::Duration;

/// Signs in through the pages and redeems the code by hand, returning Microsoft's raw id_token.
async fn raw_id_token(env: &Env, client_id: &str, nonce: &str) -> String {
    let app = app_with(NW, client_id, DEMO_CLIENT_SECRET);
    let req = env.client.authorization_request(&app, REDIRECT, SCOPES, None, None).unwrap();
    // Put our own nonce in, so the test knows what the token carries.
    let mut url = req.url.clone();
    let pairs: Vec<(String, String)> =
        url.query_pairs().into_owned().map(|(k, v)| if k == "nonce" { (k, nonce.to_string()) } else { (k, v) }).collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    let back = testkit::sign_in(url.as_str(), "alice@northwind.test").await.unwrap();
    let cb = parse_callback(back.query()).unwrap();
    let body = raw_token(
        env,
        NW,
        &[
            ("client_id", client_id),
            ("client_secret", DEMO_CLIENT_SECRET),
            ("grant_type", "authorization_code"),
            ("code", cb.code.expose_secret()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", req.pkce_verifier.expose_secret()),
        ],
    )
    .await;
    body["id_token"].as_str().unwrap().to_string()
}

fn part(token: &str, i: usize) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').nth(i).unwrap()).unwrap()).unwrap()
}

fn resign(header: &Value, claims: &Value, key: &rsa::RsaPrivateKey) -> String {
    let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let sig = SigningKey::<sha2::Sha256>::new(key.clone()).sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
}

#[tokio::test]
async fn microsofts_own_id_token_verifies_and_a_copy_signed_by_another_key_does_not() {
    let env = spawn().await;
    let app = app(NW);
    let genuine = raw_id_token(&env, DEMO_CLIENT_ID, "n-genuine").await;
    let id = env.client.validate_id_token(&app, &genuine, Some("n-genuine")).await.unwrap();
    assert_eq!(id.object_id, "6e1f0a00-0000-4000-8000-000000000002");

    let attacker = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let header = part(&genuine, 0);
    let claims = part(&genuine, 1);
    // Same kid as Microsoft's key, different private key.
    let forged = resign(&header, &claims, &attacker);
    let err = env.client.validate_id_token(&app, &forged, Some("n-genuine")).await.unwrap_err();
    assert!(matches!(err, MicrosoftError::IdToken(IdTokenError::Signature)), "{err:?}");
    assert_eq!(err.reason(), ReasonCode::SignInNotVerified);

    // A kid Microsoft never published: one JWKS refetch, then refused.
    let mut h = header.clone();
    h["kid"] = Value::from("attacker-key");
    let err = env.client.validate_id_token(&app, &resign(&h, &claims, &attacker), Some("n-genuine")).await.unwrap_err();
    assert!(matches!(err, MicrosoftError::IdToken(IdTokenError::UnknownKey { .. })), "{err:?}");

    // alg=none with the genuine claims.
    let none = format!("{}.{}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#), genuine.split('.').nth(1).unwrap());
    let err = env.client.validate_id_token(&app, &none, Some("n-genuine")).await.unwrap_err();
    assert!(matches!(err, MicrosoftError::IdToken(IdTokenError::Algorithm(_))), "{err:?}");
    env.emu.shutdown().await;
}

#[tokio::test]
async fn a_genuine_id_token_issued_to_another_app_is_refused_for_its_audience() {
    let env = spawn().await;
    let theirs = raw_id_token(&env, OTHER_CLIENT_ID, "n-1").await;
    // Genuinely signed by Microsoft, but for someone else's client id.
    env.client.validate_id_token(&app_with(NW, OTHER_CLIENT_ID, DEMO_CLIENT_SECRET), &theirs, Some("n-1")).await.unwrap();
    let err = env.client.validate_id_token(&app(NW), &theirs, Some("n-1")).await.unwrap_err();
    assert!(matches!(err, MicrosoftError::IdToken(IdTokenError::Audience { .. })), "{err:?}");
    assert_eq!(err.reason(), ReasonCode::SignInNotVerified);
    env.emu.shutdown().await;
}

#[tokio::test]
async fn a_genuine_id_token_from_another_tenant_is_a_wrong_tenant() {
    let env = spawn().await;
    let northwind_token = raw_id_token(&env, DEMO_CLIENT_ID, "n-2").await;
    // The org configured Fabrikam; a Northwind account's token is genuine but from the wrong tenant.
    let err = env.client.validate_id_token(&app(FB), &northwind_token, Some("n-2")).await.unwrap_err();
    assert!(matches!(err, MicrosoftError::IdToken(IdTokenError::WrongTenant { .. })), "{err:?}");
    assert_eq!(err.reason(), ReasonCode::WrongTenant);
    // A multi-tenant configuration accepts it, checking the issuer against the token's own tenant.
    let id = env.client.validate_id_token(&app("organizations"), &northwind_token, Some("n-2")).await.unwrap();
    assert_eq!(id.tenant_id, NW);
    env.emu.shutdown().await;
}

#[tokio::test]
async fn a_rolled_signing_key_is_fetched_when_its_kid_first_appears() {
    let before = spawn().await;
    let addr = before.emu.local_addr();
    let eager = MicrosoftClient::new(endpoints(&before.emu)).unwrap().with_key_refetch_interval(Duration::ZERO);
    let patient = MicrosoftClient::new(endpoints(&before.emu)).unwrap();
    let old = raw_id_token(&before, DEMO_CLIENT_ID, "n-old").await;
    eager.validate_id_token(&app(NW), &old, Some("n-old")).await.unwrap();
    patient.validate_id_token(&app(NW), &old, Some("n-old")).await.unwrap();
    before.emu.shutdown().await;

    // "Microsoft" comes back on the same address with a new signing key (a key roll).
    let after = spawn_with(|c| c.bind = addr).await;
    let new = raw_id_token(&after, DEMO_CLIENT_ID, "n-new").await;
    assert_ne!(part(&new, 0)["kid"], part(&old, 0)["kid"]);
    let id = eager.validate_id_token(&app(NW), &new, Some("n-new")).await.unwrap();
    assert_eq!(id.tenant_id, NW);
    // Within the refetch interval the unknown kid is refused without asking Microsoft again.
    let err = patient.validate_id_token(&app(NW), &new, Some("n-new")).await.unwrap_err();
    assert!(matches!(err, MicrosoftError::IdToken(IdTokenError::UnknownKey { .. })), "{err:?}");
    after.emu.shutdown().await;
}
