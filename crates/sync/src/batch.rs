//! Fetching ahead in JSON batches (MICROSOFT.md §3.8). Before a run syncs its resources, the next
//! page of every container it continues (one with a stored link) is fetched in batches of up to
//! 20 requests. A mailbox with nothing new then costs one round trip for all its folders instead
//! of one per folder. Only pages that came back are used: anything a batch did not answer with a
//! page (a 429, an expired cursor, the batch refused as a whole) is fetched again on its own by
//! the container's run, through the usual retry policy, so batching changes no outcome.

use crate::engine::{Engine, RunCtx};
use crate::error::SyncError;
use crate::metrics::SyncMetrics;
use domain::Resource;
use microsoft::{DeltaPage, DeltaRequest, DeltaStart, FailureClass, GraphError, MAX_BATCH_REQUESTS};

impl RunCtx {
    /// The page fetched ahead for `container`, if its first request is the one fetched ahead.
    pub(crate) fn take_prefetched(&self, resource: Resource, container: &str, start: &DeltaStart) -> Option<DeltaPage> {
        let DeltaStart::Link(link) = start else { return None };
        let mut pages = self.prefetched.lock().unwrap_or_else(|p| p.into_inner());
        let key = (resource, container.to_string());
        match pages.remove(&key) {
            Some((fetched_with, page)) if fetched_with == *link => Some(page),
            Some(other) => {
                pages.insert(key, other);
                None
            }
            None => None,
        }
    }
}

impl Engine {
    /// Fetches ahead the next page of every container of `resources` that the run continues (for
    /// the calendar, only the current `window`). Two or more such containers make it worth a
    /// batch; a mailbox held off by a `Retry-After` is left to the one-by-one path.
    pub(crate) async fn prefetch_pages(&self, ctx: &RunCtx, resources: &[Resource], window: &(String, String)) -> Result<(), SyncError> {
        if !self.inner.config.batch_requests {
            return Ok(());
        }
        let window_id = format!("{}/{}", window.0, window.1);
        let continued: Vec<(Resource, &str, &str)> = self
            .run_cursors(ctx)
            .await?
            .iter()
            .filter(|c| resources.contains(&c.resource) && (c.resource != Resource::Calendar || c.container == window_id))
            .filter_map(|c| Some((c.resource, c.container.as_str(), c.link.as_deref()?)))
            .collect();
        if continued.len() < 2 {
            return Ok(());
        }
        for chunk in continued.chunks(MAX_BATCH_REQUESTS) {
            if ctx.gate.not_before().is_some() || !self.prefetch_batch(ctx, chunk, window).await? {
                break;
            }
        }
        Ok(())
    }

    /// One batch; keeps the pages that came back. `false` when the batch was refused as a whole
    /// or throttled (the rest is then left to the one-by-one path). No access token is an error
    /// of the run, as it would be at its first request.
    async fn prefetch_batch(&self, ctx: &RunCtx, chunk: &[(Resource, &str, &str)], window: &(String, String)) -> Result<bool, SyncError> {
        let reqs: Vec<DeltaRequest<'_>> = chunk
            .iter()
            .map(|(resource, container, link)| DeltaRequest {
                mailbox: &ctx.mref,
                resource: *resource,
                container: (*resource != Resource::Calendar).then_some(*container),
                window: (*resource == Resource::Calendar).then_some((window.0.as_str(), window.1.as_str())),
                received_since: None,
                page_size: self.inner.config.page_size,
                start: DeltaStart::Link(link.to_string()),
            })
            .collect();
        // Graph no longer taking the access token (401, for the batch or inside it): one fresh
        // token, as for any request.
        let mut fresh_token = false;
        loop {
            let token = self.inner.tokens.access_token(ctx.token, fresh_token).await?;
            let slot = ctx.gate.acquire_slots(u32::try_from(reqs.len()).unwrap_or(u32::MAX)).await;
            let answers = self.inner.client.delta_pages_batched(&token, &reqs).await;
            drop(slot);
            SyncMetrics::add(&self.inner.metrics.batches, 1);
            let token_rejected = match &answers {
                Ok(a) => a.iter().any(|a| matches!(a, Err(e) if e.class() == FailureClass::TokenRejected)),
                Err(e) => e.class() == FailureClass::TokenRejected,
            };
            let kept = self.keep_answers(ctx, chunk, answers);
            if !token_rejected || fresh_token {
                return Ok(kept);
            }
            fresh_token = true;
        }
    }

    /// Counts a batch's answers and keeps its pages; `false` when it was refused as a whole or
    /// throttled.
    fn keep_answers(
        &self,
        ctx: &RunCtx,
        chunk: &[(Resource, &str, &str)],
        answers: Result<Vec<Result<DeltaPage, GraphError>>, GraphError>,
    ) -> bool {
        let metrics = &self.inner.metrics;
        let answers = match answers {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(mailbox = %ctx.mailbox.id, status = ?e.status, code = %e.code, "batch refused: fetching one by one");
                metrics.request(e.status);
                self.hold_off_as_asked(ctx, &e, 0);
                return false;
            }
        };
        let mut throttled = false;
        let mut pages = ctx.prefetched.lock().unwrap_or_else(|p| p.into_inner());
        for ((resource, container, link), answer) in chunk.iter().zip(answers) {
            match answer {
                Ok(page) => {
                    metrics.request(Some(200));
                    pages.insert((*resource, container.to_string()), (link.to_string(), page));
                }
                Err(e) => {
                    metrics.request(e.status);
                    throttled |= self.hold_off_as_asked(ctx, &e, 0);
                }
            }
        }
        !throttled
    }
}
