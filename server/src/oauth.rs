//! The OAuth routes: starting a sign-in with Microsoft and receiving its callback.
//!
//! These are plain axum routes rather than server functions because the browser reaches them by
//! form posts and redirects, not by fetch. Whatever happens, the callback ends on a page that says
//! what happened and what to do next: never a stack trace, never a 500.

use app::state::AppState;
use axum::extract::{Form, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use domain::{AuditEntry, ConnectionKind, FlowPurpose, ReasonCode, SessionUser};
use secrecy::ExposeSecret;
use serde::Deserialize;
use store::secrets::SecretString;
use store::{NewConnection, OAuthFlow, SessionToken};

/// How long Microsoft has to send the browser back (its codes live about as long, MICROSOFT.md §1.3).
const FLOW_TTL_SECS: i64 = 600;

#[derive(Deserialize)]
pub struct StartForm {
    purpose: String,
}

/// The session cookie of this request and who it belongs to.
async fn signed_in(state: &AppState, headers: &HeaderMap) -> Option<(SessionToken, SessionUser)> {
    let token = app::auth::session_token_in(headers)?;
    let user = state.store.session_user(&token.hash(), store::now_unix()).await.ok()??;
    Some((token, user))
}

/// The page that explains a failed (or refused) connection attempt.
fn failed(reason: ReasonCode, microsoft_code: Option<u32>) -> Response {
    let code = microsoft_code.map(|c| format!("&code=AADSTS{c}")).unwrap_or_default();
    Redirect::to(&format!("/connect/result?reason={}{code}", reason.as_str())).into_response()
}

fn refused(why: &str) -> Response {
    Redirect::to(&format!("/connect/result?refused={why}")).into_response()
}

/// Takes (and so deletes: a replayed callback finds nothing) the flow a callback's `state` names,
/// if it is of a purpose this callback `accepts` (another flow's state is as unknown here as a
/// made-up one), and returns it with the signed-in user of the session that started it.
async fn take_flow(
    state: &AppState,
    headers: &HeaderMap,
    state_param: Option<String>,
    now: store::UnixTime,
    accepts: impl Fn(FlowPurpose) -> bool,
) -> Result<(OAuthFlow, SessionUser), Response> {
    let Some(state_param) = state_param else {
        return Err(failed(ReasonCode::SignInNotVerified, None));
    };
    let flow = match state.store.take_oauth_flow(&state_param, now).await {
        Ok(Some(flow)) if accepts(flow.purpose) => flow,
        Ok(_) => return Err(refused("expired")),
        Err(e) => return Err(internal(e)),
    };
    match signed_in(state, headers).await.filter(|(t, _)| t.hash() == flow.session) {
        Some((_, user)) => Ok((flow, user)),
        // Started in another browser or session: whoever holds this callback did not start it.
        None => Err(refused("other_session")),
    }
}

/// `POST /oauth/office365/start`: sends the browser to Microsoft's sign-in with a fresh `state`,
/// PKCE verifier and nonce remembered server-side for this session.
pub async fn start(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<StartForm>) -> Response {
    let Some((token, user)) = signed_in(&state, &headers).await else {
        return Redirect::to("/login").into_response();
    };
    let Some(purpose) = FlowPurpose::parse(&form.purpose)
        .filter(|p| matches!(p, FlowPurpose::Activate | FlowPurpose::Connect | FlowPurpose::ServiceUser))
    else {
        return refused("unknown");
    };
    if matches!(purpose, FlowPurpose::Activate | FlowPurpose::ServiceUser) && !user.is_admin() {
        return refused("admins_only");
    }
    let settings = match state.store.office365_settings(user.org_id).await {
        Ok(s) => s,
        Err(e) => return internal(e),
    };
    if !settings.enabled {
        return refused("not_enabled");
    }
    // Members connect only in individual mode; the service user signs in only in its mode.
    if purpose != FlowPurpose::ServiceUser && settings.is_service_account() {
        return refused("service_account");
    }
    if purpose == FlowPurpose::ServiceUser && settings.mode != domain::permissions::ConnectionMode::ServiceUser {
        return refused("not_service_user");
    }
    let app = match app_registration(&state, &settings, user.org_id).await {
        Ok(app) => app,
        Err(resp) => return resp,
    };
    let scope = settings.scope_settings().authorization_scope();
    // The service user is another Microsoft account than the admin's own: no login hint then.
    let hint = (purpose != FlowPurpose::ServiceUser).then_some(user.email.as_str());
    let request = match state.microsoft.authorization_request(&app, &state.callback_uri(), &scope, hint, None) {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let now = store::now_unix();
    let flow = OAuthFlow {
        org_id: user.org_id,
        user_id: user.user_id,
        session: token.hash(),
        purpose,
        pkce_verifier: Some(SecretString::new(request.pkce_verifier.expose_secret())),
        nonce: Some(request.nonce.clone()),
        expires_at: now + FLOW_TTL_SECS,
    };
    if let Err(e) = state.store.start_oauth_flow(&request.state, &flow, now).await {
        return internal(e);
    }
    tracing::info!(user = %user.user_id, purpose = purpose.as_str(), "sending the browser to Microsoft");
    Redirect::to(request.url.as_str()).into_response()
}

/// `GET /oauth/office365/callback`: checks `state` (known, unexpired, unused, this session), turns
/// the code into tokens, verifies the id_token, and stores the connection.
pub async fn callback(State(state): State<AppState>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let parsed = microsoft::parse_callback(&query);
    let state_param = match &parsed {
        Ok(c) => Some(c.state.clone()),
        Err(e) => e.state.clone(),
    };
    let now = store::now_unix();
    let (flow, user) = match take_flow(&state, &headers, state_param, now, |p| p != FlowPurpose::AdminConsent).await {
        Ok(taken) => taken,
        Err(page) => return page,
    };
    let code = match parsed {
        Ok(code) => code,
        Err(e) => {
            tracing::info!(reason = e.reason.as_str(), error = %e.error, "Microsoft returned an error to the callback");
            if e.reason == ReasonCode::AdminApprovalRequired {
                // The member cannot fix this; every admin gets the "Grant organization-wide consent" card.
                if let Err(err) = state.store.request_admin_consent(user.org_id, &user.audit_label(), now).await {
                    return internal(err);
                }
            }
            return failed(e.reason, e.error_codes.first().copied());
        }
    };
    let settings = match state.store.office365_settings(user.org_id).await {
        Ok(s) => s,
        Err(e) => return internal(e),
    };
    let app = match app_registration(&state, &settings, user.org_id).await {
        Ok(app) => app,
        Err(resp) => return resp,
    };
    let (Some(verifier), Some(nonce)) = (flow.pkce_verifier, flow.nonce) else {
        return failed(ReasonCode::SignInNotVerified, None);
    };
    let verifier = secrecy::SecretString::from(verifier.expose().to_owned());
    let sign_in = match state.microsoft.exchange_code(&app, &code.code, &state.callback_uri(), &verifier, &nonce).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(reason = e.reason().as_str(), "code exchange refused");
            return failed(e.reason(), e.aad().and_then(|a| a.error_codes.first().copied()));
        }
    };
    let identity = sign_in.identity;
    let username = identity.username.clone().or(identity.email.clone()).unwrap_or_else(|| identity.object_id.clone());
    let service = flow.purpose == FlowPurpose::ServiceUser;
    if service && (!user.is_admin() || settings.mode != domain::permissions::ConnectionMode::ServiceUser) {
        return refused("not_service_user");
    }
    let primary = matches!(flow.purpose, FlowPurpose::Activate | FlowPurpose::ServiceUser);
    let connection = NewConnection {
        org_id: user.org_id,
        user_id: user.user_id,
        kind: if service { ConnectionKind::ServiceUser } else { ConnectionKind::Individual },
        is_primary: primary,
        ms_tenant_id: identity.tenant_id.clone(),
        ms_object_id: identity.object_id.clone(),
        ms_name: identity.name.clone().unwrap_or_else(|| username.clone()),
        ms_username: username.clone(),
        granted_scopes: sign_in.tokens.granted_scopes.clone(),
        access_token: SecretString::new(sign_in.tokens.access_token.expose_secret()),
        access_expires_at: sign_in.tokens.expires_at.unix_timestamp(),
        refresh_token: sign_in.tokens.refresh_token.as_ref().map(|t| SecretString::new(t.expose_secret())),
    };
    let audit = AuditEntry {
        at: now,
        actor: user.audit_label(),
        action: match flow.purpose {
            FlowPurpose::ServiceUser => "office365.service_activated",
            FlowPurpose::Activate => "office365.activated",
            _ => "office365.connected",
        }
        .into(),
        summary: match flow.purpose {
            FlowPurpose::ServiceUser => format!("Activated the service connection as service user {username}."),
            FlowPurpose::Activate => format!("Activated My Connection as {username}; it is the primary integration."),
            _ => format!("Connected Office 365 as {username}."),
        },
    };
    if service {
        if let Err(e) = app::service::replace_service_connection(&state, &user, &connection, &audit).await {
            return internal(e);
        }
        // Tell at once which team mailboxes the service user may open.
        let token = secrecy::SecretString::from(sign_in.tokens.access_token.expose_secret().to_owned());
        match state.store.service_account_users(user.org_id).await {
            Ok(users) => {
                if let Err(e) = app::service::check_mailboxes(&state, user.org_id, &token, &users).await {
                    return internal(e);
                }
            }
            Err(e) => return internal(e),
        }
    } else if let Err(e) = state.store.save_connection(&connection, &audit).await {
        return internal(e);
    }
    tracing::info!(user = %user.user_id, primary, "connection saved");
    let back = if primary { "/settings/integrations/office365/my-connection" } else { "/profile" };
    app::service::reconcile_sync(&state, user.org_id).await;
    Redirect::to(back).into_response()
}

