//! What server functions need from the process, put into Leptos context once at start-up.

use crate::error::AppError;
use store::DynStore;

#[derive(Clone)]
pub struct AppState {
    /// Accounts and sessions (sign-in is not an Office 365 workflow).
    pub store: DynStore,
    /// The Office 365 workflows.
    pub office365: office365::Integration,
    /// The session cookie's one rule (`Secure` and `__Host-` prefixed when the public URL is https).
    pub session_cookie: store::SessionCookie,
    /// A session unused for this many seconds ends (besides its absolute lifetime).
    pub session_idle_secs: i64,
}

/// The address of the person on the other end of the request, as the server's edge resolved it
/// (the connection's peer, or behind a trusted reverse proxy the forwarded client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub std::net::IpAddr);

/// The request id the server's middleware gave this request (`x-request-id`), so a message shown
/// to a user can be matched with the log line that has the details.
pub fn error_reference() -> String {
    leptos::prelude::use_context::<axum::http::request::Parts>()
        .and_then(|parts| parts.headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned))
        .unwrap_or_else(|| "no request id".to_owned())
}

/// The process state from Leptos context. A missing context is reported as an error rather than a
/// panic: during server rendering a resource whose owner was already disposed (a first render pass
/// that was thrown away) may still poll once, and must not take the worker task down with it.
pub fn app_state() -> Result<AppState, AppError> {
    leptos::prelude::use_context::<AppState>().ok_or_else(|| office365::Error::internal("the application state is not in context").into())
}

/// The Office 365 workflows, for a server function.
pub fn office365() -> Result<office365::Integration, AppError> {
    Ok(app_state()?.office365)
}
