//! Writes through the outbox, performed exactly once: a lost answer is looked into, not repeated;
//! a worker stopped mid-write is resumed by the next; a throttled write waits for `Retry-After`;
//! a write Microsoft refuses ends failed with the reason and who must act. Emulator counters of
//! performed operations prove each count.

use crate::harness::*;
use domain::writes::{ContactDraft, EventDraft, MailDraft, TaskDraft};
use domain::{EmailAddress, ReasonCode, Resource, WhoMustAct, WriteRequest, WriteState};
use m365_emulator::{FaultRule, Kind};
use std::time::Duration;
use store::outbox::NewWrite;

const WRITE_SCOPES: &str = "openid profile email offline_access User.Read Mail.ReadWrite Mail.Send Calendars.ReadWrite \
                            Contacts.ReadWrite Tasks.ReadWrite";

/// Alice connected with the read-write permissions, first sync done; a scheduler that retries
/// writes at once.
async fn alice(env: &Env) -> (std::sync::Arc<sync::Scheduler>, domain::UserId, uuid::Uuid) {
    let (user, connection) = env.connect_with(ALICE, true, WRITE_SCOPES).await;
    let mut cfg = test_config("writer");
    cfg.write_retry_secs = 0;
    let s = sync::Scheduler::new(env.engine(cfg));
    s.reconcile_org(env.org).await.unwrap();
    s.run_until_idle().await.unwrap();
    (s, user, env.mailbox_of(connection).await)
}

async fn record(env: &Env, user: domain::UserId, mailbox: uuid::Uuid, key: &str, request: WriteRequest) -> uuid::Uuid {
    let new = NewWrite {
        org_id: env.org,
        mailbox_id: mailbox,
        user_id: user,
        actor: "Alice <alice@northwind.test>".into(),
        key: key.into(),
        headline: request.headline(),
        request,
        now: store::now_unix(),
    };
    env.store.record_write(&new).await.unwrap().unwrap().0.id
}

fn mail_to_bob(subject: &str) -> WriteRequest {
    WriteRequest::SendMail(MailDraft {
        to: vec![EmailAddress::parse(BOB).unwrap()],
        subject: subject.into(),
        body: "Hello Bob".into(),
        ..Default::default()
    })
}

/// A day a week from now, `YYYY-MM-DD`: inside the window the sync reads events from whatever day
/// the tests run (a fixed date would leave it some weeks later).
fn next_week() -> String {
    let day = time::OffsetDateTime::now_utc().date() + time::Duration::days(7);
    format!("{:04}-{:02}-{:02}", day.year(), u8::from(day.month()), day.day())
}

fn lose_answer(route: &str, method: &str) -> FaultRule {
    FaultRule {
        route: Some(route.into()),
        method: Some(method.into()),
        status: Some(504),
        after_performing: true,
        count: 1,
        ..FaultRule::default()
    }
}

async fn state(env: &Env, id: uuid::Uuid) -> WriteState {
    env.store.write_by_id(id).await.unwrap().unwrap().state
}

fn inbox_count(env: &Env, email: &str, subject: &str) -> usize {
    env.emu.snapshot(email, Kind::Message, "inbox", true).unwrap().iter().filter(|m| m["subject"] == subject).count()
}

#[tokio::test]
async fn a_send_whose_answer_is_lost_is_sent_once_and_synced_as_one_row() {
    let env = spawn().await;
    let (s, user, mailbox) = alice(&env).await;
    env.emu.inject_fault(lose_answer("/send", "POST"));
    let id = record(&env, user, mailbox, "write-lost-send", mail_to_bob("Lost answer")).await;
    s.run_until_idle().await.unwrap();
    let WriteState::Done { graph_id } = state(&env, id).await else { panic!("{:?}", state(&env, id).await) };
    let c = env.emu.counters();
    assert_eq!(c.sent, 1, "sent once");
    assert_eq!(c.performed_matching("/send", None), 1);
    assert_eq!(c.created.get("message").copied(), Some(1), "one draft");
    assert_eq!(inbox_count(&env, BOB, "Lost answer"), 1);
    assert!(env.store.write_by_id(id).await.unwrap().unwrap().attempts >= 2, "tried, then looked");
    // The sent message synced under the same id: Activity shows one row.
    let synced = env.store.mailbox_items(mailbox, Resource::Mail).await.unwrap();
    assert_eq!(synced.iter().filter(|i| i.title == "Lost answer").count(), 1);
    assert!(synced.iter().any(|i| i.graph_id == graph_id));
    assert!(env.store.writes_shown(env.org, user, 0, 0).await.unwrap().is_empty(), "one row, never two");
    let audit = env.store.audit_log(env.org, 10).await.unwrap();
    let entry = audit.iter().find(|e| e.action == "office365.write.send_mail").expect("audited");
    assert!(entry.summary.contains(&graph_id) && !entry.summary.contains("Hello Bob"), "{entry:?}");
}

