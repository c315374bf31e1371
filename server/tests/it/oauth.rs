//! The OAuth routes refuse what they cannot trust and always answer with a page, never a 500; and
//! with the in-process emulator playing Microsoft, a sign-in goes all the way through.

use crate::helpers::{TestApp, location, spawn_app};
use domain::{ConnectionKind, OrgId, UserId};
use m365_emulator::testkit::{self, Browser, Consent, SignIn};

#[tokio::test]
async fn starting_a_connection_needs_a_session_and_an_enabled_integration() {
    let app = spawn_app().await;
    let visitor = app.client();
    let res = visitor.post(app.url("/oauth/office365/start")).form(&[("purpose", "connect")]).send().await.unwrap();
    assert!(res.status().is_redirection(), "{}", res.status());
    assert_eq!(location(&res), "/login");

    let member = app.signed_in("alice@northwind.test").await;
    let res = member.post(app.url("/oauth/office365/start")).form(&[("purpose", "activate")]).send().await.unwrap();
    assert_eq!(location(&res), "/connect/result?refused=admins_only", "only admins activate the primary integration");
    let res = member.post(app.url("/oauth/office365/start")).form(&[("purpose", "connect")]).send().await.unwrap();
    assert_eq!(location(&res), "/connect/result?refused=not_enabled");
    let res = member.post(app.url("/oauth/office365/start")).form(&[("purpose", "admin_consent")]).send().await.unwrap();
    assert_eq!(location(&res), "/connect/result?refused=unknown");
}

#[tokio::test]
async fn forged_or_stateless_callbacks_end_on_the_explanation_page() {
    let app = spawn_app().await;
    let admin = app.signed_in("admin@northwind.test").await;
    let res = admin.get(app.url("/oauth/office365/callback?code=stolen&state=forged")).send().await.unwrap();
    assert!(res.status().is_redirection(), "{}", res.status());
    assert_eq!(location(&res), "/connect/result?refused=expired");

    let res =
        admin.get(app.url("/oauth/office365/callback?error=access_denied&error_description=AADSTS65004%3a+declined")).send().await.unwrap();
    assert_eq!(location(&res), "/connect/result?reason=sign_in_not_verified");

    // The explanation page itself renders for anyone, in plain words.
    let page = admin.get(app.url("/connect/result?reason=consent_declined&code=AADSTS65004")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("The permissions were not accepted"));
    assert!(html.contains("AADSTS65004"));
    let page = admin.get(app.url("/connect/result?reason=%3Cscript%3E&code=%3Cb%3Ex")).send().await.unwrap();
    let html = page.text().await.unwrap();
    assert!(!html.contains("<script>") && !html.contains("<b>x"), "unknown values are never echoed");
}

const TENANT: &str = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
const CLIENT: &str = "33333333-4444-4555-8666-777777777777";

/// Enables the integration for the demo organization straight through the store, with Fabrikam's
/// own app registration, in individual mode.
async fn enable(app: &crate::helpers::TestApp) -> domain::OrgId {
    enable_in(app, domain::permissions::ConnectionMode::Individual).await
}

async fn enable_in(app: &crate::helpers::TestApp, mode: domain::permissions::ConnectionMode) -> domain::OrgId {
    let org = app.store.organization_by_name(server::demo::ORG_NAME).await.unwrap().unwrap().id;
    let settings = domain::office365::Office365Settings {
        enabled: true,
        own_app: true,
        pinned_tenant: None,
        deployment_client_id: None,
        tenant: TENANT.into(),
        client_id: CLIENT.into(),
        client_secret_set: true,
        mode,
        ..Default::default()
    };
    let secret = store::secrets::SecretString::from("demo-client-secret".to_owned());
    app.store.save_office365_settings(org, &settings, Some(&secret), &[]).await.unwrap();
    org
}

fn query_param(url: &str, name: &str) -> String {
    let url = reqwest::Url::parse(url).unwrap();
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned()).unwrap_or_default()
}

