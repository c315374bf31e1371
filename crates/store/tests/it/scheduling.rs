//! What the scheduler asks of the store: organizations take turns in a claim, and the next due
//! time, so the scheduler sleeps until then.

use domain::{AuditEntry, ConnectionKind, Role};
use store::NewConnection;
use store::accounts;
use store::secrets::SecretString;
use store::sync::NewSyncMailbox;

use crate::harness::{TestDb, on_both_backends};
use crate::sync::{World, world};

on_both_backends!(
    organizations_take_turns_in_a_claim,
    an_organizations_mailboxes_are_claimed_most_overdue_first,
    the_next_due_time_is_the_earliest_unclaimed_one
);

/// `n` mailboxes of `w`'s connection (a service account's users), each due at `due`.
async fn service_mailboxes(db: &TestDb, w: &World, n: usize, due: i64) -> Vec<uuid::Uuid> {
    let mut ids = Vec::new();
    for i in 0..n {
        let new = NewSyncMailbox { org_id: w.org, connection_id: w.connection, user_id: w.user, graph_user_id: Some(format!("user-{i}")) };
        ids.push(db.store.ensure_sync_mailbox(&new, due).await.unwrap().id);
    }
    ids
}

/// A second organization with one connection, as `world` makes the first.
async fn fabrikam(db: &TestDb) -> World {
    let org = db.store.create_organization("Fabrikam").await.unwrap();
    let carol = accounts::create_user(db.store.as_ref(), org.id, "carol@fabrikam.test", "Carol", Role::Admin, "password-4").await.unwrap();
    let new = NewConnection {
        org_id: org.id,
        user_id: carol.id,
        kind: ConnectionKind::ServiceUser,
        is_primary: true,
        ms_tenant_id: "0c8d7e6f-5a4b-4c3d-2e1f-000000000002".into(),
        ms_object_id: "oid-carol".into(),
        ms_username: "carol@fabrikam.test".into(),
        ms_name: "Carol".into(),
        granted_scopes: vec!["Mail.Read".into()],
        access_token: SecretString::from("access-carol"),
        access_expires_at: 1_000,
        refresh_token: None,
    };
    let audit = AuditEntry { at: 2, actor: "carol".into(), action: "connect".into(), summary: "connected".into() };
    let c = db.store.save_connection(&new, &audit).await.unwrap();
    World { org: org.id, user: carol.id, connection: c.id }
}

async fn organizations_take_turns_in_a_claim(db: &TestDb) {
    let northwind = world(db).await;
    let big = service_mailboxes(db, &northwind, 6, 100).await;
    let small_org = fabrikam(db).await;
    // Fabrikam's only mailbox fell due after all six of Northwind's.
    let small = service_mailboxes(db, &small_org, 1, 200).await[0];

    let claimed: Vec<uuid::Uuid> = db.store.claim_due_mailboxes("w1", 1_000, 30, 2).await.unwrap().iter().map(|l| l.mailbox.id).collect();
    assert_eq!(claimed.len(), 2);
    assert!(claimed.contains(&small), "Fabrikam's mailbox waits behind no more than one of Northwind's: {claimed:?}");
    assert!(big.contains(claimed.iter().find(|id| **id != small).unwrap()));
    // Then Northwind's others, most overdue first.
    let rest = db.store.claim_due_mailboxes("w1", 1_000, 30, 10).await.unwrap();
    assert_eq!(rest.len(), 5);
    assert!(rest.iter().all(|l| big.contains(&l.mailbox.id)));
}

async fn an_organizations_mailboxes_are_claimed_most_overdue_first(db: &TestDb) {
    let w = world(db).await;
    // Created in an order unlike their due times; two share a due time (as after "sync now").
    let mut due = Vec::new();
    for (i, at) in [300, 100, 200, 100, 50].into_iter().enumerate() {
        let new = NewSyncMailbox { org_id: w.org, connection_id: w.connection, user_id: w.user, graph_user_id: Some(format!("due-{i}")) };
        due.push((at, db.store.ensure_sync_mailbox(&new, at).await.unwrap().id));
    }
    due.sort();
    // One at a time, with earlier claims still leased: due order, ties by id.
    let mut claimed = Vec::new();
    for _ in 0..due.len() {
        let lease = db.store.claim_due_mailboxes("w1", 1_000, 30, 1).await.unwrap();
        assert_eq!(lease.len(), 1);
        claimed.push(lease[0].mailbox.id);
    }
    assert_eq!(claimed, due.iter().map(|(_, id)| *id).collect::<Vec<_>>());
    assert!(db.store.claim_due_mailboxes("w1", 1_000, 30, 1).await.unwrap().is_empty(), "all leased");
}

async fn the_next_due_time_is_the_earliest_unclaimed_one(db: &TestDb) {
    assert_eq!(db.store.next_due_at().await.unwrap(), None, "nothing scheduled");
    let w = world(db).await;
    let early = service_mailboxes(db, &w, 1, 300).await[0];
    service_mailboxes(db, &w, 2, 500).await;
    assert_eq!(db.store.next_due_at().await.unwrap(), Some(300));
    // A mailbox being synced (leased) or paused is not waited for.
    let lease = db.store.claim_due_mailboxes("w1", 400, 30, 1).await.unwrap().remove(0);
    assert_eq!(lease.mailbox.id, early);
    assert_eq!(db.store.next_due_at().await.unwrap(), Some(500));
    assert!(db.store.release_lease(early, lease.fence, 900).await.unwrap());
    assert_eq!(db.store.next_due_at().await.unwrap(), Some(500));
    db.store.set_mailbox_paused(early, Some(domain::PauseReason::Disabled), 400).await.unwrap();
    assert_eq!(db.store.next_due_at().await.unwrap(), Some(500));
}
