//! The server: wires the Leptos app, the axum routes and the store together.
//!
//! `main.rs` only parses the command line; everything here is a library so the integration tests
//! can start the same server in-process on port 0.

pub mod assets;
pub mod cli;
pub mod client_address;
pub mod demo;
pub mod deployment_app;
pub mod edge;
pub mod housekeeping;
pub mod http;
pub mod metrics;
pub mod notifications;
pub mod oauth;
pub mod security_headers;
pub mod shutdown;
pub mod telemetry;

use std::net::SocketAddr;
use std::path::PathBuf;

/// What a running server needs to know.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub bind: SocketAddr,
    /// Where the compiled front end lives (`pkg/i360.js`, `pkg/i360.wasm`, `pkg/i360.css`).
    pub site_root: PathBuf,
    /// The address people use to reach the server; `https://` turns on `Secure` cookies.
    pub public_url: String,
    pub microsoft: MicrosoftEndpoints,
    /// The deployment's own app registration, if the operator configured one (the demo's is the
    /// emulator's multi-tenant demo app).
    pub deployment_app: Option<sync::DeploymentApp>,
    /// Several organizations may pin the same Microsoft 365 tenant.
    pub shared_tenants: bool,
    /// Reverse proxies whose forwarding headers name the client.
    pub trusted_proxies: client_address::TrustedProxies,
    /// Timeouts, the connection cap and who may read `/metrics`.
    pub edge: edge::EdgeConfig,
    /// A session unused for this long is refused (besides its absolute lifetime).
    pub session_idle_timeout: std::time::Duration,
}

/// Where Microsoft is: the real services by default, the emulator in the demo and the tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MicrosoftEndpoints {
    /// Identity platform authority, e.g. `https://login.microsoftonline.com`.
    pub authority: String,
    /// Graph base, e.g. `https://graph.microsoft.com/v1.0`.
    pub graph: String,
}

impl Default for MicrosoftEndpoints {
    fn default() -> Self {
        MicrosoftEndpoints { authority: "https://login.microsoftonline.com".into(), graph: "https://graph.microsoft.com/v1.0".into() }
    }
}

pub use http::router;
