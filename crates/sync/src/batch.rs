//! Fetching ahead in JSON batches (MICROSOFT.md §3.8). Before a run syncs its resources, it
//! fetches in batches of up to 20 requests what each resource starts with: the listing of its
//! containers (mail folders, contact folders, To Do lists) and the next page of every container
//! it continues (one with a stored link). A mailbox with nothing new then costs one round trip
//! instead of one per folder and listing. Only what came back is used: anything a batch did not
//! answer (a 429, an expired cursor, the batch refused as a whole) is fetched again on its own by
//! the resource's run, through the usual retry policy, so batching changes no outcome.

use crate::engine::{Engine, RunCtx};
use crate::error::SyncError;
use crate::metrics::SyncMetrics;
use domain::Resource;
use microsoft::{
    BatchGet, Container, DeltaPage, DeltaRequest, DeltaStart, FailureClass, Fetched, GraphError, ListingStart, MAX_BATCH_REQUESTS,
};
use std::collections::HashMap;

/// What a run fetched ahead, taken by the requests it stands for.
#[derive(Default)]
pub(crate) struct Ahead {
    /// Next pages by resource and container, each with the link that fetched it.
    pages: HashMap<(Resource, String), (String, DeltaPage)>,
    /// Container listings by resource.
    listings: HashMap<Resource, Listed>,
}

/// A listing fetched ahead: whole, or started (it needs more requests).
pub(crate) enum Listed {
    Whole(Vec<Container>),
    Started(ListingStart),
}

/// One thing to fetch ahead: a resource's listing, or a container's next page from its link.
#[derive(Clone, Copy)]
enum Want<'c> {
    Listing(Resource),
    Page(Resource, &'c str, &'c str),
}

impl RunCtx {
    fn ahead(&self) -> std::sync::MutexGuard<'_, Ahead> {
        self.ahead.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The page fetched ahead for `container`, if its first request is the one fetched ahead.
    pub(crate) fn take_prefetched(&self, resource: Resource, container: &str, start: &DeltaStart) -> Option<DeltaPage> {
        let DeltaStart::Link(link) = start else { return None };
        let mut ahead = self.ahead();
        let key = (resource, container.to_string());
        match ahead.pages.remove(&key) {
            Some((fetched_with, page)) if fetched_with == *link => Some(page),
            Some(other) => {
                ahead.pages.insert(key, other);
                None
            }
            None => None,
        }
    }

    /// The listing of `resource` fetched ahead, if it was.
    pub(crate) fn take_listing(&self, resource: Resource) -> Option<Listed> {
        self.ahead().listings.remove(&resource)
    }
}

impl Engine {
    /// Fetches ahead what `resources` start with (for the calendar, the current `window`'s next
    /// page only): two or more requests make it worth a batch. A mailbox held off by a
    /// `Retry-After` is left to the one-by-one path.
    pub(crate) async fn fetch_ahead(&self, ctx: &RunCtx, resources: &[Resource], window: &(String, String)) -> Result<(), SyncError> {
        if !self.inner.config.batch_requests {
            return Ok(());
        }
        let window_id = format!("{}/{}", window.0, window.1);
        let mut wants: Vec<Want<'_>> = resources.iter().filter(|r| **r != Resource::Calendar).map(|r| Want::Listing(*r)).collect();
        wants.extend(
            self.run_cursors(ctx)
                .await?
                .iter()
                .filter(|c| resources.contains(&c.resource) && (c.resource != Resource::Calendar || c.container == window_id))
                .filter_map(|c| Some(Want::Page(c.resource, c.container.as_str(), c.link.as_deref()?))),
        );
        if wants.iter().map(|w| w.requests()).sum::<usize>() < 2 {
            return Ok(());
        }
        for chunk in batches(&wants) {
            if ctx.gate.not_before().is_some() || !self.fetch_batch(ctx, chunk, window).await? {
                break;
            }
        }
        Ok(())
    }

