use super::*;

// ------------------------------------------------------------------ $batch

#[derive(Deserialize)]
pub(super) struct BatchBody {
    requests: Vec<BatchItem>,
}

#[derive(Deserialize)]
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
/// Inner requests run one at a time, so a batch never exceeds the 4-concurrent limit by itself (§3.8).
pub(super) async fn batch(shared: &Arc<Shared>, req: GReq) -> GResp {
    let ctx = Ctx::new(shared, &req.headers);
    let route = "POST /$batch";
    if req.method != Method::POST {
        return finish(shared, &ctx, route, None, bad_request(&ctx, "Batch requests must use POST."));
    }
    let Ok(body) = serde_json::from_slice::<BatchBody>(&req.body) else {
        return finish(shared, &ctx, route, None, bad_request(&ctx, "Invalid batch payload format."));
    };
    if body.requests.is_empty() || body.requests.len() > 20 {
        return finish(shared, &ctx, route, None, bad_request(&ctx, "The number of requests in a batch must be between 1 and 20."));
    }
    let mut seen = HashSet::new();
    for r in &body.requests {
        if !seen.insert(r.id.clone()) {
            return finish(
                shared,
                &ctx,
                route,
                None,
                bad_request(&ctx, &format!("Batch request contains duplicate request id '{}'.", r.id)),
            );
        }
    }
    for (i, r) in body.requests.iter().enumerate() {
        for d in &r.depends_on {
            if !body.requests[..i].iter().any(|p| &p.id == d) {
                return finish(
                    shared,
                    &ctx,
                    route,
                    None,
                    bad_request(&ctx, &format!("Request '{}' depends on '{d}', which is not an earlier request in the batch.", r.id)),
                );
            }
        }
        if r.body.is_some() && !r.headers.keys().any(|k| k.eq_ignore_ascii_case("content-type")) {
            return finish(
                shared,
                &ctx,
                route,
                None,
                bad_request(&ctx, &format!("Request '{}' has a body but no Content-Type header.", r.id)),
            );
        }
    }
    let mut statuses: Vec<(String, u16)> = Vec::new();
    let mut parts: Vec<String> = Vec::new();
    for item in body.requests {
        let failed_dep = item.depends_on.iter().any(|d| statuses.iter().any(|(id, s)| id == d && *s >= 400));
        let resp = if failed_dep {
            err(&ctx, 424, "FailedDependency", "The request could not be processed because a request it depends on failed.")
        } else {
            let url = item.url.trim_start_matches("/v1.0").to_string();
            let url = if url.starts_with('/') { url } else { format!("/{url}") };
            let (path, query) = url.split_once('?').map(|(p, q)| (p.to_string(), q.to_string())).unwrap_or((url.clone(), String::new()));
            if path.trim_matches('/') == "$batch" {
                bad_request(&ctx, "Nested batch requests are not supported.")
            } else {
                let mut headers = HeaderMap::new();
                if let Some(a) = req.headers.get(header::AUTHORIZATION) {
                    headers.insert(header::AUTHORIZATION, a.clone());
                }
                for (k, v) in &item.headers {
                    if let (Ok(name), Some(Ok(val))) = (header::HeaderName::from_bytes(k.as_bytes()), v.as_str().map(HeaderValue::from_str))
                    {
                        headers.insert(name, val);
                    }
                }
                let body = item.body.as_ref().map(|b| Bytes::from(b.to_string())).unwrap_or_default();
                let method = Method::from_bytes(item.method.to_ascii_uppercase().as_bytes()).unwrap_or(Method::GET);
                dispatch(shared, GReq { method, path, query, headers, body }, true).await
            }
        };
        statuses.push((item.id.clone(), resp.status));
        let mut hmap = Map::new();
        for (k, v) in &resp.headers {
            if ["Content-Type", "Retry-After", "Location", "Preference-Applied"].iter().any(|h| h.eq_ignore_ascii_case(k)) {
                hmap.insert(k.clone(), json!(v));
            }
        }
        if resp.status == 424 {
            hmap.insert("Content-Type".into(), json!(JSON_CT));
        }
        parts.push(format!(
            "{{\"id\":{},\"status\":{},\"headers\":{}{}}}",
            json!(item.id),
            resp.status,
            Value::Object(hmap),
            resp.body.as_ref().map(|b| format!(",\"body\":{b}")).unwrap_or_default()
        ));
    }
    let text = format!("{{\"responses\":[{}]}}", parts.join(","));
    finish(shared, &ctx, route, None, GResp { status: 200, headers: Vec::new(), body: Some(text) })
}
