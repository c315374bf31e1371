//! The fixture: tenants, users, app registrations, policy and per-mailbox content sizes.
//!
//! Everything a test or the demo needs to describe "who exists at Microsoft" lives here as plain serde
//! data (JSON on disk), so a test can load [`Fixture::demo`], tweak a public field (add a redirect URI on
//! its own port, switch a policy) and spawn. Mailbox *content* is not stored here: it is generated on
//! demand from `seed` and the counts (see `generate.rs`), which keeps 1,000 mailboxes × 10,000 messages
//! cheap.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// Client id of the Intelligence360 app registration in the demo fixture.
pub const DEMO_CLIENT_ID: &str = "11111111-2222-4333-8444-555555555555";
/// An Intelligence360 app registration of Fabrikam's own (single tenant), for the scenario where an
/// organization registers its own app in a tenant whose users may not consent. Same secrets.
pub const FABRIKAM_CLIENT_ID: &str = "33333333-4444-4555-8666-777777777777";
/// The valid demo client secret (expires 2027-12-31).
pub const DEMO_CLIENT_SECRET: &str = "demo-client-secret";
/// A secret of the demo app that has already expired (→ AADSTS7000222).
pub const DEMO_EXPIRED_SECRET: &str = "demo-expired-secret";
/// Password of every demo user.
pub const DEMO_PASSWORD: &str = "m365-demo";
/// Northwind Traders tenant id.
pub const NORTHWIND_TENANT_ID: &str = "4f1c6a0e-2d3b-4c5a-9e8f-0a1b2c3d4e5f";
/// Fabrikam tenant id (users may not consent).
pub const FABRIKAM_TENANT_ID: &str = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";

/// The whole emulated world.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Fixture {
    /// Seed of the deterministic content generator: same seed, same mailboxes.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Content sizes for every mailbox that does not set its own.
    #[serde(default)]
    pub content: ContentDefaults,
    pub tenants: Vec<TenantFixture>,
    pub apps: Vec<AppFixture>,
}

fn default_seed() -> u64 {
    360
}

/// Default mailbox sizes and the date generated content is spread around.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ContentDefaults {
    #[serde(default)]
    pub counts: MailboxCounts,
    /// `YYYY-MM-DD`; mail is received before it, events spread from 90 days before to 180 days after.
    #[serde(default = "default_anchor")]
    pub anchor_date: String,
}

fn default_anchor() -> String {
    "2026-11-02".to_string()
}

impl Default for ContentDefaults {
    fn default() -> Self {
        ContentDefaults { counts: MailboxCounts::default(), anchor_date: default_anchor() }
    }
}

/// How many generated items a mailbox holds.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct MailboxCounts {
    pub messages: u64,
    pub events: u64,
    pub contacts: u64,
    pub tasks: u64,
}

