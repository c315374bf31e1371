//! Delta serving speed: `cargo run --release -p m365-emulator --example bench_delta`.
//!
//! Builds a 1,000-mailbox × 10,000-message world, then
//! 1. runs full inbox delta rounds (pages of 500) for several mailboxes over HTTP, 4 clients in parallel,
//!    and reports pages/s, items/s and MB/s;
//! 2. measures, in the same run, the cheapest thing any client must do with those pages — parse the JSON —
//!    to show the emulator is not the bottleneck;
//! 3. touches every mailbox once and reports the process's resident memory.

use m365_emulator::{
    DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, EmulatorConfig, Fixture, MailboxCounts, NORTHWIND_TENANT_ID, ThrottleConfig, UserFixture,
};
use std::time::Instant;

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// CPU seconds used so far by this process's threads named `name` (Linux; clock ticks of 1/100 s).
fn thread_cpu_secs(name: &str) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    let mut ticks = 0u64;
    for entry in dir.flatten() {
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if !comm.trim().starts_with(name) {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        if let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) {
            let f: Vec<&str> = rest.split_whitespace().collect();
            ticks +=
                f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    ticks as f64 / 100.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The emulator gets its own runtime with named threads so its CPU time can be told apart from the
    // benchmark clients'.
    let emu_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("emu-worker").enable_all().build()?;
    let client_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("bench-client").enable_all().build()?;
    client_rt.block_on(run(&emu_rt))
}

async fn run(emu_rt: &tokio::runtime::Runtime) -> Result<(), Box<dyn std::error::Error>> {
    let env = |name: &str, default: u64| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let b = Bench {
        mailboxes: env("BENCH_MAILBOXES", 1000) as usize,
        messages: env("BENCH_MESSAGES", 10_000),
        rounds: env("BENCH_ROUNDS", 32) as usize,
        page: 500,
    };
    let rss_before = rss_mb();
    let (emu, token) = spawn_bench(emu_rt, &b).await?;
    let http = reqwest::Client::new();
    let (sample, served_per_cpu_sec) = serve_rounds(&emu, &http, &token, &b).await?;
    parse_only(&sample, served_per_cpu_sec)?;
    parse_and_store(&sample, served_per_cpu_sec).await?;
    drop(sample);
    touch_all(&emu, &http, &token, &b, rss_before).await?;
    emu.shutdown().await;
    Ok(())
}

struct Bench {
    mailboxes: usize,
    messages: u64,
    rounds: usize,
    page: usize,
}

/// An emulator with `mailboxes` extra mailboxes of `messages` messages each, and an app-only token.
async fn spawn_bench(
    emu_rt: &tokio::runtime::Runtime,
    b: &Bench,
) -> Result<(m365_emulator::RunningEmulator, String), Box<dyn std::error::Error>> {
    let (mailboxes, messages) = (b.mailboxes, b.messages);
    let mut fixture = Fixture::demo();
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
    let mut config = EmulatorConfig::new(fixture);
    config.throttling = ThrottleConfig::disabled();
    let emu = emu_rt.spawn(m365_emulator::spawn(config)).await??;
    emu.grant_admin_consent(NORTHWIND_TENANT_ID, DEMO_CLIENT_ID, &[], &["Mail.Read"])?;
    let http = reqwest::Client::new();
    let tok: serde_json::Value = http
        .post(format!("{}/{NORTHWIND_TENANT_ID}/oauth2/v2.0/token", emu.base_url()))
        .form(&[
            ("client_id", DEMO_CLIENT_ID),
            ("client_secret", DEMO_CLIENT_SECRET),
            ("grant_type", "client_credentials"),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await?
        .json()
        .await?;
    let token = tok["access_token"].as_str().ok_or("no token")?.to_string();
    Ok((emu, token))
}

/// Step 1: full delta rounds, 4 clients in parallel; returns a sample of pages and the items served per
/// emulator CPU-second.
async fn serve_rounds(
    emu: &m365_emulator::RunningEmulator,
    http: &reqwest::Client,
    token: &str,
    b: &Bench,
) -> Result<(Vec<axum::body::Bytes>, f64), Box<dyn std::error::Error>> {
    let (rounds, page) = (b.rounds, b.page);
    // Raw bytes only (no parsing on the client side).
    let cpu_before = thread_cpu_secs("emu-worker");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..4usize {
        let http = http.clone();
        let token = token.to_string();
        let graph = emu.graph_base();
        tasks.push(tokio::spawn(async move {
            let mut pages = 0usize;
            let mut bytes = 0usize;
            let mut bodies = Vec::new();
            for r in 0..rounds / 4 {
                let user = format!("user{:04}@northwind.test", worker * 100 + r);
                let mut url = format!("{graph}/users/{user}/mailFolders/inbox/messages/delta");
                loop {
                    let body = http
                        .get(&url)
                        .bearer_auth(&token)
                        .header("Prefer", format!("odata.maxpagesize={page}"))
                        .send()
                        .await?
                        .bytes()
                        .await?;
                    pages += 1;
                    bytes += body.len();
                    // Only the link is looked for, with a substring search (no JSON parse).
                    let text = String::from_utf8_lossy(&body);
                    let next = text.find("\"@odata.nextLink\":\"").map(|i| text[i + 19..].split('"').next().unwrap_or("").to_string());
                    if bodies.len() < 40 {
                        bodies.push(body);
                    }
                    match next {
                        Some(n) => url = n,
                        None => break,
                    }
                }
            }
            Ok::<_, reqwest::Error>((pages, bytes, bodies))
        }));
    }
    let mut pages = 0;
    let mut bytes = 0;
    let mut sample = Vec::new();
    for t in tasks {
        let (p, b, bodies) = t.await??;
        pages += p;
        bytes += b;
        sample.extend(bodies);
    }
    let secs = started.elapsed().as_secs_f64();
    let emu_cpu = (thread_cpu_secs("emu-worker") - cpu_before).max(0.01);
    let items = pages * page; // approximately: last page of each round is partial
    println!("emulator: {pages} delta pages of up to {page} messages in {secs:.2} s");
    println!(
        "  {:.0} pages/s, ~{:.0} items/s, {:.1} MB/s over HTTP (4 clients, wall clock)",
        pages as f64 / secs,
        items as f64 / secs,
        bytes as f64 / secs / 1e6
    );
    println!("  emulator CPU: {emu_cpu:.2} s → ~{:.0} items per emulator CPU-second", items as f64 / emu_cpu);
    Ok((sample, items as f64 / emu_cpu))
}

/// Step 2: the same pages, parsed as JSON once each (the least work any client does before storing).
fn parse_only(sample: &[axum::body::Bytes], served_per_cpu_sec: f64) -> Result<(), Box<dyn std::error::Error>> {
    let parse_start = Instant::now();
    let mut parsed_items = 0usize;
    let mut parsed_bytes = 0usize;
    for body in sample {
        let v: serde_json::Value = serde_json::from_slice(body)?;
        parsed_items += v["value"].as_array().map(|a| a.len()).unwrap_or(0);
        parsed_bytes += body.len();
    }
    let psecs = parse_start.elapsed().as_secs_f64();
    let parse_rate = parsed_bytes as f64 / psecs / 1e6;
    let parse_items_per_sec = parsed_items as f64 / psecs;
    println!("client-side JSON parse only (1 core): {parse_items_per_sec:.0} items/s, {parse_rate:.1} MB/s");
    println!("  per CPU-second, the emulator serves {:.1}x the items a client can merely parse", served_per_cpu_sec / parse_items_per_sec);
    Ok(())
}

/// Step 2b, parse and store: one SQLite transaction per page (WAL, on disk), what a sync engine does at the
/// very least with each page.
async fn parse_and_store(sample: &[axum::body::Bytes], served_per_cpu_sec: f64) -> Result<(), Box<dyn std::error::Error>> {
    let db_path = std::env::temp_dir().join(format!("m365-emu-bench-{}.db", std::process::id()));
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&db_path)
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .synchronous(sqlx::sqlite::SqliteSynchronous::Normal);
    let pool = sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect_with(opts).await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS message (id TEXT PRIMARY KEY, subject TEXT, received TEXT, is_read INTEGER, body TEXT)")
        .execute(&pool)
        .await?;
    let store_start = Instant::now();
    let mut stored = 0usize;
    for body in sample {
        let v: serde_json::Value = serde_json::from_slice(body)?;
        let mut tx = pool.begin().await?;
        for m in v["value"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
            sqlx::query("INSERT OR REPLACE INTO message (id, subject, received, is_read, body) VALUES (?, ?, ?, ?, ?)")
                .bind(m["id"].as_str())
                .bind(m["subject"].as_str())
                .bind(m["receivedDateTime"].as_str())
                .bind(m["isRead"].as_bool())
                .bind(m["body"]["content"].as_str())
                .execute(&mut *tx)
                .await?;
            stored += 1;
        }
        tx.commit().await?;
    }
    let store_rate = stored as f64 / store_start.elapsed().as_secs_f64();
    pool.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db_path.display()));
    }
    println!("client-side parse + store in SQLite (1 transaction per page): {store_rate:.0} items/s");
    println!("  the emulator serves {:.1}x that per CPU-second", served_per_cpu_sec / store_rate);
    Ok(())
}

