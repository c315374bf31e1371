//! Microsoft identity platform v2.0: discovery, JWKS, `/authorize` with its interactive pages, the token
//! endpoint (authorization_code, refresh_token, client_credentials) and both admin-consent endpoints
//! (MICROSOFT.md §1).

use crate::catalogue::{self, GRAPH_APP_ID, GRAPH_RESOURCE, Scope};
use crate::util::{aad_timestamp, b64url, guid, ms_urlencode, parse_qs, random_token};
use crate::{AppFixture, Shared, UserRef, lock, pages};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

mod assertion;
mod authorize;
mod consent;
mod discovery;
mod errors;
mod grants;
mod issue;
mod login;
mod token;

use assertion::*;
use authorize::*;
use consent::*;
use discovery::*;
use errors::*;
use grants::*;
use issue::*;
use login::*;
use token::*;

const SESSION_COOKIE: &str = "ESTSAUTH";

#[derive(Default)]
pub(crate) struct IdpState {
    flows: HashMap<String, Flow>,
    sessions: HashMap<String, Session>,
    codes: HashMap<String, CodeGrant>,
    refresh: HashMap<String, RefreshGrant>,
    /// (tenant, user, client) → consented scope names
    consents: HashMap<(String, String, String), BTreeSet<String>>,
    /// (tenant, client) → tenant-wide grant by an admin
    pub admin_grants: HashMap<(String, String), AdminGrant>,
    access: HashMap<String, AccessGrant>,
    /// user id → instant before which refresh tokens are revoked (admin "revoke sessions")
    tokens_valid_from: HashMap<String, OffsetDateTime>,
    /// (tenant, client): the app's service principal in a tenant other than its home, created at
    /// the first consent there (a user's, an admin's for the organization, or admin consent), as in
    /// Entra. Client credentials in a tenant need it; the token's `roles` need a grant.
    service_principals: std::collections::HashSet<(String, String)>,
    /// `jti`s of client assertions already used (replay protection).
    seen_assertions: std::collections::HashSet<String>,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct AdminGrant {
    pub delegated: BTreeSet<String>,
    pub roles: BTreeSet<String>,
}

/// What a bearer token lets its holder do at Graph.
#[derive(Clone, Debug)]
pub(crate) struct AccessGrant {
    pub tenant_id: String,
    pub client_id: String,
    pub user_id: Option<String>,
    pub scopes: BTreeSet<String>,
    pub roles: BTreeSet<String>,
    pub expires: OffsetDateTime,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FlowKind {
    Authorize,
    AdminConsentV1,
    AdminConsentV2,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    SignIn,
    Pick,
    Mfa,
    Consent,
    NeedApproval,
    AdminConsent,
}

#[derive(Clone, Debug)]
struct Flow {
    kind: FlowKind,
    path_tenant: String,
    client_id: String,
    redirect_uri: String,
    state: Option<String>,
    response_mode: String,
    /// Requested scope names (canonical); for admin consent: delegated part.
    scopes: BTreeSet<String>,
    /// Admin consent: application permissions to grant.
    roles: BTreeSet<String>,
    nonce: Option<String>,
    challenge: Option<(String, String)>,
    prompt: Option<String>,
    login_hint: String,
    user: Option<String>,
    session: Option<String>,
    mfa_done: bool,
    step: Step,
    correlation: String,
}

#[derive(Clone, Debug)]
struct Session {
    user_id: String,
    mfa: bool,
}

#[derive(Clone, Debug)]
struct CodeGrant {
    client_id: String,
    tenant_id: String,
    user_id: String,
    redirect_uri: String,
    requested: BTreeSet<String>,
    nonce: Option<String>,
    challenge: Option<(String, String)>,
    created: OffsetDateTime,
    redeemed: bool,
    mfa: bool,
    session: String,
}

#[derive(Clone, Debug)]
struct RefreshGrant {
    client_id: String,
    user_id: String,
    requested: BTreeSet<String>,
    issued: OffsetDateTime,
    last_used: OffsetDateTime,
    mfa: bool,
    session: String,
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/{tenant}/v2.0/.well-known/openid-configuration", get(discovery))
        .route("/{tenant}/discovery/v2.0/keys", get(jwks))
        .route("/{tenant}/discovery/instance", get(instance_discovery))
        .route("/{tenant}/oauth2/v2.0/authorize", get(authorize))
        .route("/{tenant}/oauth2/v2.0/token", axum::routing::post(token))
        .route("/{tenant}/oauth2/v2.0/logout", get(logout).post(logout))
        .route("/{tenant}/login", axum::routing::post(login_step))
        .route("/{tenant}/adminconsent", get(admin_consent_v1))
        .route("/{tenant}/v2.0/adminconsent", get(admin_consent_v2))
}

// ------------------------------------------------------------------ tenants

#[derive(Clone, Debug, PartialEq, Eq)]
enum PathTenant {
    Common,
    Organizations,
    Consumers,
    Tenant(usize),
}

fn path_tenant(shared: &Shared, s: &str) -> Option<PathTenant> {
    match s.to_ascii_lowercase().as_str() {
        "common" => Some(PathTenant::Common),
        "organizations" => Some(PathTenant::Organizations),
        "consumers" | "9188040d-6c67-4c5b-b112-36a304b66dad" => Some(PathTenant::Consumers),
        other => shared.tenant_index(other).map(PathTenant::Tenant),
    }
}

fn tenant_not_found(t: &str) -> String {
    format!(
        "Tenant '{t}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
    )
}
// ------------------------------------------------------------------ used by Graph and the control API

pub(crate) enum TokenCheck {
    Valid(AccessGrant),
    Expired,
    Unknown,
}

pub(crate) fn check_access_token(shared: &Shared, token: &str) -> TokenCheck {
    match lock(&shared.idp).access.get(token) {
        Some(g) if g.expires > shared.now() => TokenCheck::Valid(g.clone()),
        Some(_) => TokenCheck::Expired,
        None => TokenCheck::Unknown,
    }
}

impl IdpState {
    /// Stores an issued access token, dropping expired ones (and spent codes) now and then so long
    /// benchmark runs do not grow without bound.
    fn remember_access_token(&mut self, now: OffsetDateTime, token: String, grant: AccessGrant) {
        if self.access.len() >= 50_000 {
            self.access.retain(|_, g| g.expires > now);
            self.codes.retain(|_, c| !c.redeemed && now - c.created < Duration::hours(1));
        }
        self.access.insert(token, grant);
    }

