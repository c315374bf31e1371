//! One mailbox's sync run, under a lease: for each enabled resource, list its containers, then
//! page through each container's delta from its stored cursor to the next deltaLink, committing
//! every page with its cursor in one fenced transaction.
//!
//! Every Graph request goes through [`Engine::graph`]: it waits for the mailbox's `Retry-After`
//! hold-off, takes one of the mailbox's 4 slots, and on failure retries by class — throttled
//! (hold the whole mailbox off for `Retry-After`), transient (exponential backoff with jitter),
//! 401 (refresh once) — or gives up with a reason.

use crate::batch::Listed;
use crate::error::SyncError;
use crate::items::to_row;
use crate::limiter::{Gates, MailboxGate};
use crate::metrics::SyncMetrics;
use crate::tokens::{TokenKind, TokenSource};
use domain::Resource;
use microsoft::{DeltaItem, DeltaNext, DeltaRequest, DeltaStart, FailureClass, GraphError, MailboxRef, MicrosoftClient, SecretString};
use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use store::sync::{CommitOutcome, CursorUpdate, Lease, PageCommit};
use store::{DynStore, UnixTime};

/// Tuning; the defaults suit production, tests shorten the waits.
#[derive(Clone)]
pub struct SyncConfig {
    /// This instance's name in lease rows (host name + process id, say).
    pub owner: String,
    pub lease_ttl_secs: i64,
    /// How often a running worker renews its lease (well under the TTL).
    pub renew_every: Duration,
    /// `Prefer: odata.maxpagesize`.
    pub page_size: u32,
    /// Mailboxes synced at once by this instance. The default is
    /// [`default_max_concurrent_mailboxes`] for this machine's CPUs
    /// ([`std::thread::available_parallelism`]) and [`DEFAULT_POOL_BOUND`] database connections:
    /// 4 mailboxes per CPU (a worker spends nearly all its time waiting for Graph, not computing),
    /// at least 4 and at most 32, and never more than the database pool's connections. The store
    /// handle does not say how large its pool is, so the bound is the smaller of its two pools
    /// (SQLite's 8 connections; PostgreSQL's has 16, so there half stays free for the pages even
    /// while every worker commits). Within each mailbox, ≤ 4 Graph requests stay the rule.
    pub max_concurrent_mailboxes: usize,
    /// How often the scheduler looks for due work when nobody wakes it.
    pub poll_every: Duration,
    /// How often the scheduler's own loop reconciles every organization's schedule
    /// ([`crate::Scheduler::reconcile_org`]'s bookkeeping), so a reconcile that failed after a
    /// change (database unreachable, the process stopped in between) heals by itself.
    pub reconcile_every: Duration,
    /// A `Retry-After` longer than this ends the run; the mailbox is due again when it has passed.
    pub max_inline_wait: Duration,
    /// Attempts per request before a run gives up (throttled and transient failures).
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Refresh access tokens this long before they expire.
    pub token_margin_secs: i64,
    /// A request that timed out may still run at Microsoft: its slot stays taken this long.
    pub abandoned_request_hold: Duration,
    /// Cursor restarts (410) allowed per container and run.
    pub max_resets_per_run: u32,
    /// Delta pages fetched per container and run before the run stops with
    /// [`SyncError::PagingDidNotEnd`]. At 100 items a page the default is a million items of one
    /// folder in one run, more than Exchange keeps in a folder, so only a Graph chaining nextLinks
    /// forever reaches it. The pages committed stay, each with its nextLink: the next run goes on
    /// from the last one, losing and repeating nothing.
    pub max_delta_pages_per_run: u32,
    /// A run first fetches its container listings and the next page of every container it
    /// continues (a stored link) in JSON batches of up to 20 (MICROSOFT.md §3.8): a mailbox with
    /// nothing new is then one round trip. Off: one request per listing and container. A batch
    /// given up on (a timeout) holds its slots like a single request given up on.
    pub batch_requests: bool,
    /// After a failed run, due again this much later; after a transient one (Microsoft or the
    /// database briefly unavailable), after a backoff with jitter from `transient_retry_base`,
    /// doubling with each failure in a row, up to this.
    pub error_retry_secs: i64,
    pub transient_retry_base: Duration,
    /// After a mailbox-specific "someone must act" (no access to one mailbox), looked at again
    /// this much later (the connection itself is not marked).
    pub attention_retry_secs: i64,
    /// Test hook: a worker stops right before each commit until released.
    pub commit_barrier: Option<Arc<CommitBarrier>>,
    /// The deployment's own app registration, used by organizations that do not bring theirs.
    pub deployment_app: Option<crate::DeploymentApp>,
    /// Where Microsoft posts change notifications; `None` when it cannot reach this deployment
    /// (the public URL is not https): every mailbox is then polled at its configured interval.
    pub notification_urls: Option<microsoft::NotificationUrls>,
    /// How often a mailbox whose every resource has live change notifications is still polled (the
    /// safety net); never more often than the organization's interval.
    pub live_poll_every: Duration,
    /// A subscription is renewed when less than this is left (well above `live_poll_every`, so a
    /// live mailbox's safety poll always comes in time).
    pub subscription_renew_before: Duration,
    /// How long a new or renewed subscription is asked to live (Microsoft allows 4,230 minutes for
    /// Outlook resources; a little less leaves room for clocks that disagree).
    pub subscription_lifetime_minutes: i64,
    /// After Microsoft refused a subscription, asked again this much later.
    pub subscription_retry_secs: i64,
    /// A write whose outcome was unknown (or whose mailbox was unavailable) is tried again this
    /// much later, after looking whether it was performed.
    pub write_retry_secs: i64,
    /// The clock subscription expiries are judged by (this machine's; tests move it).
    pub subscription_clock: crate::subscriptions::SubscriptionClock,
}

