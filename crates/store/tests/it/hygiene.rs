//! What the database keeps after the product is done with it, and how long PostgreSQL lets a stuck
//! session hold its locks.

use crate::harness::{Raw, TestDb, on_both_backends};
use crate::sync::{item, mailbox, page, world};
use domain::Resource;
use store::sync::CursorUpdate;

on_both_backends!(a_reconnect_while_a_sync_commits_pages_waits_its_turn_instead_of_failing);

/// SQLite only: PostgreSQL keeps dead rows until VACUUM reuses their space (the README says so).
#[tokio::test]
async fn a_removed_mailboxs_mail_is_not_left_readable_in_the_sqlite_file() {
    let db = &crate::harness::sqlite().await;
    let Raw::SqliteDir(dir) = &db.raw else { unreachable!("a SQLite database") };
    let w = world(db).await;
    let mb = mailbox(db, &w).await;
    let now = store::now_unix();
    let lease = db.store.claim_due_mailboxes("w1", now, 30, 10).await.unwrap().remove(0);
    let secret = "Merger terms for Project Kestrel";
    let page = page(mb.id, lease.fence, vec![item("m-1", secret, now)], &[], CursorUpdate::DeltaLink("d".into()));
    db.store.commit_page(&page).await.unwrap();
    assert!(db.store.remove_sync_mailbox(mb.id).await.unwrap());
    // What a backup copies: the database file once the write-ahead log is checkpointed into it.
    checkpoint(dir).await;
    assert!(!db.raw.contains(secret).await, "a removed mailbox's mail is still readable in the SQLite file's free pages");
}

/// SQLite only: writes go through the one writer connection. The read connections are opened
/// read-only, so a write sent to them by mistake fails here rather than sleeping on SQLite's lock.
#[tokio::test]
async fn sqlites_read_connections_refuse_writes_and_its_writer_takes_them() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("rw.db").display());
    let store = store::SqliteStore::open(&url, std::sync::Arc::new(store::secrets::Keyring::ephemeral())).await.unwrap();
    let refused = sqlx::query("UPDATE organizations SET name = name").execute(store.pool()).await;
    assert!(refused.is_err(), "a read connection wrote");
    let org = store::Store::create_organization(&store, "Northwind").await.unwrap();
    let read: String =
        sqlx::query_scalar("SELECT name FROM organizations WHERE id = $1").bind(org.id.as_uuid()).fetch_one(store.pool()).await.unwrap();
    assert_eq!(read, "Northwind", "what the writer wrote, the readers read");
}

async fn checkpoint(dir: &std::path::Path) {
    use sqlx::Connection;
    let url = format!("sqlite://{}", dir.join("test.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn postgres_ends_a_session_left_idle_in_a_transaction() {
    let Some(url) = crate::harness::postgres_url().await else { return };
    let store = store::PgStore::open(&url, std::sync::Arc::new(store::secrets::Keyring::ephemeral())).await.unwrap();
    let mut conn = store.pool().acquire().await.unwrap();
    let idle: String = sqlx::query_scalar("SHOW idle_in_transaction_session_timeout").fetch_one(&mut *conn).await.unwrap();
    let statement: String = sqlx::query_scalar("SHOW statement_timeout").fetch_one(&mut *conn).await.unwrap();
    assert_eq!((idle.as_str(), statement.as_str()), ("30s", "1min"));
}

/// Issue 13 (item 14): on SQLite an activation failed at once with "database is locked" while a
/// first sync was committing, since a transaction that reads and then writes cannot wait. Every
/// write transaction now starts as a writer and waits its turn.
async fn a_reconnect_while_a_sync_commits_pages_waits_its_turn_instead_of_failing(db: &TestDb) {
    let w = world(db).await;
    let mb = mailbox(db, &w).await;
    let now = store::now_unix();
    let lease = db.store.claim_due_mailboxes("w1", now, 60, 10).await.unwrap().remove(0);
    let pages = {
        let store = db.store.clone();
        tokio::spawn(async move {
            for n in 0..150 {
                let page = page(
                    mb.id,
                    lease.fence,
                    vec![item(&format!("m-{n}"), &format!("Message {n}"), now)],
                    &[],
                    CursorUpdate::NextLink(format!("n{n}")),
                );
                store.commit_page(&page).await.unwrap();
            }
        })
    };
    // Meanwhile the same account reconnects again and again (each save reads, then writes).
    let existing = db.store.connections_in_org(w.org).await.unwrap().remove(0);
    for n in 0..60 {
        let again = store::NewConnection {
            org_id: w.org,
            user_id: w.user,
            kind: existing.kind,
            is_primary: true,
            ms_tenant_id: existing.ms_tenant_id.clone(),
            ms_object_id: existing.ms_object_id.clone(),
            ms_username: existing.ms_username.clone(),
            ms_name: existing.ms_name.clone(),
            granted_scopes: existing.granted_scopes.clone(),
            access_token: store::secrets::SecretString::from(format!("access-{n}")),
            access_expires_at: now + 3600,
            refresh_token: Some(store::secrets::SecretString::from(format!("refresh-{n}"))),
        };
        let audit = domain::AuditEntry { at: now, actor: "alice".into(), action: "connect".into(), summary: "reconnected".into() };
        db.store.save_connection(&again, &audit).await.unwrap_or_else(|e| panic!("reconnect {n} failed while pages commit: {e}"));
    }
    pages.await.unwrap();
    assert_eq!(db.store.mailbox_items(mb.id, Resource::Mail).await.unwrap().len(), 150);
}