impl Default for MailboxCounts {
    fn default() -> Self {
        MailboxCounts { messages: 60, events: 25, contacts: 30, tasks: 20 }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TenantFixture {
    /// Tenant id (GUID), the `tid` claim.
    pub id: String,
    pub display_name: String,
    /// Verified domains; the first is the default one.
    pub domains: Vec<String>,
    /// Tenant policy: may ordinary users consent to apps (MICROSOFT.md §1.7)? Admins always may.
    #[serde(default = "yes")]
    pub users_may_consent: bool,
    pub users: Vec<UserFixture>,
    /// Consent an admin has already granted for the whole tenant.
    #[serde(default)]
    pub admin_grants: Vec<AdminGrantFixture>,
    /// Exchange application access policies (MICROSOFT.md §5) limiting app-only mailbox access.
    #[serde(default)]
    pub application_access_policies: Vec<AccessPolicyFixture>,
}

/// `New-ApplicationAccessPolicy -AppId … -PolicyScopeGroupId … -AccessRight RestrictAccess|DenyAccess`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AccessPolicyFixture {
    pub client_id: String,
    /// `RestrictAccess`: only `mailboxes` are reachable; `DenyAccess`: all but `mailboxes`.
    pub access_right: String,
    /// UPNs or ids (the members of the policy's scope group).
    pub mailboxes: Vec<String>,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct UserFixture {
    /// Object id (GUID): `oid` claim and Graph `user.id`.
    pub id: String,
    pub user_principal_name: String,
    pub display_name: String,
    #[serde(default)]
    pub given_name: Option<String>,
    #[serde(default)]
    pub surname: Option<String>,
    #[serde(default)]
    pub job_title: Option<String>,
    pub password: String,
    /// Has an Exchange Online mailbox; without one every mailbox call answers 404
    /// `MailboxNotEnabledForRESTAPI` (MICROSOFT.md §3.9).
    #[serde(default = "yes")]
    pub licensed: bool,
    /// Tenant administrator: may consent for the organization and use the admin consent endpoints.
    #[serde(default)]
    pub admin: bool,
    /// Sign-in needs a second factor (code `mfa_code`); refresh tokens obtained without it fail with
    /// AADSTS50076.
    #[serde(default)]
    pub mfa_required: bool,
    /// UPNs (or ids) of mailboxes this user holds delegate (Full Access) rights on; used with `.Shared`
    /// scopes.
    #[serde(default)]
    pub delegate_access: Vec<String>,
    /// Overrides the fixture's default content sizes for this mailbox.
    #[serde(default)]
    pub counts: Option<MailboxCounts>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AdminGrantFixture {
    pub client_id: String,
    /// Delegated Graph permissions consented tenant-wide (e.g. `Mail.Read`).
    #[serde(default)]
    pub delegated: Vec<String>,
    /// Application permissions (app roles), e.g. `Mail.Read`, `User.Read.All`.
    #[serde(default)]
    pub application: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AppFixture {
    pub client_id: String,
    pub display_name: String,
    /// Verified publisher; `None` shows "Unverified" on the consent page (MICROSOFT.md §1.9).
    #[serde(default)]
    pub publisher: Option<String>,
    /// Tenant the app is registered in.
    pub home_tenant: String,
    /// Usable from other tenants (after consent there).
    #[serde(default)]
    pub multi_tenant: bool,
    /// Exact-match redirect URIs (MICROSOFT.md §1.2).
    pub redirect_uris: Vec<String>,
    pub secrets: Vec<SecretFixture>,
    /// Statically configured delegated permissions (what `/.default` means for delegated flows).
    #[serde(default)]
    pub delegated_permissions: Vec<String>,
    /// Statically configured application permissions (granted by admin consent).
    #[serde(default)]
    pub application_permissions: Vec<String>,
    /// Certificate credentials for `private_key_jwt` client assertions (MICROSOFT.md §1.4).
    #[serde(default)]
    pub certificates: Vec<CertificateFixture>,
}

/// A certificate credential: the thumbprint clients put in the assertion header (`x5t#S256`, base64url
/// SHA-256 of the certificate, or legacy `x5t`, SHA-1) and the certificate's RSA public key.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CertificateFixture {
    pub thumbprint: String,
    /// SPKI PEM (`-----BEGIN PUBLIC KEY-----`).
    pub public_key_pem: String,
    /// RFC 3339; after it the credential is expired.
    pub expires: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SecretFixture {
    pub value: String,
    /// RFC 3339 instant after which the secret answers AADSTS7000222.
    pub expires: String,
}

/// Errors loading a fixture.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("reading fixture {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("parsing fixture {path}: {source}")]
    Parse { path: String, source: serde_json::Error },
}

impl Fixture {
    /// Reads a JSON fixture (the shipped `fixtures/demo.json` is `Fixture::demo()` serialized).
    pub fn from_path(path: impl AsRef<Path>) -> Result<Fixture, FixtureError> {
        let p = path.as_ref();
        let text = std::fs::read_to_string(p).map_err(|source| FixtureError::Read { path: p.display().to_string(), source })?;
        Fixture::from_json(&text).map_err(|source| FixtureError::Parse { path: p.display().to_string(), source })
    }

    pub fn from_json(text: &str) -> Result<Fixture, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The demo world: Northwind Traders (user consent allowed) and Fabrikam (admins only), and the
    /// Intelligence360 multi-tenant app registration.
    pub fn demo() -> Fixture {
        let user = |id: &str, upn: &str, name: &str, job: &str| UserFixture {
            id: id.to_string(),
            user_principal_name: upn.to_string(),
            display_name: name.to_string(),
            given_name: name.split(' ').next().map(str::to_string),
            surname: name.split(' ').nth(1).map(str::to_string),
            job_title: Some(job.to_string()),
            password: DEMO_PASSWORD.to_string(),
            licensed: true,
            admin: false,
            mfa_required: false,
            delegate_access: Vec::new(),
            counts: None,
        };
        let mut nw_admin = user("6e1f0a00-0000-4000-8000-000000000001", "admin@northwind.test", "Adele Admin", "IT Administrator");
        nw_admin.admin = true;
        let mut service = user("6e1f0a00-0000-4000-8000-000000000005", "service@northwind.test", "Sam Service", "Service Account");
        service.delegate_access = vec!["alice@northwind.test".into(), "bob@northwind.test".into()];
        let mut dave = user("6e1f0a00-0000-4000-8000-000000000006", "dave@northwind.test", "Dave Diaz", "Contractor");
        dave.licensed = false;
        let mut mfa = user("6e1f0a00-0000-4000-8000-000000000007", "mfa@northwind.test", "Morgan Factor", "Finance Lead");
        mfa.mfa_required = true;
        let northwind = TenantFixture {
            id: NORTHWIND_TENANT_ID.to_string(),
            display_name: "Northwind Traders".to_string(),
            domains: vec!["northwind.test".to_string()],
            users_may_consent: true,
            users: vec![
                nw_admin,
                user("6e1f0a00-0000-4000-8000-000000000002", "alice@northwind.test", "Alice Anders", "Account Manager"),
                user("6e1f0a00-0000-4000-8000-000000000003", "bob@northwind.test", "Bob Burke", "Sales Engineer"),
                user("6e1f0a00-0000-4000-8000-000000000004", "carol@northwind.test", "Carol Chen", "Head of Marketing"),
                service,
                dave,
                mfa,
            ],
            admin_grants: Vec::new(),
            application_access_policies: Vec::new(),
        };
        let mut fb_admin = user("6e2f0a00-0000-4000-8000-000000000001", "admin@fabrikam.test", "Fiona Admin", "IT Administrator");
        fb_admin.admin = true;
        let fabrikam = TenantFixture {
            id: FABRIKAM_TENANT_ID.to_string(),
            display_name: "Fabrikam".to_string(),
            domains: vec!["fabrikam.test".to_string()],
            users_may_consent: false,
            users: vec![
                fb_admin,
                user("6e2f0a00-0000-4000-8000-000000000002", "erin@fabrikam.test", "Erin Evans", "Buyer"),
                user("6e2f0a00-0000-4000-8000-000000000003", "frank@fabrikam.test", "Frank Fischer", "Logistics"),
            ],
            admin_grants: Vec::new(),
            application_access_policies: Vec::new(),
        };
        let app = AppFixture {
            client_id: DEMO_CLIENT_ID.to_string(),
            display_name: "Intelligence360".to_string(),
            publisher: None,
            home_tenant: NORTHWIND_TENANT_ID.to_string(),
            multi_tenant: true,
            redirect_uris: vec![
                "http://127.0.0.1:3000/oauth/office365/callback".to_string(),
                "http://127.0.0.1:3000/oauth/office365/admin-consent".to_string(),
            ],
            secrets: vec![
                SecretFixture { value: DEMO_CLIENT_SECRET.to_string(), expires: "2027-12-31T23:59:59Z".to_string() },
                SecretFixture { value: DEMO_EXPIRED_SECRET.to_string(), expires: "2024-12-31T23:59:59Z".to_string() },
            ],
            delegated_permissions: [
                "openid",
                "profile",
                "email",
                "offline_access",
                "User.Read",
                "Mail.Read",
                "Mail.Read.Shared",
                "Mail.ReadWrite.Shared",
                "Mail.Send.Shared",
                "Calendars.Read.Shared",
                "Calendars.ReadWrite",
                "Calendars.ReadWrite.Shared",
                "Contacts.Read",
                "Contacts.ReadWrite",
                "Tasks.Read",
                "Tasks.ReadWrite",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            application_permissions: [
                "Mail.Read",
                "Mail.ReadWrite",
                "Mail.Send",
                "Calendars.Read",
                "Calendars.ReadWrite",
                "Contacts.Read",
                "Tasks.Read.All",
                "Tasks.ReadWrite.All",
                "User.Read.All",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            certificates: Vec::new(),
        };
        let fabrikam_app = AppFixture {
            client_id: FABRIKAM_CLIENT_ID.to_string(),
            display_name: "Intelligence360 (Fabrikam)".to_string(),
            home_tenant: FABRIKAM_TENANT_ID.to_string(),
            multi_tenant: false,
            redirect_uris: app.redirect_uris.clone(),
            ..app.clone()
        };
        Fixture {
            seed: default_seed(),
            content: ContentDefaults::default(),
            tenants: vec![northwind, fabrikam],
            apps: vec![app, fabrikam_app],
        }
    }

    /// Adds a redirect URI to every app registration (tests serving callbacks on their own port).
    pub fn add_redirect_uri(&mut self, uri: &str) {
        for app in &mut self.apps {
            if !app.redirect_uris.iter().any(|u| u == uri) {
                app.redirect_uris.push(uri.to_string());
            }
        }
    }

    /// Sets the content sizes of every mailbox (benchmarks, scale tests).
    pub fn set_all_counts(&mut self, counts: MailboxCounts) {
        self.content.counts = counts;
        for t in &mut self.tenants {
            for u in &mut t.users {
                u.counts = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_demo_json_equals_fixture_demo() {
        let shipped = include_str!("../fixtures/demo.json");
        let parsed = Fixture::from_json(shipped).unwrap();
        assert_eq!(
            parsed,
            Fixture::demo(),
            "fixtures/demo.json drifted from Fixture::demo(); regenerate with `m365-emulator --print-demo-fixture`"
        );
    }
}
