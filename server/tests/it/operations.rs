use crate::helpers::{spawn_app, spawn_app_on, sqlite_url};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test]
async fn healthz_checks_the_database() {
    let app = spawn_app().await;
    let res = reqwest::get(app.url("/healthz")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("x-request-id"), "every response carries its request id");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["database"], "sqlite");
}

#[tokio::test]
async fn healthz_fails_when_the_database_is_gone() {
    let app = spawn_app().await;
    // Closing the pool is the closest in-process stand-in for a database that went away.
    app.store.close().await;
    let res = reqwest::get(app.url("/healthz")).await.unwrap();
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
}

#[tokio::test]
async fn healthz_answers_503_within_two_seconds_while_the_database_does_not_answer() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Arc::new(store::SqliteStore::open(&sqlite_url(&dir), Arc::new(store::secrets::Keyring::ephemeral())).await.unwrap());
    let app = spawn_app_on(sqlite.clone(), dir).await;
    assert_eq!(reqwest::get(app.url("/healthz")).await.unwrap().status(), 200);
    // Every connection of the pool taken and held: the database stops answering, the way a
    // PostgreSQL server that went away does (a new connection waits out the acquire timeout).
    let pool = sqlite.pool();
    let mut held = Vec::new();
    while let Ok(Ok(conn)) = tokio::time::timeout(Duration::from_millis(500), pool.acquire()).await {
        held.push(conn);
    }
    assert!(!held.is_empty());
    let client = reqwest::Client::builder().timeout(Duration::from_secs(8)).build().unwrap();
    let started = Instant::now();
    let res = client.get(app.url("/healthz")).send().await.expect("an answer, not a hang");
    let took = started.elapsed();
    assert_eq!(res.status(), 503);
    assert!(took < Duration::from_secs(2), "answered after {took:?}");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    drop(held);
    assert_eq!(reqwest::get(app.url("/healthz")).await.unwrap().status(), 200, "healthy again once it answers");
}

#[tokio::test]
async fn a_signed_in_persons_404_page_renders_the_app_not_an_error() {
    let app = spawn_app().await;
    for email in ["alice@northwind.test", "admin@northwind.test"] {
        let client = app.signed_in(email).await;
        let res = client.get(app.url("/no-such-page")).header("accept", "text/html").send().await.unwrap();
        assert_eq!(res.status(), 404);
        let html = res.text().await.unwrap();
        assert!(!html.contains("Something went wrong"), "{html}");
        assert!(html.contains("</html>"), "a whole page: {html}");
    }
}

#[tokio::test]
async fn metrics_count_requests_by_matched_route() {
    let app = spawn_app().await;
    for _ in 0..3 {
        reqwest::get(app.url("/healthz")).await.unwrap();
    }
    reqwest::get(app.url("/login")).await.unwrap();
    let text = reqwest::get(app.url("/metrics")).await.unwrap().text().await.unwrap();
    assert!(text.contains("http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 3"), "{text}");
    assert!(text.contains("http_requests_total{route=\"/login\",method=\"GET\",status=\"200\"} 1"), "{text}");
    assert!(text.contains("# TYPE http_request_duration_seconds histogram"));
}

#[tokio::test]
async fn the_sign_in_page_renders_without_javascript() {
    let app = spawn_app().await;
    let res = reqwest::get(app.url("/login")).await.unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("<h1>Sign in</h1>"));
    assert!(html.contains("name=\"email\""));
    assert!(html.contains("/pkg/i360.js"), "the page loads the hydration bundle");
    let res = reqwest::get(app.url("/no/such/page")).await.unwrap();
    assert_eq!(res.status(), 404);
}
