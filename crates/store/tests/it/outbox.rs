//! The write outbox: recorded once per key before anything is sent, its mailbox made due, the
//! request sealed, steps and outcomes written only under the lease, and shown on Activity until
//! the synced item replaces it.

use crate::harness::{TestDb, on_both_backends};
use crate::sync::{item, mailbox, page, world};
use domain::email::EmailAddress;
use domain::writes::MailDraft;
use domain::{AuditEntry, ReasonCode, Resource, WriteRequest, WriteState};
use store::outbox::NewWrite;
use store::sync::{CommitOutcome, CursorUpdate};

on_both_backends!(
    a_write_is_recorded_once_per_key_sealed_and_makes_its_mailbox_due,
    steps_and_outcomes_are_written_under_the_lease_with_their_audit,
);

fn mail(subject: &str) -> WriteRequest {
    WriteRequest::SendMail(MailDraft {
        to: vec![EmailAddress::parse("bob@northwind.test").unwrap()],
        subject: subject.into(),
        body: "The confidential body".into(),
        ..Default::default()
    })
}

async fn a_write_is_recorded_once_per_key_sealed_and_makes_its_mailbox_due(db: &TestDb) {
    let w = world(db).await;
    let mb = mailbox(db, &w).await;
    let now = store::now_unix();
    let lease = db.store.claim_due_mailboxes("w1", now, 30, 10).await.unwrap().remove(0);
    assert!(!lease.writes_waiting, "no write recorded yet");
    db.store.release_lease(mb.id, lease.fence, now + 3600).await.unwrap();

    let new = NewWrite {
        org_id: w.org,
        mailbox_id: mb.id,
        user_id: w.user,
        actor: "Alice <alice@northwind.test>".into(),
        key: "key-1".into(),
        request: mail("Hello Bob"),
        headline: "Hello Bob".into(),
        now,
    };
    let (first, created) = db.store.record_write(&new).await.unwrap().unwrap();
    assert!(created);
    assert_eq!((first.headline.as_str(), first.state.clone(), first.attempts), ("Hello Bob", WriteState::Pending, 0));
    // The same key again (a double click): the same write, not a second one.
    let again = NewWrite { request: mail("Hello again"), ..new.clone() };
    let (second, created) = db.store.record_write(&again).await.unwrap().unwrap();
    assert!(!created);
    assert_eq!(second.id, first.id);
    assert_eq!(second.request, mail("Hello Bob"));
    assert_eq!(db.store.pending_writes(mb.id).await.unwrap().len(), 1);
    assert!(!db.raw.contains("The confidential body").await, "a message body is stored in plain text");
    // Its mailbox is due for mail at once.
    let lease = db.store.claim_due_mailboxes("w1", now, 30, 10).await.unwrap().remove(0);
    assert_eq!(lease.mailbox.notified, vec![Resource::Mail]);
    assert!(lease.writes_waiting, "the claim tells the run to look for writes");
    // Another organization's mailbox id records nothing.
    let other = NewWrite { org_id: domain::OrgId(uuid::Uuid::new_v4()), key: "key-2".into(), ..new };
    assert!(db.store.record_write(&other).await.unwrap().is_none());
}

async fn steps_and_outcomes_are_written_under_the_lease_with_their_audit(db: &TestDb) {
    let w = world(db).await;
    let mb = mailbox(db, &w).await;
    let now = store::now_unix();
    let new = NewWrite {
        org_id: w.org,
        mailbox_id: mb.id,
        user_id: w.user,
        actor: "Alice <alice@northwind.test>".into(),
        key: "k".into(),
        request: mail("Subject"),
        headline: "Subject".into(),
        now,
    };
    let (write, _) = db.store.record_write(&new).await.unwrap().unwrap();
    let lease = db.store.claim_due_mailboxes("w1", now, 30, 10).await.unwrap().remove(0);
    assert_eq!(db.store.note_write_attempt(mb.id, lease.fence, write.id, None, now).await.unwrap(), CommitOutcome::Committed { swept: 0 });
    db.store.note_write_attempt(mb.id, lease.fence, write.id, Some("draft-1"), now).await.unwrap();
    db.store.note_write_attempt(mb.id, lease.fence, write.id, None, now).await.unwrap();
    let seen = db.store.write_by_id(write.id).await.unwrap().unwrap();
    assert_eq!((seen.attempts, seen.step.as_deref()), (3, Some("draft-1")), "a later attempt keeps the step");
    db.store.hold_write(mb.id, lease.fence, write.id, now + 30).await.unwrap();
    assert_eq!(db.store.write_by_id(write.id).await.unwrap().unwrap().not_before, now + 30);

    // Shown on Activity while pending.
    assert_eq!(db.store.writes_shown(w.org, w.user, now - 60, 0).await.unwrap().len(), 1);
    let audit =
        AuditEntry { at: now, actor: "alice".into(), action: "office365.write.send_mail".into(), summary: "Email sent (id m-1).".into() };
    let done = WriteState::Done { graph_id: "m-1".into() };
    // A worker that lost its lease records nothing.
    assert_eq!(db.store.finish_write(mb.id, lease.fence + 1, write.id, &done, &audit, now).await.unwrap(), CommitOutcome::LeaseLost);
    assert_eq!(db.store.note_write_attempt(mb.id, lease.fence + 1, write.id, None, now).await.unwrap(), CommitOutcome::LeaseLost);
    db.store.finish_write(mb.id, lease.fence, write.id, &done, &audit, now).await.unwrap();
    assert!(db.store.pending_writes(mb.id).await.unwrap().is_empty());
    assert_eq!(db.store.write_by_id(write.id).await.unwrap().unwrap().state, done);
    assert!(db.store.audit_log(w.org, 10).await.unwrap().iter().any(|e| e.action == "office365.write.send_mail"));
    // Done but not synced yet: still shown (for a while); once the synced message is in, only it is.
    assert_eq!(db.store.writes_shown(w.org, w.user, now - 60, 0).await.unwrap().len(), 1);
    assert!(db.store.writes_shown(w.org, w.user, now - 60, now + 1).await.unwrap().is_empty(), "a done write is not shown for ever");
    let page = page(mb.id, lease.fence, vec![item("m-1", "Subject", now)], &[], CursorUpdate::DeltaLink("d".into()));
    db.store.commit_page(&page).await.unwrap();
    assert!(db.store.writes_shown(w.org, w.user, now - 60, 0).await.unwrap().is_empty(), "one row, never two");

    // A failure is kept with its reason and stays shown.
    let new = NewWrite { key: "k2".into(), ..new };
    let (failed, _) = db.store.record_write(&new).await.unwrap().unwrap();
    let outcome = WriteState::Failed { reason: ReasonCode::PermissionMissing, detail: "Access is denied.".into() };
    db.store.finish_write(mb.id, lease.fence, failed.id, &outcome, &audit, now).await.unwrap();
    let shown = db.store.writes_shown(w.org, w.user, now - 60, 0).await.unwrap();
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].state, outcome);
}