/// `POST /oauth/office365/admin-consent/start` (admins): sends the browser to Microsoft's admin
/// consent endpoint for the configured tenant and app registration, with a fresh single-use `state`.
pub async fn admin_consent_start(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some((token, user)) = signed_in(&state, &headers).await else {
        return Redirect::to("/login").into_response();
    };
    if !user.is_admin() {
        return refused("admins_only");
    }
    let settings = match state.store.office365_settings(user.org_id).await {
        Ok(s) => s,
        Err(e) => return internal(e),
    };
    if !settings.enabled {
        return refused("not_enabled");
    }
    let Ok(tenant) = microsoft::Tenant::parse(&settings.tenant) else {
        return failed(ReasonCode::AppNotFound, None);
    };
    // 256 random bits, like a session token; only its hash is stored.
    let consent_state = SessionToken::generate().as_cookie_value().to_owned();
    let url = match state.microsoft.admin_consent_url(&tenant, &settings.client_id, &state.admin_consent_uri(), &consent_state) {
        Ok(url) => url,
        Err(e) => return internal(e),
    };
    let now = store::now_unix();
    let flow = OAuthFlow {
        org_id: user.org_id,
        user_id: user.user_id,
        session: token.hash(),
        purpose: FlowPurpose::AdminConsent,
        pkce_verifier: None,
        nonce: None,
        expires_at: now + FLOW_TTL_SECS,
    };
    if let Err(e) = state.store.start_oauth_flow(&consent_state, &flow, now).await {
        return internal(e);
    }
    tracing::info!(user = %user.user_id, "sending the browser to Microsoft's admin consent");
    Redirect::to(url.as_str()).into_response()
}

