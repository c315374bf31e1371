//! Which app registration an organization signs in with, and the Microsoft 365 tenant it is pinned
//! to (PRODUCT.md, "The deployment's app registration and the organization's tenant").
//!
//! With the deployment's multi-tenant app an organization's tenant is unknown until its admin
//! activates: that sign-in goes through `organizations`, and the verified id_token's `tid` is pinned.
//! From then on members sign in through the pinned tenant (Microsoft itself refuses other
//! tenants' accounts there, and the id_token's `tid` is checked again), consent goes to it, and
//! tokens are requested from it. An organization's own single-tenant registration names its tenant;
//! the first verified sign-in pins it the same way.

use crate::{Error, Integration, Result, audit};
use domain::office365::Office365Settings;
use domain::{FlowPurpose, OrgId, ReasonCode, Refusal, SessionUser};

impl Integration {
    /// The organization's settings, with the deployment's client id filled in.
    pub(crate) async fn settings(&self, org: OrgId) -> Result<Office365Settings> {
        let mut settings = self.store.office365_settings(org).await?;
        settings.deployment_client_id = self.deployment_app().map(|a| a.client_id.clone());
        Ok(settings)
    }

    pub(crate) fn deployment_app(&self) -> Option<&sync::DeploymentApp> {
        self.scheduler.engine().config().deployment_app.as_ref()
    }

    /// The app registration a sign-in for `purpose` uses. An admin's activation with the
    /// deployment's app always goes through `organizations`, so a tenant can be learned (or, once
    /// nothing is connected, learned again); everyone else signs in through the pinned tenant.
    pub(crate) async fn sign_in_app(
        &self,
        settings: &Office365Settings,
        org: OrgId,
        purpose: FlowPurpose,
    ) -> Result<microsoft::AppRegistration> {
        let app = self.app_registration(org).await?;
        if settings.own_app {
            return Ok(app);
        }
        let learns_tenant = matches!(purpose, FlowPurpose::Activate | FlowPurpose::ServiceUser);
        match (&settings.pinned_tenant, learns_tenant) {
            (_, true) => Ok(microsoft::AppRegistration { tenant: microsoft::Tenant::Any(sync::ANY_ORGANIZATION.into()), ..app }),
            (Some(_), false) => Ok(app),
            (None, false) => Err(Error::Refused(Refusal::NotActivated)),
        }
    }

    /// Checks the tenant of a verified sign-in against the organization's pin, pinning it when
    /// there is none yet. An admin's activation may move the pin once nothing is connected; every
    /// other sign-in from another tenant is refused before anything is stored.
    pub(crate) async fn settle_tenant(
        &self,
        user: &SessionUser,
        settings: &Office365Settings,
        purpose: FlowPurpose,
        tenant_id: &str,
    ) -> Result<()> {
        let tenant_id = tenant_id.to_ascii_lowercase();
        let may_move = matches!(purpose, FlowPurpose::Activate | FlowPurpose::ServiceUser);
        let summary = match &settings.pinned_tenant {
            Some(pinned) if *pinned == tenant_id => return Ok(()),
            Some(pinned) if may_move && self.store.connections_in_org(user.org_id).await?.is_empty() => {
                format!("Moved the organization from Microsoft 365 tenant {pinned} to {tenant_id} on activation (nothing was connected).")
            }
            Some(_) => return Err(Error::microsoft(ReasonCode::WrongTenant)),
            None if !settings.own_app && !may_move => return Err(Error::Refused(Refusal::NotActivated)),
            None => format!("Pinned the organization to Microsoft 365 tenant {tenant_id}: every sign-in must come from it."),
        };
        let entry = audit(user, "office365.tenant_pinned", summary);
        // Only the deployment's app makes a pin exclusive: with its own registration an
        // organization already holds an app in that tenant and takes nobody's place.
        let exclusive = !settings.own_app && !self.shared_tenants;
        match self.store.pin_tenant(user.org_id, &tenant_id, exclusive, &entry).await {
            Ok(()) => Ok(()),
            Err(store::StoreError::Conflict(_)) => Err(Error::Refused(Refusal::TenantTaken)),
            Err(e) => Err(e.into()),
        }
    }
}

/// Microsoft's refusal of a token request. A refused credential of the deployment's app is the
/// operator's to fix: the organization's settings page holds no secret to replace.
pub(crate) fn token_refusal(settings: &Office365Settings, err: microsoft::MicrosoftError) -> Error {
    match Error::from(err) {
        Error::Microsoft { reason, code } if !settings.own_app => Error::Microsoft { reason: reason.with_deployment_app(), code },
        other => other,
    }
}
