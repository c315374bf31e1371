//! Identity platform: discovery, every grant and its failures, consent, admin consent, error shapes.

use crate::helpers::*;
use m365_emulator::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_EXPIRED_SECRET, DEMO_PASSWORD};
use serde_json::Value;
use std::time::Duration;

/// §1.5: field order and formats of the token error JSON, compared with the real sample.
fn assert_aad_error_shape(body: &Value, error: &str, code: u32, suberror: Option<&str>) {
    let text = body.to_string();
    let obj = body.as_object().expect("object");
    let mut expected = vec!["correlation_id", "error", "error_codes", "error_description", "error_uri", "timestamp", "trace_id"];
    if suberror.is_some() {
        expected.push("suberror");
    }
    expected.sort();
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, expected, "{text}");
    assert_eq!(body["error"], error, "{text}");
    assert_eq!(body["error_codes"], serde_json::json!([code]));
    let ts = body["timestamp"].as_str().expect("timestamp");
    assert_eq!(ts.len(), "2025-02-12 15:57:00Z".len(), "{ts}");
    assert!(ts.ends_with('Z') && &ts[10..11] == " ", "{ts}");
    let trace = body["trace_id"].as_str().expect("trace");
    let corr = body["correlation_id"].as_str().expect("corr");
    assert!(uuid::Uuid::parse_str(trace).is_ok() && uuid::Uuid::parse_str(corr).is_ok());
    let desc = body["error_description"].as_str().expect("description");
    assert!(desc.starts_with(&format!("AADSTS{code}: ")), "{desc}");
    assert!(desc.ends_with(&format!("\r\nTrace ID: {trace}\r\nCorrelation ID: {corr}\r\nTimestamp: {ts}")), "{desc:?}");
    assert_eq!(body["error_uri"], format!("https://login.microsoftonline.com/error?code={code}"));
    assert_eq!(body["suberror"].as_str(), suberror);
}

/// The raw text keeps the sample's field order: error, error_description, error_codes, timestamp,
/// trace_id, correlation_id, error_uri, suberror.
fn assert_aad_field_order(text: &str) {
    let pos = |k: &str| text.find(&format!("\"{k}\":")).unwrap_or(usize::MAX);
    let order = ["error", "error_description", "error_codes", "timestamp", "trace_id", "correlation_id", "error_uri"];
    for w in order.windows(2) {
        assert!(pos(w[0]) < pos(w[1]), "{} before {} in {text}", w[0], w[1]);
    }
}

