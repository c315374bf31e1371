//! What server functions need from the process, put into Leptos context once at start-up.

use store::DynStore;

#[derive(Clone)]
pub struct AppState {
    pub store: DynStore,
    /// True when the public URL is https: session cookies then get `Secure`.
    pub secure_cookies: bool,
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
