//! Sync speed: `cargo run -p sync --example bench_sync` (add `--release` for production figures).
//!
//! Seeds the emulator with `BENCH_MAILBOXES` mailboxes × `BENCH_MESSAGES` messages (plus the demo's
//! events, contacts and tasks), syncs them all into a fresh SQLite file through the real scheduler
//! (application permissions, pages of 500, 4 mailboxes at once, Microsoft's limits on), then runs
//! a no-change round. In the same run it inserts the very same rows into the same database with a
//! plain batched insert (one transaction per 500 rows) and prints the ratio, so the figure says
//! how much the engine costs over merely storing the data. Peak memory is the process's VmHWM
//! (emulator included: it runs in-process).

use domain::Resource;
use domain::permissions::ConnectionMode;
use domain::{AuditEntry, ConnectionKind, Role};
use m365_emulator::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, EmulatorConfig, Fixture, MailboxCounts, NORTHWIND_TENANT_ID, UserFixture};
use microsoft::{Endpoints, MicrosoftClient};
use std::sync::Arc;
use std::time::Instant;
use store::sync::NewSyncMailbox;
use sync::{Engine, Scheduler, SyncConfig};

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mailboxes = env_or("BENCH_MAILBOXES", 20);
    let messages = env_or("BENCH_MESSAGES", 2_000);
    let mut fixture = Fixture::demo();
    fixture.date_content_today();
    fixture.set_all_counts(MailboxCounts { messages, events: 25, contacts: 30, tasks: 20 });
    let template = fixture.tenants[0].users[1].clone();
    for i in 0..mailboxes {
        fixture.tenants[0].users.push(UserFixture {
            id: format!("b0000000-0000-4000-8000-{i:012}"),
            user_principal_name: format!("user{i:04}@northwind.test"),
            display_name: format!("Bench User {i}"),
            ..template.clone()
        });
    }
    let emu = m365_emulator::spawn(EmulatorConfig::new(fixture)).await?;
    emu.grant_admin_consent(NORTHWIND_TENANT_ID, DEMO_CLIENT_ID, &[], &["Mail.Read", "Calendars.Read", "Contacts.Read", "Tasks.Read.All"])?;
    let client = MicrosoftClient::new(Endpoints::parse(&emu.login_base(), &emu.graph_base())?)?;

    let dir = tempfile::tempdir()?;
    let db_path = dir.path().join("bench.db");
    let store = store::open(&format!("sqlite://{}", db_path.display()), Arc::new(store::secrets::Keyring::ephemeral())).await?;
    let org = store.create_organization("Northwind").await?.id;
    let settings = domain::office365::Office365Settings {
        enabled: true,
        own_app: true,
        pinned_tenant: None,
        deployment_client_id: None,
        tenant: NORTHWIND_TENANT_ID.into(),
        client_id: DEMO_CLIENT_ID.into(),
        client_secret_set: true,
        mode: ConnectionMode::ApplicationPermissions,
        // Every generated message, however far back, is part of the measured first sync.
        backfill_days: 365,
        ..Default::default()
    };
    store.save_office365_settings(org, &settings, Some(&store::secrets::SecretString::from(DEMO_CLIENT_SECRET)), &[]).await?;
    let admin = store::accounts::create_user(store.as_ref(), org, "admin@northwind.test", "Adele", Role::Admin, "bench-password").await?;
    // The mailboxes hang off one (app-mode) connection row; its delegated tokens are never used.
    let conn = store
        .save_connection(
            &store::NewConnection {
                org_id: org,
                user_id: admin.id,
                kind: ConnectionKind::Individual,
                is_primary: true,
                ms_tenant_id: NORTHWIND_TENANT_ID.into(),
                ms_object_id: "admin".into(),
                ms_username: "admin@northwind.test".into(),
                ms_name: "Adele".into(),
                granted_scopes: vec![],
                access_token: store::secrets::SecretString::from("unused"),
                access_expires_at: i64::MAX / 2,
                refresh_token: None,
            },
            &AuditEntry { at: 0, actor: "bench".into(), action: "connect".into(), summary: String::new() },
        )
        .await?;
    let config = SyncConfig { page_size: 500, max_concurrent_mailboxes: 4, ..SyncConfig::default() };
    let scheduler = Scheduler::new(Engine::new(store.clone(), client, config));
    let mut ids = Vec::new();
    for i in 0..mailboxes {
        let new = NewSyncMailbox {
            org_id: org,
            connection_id: conn.id,
            user_id: admin.id,
            graph_user_id: Some(format!("user{i:04}@northwind.test")),
        };
        ids.push(scheduler.schedule_mailbox(&new).await?);
    }

    let started = Instant::now();
    let outcomes = scheduler.run_until_idle().await?;
    let first = started.elapsed();
    let failed = outcomes.iter().filter(|o| o.result.is_err()).count();
    let m = scheduler.engine().metrics().snapshot();
    let items = m.items_upserted;

    for id in &ids {
        scheduler.sync_now(*id).await?;
    }
    let started = Instant::now();
    scheduler.run_until_idle().await?;
    let quiet = started.elapsed();
    let m2 = scheduler.engine().metrics().snapshot();

    // The same rows, stored by a plain batched insert into the same database.
    let mut rows = Vec::new();
    for id in &ids {
        for r in Resource::ALL {
            rows.extend(store.mailbox_items(*id, r).await?.into_iter().map(|i| (r, i)));
        }
    }
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db_path.display())).await?;
    sqlx::query(
        "CREATE TABLE plain_items (resource TEXT, container TEXT, graph_id TEXT, title TEXT, subtitle TEXT, preview TEXT, \
         occurred_at INTEGER, data TEXT, search_text TEXT, PRIMARY KEY (resource, container, graph_id))",
    )
    .execute(&pool)
    .await?;
    let started = Instant::now();
    for chunk in rows.chunks(500) {
        let mut tx = pool.begin().await?;
        for (r, i) in chunk {
            sqlx::query("INSERT INTO plain_items VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
                .bind(r.as_str())
                .bind(&i.container)
                .bind(&i.graph_id)
                .bind(&i.title)
                .bind(&i.subtitle)
                .bind(&i.preview)
                .bind(i.occurred_at)
                .bind(&i.data)
                .bind(i.search_text())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    }
    let plain = started.elapsed();

    let rate = items as f64 / first.as_secs_f64();
    let plain_rate = rows.len() as f64 / plain.as_secs_f64();
    println!("{mailboxes} mailboxes × {messages} messages (+ 25 events, 30 contacts, 20 tasks each), SQLite, pages of 500");
    println!(
        "first full sync: {items} items in {:.2} s = {rate:.0} items/s ({} Graph requests, {failed} failed runs)",
        first.as_secs_f64(),
        m.graph_requests()
    );
    println!(
        "no-change round: {:.2} s, {} Graph requests, {} items written",
        quiet.as_secs_f64(),
        m2.graph_requests() - m.graph_requests(),
        m2.items_upserted - items
    );
    println!("plain batched insert of the same {} rows: {:.2} s = {plain_rate:.0} rows/s", rows.len(), plain.as_secs_f64());
    println!("sync engine rate / plain insert rate = {:.2} (the engine also fetches over HTTP, parses and fences)", rate / plain_rate);
    println!("peak memory (process, emulator included): {:.0} MB", peak_rss_mb());
    emu.shutdown().await;
    Ok(())
}