#[tokio::test]
async fn discovery_and_jwks_point_at_the_emulator_and_verify_id_tokens() {
    let t = spawn().await;
    let base = t.emu.base_url();
    let d: Value = t.http.get(format!("{base}/{NW}/v2.0/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(d["authorization_endpoint"], format!("{base}/{NW}/oauth2/v2.0/authorize"));
    assert_eq!(d["token_endpoint"], format!("{base}/{NW}/oauth2/v2.0/token"));
    assert_eq!(d["jwks_uri"], format!("{base}/{NW}/discovery/v2.0/keys"));
    assert_eq!(d["issuer"], format!("{base}/{NW}/v2.0"));
    assert_eq!(d["subject_types_supported"], serde_json::json!(["pairwise"]));
    let common: Value =
        t.http.get(format!("{base}/common/v2.0/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(common["issuer"], format!("{base}/{{tenantid}}/v2.0"));
    let jwks: Value = t.http.get(format!("{base}/{NW}/discovery/v2.0/keys")).send().await.unwrap().json().await.unwrap();
    let key = &jwks["keys"][0];
    assert_eq!((key["kty"].as_str(), key["use"].as_str(), key["e"].as_str()), (Some("RSA"), Some("sig"), Some("AQAB")));

    // Verify an id_token's RS256 signature with the published key.
    let tokens = user_tokens(&t, "alice@northwind.test", SCOPES).await;
    let id = tokens["id_token"].as_str().unwrap();
    let parts: Vec<&str> = id.split('.').collect();
    use base64::Engine;
    use rsa::signature::Verifier;
    let dec = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).unwrap();
    let header: Value = serde_json::from_slice(&dec(parts[0])).unwrap();
    assert_eq!((header["alg"].as_str(), header["typ"].as_str()), (Some("RS256"), Some("JWT")));
    assert_eq!(header["kid"], key["kid"]);
    let n = rsa::BigUint::from_bytes_be(&dec(key["n"].as_str().unwrap()));
    let e = rsa::BigUint::from_bytes_be(&dec(key["e"].as_str().unwrap()));
    let vk = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(rsa::RsaPublicKey::new(n, e).unwrap());
    let sig = rsa::pkcs1v15::Signature::try_from(dec(parts[2]).as_slice()).unwrap();
    vk.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig).expect("id_token signature verifies");
    t.emu.shutdown().await;
}

#[tokio::test]
async fn authorization_code_with_pkce_s256_issues_tokens_with_the_real_claim_set() {
    let t = spawn().await;
    let b = Browser::new(&t);
    let url = b.authorize_url(NW, &[("nonce", "n-42"), ("login_hint", "alice@northwind.test")]);
    let page = b.get(&url).await;
    assert!(page.body.contains("value=\"alice@northwind.test\""), "login_hint prefills #email");
    assert!(page.body.contains("id=\"email\"") && page.body.contains("id=\"password\"") && page.body.contains(">Sign in<"));
    let flow = flow_id(&page.body);
    let consent =
        b.post(NW, &[("flow", &flow), ("email", "alice@northwind.test"), ("password", DEMO_PASSWORD), ("action", "signin")]).await;
    // Consent page in the user-consent wording (§2).
    assert!(consent.body.contains("Permissions requested"));
    assert!(consent.body.contains("Read your mail") && consent.body.contains("Allows the app to read email in your mailbox."));
    assert!(consent.body.contains("Have full access to your calendars"));
    assert!(consent.body.contains("Maintain access to data you have given it access to"));
    assert!(consent.body.contains(">Accept<") && consent.body.contains(">Cancel<"));
    assert!(!consent.body.contains("consent-org"), "no organization checkbox for non-admins");
    let done = b.post(NW, &[("flow", &flow_id(&consent.body)), ("action", "accept")]).await;
    let location = done.location.expect("redirect");
    assert!(location.starts_with(&format!("{REDIRECT}?code=")), "{location}");
    let q = query_of(&location);
    assert_eq!(q["state"], "st-123");
    assert!(uuid::Uuid::parse_str(&q["session_state"]).is_ok());

    let (status, tokens) = redeem(&t, NW, &q["code"]).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3599);
    assert!(tokens["ext_expires_in"].is_number());
    assert!(tokens["refresh_token"].is_string() && tokens["access_token"].is_string());
    assert!(tokens["scope"].as_str().unwrap().contains("https://graph.microsoft.com/Mail.Read"));
    let c = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(c["aud"], DEMO_CLIENT_ID);
    assert_eq!(c["iss"], format!("{}/{NW}/v2.0", t.emu.base_url()));
    assert_eq!(c["tid"], NW);
    assert_eq!(c["oid"], "6e1f0a00-0000-4000-8000-000000000002");
    assert_eq!(c["preferred_username"], "alice@northwind.test");
    assert_eq!(c["email"], "alice@northwind.test");
    assert_eq!(c["name"], "Alice Anders");
    assert_eq!(c["nonce"], "n-42");
    assert_eq!(c["ver"], "2.0");
    assert!(c["sub"].is_string() && c["sub"] != c["oid"], "sub is pairwise");
    for k in ["iat", "nbf", "exp"] {
        assert!(c[k].is_i64(), "{k}");
    }

    // Single use: a second redemption fails with AADSTS54005.
    let (status, err) = redeem(&t, NW, &q["code"]).await;
    assert_eq!(status, 400);
    assert_aad_error_shape(&err, "invalid_grant", 54005, None);

    // SSO: a second authorize reuses the session and the stored consent → straight back with a code.
    let again = b.get(&b.authorize_url(NW, &[])).await;
    assert_eq!(again.status, 302, "{}", again.body);
    assert!(query_of(again.location.as_deref().unwrap()).contains_key("code"));
    t.emu.shutdown().await;
}

#[tokio::test]
async fn pkce_plain_and_verifier_mismatch_and_redirect_mismatch_and_expiry() {
    let t = spawn().await;
    let b = Browser::new(&t);
    // plain: challenge == verifier.
    let code = b.code_for(NW, "bob@northwind.test", &[("code_challenge", VERIFIER), ("code_challenge_method", "plain")]).await;
    let (s, _) = redeem(&t, NW, &code).await;
    assert_eq!(s, 200);
    // Wrong verifier → 501481.
    let code = b.code_for(NW, "bob@northwind.test", &[]).await;
    let (s, err) = token(
        &t,
        NW,
        &[
            ("client_id", DEMO_CLIENT_ID),
            ("client_secret", DEMO_CLIENT_SECRET),
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", "x".repeat(43).as_str()),
        ],
    )
    .await;
    assert_eq!(s, 400);
    assert_aad_error_shape(&err, "invalid_grant", 501481, None);
    // redirect_uri must be the one used at /authorize.
    let code = b.code_for(NW, "bob@northwind.test", &[]).await;
    let (s, err) = token(
        &t,
        NW,
        &[
            ("client_id", DEMO_CLIENT_ID),
            ("client_secret", DEMO_CLIENT_SECRET),
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", ADMIN_REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(err["error"], "invalid_grant");
    // Codes live 10 minutes → 70008 afterwards.
    let code = b.code_for(NW, "bob@northwind.test", &[]).await;
    t.emu.advance_clock(Duration::from_secs(11 * 60));
    let (s, err) = redeem(&t, NW, &code).await;
    assert_eq!(s, 400);
    assert_aad_error_shape(&err, "invalid_grant", 70008, None);
    // Unregistered redirect URI: error page, no redirect (AADSTS50011).
    let page = b.get(&b.authorize_url(NW, &[("redirect_uri", "http://127.0.0.1:9999/evil")])).await;
    assert_eq!(page.status, 400);
    assert!(page.location.is_none());
    assert!(page.body.contains("AADSTS50011"));
    // A registered URI added by the test (another port) works.
    t.emu.shutdown().await;
    let t = spawn_with(|c| c.fixture.add_redirect_uri("http://127.0.0.1:4010/cb")).await;
    let b = Browser::new(&t);
    let page = b.get(&b.authorize_url(NW, &[("redirect_uri", "http://127.0.0.1:4010/cb")])).await;
    let q = b.sign_in_and_consent(page, "carol@northwind.test").await;
    assert!(q.contains_key("code"));
    t.emu.shutdown().await;
}

#[tokio::test]
async fn authorize_errors_redirect_with_entra_encoding() {
    let t = spawn().await;
    let b = Browser::new(&t);
    // Unknown scope → invalid_scope redirect, lower-case escapes, + for spaces (§1.3).
    let page = b.get(&b.authorize_url(NW, &[("scope", "openid Mail.Teleport")])).await;
    assert_eq!(page.status, 302);
    let loc = page.location.unwrap();
    assert!(loc.starts_with(&format!("{REDIRECT}?error=invalid_scope&error_description=AADSTS70011%3a+")), "{loc}");
    assert!(loc.contains("%0d%0aTrace+ID%3a+"), "{loc}");
    assert!(loc.contains("&error_uri=https%3a%2f%2flogin.microsoftonline.com%2ferror%3fcode%3d70011&state=st-123"), "{loc}");
    // prompt=none without a session → login_required (50058).
    let page = b.get(&b.authorize_url(NW, &[("prompt", "none")])).await;
    let q = query_of(page.location.as_deref().unwrap());
    assert_eq!(q["error"], "login_required");
    assert!(q["error_description"].starts_with("AADSTS50058: "));
    // Cancel on the consent page → access_denied + error_subcode=cancel (AADSTS65004).
    let page = b.get(&b.authorize_url(NW, &[])).await;
    let flow = flow_id(&page.body);
    let consent =
        b.post(NW, &[("flow", &flow), ("email", "carol@northwind.test"), ("password", DEMO_PASSWORD), ("action", "signin")]).await;
    let cancelled = b.post(NW, &[("flow", &flow_id(&consent.body)), ("action", "cancel")]).await;
    let q = query_of(cancelled.location.as_deref().unwrap());
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["error_subcode"], "cancel");
    assert!(q["error_description"].starts_with("AADSTS65004: User declined to consent to access the app."));
    assert_eq!(q["state"], "st-123");
    // Now signed in but without consent: prompt=none → consent_required.
    let page = b.get(&b.authorize_url(NW, &[("prompt", "none")])).await;
    assert_eq!(query_of(page.location.as_deref().unwrap())["error"], "consent_required");
    // Wrong password re-renders the form with an error, no redirect.
    let b2 = Browser::new(&t);
    let page = b2.get(&b2.authorize_url(NW, &[])).await;
    let again =
        b2.post(NW, &[("flow", &flow_id(&page.body)), ("email", "alice@northwind.test"), ("password", "nope"), ("action", "signin")]).await;
    assert_eq!(again.status, 200);
    assert!(again.body.contains("id=\"error\"") && again.body.contains("incorrect"));
    // A Fabrikam user on Northwind's endpoint → access_denied AADSTS50020.
    let q = {
        let page = b2.get(&b2.authorize_url(NW, &[])).await;
        let p = b2
            .post(NW, &[("flow", &flow_id(&page.body)), ("email", "erin@fabrikam.test"), ("password", DEMO_PASSWORD), ("action", "signin")])
            .await;
        query_of(p.location.as_deref().unwrap())
    };
    assert_eq!(q["error"], "access_denied");
    assert!(q["error_description"].starts_with("AADSTS50020: "));
    // response_mode=form_post answers with an auto-submitting form.
    let b3 = Browser::new(&t);
    let page = b3.get(&b3.authorize_url(NW, &[("response_mode", "form_post"), ("prompt", "none")])).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&format!("action=\"{REDIRECT}\"")) && page.body.contains("name=\"error\" value=\"login_required\""));
    t.emu.shutdown().await;
}

