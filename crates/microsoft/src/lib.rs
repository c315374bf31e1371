//! # Microsoft client: the identity platform flows and a thin Graph client
//!
//! Speaks the protocol of `shared/spec/MICROSOFT.md` to the real `login.microsoftonline.com` and
//! `graph.microsoft.com` by default, or to anything that serves the same paths (the emulator) when
//! [`Endpoints`] say so. It shares no types with the emulator: every request and response shape here
//! is written from the spec.
//!
//! - Sign-in and consent: [`MicrosoftClient::authorization_request`] (auth code + PKCE S256, `state`,
//!   `nonce`) → browser → [`parse_callback`] → [`MicrosoftClient::exchange_code`], which validates the
//!   id_token fully and returns who signed in ([`SignIn`]).
//! - Keeping a connection alive: [`MicrosoftClient::refresh`] returns a **new refresh token every time**;
//!   the caller must persist it (§1.4).
//! - Service-account mode and the settings page's "test token request":
//!   [`MicrosoftClient::client_credentials`].
//! - The app registration authenticates with a client secret or a certificate
//!   ([`ClientCredential`]); a [`CertificateCredential`] signs a fresh client assertion for every
//!   token request (`private_key_jwt`, §1.4).
//! - Organization-wide consent: [`MicrosoftClient::admin_consent_url`] → [`parse_admin_consent_callback`].
//! - Graph for the settings pages: [`MicrosoftClient::me`], [`MicrosoftClient::search_users`],
//!   [`MicrosoftClient::probe_mailbox`].
//!
//! The OAuth exchanges are written directly on `reqwest` rather than through a generic OAuth/OIDC
//! crate: Microsoft's errors carry `error_codes`, `suberror`, trace and correlation ids that the
//! reason-code mapping needs (§1.5), and the multi-tenant issuer is a `{tenantid}` template that
//! generic OIDC validation rejects (§1.6). The flows are small; each step cites the spec section.
//!
//! Every failure carries a [`domain::ReasonCode`] (and so who must act), derived from Microsoft's
//! codes, never from message text. Tokens and secrets are `SecretString`s: `Debug` redacts them and
//! nothing here logs them.

//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use microsoft::{AppRegistration, Endpoints, MicrosoftClient, SecretString, parse_callback};
//! let client = MicrosoftClient::new(Endpoints::microsoft()?)?;
//! let app = AppRegistration::new("contoso.onmicrosoft.com", "11111111-2222-4333-8444-555555555555", SecretString::from("…"))?;
//! let redirect = "https://i360.example/oauth/office365/callback";
//!
//! // 1. Connect: remember state, verifier and nonce server-side, send the browser to `req.url`.
//! let req = client.authorization_request(&app, redirect, "openid profile email offline_access User.Read Mail.Read", None, None)?;
//!
//! // 2. Callback route: `raw_query` is what came back to the redirect URI.
//! # let raw_query = "";
//! let cb = parse_callback(raw_query)?; // Err: Microsoft's error with `reason` and who must act
//! if !cb.state_matches(&req.state) { /* not ours: refuse */ }
//! let signed_in = client.exchange_code(&app, &cb.code, redirect, &req.pkce_verifier, &req.nonce).await?;
//! // key the connection on (signed_in.identity.tenant_id, signed_in.identity.object_id)
//!
//! // 3. Later: refresh, and persist the new refresh token every time.
//! if let Some(rt) = &signed_in.tokens.refresh_token {
//!     let fresh = client.refresh(&app, rt, None).await?;
//!     # let _ = fresh;
//! }
//! # Ok(()) }
//! ```

mod authorize;
mod batch;
mod certificate;
mod config;
mod containers;
mod delta;
mod error;
mod graph;
mod id_token;
mod keys;
mod subscriptions;
mod token;
mod writes;