#[tokio::test]
async fn a_member_refused_for_admin_approval_leaves_a_request_for_the_admins() {
    let app = spawn_app().await;
    let org = enable(&app).await;
    let member = app.signed_in("bob@northwind.test").await;
    let res = member.post(app.url("/oauth/office365/start")).form(&[("purpose", "connect")]).send().await.unwrap();
    let to_microsoft = location(&res);
    assert!(to_microsoft.contains("/oauth2/v2.0/authorize"), "{to_microsoft}");
    let state = query_param(&to_microsoft, "state");
    let back = format!(
        "/oauth/office365/callback?error=access_denied&error_subcode=cancel&error_description=AADSTS90094%3a+Administrator+consent+is+required.&state={state}"
    );
    let res = member.get(app.url(&back)).send().await.unwrap();
    assert_eq!(location(&res), "/connect/result?reason=admin_approval_required&code=AADSTS90094");
    let consent = app.store.admin_consent(org).await.unwrap();
    assert!(consent.requested.unwrap().by.contains("bob@northwind.test"));
    let audit = app.store.audit_log(org, 10).await.unwrap();
    assert_eq!(audit[0].action, "office365.admin_approval_requested");

    // The explanation tells the member their admins were asked; the admin's feed has the card.
    let html =
        member.get(app.url("/connect/result?reason=admin_approval_required&code=AADSTS90094")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Your admins have been asked"), "{html}");
    let admin = app.signed_in("admin@northwind.test").await;
    let cards = app.call(&admin, "action_cards", &[]).await.text().await.unwrap();
    assert!(cards.contains("Grant organization-wide consent"), "{cards}");
    let cards = app.call(&member, "action_cards", &[]).await.text().await.unwrap();
    assert!(!cards.contains("Grant organization-wide consent"), "{cards}");
}

#[tokio::test]
async fn admin_consent_is_started_by_admins_and_its_callback_checked_before_it_is_recorded() {
    let app = spawn_app().await;
    let member = app.signed_in("alice@northwind.test").await;
    let admin = app.signed_in("admin@northwind.test").await;
    let start = app.url("/oauth/office365/admin-consent/start");
    let res = admin.post(&start).send().await.unwrap();
    assert_eq!(location(&res), "/connect/result?refused=not_enabled");
    // Application permissions: Microsoft's admin consent endpoint grants what the registration lists.
    let org = enable_in(&app, domain::permissions::ConnectionMode::ApplicationPermissions).await;
    let res = member.post(&start).send().await.unwrap();
    assert_eq!(location(&res), "/connect/result?refused=admins_only");
    let res = app.client().post(&start).send().await.unwrap();
    assert_eq!(location(&res), "/login");

    let res = admin.post(&start).send().await.unwrap();
    let to_microsoft = location(&res);
    assert!(to_microsoft.starts_with(&format!("{}/{TENANT}/v2.0/adminconsent?", app.emu.login_base())), "{to_microsoft}");
    assert_eq!(query_param(&to_microsoft, "client_id"), CLIENT);
    assert_eq!(query_param(&to_microsoft, "redirect_uri"), app.url("/oauth/office365/admin-consent"));
    assert_eq!(query_param(&to_microsoft, "scope"), "https://graph.microsoft.com/.default");
    let state = query_param(&to_microsoft, "state");
    assert!(state.len() >= 32);

    // Another tenant answering, another browser, a declined consent: nothing recorded.
    let other_tenant =
        format!("/oauth/office365/admin-consent?admin_consent=True&tenant=4f1c6a0e-2d3b-4c5a-9e8f-0a1b2c3d4e5f&state={state}");
    assert_eq!(location(&admin.get(app.url(&other_tenant)).send().await.unwrap()), "/connect/result?reason=wrong_tenant");
    let state = query_param(&location(&admin.post(&start).send().await.unwrap()), "state");
    let good = format!(
        "/oauth/office365/admin-consent?admin_consent=True&tenant={TENANT}&scope=https%3A%2F%2Fgraph.microsoft.com%2FMail.Read&state={state}"
    );
    let other_admin = app.signed_in("admin@northwind.test").await;
    assert_eq!(location(&other_admin.get(app.url(&good)).send().await.unwrap()), "/connect/result?refused=other_session");
    let state = query_param(&location(&admin.post(&start).send().await.unwrap()), "state");
    let declined = format!(
        "/oauth/office365/admin-consent?error=access_denied&error_description=AADSTS65004%3a+User+declined+to+consent.&admin_consent=True&state={state}"
    );
    assert_eq!(location(&admin.get(app.url(&declined)).send().await.unwrap()), "/connect/result?reason=consent_declined&code=AADSTS65004");
    assert_eq!(app.store.admin_consent(org).await.unwrap(), domain::AdminConsent::default());

    // The real thing, once.
    let state = query_param(&location(&admin.post(&start).send().await.unwrap()), "state");
    let good = format!(
        "/oauth/office365/admin-consent?admin_consent=True&tenant={TENANT}&scope=https%3A%2F%2Fgraph.microsoft.com%2FMail.Read&state={state}"
    );
    let res = admin.get(app.url(&good)).send().await.unwrap();
    assert_eq!(location(&res), "/settings/integrations/office365/my-connection", "in application mode the consent activates");
    let grant = app.store.admin_consent(org).await.unwrap().granted.unwrap();
    assert_eq!((grant.tenant_id.as_str(), grant.client_id.as_str()), (TENANT, CLIENT));
    assert_eq!(grant.scopes, ["https://graph.microsoft.com/Mail.Read"]);
    assert!(app.store.audit_log(org, 10).await.unwrap().iter().any(|e| e.action == "office365.admin_consent_granted"));
    assert_eq!(location(&admin.get(app.url(&good)).send().await.unwrap()), "/connect/result?refused=expired", "replayed");

    // A sign-in's state is no admin consent state.
    let sign_in = location(&admin.post(app.url("/oauth/office365/start")).form(&[("purpose", "activate")]).send().await.unwrap());
    let state = query_param(&sign_in, "state");
    let mixed = format!("/oauth/office365/admin-consent?admin_consent=True&tenant={TENANT}&state={state}");
    assert_eq!(location(&admin.get(app.url(&mixed)).send().await.unwrap()), "/connect/result?refused=expired");
    // Nor is an admin consent state a sign-in's.
    let state = query_param(&location(&admin.post(&start).send().await.unwrap()), "state");
    let mixed = format!("/oauth/office365/callback?code=some-code&state={state}");
    assert_eq!(location(&admin.get(app.url(&mixed)).send().await.unwrap()), "/connect/result?refused=expired");
}

async fn user_id(app: &TestApp, org: OrgId, email: &str) -> UserId {
    app.store.users_in_org(org).await.unwrap().into_iter().find(|u| u.email.as_str() == email).unwrap().id
}

/// Starts a sign-in at our server for `purpose` and returns where it sends the browser (Microsoft).
async fn start(app: &TestApp, client: &reqwest::Client, purpose: &str) -> String {
    let res = client.post(app.url("/oauth/office365/start")).form(&[("purpose", purpose)]).send().await.unwrap();
    let to_microsoft = location(&res);
    assert!(
        to_microsoft.starts_with(&format!("{}/{}/oauth2/v2.0/authorize?", app.emu.login_base(), m365_emulator::NORTHWIND_TENANT_ID)),
        "{to_microsoft}"
    );
    to_microsoft
}

#[tokio::test]
async fn an_admin_activates_and_a_member_connects_through_microsofts_pages() {
    let app = spawn_app().await;
    let org = crate::helpers::enable_demo_integration(app.store.as_ref()).await;

    // The admin: My Connection › Activate, Microsoft's sign-in and consent pages, back to us.
    let admin = app.signed_in("admin@northwind.test").await;
    let to_microsoft = start(&app, &admin, "activate").await;
    let back = testkit::sign_in(&to_microsoft, "admin@northwind.test").await.unwrap();
    assert!(back.as_str().starts_with(&app.url("/oauth/office365/callback?")), "{}", back.as_str());
    let res = admin.get(back.as_str()).send().await.unwrap();
    assert_eq!(location(&res), "/settings/integrations/office365/my-connection");
    let mine =
        app.store.connection_of(org, user_id(&app, org, "admin@northwind.test").await, ConnectionKind::Individual).await.unwrap().unwrap();
    assert!(mine.is_primary, "the admin's activation is the primary integration");
    assert_eq!(mine.ms_username, "admin@northwind.test");
    assert_eq!(mine.ms_tenant_id, m365_emulator::NORTHWIND_TENANT_ID);
    assert!(mine.granted_scopes.iter().any(|s| s.ends_with("/Contacts.Read")), "what Microsoft granted: {:?}", mine.granted_scopes);
    let audit = app.store.audit_log(org, 10).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "office365.activated"), "{audit:?}");
    // My Connection shows it; the same callback a second time is refused.
    let view = app.call(&admin, "load_my_connection", &[]).await;
    assert_eq!(view.status(), 200);
    let view: domain::views::MyConnectionView = view.json().await.unwrap();
    assert_eq!(view.connection.map(|c| c.id), Some(mine.id));
    assert_eq!(location(&admin.get(back.as_str()).send().await.unwrap()), "/connect/result?refused=expired", "replayed");

    // A member: Profile › Connect, back on the profile with a connection of her own.
    let alice = app.signed_in("alice@northwind.test").await;
    let to_microsoft = start(&app, &alice, "connect").await;
    let back = testkit::sign_in(&to_microsoft, "alice@northwind.test").await.unwrap();
    let res = alice.get(back.as_str()).send().await.unwrap();
    assert_eq!(location(&res), "/profile");
    let hers =
        app.store.connection_of(org, user_id(&app, org, "alice@northwind.test").await, ConnectionKind::Individual).await.unwrap().unwrap();
    assert!(!hers.is_primary);
    assert_eq!(hers.ms_username, "alice@northwind.test");
    assert_eq!(app.store.connections_in_org(org).await.unwrap().len(), 2);

    // Another browser cannot use a callback meant for Alice's session.
    let to_microsoft = start(&app, &alice, "connect").await;
    let back = testkit::sign_in(&to_microsoft, "alice@northwind.test").await.unwrap();
    let stranger = app.signed_in("bob@northwind.test").await;
    assert_eq!(location(&stranger.get(back.as_str()).send().await.unwrap()), "/connect/result?refused=other_session");
}

#[tokio::test]
async fn a_member_who_declines_microsofts_consent_page_ends_on_the_explanation_without_a_connection() {
    let app = spawn_app().await;
    let org = crate::helpers::enable_demo_integration(app.store.as_ref()).await;
    let bob = app.signed_in("bob@northwind.test").await;
    let to_microsoft = start(&app, &bob, "connect").await;
    let declined =
        Browser::new().unwrap().sign_in(&to_microsoft, &SignIn::new("bob@northwind.test").consent(Consent::Cancel)).await.unwrap();
    let back = declined.callback().unwrap();
    assert_eq!(back.param("error").as_deref(), Some("access_denied"), "{}", back.as_str());
    let res = bob.get(back.as_str()).send().await.unwrap();
    assert_eq!(location(&res), "/connect/result?reason=consent_declined&code=AADSTS65004");
    assert!(app.store.connections_in_org(org).await.unwrap().is_empty());
}