#[tokio::test]
async fn prompt_login_and_select_account() {
    let t = spawn().await;
    let b = Browser::new(&t);
    b.code_for(NW, "alice@northwind.test", &[]).await;
    let page = b.get(&b.authorize_url(NW, &[("prompt", "login")])).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("id=\"password\""), "prompt=login forces the sign-in page");
    let page = b.get(&b.authorize_url(NW, &[("prompt", "select_account")])).await;
    assert!(page.body.contains("Pick an account") && page.body.contains("alice@northwind.test"));
    let done = b.post(NW, &[("flow", &flow_id(&page.body)), ("action", "continue")]).await;
    assert!(query_of(done.location.as_deref().unwrap()).contains_key("code"));
    // prompt=consent shows the consent page again even though consent exists.
    let page = b.get(&b.authorize_url(NW, &[("prompt", "consent")])).await;
    assert!(page.body.contains("Permissions requested"));
    t.emu.shutdown().await;
}

#[tokio::test]
async fn mfa_user_must_pass_the_second_factor() {
    let t = spawn().await;
    let b = Browser::new(&t);
    let page = b.get(&b.authorize_url(NW, &[])).await;
    let mfa = b
        .post(NW, &[("flow", &flow_id(&page.body)), ("email", "mfa@northwind.test"), ("password", DEMO_PASSWORD), ("action", "signin")])
        .await;
    assert!(mfa.body.contains("id=\"otc\""), "{}", mfa.body);
    let wrong = b.post(NW, &[("flow", &flow_id(&mfa.body)), ("otc", "000000"), ("action", "verify")]).await;
    assert!(wrong.body.contains("id=\"error\""));
    let consent = b.post(NW, &[("flow", &flow_id(&wrong.body)), ("otc", "123456"), ("action", "verify")]).await;
    let done = b.post(NW, &[("flow", &flow_id(&consent.body)), ("action", "accept")]).await;
    let code = query_of(done.location.as_deref().unwrap())["code"].clone();
    let (s, tokens) = redeem(&t, NW, &code).await;
    assert_eq!(s, 200);
    // prompt=none with an MFA'd session works; refresh works.
    let rt = tokens["refresh_token"].as_str().unwrap();
    let (s, _) = token(
        &t,
        NW,
        &[("client_id", DEMO_CLIENT_ID), ("client_secret", DEMO_CLIENT_SECRET), ("grant_type", "refresh_token"), ("refresh_token", rt)],
    )
    .await;
    assert_eq!(s, 200);
    t.emu.shutdown().await;
}

