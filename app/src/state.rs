//! What server functions need from the process, put into Leptos context once at start-up.

use std::sync::Arc;
use store::DynStore;

#[derive(Clone)]
pub struct AppState {
    pub store: DynStore,
    /// Talks to Microsoft (or the emulator, in the demo and the tests).
    pub microsoft: Arc<microsoft::MicrosoftClient>,
    /// The address people use to reach the server, e.g. `http://127.0.0.1:3000`; OAuth redirect
    /// URIs are built from it.
    pub public_url: String,
    /// True when the public URL is https: session cookies then get `Secure`.
    pub secure_cookies: bool,
    /// The sync engine's persistence (status, synced items).
    pub sync_store: store::DynSyncStore,
    /// The sync scheduler of this instance: told when connections or settings change, and asked
    /// for "Sync now".
    pub sync: Arc<sync::Scheduler>,
}

impl AppState {
    /// The redirect URI registered for member and admin sign-ins with Microsoft.
    pub fn callback_uri(&self) -> String {
        format!("{}/oauth/office365/callback", self.public_url.trim_end_matches('/'))
    }

    /// The redirect URI registered for Microsoft's admin consent flow.
    pub fn admin_consent_uri(&self) -> String {
        format!("{}/oauth/office365/admin-consent", self.public_url.trim_end_matches('/'))
    }
}

/// The request id the server's middleware gave this request (`x-request-id`), so a message shown
/// to a user can be matched with the log line that has the details.
pub fn error_reference() -> String {
    leptos::prelude::use_context::<axum::http::request::Parts>()
        .and_then(|parts| {
            parts
                .headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "no request id".to_owned())
}

/// The process state from Leptos context. A missing context is reported as an error rather than a
/// panic: during server rendering a resource whose owner was already disposed (a first render pass
/// that was thrown away) may still poll once, and must not take the worker task down with it.
pub fn app_state() -> Result<AppState, crate::error::AppError> {
    leptos::prelude::use_context::<AppState>()
        .ok_or_else(|| crate::error::AppError::internal("the application state is not in context"))
}
