//! The control API over HTTP: faults, counters, mailbox changes, reset; absent unless enabled.

use crate::helpers::*;
use serde_json::{Value, json};

/// One control request: its status and JSON answer.
async fn ctl(t: &TestEmu, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = t.http.request(method, format!("{}/_emulator/{path}", t.emu.base_url()));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn post(t: &TestEmu, path: &str, body: Value) -> (u16, Value) {
    ctl(t, reqwest::Method::POST, path, Some(body)).await
}

#[tokio::test]
async fn control_api_injects_faults_counts_and_resets_over_http() {
    let t = spawn().await;
    let at = user_token(&t, "alice@northwind.test").await;

    // Fail the next two delta requests for alice with 503 + Retry-After, then succeed.
    let fault = json!({"route": "messages/delta", "mailbox": "alice@northwind.test", "status": 503, "retry_after": 1, "count": 2});
    assert_eq!(post(&t, "faults", fault).await.0, 200);
    for _ in 0..2 {
        let r = graph(&t, &at, "/me/mailFolders/inbox/messages/delta", &[]).await;
        assert_eq!(r.status, 503);
        assert_eq!(r.headers.get("retry-after").unwrap(), "1");
        assert_graph_error_shape(&r.text, "serviceNotAvailable");
    }
    assert_eq!(graph(&t, &at, "/me/mailFolders/inbox/messages/delta", &[]).await.status, 200);
    // 410 injection.
    post(&t, "faults", json!({"route": "calendarView", "status": 410, "count": 1})).await;
    let r = graph(&t, &at, "/me/calendarView/delta?startDateTime=2026-01-01T00:00:00Z&endDateTime=2026-02-01T00:00:00Z", &[]).await;
    assert_eq!(r.status, 410);
    assert_graph_error_shape(&r.text, "SyncStateNotFound");
    // 500 on the token endpoint.
    post(&t, "faults", json!({"route": "/oauth2/v2.0/token", "status": 500, "count": 1})).await;
    let (s, e) = app_token(&t, NW).await;
    assert_eq!((s, e["error"].as_str()), (500, Some("server_error")));
    assert_eq!(post(&t, "faults", json!({"status": "often"})).await.0, 400, "a malformed rule is refused");

    // Counters (the bare object, not wrapped): by route and status, per mailbox.
    let (status, c) = ctl(&t, reqwest::Method::GET, "counters", None).await;
    assert_eq!(status, 200);
    let c: m365_emulator::Counters = serde_json::from_value(c).unwrap();
    assert_eq!(c.requests_matching("GET /me/mailFolders/{id}/messages/delta", Some(503)), 2);
    assert_eq!(c.requests_matching("GET /me/mailFolders/{id}/messages/delta", Some(200)), 1);
    assert_eq!(c.requests_matching("/oauth2/v2.0/token", Some(500)), 1);
    let m = c.mailbox("alice@northwind.test").unwrap();
    assert!(m.requests >= 4 && m.max_concurrency >= 1);
    assert_eq!(post(&t, "reset", Value::Null).await, (200, json!({"ok": true, "result": null})));
    assert!(t.emu.counters().requests.is_empty());
    t.emu.shutdown().await;
}

#[tokio::test]
async fn control_api_changes_mailboxes_over_http() {
    let t = spawn().await;
    let at = user_token(&t, "alice@northwind.test").await;
    let (_, delta, _) = delta_round(&t, &at, "/me/mailFolders/inbox/messages/delta", &["odata.maxpagesize=200"]).await;
    let (_, added) =
        post(&t, "mailboxes/alice@northwind.test/messages", json!({"container": "inbox", "fields": {"subject": "via HTTP"}})).await;
    let id = added["result"]["id"].as_str().unwrap().to_string();
    let (_, listed) = ctl(&t, reqwest::Method::GET, "mailboxes/alice@northwind.test/messages?container=inbox&limit=2", None).await;
    assert_eq!(listed["result"].as_array().unwrap().len(), 2);
    let other = listed["result"][0]["id"].as_str().unwrap().to_string();
    let item = format!("mailboxes/alice@northwind.test/items/{other}");
    assert_eq!(ctl(&t, reqwest::Method::PATCH, &item, Some(json!({"subject": "patched"}))).await.0, 200);
    let (changes, delta, _) = delta_round(&t, &at, &delta, &[]).await;
    assert_eq!(changes.len(), 2);
    assert!(changes.iter().any(|c| c["subject"] == "via HTTP") && changes.iter().any(|c| c["subject"] == "patched"));
    assert_eq!(post(&t, &format!("mailboxes/alice@northwind.test/items/{id}/move"), json!({"to": "archive"})).await.0, 200);
    assert_eq!(ctl(&t, reqwest::Method::DELETE, &item, None).await.0, 200);
    let (changes, _, _) = delta_round(&t, &at, &delta, &[]).await;
    assert_eq!(changes.iter().filter(|c| c.get("@removed").is_some()).count(), 2);
    assert_eq!(ctl(&t, reqwest::Method::DELETE, &item, None).await.0, 404, "already deleted");
    let (status, answer) = post(&t, "mailboxes/alice@northwind.test/parcels", json!({})).await;
    assert_eq!((status, answer["ok"].as_bool()), (400, Some(false)), "unknown kind");
    assert_eq!(post(&t, &format!("mailboxes/alice@northwind.test/items/{id}/move"), json!({})).await.0, 400, "no `to`");
    assert_eq!(post(&t, "mailboxes/nobody@northwind.test/messages", json!({})).await.0, 404);
    t.emu.shutdown().await;
}

#[tokio::test]
async fn control_api_switches_policy_secrets_and_sessions_over_http() {
    let t = spawn().await;
    assert_eq!(post(&t, "tenants/northwind.test/consent-policy", json!({"users_may_consent": false})).await.0, 200);
    let expire = format!("apps/{}/expire-secret", m365_emulator::DEMO_CLIENT_ID);
    assert_eq!(post(&t, &expire, json!({"secret": m365_emulator::DEMO_CLIENT_SECRET})).await.0, 200);
    let (s, e) = app_token(&t, NW).await;
    assert_eq!((s, e["error_codes"][0].as_u64()), (401, Some(7000222)));
    assert_eq!(post(&t, "users/alice@northwind.test/revoke-refresh-tokens", Value::Null).await.0, 200);
    assert_eq!(post(&t, "tenants/nowhere.test/consent-policy", json!({"users_may_consent": true})).await.0, 404);
    t.emu.shutdown().await;
}

#[tokio::test]
async fn control_api_is_absent_unless_enabled() {
    let t = spawn_with(|c| c.control_api = false).await;
    let r = t.http.get(format!("{}/_emulator/counters", t.emu.base_url())).send().await.unwrap();
    assert_eq!(r.status(), 404);
    t.emu.shutdown().await;
}

#[tokio::test]
async fn early_retries_after_retry_after_are_flagged_per_mailbox() {
    let t = spawn().await;
    let at = user_token(&t, "bob@northwind.test").await;
    t.emu.inject_fault(m365_emulator::FaultRule {
        mailbox: Some("bob@northwind.test".into()),
        status: Some(429),
        retry_after: Some(30.0),
        count: 1,
        ..Default::default()
    });
    let r = graph(&t, &at, "/me/contactFolders", &[]).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.headers.get("retry-after").unwrap(), "30");
    assert!(!t.emu.counters().mailbox("bob@northwind.test").unwrap().retried_before_retry_after);
    assert_eq!(graph(&t, &at, "/me/contactFolders", &[]).await.status, 200);
    assert!(t.emu.counters().mailbox("bob@northwind.test").unwrap().retried_before_retry_after, "came back 0 s into a 30 s Retry-After");
    t.emu.shutdown().await;
}