impl Default for SyncConfig {
    fn default() -> SyncConfig {
        SyncConfig {
            owner: format!("i360-{}", std::process::id()),
            // A killed instance's mailboxes are taken over within half a minute; the holder renews
            // three times per TTL, so one slow renewal does not lose a live lease.
            lease_ttl_secs: 30,
            renew_every: Duration::from_secs(10),
            page_size: 100,
            max_concurrent_mailboxes: default_max_concurrent_mailboxes(
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
                DEFAULT_POOL_BOUND,
            ),
            poll_every: Duration::from_secs(5),
            reconcile_every: Duration::from_secs(60),
            max_inline_wait: Duration::from_secs(30),
            max_attempts: 8,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
            token_margin_secs: 300,
            abandoned_request_hold: Duration::from_secs(30),
            max_resets_per_run: 3,
            max_delta_pages_per_run: 10_000,
            batch_requests: true,
            error_retry_secs: 300,
            transient_retry_base: Duration::from_secs(5),
            attention_retry_secs: 6 * 3600,
            commit_barrier: None,
            deployment_app: None,
            notification_urls: None,
            live_poll_every: Duration::from_secs(6 * 3600),
            subscription_renew_before: Duration::from_secs(24 * 3600),
            subscription_lifetime_minutes: microsoft::OUTLOOK_SUBSCRIPTION_MAX_MINUTES - 30,
            subscription_retry_secs: 3600,
            write_retry_secs: 30,
            subscription_clock: crate::subscriptions::SubscriptionClock::default(),
        }
    }
}

/// Mailbox workers per CPU in [`default_max_concurrent_mailboxes`].
const MAILBOXES_PER_CPU: usize = 4;
/// The fewest mailbox workers by default (the old constant), whatever the machine.
const MIN_DEFAULT_MAILBOXES: usize = 4;
/// The most mailbox workers by default, however many CPUs.
const MAX_DEFAULT_MAILBOXES: usize = 32;
/// The database connections [`SyncConfig::default`] sizes its workers for: the smaller of the
/// store's pools (SQLite 8, PostgreSQL 16), which the store handle does not expose.
pub const DEFAULT_POOL_BOUND: usize = 8;

/// Default mailbox workers for `parallelism` CPUs and a database pool of `pool_connections`: 4 per
/// CPU within 4..=32, then at most one per pool connection (a worker holds a connection only while
/// it claims, commits or releases, but that many at once is the most the pool serves without
/// queueing), and at least 1.
pub fn default_max_concurrent_mailboxes(parallelism: usize, pool_connections: usize) -> usize {
    parallelism.saturating_mul(MAILBOXES_PER_CPU).clamp(MIN_DEFAULT_MAILBOXES, MAX_DEFAULT_MAILBOXES).min(pool_connections).max(1)
}

/// Test hook (see [`SyncConfig::commit_barrier`]): the worker signals `reached` with a fetched page
/// in hand and waits for `proceed` before committing it.
#[derive(Debug, Default)]
pub struct CommitBarrier {
    pub reached: tokio::sync::Notify,
    pub proceed: tokio::sync::Notify,
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    pub pages: u64,
    pub upserts: u64,
    pub deletes: u64,
    pub resyncs: u64,
    /// Items removed at the end of a resync because Graph no longer had them.
    pub swept: u64,
    /// A run of every resource because the mailbox was due by time (or "sync now"), not one of only
    /// the resources change notifications named.
    pub full: bool,
    /// How the mailbox learns of changes after this run.
    pub delivery: Option<domain::ChangeDelivery>,
    /// What the run did with the mailbox's writes.
    pub writes: crate::outbox::OutboxReport,
    /// The organization's sync interval as the run read it: the scheduler makes the mailbox due
    /// again after it.
    pub interval_minutes: u32,
}

