//! Organization-wide admin consent: the admin is sent to Microsoft's admin consent endpoint for
//! the configured tenant and app registration; the callback checks `state`, session, Microsoft's
//! error parameters and the tenant, then records the grant. In service-account mode with
//! application permissions the consent is the activation.

use crate::connect::{Caller, Landing};
use crate::{Error, Integration, Result, admin_only, audit};
use domain::permissions::ConnectionMode;
use domain::views::AdminConsentView;
use domain::{FlowPurpose, ReasonCode, Refusal, SessionUser};
use store::SessionToken;

impl Integration {
    /// Where admin consent stands, for the Admin consent tab.
    pub async fn admin_consent_view(&self, admin: &SessionUser) -> Result<AdminConsentView> {
        admin_only(admin)?;
        let settings = self.store.office365_settings(admin.org_id).await?;
        let consent = self.store.admin_consent(admin.org_id).await?;
        Ok(AdminConsentView {
            enabled: settings.enabled,
            tenant: settings.tenant.clone(),
            client_id: settings.client_id.clone(),
            status: consent.status(&settings),
            grant_is_for_another_app: consent.granted.is_some() && consent.grant_for(&settings).is_none(),
            consent,
        })
    }

    /// Sends the admin to Microsoft's admin consent endpoint with a fresh single-use `state`.
    pub async fn start_admin_consent(&self, caller: &Caller) -> Result<Landing> {
        admin_only(&caller.user).map_err(|_| Error::Refused(Refusal::AdminsOnly))?;
        let settings = self.store.office365_settings(caller.user.org_id).await?;
        if !settings.enabled {
            return Err(Error::Refused(Refusal::NotEnabled));
        }
        let tenant = microsoft::Tenant::parse(&settings.tenant).map_err(|_| Error::microsoft(ReasonCode::AppNotFound))?;
        // 256 random bits, like a session token; only its hash is stored.
        let state = SessionToken::generate().as_cookie_value().to_owned();
        let url =
            self.microsoft.admin_consent_url(&tenant, &settings.client_id, &self.admin_consent_uri(), &state).map_err(Error::internal)?;
        let flow = self.new_flow(caller, FlowPurpose::AdminConsent);
        self.store.start_oauth_flow(&state, &flow, store::now_unix()).await?;
        tracing::info!(user = %caller.user.user_id, "sending the browser to Microsoft's admin consent");
        Ok(url.to_string())
    }

    /// Microsoft's redirect back to `/oauth/office365/admin-consent?<query>`.
    pub async fn complete_admin_consent(&self, caller: Option<&Caller>, query: &str) -> Result<Landing> {
        let parsed = microsoft::parse_admin_consent_callback(query);
        let state = match &parsed {
            Ok(g) => Some(g.state.clone()),
            Err(e) => e.state.clone(),
        };
        let (_, admin) = self.take_flow(caller, state, |p| p == FlowPurpose::AdminConsent).await?;
        admin_only(&admin).map_err(|_| Error::Refused(Refusal::AdminsOnly))?;
        let granted = parsed.map_err(|e| {
            tracing::info!(reason = e.reason.as_str(), error = %e.error, "Microsoft refused the admin consent");
            Error::Microsoft { reason: e.reason, code: e.error_codes.first().copied() }
        })?;
        let settings = self.store.office365_settings(admin.org_id).await?;
        let tenant_id = self.consented_tenant(&settings.tenant, granted.tenant.as_deref()).await?;
        let grant = domain::ConsentGrant {
            by: admin.audit_label(),
            at: store::now_unix(),
            tenant_id: tenant_id.clone(),
            client_id: settings.client_id.clone(),
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
        // Service-account mode with application permissions: the consent is the activation.
        self.activate_application(&admin, &settings, &tenant_id, grant.scopes).await?;
        let token = self.service_token(admin.org_id, &settings).await?;
        self.check_all_mailboxes(admin.org_id, &token).await?;
        self.reschedule(admin.org_id).await;
        Ok("/settings/integrations/office365/my-connection".to_owned())
    }

    /// The tenant id the consent was given in. The tenant Microsoft names must be the configured
    /// one (it is never trusted for more).
    async fn consented_tenant(&self, configured: &str, returned: Option<&str>) -> Result<String> {
        let tenant = microsoft::Tenant::parse(configured).map_err(|_| Error::microsoft(ReasonCode::AppNotFound))?;
        let expected = self.microsoft.resolve_tenant_id(&tenant).await?;
        match (expected, returned.map(str::to_ascii_lowercase)) {
            (Some(expected), Some(returned)) if expected != returned => Err(Error::microsoft(ReasonCode::WrongTenant)),
            (Some(expected), _) => Ok(expected),
            (None, Some(returned)) => Ok(returned),
            (None, None) => Err(Error::microsoft(ReasonCode::SignInNotVerified)),
        }
    }
}
