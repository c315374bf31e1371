//! Office 365 settings, the sealed client secret, and the audit log.

use crate::harness::{TestDb, on_both_backends};
use domain::AuditEntry;
use domain::Resource;
use domain::office365::Office365Settings;
use domain::permissions::{AccessLevel, ConnectionMode};
use store::secrets::ExposeSecret;
use store::secrets::SecretString;

on_both_backends!(
    settings_default_to_not_set_up,
    settings_round_trip_and_the_secret_is_kept_when_not_replaced,
    the_raw_database_holds_no_plaintext_secret,
    saving_settings_writes_their_audit_entries_atomically,
    audit_log_is_per_organization_newest_first,
    a_tenant_has_one_exclusive_pin_and_shared_pins_beside_it,
);

fn enabled() -> Office365Settings {
    Office365Settings {
        enabled: true,
        own_app: true,
        pinned_tenant: None,
        deployment_client_id: None,
        tenant: "northwind.test".into(),
        client_id: "11111111-2222-4333-8444-555555555555".into(),
        client_secret_set: true,
        client_secret_expires_on: Some("2027-12-31".into()),
        mode: ConnectionMode::ServiceUser,
        access: AccessLevel::ReadWrite,
        resources: vec![Resource::Mail, Resource::Tasks],
        sync_interval_minutes: 30,
        backfill_days: 90,
        poll_primary_only: true,
        setup_action_enabled: false,
    }
}

fn entry(action: &str, at: i64) -> AuditEntry {
    AuditEntry { at, actor: "Adele Admin <admin@northwind.test>".into(), action: action.into(), summary: format!("did {action}") }
}

async fn settings_default_to_not_set_up(db: &TestDb) {
    let org = db.store.create_organization("Northwind").await.unwrap();
    assert_eq!(db.store.office365_settings(org.id).await.unwrap(), Office365Settings::default());
    assert!(db.store.office365_client_secret(org.id).await.unwrap().is_none());
}

async fn settings_round_trip_and_the_secret_is_kept_when_not_replaced(db: &TestDb) {
    let store = db.store.as_ref();
    let org = store.create_organization("Northwind").await.unwrap();
    let secret = SecretString::from("first-secret-value");
    store.save_office365_settings(org.id, &enabled(), Some(&secret), &[]).await.unwrap();
    assert_eq!(store.office365_settings(org.id).await.unwrap(), enabled());
    assert_eq!(stored_secret(store, org.id).await.as_deref(), Some(secret.expose_secret()));

    let changed = Office365Settings { sync_interval_minutes: 60, ..enabled() };
    store.save_office365_settings(org.id, &changed, None, &[]).await.unwrap();
    assert_eq!(store.office365_settings(org.id).await.unwrap().sync_interval_minutes, 60);
    assert_eq!(stored_secret(store, org.id).await.as_deref(), Some(secret.expose_secret()), "kept");

    let replaced = SecretString::from("second-secret-value");
    store.save_office365_settings(org.id, &changed, Some(&replaced), &[]).await.unwrap();
    assert_eq!(stored_secret(store, org.id).await.as_deref(), Some(replaced.expose_secret()));
}

async fn the_raw_database_holds_no_plaintext_secret(db: &TestDb) {
    let store = db.store.as_ref();
    let org = store.create_organization("Northwind").await.unwrap();
    let secret = "Zx9~very-distinctive-client-secret";
    store.save_office365_settings(org.id, &enabled(), Some(&SecretString::from(secret)), &[]).await.unwrap();
    assert!(db.raw.contains("northwind.test").await, "the check can see what is stored");
    assert!(!db.raw.contains(secret).await, "the client secret is stored sealed");
}

async fn saving_settings_writes_their_audit_entries_atomically(db: &TestDb) {
    let store = db.store.as_ref();
    let org = store.create_organization("Northwind").await.unwrap();
    store
        .save_office365_settings(
            org.id,
            &enabled(),
            None,
            &[entry("office365.settings_changed", 10), entry("office365.poll_primary_on", 10)],
        )
        .await
        .unwrap();
    let log = store.audit_log(org.id, 10).await.unwrap();
    assert_eq!(log.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["office365.poll_primary_on", "office365.settings_changed"]);
}

async fn audit_log_is_per_organization_newest_first(db: &TestDb) {
    let store = db.store.as_ref();
    let a = store.create_organization("A").await.unwrap();
    let b = store.create_organization("B").await.unwrap();
    store.record_audit(a.id, &entry("one", 1)).await.unwrap();
    store.record_audit(a.id, &entry("three", 3)).await.unwrap();
    store.record_audit(a.id, &entry("two", 2)).await.unwrap();
    store.record_audit(b.id, &entry("other", 5)).await.unwrap();
    let log = store.audit_log(a.id, 2).await.unwrap();
    assert_eq!(log.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["three", "two"]);
    assert_eq!(store.audit_log(b.id, 10).await.unwrap().len(), 1);
}

/// The stored client secret, opened, as text (secrets do not compare).
async fn stored_secret(store: &dyn store::Store, org: domain::OrgId) -> Option<String> {
    store.office365_client_secret(org).await.unwrap().map(|s| s.expose_secret().to_owned())
}

async fn a_tenant_has_one_exclusive_pin_and_shared_pins_beside_it(db: &TestDb) {
    const TENANT: &str = "4f1c6a0e-2d3b-4c5a-9e8f-0a1b2c3d4e5f";
    let store = db.store.as_ref();
    let [a, b, c] = [
        store.create_organization("Northwind").await.unwrap(),
        store.create_organization("Northwind again").await.unwrap(),
        store.create_organization("Northwind's sister").await.unwrap(),
    ];
    for org in [&a, &b, &c] {
        store.save_office365_settings(org.id, &enabled(), None, &[]).await.unwrap();
    }
    store.pin_tenant(a.id, TENANT, true, &entry("office365.tenant_pinned", 1)).await.unwrap();
    assert_eq!(store.office365_settings(a.id).await.unwrap().pinned_tenant.as_deref(), Some(TENANT));
    store.save_office365_settings(a.id, &Office365Settings { backfill_days: 7, ..enabled() }, None, &[]).await.unwrap();
    assert_eq!(store.office365_settings(a.id).await.unwrap().pinned_tenant.as_deref(), Some(TENANT), "saving settings keeps the pin");

    let taken = store.pin_tenant(b.id, TENANT, true, &entry("office365.tenant_pinned", 2)).await;
    assert!(matches!(taken, Err(store::StoreError::Conflict(_))), "{taken:?}");
    assert_eq!(store.office365_settings(b.id).await.unwrap().pinned_tenant, None, "nothing stored on refusal");
    assert_eq!(store.audit_log(b.id, 10).await.unwrap().len(), 0, "nor audited");

    // Shared pins (an organization's own registration, or sharing allowed) sit beside it; re-pinning
    // the same organization to its own tenant is fine; once a moves away, b may pin exclusively.
    store.pin_tenant(c.id, TENANT, false, &entry("office365.tenant_pinned", 3)).await.unwrap();
    store.pin_tenant(a.id, TENANT, true, &entry("office365.tenant_pinned", 4)).await.unwrap();
    store.pin_tenant(a.id, "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", true, &entry("office365.tenant_repinned", 5)).await.unwrap();
    store.pin_tenant(b.id, TENANT, true, &entry("office365.tenant_pinned", 6)).await.unwrap();
    let again = store.pin_tenant(a.id, TENANT, true, &entry("office365.tenant_repinned", 7)).await;
    assert!(matches!(again, Err(store::StoreError::Conflict(_))), "{again:?}");
}
