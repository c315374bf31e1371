//! The help article's setup with the deployment's app registration: nothing typed, the tenant
//! learned at activation and pinned, other tenants refused with nothing stored, and the
//! deployment's certificate credential.

use crate::harness::{ADMIN, Env, MEMBER, NW, authority, caller, deployment_form, param, spawn_deployed};
use domain::office365::SettingsForm;
use domain::views::SaveConfirmations;
use domain::{ConnectionKind, Refusal, Role};
use m365_emulator::FABRIKAM_TENANT_ID;
use office365::Error;

#[tokio::test]
async fn with_the_deployment_app_nothing_is_typed_and_activation_pins_the_tenant() {
    let env = spawn_deployed().await;
    env.enable_with(deployment_form()).await;
    let settings = env.store.office365_settings(env.org).await.unwrap();
    assert!(settings.enabled && !settings.own_app && settings.tenant.is_empty() && settings.pinned_tenant.is_none());

    // Before the admin activates, nobody knows which tenant is ours: members wait, told why.
    let early = env.o365.start_sign_in(&env.member, "connect").await.unwrap_err();
    assert!(matches!(early, Error::Refused(Refusal::NotActivated)), "{early}");

    let url = env.o365.start_sign_in(&env.admin, "activate").await.unwrap();
    assert_eq!(authority(&url), "organizations", "the admin signs in through the multi-tenant authority");
    assert_eq!(param(&url, "client_id").as_deref(), Some(m365_emulator::DEPLOYMENT_CLIENT_ID));
    let callback = m365_emulator::testkit::sign_in(&url, ADMIN).await.unwrap();
    let landing = env.o365.complete_sign_in(Some(&env.admin), callback.query()).await.unwrap();
    assert_eq!(landing, "/settings/integrations/office365/my-connection");
    assert_eq!(env.store.office365_settings(env.org).await.unwrap().pinned_tenant.as_deref(), Some(NW));
    let audit = env.store.audit_log(env.org, 20).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "office365.tenant_pinned" && e.summary.contains(NW)), "{audit:?}");

    // Members now sign in through the pinned tenant.
    let url = env.o365.start_sign_in(&env.member, "connect").await.unwrap();
    assert_eq!(authority(&url), NW);
    let callback = m365_emulator::testkit::sign_in(&url, MEMBER).await.unwrap();
    assert_eq!(env.o365.complete_sign_in(Some(&env.member), callback.query()).await.unwrap(), "/profile");
    assert_eq!(env.store.connections_in_org(env.org).await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_member_of_another_tenant_is_refused_and_nothing_is_stored() {
    let env = spawn_deployed().await;
    env.enable_with(deployment_form()).await;
    env.activate().await;
    let outsider = caller(&env.o365, env.org, "erin@fabrikam.test", Role::Member).await;
    let url = env.o365.start_sign_in(&outsider, "connect").await.unwrap();
    let callback = m365_emulator::testkit::sign_in(&url, "erin@fabrikam.test").await.unwrap();
    let e = env.o365.complete_sign_in(Some(&outsider), callback.query()).await.unwrap_err();
    assert!(matches!(e, Error::Microsoft { reason: domain::ReasonCode::WrongTenant, .. }), "{e}");
    assert!(e.user_message("x").contains("different organization"), "{}", e.user_message("x"));
    assert_eq!(env.store.connections_in_org(env.org).await.unwrap().len(), 1, "only the admin's");
    assert_eq!(env.store.office365_settings(env.org).await.unwrap().pinned_tenant.as_deref(), Some(NW), "the pin stays");
}

#[tokio::test]
async fn a_second_organization_cannot_pin_a_tenant_already_taken() {
    let env = spawn_deployed().await;
    env.enable_with(deployment_form()).await;
    env.activate().await;
    // Another Intelligence360 organization whose admin signs in with a Northwind admin account.
    let other = env.store.create_organization("Northwind copycat").await.unwrap().id;
    let admin = caller(&env.o365, other, "copycat-admin@example.test", Role::Admin).await;
    let saved = env.o365.save_settings(&admin.user, &deployment_form(), Default::default()).await.unwrap();
    assert!(saved.saved, "{saved:?}");
    let url = env.o365.start_sign_in(&admin, "activate").await.unwrap();
    let callback = m365_emulator::testkit::sign_in(&url, ADMIN).await.unwrap();
    let e = env.o365.complete_sign_in(Some(&admin), callback.query()).await.unwrap_err();
    assert!(matches!(e, Error::Refused(Refusal::TenantTaken)), "{e}");
    assert!(env.store.connections_in_org(other).await.unwrap().is_empty(), "nothing stored");
    assert_eq!(env.store.office365_settings(other).await.unwrap().pinned_tenant, None);
}

#[tokio::test]
async fn reactivating_with_nothing_connected_may_move_the_pin_and_says_so() {
    let env = spawn_deployed().await;
    env.enable_with(deployment_form()).await;
    env.activate().await;
    // While the admin's connection exists, a Fabrikam activation is refused.
    let url = env.o365.start_sign_in(&env.admin, "activate").await.unwrap();
    let callback = m365_emulator::testkit::sign_in(&url, "admin@fabrikam.test").await.unwrap();
    let e = env.o365.complete_sign_in(Some(&env.admin), callback.query()).await.unwrap_err();
    assert!(matches!(e, Error::Microsoft { reason: domain::ReasonCode::WrongTenant, .. }), "{e}");

    let own = env.store.connection_of(env.org, env.admin.user.user_id, ConnectionKind::Individual).await.unwrap().unwrap();
    env.o365.disconnect_own(&env.admin.user).await.unwrap();
    assert!(env.store.connections_in_org(env.org).await.unwrap().iter().all(|c| c.id != own.id));
    let url = env.o365.start_sign_in(&env.admin, "activate").await.unwrap();
    let callback = m365_emulator::testkit::sign_in(&url, "admin@fabrikam.test").await.unwrap();
    env.o365.complete_sign_in(Some(&env.admin), callback.query()).await.unwrap();
    assert_eq!(env.store.office365_settings(env.org).await.unwrap().pinned_tenant.as_deref(), Some(FABRIKAM_TENANT_ID));
    let audit = env.store.audit_log(env.org, 20).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "office365.tenant_pinned" && e.summary.starts_with("Moved")), "{audit:?}");
}

