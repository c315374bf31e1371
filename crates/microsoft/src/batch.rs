//! JSON batching for the sync engine (MICROSOFT.md §3.8): up to 20 GETs of one mailbox in one
//! `POST /$batch`, delta pages and the starts of container listings. Each inner answer is read
//! exactly as the same request sent alone would be ([`MicrosoftClient::delta_page`],
//! [`MicrosoftClient::containers`]), so a caller can take what came back and send the rest again
//! on its own, with its usual handling of throttling and expired cursors.

use crate::containers::{LISTING_CONTINUES, LISTING_PAGE, ListingStart};
use crate::delta::{RawPage, local_error, sync_prefer, sync_refusal, sync_retry_after_value};
use crate::{Container, DeltaPage, DeltaRequest, GraphError, MailboxRef, MicrosoftClient};
use domain::Resource;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

/// Graph's limit on requests in one batch.
pub const MAX_BATCH_REQUESTS: usize = 20;

/// How many waves a full batch takes at Graph, which sends 4 of its requests at once (§3.8).
const BATCH_WAVES: u32 = (MAX_BATCH_REQUESTS / 4) as u32;

/// What a batch fetches: the next page of a delta, or a mailbox's containers of a resource.
pub enum BatchGet<'a> {
    Delta(DeltaRequest<'a>),
    Containers(Resource),
}

impl BatchGet<'_> {
    /// How many of a batch's requests it takes (a contacts listing two: the folders and the
    /// default folder).
    pub fn requests(&self) -> usize {
        match self {
            BatchGet::Delta(_) => 1,
            BatchGet::Containers(Resource::Contacts) => 2,
            BatchGet::Containers(Resource::Calendar) => 0,
            BatchGet::Containers(_) => 1,
        }
    }
}

/// What came back for a [`BatchGet`].
pub enum Fetched {
    Delta(DeltaPage),
    Containers(Vec<Container>),
    /// A listing that needs more requests ([`MicrosoftClient::finish_listing`]).
    ListingStarted(ListingStart),
}

#[derive(Serialize)]
struct BatchBody {
    requests: Vec<BatchRequest>,
}

#[derive(Serialize)]
struct BatchRequest {
    id: String,
    method: &'static str,
    url: String,
    headers: HashMap<&'static str, String>,
}

#[derive(Deserialize)]
struct BatchReply {
    #[serde(default)]
    responses: Vec<InnerAnswer>,
}

#[derive(Deserialize)]
struct InnerAnswer {
    id: String,
    status: u16,
    #[serde(default)]
    headers: HashMap<String, String>,
    #[serde(default)]
    body: Option<serde_json::Value>,
}

impl InnerAnswer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