pub use authorize::{
    AdminConsentGranted, AuthorizationRequest, CallbackCode, CallbackError, FORWARDED_CONSENT_STATE, Prompt, parse_admin_consent_callback,
    parse_callback, pkce_challenge, secrets_match,
};
pub use batch::{BatchGet, Fetched, MAX_BATCH_REQUESTS};
pub use certificate::{CLIENT_ASSERTION_TYPE, CertificateCredential};
pub use config::{AppRegistration, ClientCredential, Endpoints, GRAPH_DEFAULT_SCOPE, MICROSOFT_AUTHORITY, MICROSOFT_GRAPH, Tenant};
pub use containers::ListingStart;
pub use delta::{
    Contact, Container, DeltaItem, DeltaNext, DeltaPage, DeltaRequest, DeltaStart, EmailAddress, Event, FailureClass, GraphItem, Location,
    Message, Recipient, Task, ZonedDateTime,
};
pub use error::{AadError, Grant, IdTokenError, MicrosoftError};
pub use graph::{GraphError, GraphUser, MailboxRef};
pub use id_token::VerifiedIdentity;
pub use subscriptions::{
    ChangeNotification, ChangeNotifications, NotificationUrls, OUTLOOK_SUBSCRIPTION_MAX_MINUTES, Subscription, SubscriptionTarget,
};
pub use token::{AppToken, SignIn, UserTokens};
pub use writes::{LINKED_APPLICATION, MessageRef, ResponseAction, WRITE_KEY_PROPERTY};

pub use secrecy::{ExposeSecret, SecretString};

use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// Timeouts for every call to Microsoft. A hung connection must not hold a sign-in page or a sync
/// worker forever; a timeout becomes `MicrosoftUnavailable` (retried later).
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts { connect: Duration::from_secs(10), request: Duration::from_secs(30) }
    }
}

/// The client. Cheap to clone (one connection pool and one key cache shared by all clones).
#[derive(Clone)]
pub struct MicrosoftClient {
    http: reqwest::Client,
    endpoints: Arc<Endpoints>,
    keys: Arc<keys::KeyCache>,
    /// Allowed clock skew for id_token `exp`/`nbf` (Microsoft's own libraries use 5 minutes).
    leeway: Duration,
    /// One request's time limit; a `$batch` gets one per wave of the requests Graph runs at once.
    request_timeout: Duration,
}

impl std::fmt::Debug for MicrosoftClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MicrosoftClient").field("endpoints", &self.endpoints).finish_non_exhaustive()
    }
}

impl MicrosoftClient {
    pub fn new(endpoints: Endpoints) -> Result<MicrosoftClient, MicrosoftError> {
        MicrosoftClient::with_timeouts(endpoints, Timeouts::default())
    }

    pub fn with_timeouts(endpoints: Endpoints, timeouts: Timeouts) -> Result<MicrosoftClient, MicrosoftError> {
        let http = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .timeout(timeouts.request)
            // The token endpoint and Graph answer directly; following a redirect could send a
            // secret-bearing POST or a bearer token somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Intelligence360/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| MicrosoftError::Config(format!("HTTP client: {e}")))?;
        Ok(MicrosoftClient {
            http,
            endpoints: Arc::new(endpoints),
            keys: Arc::new(keys::KeyCache::default()),
            leeway: Duration::from_secs(300),
            request_timeout: timeouts.request,
        })
    }

    /// How soon an id_token with an unknown `kid` may trigger another JWKS download (default one
    /// minute). Microsoft rolls signing keys; the limit keeps forged tokens with random `kid`s from
    /// turning into a flood of requests to Microsoft. Starts a fresh key cache.
    pub fn with_key_refetch_interval(mut self, interval: Duration) -> MicrosoftClient {
        self.keys = Arc::new(keys::KeyCache::new(interval));
        self
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// Builds the `/authorize` URL for `scope` (space-separated, from the permission catalogue; it
    /// must include `openid` and `profile` for the id_token and `offline_access` for a refresh
    /// token). Store the returned `state`, `pkce_verifier` and `nonce` server-side.
    pub fn authorization_request(
        &self,
        app: &AppRegistration,
        redirect_uri: &str,
        scope: &str,
        login_hint: Option<&str>,
        prompt: Option<Prompt>,
    ) -> Result<AuthorizationRequest, MicrosoftError> {
        authorize::authorization_request(&self.endpoints, app, redirect_uri, scope, login_hint, prompt)
    }

    /// A v2 admin-consent link for exactly `scope`, to forward to an administrator (§1.8).
    pub fn forwardable_admin_consent_url(
        &self,
        tenant: &Tenant,
        client_id: &str,
        redirect_uri: &str,
        scope: &str,
    ) -> Result<Url, MicrosoftError> {
        authorize::forwardable_admin_consent_url(&self.endpoints, tenant, client_id, redirect_uri, scope)
    }

    /// The v2 admin-consent URL for every permission configured on the app registration (§1.8).
    pub fn admin_consent_url(&self, tenant: &Tenant, client_id: &str, redirect_uri: &str, state: &str) -> Result<Url, MicrosoftError> {
        authorize::admin_consent_url(&self.endpoints, tenant, client_id, redirect_uri, state)
    }
}
