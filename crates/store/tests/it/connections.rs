//! OAuth flows (single use, expiring) and connections (sealed tokens, one primary).

use crate::harness::{TestDb, on_both_backends};
use domain::{AuditEntry, ConnectionKind, ConnectionState, FlowPurpose, Role};
use store::secrets::ExposeSecret;
use store::secrets::SecretString;
use store::{NewConnection, OAuthFlow, SessionToken, accounts};

on_both_backends!(
    an_oauth_flow_is_taken_once_and_only_before_it_expires,
    connections_keep_their_id_when_reconnected_and_one_is_primary,
    tokens_are_sealed_in_the_raw_database,
    deleting_a_connection_removes_it_and_is_audited,
    the_service_connection_is_the_organizations_service_user_or_application,
);

fn audit(action: &str) -> AuditEntry {
    AuditEntry { at: 1, actor: "someone".into(), action: action.into(), summary: action.into() }
}

async fn org_with_people(db: &TestDb) -> (domain::OrgId, domain::UserId, domain::UserId) {
    let store = db.store.as_ref();
    let org = store.create_organization("Northwind").await.unwrap();
    let a = accounts::create_user(store, org.id, "admin@northwind.test", "Adele", Role::Admin, "password-1").await.unwrap();
    let m = accounts::create_user(store, org.id, "alice@northwind.test", "Alice", Role::Member, "password-2").await.unwrap();
    (org.id, a.id, m.id)
}

fn new_connection(org: domain::OrgId, user: domain::UserId, primary: bool, rt: &str) -> NewConnection {
    NewConnection {
        org_id: org,
        user_id: user,
        kind: ConnectionKind::Individual,
        is_primary: primary,
        ms_tenant_id: "4f1c6a0e-2d3b-4c5a-9e8f-0a1b2c3d4e5f".into(),
        ms_object_id: format!("oid-{user}"),
        ms_username: format!("{user}@northwind.test"),
        ms_name: "Someone".into(),
        granted_scopes: vec!["openid".into(), "Mail.Read.Shared".into()],
        access_token: SecretString::from(format!("eyJ-access-{rt}")),
        access_expires_at: 10_000,
        refresh_token: Some(SecretString::from(rt.to_owned())),
    }
}

async fn an_oauth_flow_is_taken_once_and_only_before_it_expires(db: &TestDb) {
    let store = db.store.as_ref();
    let (org, admin, _) = org_with_people(db).await;
    let session = SessionToken::generate().hash();
    let flow = OAuthFlow {
        org_id: org,
        user_id: admin,
        session: session.clone(),
        purpose: FlowPurpose::Activate,
        pkce_verifier: Some(SecretString::from("verifier-0123456789-abcdefghijklmnopqrstuvwxyz")),
        nonce: Some("nonce-1".into()),
        expires_at: 1_000,
    };
    store.start_oauth_flow("state-A", &flow, 400).await.unwrap();
    assert!(store.take_oauth_flow("state-B", 500).await.unwrap().is_none(), "unknown state");
    let taken = store.take_oauth_flow("state-A", 500).await.unwrap().unwrap();
    assert_eq!(taken.session, session);
    assert_eq!(taken.purpose, FlowPurpose::Activate);
    assert_eq!(taken.pkce_verifier.unwrap().expose_secret(), "verifier-0123456789-abcdefghijklmnopqrstuvwxyz");
    assert_eq!(taken.nonce.as_deref(), Some("nonce-1"));
    assert!(store.take_oauth_flow("state-A", 500).await.unwrap().is_none(), "a state works once");

    store.start_oauth_flow("state-C", &flow, 400).await.unwrap();
    assert!(store.take_oauth_flow("state-C", 1_000).await.unwrap().is_none(), "expired flows are refused");
}