/// How a request failed, for the caller's decision.
pub(crate) enum CallFailure {
    /// Stop the run.
    Fatal(SyncError),
    /// 410: restart this cursor.
    Expired(GraphError),
    /// 404 on the container: it is gone.
    Gone,
    /// A write whose outcome is unknown (no answer, or a 5xx): Microsoft may have performed it.
    Unknown(GraphError),
}

pub(crate) struct RunCtx {
    /// The claim: the mailbox, the fence every write is made under, and what the claim saw.
    pub(crate) lease: Lease,
    pub(crate) mref: MailboxRef,
    pub(crate) token: TokenKind,
    /// The organization's settings as the run read them at its start.
    pub(crate) settings: domain::office365::Office365Settings,
    pub(crate) gate: Arc<MailboxGate>,
    /// How far back a mail folder's first round reaches ([`mail_received_since`]).
    mail_since: time::OffsetDateTime,
    /// Per mail folder, the oldest received time stored, read at the first cursor restart of the
    /// run (see [`Engine::mail_restart_since`]).
    oldest_mail: tokio::sync::OnceCell<BTreeMap<String, UnixTime>>,
    /// The mailbox's cursors as the run found them, read once (each resource's run changes only
    /// its own).
    cursors: tokio::sync::OnceCell<Vec<store::sync::SyncCursor>>,
    /// Listings and pages fetched ahead in batches ([`Engine::fetch_ahead`]).
    pub(crate) ahead: std::sync::Mutex<crate::batch::Ahead>,
    /// What the run writes at its end in one transaction ([`Engine::commit_quiet`]).
    quiet: std::sync::Mutex<Quiet>,
}

/// A run's writes that can wait for its end: pages that brought nothing and ended an
/// incremental round (losing one to a crash only means fetching it again from the older link,
/// which Graph still honours), and the resources whose pass completed.
#[derive(Default)]
struct Quiet {
    links: Vec<PageCommit>,
    succeeded: Vec<Resource>,
}

/// The sync engine: cheap to clone, shared by the scheduler's workers.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: DynStore,
    pub(crate) client: MicrosoftClient,
    pub(crate) tokens: TokenSource,
    pub(crate) gates: Gates,
    pub(crate) metrics: Arc<SyncMetrics>,
    pub(crate) config: SyncConfig,
}

fn now() -> UnixTime {
    store::now_unix()
}

/// The calendarView window (§3.4): from the first of the month `backfill_days` ago to the first of
/// the month after a year ahead. It slides monthly: a new window is a new cursor ("container"),
/// and the old one's items go once the new one has completed a round.
pub fn events_window(now: UnixTime, backfill_days: u32) -> (String, String) {
    let month_start =
        |t: time::OffsetDateTime| -> time::OffsetDateTime { t.replace_day(1).unwrap_or(t).replace_time(time::Time::MIDNIGHT) };
    let now = time::OffsetDateTime::from_unix_timestamp(now).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let start = month_start(now - time::Duration::days(i64::from(backfill_days)));
    let end = month_start(month_start(now + time::Duration::days(365)) + time::Duration::days(32));
    let fmt = |t: time::OffsetDateTime| format!("{:04}-{:02}-{:02}T00:00:00Z", t.year(), u8::from(t.month()), t.day());
    (fmt(start), fmt(end))
}

/// Where a mail folder's first round reaches back to (§3.3 `$filter=receivedDateTime ge …`): the
/// start (00:00 UTC) of the day `backfill_days` ago. Later rounds continue from the deltaLink, which
/// keeps the filter, so new mail keeps arriving and nothing older is ever fetched.
pub fn mail_received_since(now: UnixTime, backfill_days: u32) -> time::OffsetDateTime {
    let now = time::OffsetDateTime::from_unix_timestamp(now).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    (now - time::Duration::days(i64::from(backfill_days))).replace_time(time::Time::MIDNIGHT)
}

/// Exponential backoff with jitter: a random wait in [d/2, d], d = base · 2^attempt, capped at `max`.
pub(crate) fn backoff(base: Duration, max: Duration, attempt: u32) -> Duration {
    let d = base.saturating_mul(1u32 << attempt.min(16)).min(max);
    let half = d / 2;
    half + half.mul_f64(rand::random::<f64>())
}

/// The resources an organization syncs, from its feature list.
pub fn resources_for(chosen: &[Resource]) -> Vec<Resource> {
    let mut out = chosen.to_vec();
    out.sort();
    out.dedup();
    out
}

impl Engine {
    pub fn new(store: DynStore, client: MicrosoftClient, config: SyncConfig) -> Engine {
        let metrics = Arc::new(SyncMetrics::default());
        let tokens =
            TokenSource::new(store.clone(), client.clone(), metrics.clone(), config.token_margin_secs, config.deployment_app.clone());
        Engine { inner: Arc::new(Inner { store, client, tokens, gates: Gates::default(), metrics, config }) }
    }

    pub fn metrics(&self) -> Arc<SyncMetrics> {
        self.inner.metrics.clone()
    }

