//! Change notifications in the store: pending bits make a mailbox due and travel with its lease;
//! subscriptions are written under the lease, their client state sealed, found by Microsoft's id
//! and flagged by lifecycle events.

use crate::harness::{TestDb, on_both_backends};
use crate::sync::{mailbox, world};
use domain::Resource;
use store::secrets::{ExposeSecret, SecretString};
use store::subscriptions::{Subscription, SubscriptionFlag, SubscriptionState};
use store::sync::CommitOutcome;

on_both_backends!(
    a_change_makes_a_mailbox_due_and_travels_with_its_lease,
    a_change_during_a_run_is_kept_for_the_next_one,
    changes_claimed_by_a_worker_that_died_go_to_the_one_taking_over,
    subscriptions_are_kept_under_the_lease_with_a_sealed_client_state,
    lifecycle_events_flag_a_subscription_by_microsofts_id,
);

fn live(mailbox: uuid::Uuid, resource: Resource, container: &str, graph_id: &str, expires_at: i64) -> Subscription {
    Subscription {
        mailbox_id: mailbox,
        resource,
        container: container.into(),
        state: SubscriptionState::Live {
            graph_id: graph_id.into(),
            client_state: SecretString::from(format!("client-state-of-{graph_id}")),
            expires_at,
            renew: false,
        },
        attempted_at: 100,
    }
}

/// A mailbox synced and released until far in the future; returns its id.
async fn idle_mailbox(db: &TestDb) -> uuid::Uuid {
    let w = world(db).await;
    let mb = mailbox(db, &w).await;
    let now = store::now_unix();
    let lease = db.store.claim_due_mailboxes("w1", now, 30, 10).await.unwrap().remove(0);
    assert!(lease.mailbox.notified.is_empty());
    assert!(db.store.release_lease(mb.id, lease.fence, now + 3600).await.unwrap());
    assert!(db.store.claim_due_mailboxes("w1", now, 30, 10).await.unwrap().is_empty(), "not due for an hour");
    mb.id
}

async fn a_change_makes_a_mailbox_due_and_travels_with_its_lease(db: &TestDb) {
    let mb = idle_mailbox(db).await;
    let now = store::now_unix();
    // A burst of notifications coalesces into bits.
    for r in [Resource::Mail, Resource::Mail, Resource::Tasks] {
        assert!(db.store.note_changes(mb, &[r]).await.unwrap());
    }
    assert!(!db.store.note_changes(uuid::Uuid::new_v4(), &[Resource::Mail]).await.unwrap(), "no such mailbox");
    let lease = db.store.claim_due_mailboxes("w2", now, 30, 10).await.unwrap();
    assert_eq!(lease.len(), 1, "due through the notification though not by time");
    assert_eq!(lease[0].mailbox.notified, vec![Resource::Mail, Resource::Tasks]);
    assert_eq!(lease[0].mailbox.next_due_at, now + 3600, "the scheduled time is untouched");
    assert!(db.store.release_lease(mb, lease[0].fence, now + 3600).await.unwrap());
    assert!(db.store.claim_due_mailboxes("w2", now, 30, 10).await.unwrap().is_empty(), "the changes were synced");
}

async fn a_change_during_a_run_is_kept_for_the_next_one(db: &TestDb) {
    let mb = idle_mailbox(db).await;
    let now = store::now_unix();
    db.store.note_changes(mb, &[Resource::Mail]).await.unwrap();
    let lease = db.store.claim_due_mailboxes("w2", now, 30, 10).await.unwrap().remove(0);
    // Arrives after the run fetched mail: the release must not swallow it.
    db.store.note_changes(mb, &[Resource::Calendar]).await.unwrap();
    assert!(db.store.release_lease(mb, lease.fence, now + 3600).await.unwrap());
    let next = db.store.claim_due_mailboxes("w2", now, 30, 10).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].mailbox.notified, vec![Resource::Calendar]);
}

async fn changes_claimed_by_a_worker_that_died_go_to_the_one_taking_over(db: &TestDb) {
    let mb = idle_mailbox(db).await;
    let now = store::now_unix();
    db.store.note_changes(mb, &[Resource::Contacts]).await.unwrap();
    // The worker claims for one second and dies without releasing.
    let dead = db.store.claim_due_mailboxes("dies", now, 1, 10).await.unwrap().remove(0);
    assert_eq!(dead.mailbox.notified, vec![Resource::Contacts]);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let taken = db.store.claim_due_mailboxes("survivor", now, 30, 10).await.unwrap();
    assert_eq!(taken.len(), 1, "the claimed change keeps the mailbox due");
    assert!(taken[0].taken_over);
    assert_eq!(taken[0].mailbox.notified, vec![Resource::Contacts]);
}

