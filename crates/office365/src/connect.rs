//! Connecting a Microsoft 365 account: a member's own, the admin's My Connection (the primary
//! integration) or the service user. Start sends the browser to Microsoft with a fresh `state`,
//! PKCE verifier and nonce kept server-side for this session; complete checks the callback, turns
//! the code into tokens, verifies the id_token and stores the connection.

use crate::{Error, Integration, Result, admin_only, audit};
use domain::office365::Office365Settings;
use domain::permissions::ConnectionMode;
use domain::{ConnectionKind, FlowPurpose, ReasonCode, Refusal, SessionUser};
use store::{NewConnection, OAuthFlow, SessionToken, SessionTokenHash};

/// What a sign-in that only identifies the admin (and so the tenant) asks for.
const IDENTITY_SCOPE: &str = "openid profile email";

/// How long Microsoft has to send the browser back (its codes live about as long, MICROSOFT.md §1.3).
pub(crate) const FLOW_TTL_SECS: i64 = 600;

/// Where the browser goes next: a path of ours or Microsoft's URL.
pub type Landing = String;

/// A signed-in browser session: the session (flows are bound to it) and its user.
#[derive(Debug, Clone)]
pub struct Caller {
    pub session: SessionTokenHash,
    pub user: SessionUser,
}

impl Integration {
    /// Who holds this session cookie, if anyone.
    pub async fn caller(&self, token: Option<SessionToken>) -> Result<Option<Caller>> {
        let Some(token) = token else { return Ok(None) };
        let user = self.store.session_user(&token.hash(), store::now_unix()).await?;
        Ok(user.map(|user| Caller { session: token.hash(), user }))
    }

    /// Starts a sign-in with Microsoft for `purpose` ("activate", "connect" or "service_user").
    pub async fn start_sign_in(&self, caller: &Caller, purpose: &str) -> Result<Landing> {
        let user = &caller.user;
        let purpose = FlowPurpose::parse(purpose)
            .filter(|p| matches!(p, FlowPurpose::Activate | FlowPurpose::Connect | FlowPurpose::ServiceUser))
            .ok_or(Error::Refused(Refusal::Unknown))?;
        if purpose != FlowPurpose::Connect {
            admin_only(user).map_err(|_| Error::Refused(Refusal::AdminsOnly))?;
        }
        let settings = self.settings(user.org_id).await?;
        if !settings.enabled {
            return Err(Error::Refused(Refusal::NotEnabled));
        }
        // Members connect only in individual mode; the service user signs in only in its mode. In
        // application mode an admin's activation only learns the tenant, then consents.
        let learns_tenant_only = purpose == FlowPurpose::Activate && settings.mode == ConnectionMode::ApplicationPermissions;
        if purpose != FlowPurpose::ServiceUser && settings.is_service_account() && !learns_tenant_only {
            return Err(Error::Refused(Refusal::ServiceAccount));
        }
        if purpose == FlowPurpose::ServiceUser && settings.mode != ConnectionMode::ServiceUser {
            return Err(Error::Refused(Refusal::NotServiceUser));
        }
        let scope = if learns_tenant_only { IDENTITY_SCOPE.to_owned() } else { settings.scope_settings().authorization_scope() };
        // The service user is another Microsoft account than the admin's own: no login hint then.
        let hint = (purpose != FlowPurpose::ServiceUser).then_some(user.email.as_str());
        self.send_to_sign_in(caller, &settings, purpose, &scope, hint, None).await
    }

    /// Stores a new flow for `purpose` and returns Microsoft's `/authorize` URL for it.
    pub(crate) async fn send_to_sign_in(
        &self,
        caller: &Caller,
        settings: &Office365Settings,
        purpose: FlowPurpose,
        scope: &str,
        hint: Option<&str>,
        prompt: Option<microsoft::Prompt>,
    ) -> Result<Landing> {
        let app = self.sign_in_app(settings, caller.user.org_id, purpose).await?;
        let request = self.microsoft.authorization_request(&app, &self.callback_uri(), scope, hint, prompt).map_err(Error::internal)?;
        let flow = OAuthFlow {
            pkce_verifier: Some(request.pkce_verifier.clone()),
            nonce: Some(request.nonce.clone()),
            ..self.new_flow(caller, purpose)
        };
        self.store.start_oauth_flow(&request.state, &flow, store::now_unix()).await?;
        tracing::info!(user = %caller.user.user_id, purpose = purpose.as_str(), "sending the browser to Microsoft");
        Ok(request.url.to_string())
    }