    pub fn config(&self) -> &SyncConfig {
        &self.inner.config
    }

    /// The per-mailbox request gates (for inspection: highest concurrency seen).
    pub fn gates(&self) -> &Gates {
        &self.inner.gates
    }

    /// Access tokens for connections and organizations (refreshed, rotated and cached here): the
    /// settings pages use the same source as the workers.
    pub fn tokens(&self) -> &TokenSource {
        &self.inner.tokens
    }

    pub fn store(&self) -> &DynStore {
        &self.inner.store
    }

    fn backoff(&self, attempt: u32) -> Duration {
        backoff(self.inner.config.backoff_base, self.inner.config.backoff_max, attempt)
    }

    /// One Graph call with the mailbox's limits and the retry policy.
    pub(crate) async fn graph<T, F, Fut>(&self, ctx: &RunCtx, resumable: bool, op: F) -> Result<T, CallFailure>
    where
        F: FnMut(SecretString) -> Fut,
        Fut: Future<Output = Result<T, GraphError>>,
    {
        self.graph_with(ctx, resumable, true, op).await
    }

    /// [`Engine::graph`]; a call that must not be `repeatable` blindly (a write: a timeout or a 5xx
    /// may come after Microsoft performed it) ends with [`CallFailure::Unknown`] instead of being
    /// sent again. Throttled and 401 answers are still retried: Microsoft performed nothing then.
    pub(crate) async fn graph_with<T, F, Fut>(&self, ctx: &RunCtx, resumable: bool, repeatable: bool, mut op: F) -> Result<T, CallFailure>
    where
        F: FnMut(SecretString) -> Fut,
        Fut: Future<Output = Result<T, GraphError>>,
    {
        let cfg = &self.inner.config;
        let metrics = &self.inner.metrics;
        let mut attempt = 0u32;
        // After a 401: one fresh token, once per call.
        let (mut force_next, mut refreshed) = (false, false);
        loop {
            if let Some(t) = ctx.gate.not_before() {
                let wait = t.saturating_duration_since(tokio::time::Instant::now());
                if wait > cfg.max_inline_wait {
                    return Err(CallFailure::Fatal(SyncError::Throttled(now() + i64::try_from(wait.as_secs()).unwrap_or(i64::MAX) + 1)));
                }
            }
            let token = self
                .inner
                .tokens
                .access_token_as_of(ctx.token, &ctx.settings, std::mem::take(&mut force_next))
                .await
                .map_err(CallFailure::Fatal)?;
            let slot = ctx.gate.acquire().await;
            let result = op(token).await;
            let e = match result {
                Ok(v) => {
                    metrics.request(Some(200));
                    return Ok(v);
                }
                Err(e) => e,
            };
            metrics.request(e.status);
            let class = match e.class() {
                FailureClass::CursorExpired if !resumable => FailureClass::Transient(None),
                c => c,
            };
            match class {
                FailureClass::Throttled(_) => {
                    drop(slot);
                    self.hold_off_as_asked(ctx, &e, attempt);
                    tracing::debug!(mailbox = %ctx.lease.mailbox.id, "Graph throttled this mailbox");
                }
                FailureClass::Transient(_) => {
                    if e.status.is_none() {
                        slot.linger(cfg.abandoned_request_hold);
                    } else {
                        drop(slot);
                    }
                    self.hold_off_as_asked(ctx, &e, attempt);
                    if !repeatable {
                        return Err(CallFailure::Unknown(e));
                    }
                    if attempt + 1 < cfg.max_attempts {
                        tokio::time::sleep(self.backoff(attempt)).await;
                    }
                }
                FailureClass::TokenRejected if !refreshed => {
                    drop(slot);
                    (force_next, refreshed) = (true, true);
                    continue;
                }
                FailureClass::CursorExpired => return Err(CallFailure::Expired(e)),
                FailureClass::ContainerGone if resumable => return Err(CallFailure::Gone),
                FailureClass::NeedsAttention(reason) => return Err(CallFailure::Fatal(SyncError::NeedsAttention(reason))),
                FailureClass::TokenRejected | FailureClass::ContainerGone | FailureClass::Other => {
                    return Err(CallFailure::Fatal(SyncError::Graph(e)));
                }
            }
            attempt += 1;
            if attempt >= cfg.max_attempts {
                return Err(CallFailure::Fatal(match e.class() {
                    FailureClass::Throttled(ra) => {
                        SyncError::Throttled(now() + i64::try_from(ra.unwrap_or_default().as_secs()).unwrap_or(0) + 1)
                    }
                    _ => SyncError::Graph(e),
                }));
            }
        }
    }

