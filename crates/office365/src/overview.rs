//! The integration at a glance: the Actions feed's cards, the All Integrations list and the audit
//! log.

use crate::{Integration, Result, admin_only, today};
use domain::office365::SecretExpiry;
use domain::views::IntegrationRow;
use domain::{ActionCard, AuditEntry, ConnectionKind, ConnectionState, IntegrationKind, SessionUser};

/// How many audit entries the audit page shows.
const AUDIT_PAGE: u32 = 200;

impl Integration {
    /// The cards asking `user` to do something.
    pub async fn action_cards(&self, user: &SessionUser) -> Result<Vec<ActionCard>> {
        let own = self.store.connection_of(user.org_id, user.user_id, ConnectionKind::Individual).await?;
        let facts = domain::FeedFacts {
            role: user.role,
            office365: self.settings(user.org_id).await?,
            own_connection: own.map(|c| domain::OwnConnection { state: c.state, reason: c.reason }),
            admin_consent: self.store.admin_consent(user.org_id).await?,
            today: today(),
        };
        Ok(domain::actions::cards_for(&facts))
    }

    /// Every integration and the state it is in; whatever only an admin can fix makes it "Needs
    /// attention".
    pub async fn integrations(&self, admin: &SessionUser) -> Result<Vec<IntegrationRow>> {
        admin_only(admin)?;
        let office365 = self.settings(admin.org_id).await?;
        let consent = self.store.admin_consent(admin.org_id).await?;
        let connections = self.store.connections_in_org(admin.org_id).await?;
        let admin_must_act = matches!(office365.secret_expiry(&today()), Some(SecretExpiry::Expired { .. }))
            || consent.admin_action_needed(&office365)
            || connections.iter().any(|c| {
                c.state == ConnectionState::NeedsAttention && (c.kind.is_service() || c.reason.is_some_and(|r| r.is_tenant_wide()))
            });
        Ok(IntegrationKind::ALL
            .into_iter()
            .map(|kind| IntegrationRow {
                kind,
                status: match kind {
                    IntegrationKind::Office365 => office365.status_with(admin_must_act),
                },
            })
            .collect())
    }

    pub async fn audit_log(&self, admin: &SessionUser) -> Result<Vec<AuditEntry>> {
        admin_only(admin)?;
        Ok(self.store.audit_log(admin.org_id, AUDIT_PAGE).await?)
    }
}