/// The certificate registered on the deployment's app (generated once: RSA keys are slow in debug
/// builds), and one Microsoft has never seen.
fn certificates() -> &'static [(String, String, m365_emulator::CertificateFixture); 2] {
    static CERTS: std::sync::OnceLock<[(String, String, m365_emulator::CertificateFixture); 2]> = std::sync::OnceLock::new();
    CERTS.get_or_init(|| {
        [
            m365_emulator::testkit::generate_certificate("Intelligence360 deployment", "2030-01-01T00:00:00Z"),
            m365_emulator::testkit::generate_certificate("Someone else's certificate", "2030-01-01T00:00:00Z"),
        ]
    })
}

/// The deployment app with the first certificate registered at Microsoft, signing in with `which`.
async fn spawn_with_certificate(which: usize) -> Env {
    let [(_, _, registered), _] = certificates();
    let mut fixture = m365_emulator::Fixture::demo();
    for app in fixture.apps.iter_mut().filter(|a| a.client_id == m365_emulator::DEPLOYMENT_CLIENT_ID) {
        app.certificates.push(registered.clone());
    }
    let (cert_pem, key_pem, _) = &certificates()[which];
    let credential = microsoft::CertificateCredential::from_pem(cert_pem, key_pem).unwrap();
    crate::harness::spawn_deployed_with(credential.into(), fixture).await
}

#[tokio::test]
async fn the_deployment_app_signs_in_and_gets_app_tokens_with_its_certificate() {
    let env = spawn_with_certificate(0).await;
    env.enable_with(deployment_form()).await;
    // The admin's activation redeems its code with a signed client assertion.
    assert_eq!(env.activate().await, "/settings/integrations/office365/my-connection");
    // Application permissions: consent for the pinned tenant, then a client-credentials token.
    env.o365.deactivate_my_connection(&env.admin.user).await.unwrap();
    let confirmed = SaveConfirmations { mode_switch: true, ..SaveConfirmations::default() };
    let form = SettingsForm { mode: "application".into(), ..deployment_form() };
    assert!(env.o365.save_settings(&env.admin.user, &form, confirmed).await.unwrap().saved);
    let url = env.o365.start_admin_consent(&env.admin).await.unwrap();
    assert_eq!(authority(&url), NW, "consent goes to the pinned tenant");
    let callback = m365_emulator::testkit::sign_in(&url, ADMIN).await.unwrap();
    let landing = env.o365.complete_admin_consent(Some(&env.admin), callback.query()).await.unwrap();
    assert_eq!(landing, "/settings/integrations/office365/my-connection");
    assert!(env.o365.service_accounts(&env.admin.user).await.unwrap().activated);
    // The registration lists read-write application permissions too: granted, and said so.
    let view = env.o365.admin_consent_view(&env.admin.user).await.unwrap();
    assert!(view.application && view.excess.iter().any(|p| p == "Mail.Send"), "{view:?}");
    assert!(!view.requested.iter().any(|p| p == "Mail.Send"), "read-only uses no send permission: {view:?}");
}

#[tokio::test]
async fn a_certificate_microsoft_does_not_know_ends_on_microsofts_error() {
    let env = spawn_with_certificate(1).await;
    env.enable_with(deployment_form()).await;
    let url = env.o365.start_sign_in(&env.admin, "activate").await.unwrap();
    let callback = m365_emulator::testkit::sign_in(&url, ADMIN).await.unwrap();
    let e = env.o365.complete_sign_in(Some(&env.admin), callback.query()).await.unwrap_err();
    assert_eq!(e.result_page(), "/connect/result?reason=deployment_credential_rejected&code=AADSTS700027");
    assert!(e.user_message("x").contains("this server's own Microsoft app registration"), "{}", e.user_message("x"));
    assert!(env.store.connections_in_org(env.org).await.unwrap().is_empty(), "nothing stored");
}
