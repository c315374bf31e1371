//! The settings pages' Graph calls: directory search and the mailbox probe that tells "no licence"
//! from "no access".

use crate::helpers::*;
use crate::tokens::sign_in;
use domain::{ReasonCode, WhoMustAct};
use m365_emulator::DEMO_CLIENT_ID;
use microsoft::MailboxRef;

async fn app_token(env: &Env) -> microsoft::AppToken {
    env.emu.grant_admin_consent(NW, DEMO_CLIENT_ID, &[], &["User.Read.All", "Mail.Read"]).unwrap();
    env.client.client_credentials(&app(NW)).await.unwrap()
}

#[tokio::test]
async fn search_users_matches_display_name_mail_and_upn_prefixes() {
    let env = spawn().await;
    let token = app_token(&env).await;
    let by_name = env.client.search_users(&token.access_token, "Sam", 10).await.unwrap();
    assert_eq!(by_name.len(), 1);
    assert_eq!(by_name[0].id, "6e1f0a00-0000-4000-8000-000000000005");
    assert_eq!(by_name[0].display_name.as_deref(), Some("Sam Service"));
    let by_upn = env.client.search_users(&token.access_token, "dave@", 10).await.unwrap();
    assert_eq!(by_upn.len(), 1);
    assert_eq!(by_upn[0].mail, None, "unlicensed users have no mail");
    // A quote in the prefix is escaped, not an OData injection.
    assert!(env.client.search_users(&token.access_token, "o'brien", 10).await.unwrap().is_empty());
    let everyone = env.client.search_users(&token.access_token, "", 999).await.unwrap();
    assert_eq!(everyone.len(), 7, "all Northwind users, none from Fabrikam");
    let two = env.client.search_users(&token.access_token, "", 2).await.unwrap();
    assert_eq!(two.len(), 2);
    env.emu.shutdown().await;
}

#[tokio::test]
async fn find_user_looks_an_address_up_in_the_directory() {
    let env = spawn().await;
    let token = app_token(&env).await;
    let bob = env.client.find_user(&token.access_token, "Bob@Northwind.test").await.unwrap().unwrap();
    assert_eq!((bob.id.as_str(), bob.display_name.as_deref()), ("6e1f0a00-0000-4000-8000-000000000003", Some("Bob Burke")));
    let dave = env.client.find_user(&token.access_token, "dave@northwind.test").await.unwrap().unwrap();
    assert_eq!(dave.id, "6e1f0a00-0000-4000-8000-000000000006", "found without a mailbox");
    assert_eq!(env.client.find_user(&token.access_token, "nobody@northwind.test").await.unwrap(), None);
    assert_eq!(env.client.find_user(&token.access_token, "o'brien@northwind.test").await.unwrap(), None, "escaped, not injected");
    assert_eq!(env.client.find_user(&token.access_token, "erin@fabrikam.test").await.unwrap(), None, "another tenant's user");
    // A delegated token without a directory permission may not look other people up.
    let service = sign_in(&env, "service@northwind.test", SCOPES).await.tokens;
    let err = env.client.find_user(&service.access_token, "alice@northwind.test").await.unwrap_err();
    assert_eq!((err.status, err.reason), (Some(403), ReasonCode::PermissionMissing));
    env.emu.shutdown().await;
}

#[tokio::test]
async fn probing_mailboxes_tells_no_access_from_no_licence() {
    let env = spawn().await;
    // Service user mode: service@ has delegate rights on alice's and bob's mailboxes, not carol's.
    let service = sign_in(&env, "service@northwind.test", SCOPES).await.tokens;
    env.client.probe_mailbox(&service.access_token, &MailboxRef::Me).await.unwrap();
    env.client.probe_mailbox(&service.access_token, &MailboxRef::User("alice@northwind.test".into())).await.unwrap();
    let err = env.client.probe_mailbox(&service.access_token, &MailboxRef::User("carol@northwind.test".into())).await.unwrap_err();
    assert_eq!(err.status, Some(403));
    assert!(err.code.eq_ignore_ascii_case("ErrorAccessDenied"));
    assert_eq!(err.reason, ReasonCode::NoMailboxAccess);
    assert_eq!(err.who_must_act(), WhoMustAct::TenantAdmin);
    assert!(err.request_id.is_some());

    // Dave has no Exchange Online licence: his own mailbox and, app-only, his mailbox by id.
    let dave = sign_in(&env, "dave@northwind.test", SCOPES).await.tokens;
    let err = env.client.probe_mailbox(&dave.access_token, &MailboxRef::Me).await.unwrap_err();
    assert_eq!((err.status, err.reason), (Some(404), ReasonCode::MailboxNotLicensed));
    assert_eq!(err.who_must_act(), WhoMustAct::LicenceAdmin);
    let app_only = app_token(&env).await;
    let err = env
        .client
        .probe_mailbox(&app_only.access_token, &MailboxRef::User("6e1f0a00-0000-4000-8000-000000000006".into()))
        .await
        .unwrap_err();
    assert_eq!(err.reason, ReasonCode::MailboxNotLicensed);
    env.client.probe_mailbox(&app_only.access_token, &MailboxRef::User("carol@northwind.test".into())).await.unwrap();
    env.emu.shutdown().await;
}

#[tokio::test]
async fn a_missing_scope_on_ones_own_mailbox_is_a_missing_permission() {
    let env = spawn().await;
    let profile_only = sign_in(&env, "bob@northwind.test", "openid profile offline_access User.Read").await.tokens;
    env.client.me(&profile_only.access_token).await.unwrap();
    let err = env.client.probe_mailbox(&profile_only.access_token, &MailboxRef::Me).await.unwrap_err();
    assert_eq!((err.status, err.reason), (Some(403), ReasonCode::PermissionMissing));
    // Delegated directory search needs User.ReadBasic.All, which this app does not request.
    let err = env.client.search_users(&profile_only.access_token, "a", 5).await.unwrap_err();
    assert_eq!(err.reason, ReasonCode::PermissionMissing);
    env.emu.shutdown().await;
}

#[tokio::test]
async fn an_expired_or_unknown_access_token_asks_for_a_new_one() {
    let env = spawn().await;
    let tokens = sign_in(&env, "alice@northwind.test", SCOPES).await.tokens;
    env.emu.expire_access_tokens();
    let err = env.client.me(&tokens.access_token).await.unwrap_err();
    assert_eq!(err.status, Some(401));
    assert!(err.needs_new_token());
    assert_eq!(err.reason, ReasonCode::AccessTokenRejected);
    // Refreshing gives a token that works again.
    let fresh = env.client.refresh(&app(NW), tokens.refresh_token.as_ref().unwrap(), None).await.unwrap();
    env.client.me(&fresh.access_token).await.unwrap();
    let err = env.client.me(&secret("garbage")).await.unwrap_err();
    assert!(err.needs_new_token());
    env.emu.shutdown().await;
}
