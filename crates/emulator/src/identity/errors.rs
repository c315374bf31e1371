use super::*;

// ------------------------------------------------------------------ errors

/// An AADSTS error (MICROSOFT.md §1.5 table).
#[derive(Clone, Debug)]
pub(crate) struct Aad {
    pub status: u16,
    pub error: &'static str,
    pub code: u32,
    pub message: String,
    pub suberror: Option<&'static str>,
}

impl Aad {
    pub(super) fn new(error: &'static str, code: u32, message: impl Into<String>) -> Aad {
        Aad { status: 400, error, code, message: message.into(), suberror: None }
    }
    pub(super) fn sub(mut self, s: &'static str) -> Aad {
        self.suberror = Some(s);
        self
    }
    pub(super) fn status(mut self, s: u16) -> Aad {
        self.status = s;
        self
    }
}

/// Field order as in the spec's real sample (§1.5).
#[derive(Serialize)]
pub(super) struct AadBody<'a> {
    error: &'a str,
    error_description: String,
    error_codes: [u32; 1],
    timestamp: String,
    trace_id: String,
    correlation_id: String,
    error_uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    suberror: Option<&'a str>,
}

/// `AADSTSnnnn: message\r\nTrace ID: …\r\nCorrelation ID: …\r\nTimestamp: …` (§1.3, §1.5).
pub(super) fn describe(code: u32, message: &str, trace: &str, correlation: &str, ts: &str) -> String {
    format!("AADSTS{code}: {message}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {ts}")
}

pub(super) fn error_uri(code: u32) -> String {
    format!("https://login.microsoftonline.com/error?code={code}")
}

pub(super) fn correlation_of(headers: &HeaderMap) -> String {
    headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| uuid::Uuid::parse_str(v).is_ok())
        .map(str::to_string)
        .unwrap_or_else(guid)
}

pub(super) fn aad_json(shared: &Shared, e: &Aad, correlation: &str) -> Response {
    let trace = guid();
    let ts = aad_timestamp(shared.now());
    let body = AadBody {
        error: e.error,
        error_description: describe(e.code, &e.message, &trace, correlation, &ts),
        error_codes: [e.code],
        timestamp: ts,
        trace_id: trace.clone(),
        correlation_id: correlation.to_string(),
        error_uri: error_uri(e.code),
        suberror: e.suberror,
    };
    let text = serde_json::to_string(&body).unwrap_or_default();
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    json_response(status, text, &[("x-ms-request-id", trace), ("client-request-id", correlation.to_string())])
}

pub(super) fn json_response(status: StatusCode, body: String, extra: &[(&str, String)]) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store, no-cache"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    for (k, v) in extra {
        if let (Ok(name), Ok(val)) = (header::HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
            h.insert(name, val);
        }
    }
    r
}

pub(super) fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    r
}

/// Error page without redirect (redirect URI not trustworthy, unknown app…).
pub(super) fn error_page(shared: &Shared, code: u32, message: &str, correlation: &str) -> Response {
    let trace = guid();
    html(StatusCode::BAD_REQUEST, pages::error(code, message, &trace, correlation, &aad_timestamp(shared.now())))
}

/// Redirect to the client in the requested response mode (§1.2 `response_mode`).
pub(super) fn to_client(uri: &str, mode: &str, params: &[(&str, String)]) -> Response {
    if mode == "form_post" {
        return html(StatusCode::OK, pages::form_post(uri, params));
    }
    let encoded: Vec<String> = params.iter().map(|(k, v)| format!("{k}={}", ms_urlencode(v))).collect();
    let sep = if mode == "fragment" {
        "#"
    } else if uri.contains('?') {
        "&"
    } else {
        "?"
    };
    let location = format!("{uri}{sep}{}", encoded.join("&"));
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// Error redirect of `/authorize`: error, error_description, error_uri, [error_subcode], state (§1.3).
pub(super) fn error_redirect(shared: &Shared, flow: &Flow, error: &str, code: u32, message: &str, subcode: Option<&str>) -> Response {
    let trace = guid();
    let ts = aad_timestamp(shared.now());
    let mut params = vec![
        ("error", error.to_string()),
        ("error_description", describe(code, message, &trace, &flow.correlation, &ts)),
        ("error_uri", error_uri(code)),
    ];
    if let Some(s) = subcode {
        params.push(("error_subcode", s.to_string()));
    }
    if let Some(s) = &flow.state {
        params.push(("state", s.clone()));
    }
    to_client(&flow.redirect_uri, &flow.response_mode, &params)
}