#[tokio::test]
async fn a_draft_whose_answer_is_lost_is_found_by_its_key_not_made_again() {
    let env = spawn().await;
    let (s, user, mailbox) = alice(&env).await;
    env.emu.inject_fault(lose_answer("/messages", "POST"));
    let id = record(&env, user, mailbox, "write-lost-draft", mail_to_bob("Draft answer lost")).await;
    s.run_until_idle().await.unwrap();
    assert!(matches!(state(&env, id).await, WriteState::Done { .. }));
    let c = env.emu.counters();
    assert_eq!((c.created.get("message").copied(), c.sent), (Some(1), 1), "one draft, one send");
    assert_eq!(inbox_count(&env, BOB, "Draft answer lost"), 1);
}

#[tokio::test]
async fn a_worker_stopped_between_making_the_draft_and_recording_it_is_resumed_once() {
    let env = spawn().await;
    let (s, user, mailbox) = alice(&env).await;
    // The draft is made, then its answer is held back; the worker is stopped meanwhile.
    env.emu.inject_fault(FaultRule {
        route: Some("/messages".into()),
        method: Some("POST".into()),
        delay_ms: Some(250),
        after_performing: true,
        count: 1,
        ..FaultRule::default()
    });
    let id = record(&env, user, mailbox, "write-killed", mail_to_bob("Survives a kill")).await;
    let running = s.tick().await.unwrap();
    assert_eq!(running.len(), 1);
    tokio::time::sleep(Duration::from_millis(120)).await;
    s.stop_workers().await;
    for h in running {
        let _ = h.await;
    }
    assert_eq!(state(&env, id).await, WriteState::Pending);
    assert_eq!(env.emu.counters().created.get("message").copied(), Some(1), "the draft was made before the stop");
    s.run_until_idle().await.unwrap();
    assert!(matches!(state(&env, id).await, WriteState::Done { .. }));
    let c = env.emu.counters();
    assert_eq!((c.created.get("message").copied(), c.sent), (Some(1), 1));
    assert_eq!(inbox_count(&env, BOB, "Survives a kill"), 1);
}

#[tokio::test]
async fn a_throttled_write_waits_for_retry_after() {
    let env = spawn().await;
    let (s, user, mailbox) = alice(&env).await;
    // Within the inline limit: waited out, then performed once.
    env.emu.inject_fault(FaultRule {
        route: Some("/messages".into()),
        method: Some("POST".into()),
        status: Some(429),
        retry_after: Some(1.0),
        count: 1,
        ..FaultRule::default()
    });
    let id = record(&env, user, mailbox, "write-throttled", mail_to_bob("After Retry-After")).await;
    let started = std::time::Instant::now();
    s.run_until_idle().await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After was not obeyed");
    assert!(matches!(state(&env, id).await, WriteState::Done { .. }));
    assert_eq!(env.emu.counters().sent, 1);
    // Longer than a run waits: the write is held until then, the mailbox due then, nothing sent.
    env.emu.inject_fault(FaultRule {
        route: Some("/messages".into()),
        method: Some("POST".into()),
        status: Some(429),
        retry_after: Some(60.0),
        count: 1,
        ..FaultRule::default()
    });
    let id = record(&env, user, mailbox, "write-held", mail_to_bob("Held back")).await;
    s.run_until_idle().await.unwrap();
    let held = env.store.write_by_id(id).await.unwrap().unwrap();
    assert_eq!(held.state, WriteState::Pending);
    assert!(held.not_before >= store::now_unix() + 50, "held until Retry-After: {}", held.not_before - store::now_unix());
    let due = env.store.sync_mailbox(mailbox).await.unwrap().unwrap().next_due_at;
    assert!(due <= held.not_before + 1, "the mailbox comes back for it");
    assert_eq!(env.emu.counters().sent, 1);
}