    /// Holds the mailbox's requests off as a refused request asks: a 429 for its Retry-After (or a
    /// backoff after `attempt` failures), any other refusal for the Retry-After it carries (a 503),
    /// with a small margin since our clock starts after Microsoft's did. `true` when it did.
    pub(crate) fn hold_off_as_asked(&self, ctx: &RunCtx, e: &GraphError, attempt: u32) -> bool {
        let wait = match e.class() {
            FailureClass::Throttled(retry_after) => {
                SyncMetrics::add(&self.inner.metrics.throttled, 1);
                retry_after.unwrap_or_else(|| self.backoff(attempt))
            }
            _ => match e.retry_after {
                Some(retry_after) => retry_after,
                None => return false,
            },
        };
        ctx.gate.hold_off(wait + Duration::from_millis(50));
        true
    }

    /// A list call (containers) through the retry policy.
    async fn list<F, Fut>(&self, ctx: &RunCtx, op: F) -> Result<Vec<microsoft::Container>, SyncError>
    where
        F: FnMut(SecretString) -> Fut,
        Fut: Future<Output = Result<Vec<microsoft::Container>, GraphError>>,
    {
        match self.graph(ctx, false, op).await {
            Ok(v) => Ok(v),
            Err(CallFailure::Fatal(e)) => Err(e),
            Err(CallFailure::Expired(e) | CallFailure::Unknown(e)) => Err(SyncError::Graph(e)),
            Err(CallFailure::Gone) => Ok(Vec::new()),
        }
    }

    /// Syncs a claimed mailbox: every enabled resource, each container to its next deltaLink.
    /// Writes only while `lease.fence` is current; returns [`SyncError::LeaseLost`] otherwise.
    pub async fn run_leased(&self, lease: &Lease) -> Result<RunReport, SyncError> {
        let mb = &lease.mailbox;
        let settings = self.inner.store.office365_settings(mb.org_id).await?;
        if !settings.enabled {
            // Disabled since the claim (reconcile_org pauses it next): touch nothing.
            return Ok(RunReport { interval_minutes: settings.sync_interval_minutes, ..RunReport::default() });
        }
        let mref = match &mb.graph_user_id {
            Some(id) => MailboxRef::User(id.clone()),
            None => MailboxRef::Me,
        };
        let ctx = RunCtx {
            token: TokenSource::kind_for(settings.mode, mb.org_id, mb.connection_id, mb.graph_user_id.is_some()),
            gate: self.inner.gates.gate(mb.id),
            lease: lease.clone(),
            mref,
            mail_since: mail_received_since(now(), settings.backfill_days),
            settings,
            oldest_mail: tokio::sync::OnceCell::new(),
            cursors: tokio::sync::OnceCell::new(),
            ahead: Default::default(),
            quiet: Default::default(),
        };
        // Writes first: the items they make are then synced by this very run.
        let writes = self.perform_writes(&ctx).await?;
        // Due by time ("sync now" included): every resource. Only notified: just those.
        let full = mb.next_due_at <= now();
        let mut report = RunReport { full, writes, interval_minutes: ctx.settings.sync_interval_minutes, ..RunReport::default() };
        let window = events_window(now(), ctx.settings.backfill_days);
        let resources: Vec<Resource> =
            resources_for(&ctx.settings.resources).into_iter().filter(|r| full || mb.notified.contains(r)).collect();
        // A failure of the batches that fetch ahead (no access token) is the first resource's.
        let mut ahead = Some(self.fetch_ahead(&ctx, &resources, &window).await);
        for resource in resources {
            let result = match ahead.take() {
                Some(Err(e)) => Err(e),
                _ => self.run_resource(&ctx, resource, &window, &mut report).await,
            };
            if let Err(e) = result {
                // The resources that completed before this one keep their success.
                if !matches!(e, SyncError::LeaseLost) {
                    self.commit_quiet(&ctx).await?;
                }
                let throttled_until = match &e {
                    SyncError::Throttled(t) => Some(*t),
                    _ => None,
                };
                // Fenced like every other write: a worker that lost its lease leaves the status to
                // the worker that holds it now.
                if !matches!(e, SyncError::LeaseLost)
                    && self.inner.store.record_resource_error(mb.id, lease.fence, resource, e.reason(), throttled_until, now()).await?
                        == CommitOutcome::LeaseLost
                {
                    return Err(SyncError::LeaseLost);
                }
                return Err(e);
            }
        }
        self.commit_quiet(&ctx).await?;
        report.delivery = Some(self.keep_subscriptions(&ctx).await?);
        Ok(report)
    }

