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
/// The deployment's own multi-tenant app registration: what the operator of an Intelligence360
/// server registers once, in the operator's own tenant, for every customer organization. `make run`
/// configures it, so the help article's admin types no app registration.
pub const DEPLOYMENT_CLIENT_ID: &str = "22222222-3333-4444-8555-666666666666";
/// Its client secret (a certificate can be added to it in tests).
pub const DEPLOYMENT_CLIENT_SECRET: &str = "deployment-client-secret";
/// The operator's own tenant, where the deployment's app registration lives (no mailboxes).
pub const OPERATOR_TENANT_ID: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
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
/// The tenant every personal Microsoft account (Outlook.com, Hotmail, Live) signs in under: its `tid`.
pub const PERSONAL_ACCOUNTS_TENANT_ID: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

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

/// A demo account: password `DEMO_PASSWORD`, licensed, no special rights.
fn demo_user(id: &str, upn: &str, name: &str, job: &str) -> UserFixture {
    UserFixture {
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
        send_on_behalf: Vec::new(),
        counts: None,
        home_tenant: None,
    }
}

fn tenant(id: &str, name: &str, domain: &str, users_may_consent: bool, users: Vec<UserFixture>) -> TenantFixture {
    TenantFixture {
        id: id.to_string(),
        display_name: name.to_string(),
        domains: vec![domain.to_string()],
        users_may_consent,
        users,
        admin_grants: Vec::new(),
        application_access_policies: Vec::new(),
    }
}

/// Northwind: an admin, three ordinary users, a service account with delegate rights on alice's and
/// bob's mailboxes (Full Access there, and Send on Behalf granted by both), an unlicensed contractor and an MFA user.
fn northwind_users() -> Vec<UserFixture> {
    let id = |n: u32| format!("6e1f0a00-0000-4000-8000-{n:012}");
    let mut nw_admin = demo_user(&id(1), "admin@northwind.test", "Adele Admin", "IT Administrator");
    nw_admin.admin = true;
    let mut service = demo_user(&id(5), "service@northwind.test", "Sam Service", "Service Account");
    service.delegate_access = vec!["alice@northwind.test".into(), "bob@northwind.test".into()];
    let mut dave = demo_user(&id(6), "dave@northwind.test", "Dave Diaz", "Contractor");
    dave.licensed = false;
    let mut mfa = demo_user(&id(7), "mfa@northwind.test", "Morgan Factor", "Finance Lead");
    mfa.mfa_required = true;
    // The service account may send on behalf of the mailboxes it holds.
    let mut alice = demo_user(&id(2), "alice@northwind.test", "Alice Anders", "Account Manager");
    alice.send_on_behalf = vec!["service@northwind.test".into()];
    let mut bob = demo_user(&id(3), "bob@northwind.test", "Bob Burke", "Sales Engineer");
    bob.send_on_behalf = vec!["service@northwind.test".into()];
    vec![nw_admin, alice, bob, demo_user(&id(4), "carol@northwind.test", "Carol Chen", "Head of Marketing"), service, dave, mfa]
}

fn fabrikam_users() -> Vec<UserFixture> {
    let id = |n: u32| format!("6e2f0a00-0000-4000-8000-{n:012}");
    let mut fb_admin = demo_user(&id(1), "admin@fabrikam.test", "Fiona Admin", "IT Administrator");
    fb_admin.admin = true;
    vec![
        fb_admin,
        demo_user(&id(2), "erin@fabrikam.test", "Erin Evans", "Buyer"),
        demo_user(&id(3), "frank@fabrikam.test", "Frank Fischer", "Logistics"),
    ]
}

