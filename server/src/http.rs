//! The axum router: Leptos pages and server functions, `/healthz`, `/metrics`, static files, and
//! the middleware every request passes through (request id, security headers, logging, metrics,
//! request timeout, body limit, cross-site check).

use crate::{ServeConfig, metrics::Metrics};
use app::state::AppState;
use axum::Router;
use axum::body::Body;
use axum::extract::{Extension, Request, State};
use axum::http::{HeaderMap, HeaderName, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list};
use std::sync::Arc;
use std::time::Duration;
use store::{DynStore, SessionCookie};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
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
    /// `/metrics` wants `Authorization: Bearer <token>` when set.
    metrics_token: Option<secrecy::SecretString>,
}

/// What the early sign-in check needs: the store and the session cookie's rule.
#[derive(Clone)]
struct Sessions {
    store: DynStore,
    cookie: SessionCookie,
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
    let mut options = LeptosOptions::builder()
        .output_name(app::OUTPUT_NAME)
        .site_root(config.site_root.to_string_lossy().as_ref())
        .site_pkg_dir(app::PKG_DIR)
        .site_addr(config.bind)
        .build();
    crate::assets::use_hashed_names(&mut options, &config.site_root);
    let endpoints = microsoft::Endpoints::parse(&config.microsoft.authority, &config.microsoft.graph)?;
    let microsoft = Arc::new(microsoft::MicrosoftClient::new(endpoints)?);
    let state = AppState {
        store: store.clone(),
        office365: office365::Integration::new(store.clone(), microsoft, scheduler.clone(), config.public_url.clone())
            .with_shared_tenants(config.shared_tenants),
        session_cookie: SessionCookie::for_public_url(&config.public_url),
        session_idle_secs: i64::try_from(config.session_idle_timeout.as_secs()).unwrap_or(i64::MAX),
    };
    let routes = generate_route_list(app::App);
    let headers = Arc::new(crate::security_headers::SecurityHeaders::new(&config.public_url, &config.microsoft.authority));

    let pages = Router::new()
        .leptos_routes_with_context(
            &options,
            routes,
            {
                let (state, headers) = (state.clone(), headers.clone());
                move || {
                    provide_context(state.clone());
                    app::auth::provide_request_session();
                    headers.provide_page_policy();
                }
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
                let (state, headers) = (state.clone(), headers.clone());
                move || {
                    provide_context(state.clone());
                    app::auth::provide_request_session();
                    headers.provide_page_policy();
                }
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
        .layer(Extension(state.session_cookie))
        .with_state(state.office365.clone());

    let ops = ops(store.clone(), scheduler, config, metrics.clone());
    let mut operations = Router::new().route("/healthz", get(healthz));
    if config.edge.metrics_bind.is_none() {
        operations = operations.route("/metrics", get(metrics_text));
    }
    let sessions = Sessions { store, cookie: state.session_cookie };

    // Layers run outside-in from the last one added: a malformed request id is dropped and a fresh
    // one set first, so the log line and any error shown to the user carry it.
    Ok(operations
        .with_state(ops)
        .merge(oauth)
        .merge(crate::assets::pkg_routes(&config.site_root))
        .merge(pages)
        .layer(middleware::from_fn_with_state(sessions, require_session_for_server_fns))
        .layer(middleware::from_fn_with_state(Arc::new(config.trusted_proxies.clone()), crate::client_address::resolve))
        .layer(middleware::from_fn(reject_cross_site))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, config.edge.limits.request_timeout))
        .layer(middleware::from_fn_with_state(metrics, crate::metrics::record))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<Body>| {
            let id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
        }))
        .layer(middleware::from_fn_with_state(headers, crate::security_headers::add))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
        .layer(middleware::map_request(drop_malformed_request_id)))
}