/// Step 3: touches every mailbox (first page of its inbox delta) and reports memory (sample pages freed
/// first, so the number is the emulator's own footprint plus this process's runtime).
async fn touch_all(
    emu: &m365_emulator::RunningEmulator,
    http: &reqwest::Client,
    token: &str,
    b: &Bench,
    rss_before: f64,
) -> Result<(), Box<dyn std::error::Error>> {
    let (mailboxes, messages) = (b.mailboxes, b.messages);
    let rss_mid = rss_mb();
    let touch = Instant::now();
    for i in 0..mailboxes {
        let url = format!("{}/users/user{i:04}@northwind.test/mailFolders/inbox/messages/delta", emu.graph_base());
        let r = http.get(url).bearer_auth(token).header("Prefer", "odata.maxpagesize=10").send().await?;
        if !r.status().is_success() {
            return Err(format!("mailbox {i}: {}", r.status()).into());
        }
        let _ = r.bytes().await?;
    }
    println!(
        "{mailboxes} mailboxes × {messages} messages: all touched in {:.2} s; process RSS {:.0} MB (before spawn {:.0} MB, before touching {:.0} MB)",
        touch.elapsed().as_secs_f64(),
        rss_mb(),
        rss_before,
        rss_mid
    );
    Ok(())
}
