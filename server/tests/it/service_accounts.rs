//! Service account users through the server function the page calls: the browser names an
//! address, and Microsoft says whose mailbox it is. A directory id sent along is not used
//! (hardening issue, item 7).

use crate::helpers::{TestApp, enable_demo_integration, spawn_app};
use domain::permissions::ConnectionMode;

/// Directory object ids in the emulator's Northwind tenant.
const ALICE_ID: &str = "6e1f0a00-0000-4000-8000-000000000002";
const BOB_ID: &str = "6e1f0a00-0000-4000-8000-000000000003";
const CAROL_ID: &str = "6e1f0a00-0000-4000-8000-000000000004";

/// The directory id stored for `address`, if it is listed.
async fn stored_id(app: &TestApp, org: domain::OrgId, address: &str) -> Option<Option<String>> {
    let users = app.store.service_account_users(org).await.unwrap();
    users.into_iter().find(|u| u.ms_username == address).map(|u| u.ms_object_id)
}

async fn add(app: &TestApp, admin: &reqwest::Client, form: &[(&str, &str)]) -> String {
    let res = app.call(admin, "add_service_account_user", form).await;
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}

#[tokio::test]
async fn a_directory_id_sent_by_the_browser_never_decides_whose_mailbox_is_synced() {
    let app = spawn_app().await;
    let org = enable_demo_integration(app.store.as_ref()).await;
    let mut settings = app.store.office365_settings(org).await.unwrap();
    settings.mode = ConnectionMode::ApplicationPermissions;
    app.store.save_office365_settings(org, &settings, None, &[]).await.unwrap();
    let admin = app.signed_in("admin@northwind.test").await;

    // Before the service connection is active: Alice's address with Bob's directory id.
    add(&app, &admin, &[("address", "alice@northwind.test"), ("name", "Alice Anders"), ("directory_id", BOB_ID)]).await;
    assert_eq!(stored_id(&app, org, "alice@northwind.test").await, Some(None), "the browser's directory id was stored");

    // The admin consents; activation asks Microsoft whose mailbox each address is.
    let res = admin.post(app.url("/oauth/office365/admin-consent/start")).send().await.unwrap();
    let to_microsoft = res.headers().get("location").unwrap().to_str().unwrap().to_owned();
    let back = m365_emulator::testkit::sign_in(&to_microsoft, "admin@northwind.test").await.unwrap();
    let res = admin.get(app.url(&format!("/oauth/office365/admin-consent?{}", back.query()))).send().await.unwrap();
    assert_eq!(res.headers().get("location").unwrap(), "/settings/integrations/office365/my-connection");
    // The mailboxes are checked in the background after the redirect.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while stored_id(&app, org, "alice@northwind.test").await == Some(None) && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(stored_id(&app, org, "alice@northwind.test").await, Some(Some(ALICE_ID.to_owned())));

    // Picked from the directory search, with a forged id: the address's owner's id is stored.
    add(&app, &admin, &[("address", "carol@northwind.test"), ("name", "Carol Chen"), ("directory_id", BOB_ID)]).await;
    assert_eq!(stored_id(&app, org, "carol@northwind.test").await, Some(Some(CAROL_ID.to_owned())));
    let mailboxes = app.store.sync_mailboxes_in_org(org).await.unwrap();
    assert!(mailboxes.iter().all(|m| m.graph_user_id.as_deref() != Some(BOB_ID)), "Bob's mailbox is synced: {mailboxes:?}");

    // An address Microsoft does not know: the form says so, and nothing is added.
    let said = add(&app, &admin, &[("address", "nobody@northwind.test"), ("directory_id", BOB_ID)]).await;
    assert!(said.contains("nobody with the address nobody@northwind.test"), "{said}");
    assert_eq!(stored_id(&app, org, "nobody@northwind.test").await, None);
}