    /// One batch; keeps what came back. `false` when the batch was refused as a whole or
    /// throttled (the rest is then left to the one-by-one path). No access token is an error of
    /// the run, as it would be at its first request.
    async fn fetch_batch(&self, ctx: &RunCtx, chunk: &[Want<'_>], window: &(String, String)) -> Result<bool, SyncError> {
        let gets: Vec<BatchGet<'_>> = chunk.iter().map(|w| self.get_of(ctx, *w, window)).collect();
        let requests: usize = gets.iter().map(BatchGet::requests).sum();
        // Graph no longer taking the access token (401, for the batch or inside it): one fresh
        // token, as for any request.
        let mut fresh_token = false;
        loop {
            let token = self.inner.tokens.access_token_as_of(ctx.token, &ctx.settings, fresh_token).await?;
            let slot = ctx.gate.acquire_slots(u32::try_from(requests).unwrap_or(u32::MAX)).await;
            let answers = self.inner.client.fetch_batched(&token, &ctx.mref, &gets).await;
            match &answers {
                // Given up on (a timeout): Microsoft may still be running its requests.
                Err(e) if e.status.is_none() => slot.linger(self.inner.config.abandoned_request_hold),
                _ => drop(slot),
            }
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

    fn get_of<'a>(&self, ctx: &'a RunCtx, want: Want<'a>, window: &'a (String, String)) -> BatchGet<'a> {
        match want {
            Want::Listing(resource) => BatchGet::Containers(resource),
            Want::Page(resource, container, link) => BatchGet::Delta(DeltaRequest {
                mailbox: &ctx.mref,
                resource,
                container: (resource != Resource::Calendar).then_some(container),
                window: (resource == Resource::Calendar).then_some((window.0.as_str(), window.1.as_str())),
                received_since: None,
                page_size: self.inner.config.page_size,
                start: DeltaStart::Link(link.to_string()),
            }),
        }
    }

    /// Counts a batch's answers and keeps what came back; `false` when it was refused as a whole
    /// or throttled.
    fn keep_answers(&self, ctx: &RunCtx, chunk: &[Want<'_>], answers: Result<Vec<Result<Fetched, GraphError>>, GraphError>) -> bool {
        let metrics = &self.inner.metrics;
        let answers = match answers {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(mailbox = %ctx.lease.mailbox.id, status = ?e.status, code = %e.code, "batch refused: fetching one by one");
                metrics.request(e.status);
                self.hold_off_as_asked(ctx, &e, 0);
                return false;
            }
        };
        let mut throttled = false;
        let mut ahead = ctx.ahead();
        for (want, answer) in chunk.iter().zip(answers) {
            // A listing counts once, as it does when fetched on its own.
            metrics.request(answer.as_ref().map_or_else(|e| e.status, |_| Some(200)));
            match (want, answer) {
                (Want::Listing(resource), Ok(Fetched::Containers(list))) => {
                    ahead.listings.insert(*resource, Listed::Whole(list));
                }
                (Want::Listing(resource), Ok(Fetched::ListingStarted(start))) => {
                    ahead.listings.insert(*resource, Listed::Started(start));
                }
                (Want::Page(resource, container, link), Ok(Fetched::Delta(page))) => {
                    ahead.pages.insert((*resource, container.to_string()), (link.to_string(), page));
                }
                (_, Ok(_)) => {}
                (_, Err(e)) => throttled |= self.hold_off_as_asked(ctx, &e, 0),
            }
        }
        !throttled
    }
}

impl Want<'_> {
    fn requests(&self) -> usize {
        match self {
            Want::Listing(resource) => BatchGet::Containers(*resource).requests(),
            Want::Page(..) => 1,
        }
    }
}

/// `wants` in order, cut into batches of at most [`MAX_BATCH_REQUESTS`] requests.
fn batches<'w, 'c>(wants: &'w [Want<'c>]) -> Vec<&'w [Want<'c>]> {
    let mut out = Vec::new();
    let (mut start, mut size) = (0, 0);
    for (i, w) in wants.iter().enumerate() {
        if size + w.requests() > MAX_BATCH_REQUESTS {
            out.push(&wants[start..i]);
            (start, size) = (i, 0);
        }
        size += w.requests();
    }
    if start < wants.len() {
        out.push(&wants[start..]);
    }
    out
}
