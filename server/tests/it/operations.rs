use crate::helpers::spawn_app;

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