    /// Records a consent in `tenant` for `client`: its service principal now exists there.
    pub(crate) fn consented_in(&mut self, tenant: &str, client_id: &str) {
        self.service_principals.insert((tenant.to_ascii_lowercase(), client_id.to_ascii_lowercase()));
    }

    pub(crate) fn revoke_user(&mut self, user_id: &str, at: OffsetDateTime) {
        self.tokens_valid_from.insert(user_id.to_ascii_lowercase(), at);
        self.sessions.retain(|_, s| !s.user_id.eq_ignore_ascii_case(user_id));
    }

    pub(crate) fn revoke_consent(&mut self, tenant: &str, user_id: Option<&str>, client_id: &str) {
        let (t, c) = (tenant.to_ascii_lowercase(), client_id.to_ascii_lowercase());
        match user_id {
            Some(u) => {
                self.consents.remove(&(t, u.to_ascii_lowercase(), c));
            }
            None => {
                self.admin_grants.remove(&(t, c));
            }
        }
    }

    pub(crate) fn expire_access_tokens(&mut self, at: OffsetDateTime) {
        for g in self.access.values_mut() {
            g.expires = at;
        }
    }

    pub(crate) fn age_refresh_tokens(&mut self, user_id: Option<&str>, by: Duration) {
        for g in self.refresh.values_mut() {
            if user_id.is_none_or(|u| g.user_id.eq_ignore_ascii_case(u)) {
                g.last_used -= by;
                g.issued -= by;
            }
        }
    }
}
