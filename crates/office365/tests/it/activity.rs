//! Activity: admins may read a member's synced items, and every such reading is audited.

use crate::harness::{MEMBER, spawn};
use domain::views::ActivityQuery;
use office365::Error;

#[tokio::test]
async fn an_admin_reading_a_members_items_is_audited_and_a_member_cannot_read_others() {
    let env = spawn().await;
    env.enable().await;
    let viewed = |actions: &[domain::AuditEntry]| actions.iter().filter(|e| e.action == "office365.member_items_viewed").count();

    // Their own items: nothing to audit.
    env.o365.activity(&env.member.user, &ActivityQuery::default()).await.unwrap();
    env.o365.activity(&env.admin.user, &ActivityQuery::default()).await.unwrap();
    assert_eq!(viewed(&env.store.audit_log(env.org, 50).await.unwrap()), 0);

    let members = ActivityQuery { member: env.member.user.user_id.to_string(), kind: "mail".into(), ..ActivityQuery::default() };
    env.o365.activity(&env.admin.user, &members).await.unwrap();
    let log = env.store.audit_log(env.org, 50).await.unwrap();
    assert_eq!(viewed(&log), 1);
    let entry = log.iter().find(|e| e.action == "office365.member_items_viewed").unwrap();
    assert!(entry.summary.contains(MEMBER) && entry.summary.contains("Mail"), "{}", entry.summary);

    let admins = ActivityQuery { member: env.admin.user.user_id.to_string(), ..ActivityQuery::default() };
    let refused = env.o365.activity(&env.member.user, &admins).await.unwrap_err();
    assert!(matches!(refused, Error::Forbidden), "{refused}");
    assert_eq!(viewed(&env.store.audit_log(env.org, 50).await.unwrap()), 1, "a refused look is no reading");
}