#[tokio::test]
async fn a_write_without_permission_ends_failed_with_the_reason_and_who_must_act() {
    let env = spawn().await;
    // Mail.Send not granted: the draft can be made, the send is refused.
    let scopes = WRITE_SCOPES.replace(" Mail.Send", "");
    let (user, connection) = env.connect_with(ALICE, true, &scopes).await;
    let s = env.scheduler("refused");
    s.reconcile_org(env.org).await.unwrap();
    s.run_until_idle().await.unwrap();
    let mailbox = env.mailbox_of(connection).await;
    let id = record(&env, user, mailbox, "write-refused", mail_to_bob("Never sent")).await;
    s.run_until_idle().await.unwrap();
    let WriteState::Failed { reason, .. } = state(&env, id).await else { panic!("{:?}", state(&env, id).await) };
    assert_eq!(reason, ReasonCode::PermissionMissing);
    assert_ne!(reason.who_must_act(), WhoMustAct::Nobody);
    assert_eq!(env.emu.counters().sent, 0);
    assert_eq!(inbox_count(&env, BOB, "Never sent"), 0);
    let shown = env.store.writes_shown(env.org, user, 0, 0).await.unwrap();
    assert_eq!(shown.len(), 1, "the failure stays on Activity");
    assert!(env.store.audit_log(env.org, 10).await.unwrap().iter().any(|e| e.action == "office365.write_failed.send_mail"));
}

#[tokio::test]
async fn events_contacts_and_tasks_whose_answers_are_lost_are_made_once() {
    let env = spawn().await;
    let (s, user, mailbox) = alice(&env).await;
    for route in ["/events", "/contacts", "/tasks"] {
        env.emu.inject_fault(lose_answer(route, "POST"));
    }
    let event = WriteRequest::CreateEvent(EventDraft {
        subject: "Planning".into(),
        start: format!("{}T10:00", next_week()),
        end: format!("{}T11:00", next_week()),
        time_zone: "UTC".into(),
        attendees: vec![EmailAddress::parse(BOB).unwrap()],
        ..Default::default()
    });
    let contact = WriteRequest::CreateContact(ContactDraft {
        given_name: "Nora".into(),
        surname: "New".into(),
        email: Some(EmailAddress::parse("nora@contoso.test").unwrap()),
        ..Default::default()
    });
    let list = env.store.cursors(mailbox).await.unwrap().into_iter().find(|c| c.resource == Resource::Tasks).unwrap().container;
    let task = WriteRequest::CreateTask(TaskDraft { list: list.clone(), title: "Call Nora".into(), due: Some(next_week()) });
    let ids = [
        record(&env, user, mailbox, "write-event", event).await,
        record(&env, user, mailbox, "write-contact", contact).await,
        record(&env, user, mailbox, "write-task", task).await,
    ];
    s.run_until_idle().await.unwrap();
    for id in ids {
        assert!(matches!(state(&env, id).await, WriteState::Done { .. }), "{:?}", state(&env, id).await);
    }
    let c = env.emu.counters();
    for kind in ["event", "contact", "task"] {
        assert_eq!(c.created.get(kind).copied(), Some(1), "{kind} made once: {:?}", c.created);
    }
    assert_eq!(c.invitations, 1, "Bob invited once");

    // Completing the task: the same however often; synced as completed.
    let WriteState::Done { graph_id: task_id } = state(&env, ids[2]).await else { unreachable!() };
    env.emu.inject_fault(lose_answer("/tasks/", "PATCH"));
    let done = record(&env, user, mailbox, "write-complete", WriteRequest::SetTaskDone { list, task: task_id.clone(), done: true }).await;
    s.run_until_idle().await.unwrap();
    assert_eq!(state(&env, done).await, WriteState::Done { graph_id: task_id.clone() });
    let synced = env.store.mailbox_item(mailbox, Resource::Tasks, &task_id).await.unwrap().expect("the new task synced");
    assert_eq!(synced.subtitle, "completed", "the synced task's status");
}