/// `GET /oauth/office365/admin-consent`: checks `state` (known, unexpired, unused, this session, an
/// admin consent flow), Microsoft's error parameters and the tenant, then records the consent.
pub async fn admin_consent_callback(State(state): State<AppState>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let parsed = microsoft::parse_admin_consent_callback(&query);
    let state_param = match &parsed {
        Ok(g) => Some(g.state.clone()),
        Err(e) => e.state.clone(),
    };
    let now = store::now_unix();
    let (_, user) = match take_flow(&state, &headers, state_param, now, |p| p == FlowPurpose::AdminConsent).await {
        Ok(taken) => taken,
        Err(page) => return page,
    };
    if !user.is_admin() {
        return refused("admins_only");
    }
    let granted = match parsed {
        Ok(g) => g,
        Err(e) => {
            tracing::info!(reason = e.reason.as_str(), error = %e.error, "Microsoft refused the admin consent");
            return failed(e.reason, e.error_codes.first().copied());
        }
    };
    let settings = match state.store.office365_settings(user.org_id).await {
        Ok(s) => s,
        Err(e) => return internal(e),
    };
    let Ok(tenant) = microsoft::Tenant::parse(&settings.tenant) else {
        return failed(ReasonCode::AppNotFound, None);
    };
    // The tenant Microsoft names must be the one configured (it is never trusted for more).
    let expected = match state.microsoft.resolve_tenant_id(&tenant).await {
        Ok(t) => t,
        Err(e) => return failed(e.reason(), e.aad().and_then(|a| a.error_codes.first().copied())),
    };
    let returned = granted.tenant.clone().map(|t| t.to_ascii_lowercase());
    let tenant_id = match (expected, returned) {
        (Some(expected), Some(returned)) if expected != returned => return failed(ReasonCode::WrongTenant, None),
        (Some(expected), _) => expected,
        (None, Some(returned)) => returned,
        (None, None) => return failed(ReasonCode::SignInNotVerified, None),
    };
    let grant = domain::ConsentGrant {
        by: user.audit_label(),
        at: now,
        tenant_id: tenant_id.clone(),
        client_id: settings.client_id.clone(),
        scopes: granted.scopes,
    };
    let audit = AuditEntry {
        at: now,
        actor: user.audit_label(),
        action: "office365.admin_consent_granted".into(),
        summary: format!("Granted organization-wide consent in Microsoft 365 tenant {tenant_id}."),
    };
    if let Err(e) = state.store.record_admin_consent(user.org_id, &grant, &audit).await {
        return internal(e);
    }
    tracing::info!(user = %user.user_id, "admin consent recorded");
    if settings.mode != domain::permissions::ConnectionMode::ApplicationPermissions {
        return Redirect::to("/settings/integrations/office365/admin-consent").into_response();
    }
    // Service-account mode with application permissions: the consent is the activation.
    if let Err(e) = app::service::activate_application(&state, &user, &settings, &tenant_id, grant.scopes).await {
        return service_failed(e);
    }
    match app::service::service_token(&state, user.org_id, &settings).await {
        Ok((_, token)) => match state.store.service_account_users(user.org_id).await {
            Ok(users) => {
                if let Err(e) = app::service::check_mailboxes(&state, user.org_id, &token, &users).await {
                    return internal(e);
                }
            }
            Err(e) => return internal(e),
        },
        Err(e) => return service_failed(e),
    }
    app::service::reconcile_sync(&state, user.org_id).await;
    Redirect::to("/settings/integrations/office365/my-connection").into_response()
}

async fn app_registration(
    state: &AppState,
    settings: &domain::office365::Office365Settings,
    org: domain::OrgId,
) -> Result<microsoft::AppRegistration, Response> {
    app::service::app_registration(state, org, settings).await.map_err(service_failed)
}

fn service_failed(e: app::service::ServiceFailure) -> Response {
    match e {
        app::service::ServiceFailure::Microsoft(reason, code) => failed(reason, code),
        app::service::ServiceFailure::NotActivated => refused("internal"),
        app::service::ServiceFailure::Store(e) => internal(e),
    }
}

/// Logs the details and shows the generic page; the request id in the log ties them together.
fn internal(err: impl std::fmt::Display) -> Response {
    tracing::error!(error = %err, "OAuth route failed");
    refused("internal")
}