/// The Intelligence360 registration: multi-tenant, home Northwind, a current and an expired secret.
fn demo_app() -> AppFixture {
    let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    AppFixture {
        client_id: DEMO_CLIENT_ID.to_string(),
        display_name: "Intelligence360".to_string(),
        publisher: None,
        home_tenant: NORTHWIND_TENANT_ID.to_string(),
        multi_tenant: true,
        redirect_uris: names(&["http://127.0.0.1:3000/oauth/office365/callback", "http://127.0.0.1:3000/oauth/office365/admin-consent"]),
        secrets: vec![
            SecretFixture { value: DEMO_CLIENT_SECRET.to_string(), expires: "2027-12-31T23:59:59Z".to_string() },
            SecretFixture { value: DEMO_EXPIRED_SECRET.to_string(), expires: "2024-12-31T23:59:59Z".to_string() },
        ],
        delegated_permissions: names(&[
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
        ]),
        application_permissions: names(&[
            "Mail.Read",
            "Mail.ReadWrite",
            "Mail.Send",
            "Calendars.Read",
            "Calendars.ReadWrite",
            "Contacts.Read",
            "Tasks.Read.All",
            "Tasks.ReadWrite.All",
            "User.Read.All",
        ]),
        certificates: Vec::new(),
    }
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
    /// UPNs (or ids) of users granted *Send on Behalf* of this mailbox (Exchange's
    /// `GrantSendOnBehalfTo`): with `Mail.Send.Shared` they may send mail from it (`from` = this
    /// mailbox, or a draft in it sent through `/users/{this}/…`); anyone else gets 403
    /// `ErrorSendAsDenied` (MICROSOFT.md §3.7).
    #[serde(default)]
    pub send_on_behalf: Vec<String>,
    /// Overrides the fixture's default content sizes for this mailbox.
    #[serde(default)]
    pub counts: Option<MailboxCounts>,
    /// A guest (B2B) account: the id of the tenant the account really belongs to. Its tokens carry
    /// this directory's `tid` and name the home tenant in `idp` (`https://sts.windows.net/{home}/`),
    /// with `acct` 1, as Entra's do.
    #[serde(default)]
    pub home_tenant: Option<String>,
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

    /// The demo world: Northwind Traders (user consent allowed) and Fabrikam (admins only), their
    /// own Intelligence360 app registrations, and the deployment's multi-tenant one, registered in
    /// the operator's tenant.
    pub fn demo() -> Fixture {
        let app = demo_app();
        let deployment_app = AppFixture {
            client_id: DEPLOYMENT_CLIENT_ID.to_string(),
            display_name: "Intelligence360".to_string(),
            publisher: Some("Intelligence360".to_string()),
            home_tenant: OPERATOR_TENANT_ID.to_string(),
            multi_tenant: true,
            secrets: vec![SecretFixture { value: DEPLOYMENT_CLIENT_SECRET.to_string(), expires: "2028-06-30T23:59:59Z".to_string() }],
            ..app.clone()
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
            tenants: vec![
                tenant(NORTHWIND_TENANT_ID, "Northwind Traders", "northwind.test", true, northwind_users()),
                tenant(FABRIKAM_TENANT_ID, "Fabrikam", "fabrikam.test", false, fabrikam_users()),
                tenant(OPERATOR_TENANT_ID, "Intelligence360 (operator)", "intelligence360.test", true, Vec::new()),
            ],
            apps: vec![app, fabrikam_app, deployment_app],
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

    /// Invites `member` (a UPN of another tenant of the fixture) into `tenant` as a guest: a new user
    /// `{local}_{domain}#EXT#@{tenant's domain}` without a mailbox there, whose tokens name the home
    /// tenant. Returns the guest's UPN (what the guest types on the sign-in page).
    pub fn add_guest(&mut self, tenant: &str, member: &str) -> Option<String> {
        let (home, user) = self
            .tenants
            .iter()
            .find_map(|t| t.users.iter().find(|u| u.user_principal_name.eq_ignore_ascii_case(member)).map(|u| (t.id.clone(), u.clone())))?;
        let host = self
            .tenants
            .iter_mut()
            .find(|t| t.id.eq_ignore_ascii_case(tenant) || t.domains.iter().any(|d| d.eq_ignore_ascii_case(tenant)))?;
        let upn = format!("{}#EXT#@{}", member.replace('@', "_"), host.domains.first()?);
        let n = host.users.len();
        host.users.push(UserFixture {
            id: format!("6e9f0a00-0000-4000-8000-{n:012}"),
            user_principal_name: upn.clone(),
            licensed: false,
            admin: false,
            delegate_access: Vec::new(),
            home_tenant: Some(home),
            ..user
        });
        Some(upn)
    }

    /// Adds a personal Microsoft account (`jo@outlook.test`): a user of the consumer tenant
    /// (`PERSONAL_ACCOUNTS_TENANT_ID`, created on first use), who can sign in through `common` and
    /// whose tokens carry that tenant's id, as a real Outlook.com account's do.
    pub fn add_personal_account(&mut self, email: &str, display_name: &str) {
        let domain = email.rsplit_once('@').map(|(_, d)| d.to_string()).unwrap_or_default();
        if !self.tenants.iter().any(|t| t.id == PERSONAL_ACCOUNTS_TENANT_ID) {
            self.tenants.push(tenant(PERSONAL_ACCOUNTS_TENANT_ID, "Microsoft accounts", &domain, true, Vec::new()));
        }
        let Some(t) = self.tenants.iter_mut().find(|t| t.id == PERSONAL_ACCOUNTS_TENANT_ID) else { return };
        if !t.domains.contains(&domain) {
            t.domains.push(domain);
        }
        let n = t.users.len() + 1;
        let id = format!("00000000-0000-0000-{n:04x}-{n:012x}");
        t.users.push(UserFixture { licensed: false, job_title: None, ..demo_user(&id, email, display_name, "") });
    }

    /// [`Fixture::demo`] with its content dated today ([`Fixture::date_content_today`]): what a
    /// product that syncs only the last N days needs. `demo()` keeps its fixed date, so it equals
    /// `fixtures/demo.json` and generates the same content every day.
    pub fn demo_today() -> Fixture {
        let mut fixture = Fixture::demo();
        fixture.date_content_today();
        fixture
    }

    /// Dates the generated content around today (mail received up to today, events around it), so
    /// a product that syncs only the last N days finds the demo's mail whatever day it runs.
    pub fn date_content_today(&mut self) {
        let today = time::OffsetDateTime::now_utc().date();
        self.content.anchor_date = format!("{:04}-{:02}-{:02}", today.year(), u8::from(today.month()), today.day());
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

    /// What the benchmarks sync: the demo world dated today, every mailbox with `messages`
    /// messages (and 25 events, 30 contacts, 20 tasks), plus `count` Northwind users made from
    /// Alice's template, named by [`Fixture::bench_user_id`] and [`Fixture::bench_upn`].
    pub fn demo_with_bench_users(prefix: &str, count: usize, messages: u64) -> Fixture {
        let mut fixture = Fixture::demo_today();
        fixture.set_all_counts(MailboxCounts { messages, events: 25, contacts: 30, tasks: 20 });
        let template = fixture.tenants[0].users[1].clone();
        for i in 0..count {
            fixture.tenants[0].users.push(UserFixture {
                id: Fixture::bench_user_id(i),
                user_principal_name: Fixture::bench_upn(prefix, i),
                display_name: format!("Bench User {i}"),
                ..template.clone()
            });
        }
        fixture
    }

    /// The directory id of bench user `i`.
    pub fn bench_user_id(i: usize) -> String {
        format!("b0000000-0000-4000-8000-{i:012}")
    }

    /// The address of bench user `i` whose addresses start with `prefix`.
    pub fn bench_upn(prefix: &str, i: usize) -> String {
        format!("{prefix}{i:04}@northwind.test")
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