/// `/metrics` alone, for its own listener (`--metrics-bind`); the token still applies.
pub fn metrics_router(store: DynStore, scheduler: Arc<sync::Scheduler>, config: &ServeConfig, metrics: Arc<Metrics>) -> Router {
    Router::new().route("/metrics", get(metrics_text)).with_state(ops(store, scheduler, config, metrics))
}

/// With `--metrics-bind`, binds that address and serves [`metrics_router`] on it (within the same
/// limits) until `stopped` turns true, and returns the bound address. Without it, nothing:
/// `/metrics` is beside the app.
pub async fn serve_metrics_apart(
    store: DynStore,
    scheduler: Arc<sync::Scheduler>,
    config: &ServeConfig,
    metrics: Arc<Metrics>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Option<std::net::SocketAddr>> {
    let Some(bind) = config.edge.metrics_bind else { return Ok(None) };
    let listener = tokio::net::TcpListener::bind(bind).await.map_err(|e| anyhow::anyhow!("--metrics-bind {bind}: {e}"))?;
    let bound = listener.local_addr()?;
    tracing::info!(address = %bound, "serving /metrics");
    let router = metrics_router(store, scheduler, config, metrics);
    let limits = config.edge.limits.clone();
    tokio::spawn(async move {
        let stop = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        if let Err(e) = crate::edge::serve(listener, router, &limits, stop).await {
            tracing::error!(error = %e, "the /metrics listener stopped");
        }
    });
    Ok(Some(bound))
}

fn ops(store: DynStore, sync: Arc<sync::Scheduler>, config: &ServeConfig, metrics: Arc<Metrics>) -> Ops {
    Ops { store, metrics, sync, metrics_token: config.edge.metrics_token.clone() }
}

/// A client's own `x-request-id` is kept only when it looks like an id (1 to 64 of `A-Z a-z 0-9 .
/// _ -`): anything else (log-forging newlines, kilobytes of text) is dropped and a fresh id given.
async fn drop_malformed_request_id(mut req: Request) -> Request {
    let well_formed = |v: &axum::http::HeaderValue| {
        (1..=64).contains(&v.len()) && v.as_bytes().iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    };
    let headers = req.headers_mut();
    if headers.get_all(&REQUEST_ID).iter().count() > 1 || headers.get(&REQUEST_ID).is_some_and(|v| !well_formed(v)) {
        headers.remove(&REQUEST_ID);
    }
    req
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

async fn metrics_text(State(ops): State<Ops>, headers: HeaderMap) -> Response {
    if !crate::metrics::authorized(ops.metrics_token.as_ref(), &headers) {
        return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], "A bearer token is needed for /metrics.\n")
            .into_response();
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        ops.metrics.render() + &crate::metrics::render_sync(&ops.sync.engine().metrics().snapshot()),
    )
        .into_response()
}

/// Server functions other than the public ones answer a visitor 401 before their arguments are
/// read, so nothing a visitor sends them is decoded. (Each function still checks the caller's role
/// itself; this only turns visitors away early.) The session found is handed to the function in
/// the request's extensions, so its own check does not read it again. Should the database not
/// answer, the request goes on and the function reports that.
async fn require_session_for_server_fns(State(sessions): State<Sessions>, mut req: Request, next: Next) -> Response {
    let Some(endpoint) = req.uri().path().strip_prefix(SERVER_FN_PREFIX) else {
        return next.run(req).await;
    };
    if PUBLIC_SERVER_FNS.contains(&endpoint) {
        return next.run(req).await;
    }
    let cookies = req.headers().get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok());
    let looked_up = match sessions.cookie.token_in(cookies) {
        None => Ok(None),
        Some(token) => sessions.store.session_user(&token.hash(), store::now_unix()).await,
    };
    match looked_up {
        // The function's own check reads this lookup instead of repeating it.
        Ok(Some(user)) => {
            req.extensions_mut().insert(app::auth::RequestSession::known(Some(user)));
            return next.run(req).await;
        }
        Err(_) => return next.run(req).await,
        Ok(None) => {}
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
