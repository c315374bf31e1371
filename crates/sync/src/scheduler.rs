//! The scheduler: tokio tasks inside every server instance that claim due mailboxes through the
//! store (a lease with a fencing token each), sync them with the [`Engine`], renew the lease while
//! the work goes on, and release it with the next due time. A worker whose lease could not be
//! renewed is stopped, and its fence keeps anything it might still try from being written.

use crate::engine::{Engine, RunReport};
use crate::error::SyncError;
use crate::metrics::SyncMetrics;
use domain::PauseReason;
use domain::office365::Office365Settings;
use domain::{ConnectionKind, MailboxHealth, OrgId, ServiceAccountUser};
use std::collections::HashMap;
use std::sync::Arc;
use store::UnixTime;
use store::sync::{Lease, NewSyncMailbox};
use tokio::sync::{Notify, Semaphore};
use tokio::task::{AbortHandle, JoinHandle};
use uuid::Uuid;

/// How one mailbox run ended.
#[derive(Debug)]
pub struct MailboxOutcome {
    pub mailbox: Uuid,
    pub result: Result<RunReport, SyncError>,
}

pub struct Scheduler {
    engine: Engine,
    slots: Arc<Semaphore>,
    wake: Arc<Notify>,
    /// Workers running now: mailbox → (fence, abort handle), for a clean hand-over at shutdown.
    running: std::sync::Mutex<HashMap<Uuid, (i64, AbortHandle)>>,
    /// Transient failures in a row per mailbox (this instance's view), for the backoff.
    failures: std::sync::Mutex<HashMap<Uuid, u32>>,
}

fn now() -> UnixTime {
    store::now_unix()
}

