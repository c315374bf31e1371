//! Organization-wide consent asks for exactly what the settings need (never `.default` for
//! delegated permissions), says when a grant no longer covers them or covers more, and can be
//! forwarded to an administrator who can give it.

use crate::harness::{ADMIN, NW, authority, deployment_form, param, spawn_deployed};
use domain::ConsentStatus;
use domain::office365::SettingsForm;
use domain::permissions::{AccessLevel, CATALOGUE, ConnectionMode, PermissionType};
use domain::views::SaveConfirmations;
use m365_emulator::testkit::{Browser, Consent, SignIn};

#[tokio::test]
async fn every_mode_and_access_level_asks_for_exactly_its_catalogue_permissions() {
    let env = spawn_deployed().await;
    env.enable_with(deployment_form()).await;
    // Organization-wide consent goes to the pinned tenant.
    env.activate().await;
    let confirmed = SaveConfirmations { mode_switch: true, ..SaveConfirmations::default() };
    for (mode, value) in [(ConnectionMode::Individual, "individual"), (ConnectionMode::ServiceUser, "service_user")] {
        for (access, level) in [(AccessLevel::ReadOnly, "read_only"), (AccessLevel::ReadWrite, "read_write")] {
            let form = SettingsForm { mode: value.into(), access: level.into(), ..deployment_form() };
            assert!(env.o365.save_settings(&env.admin.user, &form, confirmed).await.unwrap().saved);
            let url = env.o365.start_admin_consent(&env.admin).await.unwrap();
            assert_eq!(authority(&url), NW, "{mode:?} {access:?}");
            assert_eq!(param(&url, "prompt").as_deref(), Some("consent"), "{mode:?} {access:?}");
            let scope = param(&url, "scope").unwrap();
            let asked: Vec<&str> = scope.split(' ').filter(|s| s.contains('.') && *s != "User.Read").collect();
            let expected: Vec<&str> =
                CATALOGUE.iter().filter(|p| p.kind == PermissionType::Delegated && p.access == access).map(|p| p.graph_name).collect();
            assert_eq!(asked, expected, "{mode:?} {access:?}: exactly the catalogue's permissions");
            assert!(!scope.contains(".default"), "never .default for delegated consent: {scope}");
        }
    }
}

#[tokio::test]
async fn consent_for_read_only_is_reported_insufficient_after_switching_to_read_write() {
    let env = spawn_deployed().await;
    env.enable_with(deployment_form()).await;
    env.activate().await;
    // The admin consents on behalf of the organization through Microsoft's consent page.
    let url = env.o365.start_admin_consent(&env.admin).await.unwrap();
    let admin = SignIn::new(ADMIN).consent(Consent::AcceptForOrganization);
    let callback = Browser::new().unwrap().sign_in(&url, &admin).await.unwrap().callback().unwrap();
    let landing = env.o365.complete_sign_in(Some(&env.admin), callback.query()).await.unwrap();
    assert_eq!(landing, "/settings/integrations/office365/admin-consent");
    let view = env.o365.admin_consent_view(&env.admin.user).await.unwrap();
    assert_eq!(view.status, ConsentStatus::Granted, "{view:?}");
    assert!(view.missing.is_empty() && view.excess.is_empty(), "{view:?}");
    assert!(view.requested.iter().all(|p| !p.contains("Write") && !p.contains("Send")), "read-only asks for no write: {view:?}");

    env.enable_with(SettingsForm { access: "read_write".into(), ..deployment_form() }).await;
    let view = env.o365.admin_consent_view(&env.admin.user).await.unwrap();
    assert_eq!(view.status, ConsentStatus::Insufficient, "{view:?}");
    assert!(
        view.missing.contains(&"Mail.Send.Shared".to_string()) && view.missing.contains(&"Calendars.ReadWrite".to_string()),
        "{view:?}"
    );
}

#[tokio::test]
async fn an_admin_who_cannot_consent_forwards_microsofts_link_and_then_checks_it() {
    let env = spawn_deployed().await;
    env.enable_with(deployment_form()).await;
    env.activate().await;
    env.o365.deactivate_my_connection(&env.admin.user).await.unwrap();
    let confirmed = SaveConfirmations { mode_switch: true, ..SaveConfirmations::default() };
    let form = SettingsForm { mode: "application".into(), ..deployment_form() };
    assert!(env.o365.save_settings(&env.admin.user, &form, confirmed).await.unwrap().saved);

    let view = env.o365.admin_consent_view(&env.admin.user).await.unwrap();
    let link = view.forward_link.unwrap();
    assert_eq!(authority(&link), NW);
    assert_eq!(param(&link, "scope").as_deref(), Some("https://graph.microsoft.com/.default"));
    assert_eq!(param(&link, "client_id").as_deref(), Some(m365_emulator::DEPLOYMENT_CLIENT_ID));

    // Nothing granted yet: checking says so and activates nothing.
    assert!(env.o365.check_application_consent(&env.admin.user).await.is_err());
    assert!(!env.o365.service_accounts(&env.admin.user).await.unwrap().activated);

    // A tenant administrator opens the link, with no Intelligence360 session at all.
    let callback = m365_emulator::testkit::sign_in(&link, ADMIN).await.unwrap();
    assert_eq!(env.o365.complete_admin_consent(None, callback.query()).await.unwrap(), "/connect/result?consent=forwarded");
    assert!(env.store.admin_consent(env.org).await.unwrap().granted.is_none(), "a forwarded callback records nothing");

    env.o365.check_application_consent(&env.admin.user).await.unwrap();
    assert!(env.o365.service_accounts(&env.admin.user).await.unwrap().activated);
    assert_eq!(env.o365.admin_consent_view(&env.admin.user).await.unwrap().status, ConsentStatus::Granted);
}

#[tokio::test]
async fn the_delegated_forward_link_asks_for_exactly_the_settings_permissions() {
    let env = spawn_deployed().await;
    env.enable_with(deployment_form()).await;
    assert_eq!(env.o365.admin_consent_view(&env.admin.user).await.unwrap().forward_link, None, "no tenant known before activation");
    env.activate().await;
    let link = env.o365.admin_consent_view(&env.admin.user).await.unwrap().forward_link.unwrap();
    let scope = param(&link, "scope").unwrap();
    assert!(scope.contains("Mail.Read.Shared") && !scope.contains(".default") && !scope.contains("Write"), "{scope}");
}
