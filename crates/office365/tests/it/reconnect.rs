//! Reconnecting: the same Microsoft account keeps its synced data and cursors; another Microsoft
//! account on the same Intelligence360 user keeps nothing of the first one's (hardening issue,
//! item 3).

use crate::harness::{Env, MEMBER, spawn};
use domain::Resource;
use std::collections::BTreeSet;
use store::sync::ItemQuery;

const BOB: &str = "bob@northwind.test";

/// The member signs in with Microsoft as `account` (their own, or another one) to connect.
async fn member_connects_as(env: &Env, account: &str) {
    let url = env.o365.start_sign_in(&env.member, "connect").await.unwrap();
    let callback = m365_emulator::testkit::sign_in(&url, account).await.unwrap();
    assert_eq!(env.o365.complete_sign_in(Some(&env.member), callback.query()).await.unwrap(), "/profile");
}

/// Every synced item (resource, Graph id) shown to the member, and the mailboxes they come from.
async fn members_items(env: &Env) -> BTreeSet<(Resource, String)> {
    let q = ItemQuery { org_id: env.org, user_id: env.member.user.user_id, resource: None, text: None, offset: 0, limit: 10_000 };
    env.store.activity_items(&q).await.unwrap().into_iter().map(|a| (a.resource, a.item.graph_id)).collect()
}

async fn members_mailboxes(env: &Env) -> Vec<uuid::Uuid> {
    let all = env.store.sync_mailboxes_in_org(env.org).await.unwrap();
    all.into_iter().filter(|m| m.user_id == env.member.user.user_id).map(|m| m.id).collect()
}

async fn audit_actions(env: &Env) -> Vec<(String, String)> {
    env.o365.audit_log(&env.admin.user).await.unwrap().into_iter().map(|e| (e.action, e.summary)).collect()
}

#[tokio::test]
async fn a_reconnect_as_another_microsoft_account_keeps_nothing_of_the_first() {
    let env = spawn().await;
    env.enable().await;
    member_connects_as(&env, MEMBER).await;
    env.scheduler.run_until_idle().await.unwrap();
    let alices = members_items(&env).await;
    assert!(alices.iter().any(|(r, _)| *r == Resource::Mail), "the first sync brought Alice's mail: {alices:?}");
    let mailboxes = members_mailboxes(&env).await;
    assert_eq!(mailboxes.len(), 1);
    let cursors = env.store.cursors(mailboxes[0]).await.unwrap();
    assert!(!cursors.is_empty());

    // Reconnecting as the same account keeps the mailbox, its cursors and its items.
    member_connects_as(&env, MEMBER).await;
    assert_eq!(members_mailboxes(&env).await, mailboxes);
    assert_eq!(env.store.cursors(mailboxes[0]).await.unwrap(), cursors);
    assert_eq!(members_items(&env).await, alices);
    assert!(!audit_actions(&env).await.iter().any(|(a, _)| a == "office365.account_changed"));

    // The same Intelligence360 user reconnects as Bob: at once, nothing of Alice's is left to show
    // or to replay with Bob's token (no waiting for the next scheduled sync).
    member_connects_as(&env, BOB).await;
    let profile = env.o365.profile(&env.member.user).await.unwrap();
    assert_eq!(profile.connection.as_ref().map(|c| c.ms_username.as_str()), Some(BOB));
    assert!(members_items(&env).await.is_empty(), "Alice's items are still shown under Bob's account");
    assert!(env.store.sync_mailbox(mailboxes[0]).await.unwrap().is_none(), "Alice's mailbox is still synced");
    assert!(env.store.cursors(mailboxes[0]).await.unwrap().is_empty(), "Alice's delta links would be replayed");
    let log = audit_actions(&env).await;
    let changed: Vec<&String> = log.iter().filter(|(a, _)| a == "office365.account_changed").map(|(_, s)| s).collect();
    assert_eq!(changed, [&format!("Reconnected as {BOB}; {MEMBER}'s synced data was removed.")], "{log:?}");

    // Bob's mailbox syncs from scratch: only his items, none of Alice's.
    let fresh = members_mailboxes(&env).await;
    assert_eq!(fresh.len(), 1);
    assert_ne!(fresh[0], mailboxes[0]);
    env.scheduler.run_until_idle().await.unwrap();
    let bobs = members_items(&env).await;
    assert!(bobs.iter().any(|(r, _)| *r == Resource::Mail), "{bobs:?}");
    assert!(bobs.is_disjoint(&alices), "some of Alice's items came back: {:?}", bobs.intersection(&alices).collect::<Vec<_>>());
}
