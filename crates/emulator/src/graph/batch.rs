use super::*;

// ------------------------------------------------------------------ $batch

#[derive(Deserialize)]
pub(super) struct BatchBody {
    requests: Vec<BatchItem>,
}

#[derive(Deserialize, Clone)]
pub(super) struct BatchItem {
    id: String,
    method: String,
    url: String,
    #[serde(default)]
    headers: Map<String, Value>,
    #[serde(default)]
    body: Option<Value>,
    #[serde(default, rename = "dependsOn")]
    depends_on: Vec<String>,
}

/// JSON batching (§3.8): ≤ 20 requests, unique ids, `dependsOn` ordering, failed dependency → 424.
/// Like Graph, up to 4 inner requests run at once (a batch against one mailbox thus meets the
/// 4-concurrent limit by itself), each as soon as the requests it depends on have answered.
pub(super) async fn batch(shared: &Arc<Shared>, req: GReq) -> GResp {
    let ctx = Ctx::new(shared, &req.headers);
    let sent_at = std::time::Instant::now();
    let route = "POST /$batch";
    let body = match checked_body(&req) {
        Ok(body) => body,
        Err(msg) => return finish(shared, &ctx, route, None, bad_request(&ctx, &msg)),
    };
    let mut answered: Vec<Option<GResp>> = body.requests.iter().map(|_| None).collect();
    let status_of = |answered: &[Option<GResp>], id: &str| {
        body.requests.iter().position(|r| r.id == id).and_then(|i| answered[i].as_ref()).map(|r| r.status)
    };
    let mut running = tokio::task::JoinSet::new();
    for (i, item) in body.requests.iter().enumerate() {
        // Earlier requests only (checked_body), so whatever it waits for is running.
        while running.len() >= BATCH_CONCURRENCY || item.depends_on.iter().any(|d| status_of(&answered, d).is_none()) {
            match running.join_next().await {
                Some(Ok((j, resp))) => answered[j] = Some(resp),
                Some(Err(_)) => {}
                None => break,
            }
        }
        if item.depends_on.iter().any(|d| status_of(&answered, d).is_none_or(|s| s >= 400)) {
            let msg = "The request could not be processed because a request it depends on failed.";
            answered[i] = Some(err(&ctx, 424, "FailedDependency", msg));
            continue;
        }
        let (shared, headers, item) = (shared.clone(), req.headers.clone(), item.clone());
        running.spawn(async move { (i, run_item(&shared, &headers, &item, sent_at).await) });
    }
    while let Some(joined) = running.join_next().await {
        if let Ok((j, resp)) = joined {
            answered[j] = Some(resp);
        }
    }
    let parts: Vec<String> = body
        .requests
        .iter()
        .zip(&answered)
        .map(|(item, resp)| match resp {
            Some(resp) => response_part(&item.id, resp),
            None => response_part(&item.id, &err(&ctx, 500, "generalException", "The request failed.")),
        })
        .collect();
    let text = format!("{{\"responses\":[{}]}}", parts.join(","));
    finish(shared, &ctx, route, None, GResp { status: 200, headers: Vec::new(), body: Some(text) })
}

/// How many of a batch's requests Graph runs at once (§3.8).
const BATCH_CONCURRENCY: usize = 4;

/// The batch payload, or why Graph refuses it as a whole (400).
fn checked_body(req: &GReq) -> Result<BatchBody, String> {
    if req.method != Method::POST {
        return Err("Batch requests must use POST.".into());
    }
    let body = serde_json::from_slice::<BatchBody>(&req.body).map_err(|_| "Invalid batch payload format.".to_string())?;
    if body.requests.is_empty() || body.requests.len() > 20 {
        return Err("The number of requests in a batch must be between 1 and 20.".into());
    }
    let mut seen = HashSet::new();
    if let Some(r) = body.requests.iter().find(|r| !seen.insert(r.id.clone())) {
        return Err(format!("Batch request contains duplicate request id '{}'.", r.id));
    }
    for (i, r) in body.requests.iter().enumerate() {
        if let Some(d) = r.depends_on.iter().find(|d| !body.requests[..i].iter().any(|p| &p.id == *d)) {
            return Err(format!("Request '{}' depends on '{d}', which is not an earlier request in the batch.", r.id));
        }
        if r.body.is_some() && !r.headers.keys().any(|k| k.eq_ignore_ascii_case("content-type")) {
            return Err(format!("Request '{}' has a body but no Content-Type header.", r.id));
        }
    }
    Ok(body)
}

/// One inner request, dispatched like a top-level one with the batch's bearer token.
async fn run_item(shared: &Arc<Shared>, outer: &HeaderMap, item: &BatchItem, sent_at: std::time::Instant) -> GResp {
    let url = item.url.trim_start_matches("/v1.0").to_string();
    let url = if url.starts_with('/') { url } else { format!("/{url}") };
    let (path, query) = url.split_once('?').map(|(p, q)| (p.to_string(), q.to_string())).unwrap_or((url.clone(), String::new()));
    if path.trim_matches('/') == "$batch" {
        return bad_request(&Ctx::new(shared, outer), "Nested batch requests are not supported.");
    }
    let mut headers = HeaderMap::new();
    if let Some(a) = outer.get(header::AUTHORIZATION) {
        headers.insert(header::AUTHORIZATION, a.clone());
    }
    for (k, v) in &item.headers {
        if let (Ok(name), Some(Ok(val))) = (header::HeaderName::from_bytes(k.as_bytes()), v.as_str().map(HeaderValue::from_str)) {
            headers.insert(name, val);
        }
    }
    let body = item.body.as_ref().map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let method = Method::from_bytes(item.method.to_ascii_uppercase().as_bytes()).unwrap_or(Method::GET);
    dispatch(shared, GReq { method, path, query, headers, body }, sent_at).await
}

/// One entry of `responses`: id, status, the headers a client needs, and the body as it is.
fn response_part(id: &str, resp: &GResp) -> String {
    let mut hmap = Map::new();
    for (k, v) in &resp.headers {
        if ["Content-Type", "Retry-After", "Location", "Preference-Applied"].iter().any(|h| h.eq_ignore_ascii_case(k)) {
            hmap.insert(k.clone(), json!(v));
        }
    }
    if resp.status == 424 {
        hmap.insert("Content-Type".into(), json!(JSON_CT));
    }
    format!(
        "{{\"id\":{},\"status\":{},\"headers\":{}{}}}",
        json!(id),
        resp.status,
        Value::Object(hmap),
        resp.body.as_ref().map(|b| format!(",\"body\":{b}")).unwrap_or_default()
    )
}
