//! Organization-wide admin consent: the admin is sent to Microsoft's admin consent endpoint for
//! the configured tenant and app registration; the callback checks `state`, session, Microsoft's
//! error parameters and the tenant, then records the grant. In service-account mode with
//! application permissions the consent is the activation.

use crate::connect::{Caller, Landing};
use crate::{Error, Integration, Result, admin_only, audit};
use domain::office365::Office365Settings;
use domain::permissions::ConnectionMode;
use domain::views::AdminConsentView;
use domain::{FlowPurpose, ReasonCode, Refusal, SessionUser};
use store::SessionToken;

impl Integration {
    /// Where admin consent stands, for the Admin consent tab.
    pub async fn admin_consent_view(&self, admin: &SessionUser) -> Result<AdminConsentView> {
        admin_only(admin)?;
        let settings = self.settings(admin.org_id).await?;
        let consent = self.store.admin_consent(admin.org_id).await?;
        Ok(AdminConsentView {
            enabled: settings.enabled,
            tenant: settings.pinned_tenant.clone().unwrap_or_else(|| settings.tenant.clone()),
            client_id: settings.app_client_id().unwrap_or_default().to_owned(),
            status: consent.status(&settings),
            grant_is_for_another_app: consent.granted.is_some() && consent.grant_for(&settings).is_none(),
            application: settings.mode == ConnectionMode::ApplicationPermissions,
            requested: settings.scope_settings().requested().iter().map(|p| p.graph_name.to_owned()).collect(),
            missing: consent.missing(&settings).iter().map(|p| p.graph_name.to_owned()).collect(),
            excess: consent.excess(&settings),
            forward_link: self.forward_link(&settings),
            consent,
        })
    }

    /// Starts organization-wide consent for exactly what the settings need. Delegated modes: the
    /// admin signs in with those permissions and Microsoft's consent page offers "Consent on behalf
    /// of your organization" (dynamic consent is delegated-only, so this is how a grant stays
    /// least-privilege). Application permissions: Microsoft's admin consent endpoint, for the
    /// pinned tenant (with the deployment's app an unpinned organization first signs the admin in
    /// to learn it).
    pub async fn start_admin_consent(&self, caller: &Caller) -> Result<Landing> {
        admin_only(&caller.user).map_err(|_| Error::Refused(Refusal::AdminsOnly))?;
        let settings = self.settings(caller.user.org_id).await?;
        if !settings.enabled {
            return Err(Error::Refused(Refusal::NotEnabled));
        }
        if settings.mode != ConnectionMode::ApplicationPermissions {
            let scope = settings.scope_settings().authorization_scope();
            let hint = Some(caller.user.email.as_str());
            return self
                .send_to_sign_in(caller, &settings, FlowPurpose::OrganizationConsent, &scope, hint, Some(microsoft::Prompt::Consent))
                .await;
        }
        let tenant = match (&settings.pinned_tenant, settings.own_app) {
            (Some(pinned), _) => microsoft::Tenant::Id(pinned.clone()),
            (None, true) => microsoft::Tenant::parse(&settings.tenant).map_err(|_| Error::microsoft(ReasonCode::AppNotFound))?,
            (None, false) => return self.start_sign_in(caller, FlowPurpose::Activate.as_str()).await,
        };
        let client_id = settings.app_client_id().ok_or(Error::microsoft(ReasonCode::AppNotFound))?;
        // 256 random bits, like a session token; only its hash is stored.
        let state = SessionToken::generate().as_cookie_value().to_owned();
        let url = self.microsoft.admin_consent_url(&tenant, client_id, &self.admin_consent_uri(), &state).map_err(Error::internal)?;
        let flow = self.new_flow(caller, FlowPurpose::AdminConsent);
        self.store.start_oauth_flow(&state, &flow, store::now_unix()).await?;
        tracing::info!(user = %caller.user.user_id, "sending the browser to Microsoft's admin consent");
        Ok(url.to_string())
    }

    /// The admin came back from signing in with the organization's delegated permissions: what
    /// Microsoft granted is the organization's grant on record (Microsoft does not tell an app
    /// whether "on behalf of your organization" was ticked; a member refused later asks again).
    pub(crate) async fn record_organization_consent(
        &self,
        admin: &SessionUser,
        settings: &Office365Settings,
        sign_in: &microsoft::SignIn,
    ) -> Result<Landing> {
        admin_only(admin).map_err(|_| Error::Refused(Refusal::AdminsOnly))?;
        let grant = domain::ConsentGrant {
            by: admin.audit_label(),
            at: store::now_unix(),
            tenant_id: sign_in.identity.tenant_id.clone(),
            client_id: settings.app_client_id().unwrap_or_default().to_owned(),
            scopes: sign_in.tokens.granted_scopes.clone(),
        };
        let names: Vec<&str> = settings.scope_settings().requested().iter().map(|p| p.graph_name).collect();
        let entry = audit(
            admin,
            "office365.admin_consent_granted",
            format!("Consented on behalf of the organization in Microsoft 365 tenant {} to: {}.", grant.tenant_id, names.join(", ")),
        );
        self.store.record_admin_consent(admin.org_id, &grant, &entry).await?;
        Ok("/settings/integrations/office365/admin-consent".to_owned())
    }