mod interleavings {
    //! Property: random interleavings of writes, mailbox changes made elsewhere, sync rounds and
    //! faults (lost answers, 429s, 503s on the write routes) end with the database equal to the
    //! mailbox and every write performed exactly once.

    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Step {
        /// 0 mail, 1 event, 2 contact, 3 task.
        Write(u8),
        /// The next write request of a kind: 0 answer lost after performing, 1 429, 2 503.
        Fault {
            kind: u8,
            how: u8,
        },
        /// A message arrives from elsewhere.
        Arrive,
        Sync,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => any::<u8>().prop_map(|k| Step::Write(k % 4)),
            3 => (any::<u8>(), any::<u8>()).prop_map(|(kind, how)| Step::Fault { kind: kind % 4, how: how % 3 }),
            1 => Just(Step::Arrive),
            2 => Just(Step::Sync),
        ]
    }

    const ROUTES: [&str; 4] = ["/messages", "/events", "/contacts", "/tasks"];
    const KINDS: [&str; 4] = ["message", "event", "contact", "task"];

    fn request(kind: u8, n: usize, list: &str) -> WriteRequest {
        let bob = || vec![EmailAddress::parse(BOB).unwrap()];
        match kind {
            0 => WriteRequest::SendMail(MailDraft { to: bob(), subject: format!("Write {n}"), body: "b".into(), ..Default::default() }),
            1 => WriteRequest::CreateEvent(EventDraft {
                subject: format!("Write {n}"),
                start: format!("{}T10:00", next_week()),
                end: format!("{}T11:00", next_week()),
                time_zone: "UTC".into(),
                ..Default::default()
            }),
            2 => WriteRequest::CreateContact(ContactDraft {
                given_name: format!("Write{n}"),
                surname: "Person".into(),
                ..Default::default()
            }),
            _ => WriteRequest::CreateTask(TaskDraft { list: list.into(), title: format!("Write {n}"), due: None }),
        }
    }

    async fn run(steps: &[Step]) {
        let env = spawn().await;
        let (s, user, mailbox) = alice(&env).await;
        let list = env.store.cursors(mailbox).await.unwrap().into_iter().find(|c| c.resource == Resource::Tasks).unwrap().container;
        let mut written = [0u64; 4];
        let sync = async || {
            s.sync_now(mailbox).await.unwrap();
            s.run_until_idle().await.unwrap();
        };
        for (n, st) in steps.iter().chain(std::iter::once(&Step::Sync)).enumerate() {
            match *st {
                Step::Write(k) => {
                    record(&env, user, mailbox, &format!("write-{n:04}-key"), request(k, n, &list)).await;
                    written[usize::from(k)] += 1;
                }
                Step::Fault { kind, how } => env.emu.inject_fault(FaultRule {
                    route: Some(ROUTES[usize::from(kind)].into()),
                    method: Some("POST".into()),
                    status: Some([504, 429, 503][usize::from(how)]),
                    retry_after: (how == 1).then_some(0.2),
                    after_performing: how == 0,
                    count: 1,
                    ..FaultRule::default()
                }),
                Step::Arrive => {
                    env.emu.add_item(ALICE, Kind::Message, Some("inbox"), serde_json::json!({"subject": format!("Arrived {n}")})).unwrap();
                }
                Step::Sync => sync().await,
            }
        }
        // Every write ends performed (the faults are one-offs), once.
        for _ in 0..5 {
            if env.store.pending_writes(mailbox).await.unwrap().is_empty() {
                break;
            }
            sync().await;
        }
        assert!(env.store.pending_writes(mailbox).await.unwrap().is_empty(), "writes left pending");
        let c = env.emu.counters();
        for (i, kind) in KINDS.iter().enumerate() {
            assert_eq!(c.created.get(*kind).copied().unwrap_or(0), written[i], "{kind}s made: {:?} for {steps:?}", c.created);
        }
        assert_eq!(c.sent, written[0], "mail sent");
        sync().await;
        env.assert_converged(mailbox, ALICE).await;
        env.emu.shutdown().await;
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: std::env::var("SYNC_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(8),
            max_shrink_iters: 16,
            ..ProptestConfig::default()
        })]

        #[test]
        fn writes_syncs_and_faults_in_any_order_end_equal_with_each_write_performed_once(steps in prop::collection::vec(step(), 1..16)) {
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(run(&steps));
        }
    }
}
