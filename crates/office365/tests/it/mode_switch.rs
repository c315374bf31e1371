//! What a change of connection mode or "Poll primary integration only" stops, said before it is
//! saved: members' own syncs never stop silently, and the admin can keep them syncing as service
//! account users in the same step.

use crate::harness::{ADMIN, Env, MEMBER, demo_form, spawn};
use domain::office365::SettingsForm;
use domain::views::{self, MailboxSource, SaveConfirmations};
use domain::{ConnectionSummary, PauseReason, SyncState};

/// The member connects their own account through Microsoft's (the emulator's) pages.
async fn member_connects(env: &Env) -> ConnectionSummary {
    let url = env.o365.start_sign_in(&env.member, "connect").await.unwrap();
    let callback = m365_emulator::testkit::sign_in(&url, MEMBER).await.unwrap();
    env.o365.complete_sign_in(Some(&env.member), callback.query()).await.unwrap();
    env.o365.profile(&env.member.user).await.unwrap().connection.expect("connected")
}

fn application_mode() -> SettingsForm {
    SettingsForm { mode: "application".into(), client_secret: String::new(), ..demo_form() }
}

#[tokio::test]
async fn switching_to_a_service_account_is_refused_until_the_admin_confirms_whose_syncs_stop() {
    let env = spawn().await;
    env.enable().await;
    member_connects(&env).await;
    let view = env.o365.settings_view(&env.admin.user).await.unwrap();
    let stopping = views::stopped_by_mode_switch(&view.mailboxes, view.settings.mode, domain::permissions::ConnectionMode::ServiceUser);
    assert_eq!(stopping.iter().map(|m| m.address.as_str()).collect::<Vec<_>>(), [MEMBER], "the page can list them first");

    let refused = env.o365.save_settings(&env.admin.user, &application_mode(), SaveConfirmations::default()).await.unwrap();
    assert!(!refused.saved);
    assert!(refused.errors["mode"].contains(MEMBER), "{refused:?}");
    assert!(!env.store.office365_settings(env.org).await.unwrap().is_service_account(), "nothing stored");
    let profile = env.o365.profile(&env.member.user).await.unwrap();
    assert_eq!(profile.own_status().map(|s| s.label), Some("Connected"), "still syncing");

    // Confirmed without adding anyone: the member's own connection is paused, and the profile
    // says so instead of a green "Connected".
    let confirmed = SaveConfirmations { mode_switch: true, ..Default::default() };
    assert!(env.o365.save_settings(&env.admin.user, &application_mode(), confirmed).await.unwrap().saved);
    assert!(env.o365.service_accounts(&env.admin.user).await.unwrap().users.is_empty());
    let profile = env.o365.profile(&env.member.user).await.unwrap();
    assert_eq!(profile.sync.as_ref().map(|s| s.state), Some(SyncState::Paused(PauseReason::ServiceAccountMode)));
    let status = profile.own_status().unwrap();
    assert_eq!((status.tone, status.label), (domain::Tone::Warn, "Paused"));
    assert!(status.explanation.unwrap().contains("add you as a service account user"));

    // No own connection syncs in service-account mode, so switching between its kinds asks nothing.
    let service_user = SettingsForm { mode: "service_user".into(), ..application_mode() };
    assert!(env.o365.save_settings(&env.admin.user, &service_user, SaveConfirmations::default()).await.unwrap().saved);
}

#[tokio::test]
async fn members_whose_syncs_stop_can_be_added_as_service_account_users_in_the_same_step() {
    let env = spawn().await;
    env.enable().await;
    let connection = member_connects(&env).await;
    let both = SaveConfirmations { mode_switch: true, add_as_service_users: true, ..Default::default() };
    assert!(env.o365.save_settings(&env.admin.user, &application_mode(), both).await.unwrap().saved);

    let users = env.o365.service_accounts(&env.admin.user).await.unwrap().users;
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(users[0].ms_username, MEMBER);
    assert_eq!(users[0].ms_object_id.as_deref(), Some(connection.ms_object_id.as_str()), "resolved by their Microsoft identity");
    let actions: Vec<String> = env.o365.audit_log(&env.admin.user).await.unwrap().into_iter().map(|a| a.action).collect();
    assert!(actions.contains(&"office365.service_user_added".to_owned()), "{actions:?}");
    let status = env.o365.profile(&env.member.user).await.unwrap().own_status().unwrap();
    assert_eq!(status.label, "Not in use", "their mailbox syncs through the service account now");
}

#[tokio::test]
async fn poll_primary_counts_every_mailbox_that_would_stop_service_account_users_included() {
    let env = spawn().await;
    let view = env.o365.settings_view(&env.admin.user).await.unwrap();
    let none = views::stopped_by_poll_primary(&view.mailboxes, view.settings.mode);
    assert!(views::poll_primary_impact(&none).starts_with("No mailbox syncs yet;"), "during setup");

    let form = SettingsForm { mode: "application".into(), ..demo_form() };
    assert!(env.o365.save_settings(&env.admin.user, &form, SaveConfirmations::default()).await.unwrap().saved);
    for address in [ADMIN, MEMBER] {
        let add = office365::NewServiceAccountUser { address: address.into(), ..Default::default() };
        env.o365.add_service_account_user(&env.admin.user, add).await.unwrap();
    }
    let view = env.o365.settings_view(&env.admin.user).await.unwrap();
    assert!(view.mailboxes.iter().all(|m| m.source == MailboxSource::ServiceAccountUser));
    let stopped = views::stopped_by_poll_primary(&view.mailboxes, view.settings.mode);
    assert!(
        views::poll_primary_impact(&stopped).starts_with("2 mailboxes will stop syncing: "),
        "{}",
        views::poll_primary_impact(&stopped)
    );
}

#[tokio::test]
async fn a_member_added_by_their_microsoft_account_owns_its_synced_mail_whatever_their_email_here() {
    let env = spawn().await;
    env.enable().await;
    // This member signs in to Intelligence360 with another address than their Microsoft account.
    let ava = crate::harness::caller(&env.o365, env.org, "ava@example.test", domain::Role::Member).await;
    let url = env.o365.start_sign_in(&ava, "connect").await.unwrap();
    let callback = m365_emulator::testkit::sign_in(&url, MEMBER).await.unwrap();
    env.o365.complete_sign_in(Some(&ava), callback.query()).await.unwrap();
    let both = SaveConfirmations { mode_switch: true, add_as_service_users: true, ..Default::default() };
    assert!(env.o365.save_settings(&env.admin.user, &application_mode(), both).await.unwrap().saved);

    let url = env.o365.start_admin_consent(&env.admin).await.unwrap();
    let callback = m365_emulator::testkit::sign_in(&url, ADMIN).await.unwrap();
    env.o365.complete_admin_consent(Some(&env.admin), callback.query()).await.unwrap();
    let service = env.store.service_connection(env.org).await.unwrap().unwrap();
    // Scheduled once the mailbox checks (in the background) have ended.
    let theirs = crate::harness::eventually("the service connection's mailbox is scheduled", || async {
        let mailboxes = env.store.sync_mailboxes_in_org(env.org).await.unwrap();
        let theirs: Vec<_> = mailboxes.into_iter().filter(|m| m.connection_id == service.id).collect();
        (!theirs.is_empty()).then_some(theirs)
    })
    .await;
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    assert_eq!(theirs[0].user_id, ava.user.user_id, "matched by the Microsoft account on their own connection, not by address");
}