async fn connections_keep_their_id_when_reconnected_and_one_is_primary(db: &TestDb) {
    let store = db.store.as_ref();
    let (org, admin, member) = org_with_people(db).await;
    let first = store.save_connection(&new_connection(org, admin, true, "rt-1"), &audit("connected")).await.unwrap();
    assert!(first.is_primary);
    assert_eq!(first.state, ConnectionState::Active);
    assert_eq!(first.granted_scopes, ["openid", "Mail.Read.Shared"]);
    let again = store.save_connection(&new_connection(org, admin, true, "rt-2"), &audit("reconnected")).await.unwrap();
    assert_eq!(again.id, first.id, "reconnecting keeps the connection");

    let theirs = store.save_connection(&new_connection(org, member, true, "rt-3"), &audit("connected")).await.unwrap();
    let all = store.connections_in_org(org).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all.iter().filter(|c| c.is_primary).count(), 1, "exactly one primary integration");
    assert_eq!(all[0].id, theirs.id, "the primary is listed first");
    let mine = store.connection_of(org, admin, ConnectionKind::Individual).await.unwrap().unwrap();
    assert!(!mine.is_primary);
    assert!(store.connection_of(org, admin, ConnectionKind::ServiceUser).await.unwrap().is_none());
}

async fn tokens_are_sealed_in_the_raw_database(db: &TestDb) {
    let store = db.store.as_ref();
    let (org, admin, _) = org_with_people(db).await;
    let rt = "1.AX-very-distinctive-refresh-token";
    store.save_connection(&new_connection(org, admin, true, rt), &audit("connected")).await.unwrap();
    let flow = OAuthFlow {
        org_id: org,
        user_id: admin,
        session: SessionToken::generate().hash(),
        purpose: FlowPurpose::Connect,
        pkce_verifier: Some(SecretString::from("pkce-verifier-very-distinctive-value")),
        nonce: None,
        expires_at: i64::MAX,
    };
    store.start_oauth_flow("state-raw", &flow, 1).await.unwrap();
    assert!(db.raw.contains("Mail.Read.Shared").await, "the check can see what is stored");
    assert!(!db.raw.contains(rt).await, "refresh tokens are sealed");
    assert!(!db.raw.contains(&format!("eyJ-access-{rt}")).await, "access tokens are sealed");
    assert!(!db.raw.contains("pkce-verifier-very-distinctive-value").await, "PKCE verifiers are sealed");
    assert!(!db.raw.contains("state-raw").await, "only a hash of the state is stored");
}

async fn deleting_a_connection_removes_it_and_is_audited(db: &TestDb) {
    let store = db.store.as_ref();
    let (org, admin, _) = org_with_people(db).await;
    let c = store.save_connection(&new_connection(org, admin, true, "rt"), &audit("connected")).await.unwrap();
    assert!(store.delete_connection(org, c.id, &audit("disconnected")).await.unwrap());
    assert!(!store.delete_connection(org, c.id, &audit("disconnected")).await.unwrap());
    assert!(store.connections_in_org(org).await.unwrap().is_empty());
    let actions: Vec<String> = store.audit_log(org, 10).await.unwrap().into_iter().map(|e| e.action).collect();
    assert_eq!(actions, ["disconnected", "connected"]);
}

async fn the_service_connection_is_the_organizations_service_user_or_application(db: &TestDb) {
    let store = db.store.as_ref();
    let (org, admin, member) = org_with_people(db).await;
    assert!(store.service_connection(org).await.unwrap().is_none());
    store.save_connection(&new_connection(org, member, false, "rt-member"), &audit("office365.connected")).await.unwrap();
    assert!(store.service_connection(org).await.unwrap().is_none(), "a member's own connection is no service connection");
    let mut service = new_connection(org, admin, true, "rt-service-1");
    service.kind = ConnectionKind::ServiceUser;
    let saved = store.save_connection(&service, &audit("office365.activated")).await.unwrap();
    assert_eq!(store.service_connection(org).await.unwrap().map(|c| c.id), Some(saved.id));

    let other = store.create_organization("Elsewhere").await.unwrap().id;
    assert!(store.service_connection(other).await.unwrap().is_none(), "per organization");
}
