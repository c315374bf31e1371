//! Organization-wide consent and the service connection's mailboxes.

use crate::harness::{TestDb, on_both_backends};
use domain::{AuditEntry, ConsentGrant, ConsentRequest, MailboxHealth, ReasonCode, ServiceAccountUser};

on_both_backends!(
    a_refused_member_leaves_one_pending_request_until_consent_is_granted,
    service_account_users_are_added_once_checked_and_removed,
);

fn audit(action: &str) -> AuditEntry {
    AuditEntry { at: 1, actor: "Adele Admin <admin@northwind.test>".into(), action: action.into(), summary: action.into() }
}

async fn actions(db: &TestDb, org: domain::OrgId) -> Vec<String> {
    db.store.audit_log(org, 50).await.unwrap().into_iter().map(|e| e.action).collect()
}

async fn a_refused_member_leaves_one_pending_request_until_consent_is_granted(db: &TestDb) {
    let store = db.store.as_ref();
    let org = store.create_organization("Fabrikam").await.unwrap().id;
    let other = store.create_organization("Elsewhere").await.unwrap().id;
    assert_eq!(store.admin_consent(org).await.unwrap(), domain::AdminConsent::default());

    assert!(store.request_admin_consent(org, "Erin <erin@fabrikam.test>", 100).await.unwrap());
    assert!(!store.request_admin_consent(org, "Frank <frank@fabrikam.test>", 200).await.unwrap(), "already pending");
    let c = store.admin_consent(org).await.unwrap();
    assert_eq!(c.requested, Some(ConsentRequest { by: "Erin <erin@fabrikam.test>".into(), at: 100 }), "the first asker is kept");
    assert!(c.granted.is_none());
    assert_eq!(actions(db, org).await, ["office365.admin_approval_requested"], "audited once");
    assert_eq!(store.admin_consent(other).await.unwrap(), domain::AdminConsent::default(), "per organization");

    let grant = ConsentGrant {
        by: "Adele Admin <admin@fabrikam.test>".into(),
        at: 300,
        tenant_id: "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d".into(),
        client_id: "33333333-4444-4555-8666-777777777777".into(),
        scopes: vec!["https://graph.microsoft.com/Mail.Read".into(), "https://graph.microsoft.com/User.Read".into()],
    };
    store.record_admin_consent(org, &grant, &audit("office365.admin_consent_granted")).await.unwrap();
    let c = store.admin_consent(org).await.unwrap();
    assert_eq!(c.requested, None, "granting clears the request");
    assert_eq!(c.granted, Some(grant.clone()));

    // Refused again later (consent revoked in Microsoft): a new request, the old grant kept on record.
    assert!(store.request_admin_consent(org, "Frank <frank@fabrikam.test>", 400).await.unwrap());
    let c = store.admin_consent(org).await.unwrap();
    assert_eq!(c.requested.map(|r| r.at), Some(400));
    assert_eq!(c.granted, Some(grant));
}

fn mailbox(name: &str, upn: &str) -> ServiceAccountUser {
    ServiceAccountUser {
        id: uuid::Uuid::new_v4(),
        ms_object_id: None,
        ms_username: upn.into(),
        display_name: name.into(),
        added_by: "Adele Admin <admin@northwind.test>".into(),
        added_at: 10,
        health: None,
        health_at: None,
    }
}

async fn service_account_users_are_added_once_checked_and_removed(db: &TestDb) {
    let store = db.store.as_ref();
    let org = store.create_organization("Northwind").await.unwrap().id;
    let other = store.create_organization("Elsewhere").await.unwrap().id;
    let bob = mailbox("Bob", "Bob@Northwind.test");
    let alice = mailbox("Alice", "alice@northwind.test");
    assert!(store.add_service_account_user(org, &bob, &audit("office365.service_user_added")).await.unwrap());
    assert!(store.add_service_account_user(org, &alice, &audit("office365.service_user_added")).await.unwrap());
    let again = mailbox("Bob again", "bob@northwind.TEST");
    assert!(!store.add_service_account_user(org, &again, &audit("office365.service_user_added")).await.unwrap(), "same address, any case");
    assert!(store.add_service_account_user(other, &again, &audit("office365.service_user_added")).await.unwrap(), "another org may");

    let rows = store.service_account_users(org).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.ms_username.as_str()).collect::<Vec<_>>(), ["alice@northwind.test", "bob@northwind.test"]);
    assert_eq!(rows[1].display_name, "Bob");
    assert_eq!(actions(db, org).await.len(), 2, "a duplicate is not audited");

    store
        .set_service_account_user_health(org, bob.id, Some("oid-bob"), MailboxHealth::Problem(ReasonCode::NoMailboxAccess), 50)
        .await
        .unwrap();
    store.set_service_account_user_health(org, alice.id, None, MailboxHealth::Ok, 51).await.unwrap();
    // Another organization cannot touch these rows.
    store.set_service_account_user_health(other, alice.id, None, MailboxHealth::Problem(ReasonCode::Unexpected), 52).await.unwrap();
    let rows = store.service_account_users(org).await.unwrap();
    assert_eq!(rows[0].health, Some(MailboxHealth::Ok));
    assert_eq!(rows[1].health, Some(MailboxHealth::Problem(ReasonCode::NoMailboxAccess)));
    assert_eq!(rows[1].ms_object_id.as_deref(), Some("oid-bob"));
    assert_eq!(rows[1].health_at, Some(50));

    assert!(!store.remove_service_account_user(other, bob.id, &audit("office365.service_user_removed")).await.unwrap());
    assert!(store.remove_service_account_user(org, bob.id, &audit("office365.service_user_removed")).await.unwrap());
    assert_eq!(store.service_account_users(org).await.unwrap().len(), 1);
    assert!(actions(db, org).await.contains(&"office365.service_user_removed".to_string()));
}