impl Scheduler {
    pub fn new(engine: Engine) -> Arc<Scheduler> {
        let slots = Arc::new(Semaphore::new(engine.config().max_concurrent_mailboxes.max(1)));
        Arc::new(Scheduler {
            engine,
            slots,
            wake: Arc::new(Notify::new()),
            running: std::sync::Mutex::new(HashMap::new()),
            failures: std::sync::Mutex::new(HashMap::new()),
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Looks for due work now (a change notification marked a mailbox, say) rather than at the
    /// next poll. Bursts coalesce: one pending wake-up is kept however often this is called.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// "Sync now" (UI): the mailbox is due at once and the scheduler wakes up.
    pub async fn sync_now(&self, mailbox: Uuid) -> Result<(), SyncError> {
        self.engine.store().request_sync_now(mailbox).await?;
        self.wake.notify_one();
        Ok(())
    }

    /// "Sync now" for every mailbox of a connection.
    pub async fn sync_connection_now(&self, org: OrgId, connection: Uuid) -> Result<(), SyncError> {
        for mb in self.engine.store().sync_mailboxes_in_org(org).await? {
            if mb.connection_id == connection {
                self.engine.store().request_sync_now(mb.id).await?;
            }
        }
        self.wake.notify_one();
        Ok(())
    }

    /// Every mailbox of an organization due now (after an admin fixed the Office 365 settings,
    /// say: runs parked on a client-secret error resume at once).
    pub async fn sync_org_now(&self, org: OrgId) -> Result<(), SyncError> {
        for mb in self.engine.store().sync_mailboxes_in_org(org).await? {
            self.engine.store().request_sync_now(mb.id).await?;
        }
        self.wake.notify_one();
        Ok(())
    }

    /// Schedules a mailbox explicitly (service-account users: `/users/{id}` through one connection).
    pub async fn schedule_mailbox(&self, new: &NewSyncMailbox) -> Result<Uuid, SyncError> {
        let mb = self.engine.store().ensure_sync_mailbox(new, now()).await?;
        self.wake.notify_one();
        Ok(mb.id)
    }

    /// Brings an organization's schedule in line with its settings and connections — the one
    /// place that decides which mailboxes exist and which are paused:
    /// - every individual connection's own mailbox is scheduled;
    /// - in service-account mode, each service account user's mailbox (`/users/{id}` through the
    ///   service connection, when that connection is of the mode's kind) is scheduled, except those
    ///   the service connection cannot open (health a lasting problem: the user's row already says
    ///   why); it belongs to the member with that address when there is one, else to the service
    ///   connection's owner. Mailboxes of the service connection whose user is no longer listed go;
    /// - mailboxes are paused when the integration is disabled, when they are members' own while the
    ///   organization uses a service account, or — with "poll primary integration only" — when they
    ///   are not the primary connection's own mailbox (service account users included); the others
    ///   resume;
    /// - mailboxes parked on a "someone must act" error are due again at once.
    ///
    /// Call after activating, connecting, reconnecting, disconnecting, adding or removing service
    /// account users, or saving settings. Should it fail, the scheduler's loop
    /// ([`Scheduler::spawn`]) brings the schedule right within `reconcile_every`.
    pub async fn reconcile_org(&self, org: OrgId) -> Result<(), SyncError> {
        self.reconcile(org, true).await
    }

    /// The periodic pass: [`Scheduler::reconcile_org`] for every organization with a connection.
    /// Mailboxes parked on a "someone must act" error stay parked here (nobody has acted; retrying
    /// them every pass would knock on Microsoft's door in a loop). One organization's failure is
    /// logged and does not stop the others; the next pass tries it again. Returns how many failed.
    pub async fn reconcile_all(&self) -> Result<usize, SyncError> {
        let mut failed = 0;
        for org in self.engine.store().orgs_with_connections().await? {
            if let Err(e) = self.reconcile(org, false).await {
                failed += 1;
                tracing::warn!(org = %org, error = %e, "could not reconcile the sync schedule; the next pass tries again");
            }
        }
        Ok(failed)
    }

    async fn reconcile(&self, org: OrgId, retry_parked: bool) -> Result<(), SyncError> {
        let store = self.engine.store();
        let settings = store.office365_settings(org).await?;
        let connections = store.connections_in_org(org).await?;
        for c in connections.iter().filter(|c| c.kind == ConnectionKind::Individual) {
            store
                .ensure_sync_mailbox(&NewSyncMailbox { org_id: org, connection_id: c.id, user_id: c.user_id, graph_user_id: None }, now())
                .await?;
        }
        // Before the pauses below, so a mailbox scheduled here is paused at once where it must be.
        self.reconcile_service_users(org, &settings).await?;
        for mb in store.sync_mailboxes_in_org(org).await? {
            let connection = connections.iter().find(|c| c.id == mb.connection_id);
            // The primary integration's own mailbox: not a service account user's (`/users/{id}`).
            let primary_own = connection.is_some_and(|c| c.is_primary) && mb.graph_user_id.is_none();
            let individual = connection.is_some_and(|c| c.kind == ConnectionKind::Individual);
            let pause = if !settings.enabled {
                Some(PauseReason::Disabled)
            } else if settings.is_service_account() && individual {
                Some(PauseReason::ServiceAccountMode)
            } else if settings.poll_primary_only && !primary_own {
                Some(PauseReason::PollPrimaryOnly)
            } else {
                None
            };
            if mb.paused != pause {
                if pause.is_some() {
                    // No longer synced: Microsoft stops notifying about it.
                    self.engine.retire_mailbox_subscriptions(settings.mode, &mb).await?;
                }
                store.set_mailbox_paused(mb.id, pause, now()).await?;
            }
            // A mailbox parked because someone had to act (reconnect, consent, licence, secret) is
            // tried again now that something changed; throttled ones keep their Retry-After.
            if retry_parked
                && pause.is_none()
                && let Some(st) = store.mailbox_status(mb.id).await?
                && matches!(st.state(now()), domain::SyncState::Failed(r) if !r.is_transient())
                && st.mailbox.next_due_at > now()
            {
                store.request_sync_now(mb.id).await?;
            }
        }
        self.wake.notify_one();
        Ok(())
    }

    /// Service-account mode: the service account users' mailboxes (see [`Scheduler::reconcile_org`]).
    async fn reconcile_service_users(&self, org: OrgId, settings: &Office365Settings) -> Result<(), SyncError> {
        let store = self.engine.store();
        let Some(service) = store.service_connection(org).await? else {
            return Ok(());
        };
        let active = settings.is_service_account() && service.kind == ConnectionKind::for_mode(settings.mode);
        let users = if active { store.service_account_users(org).await? } else { Vec::new() };
        // A mailbox the service connection cannot open is not scheduled: its row already says why.
        let syncable: Vec<&ServiceAccountUser> =
            users.iter().filter(|u| !matches!(u.health, Some(MailboxHealth::Problem(r)) if !r.is_transient())).collect();
        let (people, connections) = if syncable.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            (store.users_in_org(org).await?, store.connections_in_org(org).await?)
        };
        for u in &syncable {
            // The member whose data it is: the one whose own connection is this Microsoft account,
            // else the one with this address; else the service connection's owner.
            let same_account = |c: &&domain::ConnectionSummary| {
                c.kind == ConnectionKind::Individual && u.ms_object_id.as_deref().is_some_and(|o| c.ms_object_id.eq_ignore_ascii_case(o))
            };
            let owner = connections
                .iter()
                .find(same_account)
                .map(|c| c.user_id)
                .or_else(|| people.iter().find(|p| p.email.as_str().eq_ignore_ascii_case(&u.ms_username)).map(|p| p.id))
                .unwrap_or(service.user_id);
            let graph_user_id = u.ms_object_id.clone().unwrap_or_else(|| u.ms_username.clone());
            store
                .ensure_sync_mailbox(
                    &NewSyncMailbox { org_id: org, connection_id: service.id, user_id: owner, graph_user_id: Some(graph_user_id) },
                    now(),
                )
                .await?;
        }
        for mb in store.sync_mailboxes_in_org(org).await?.into_iter().filter(|m| m.connection_id == service.id) {
            let Some(graph) = &mb.graph_user_id else { continue };
            // Matched on the id the mailbox is scheduled by now: one scheduled by address before the
            // directory id was learned goes, or the person would be synced twice.
            let listed = syncable.iter().any(|u| u.graph_user_id().eq_ignore_ascii_case(graph));
            if !listed {
                self.engine.retire_mailbox_subscriptions(settings.mode, &mb).await?;
                store.remove_sync_mailbox(mb.id).await?;
            }
        }
        Ok(())
    }

    /// Claims as many due mailboxes as there are free worker slots and starts a worker for each.
    pub async fn tick(self: &Arc<Self>) -> Result<Vec<JoinHandle<MailboxOutcome>>, SyncError> {
        let free = self.slots.available_permits();
        if free == 0 {
            return Ok(Vec::new());
        }
        let cfg = self.engine.config();
        let leases =
            self.engine.store().claim_due_mailboxes(&cfg.owner, now(), cfg.lease_ttl_secs, u32::try_from(free).unwrap_or(u32::MAX)).await?;
        let mut handles = Vec::new();
        for lease in leases {
            if lease.taken_over {
                SyncMetrics::add(&self.engine.metrics().lease_takeovers, 1);
                tracing::info!(mailbox = %lease.mailbox.id, "took over an expired sync lease");
            }
            let Ok(slot) = self.slots.clone().try_acquire_owned() else {
                // More leases than slots cannot happen (we asked for `free`); hand it back.
                self.engine.store().release_lease(lease.mailbox.id, lease.fence, now()).await?;
                continue;
            };
            let me = self.clone();
            let (id, fence) = (lease.mailbox.id, lease.fence);
            // Registered before the task can finish, so its own removal always comes after.
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            let handle = tokio::spawn(async move {
                let outcome = me.work(lease).await;
                me.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                drop(slot);
                // A slot is free: the loop claims the next due mailbox now, not at its next poll
                // (a permit is kept if the loop is busy ticking, so no wake-up is lost).
                me.wake.notify_one();
                outcome
            });
            running.insert(id, (fence, handle.abort_handle()));
            drop(running);
            handles.push(handle);
        }
        Ok(handles)
    }

    /// Ticks until nothing is due (each worker awaited). For tests, the benchmark and "sync now"
    /// flows that want to wait for the result.
    pub async fn run_until_idle(self: &Arc<Self>) -> Result<Vec<MailboxOutcome>, SyncError> {
        let mut out = Vec::new();
        loop {
            let handles = self.tick().await?;
            if handles.is_empty() {
                return Ok(out);
            }
            for h in handles {
                match h.await {
                    Ok(o) => out.push(o),
                    Err(e) => tracing::error!(error = %e, "sync worker panicked or was cancelled"),
                }
            }
        }
    }

    /// Stops this instance's running workers and hands their mailboxes back at once (lease
    /// released, due now), so another instance — or this one after a restart — continues from the
    /// saved cursors without waiting for the leases to expire. A page being committed at that
    /// moment is either committed whole or not at all.
    pub async fn stop_workers(&self) {
        let running: Vec<(Uuid, (i64, AbortHandle))> = self.running.lock().unwrap_or_else(|p| p.into_inner()).drain().collect();
        for (id, (fence, handle)) in running {
            handle.abort();
            if let Err(e) = self.engine.store().release_lease(id, fence, 0).await {
                tracing::warn!(mailbox = %id, error = %e, "could not hand a sync lease back (it will expire)");
            }
        }
    }

    /// Runs the scheduler until `shutdown` turns true: ticks whenever a worker finishes (its slot
    /// is free for the next due mailbox) or something is made due ("sync now", a reconcile, a
    /// mailbox scheduled), and every `poll_every` as the safety net (mailboxes whose due time
    /// simply arrives, another instance's hand-over); reconciles every organization's schedule
    /// when it starts and every `reconcile_every` ([`Scheduler::reconcile_all`]), so a schedule a failed
    /// [`Scheduler::reconcile_org`] left wrong is put right without anyone calling it again. At
    /// shutdown, running workers are stopped and their mailboxes handed back
    /// ([`Scheduler::stop_workers`]).
    pub fn spawn(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(async move {
            let cfg = self.engine.config();
            let reconcile_every = cfg.reconcile_every.max(std::time::Duration::from_millis(1));
            let mut next_reconcile = tokio::time::Instant::now();
            loop {
                if *shutdown.borrow() {
                    self.stop_workers().await;
                    return;
                }
                if tokio::time::Instant::now() >= next_reconcile {
                    // Failures are logged per organization inside; each is tried again next pass.
                    if let Err(e) = self.reconcile_all().await {
                        tracing::warn!(error = %e, "could not list the organizations to reconcile; the next pass tries again");
                    }
                    next_reconcile = tokio::time::Instant::now() + reconcile_every;
                }
                if let Err(e) = self.tick().await {
                    tracing::warn!(error = %e, "sync scheduler tick failed");
                }
                let pause = cfg
                    .poll_every
                    .min(next_reconcile.saturating_duration_since(tokio::time::Instant::now()))
                    .min(self.until_next_due().await);
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = self.wake.notified() => {}
                    _ = shutdown.changed() => {}
                }
            }
        })
    }

    /// How long until the next mailbox falls due, so the loop wakes then and not only at its next
    /// poll; unbounded while every worker slot is busy (a finishing worker wakes the loop) or when
    /// nothing is scheduled. At least a tenth of a second, so a due time that another instance
    /// claims first cannot make the loop spin.
    async fn until_next_due(&self) -> std::time::Duration {
        const FLOOR: std::time::Duration = std::time::Duration::from_millis(100);
        if self.slots.available_permits() == 0 {
            return std::time::Duration::MAX;
        }
        match self.engine.store().next_due_at().await {
            Ok(Some(due)) => std::time::Duration::from_secs(u64::try_from(due - now()).unwrap_or(0)).max(FLOOR),
            Ok(None) => std::time::Duration::MAX,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the next due time; polling instead");
                std::time::Duration::MAX
            }
        }
    }

