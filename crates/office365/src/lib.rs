//! The Office 365 workflows: what happens when someone connects, consents, activates, saves the
//! settings, picks service account users, disconnects or looks at their synced data.
//!
//! Plain async functions (methods of [`Integration`]) over the store, the Microsoft client and the
//! sync scheduler; no Leptos, no axum. The server functions in `app` and the OAuth routes in
//! `server` are adapters: who is calling, call a workflow, map the result. Every workflow fails
//! with the one [`Error`], which decides the words, who must act and the HTTP status.

mod activity;
mod connect;
mod connections;
mod consent;
mod error;
mod notifications;
mod overview;
mod service;
mod service_accounts;
mod settings;
mod status;
mod tenant;
mod writes;

pub use connect::{Caller, Landing};
pub use error::{Error, Result};
pub use notifications::NotificationOutcome;
pub use service_accounts::NewServiceAccountUser;

use domain::SessionUser;
use std::sync::Arc;
use store::DynStore;

/// Everything the workflows act on. Cheap to clone; one per process.
#[derive(Clone)]
pub struct Integration {
    store: DynStore,
    microsoft: Arc<microsoft::MicrosoftClient>,
    scheduler: Arc<sync::Scheduler>,
    /// The address people use to reach the server, e.g. `http://127.0.0.1:3000`; OAuth redirect
    /// URIs are built from it.
    public_url: String,
    /// The operator lets several organizations pin the same Microsoft 365 tenant.
    shared_tenants: bool,
    /// Service account users whose mailbox check runs in the background in this process.
    checks: Arc<service::Checks>,
}

impl Integration {
    pub fn new(
        store: DynStore,
        microsoft: Arc<microsoft::MicrosoftClient>,
        scheduler: Arc<sync::Scheduler>,
        public_url: impl Into<String>,
    ) -> Integration {
        Integration { store, microsoft, scheduler, public_url: public_url.into(), shared_tenants: false, checks: Arc::default() }
    }

    /// Lets several organizations pin the same Microsoft 365 tenant (off by default: one tenant,
    /// one organization, so nobody can attach another organization's tenant).
    pub fn with_shared_tenants(mut self, allowed: bool) -> Integration {
        self.shared_tenants = allowed;
        self
    }

    pub fn store(&self) -> &DynStore {
        &self.store
    }

    /// The redirect URI registered for member and admin sign-ins with Microsoft.
    pub fn callback_uri(&self) -> String {
        format!("{}/oauth/office365/callback", self.public_url.trim_end_matches('/'))
    }

    /// The redirect URI registered for Microsoft's admin consent flow.
    pub fn admin_consent_uri(&self) -> String {
        format!("{}/oauth/office365/admin-consent", self.public_url.trim_end_matches('/'))
    }

    /// Deletes a connection (its tokens, mailboxes and synced items), after asking Microsoft to
    /// stop its change notifications (best effort: what Microsoft does not delete lapses).
    async fn delete_connection(&self, org: domain::OrgId, connection: uuid::Uuid, entry: &domain::AuditEntry) -> Result<bool> {
        let mode = self.store.office365_settings(org).await?.mode;
        if let Err(e) = self.scheduler.engine().retire_subscriptions(mode, org, connection).await {
            tracing::warn!(connection = %connection, error = %e, "could not retire change-notification subscriptions");
        }
        Ok(self.store.delete_connection(org, connection, entry).await?)
    }

    /// Tells the scheduler what changed in the organization. Keeping the schedule right is its job
    /// alone; a failure here is logged, and its own periodic pass heals it.
    async fn reschedule(&self, org: domain::OrgId) {
        if let Err(e) = self.scheduler.reconcile_org(org).await {
            tracing::warn!(org = %org, error = %e, "could not update the sync schedule; the scheduler's next pass will");
        }
    }
}

/// Admin-only workflows start with this (the adapters check too; this keeps a workflow safe when
/// called from anywhere else).
fn admin_only(user: &SessionUser) -> Result<()> {
    if user.is_admin() { Ok(()) } else { Err(Error::Forbidden) }
}

/// Today's date in UTC, `YYYY-MM-DD` (secret expiry is a date).
pub fn today() -> String {
    let d = time::OffsetDateTime::now_utc().date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn audit(actor: &SessionUser, action: &str, summary: String) -> domain::AuditEntry {
    domain::AuditEntry { at: store::now_unix(), actor: actor.audit_label(), action: action.into(), summary }
}
