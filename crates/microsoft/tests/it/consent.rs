//! Organization-wide (admin) consent, and what a member sees when the tenant forbids user consent.

use crate::helpers::*;
use domain::{ReasonCode, WhoMustAct};
use m365_emulator::DEMO_CLIENT_ID;
use microsoft::{MailboxRef, Tenant, parse_admin_consent_callback, parse_callback};

#[tokio::test]
async fn admin_consent_grants_application_permissions_for_client_credentials() {
    let env = spawn().await;
    let url = env.client.admin_consent_url(&Tenant::parse(NW).unwrap(), DEMO_CLIENT_ID, ADMIN_REDIRECT, "ac-state-1").unwrap();
    assert!(url.path().ends_with(&format!("/{NW}/v2.0/adminconsent")), "{url}");

    // Before: an app-only token exists (home tenant) but carries no application permissions.
    let before = env.client.client_credentials(&app(NW)).await.unwrap();
    let err = env.client.search_users(&before.access_token, "ca", 10).await.unwrap_err();
    assert_eq!(err.reason, ReasonCode::PermissionMissing);

    let back = testkit::sign_in(url.as_str(), "admin@northwind.test").await.unwrap();
    let granted = parse_admin_consent_callback(back.query()).unwrap();
    assert!(granted.state_matches("ac-state-1"));
    assert_eq!(granted.tenant.as_deref(), Some(NW));
    for p in ["Mail.Read", "User.Read.All", "Calendars.Read"] {
        assert!(granted.scopes.contains(&format!("https://graph.microsoft.com/{p}")), "{p} in {:?}", granted.scopes);
    }

    let token = env.client.client_credentials(&app(NW)).await.unwrap();
    let users = env.client.search_users(&token.access_token, "ca", 10).await.unwrap();
    assert_eq!(users.iter().map(|u| u.user_principal_name.as_deref().unwrap()).collect::<Vec<_>>(), vec!["carol@northwind.test"]);
    env.client.probe_mailbox(&token.access_token, &MailboxRef::User("alice@northwind.test".into())).await.unwrap();
    env.emu.shutdown().await;
}

#[tokio::test]
async fn cancelling_admin_consent_is_a_decline_even_with_admin_consent_true() {
    let env = spawn().await;
    let url = env.client.admin_consent_url(&Tenant::parse(NW).unwrap(), DEMO_CLIENT_ID, ADMIN_REDIRECT, "ac-state-2").unwrap();
    let page = Browser::new()
        .unwrap()
        .sign_in(url.as_str(), &testkit::SignIn::new("admin@northwind.test").consent(Consent::Cancel))
        .await
        .unwrap();
    let query = page.callback_query().unwrap();
    assert!(query.contains("admin_consent=True"), "{query}");
    let err = parse_admin_consent_callback(&query).unwrap_err();
    assert_eq!(err.reason, ReasonCode::ConsentDeclined);
    assert!(err.admin_consent);
    assert_eq!(err.tenant, None, "v2 drops the tenant on errors");
    assert!(err.state_matches("ac-state-2"));
    env.emu.shutdown().await;
}

#[tokio::test]
async fn a_member_of_a_tenant_without_user_consent_needs_admin_approval_then_connects_after_admin_consent() {
    let env = spawn().await;
    let fb = app(FB);
    let browser = Browser::new().unwrap();
    let req = env.client.authorization_request(&fb, REDIRECT, SCOPES, Some("erin@fabrikam.test"), None).unwrap();
    let page = browser.sign_in(req.url.as_str(), &testkit::SignIn::new("erin@fabrikam.test")).await.unwrap();
    assert!(page.is_admin_approval_page(), "Need admin approval page expected: {}", page.body);
    let back = browser.submit(&page, &[("action", "return")]).await.unwrap();
    let err = parse_callback(&back.callback_query().unwrap()).unwrap_err();
    assert_eq!(err.reason, ReasonCode::AdminApprovalRequired);
    assert_eq!(err.who_must_act(), WhoMustAct::TenantAdmin);
    assert_eq!(err.error_codes, vec![90094]);
    assert!(err.state_matches(&req.state));

    // Fabrikam's admin grants consent for the organization.
    let url = env.client.admin_consent_url(&fb.tenant, DEMO_CLIENT_ID, ADMIN_REDIRECT, "ac-fb").unwrap();
    let back = testkit::sign_in(url.as_str(), "admin@fabrikam.test").await.unwrap();
    let granted = parse_admin_consent_callback(back.query()).unwrap();
    assert_eq!(granted.tenant.as_deref(), Some(FB));

    // Erin now connects without any consent page.
    let req = env.client.authorization_request(&fb, REDIRECT, SCOPES, Some("erin@fabrikam.test"), None).unwrap();
    let page = Browser::new()
        .unwrap()
        .sign_in(req.url.as_str(), &testkit::SignIn::new("erin@fabrikam.test").consent(Consent::Cancel))
        .await
        .unwrap();
    let cb = parse_callback(&page.callback_query().unwrap()).expect("no consent page, straight back with a code");
    let s = env.client.exchange_code(&fb, &cb.code, REDIRECT, &req.pkce_verifier, &req.nonce).await.unwrap();
    assert_eq!(s.identity.tenant_id, FB);
    assert_eq!(s.identity.username.as_deref(), Some("erin@fabrikam.test"));
    env.emu.shutdown().await;
}

#[tokio::test]
async fn a_non_admin_on_the_admin_consent_page_cannot_grant() {
    let env = spawn().await;
    let url = env.client.admin_consent_url(&Tenant::parse(NW).unwrap(), DEMO_CLIENT_ID, ADMIN_REDIRECT, "ac-3").unwrap();
    let browser = Browser::new().unwrap();
    let page = browser.sign_in(url.as_str(), &testkit::SignIn::new("bob@northwind.test")).await.unwrap();
    assert!(page.is_admin_approval_page(), "{}", page.body);
    let back = browser.submit(&page, &[("action", "return")]).await.unwrap();
    let err = parse_admin_consent_callback(&back.callback_query().unwrap()).unwrap_err();
    assert_eq!(err.reason, ReasonCode::AdminApprovalRequired);
    env.emu.shutdown().await;
}

#[tokio::test]
async fn an_admin_consenting_for_the_organization_while_connecting_lets_members_connect_silently() {
    let env = spawn().await;
    let fb = app(FB);
    let req = env.client.authorization_request(&fb, REDIRECT, SCOPES, None, None).unwrap();
    let page = Browser::new()
        .unwrap()
        .sign_in(req.url.as_str(), &testkit::SignIn::new("admin@fabrikam.test").consent(Consent::AcceptForOrganization))
        .await
        .unwrap();
    let cb = parse_callback(&page.callback_query().unwrap()).unwrap();
    env.client.exchange_code(&fb, &cb.code, REDIRECT, &req.pkce_verifier, &req.nonce).await.unwrap();

    let req = env.client.authorization_request(&fb, REDIRECT, SCOPES, Some("frank@fabrikam.test"), None).unwrap();
    let page = Browser::new()
        .unwrap()
        .sign_in(req.url.as_str(), &testkit::SignIn::new("frank@fabrikam.test").consent(Consent::Cancel))
        .await
        .unwrap();
    let cb = parse_callback(&page.callback_query().unwrap()).expect("frank is not asked at all");
    let s = env.client.exchange_code(&fb, &cb.code, REDIRECT, &req.pkce_verifier, &req.nonce).await.unwrap();
    assert_eq!(s.identity.object_id, "6e2f0a00-0000-4000-8000-000000000003");
    env.emu.shutdown().await;
}