    /// Microsoft's redirect back to `/oauth/office365/callback?<query>`.
    pub async fn complete_sign_in(&self, caller: Option<&Caller>, query: &str) -> Result<Landing> {
        let parsed = microsoft::parse_callback(query);
        let state = match &parsed {
            Ok(c) => Some(c.state.clone()),
            Err(e) => e.state.clone(),
        };
        let (flow, user) = self.take_flow(caller, state, |p| p != FlowPurpose::AdminConsent).await?;
        let code = match parsed {
            Ok(code) => code,
            Err(e) => {
                // The query's text is the sender's choice: logged escaped (`?`), so a newline cannot forge a log line.
                tracing::info!(reason = e.reason.as_str(), error = ?e.error, description = ?e.error_description, "Microsoft returned an error to the callback");
                if e.reason == ReasonCode::AdminApprovalRequired && flow.purpose != FlowPurpose::OrganizationConsent {
                    // The member cannot fix this; every admin gets the "Grant organization-wide consent" card.
                    self.store.request_admin_consent(user.org_id, &user.audit_label(), store::now_unix()).await?;
                }
                return Err(Error::Microsoft { reason: e.reason, code: e.error_codes.first().copied() });
            }
        };
        let settings = self.settings(user.org_id).await?;
        let app = self.sign_in_app(&settings, user.org_id, flow.purpose).await?;
        let (Some(verifier), Some(nonce)) = (flow.pkce_verifier, flow.nonce) else {
            return Err(Error::microsoft(ReasonCode::SignInNotVerified));
        };
        let sign_in = self.microsoft.exchange_code(&app, &code.code, &self.callback_uri(), &verifier, &nonce).await.map_err(|e| {
            tracing::warn!(reason = e.reason().as_str(), "code exchange refused");
            crate::tenant::token_refusal(&settings, e)
        })?;
        let service = flow.purpose == FlowPurpose::ServiceUser;
        if service && (!user.is_admin() || settings.mode != ConnectionMode::ServiceUser) {
            return Err(Error::Refused(Refusal::NotServiceUser));
        }
        self.settle_tenant(&user, &settings, flow.purpose, &sign_in.identity.tenant_id).await?;
        match flow.purpose {
            FlowPurpose::OrganizationConsent => return self.record_organization_consent(&user, &settings, &sign_in).await,
            FlowPurpose::Activate if settings.mode == ConnectionMode::ApplicationPermissions => {
                // The tenant is known now: on to the admin consent for the application permissions.
                let caller = Caller { session: flow.session, user };
                return self.start_admin_consent(&caller).await;
            }
            _ => {}
        }
        let connection = new_connection(&user, flow.purpose, &sign_in);
        let entry = connected_audit(&user, flow.purpose, &connection.ms_username);
        if service {
            self.replace_service_connection(&user, &connection, &entry).await?;
            // Which team mailboxes the service user may open, checked in the background; the
            // schedule follows when the checks end (with the directory ids they learned).
            self.check_all_mailboxes(user.org_id, &sign_in.tokens.access_token).await?;
        } else {
            self.store.save_connection(&connection, &entry).await?;
            self.reschedule(user.org_id).await;
        }
        tracing::info!(user = %user.user_id, primary = connection.is_primary, "connection saved");
        Ok(if connection.is_primary { "/settings/integrations/office365/my-connection" } else { "/profile" }.to_owned())
    }

    /// A flow of `purpose` for this caller's session, expiring in ten minutes.
    pub(crate) fn new_flow(&self, caller: &Caller, purpose: FlowPurpose) -> OAuthFlow {
        OAuthFlow {
            org_id: caller.user.org_id,
            user_id: caller.user.user_id,
            session: caller.session.clone(),
            purpose,
            pkce_verifier: None,
            nonce: None,
            expires_at: store::now_unix() + FLOW_TTL_SECS,
        }
    }

    /// Takes (and so deletes: a replayed callback finds nothing) the flow a callback's `state`
    /// names, if it is of a purpose this callback `accepts` (another flow's state is as unknown
    /// here as a made-up one), and returns it with the user of the session that started it.
    pub(crate) async fn take_flow(
        &self,
        caller: Option<&Caller>,
        state: Option<String>,
        accepts: impl Fn(FlowPurpose) -> bool,
    ) -> Result<(OAuthFlow, SessionUser)> {
        let state = state.ok_or(Error::microsoft(ReasonCode::SignInNotVerified))?;
        let flow = self
            .store
            .take_oauth_flow(&state, store::now_unix())
            .await?
            .filter(|f| accepts(f.purpose))
            .ok_or(Error::Refused(Refusal::Expired))?;
        match caller.filter(|c| c.session == flow.session) {
            Some(c) => Ok((flow, c.user.clone())),
            // Started in another browser or session: whoever holds this callback did not start it.
            None => Err(Error::Refused(Refusal::OtherSession)),
        }
    }
}

fn new_connection(user: &SessionUser, purpose: FlowPurpose, sign_in: &microsoft::SignIn) -> NewConnection {
    let identity = &sign_in.identity;
    let username = identity.username.clone().or(identity.email.clone()).unwrap_or_else(|| identity.object_id.clone());
    NewConnection {
        org_id: user.org_id,
        user_id: user.user_id,
        kind: if purpose == FlowPurpose::ServiceUser { ConnectionKind::ServiceUser } else { ConnectionKind::Individual },
        is_primary: matches!(purpose, FlowPurpose::Activate | FlowPurpose::ServiceUser),
        ms_tenant_id: identity.tenant_id.clone(),
        ms_object_id: identity.object_id.clone(),
        ms_name: identity.name.clone().unwrap_or_else(|| username.clone()),
        ms_username: username,
        granted_scopes: sign_in.tokens.granted_scopes.clone(),
        access_token: sign_in.tokens.access_token.clone(),
        access_expires_at: sign_in.tokens.expires_at.unix_timestamp(),
        refresh_token: sign_in.tokens.refresh_token.clone(),
    }
}

fn connected_audit(user: &SessionUser, purpose: FlowPurpose, username: &str) -> domain::AuditEntry {
    match purpose {
        FlowPurpose::ServiceUser => {
            audit(user, "office365.service_activated", format!("Activated the service connection as service user {username}."))
        }
        FlowPurpose::Activate => {
            audit(user, "office365.activated", format!("Activated My Connection as {username}; it is the primary integration."))
        }
        _ => audit(user, "office365.connected", format!("Connected Office 365 as {username}.")),
    }
}
