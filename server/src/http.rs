//! The axum router: Leptos pages and server functions, `/healthz`, `/metrics`, static files, and
//! the middleware every request passes through (request id, logging, metrics, cross-site check).

use crate::{ServeConfig, metrics::Metrics};
use app::state::AppState;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list};
use std::sync::Arc;
use std::time::Duration;
use store::{DynStore, SessionToken};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The largest request body accepted (413 above it). The biggest legitimate one, a settings form,
/// is a few kilobytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// How long `/healthz` waits for the database before answering 503: a load balancer's probe must
/// get an answer, not hang with the database.
pub const HEALTH_TIMEOUT: Duration = Duration::from_millis(1500);

/// Where the server functions are mounted, and those a visitor may call.
const SERVER_FN_PREFIX: &str = "/api/";
const PUBLIC_SERVER_FNS: [&str; 3] = ["login", "current_user", "logout"];

#[derive(Clone)]
struct Ops {
    store: DynStore,
    metrics: Arc<Metrics>,
    sync: Arc<sync::Scheduler>,
}

/// The sync engine's configuration for this instance: production defaults, this deployment's app
/// registration, and where Microsoft posts change notifications (none when it cannot reach the
/// public URL: then every mailbox is polled).
pub fn sync_config(config: &ServeConfig) -> sync::SyncConfig {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "i360".into());
    sync::SyncConfig {
        owner: format!("{host}-{}-{}", std::process::id(), config.bind.port()),
        deployment_app: config.deployment_app.clone(),
        notification_urls: match crate::notifications::notification_urls(&config.public_url, &config.microsoft.graph) {
            Ok(urls) => Some(urls),
            Err(why) => {
                tracing::info!("change notifications are off and every mailbox is polled: {why}");
                None
            }
        },
        ..Default::default()
    }
}

/// The sync engine of this instance, over the same store and Microsoft endpoints as the pages.
/// Its workers start when the caller spawns them ([`sync::Scheduler::spawn`]).
pub fn sync_scheduler(store: DynStore, config: &ServeConfig) -> anyhow::Result<Arc<sync::Scheduler>> {
    sync_scheduler_with(store, config, sync_config(config))
}

/// [`sync_scheduler`] with a configuration of the caller's (tests and benchmarks shorten waits).
pub fn sync_scheduler_with(store: DynStore, config: &ServeConfig, sync: sync::SyncConfig) -> anyhow::Result<Arc<sync::Scheduler>> {
    let endpoints = microsoft::Endpoints::parse(&config.microsoft.authority, &config.microsoft.graph)?;
    let client = microsoft::MicrosoftClient::new(endpoints)?;
    Ok(sync::Scheduler::new(sync::Engine::new(store, client, sync)))
}

pub fn router(store: DynStore, scheduler: Arc<sync::Scheduler>, config: &ServeConfig, metrics: Arc<Metrics>) -> anyhow::Result<Router> {
    let options = LeptosOptions::builder()
        .output_name(app::OUTPUT_NAME)
        .site_root(config.site_root.to_string_lossy().as_ref())
        .site_pkg_dir("pkg")
        .site_addr(config.bind)
        .build();
    let endpoints = microsoft::Endpoints::parse(&config.microsoft.authority, &config.microsoft.graph)?;
    let microsoft = Arc::new(microsoft::MicrosoftClient::new(endpoints)?);
    let state = AppState {
        store: store.clone(),
        office365: office365::Integration::new(store.clone(), microsoft, scheduler.clone(), config.public_url.clone())
            .with_shared_tenants(config.shared_tenants),
        secure_cookies: config.public_url.starts_with("https://"),
    };
    let routes = generate_route_list(app::App);

    let pages = Router::new()
        .leptos_routes_with_context(
            &options,
            routes,
            {
                let state = state.clone();
                move || provide_context(state.clone())
            },
            {
                let options = options.clone();
                move || app::shell(options.clone())
            },
        )
        // The 404 page renders the same app (the signed-in header included), so it needs the same
        // context as every other page.
        .fallback(leptos_axum::file_and_error_handler_with_context(
            {
                let state = state.clone();
                move || provide_context(state.clone())
            },
            app::shell,
        ))
        .with_state(options);

    let oauth = Router::new()
        .route("/oauth/office365/start", axum::routing::post(crate::oauth::start))
        .route("/oauth/office365/callback", get(crate::oauth::callback))
        .route("/oauth/office365/admin-consent/start", axum::routing::post(crate::oauth::admin_consent_start))
        .route("/oauth/office365/admin-consent", get(crate::oauth::admin_consent_callback))
        .route(crate::notifications::NOTIFICATION_PATH, axum::routing::post(crate::notifications::changes))
        .route(crate::notifications::LIFECYCLE_PATH, axum::routing::post(crate::notifications::lifecycle))
        .with_state(state.office365.clone());

    let ops = Ops { store: store.clone(), metrics: metrics.clone(), sync: scheduler };
    let operations = Router::new().route("/healthz", get(healthz)).route("/metrics", get(metrics_text)).with_state(ops);

    // Layers run outside-in from the last one added: the request id is set first, so the log line
    // and any error shown to the user carry it.
    Ok(operations
        .merge(oauth)
        .merge(pages)
        .layer(middleware::from_fn_with_state(store, require_session_for_server_fns))
        .layer(middleware::from_fn_with_state(Arc::new(config.trusted_proxies.clone()), crate::client_address::resolve))
        .layer(middleware::from_fn(reject_cross_site))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(metrics, crate::metrics::record))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<Body>| {
            let id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
        }))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid)))
}

