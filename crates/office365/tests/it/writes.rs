//! Read-write features through the workflows: a write is refused (403) in a read-only organization
//! or without Microsoft's grant, whatever is sent; otherwise it is recorded once per composer key,
//! checked in the writer's words, and performed by the next sync round.

use crate::harness::{ADMIN, MEMBER, demo_form, spawn};
use domain::writes::MailDraft;
use domain::{EmailAddress, Resource, WriteKind, WriteRefusal, WriteRequest};
use office365::Error;

fn mail(subject: &str) -> WriteRequest {
    WriteRequest::SendMail(MailDraft {
        to: vec![EmailAddress::parse(ADMIN).unwrap()],
        subject: subject.into(),
        body: "Hi".into(),
        ..Default::default()
    })
}

/// The member connected through Microsoft's pages, first sync done.
async fn connected(env: &crate::harness::Env) {
    let url = env.o365.start_sign_in(&env.member, "connect").await.unwrap();
    let callback = m365_emulator::testkit::sign_in(&url, MEMBER).await.unwrap();
    env.o365.complete_sign_in(Some(&env.member), callback.query()).await.unwrap();
    env.scheduler.run_until_idle().await.unwrap();
}

#[tokio::test]
async fn a_read_only_organization_refuses_every_write_and_records_nothing() {
    let env = spawn().await;
    env.enable().await;
    env.activate().await;
    connected(&env).await;
    let offer = env.o365.write_offer(&env.member.user).await.unwrap();
    assert!(offer.allowed.is_empty(), "{offer:?}");
    assert!(offer.refused.iter().all(|(_, why)| why.contains("read-only")));
    let err = env.o365.record_write(&env.member.user, "key-read-only-1", mail("No")).await.unwrap_err();
    assert!(matches!(err, Error::WriteRefused(WriteRefusal::ReadOnly)), "{err}");
    assert_eq!(err.status(), 403);
    assert!(env.o365.my_writes(&env.member.user).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_read_write_organization_records_a_write_once_per_key_and_the_next_round_sends_it() {
    let env = spawn().await;
    env.enable_with(domain::office365::SettingsForm { access: "read_write".into(), ..demo_form() }).await;
    env.activate().await;
    connected(&env).await;
    let offer = env.o365.write_offer(&env.member.user).await.unwrap();
    for k in [WriteKind::SendMail, WriteKind::Reply, WriteKind::CreateEvent, WriteKind::CreateContact, WriteKind::CompleteTask] {
        assert!(offer.allows(k), "{k:?} not offered: {offer:?}");
    }
    assert!(!offer.task_lists.is_empty());

    // What a person typed is checked in their words; nothing is recorded.
    let empty = WriteRequest::SendMail(MailDraft { subject: "To nobody".into(), ..Default::default() });
    let err = env.o365.record_write(&env.member.user, "key-invalid-1", empty).await.unwrap_err();
    assert_eq!((err.status(), err.to_string()), (422, "Add at least one recipient.".to_string()));
    let err = env.o365.record_write(&env.member.user, "bad key", mail("x")).await.unwrap_err();
    assert_eq!(err.status(), 422);
    // A reply names a message of the writer's own synced mailbox.
    let stranger = WriteRequest::Reply { message: "not-a-synced-id".into(), all: false, draft: MailDraft::default() };
    assert_eq!(env.o365.record_write(&env.member.user, "key-stranger-1", stranger).await.unwrap_err().status(), 404);

    // Recorded once, however often the composer sends it.
    let first = env.o365.record_write(&env.member.user, "key-sent-0001", mail("From Activity")).await.unwrap();
    let again = env.o365.record_write(&env.member.user, "key-sent-0001", mail("From Activity")).await.unwrap();
    assert_eq!(first.id, again.id);
    assert!(first.pending && first.label == "Sending…", "{first:?}");
    assert_eq!(env.o365.my_writes(&env.member.user).await.unwrap().len(), 1);

    // The next round sends it and syncs it: the pending row gives way to the synced one.
    env.scheduler.run_until_idle().await.unwrap();
    assert_eq!(env.emu.counters().sent, 1);
    assert!(env.o365.my_writes(&env.member.user).await.unwrap().is_empty(), "one row, never two");
    let mailbox =
        env.store.sync_mailboxes_in_org(env.org).await.unwrap().into_iter().find(|m| m.user_id == env.member.user.user_id).unwrap();
    let sent = env.store.mailbox_items(mailbox.id, Resource::Mail).await.unwrap();
    assert_eq!(sent.iter().filter(|i| i.title == "From Activity").count(), 1);
}

#[tokio::test]
async fn a_write_microsoft_has_not_granted_is_refused_with_the_missing_permission() {
    let env = spawn().await;
    // Read-write is chosen, but the member's grant is still the read-only one she consented to.
    env.enable().await;
    env.activate().await;
    connected(&env).await;
    let form = domain::office365::SettingsForm { access: "read_write".into(), client_secret: String::new(), ..demo_form() };
    let saved = env.o365.save_settings(&env.admin.user, &form, Default::default()).await.unwrap();
    assert!(saved.saved, "{saved:?}");
    let err = env.o365.record_write(&env.member.user, "key-missing-1", mail("No grant")).await.unwrap_err();
    assert!(matches!(err, Error::WriteRefused(WriteRefusal::Missing(p)) if p == "Mail.ReadWrite.Shared"), "{err}");
    assert_eq!(err.status(), 403);
    assert!(err.to_string().contains("Admin consent"), "says who can grant it: {err}");
}
