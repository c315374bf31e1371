//! Issue 13 (item 12): delta paging that never ends — an endless chain of nextLinks, or a nextLink
//! that is the link that fetched its page — ends the run with a status instead of holding the
//! mailbox forever, keeps what it committed, and a later round completes with nothing lost or
//! duplicated.

use crate::harness::*;
use m365_emulator::DeltaLinkLoop;
use std::time::Duration;
use sync::{Scheduler, SyncError};

const CAP: u32 = 20;

/// One run, which must end (not hang) while Microsoft loops.
async fn bounded_run(s: &std::sync::Arc<Scheduler>) -> sync::MailboxOutcome {
    tokio::time::timeout(Duration::from_secs(60), one_run(s)).await.expect("the run ends while Graph loops").remove(0)
}

#[tokio::test]
async fn an_endless_chain_of_next_links_stops_at_the_page_cap_and_the_next_round_goes_on_from_its_cursor() {
    let env = spawn().await;
    let (_, conn) = env.connect(ALICE, true).await;
    let mut cfg = test_config("paging");
    cfg.max_delta_pages_per_run = CAP;
    let s = Scheduler::new(env.engine(cfg));
    s.reconcile_org(env.org).await.unwrap();
    let mb = env.mailbox_of(conn).await;

    env.emu.loop_delta_links(Some(DeltaLinkLoop::Endless));
    let out = bounded_run(&s).await;
    assert!(matches!(out.result, Err(SyncError::PagingDidNotEnd { pages: CAP, .. })), "{:?}", out.result);
    let delta_requests = env.emu.counters().requests_matching("delta", None);
    assert_eq!(delta_requests, u64::from(CAP), "exactly the cap's pages were fetched");
    // The status says the run failed, and the chain's last nextLink is the cursor kept.
    let status = env.store.mailbox_status(mb).await.unwrap().unwrap();
    assert_eq!(status.state(store::now_unix()), domain::SyncState::Failed(domain::ReasonCode::Unexpected), "{status:?}");
    let cursors = env.store.cursors(mb).await.unwrap();
    assert!(cursors.iter().any(|c| c.link.as_deref().is_some_and(|l| l.contains("loop="))), "{cursors:?}");

    // Microsoft behaves again: the next round resumes from that nextLink (no restart) and completes.
    env.emu.loop_delta_links(None);
    s.sync_now(mb).await.unwrap();
    let report = bounded_run(&s).await.result.unwrap();
    assert_eq!(report.resyncs, 0, "resumed from the stored nextLink, not restarted: {report:?}");
    env.assert_converged(mb, ALICE).await;
    env.emu.shutdown().await;
}

#[tokio::test]
async fn a_next_link_repeating_the_link_that_fetched_it_is_a_protocol_error_reported_at_once() {
    let env = spawn().await;
    let (_, conn) = env.connect(ALICE, true).await;
    let s = env.scheduler("paging");
    s.reconcile_org(env.org).await.unwrap();
    let mb = env.mailbox_of(conn).await;

    env.emu.loop_delta_links(Some(DeltaLinkLoop::Repeat));
    let out = bounded_run(&s).await;
    let Err(SyncError::Graph(e)) = &out.result else { panic!("{:?}", out.result) };
    assert_eq!(e.code, "repeatedNextLink", "{e:?}");
    // Seen at the latest on the link's second echo (the first may differ in its spelling only).
    assert!(env.emu.counters().requests_matching("delta", None) <= 3, "{:?}", env.emu.counters().requests);
    let status = env.store.mailbox_status(mb).await.unwrap().unwrap();
    assert_eq!(status.state(store::now_unix()), domain::SyncState::Failed(domain::ReasonCode::Unexpected), "{status:?}");

    env.emu.loop_delta_links(None);
    s.sync_now(mb).await.unwrap();
    bounded_run(&s).await.result.unwrap();
    env.assert_converged(mb, ALICE).await;
    env.emu.shutdown().await;
}