#[test]
fn binary_help_lists_flags_with_env_fallbacks() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_m365-emulator")).arg("--help").output().expect("binary runs");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in ["--bind", "--fixture", "--control-api", "--tls", "--no-throttling", "--seed", "M365_EMULATOR_BIND"] {
        assert!(help.contains(flag), "--help mentions {flag}:\n{help}");
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_m365-emulator")).arg("--print-demo-fixture").output().expect("binary runs");
    let printed: m365_emulator::Fixture = serde_json::from_slice(&out.stdout).expect("fixture JSON");
    assert_eq!(printed, m365_emulator::Fixture::demo());
    // The shipped file, embedded at build time: a test binary that a checkout at another path
    // built into the shared target dir still finds it.
    assert_eq!(m365_emulator::Fixture::from_json(include_str!("../../fixtures/demo.json")).unwrap(), printed);
}

#[tokio::test]
async fn serves_https_with_a_generated_certificate() {
    let dir = std::env::temp_dir().join(format!("m365-emu-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pem_path = dir.join("ca.pem");
    let mut config = m365_emulator::EmulatorConfig::demo();
    config.tls = true;
    config.tls_cert_path = Some(pem_path.clone());
    let emu = m365_emulator::spawn(config).await.unwrap();
    assert!(emu.base_url().starts_with("https://127.0.0.1:"));
    let pem = std::fs::read(&pem_path).unwrap();
    assert_eq!(emu.ca_cert_pem().unwrap().as_bytes(), pem.as_slice());
    let http = reqwest::Client::builder().add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap()).build().unwrap();
    let doc: Value =
        http.get(format!("{}/common/v2.0/.well-known/openid-configuration", emu.base_url())).send().await.unwrap().json().await.unwrap();
    assert!(doc["token_endpoint"].as_str().unwrap().starts_with("https://127.0.0.1:"));
    // An untrusting client refuses the self-signed certificate.
    let strict = reqwest::Client::builder().tls_built_in_root_certs(false).build().unwrap();
    assert!(strict.get(format!("{}/common/v2.0/.well-known/openid-configuration", emu.base_url())).send().await.is_err());
    emu.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn probabilistic_faults_and_http_date_retry_after() {
    let t = spawn_with(|c| c.throttling = m365_emulator::ThrottleConfig::disabled()).await;
    let at = user_token(&t, "alice@northwind.test").await;
    t.emu.inject_fault(m365_emulator::FaultRule {
        route: Some("/contactFolders".into()),
        status: Some(503),
        probability: Some(0.3),
        count: u32::MAX,
        ..Default::default()
    });
    let mut failed = 0;
    for _ in 0..200 {
        match graph(&t, &at, "/me/contactFolders", &[]).await.status {
            200 => {}
            503 => failed += 1,
            s => panic!("unexpected {s}"),
        }
    }
    assert!((30..=95).contains(&failed), "about 30% of 200 failed: {failed}");
    t.emu.reset();
    assert_eq!(graph(&t, &at, "/me/contactFolders", &[]).await.status, 200, "reset removes faults");
    t.emu.inject_fault(m365_emulator::FaultRule {
        status: Some(429),
        retry_after: Some(5.0),
        retry_after_as_date: true,
        count: 1,
        ..Default::default()
    });
    let r = graph(&t, &at, "/me/todo/lists", &[]).await;
    assert_eq!(r.status, 429);
    let date = r.headers.get("retry-after").unwrap().to_str().unwrap().to_string();
    assert!(date.ends_with(" GMT") && date.contains(','), "HTTP-date form: {date}");
    t.emu.shutdown().await;
}

#[tokio::test]
async fn snapshots_equal_what_a_complete_delta_sync_holds() {
    let t = spawn().await;
    let at = user_token(&t, "bob@northwind.test").await;
    t.emu.add_item("bob@northwind.test", m365_emulator::Kind::Message, Some("inbox"), json!({"subject": "extra"})).unwrap();
    let (items, _, _) =
        delta_round(&t, &at, "/me/mailFolders/inbox/messages/delta", &["odata.maxpagesize=13", "IdType=\"ImmutableId\""]).await;
    let snap = t.emu.snapshot("bob@northwind.test", m365_emulator::Kind::Message, "inbox", true).unwrap();
    assert_eq!(items, snap);
    let window = ("2026-09-01T00:00:00Z", "2027-03-01T00:00:00Z");
    let (events, _, _) = delta_round(
        &t,
        &at,
        &format!("/me/calendarView/delta?startDateTime={}&endDateTime={}", window.0, window.1),
        &["odata.maxpagesize=4"],
    )
    .await;
    let view = t.emu.calendar_view("bob@northwind.test", window.0, window.1, false).unwrap();
    assert_eq!(events, view);
    // Over HTTP too.
    let r: Value = t
        .http
        .get(format!("{}/_emulator/mailboxes/bob@northwind.test/messages?container=inbox&full=true&immutable=true", t.emu.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["result"].as_array().unwrap(), &snap);
    t.emu.shutdown().await;
}