impl MicrosoftClient {
    /// `gets` of `mailbox` (together at most [`MAX_BATCH_REQUESTS`] requests) in one round trip,
    /// answered in the order asked. The outer `Err` is the batch refused as a whole (nothing of it
    /// counts); an inner `Err` is that get's own refusal, as the request sent alone would have
    /// returned it (a 429 with its `Retry-After`, a 410 for an expired cursor). Nothing else is
    /// sent: a listing with more pages or nested folders comes back started.
    pub async fn fetch_batched(
        &self,
        token: &SecretString,
        mailbox: &MailboxRef,
        gets: &[BatchGet<'_>],
    ) -> Result<Vec<Result<Fetched, GraphError>>, GraphError> {
        let total: usize = gets.iter().map(BatchGet::requests).sum();
        if total == 0 || total > MAX_BATCH_REQUESTS {
            return Err(local_error("invalidRequest", format!("a batch holds 1 to {MAX_BATCH_REQUESTS} requests, not {total}")));
        }
        let base = self.endpoints.graph_url(&[]).map_err(|e| local_error("configuration", e.to_string()))?;
        let base = base.as_str().trim_end_matches('/').to_string();
        // Each get's URLs, with the page size it asks for.
        let mut urls: Vec<Vec<(String, u32)>> = Vec::with_capacity(gets.len());
        for get in gets {
            urls.push(match get {
                BatchGet::Delta(req) => vec![(self.delta_url(req)?, req.page_size)],
                BatchGet::Containers(r) => self.listing_starts(mailbox, *r)?.into_iter().map(|u| (u, LISTING_PAGE)).collect(),
            });
        }
        let mut requests = Vec::with_capacity(total);
        for (url, page_size) in urls.iter().flatten() {
            let relative = url.strip_prefix(&base).filter(|r| r.starts_with('/'));
            let relative = relative.ok_or_else(|| local_error("foreignLink", "a request is not under the Graph base".into()))?;
            let headers = HashMap::from([("Accept", "application/json".to_string()), ("Prefer", sync_prefer(*page_size))]);
            requests.push(BatchRequest { id: requests.len().to_string(), method: "GET", url: relative.to_string(), headers });
        }
        let other = matches!(mailbox, MailboxRef::User(_));
        // Graph runs the inner requests four at a time and answers when the slowest has: a batch
        // gets a request's time for each wave of a full batch. Given up early, its requests could
        // still run (and be throttled) at Microsoft, unseen.
        let timeout = self.request_timeout * BATCH_WAVES;
        let reply = self.send_batch(token, &format!("{base}/$batch"), &BatchBody { requests }, other, timeout).await?;
        // Each get's answers, in the order of its URLs (the ids count through every get's URLs).
        let mut by_id: HashMap<String, InnerAnswer> = reply.responses.into_iter().map(|a| (a.id.clone(), a)).collect();
        let mut ids = 0..;
        let answered: Vec<Vec<Result<serde_json::Value, GraphError>>> = urls
            .iter()
            .map(|urls| {
                urls.iter()
                    .zip(&mut ids)
                    .map(|(_, id)| match by_id.remove(&id.to_string()) {
                        None => Err(local_error("batchIncomplete", format!("the batch did not answer request {id}"))),
                        Some(a) => inner_value(a, other),
                    })
                    .collect()
            })
            .collect();
        let mut out = Vec::with_capacity(gets.len());
        for ((get, urls), answers) in gets.iter().zip(&urls).zip(answered) {
            out.push(match get {
                BatchGet::Delta(req) => {
                    answers.into_iter().next().unwrap_or_else(|| Err(local_error("batchIncomplete", "no answer".into()))).and_then(|v| {
                        let raw: RawPage = serde_json::from_value(v).map_err(|e| unexpected(200, &e, None))?;
                        self.delta_page_of(&urls[0].0, raw, req.resource).map(Fetched::Delta)
                    })
                }
                BatchGet::Containers(r) => match self.containers_from(None, mailbox, *r, answers.clone()).await {
                    Err(e) if e.code == LISTING_CONTINUES => Ok(Fetched::ListingStarted(ListingStart { resource: *r, firsts: answers })),
                    listed => listed.map(Fetched::Containers),
                },
            });
        }
        Ok(out)
    }

    /// The batch's round trip: its inner answers when Graph answered 200 (or 424, when a failed
    /// inner request failed the batch's status, §3.8), else the batch's refusal.
    async fn send_batch(
        &self,
        token: &SecretString,
        url: &str,
        body: &BatchBody,
        other: bool,
        timeout: Duration,
    ) -> Result<BatchReply, GraphError> {
        let r = self
            .http
            .post(url)
            .timeout(timeout)
            .bearer_auth(token.expose_secret())
            .header("Accept", "application/json")
            .json(body)
            .send()
            .await
            .map_err(GraphError::transport)?;
        let status = r.status().as_u16();
        let request_id = r.headers().get("request-id").and_then(|v| v.to_str().ok()).map(str::to_string);
        let retry = r.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(sync_retry_after_value);
        let text = r.text().await.map_err(GraphError::transport)?;
        if status != 200 && status != 424 {
            return Err(sync_refusal(status, &text, request_id, retry, other));
        }
        serde_json::from_str(&text).map_err(|e| unexpected(status, &e, request_id))
    }
}

/// One inner answer's body, or its refusal as the request sent alone would have had it.
fn inner_value(mut a: InnerAnswer, other: bool) -> Result<serde_json::Value, GraphError> {
    let request_id = a.header("request-id").map(str::to_string);
    let body = a.body.take().unwrap_or(serde_json::Value::Null);
    if !(200..300).contains(&a.status) {
        let retry = a.header("Retry-After").and_then(sync_retry_after_value);
        return Err(sync_refusal(a.status, &body.to_string(), request_id, retry, other));
    }
    Ok(body)
}

/// An answer that is not the JSON Graph documents.
fn unexpected(status: u16, e: &serde_json::Error, request_id: Option<String>) -> GraphError {
    GraphError {
        status: Some(status),
        code: "unexpectedResponse".into(),
        message: format!("not the documented JSON: {e}"),
        request_id,
        retry_after: None,
        reason: domain::ReasonCode::Unexpected,
    }
}
