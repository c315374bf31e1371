//! The demo organization `make run` starts with: one admin and three members whose emails match
//! the users of the Microsoft 365 emulator's demo tenant (`northwind.test`), and the emulator itself.
//! Compiled with the `demo` feature only.

use domain::Role;
use store::{Store, accounts};

pub const ORG_NAME: &str = "Northwind Traders";
pub const ADMIN_PASSWORD: &str = "northwind-admin";
pub const MEMBER_PASSWORD: &str = "northwind-member";

pub struct DemoUser {
    pub email: &'static str,
    pub name: &'static str,
    pub role: Role,
}

pub const USERS: [DemoUser; 4] = [
    DemoUser { email: "admin@northwind.test", name: "Adele Admin", role: Role::Admin },
    DemoUser { email: "alice@northwind.test", name: "Alice Anders", role: Role::Member },
    DemoUser { email: "bob@northwind.test", name: "Bob Burke", role: Role::Member },
    DemoUser { email: "carol@northwind.test", name: "Carol Chen", role: Role::Member },
];

pub fn password_for(role: Role) -> &'static str {
    match role {
        Role::Admin => ADMIN_PASSWORD,
        Role::Member => MEMBER_PASSWORD,
    }
}

/// Creates whatever part of the demo organization is missing; running it twice changes nothing.
pub async fn seed(store: &dyn Store) -> anyhow::Result<()> {
    let org = match store.organization_by_name(ORG_NAME).await? {
        Some(org) => org,
        None => store.create_organization(ORG_NAME).await?,
    };
    for u in &USERS {
        let email = domain::EmailAddress::parse(u.email)?;
        if store.user_credentials(&email).await?.is_none() {
            accounts::create_user(store, org.id, u.email, u.name, u.role, password_for(u.role)).await?;
        }
    }
    Ok(())
}

pub fn logins_banner() -> String {
    let mut s = String::from("Demo logins:\n");
    for u in &USERS {
        s.push_str(&format!("  {:<8} {:<24} password: {}\n", u.role.as_str(), u.email, password_for(u.role)));
    }
    s
}

/// The OAuth callback paths the product registers with Microsoft, relative to its public URL.
pub const CALLBACK_PATHS: [&str; 2] = ["/oauth/office365/callback", "/oauth/office365/admin-consent"];

/// Starts the Microsoft 365 emulator with its demo tenants, registering this server's callback URLs
/// on the demo app registrations so OAuth redirects come back here whatever port we run on.
pub async fn start_emulator(bind: std::net::SocketAddr, public_url: &str) -> anyhow::Result<m365_emulator::RunningEmulator> {
    let mut config = m365_emulator::EmulatorConfig::demo();
    config.bind = bind;
    // The first sync reaches back a number of days from today: the demo's mail must be recent.
    config.fixture.date_content_today();
    let base = public_url.trim_end_matches('/');
    for path in CALLBACK_PATHS {
        config.fixture.add_redirect_uri(&format!("{base}{path}"));
    }
    Ok(m365_emulator::spawn(config).await?)
}

pub fn emulator_banner(emulator_url: &str) -> String {
    format!(
        "Microsoft 365 emulator (plays Microsoft for the demo) at {emulator_url}\n\
         \x20 Intelligence360 uses its own multi-tenant app (client id {deployment}): admins type no app registration.\n\
         \x20 Microsoft sign-ins: admin@ alice@ bob@ carol@ service@ northwind.test, password {pw}\n\
         \x20 Fabrikam (users may not consent): admin@ erin@ frank@ fabrikam.test; activate as admin@fabrikam.test to try it\n\
         \x20 \"Use your own app registration\": Northwind tenant {tenant}, client id {client}, secret {secret};\n\
         \x20   Fabrikam tenant {fabrikam}, client id {fabrikam_client}, same secret\n",
        deployment = m365_emulator::DEPLOYMENT_CLIENT_ID,
        tenant = m365_emulator::NORTHWIND_TENANT_ID,
        client = m365_emulator::DEMO_CLIENT_ID,
        secret = m365_emulator::DEMO_CLIENT_SECRET,
        pw = m365_emulator::DEMO_PASSWORD,
        fabrikam = m365_emulator::FABRIKAM_TENANT_ID,
        fabrikam_client = m365_emulator::FABRIKAM_CLIENT_ID,
    )
}
