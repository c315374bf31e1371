//! "First sync reaches back": a mail folder's first round asks only for mail received in the last
//! `backfill_days` (MICROSOFT.md §3.3 `$filter=receivedDateTime ge …`), later rounds go on from the
//! deltaLink, and a restarted round (410) keeps the mail synced so far.

use crate::harness::*;
use domain::Resource;
use m365_emulator::Kind;
use std::collections::BTreeMap;

/// The stored mail of a mailbox: graph id → received (unix seconds).
async fn stored_mail(env: &Env, mailbox: uuid::Uuid) -> BTreeMap<String, i64> {
    let items = env.store.mailbox_items(mailbox, Resource::Mail).await.unwrap();
    items.into_iter().map(|i| (i.graph_id.clone(), i.occurred_at.unwrap_or_else(|| panic!("a message without a time: {i:?}")))).collect()
}

#[tokio::test]
async fn the_first_mail_sync_reaches_back_backfill_days_and_a_restart_keeps_what_it_synced() {
    let env = spawn().await;
    env.settings(|s| s.backfill_days = 30).await;
    let (_, conn) = env.connect(ALICE, true).await;
    let s = env.scheduler("backfill");
    s.reconcile_org(env.org).await.unwrap();
    let mb = env.mailbox_of(conn).await;
    one_run(&s).await.remove(0).result.unwrap();

    // The generated mailbox spans 90 days: some mail on each side of the cutoff.
    let cutoff = mail_cutoff(30);
    let mailbox = env.emulator_mail(ALICE).await;
    let recent: BTreeMap<String, i64> = mailbox.iter().filter(|m| m.3 >= cutoff).map(|m| (m.1.clone(), m.3)).collect();
    let older = mailbox.iter().filter(|m| m.3 < cutoff).count();
    assert!(recent.len() >= 10 && older >= 10, "the mailbox spans the cutoff: {} recent, {older} older", recent.len());

    // No stored message is older than the cutoff, and every newer one is there.
    let stored = stored_mail(&env, mb).await;
    let too_old: Vec<_> = stored.iter().filter(|(_, t)| **t < cutoff).collect();
    assert!(too_old.is_empty(), "{} stored from before the cutoff {cutoff}, e.g. {:?}", too_old.len(), too_old.first());
    assert_eq!(stored, recent, "exactly the mail received since the cutoff");
    env.assert_converged(mb, ALICE).await;
    let status = env.store.mailbox_status(mb).await.unwrap().unwrap();
    assert!(status.resources.iter().all(|r| r.first_sync_done), "{status:?}");

    // Later rounds go on from the deltaLink: new mail arrives, nothing older is fetched.
    let new = env.emu.add_item(ALICE, Kind::Message, Some("inbox"), serde_json::json!({"subject": "After the first sync"})).unwrap();
    s.sync_now(mb).await.unwrap();
    one_run(&s).await.remove(0).result.unwrap();
    let after = stored_mail(&env, mb).await;
    assert!(after.contains_key(&new.immutable_id), "the new message arrived");
    assert_eq!(after.len(), recent.len() + 1);
    assert!(after.values().all(|t| *t >= cutoff));

    // Time passes (a shorter backfill stands for it) and Microsoft evicts the cursors: every
    // folder restarts. The restarted rounds reach back to the oldest mail already stored, so the
    // end-of-round sweep removes nothing that is still in the mailbox.
    env.settings(|s| s.backfill_days = 7).await;
    env.emu.evict_sync_state(ALICE).unwrap();
    s.sync_now(mb).await.unwrap();
    let r = one_run(&s).await.remove(0).result.unwrap();
    assert!(r.resyncs >= 4, "every cursor restarted: {r:?}");
    assert_eq!(r.swept, 0, "{r:?}");
    assert_eq!(stored_mail(&env, mb).await, after, "the history synced so far is kept");
    env.emu.shutdown().await;
}