    /// Microsoft's redirect back to `/oauth/office365/admin-consent?<query>`.
    pub async fn complete_admin_consent(&self, caller: Option<&Caller>, query: &str) -> Result<Landing> {
        let parsed = microsoft::parse_admin_consent_callback(query);
        let state = match &parsed {
            Ok(g) => Some(g.state.clone()),
            Err(e) => e.state.clone(),
        };
        if state.as_deref() == Some(microsoft::FORWARDED_CONSENT_STATE) {
            // An administrator opened a forwarded link: good news, but no session of ours asked
            // for it, so nothing is recorded (Microsoft's `tenant` is never trusted).
            parsed.map_err(|e| Error::Microsoft { reason: e.reason, code: e.error_codes.first().copied() })?;
            return Ok("/connect/result?consent=forwarded".to_owned());
        }
        let (_, admin) = self.take_flow(caller, state, |p| p == FlowPurpose::AdminConsent).await?;
        admin_only(&admin).map_err(|_| Error::Refused(Refusal::AdminsOnly))?;
        let granted = parsed.map_err(|e| {
            // Escaped (`?`): the query's text is the sender's choice.
            tracing::info!(reason = e.reason.as_str(), error = ?e.error, description = ?e.error_description, "Microsoft refused the admin consent");
            Error::Microsoft { reason: e.reason, code: e.error_codes.first().copied() }
        })?;
        let settings = self.settings(admin.org_id).await?;
        let tenant_id = self.consented_tenant(&settings, granted.tenant.as_deref()).await?;
        let grant = domain::ConsentGrant {
            by: admin.audit_label(),
            at: store::now_unix(),
            tenant_id: tenant_id.clone(),
            client_id: settings.app_client_id().unwrap_or_default().to_owned(),
            scopes: granted.scopes,
        };
        let entry = audit(
            &admin,
            "office365.admin_consent_granted",
            format!("Granted organization-wide consent in Microsoft 365 tenant {tenant_id}."),
        );
        self.store.record_admin_consent(admin.org_id, &grant, &entry).await?;
        tracing::info!(user = %admin.user_id, "admin consent recorded");
        if settings.mode != ConnectionMode::ApplicationPermissions {
            return Ok("/settings/integrations/office365/admin-consent".to_owned());
        }
        // Service-account mode with application permissions: the consent is the activation. The
        // mailboxes are checked in the background (and then scheduled): the admin is redirected at
        // once, and the Service account users page shows the results as they arrive.
        self.activate_application(&admin, &settings, &tenant_id, grant.scopes).await?;
        let token = self.service_token(admin.org_id, &settings).await?;
        self.check_all_mailboxes(admin.org_id, &token).await?;
        Ok("/settings/integrations/office365/my-connection".to_owned())
    }

    /// The admin consent link an admin who cannot consent forwards to one who can: for the pinned
    /// (or configured) tenant and exactly what the settings need.
    fn forward_link(&self, settings: &Office365Settings) -> Option<String> {
        let tenant = match &settings.pinned_tenant {
            Some(pinned) => microsoft::Tenant::Id(pinned.clone()),
            None if settings.own_app => microsoft::Tenant::parse(&settings.tenant).ok()?,
            None => return None,
        };
        let scope = settings.scope_settings().authorization_scope();
        let url = self.microsoft.forwardable_admin_consent_url(&tenant, settings.app_client_id()?, &self.admin_consent_uri(), &scope);
        url.ok().map(|u| u.to_string())
    }

    /// Application permissions granted by an administrator through a forwarded link: a
    /// client-credentials token that can read the directory proves it, then the service
    /// connection is created as after the admin consent flow.
    pub async fn check_application_consent(&self, admin: &SessionUser) -> Result<()> {
        admin_only(admin)?;
        let settings = self.settings(admin.org_id).await?;
        let tenant_id = settings.pinned_tenant.clone().ok_or(Error::Refused(Refusal::NotActivated))?;
        if !settings.enabled || settings.mode != ConnectionMode::ApplicationPermissions {
            return Err(Error::Refused(Refusal::NotEnabled));
        }
        let app = self.app_registration(admin.org_id).await?;
        let token = self.microsoft.client_credentials(&app).await.map_err(|e| crate::tenant::token_refusal(&settings, e))?;
        // Without the grant the token carries no roles and Graph answers 403.
        self.microsoft.search_users(&token.access_token, "", 1).await?;
        let grant = domain::ConsentGrant {
            by: "A Microsoft 365 administrator (forwarded link)".into(),
            at: store::now_unix(),
            tenant_id: tenant_id.clone(),
            client_id: settings.app_client_id().unwrap_or_default().to_owned(),
            scopes: Vec::new(),
        };
        let entry = audit(
            admin,
            "office365.admin_consent_granted",
            format!("Confirmed organization-wide consent in Microsoft 365 tenant {tenant_id}."),
        );
        self.store.record_admin_consent(admin.org_id, &grant, &entry).await?;
        self.activate_application(admin, &settings, &tenant_id, Vec::new()).await?;
        let token = self.service_token(admin.org_id, &settings).await?;
        // Checked in the background, then scheduled.
        self.check_all_mailboxes(admin.org_id, &token).await?;
        Ok(())
    }

    /// The tenant id the consent was given in. The tenant Microsoft names must be the pinned (or
    /// configured) one; it is never trusted for more.
    async fn consented_tenant(&self, settings: &Office365Settings, returned: Option<&str>) -> Result<String> {
        let expected = match &settings.pinned_tenant {
            Some(pinned) => Some(pinned.clone()),
            None => {
                let tenant = microsoft::Tenant::parse(&settings.tenant).map_err(|_| Error::microsoft(ReasonCode::AppNotFound))?;
                self.microsoft.resolve_tenant_id(&tenant).await?
            }
        };
        match (expected, returned.map(str::to_ascii_lowercase)) {
            (Some(expected), Some(returned)) if expected != returned => Err(Error::microsoft(ReasonCode::WrongTenant)),
            (Some(expected), _) => Ok(expected),
            (None, Some(returned)) => Ok(returned),
            (None, None) => Err(Error::microsoft(ReasonCode::SignInNotVerified)),
        }
    }
}