    async fn run_resource(
        &self,
        ctx: &RunCtx,
        resource: Resource,
        window: &(String, String),
        report: &mut RunReport,
    ) -> Result<(), SyncError> {
        let (client, mref) = (&self.inner.client, &ctx.mref);
        let containers: Vec<(String, Option<u64>)> = match (resource, ctx.take_listing(resource)) {
            (Resource::Calendar, _) => {
                vec![microsoft::Container { id: format!("{}/{}", window.0, window.1), display_name: String::new(), total_items: None }]
            }
            (_, Some(Listed::Whole(listed))) => listed,
            (_, Some(Listed::Started(start))) => {
                let start = &start;
                self.list(ctx, |t| async move { client.finish_listing(&t, mref, start).await }).await?
            }
            (_, None) => self.list(ctx, |t| async move { client.containers(&t, mref, resource).await }).await?,
        }
        .into_iter()
        .map(|c| (c.id, c.total_items))
        .collect();
        let cursors: BTreeMap<String, store::sync::SyncCursor> =
            self.run_cursors(ctx).await?.iter().filter(|c| c.resource == resource).map(|c| (c.container.clone(), c.clone())).collect();
        let first_sync = containers.iter().any(|(id, _)| cursors.get(id).is_none_or(|c| c.full_round));
        if first_sync && resource == Resource::Mail {
            let total = containers.iter().map(|(_, t)| t.unwrap_or(0)).sum();
            self.inner.store.set_estimated_total(ctx.lease.mailbox.id, resource, Some(total)).await?;
        }
        for (container, _) in &containers {
            let cursor = cursors.get(container);
            let incremental = cursor.is_some_and(|c| !c.full_round);
            let link = cursor.and_then(|c| c.link.clone());
            self.run_container(ctx, resource, container, (link, incremental), report).await?;
        }
        // Containers Graph no longer lists (deleted folders, an old calendar window) go, after the
        // live ones completed their round.
        for gone in cursors.keys().filter(|k| !containers.iter().any(|(id, _)| id == *k)) {
            if self.inner.store.drop_container(ctx.lease.mailbox.id, ctx.lease.fence, resource, gone).await? == CommitOutcome::LeaseLost {
                return Err(SyncError::LeaseLost);
            }
        }
        ctx.quiet.lock().unwrap_or_else(|p| p.into_inner()).succeeded.push(resource);
        Ok(())
    }

    /// The test hook [`SyncConfig::commit_barrier`], before each commit.
    async fn commit_barrier(&self) {
        if let Some(b) = &self.inner.config.commit_barrier {
            b.reached.notify_one();
            b.proceed.notified().await;
        }
    }

    /// Writes what the run kept for its end ([`Quiet`]) in one transaction.
    async fn commit_quiet(&self, ctx: &RunCtx) -> Result<(), SyncError> {
        let quiet = std::mem::take(&mut *ctx.quiet.lock().unwrap_or_else(|p| p.into_inner()));
        if quiet.links.is_empty() && quiet.succeeded.is_empty() {
            return Ok(());
        }
        self.commit_barrier().await;
        match self.inner.store.commit_quiet(ctx.lease.mailbox.id, ctx.lease.fence, &quiet.links, &quiet.succeeded, now()).await? {
            CommitOutcome::LeaseLost => Err(SyncError::LeaseLost),
            CommitOutcome::Committed { .. } => Ok(()),
        }
    }