#[tokio::test]
async fn refresh_tokens_rotate_and_fail_on_revocation_inactivity_and_new_mfa() {
    let t = spawn().await;
    let tokens = user_tokens(&t, "alice@northwind.test", SCOPES).await;
    let rt1 = tokens["refresh_token"].as_str().unwrap().to_string();
    let refresh = |rt: String| {
        let t = &t;
        async move {
            token(
                t,
                NW,
                &[
                    ("client_id", DEMO_CLIENT_ID),
                    ("client_secret", DEMO_CLIENT_SECRET),
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &rt),
                ],
            )
            .await
        }
    };
    let (s, r2) = refresh(rt1.clone()).await;
    assert_eq!(s, 200, "{r2}");
    let rt2 = r2["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rt1, rt2, "a new refresh token every time");
    let (s, _) = refresh(rt1.clone()).await;
    assert_eq!(s, 200, "the old refresh token stays valid");
    assert!(r2["id_token"].is_string());

    // Inactivity (90 days) → 700082 bad_token.
    t.emu.age_refresh_tokens(Some("alice@northwind.test"), Duration::from_secs(91 * 24 * 3600));
    let (s, err) = refresh(rt2.clone()).await;
    assert_eq!(s, 400);
    assert_aad_error_shape(&err, "invalid_grant", 700082, Some("bad_token"));
    assert!(err["error_description"].as_str().unwrap().contains("inactive for 90.00:00:00"));

    // Revocation → 50173.
    let fresh = user_tokens(&t, "alice@northwind.test", SCOPES).await["refresh_token"].as_str().unwrap().to_string();
    t.emu.revoke_refresh_tokens("alice@northwind.test").unwrap();
    let (s, err) = refresh(fresh).await;
    assert_eq!(s, 400);
    assert_aad_error_shape(&err, "invalid_grant", 50173, None);

    // MFA newly required → 50076, exactly the §1.5 sample's shape.
    let fresh = user_tokens(&t, "bob@northwind.test", SCOPES).await["refresh_token"].as_str().unwrap().to_string();
    t.emu.set_mfa_required("bob@northwind.test", true).unwrap();
    let r = t
        .http
        .post(format!("{}/{NW}/oauth2/v2.0/token", t.emu.base_url()))
        .form(&[
            ("client_id", DEMO_CLIENT_ID),
            ("client_secret", DEMO_CLIENT_SECRET),
            ("grant_type", "refresh_token"),
            ("refresh_token", fresh.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let text = r.text().await.unwrap();
    assert_aad_field_order(&text);
    let err: Value = serde_json::from_str(&text).unwrap();
    assert_aad_error_shape(&err, "invalid_grant", 50076, Some("basic_action"));
    assert!(err["error_description"].as_str().unwrap().starts_with("AADSTS50076: Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '"));
    assert!(text.ends_with("\"suberror\":\"basic_action\"}"), "{text}");

    // Consent revoked → 65001 consent_required.
    let fresh = user_tokens(&t, "carol@northwind.test", SCOPES).await["refresh_token"].as_str().unwrap().to_string();
    t.emu.revoke_consent(NW, Some("carol@northwind.test"), DEMO_CLIENT_ID).unwrap();
    let (s, err) = refresh(fresh).await;
    assert_eq!(s, 400);
    assert_aad_error_shape(&err, "invalid_grant", 65001, Some("consent_required"));
    // Garbage refresh token.
    let (s, err) = refresh("1.AXgarbage".into()).await;
    assert_eq!(s, 400);
    assert_eq!(err["error"], "invalid_grant");
    t.emu.shutdown().await;
}

#[tokio::test]
async fn client_authentication_failures_and_basic_auth() {
    let t = spawn().await;
    let cc = [("grant_type", "client_credentials"), ("scope", "https://graph.microsoft.com/.default")];
    // HTTP Basic works as well as the body.
    let r = t
        .http
        .post(format!("{}/{NW}/oauth2/v2.0/token", t.emu.base_url()))
        .basic_auth(DEMO_CLIENT_ID, Some(DEMO_CLIENT_SECRET))
        .form(&cc)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let with = |secret: &'static str| {
        let mut f = vec![("client_id", DEMO_CLIENT_ID), ("client_secret", secret)];
        f.extend(cc);
        f
    };
    let (s, e) = token(&t, NW, &with("wrong")).await;
    assert_eq!(s, 401);
    assert_aad_error_shape(&e, "invalid_client", 7000215, None);
    let (s, e) = token(&t, NW, &with(DEMO_EXPIRED_SECRET)).await;
    assert_eq!(s, 401);
    assert_aad_error_shape(&e, "invalid_client", 7000222, None);
    let (s, e) = token(&t, NW, &[("client_id", DEMO_CLIENT_ID), cc[0], cc[1]]).await;
    assert_eq!(s, 401);
    assert_aad_error_shape(&e, "invalid_client", 7000218, None);
    let (s, e) = token(&t, NW, &[("client_id", "00000000-0000-4000-8000-000000000000"), ("client_secret", "x"), cc[0], cc[1]]).await;
    assert_eq!(s, 400);
    assert_aad_error_shape(&e, "unauthorized_client", 700016, None);
    let (s, e) = token(&t, NW, &[("client_id", DEMO_CLIENT_ID), ("client_secret", DEMO_CLIENT_SECRET), ("grant_type", "password")]).await;
    assert_eq!(s, 400);
    assert_aad_error_shape(&e, "unsupported_grant_type", 70003, None);
    let (s, e) = token(&t, NW, &[("client_id", DEMO_CLIENT_ID), ("client_secret", DEMO_CLIENT_SECRET)]).await;
    assert_eq!(s, 400);
    assert_aad_error_shape(&e, "invalid_request", 900144, None);
    // Expiring the good secret through the control API.
    t.emu.expire_client_secret(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET).unwrap();
    let (s, e) = token(&t, NW, &with(DEMO_CLIENT_SECRET)).await;
    assert_eq!(s, 401);
    assert_eq!(e["error_codes"][0], 7000222);
    t.emu.shutdown().await;
}

#[tokio::test]
async fn client_credentials_default_only_and_roles_from_admin_consent() {
    let t = spawn().await;
    let (s, tok) = app_token(&t, NW).await;
    assert_eq!(s, 200);
    let keys: Vec<&str> = tok.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 4, "only token_type, expires_in, ext_expires_in, access_token: {tok}");
    assert!(tok.get("refresh_token").is_none() && tok.get("id_token").is_none());
    let at = tok["access_token"].as_str().unwrap();
    assert!(claims(at).get("roles").is_none(), "no roles before admin consent");
    let r = graph(&t, at, "/users/alice@northwind.test/mailFolders/inbox/messages/delta", &[]).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_graph_error_shape(&r.text, "ErrorAccessDenied");

    let (s, e) = token(
        &t,
        NW,
        &[
            ("client_id", DEMO_CLIENT_ID),
            ("client_secret", DEMO_CLIENT_SECRET),
            ("grant_type", "client_credentials"),
            ("scope", "Mail.Read"),
        ],
    )
    .await;
    assert_eq!(s, 400);
    assert_aad_error_shape(&e, "invalid_scope", 1002012, None);
    let (s, e) = app_token(&t, "common").await;
    assert_eq!(s, 400);
    assert_eq!(e["error"], "invalid_request");
    // Fabrikam has not consented: the app does not exist there yet.
    let (s, e) = app_token(&t, FB).await;
    assert_eq!(s, 400);
    assert_aad_error_shape(&e, "unauthorized_client", 700016, None);

    t.emu.grant_admin_consent(NW, DEMO_CLIENT_ID, &[], &["Mail.Read", "User.Read.All"]).unwrap();
    let (_, tok) = app_token(&t, "northwind.test").await;
    let at = tok["access_token"].as_str().unwrap();
    assert_eq!(claims(at)["roles"], serde_json::json!(["Mail.Read", "User.Read.All"]));
    let r = graph(&t, at, "/users/alice@northwind.test/mailFolders/inbox/messages/delta", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = graph(
        &t,
        at,
        "/users/alice@northwind.test/calendarView/delta?startDateTime=2026-01-01T00:00:00Z&endDateTime=2027-01-01T00:00:00Z",
        &[],
    )
    .await;
    assert_eq!(r.status, 403, "Calendars.Read not granted");
    t.emu.shutdown().await;
}

#[tokio::test]
async fn a_service_principal_appears_in_a_tenant_at_its_first_consent() {
    let t = spawn().await;
    // Before anyone in Fabrikam consented, the multi-tenant app does not exist there.
    let (s, e) = app_token(&t, FB).await;
    assert_eq!(s, 400);
    assert_aad_error_shape(&e, "unauthorized_client", 700016, None);
    // An admin's own consent (not on behalf of the organization) creates its service principal:
    // client credentials now work, with no roles, so Graph refuses app-only reads.
    user_tokens(&t, "admin@fabrikam.test", SCOPES).await;
    let (s, tok) = app_token(&t, FB).await;
    assert_eq!(s, 200, "{tok}");
    let at = tok["access_token"].as_str().unwrap();
    assert!(claims(at).get("roles").is_none(), "no application permission was granted");
    let r = graph(&t, at, "/users/erin@fabrikam.test/mailFolders/inbox/messages/delta", &[]).await;
    assert_eq!(r.status, 403, "{}", r.text);
    t.emu.shutdown().await;
}

#[tokio::test]
async fn tenant_forbidding_user_consent_shows_need_admin_approval() {
    let t = spawn().await;
    let b = Browser::new(&t);
    let page = b.get(&b.authorize_url(FB, &[])).await;
    let approval = b
        .post(FB, &[("flow", &flow_id(&page.body)), ("email", "erin@fabrikam.test"), ("password", DEMO_PASSWORD), ("action", "signin")])
        .await;
    assert!(approval.body.contains("Need admin approval"));
    assert!(approval.body.contains("needs permission to access resources in your organization that only an admin can grant. Please ask an admin to grant permission to this app before you can use it."));
    assert!(approval.body.contains("Have an admin account? Sign in with that account"));
    assert!(approval.body.contains("Return to the application without granting consent"));
    let back = b.post(FB, &[("flow", &flow_id(&approval.body)), ("action", "return")]).await;
    let q = query_of(back.location.as_deref().unwrap());
    assert_eq!(q["error"], "access_denied");
    assert!(q["error_description"].starts_with("AADSTS90094: "), "{q:?}");

    // An admin of that tenant sees the consent page with the organization checkbox; consenting for the
    // organization lets ordinary users through without any prompt.
    let admin = Browser::new(&t);
    let page = admin.get(&admin.authorize_url(FB, &[])).await;
    let consent = admin
        .post(FB, &[("flow", &flow_id(&page.body)), ("email", "admin@fabrikam.test"), ("password", DEMO_PASSWORD), ("action", "signin")])
        .await;
    assert!(consent.body.contains("Consent on behalf of your organization"));
    let done = admin.post(FB, &[("flow", &flow_id(&consent.body)), ("consent_org", "true"), ("action", "accept")]).await;
    assert!(query_of(done.location.as_deref().unwrap()).contains_key("code"));
    let frank = Browser::new(&t);
    let page = frank.get(&frank.authorize_url(FB, &[])).await;
    let done = frank
        .post(FB, &[("flow", &flow_id(&page.body)), ("email", "frank@fabrikam.test"), ("password", DEMO_PASSWORD), ("action", "signin")])
        .await;
    assert_eq!(done.status, 302, "no consent prompt after org-wide consent: {}", done.body);

    // Switching Northwind's policy through the control API has the same effect there.
    t.emu.set_users_may_consent(NW, false).unwrap();
    let b = Browser::new(&t);
    let page = b.get(&b.authorize_url(NW, &[])).await;
    let p = b
        .post(NW, &[("flow", &flow_id(&page.body)), ("email", "bob@northwind.test"), ("password", DEMO_PASSWORD), ("action", "signin")])
        .await;
    assert!(p.body.contains("Need admin approval"));
    t.emu.shutdown().await;
}

#[tokio::test]
async fn admin_consent_v1_succeeds_for_an_admin_and_cancels_with_the_tenant() {
    let t = spawn().await;
    let base = t.emu.base_url();
    // v1: app permissions from the registration; success ?tenant&state&admin_consent=True.
    let b = Browser::new(&t);
    let url = format!(
        "{base}/common/adminconsent?client_id={DEMO_CLIENT_ID}&redirect_uri={}&state=s1",
        form_urlencoded::byte_serialize(ADMIN_REDIRECT.as_bytes()).collect::<String>()
    );
    let page = b.get(&url).await;
    assert!(page.body.contains("administrator"));
    // A non-admin cannot complete it.
    let p = b
        .post(
            "common",
            &[("flow", &flow_id(&page.body)), ("email", "alice@northwind.test"), ("password", DEMO_PASSWORD), ("action", "signin")],
        )
        .await;
    assert!(p.body.contains("Need admin approval"));
    let p = b.post("common", &[("flow", &flow_id(&p.body)), ("action", "admin")]).await;
    let consent = b
        .post(
            "common",
            &[("flow", &flow_id(&p.body)), ("email", "admin@northwind.test"), ("password", DEMO_PASSWORD), ("action", "signin")],
        )
        .await;
    assert!(consent.body.contains("Accept for your organization"));
    assert!(consent.body.contains("Read calendars in all mailboxes"), "admin strings on the admin consent page");
    let done = b.post("common", &[("flow", &flow_id(&consent.body)), ("action", "accept")]).await;
    let loc = done.location.unwrap();
    assert_eq!(loc, format!("{ADMIN_REDIRECT}?tenant={NW}&state=s1&admin_consent=True"));
    let (_, tok) = app_token(&t, NW).await;
    let roles = claims(tok["access_token"].as_str().unwrap())["roles"].clone();
    assert!(roles.as_array().unwrap().iter().any(|r| r == "Calendars.Read"), "{roles}");

    // v1 cancel keeps the tenant.
    let b = Browser::new(&t);
    let url = format!(
        "{base}/{NW}/adminconsent?client_id={DEMO_CLIENT_ID}&redirect_uri={}&state=s3",
        form_urlencoded::byte_serialize(ADMIN_REDIRECT.as_bytes()).collect::<String>()
    );
    let page = b.get(&url).await;
    let consent = b
        .post(NW, &[("flow", &flow_id(&page.body)), ("email", "admin@northwind.test"), ("password", DEMO_PASSWORD), ("action", "signin")])
        .await;
    let cancelled = b.post(NW, &[("flow", &flow_id(&consent.body)), ("action", "cancel")]).await;
    let q = query_of(cancelled.location.as_deref().unwrap());
    assert_eq!(
        (q["error"].as_str(), q["admin_consent"].as_str(), q["tenant"].as_str(), q["state"].as_str()),
        ("access_denied", "True", NW, "s3")
    );

    // v2 refuses /common; bad redirect URI gets an error page.
    let page = b.get(&format!("{base}/common/v2.0/adminconsent?client_id={DEMO_CLIENT_ID}&redirect_uri={ADMIN_REDIRECT}&scope=https://graph.microsoft.com/.default")).await;
    assert_eq!(page.status, 400);
    let page = b.get(&format!("{base}/{NW}/adminconsent?client_id={DEMO_CLIENT_ID}&redirect_uri=http://evil.test/")).await;
    assert!(page.location.is_none() && page.body.contains("AADSTS50011"));
    t.emu.shutdown().await;
}

#[tokio::test]
async fn admin_consent_v2_with_the_default_scope_succeeds_and_cancels_without_the_tenant() {
    let t = spawn().await;
    let base = t.emu.base_url();
    // v2 on Fabrikam with /.default: ?admin_consent=True&tenant&scope&state.
    let b = Browser::new(&t);
    let url = format!(
        "{base}/{FB}/v2.0/adminconsent?client_id={DEMO_CLIENT_ID}&redirect_uri={}&state=s2&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default",
        form_urlencoded::byte_serialize(ADMIN_REDIRECT.as_bytes()).collect::<String>()
    );
    let page = b.get(&url).await;
    let consent = b
        .post(FB, &[("flow", &flow_id(&page.body)), ("email", "admin@fabrikam.test"), ("password", DEMO_PASSWORD), ("action", "signin")])
        .await;
    let done = b.post(FB, &[("flow", &flow_id(&consent.body)), ("action", "accept")]).await;
    let loc = done.location.unwrap();
    assert!(loc.starts_with(&format!("{ADMIN_REDIRECT}?admin_consent=True&tenant={FB}&scope=")), "{loc}");
    assert!(loc.ends_with("&state=s2"), "{loc}");
    assert!(query_of(&loc)["scope"].contains("https://graph.microsoft.com/Mail.Read"));
    let (s, _) = app_token(&t, FB).await;
    assert_eq!(s, 200, "Fabrikam now has the app");

    // v2 cancel: error=access_denied … error_uri … admin_consent=True … state, no tenant. The admin's
    // session skips the sign-in page this time.
    let consent = b.get(&url).await;
    assert!(consent.body.contains("Accept for your organization"));
    let flow = flow_id(&consent.body);
    let cancelled = b.post(FB, &[("flow", &flow), ("action", "cancel")]).await;
    let loc = cancelled.location.unwrap();
    assert!(loc.starts_with(&format!("{ADMIN_REDIRECT}?error=access_denied&error_description=AADSTS65004%3a+")), "{loc}");
    let q = query_of(&loc);
    assert_eq!(q["admin_consent"], "True");
    assert!(q.contains_key("error_uri") && !q.contains_key("tenant"));
    let order: Vec<&str> = loc.split('?').nth(1).unwrap().split('&').map(|kv| kv.split('=').next().unwrap()).collect();
    assert_eq!(order, ["error", "error_description", "error_uri", "admin_consent", "state"]);

    t.emu.shutdown().await;
}

#[tokio::test]
async fn refresh_cannot_widen_consent_and_logout_ends_the_session() {
    let t = spawn().await;
    let tokens = user_tokens(&t, "alice@northwind.test", "openid profile offline_access User.Read Mail.Read").await;
    let rt = tokens["refresh_token"].as_str().unwrap();
    let base =
        [("client_id", DEMO_CLIENT_ID), ("client_secret", DEMO_CLIENT_SECRET), ("grant_type", "refresh_token"), ("refresh_token", rt)];
    let mut narrower = base.to_vec();
    narrower.push(("scope", "https://graph.microsoft.com/Mail.Read offline_access"));
    let (s, ok) = token(&t, NW, &narrower).await;
    assert_eq!(s, 200, "{ok}");
    assert!(ok["scope"].as_str().unwrap().contains("https://graph.microsoft.com/Mail.Read"));
    let mut wider = base.to_vec();
    wider.push(("scope", "Mail.Send offline_access"));
    let (s, err) = token(&t, NW, &wider).await;
    assert_eq!(s, 400);
    assert_aad_error_shape(&err, "invalid_grant", 65001, Some("consent_required"));

    // Logout clears the session: prompt=none no longer finds a user.
    let b = Browser::new(&t);
    b.code_for(NW, "bob@northwind.test", &[]).await;
    let page = b.get(&b.authorize_url(NW, &[("prompt", "none")])).await;
    assert!(query_of(page.location.as_deref().unwrap()).contains_key("code"));
    let out = b
        .get(&format!(
            "{}/{NW}/oauth2/v2.0/logout?post_logout_redirect_uri={}",
            t.emu.base_url(),
            form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
        ))
        .await;
    assert_eq!(out.status, 302);
    assert_eq!(out.location.as_deref(), Some(REDIRECT));
    let page = b.get(&b.authorize_url(NW, &[("prompt", "none")])).await;
    assert_eq!(query_of(page.location.as_deref().unwrap())["error"], "login_required");
    t.emu.shutdown().await;
}

#[tokio::test]
async fn admin_consent_v2_with_explicit_scopes_grants_delegated_permissions_only() {
    let t = spawn().await;
    let b = Browser::new(&t);
    let url = format!(
        "{}/{FB}/v2.0/adminconsent?client_id={DEMO_CLIENT_ID}&redirect_uri={}&state=x&scope={}",
        t.emu.base_url(),
        form_urlencoded::byte_serialize(ADMIN_REDIRECT.as_bytes()).collect::<String>(),
        form_urlencoded::byte_serialize(b"https://graph.microsoft.com/Mail.Read https://graph.microsoft.com/User.Read").collect::<String>()
    );
    let page = b.get(&url).await;
    let consent = b
        .post(FB, &[("flow", &flow_id(&page.body)), ("email", "admin@fabrikam.test"), ("password", DEMO_PASSWORD), ("action", "signin")])
        .await;
    assert!(consent.body.contains("Read user mail"), "admin wording of Mail.Read");
    assert!(!consent.body.contains("Read calendars in all mailboxes"), "no application permissions without /.default");
    let done = b.post(FB, &[("flow", &flow_id(&consent.body)), ("action", "accept")]).await;
    let q = query_of(done.location.as_deref().unwrap());
    assert_eq!(q["scope"], "https://graph.microsoft.com/Mail.Read https://graph.microsoft.com/User.Read");
    let (s, tok) = app_token(&t, FB).await;
    assert_eq!(s, 200);
    assert!(claims(tok["access_token"].as_str().unwrap()).get("roles").is_none());
    // Erin (a Fabrikam user, who may not consent herself) now signs in without any consent page for those scopes.
    let erin = Browser::new(&t);
    let page = erin.get(&erin.authorize_url(FB, &[("scope", "openid profile offline_access User.Read Mail.Read")])).await;
    let p = erin
        .post(FB, &[("flow", &flow_id(&page.body)), ("email", "erin@fabrikam.test"), ("password", DEMO_PASSWORD), ("action", "signin")])
        .await;
    assert_eq!(p.status, 302, "{}", p.body);
    let (s, tokens) = redeem(&t, FB, &query_of(p.location.as_deref().unwrap())["code"]).await;
    assert_eq!(s, 200);
    assert_eq!(claims(tokens["access_token"].as_str().unwrap())["scp"], "Mail.Read User.Read");
    t.emu.shutdown().await;
}

fn assertion(key: &rsa::RsaPrivateKey, alg: &str, exp_offset: i64, jti: &str) -> String {
    use base64::Engine;
    use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let header = serde_json::json!({"alg": alg, "typ": "JWT", "x5t#S256": "test-thumbprint"});
    let claims = serde_json::json!({"aud": format!("https://login.microsoftonline.com/{NW}/oauth2/v2.0/token"), "iss": DEMO_CLIENT_ID, "sub": DEMO_CLIENT_ID, "jti": jti, "nbf": now - 10, "iat": now - 10, "exp": now + exp_offset});
    let input = format!("{}.{}", b64(&header), b64(&claims));
    let sig = if alg == "PS256" {
        rsa::pss::BlindedSigningKey::<sha2::Sha256>::new(key.clone()).sign_with_rng(&mut rsa::rand_core::OsRng, input.as_bytes()).to_vec()
    } else {
        rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key.clone()).sign(input.as_bytes()).to_vec()
    };
    format!("{input}.{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig))
}

#[tokio::test]
async fn client_credentials_with_certificate_assertions() {
    use rsa::pkcs8::EncodePublicKey;
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let pem = key.to_public_key().to_public_key_pem(rsa::pkcs8::LineEnding::LF).unwrap();
    let t = spawn_with(|c| {
        c.fixture.apps[0].certificates.push(m365_emulator::CertificateFixture {
            thumbprint: "test-thumbprint".into(),
            public_key_pem: pem,
            expires: "2030-01-01T00:00:00Z".into(),
        });
    })
    .await;
    let send = |jwt: String| {
        let t = &t;
        async move {
            token(
                t,
                NW,
                &[
                    ("client_id", DEMO_CLIENT_ID),
                    ("grant_type", "client_credentials"),
                    ("scope", "https://graph.microsoft.com/.default"),
                    ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                    ("client_assertion", &jwt),
                ],
            )
            .await
        }
    };
    let rs = assertion(&key, "RS256", 600, "jti-1");
    let (s, tok) = send(rs.clone()).await;
    assert_eq!(s, 200, "{tok}");
    assert!(tok["access_token"].is_string());
    let (s, tok) = send(assertion(&key, "PS256", 600, "jti-2")).await;
    assert_eq!(s, 200, "PS256 accepted too: {tok}");
    let (s, e) = send(rs).await;
    assert_eq!(s, 401, "replayed jti");
    assert_eq!(e["error_codes"][0], 700027);
    let (s, e) = send(assertion(&key, "RS256", -3600, "jti-3")).await;
    assert_eq!((s, e["error_codes"][0].as_u64()), (401, Some(700024)));
    let other = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let (s, e) = send(assertion(&other, "RS256", 600, "jti-4")).await;
    assert_eq!((s, e["error"].as_str(), e["error_codes"][0].as_u64()), (401, Some("invalid_client"), Some(700027)));
    t.emu.shutdown().await;
}

#[tokio::test]
async fn signing_keys_roll_with_or_without_the_old_key_published() {
    let t = spawn().await;
    let jwks = |t: &TestEmu| {
        let url = format!("{}/{NW}/discovery/v2.0/keys", t.emu.base_url());
        let http = t.http.clone();
        async move { http.get(url).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let before = jwks(&t).await["keys"][0]["kid"].as_str().unwrap().to_string();
    let kid = t.emu.rotate_signing_key(true).unwrap();
    assert_ne!(kid, before);
    let set = jwks(&t).await;
    let kids: Vec<&str> = set["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert_eq!(kids, [kid.as_str(), before.as_str()]);
    let tokens = user_tokens(&t, "alice@northwind.test", SCOPES).await;
    let header: Value = {
        use base64::Engine;
        let h = tokens["id_token"].as_str().unwrap().split('.').next().unwrap();
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap()
    };
    assert_eq!(header["kid"], kid.as_str(), "new tokens are signed with the new key");
    t.emu.rotate_signing_key(false).unwrap();
    assert_eq!(jwks(&t).await["keys"].as_array().unwrap().len(), 1);
    t.emu.shutdown().await;
}