    /// Seconds until a mailbox whose run failed transiently is tried again: a backoff with jitter
    /// from `transient_retry_base`, doubling with each such failure in a row, at most
    /// `error_retry_secs`.
    fn transient_backoff(&self, mailbox: Uuid) -> i64 {
        let cfg = self.engine.config();
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let n = failures.entry(mailbox).or_default();
        let cap = std::time::Duration::from_secs(u64::try_from(cfg.error_retry_secs).unwrap_or(0));
        let wait = crate::engine::backoff(cfg.transient_retry_base, cap.max(cfg.transient_retry_base), *n);
        *n = n.saturating_add(1);
        i64::try_from(wait.as_secs()).unwrap_or(cfg.error_retry_secs).min(cfg.error_retry_secs)
    }

    /// One mailbox under its lease: the run, raced against lease renewal.
    async fn work(&self, lease: Lease) -> MailboxOutcome {
        let engine = &self.engine;
        let store = engine.store().clone();
        let cfg = engine.config().clone();
        let (id, fence) = (lease.mailbox.id, lease.fence);
        let renew = async {
            loop {
                tokio::time::sleep(cfg.renew_every).await;
                match store.renew_lease(id, fence, cfg.lease_ttl_secs).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(e) => {
                        tracing::warn!(mailbox = %id, error = %e, "could not renew a sync lease; stopping the worker");
                        return;
                    }
                }
            }
        };
        let result = tokio::select! {
            r = engine.run_leased(&lease) => r,
            _ = renew => Err(SyncError::LeaseLost),
        };
        let next_due = match &result {
            Ok(report) => {
                let interval = i64::from(report.interval_minutes) * 60;
                let live = matches!(report.delivery, Some(domain::ChangeDelivery::Live));
                let safety = i64::try_from(cfg.live_poll_every.as_secs()).unwrap_or(i64::MAX);
                let next = now() + if live { interval.max(safety) } else { interval };
                // A run of only the notified resources keeps the schedule, unless the mailbox just
                // stopped being live (a subscription died): then it is polled at its interval.
                let next = if report.full { next } else { lease.mailbox.next_due_at.min(next) };
                // Writes still waiting (Retry-After, an unknown outcome) come back on time.
                report.writes.retry_at.map_or(next, |at| next.min(at))
            }
            Err(SyncError::Throttled(until)) => *until,
            Err(SyncError::NeedsAttention(reason)) => {
                // The connection's own mailbox (or a token failure): the connection needs its owner
                // or an admin; the claim query skips it until it is reconnected. For one mailbox of
                // a service account, only that mailbox waits.
                // Only the tokens this instance used are marked: newer ones (another instance's
                // refresh, a reconnect) are not judged by what Graph said about older ones.
                if lease.mailbox.graph_user_id.is_none()
                    && reason.who_must_act() != domain::WhoMustAct::PlatformAdmin
                    && let Some(version) = engine.tokens().version_in_use(lease.mailbox.connection_id)
                    && let Err(e) = store.mark_connection_needs_attention(lease.mailbox.connection_id, version, *reason, now()).await
                {
                    tracing::warn!(mailbox = %id, error = %e, "could not mark the connection");
                }
                now() + cfg.attention_retry_secs
            }
            Err(e) if e.is_transient() => now() + self.transient_backoff(id),
            Err(_) => now() + cfg.error_retry_secs,
        };
        if result.is_ok() || !result.as_ref().is_err_and(SyncError::is_transient) {
            self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        }
        match &result {
            Ok(_) => SyncMetrics::add(&engine.metrics().mailbox_runs_ok, 1),
            Err(SyncError::LeaseLost) => SyncMetrics::add(&engine.metrics().leases_lost, 1),
            Err(e) => {
                tracing::info!(mailbox = %id, error = %e, "sync run ended early");
                SyncMetrics::add(&engine.metrics().mailbox_runs_failed, 1);
            }
        }
        if !matches!(result, Err(SyncError::LeaseLost))
            && let Err(e) = store.release_lease(id, fence, next_due).await
        {
            tracing::warn!(mailbox = %id, error = %e, "could not release a sync lease (it will expire)");
        }
        MailboxOutcome { mailbox: id, result }
    }
}