    /// The mailbox's cursors at the start of the run (one read per run).
    pub(crate) async fn run_cursors<'c>(&self, ctx: &'c RunCtx) -> Result<&'c [store::sync::SyncCursor], SyncError> {
        Ok(ctx.cursors.get_or_try_init(|| async { self.inner.store.cursors(ctx.lease.mailbox.id).await }).await?)
    }

    /// The `receivedDateTime` a restarted mail round asks from: the backfill start or the oldest
    /// message stored for the folder, whichever is earlier. The stored messages are all newer than
    /// the filter their first round used, so the restarted round sees them again and its sweep
    /// removes only what Graph no longer has, not the mail that aged past the backfill meanwhile.
    async fn mail_restart_since(&self, ctx: &RunCtx, container: &str) -> Result<time::OffsetDateTime, SyncError> {
        let oldest = ctx
            .oldest_mail
            .get_or_try_init(|| async {
                let mut oldest: BTreeMap<String, UnixTime> = BTreeMap::new();
                for item in self.inner.store.mailbox_items(ctx.lease.mailbox.id, Resource::Mail).await? {
                    if let Some(t) = item.occurred_at {
                        let o = oldest.entry(item.container).or_insert(t);
                        *o = (*o).min(t);
                    }
                }
                Ok::<_, SyncError>(oldest)
            })
            .await?;
        let stored = oldest.get(container).and_then(|t| time::OffsetDateTime::from_unix_timestamp(*t).ok());
        Ok(stored.map_or(ctx.mail_since, |t| t.min(ctx.mail_since)))
    }

    /// Counts a committed page in the metrics and the run's report; an id already upserted in this
    /// round (`upserted`) is stored again but not counted twice.
    fn count_commit(&self, commit: &PageCommit, swept: u64, upserted: &mut HashSet<String>, report: &mut RunReport) {
        let m = &self.inner.metrics;
        let upserts = commit.upserts.iter().filter(|r| upserted.insert(r.graph_id.clone())).count() as u64;
        SyncMetrics::add(&m.pages_committed, 1);
        SyncMetrics::add(&m.items_upserted, upserts);
        SyncMetrics::add(&m.items_deleted, commit.deletes.len() as u64 + swept);
        report.pages += 1;
        report.upserts += upserts;
        report.deletes += commit.deletes.len() as u64;
        report.swept += swept;
    }

    async fn run_container(
        &self,
        ctx: &RunCtx,
        resource: Resource,
        container: &str,
        (link, incremental): (Option<String>, bool),
        report: &mut RunReport,
    ) -> Result<(), SyncError> {
        let sync = &self.inner.store;
        let client = &self.inner.client;
        let mut start = link.map(DeltaStart::Link).unwrap_or(DeltaStart::Initial);
        // Mail's first round reaches back `backfill_days` only; a restarted one (after a 410)
        // reaches back to the oldest message already stored too, so that the round's sweep keeps
        // the history synced so far.
        let mut received_since = (resource == Resource::Mail).then_some(ctx.mail_since);
        let (mut resets, mut pages) = (0, 0);
        // Ids already upserted in this round: Graph may repeat an item on the next page (calendarView
        // delta does), and the repeat is stored again (it may be newer) but not counted twice.
        let mut upserted: HashSet<String> = HashSet::new();
        let window = if resource == Resource::Calendar { container.split_once('/') } else { None };
        loop {
            let req = DeltaRequest {
                mailbox: &ctx.mref,
                resource,
                container: (resource != Resource::Calendar).then_some(container),
                window,
                received_since,
                page_size: self.inner.config.page_size,
                start: start.clone(),
            };
            let req = &req;
            let fetched = match ctx.take_prefetched(resource, container, &start) {
                Some(page) => Ok(page),
                None => self.graph(ctx, true, |t| async move { client.delta_page(&t, req).await }).await,
            };
            let page = match fetched {
                Ok(page) => page,
                Err(CallFailure::Fatal(e)) => return Err(e),
                Err(CallFailure::Unknown(e)) => return Err(SyncError::Graph(e)),
                Err(CallFailure::Gone) => {
                    return match sync.drop_container(ctx.lease.mailbox.id, ctx.lease.fence, resource, container).await? {
                        CommitOutcome::LeaseLost => Err(SyncError::LeaseLost),
                        CommitOutcome::Committed { .. } => Ok(()),
                    };
                }
                Err(CallFailure::Expired(e)) => {
                    resets += 1;
                    if resets > self.inner.config.max_resets_per_run {
                        return Err(SyncError::Graph(e));
                    }
                    tracing::info!(mailbox = %ctx.lease.mailbox.id, resource = resource.as_str(), "delta cursor expired: restarting it");
                    if sync.reset_cursor(ctx.lease.mailbox.id, ctx.lease.fence, resource, container, now()).await?
                        == CommitOutcome::LeaseLost
                    {
                        return Err(SyncError::LeaseLost);
                    }
                    SyncMetrics::add(&self.inner.metrics.resyncs, 1);
                    report.resyncs += 1;
                    upserted.clear();
                    if resource == Resource::Mail {
                        received_since = Some(self.mail_restart_since(ctx, container).await?);
                    }
                    start = DeltaStart::Initial;
                    continue;
                }
            };
            let commit = page_commit(ctx, resource, container, &page);
            // The one page of an incremental round that brought nothing: its link waits for the
            // run's end ([`Quiet`]).
            let quiet = incremental && pages == 0 && resets == 0 && commit.upserts.is_empty() && commit.deletes.is_empty();
            if quiet && matches!(page.next, DeltaNext::DeltaLink(_)) {
                self.count_commit(&commit, 0, &mut upserted, report);
                ctx.quiet.lock().unwrap_or_else(|p| p.into_inner()).links.push(commit);
                return Ok(());
            }
            self.commit_barrier().await;
            match sync.commit_page(&commit).await? {
                CommitOutcome::LeaseLost => return Err(SyncError::LeaseLost),
                CommitOutcome::Committed { swept } => self.count_commit(&commit, swept, &mut upserted, report),
            }
            pages += 1;
            match page.next {
                DeltaNext::NextLink(_) if pages >= self.inner.config.max_delta_pages_per_run => {
                    tracing::warn!(mailbox = %ctx.lease.mailbox.id, resource = resource.as_str(), pages, "delta paging did not end; stopping the run");
                    return Err(SyncError::PagingDidNotEnd { resource, pages });
                }
                DeltaNext::NextLink(l) => start = DeltaStart::Link(l),
                DeltaNext::DeltaLink(_) => return Ok(()),
            }
        }
    }
}

