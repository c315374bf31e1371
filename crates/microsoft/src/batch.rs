//! JSON batching of delta requests (MICROSOFT.md §3.8): up to 20 delta pages of one mailbox in one
//! `POST /$batch`. Each inner answer is read exactly as the same request sent alone would be
//! ([`MicrosoftClient::delta_page`]), so a caller can take the pages that came back and send the
//! others again on their own, with its usual handling of throttling and expired cursors.

use crate::delta::{RawPage, local_error, sync_prefer, sync_refusal, sync_retry_after_value};
use crate::{DeltaPage, DeltaRequest, GraphError, MailboxRef, MicrosoftClient};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Graph's limit on requests in one batch.
pub const MAX_BATCH_REQUESTS: usize = 20;

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
struct BatchAnswer {
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
    /// The next page of each of `reqs` (1 to [`MAX_BATCH_REQUESTS`], one mailbox's) in one round
    /// trip, in the order asked. The outer `Err` is the batch refused as a whole (nothing of it
    /// counts); an inner `Err` is that request's own refusal, as [`MicrosoftClient::delta_page`]
    /// would have returned it (a 429 with its `Retry-After`, a 410 for an expired cursor).
    pub async fn delta_pages_batched(
        &self,
        token: &SecretString,
        reqs: &[DeltaRequest<'_>],
    ) -> Result<Vec<Result<DeltaPage, GraphError>>, GraphError> {
        if reqs.is_empty() || reqs.len() > MAX_BATCH_REQUESTS {
            return Err(local_error("invalidRequest", format!("a batch holds 1 to {MAX_BATCH_REQUESTS} requests, not {}", reqs.len())));
        }
        let base = self.endpoints.graph_url(&[]).map_err(|e| local_error("configuration", e.to_string()))?;
        let base = base.as_str().trim_end_matches('/').to_string();
        let urls = reqs.iter().map(|r| self.delta_url(r)).collect::<Result<Vec<_>, _>>()?;
        let requests = urls
            .iter()
            .zip(reqs)
            .enumerate()
            .map(|(i, (url, req))| {
                let relative = url.strip_prefix(&base).filter(|r| r.starts_with('/'));
                let relative = relative.ok_or_else(|| local_error("foreignLink", "a delta link is not under the Graph base".into()))?;
                let headers = HashMap::from([("Accept", "application/json".to_string()), ("Prefer", sync_prefer(req.page_size))]);
                Ok(BatchRequest { id: i.to_string(), method: "GET", url: relative.to_string(), headers })
            })
            .collect::<Result<Vec<_>, GraphError>>()?;
        let answer = self.send_batch(token, &format!("{base}/$batch"), &BatchBody { requests }, other_mailbox(reqs)).await?;
        let mut by_id: HashMap<String, InnerAnswer> = answer.responses.into_iter().map(|a| (a.id.clone(), a)).collect();
        Ok(urls
            .iter()
            .zip(reqs)
            .enumerate()
            .map(|(i, (url, req))| match by_id.remove(&i.to_string()) {
                None => Err(local_error("batchIncomplete", format!("the batch did not answer request {i}"))),
                Some(a) => self.inner_page(url, req, a),
            })
            .collect())
    }

    /// The batch's round trip: its inner answers when Graph answered 200 (or 424, when a failed
    /// inner request failed the batch's status, §3.8), else the batch's refusal.
    async fn send_batch(&self, token: &SecretString, url: &str, body: &BatchBody, other: bool) -> Result<BatchAnswer, GraphError> {
        let r = self
            .http
            .post(url)
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
        serde_json::from_str(&text).map_err(|e| GraphError {
            status: Some(status),
            code: "unexpectedResponse".into(),
            message: format!("not the documented batch JSON: {e}"),
            request_id,
            retry_after: None,
            reason: domain::ReasonCode::Unexpected,
        })
    }

    /// One inner answer, read as the request sent alone would be.
    fn inner_page(&self, url: &str, req: &DeltaRequest<'_>, mut a: InnerAnswer) -> Result<DeltaPage, GraphError> {
        let other = matches!(req.mailbox, MailboxRef::User(_));
        let request_id = a.header("request-id").map(str::to_string);
        let body = a.body.take().unwrap_or(serde_json::Value::Null);
        if !(200..300).contains(&a.status) {
            let retry = a.header("Retry-After").and_then(sync_retry_after_value);
            return Err(sync_refusal(a.status, &body.to_string(), request_id, retry, other));
        }
        let raw: RawPage = serde_json::from_value(body).map_err(|e| GraphError {
            status: Some(a.status),
            code: "unexpectedResponse".into(),
            message: format!("not the documented JSON: {e}"),
            request_id,
            retry_after: None,
            reason: domain::ReasonCode::Unexpected,
        })?;
        self.delta_page_of(url, raw, req.resource)
    }
}

/// Whether the batch reads another user's mailbox (application permissions): it decides what a
/// refusal of the whole batch means.
fn other_mailbox(reqs: &[DeltaRequest<'_>]) -> bool {
    reqs.iter().any(|r| matches!(r.mailbox, MailboxRef::User(_)))
}