/// `/healthz`: 200 when the database answers, 503 when it does not.
async fn healthz(State(ops): State<Ops>) -> Response {
    let backend = ops.store.backend().as_str();
    let ping = tokio::time::timeout(HEALTH_TIMEOUT, ops.store.ping()).await;
    match ping.map_err(|_| format!("no answer within {HEALTH_TIMEOUT:?}")).and_then(|r| r.map_err(|e| e.to_string())) {
        Ok(()) => axum::Json(serde_json::json!({ "status": "ok", "database": backend })).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "health check: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(serde_json::json!({ "status": "unavailable", "database": backend })))
                .into_response()
        }
    }
}

async fn metrics_text(State(ops): State<Ops>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        ops.metrics.render() + &crate::metrics::render_sync(&ops.sync.engine().metrics().snapshot()),
    )
        .into_response()
}

/// Server functions other than the public ones answer a visitor 401 before their arguments are
/// read, so nothing a visitor sends them is decoded. (Each function still checks the caller's role
/// itself; this only turns visitors away early.) Should the database not answer, the request goes
/// on and the function reports that.
async fn require_session_for_server_fns(State(store): State<DynStore>, req: Request, next: Next) -> Response {
    let Some(endpoint) = req.uri().path().strip_prefix(SERVER_FN_PREFIX) else {
        return next.run(req).await;
    };
    if PUBLIC_SERVER_FNS.contains(&endpoint) {
        return next.run(req).await;
    }
    let cookies = req.headers().get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok());
    let signed_in = match SessionToken::from_cookie_headers(cookies) {
        None => false,
        Some(token) => !matches!(store.session_user(&token.hash(), store::now_unix()).await, Ok(None)),
    };
    if signed_in {
        return next.run(req).await;
    }
    let err = office365::Error::Unauthorized;
    let body = app::error::AppError { code: err.code(), message: err.to_string() };
    (StatusCode::from_u16(err.status()).unwrap_or(StatusCode::UNAUTHORIZED), axum::Json(body)).into_response()
}

/// Cross-site requests cannot change state. Browsers send `Sec-Fetch-Site` (and `Origin`) on every
/// POST; a value naming another site is refused before any server function runs. Requests without
/// either header do not come from a browser page, so they carry no ambient cookies to abuse.
async fn reject_cross_site(req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && is_cross_site(req.headers()) {
        tracing::warn!(path = %req.uri().path(), "refused a cross-site request");
        return (StatusCode::FORBIDDEN, "Cross-site requests are not allowed.").into_response();
    }
    next.run(req).await
}

fn is_cross_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return !matches!(site, "same-origin" | "none");
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()), host) {
        (Some(origin), Some(host)) => {
            let origin_host = origin.split_once("://").map(|(_, rest)| rest).unwrap_or(origin);
            origin_host != host
        }
        (Some(_), None) => true,
        (None, _) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn same_origin_posts_pass_and_cross_site_ones_do_not() {
        assert!(!is_cross_site(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(is_cross_site(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(is_cross_site(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(!is_cross_site(&headers(&[("origin", "http://127.0.0.1:3000"), ("host", "127.0.0.1:3000")])));
        assert!(is_cross_site(&headers(&[("origin", "https://evil.example"), ("host", "127.0.0.1:3000")])));
        assert!(!is_cross_site(&headers(&[("host", "127.0.0.1:3000")])));
    }
}