async fn subscriptions_are_kept_under_the_lease_with_a_sealed_client_state(db: &TestDb) {
    let w = world(db).await;
    let mb = mailbox(db, &w).await;
    let now = store::now_unix();
    let lease = db.store.claim_due_mailboxes("w1", now, 30, 10).await.unwrap().remove(0);
    assert!(!lease.has_subscriptions);
    let mail = live(mb.id, Resource::Mail, "", "sub-mail", now + 1000);
    let list = live(mb.id, Resource::Tasks, "list-1", "sub-list-1", now + 2000);
    for s in [&mail, &list] {
        assert_eq!(db.store.save_subscription(lease.fence, s, now).await.unwrap(), CommitOutcome::Committed { swept: 0 });
    }
    assert!(!db.raw.contains("client-state-of-sub-mail").await, "a client state is stored in plain text");
    let kept = db.store.mailbox_subscriptions(mb.id).await.unwrap();
    assert_eq!(kept.iter().map(|s| s.graph_id().unwrap()).collect::<Vec<_>>(), vec!["sub-mail", "sub-list-1"]);
    let found = db.store.subscription_by_graph_id("sub-list-1").await.unwrap().unwrap();
    let SubscriptionState::Live { client_state, expires_at, renew, .. } = &found.state else { panic!("{found:?}") };
    assert_eq!((client_state.expose_secret(), *expires_at, *renew), ("client-state-of-sub-list-1", now + 2000, false));
    assert_eq!((found.mailbox_id, found.resource, found.container.as_str()), (mb.id, Resource::Tasks, "list-1"));
    assert!(found.is_live(now) && !found.is_live(now + 2000));

    // A failure replaces the live row; its Microsoft id no longer finds anything.
    let failed = Subscription {
        state: SubscriptionState::Failed { reason: domain::ReasonCode::PermissionMissing, detail: "Access is denied.".into() },
        ..mail.clone()
    };
    db.store.save_subscription(lease.fence, &failed, now).await.unwrap();
    assert!(db.store.subscription_by_graph_id("sub-mail").await.unwrap().is_none());
    let kept = db.store.mailbox_subscriptions(mb.id).await.unwrap();
    assert!(
        matches!(&kept[0].state, SubscriptionState::Failed { reason: domain::ReasonCode::PermissionMissing, detail } if detail == "Access is denied.")
    );

    // A worker that lost its lease writes nothing.
    assert!(db.store.release_lease(mb.id, lease.fence, now + 60).await.unwrap());
    let stale = live(mb.id, Resource::Calendar, "", "sub-stale", now + 1000);
    assert_eq!(db.store.save_subscription(lease.fence, &stale, now).await.unwrap(), CommitOutcome::LeaseLost);
    assert_eq!(db.store.remove_subscription(mb.id, lease.fence, Resource::Tasks, "list-1", now).await.unwrap(), CommitOutcome::LeaseLost);
    assert_eq!(db.store.mailbox_subscriptions(mb.id).await.unwrap().len(), 2);

    let again = db.store.claim_due_mailboxes("w1", now + 60, 30, 10).await.unwrap().remove(0);
    assert!(again.has_subscriptions, "the claim tells the run it keeps subscriptions");
    db.store.remove_subscription(mb.id, again.fence, Resource::Tasks, "list-1", now).await.unwrap();
    assert_eq!(db.store.mailbox_subscriptions(mb.id).await.unwrap().len(), 1);
    assert_eq!(db.store.forget_subscriptions(mb.id).await.unwrap(), 1);
    assert!(db.store.mailbox_subscriptions(mb.id).await.unwrap().is_empty());
}

async fn lifecycle_events_flag_a_subscription_by_microsofts_id(db: &TestDb) {
    let w = world(db).await;
    let mb = mailbox(db, &w).await;
    let now = store::now_unix();
    let lease = db.store.claim_due_mailboxes("w1", now, 30, 10).await.unwrap().remove(0);
    db.store.save_subscription(lease.fence, &live(mb.id, Resource::Mail, "", "sub-1", now + 1000), now).await.unwrap();
    assert!(db.store.flag_subscription("sub-1", SubscriptionFlag::Renew).await.unwrap());
    let s = db.store.subscription_by_graph_id("sub-1").await.unwrap().unwrap();
    assert!(matches!(s.state, SubscriptionState::Live { renew: true, .. }));
    assert!(db.store.flag_subscription("sub-1", SubscriptionFlag::Removed).await.unwrap());
    assert!(db.store.subscription_by_graph_id("sub-1").await.unwrap().is_none());
    assert!(matches!(db.store.mailbox_subscriptions(mb.id).await.unwrap()[0].state, SubscriptionState::Missing));
    assert!(!db.store.flag_subscription("sub-1", SubscriptionFlag::Renew).await.unwrap(), "gone");
    assert!(!db.store.flag_subscription("never-made", SubscriptionFlag::Removed).await.unwrap());
}