/// What to commit for one delta page: its items (the last word on each id within the page wins:
/// an item may be removed and re-added) with the link that follows it.
fn page_commit(ctx: &RunCtx, resource: Resource, container: &str, page: &microsoft::DeltaPage) -> PageCommit {
    let mut last: BTreeMap<String, Option<store::sync::SyncedItem>> = BTreeMap::new();
    for item in &page.items {
        match item {
            DeltaItem::Upsert(i) => last.insert(i.id().to_string(), Some(to_row(i, container))),
            DeltaItem::Removed { id } => last.insert(id.clone(), None),
        };
    }
    let mut commit = PageCommit {
        mailbox_id: ctx.lease.mailbox.id,
        fence: ctx.lease.fence,
        resource,
        container: container.to_string(),
        upserts: Vec::new(),
        deletes: Vec::new(),
        cursor: match &page.next {
            DeltaNext::NextLink(l) => CursorUpdate::NextLink(l.clone()),
            DeltaNext::DeltaLink(l) => CursorUpdate::DeltaLink(l.clone()),
        },
        now: now(),
    };
    for (id, row) in last {
        match row {
            Some(row) => commit.upserts.push(row),
            None => commit.deletes.push(id),
        }
    }
    commit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_events_window_spans_the_backfill_to_a_year_ahead_by_whole_months() {
        // 2026-11-29T12:00:00Z
        let now = 1_795_953_600;
        assert_eq!(events_window(now, 30), ("2026-10-01T00:00:00Z".to_string(), "2027-12-01T00:00:00Z".to_string()));
        assert_eq!(events_window(now, 365).0, "2025-11-01T00:00:00Z");
    }

    #[test]
    fn mail_reaches_back_to_the_start_of_the_day_backfill_days_ago() {
        // 2026-11-29T12:00:00Z
        let now = 1_795_953_600;
        assert_eq!(mail_received_since(now, 30), time::macros::datetime!(2026-10-30 00:00:00 UTC));
        assert_eq!(mail_received_since(now, 7), time::macros::datetime!(2026-11-22 00:00:00 UTC));
        assert_eq!(mail_received_since(now, 365), time::macros::datetime!(2025-11-29 00:00:00 UTC));
        // Stable through the day: every run of one day asks for the same start.
        assert_eq!(mail_received_since(now + 11 * 3600 + 59 * 60, 30), mail_received_since(now - 12 * 3600, 30));
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let (base, max) = (Duration::from_millis(100), Duration::from_secs(5));
        for attempt in 0..10 {
            let d = (base * 2u32.pow(attempt)).min(max);
            let waits: Vec<Duration> = (0..50).map(|_| backoff(base, max, attempt)).collect();
            assert!(waits.iter().all(|w| *w >= d / 2 && *w <= d), "attempt {attempt}: {waits:?}");
            assert!(waits.iter().any(|w| *w != waits[0]), "jittered");
        }
        assert!(backoff(base, max, 40) <= max);
    }

    #[test]
    fn default_concurrency_follows_the_cpus_within_bounds_and_the_pool() {
        let big_pool = 1000;
        assert_eq!(default_max_concurrent_mailboxes(1, big_pool), 4, "never below the old constant");
        assert_eq!(default_max_concurrent_mailboxes(2, big_pool), 8);
        assert_eq!(default_max_concurrent_mailboxes(6, big_pool), 24);
        assert_eq!(default_max_concurrent_mailboxes(64, big_pool), 32, "capped");
        assert_eq!(default_max_concurrent_mailboxes(usize::MAX, big_pool), 32, "no overflow");
        assert_eq!(default_max_concurrent_mailboxes(0, big_pool), 4);
        assert_eq!(default_max_concurrent_mailboxes(8, 16), 16, "bounded by the pool");
        assert_eq!(default_max_concurrent_mailboxes(8, 1), 1, "a one-connection (in-memory) pool");
        assert_eq!(default_max_concurrent_mailboxes(8, 0), 1, "at least one worker");
        // What the default configuration does on this machine.
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let expected = (cpus * 4).clamp(4, 32).min(DEFAULT_POOL_BOUND);
        assert_eq!(SyncConfig::default().max_concurrent_mailboxes, expected);
        assert!((4..=DEFAULT_POOL_BOUND).contains(&expected));
    }

    #[test]
    fn a_dead_instances_leases_lapse_within_half_a_minute_and_live_ones_are_renewed_thrice_per_ttl() {
        let cfg = SyncConfig::default();
        assert!(cfg.lease_ttl_secs <= 30, "takeover of a killed instance's mailboxes waits {} s", cfg.lease_ttl_secs);
        assert!(cfg.renew_every * 3 <= Duration::from_secs(u64::try_from(cfg.lease_ttl_secs).unwrap()));
    }

    #[test]
    fn features_map_to_resources() {
        assert_eq!(resources_for(&Resource::ALL), Resource::ALL.to_vec());
        assert_eq!(resources_for(&[Resource::Tasks, Resource::Mail]), vec![Resource::Mail, Resource::Tasks]);
    }
}
