//! What a server function or an OAuth callback gets that it cannot read is the caller's fault: a
//! 4xx (400, 413 for a body over the limit), never a 5xx; and a visitor is turned away with 401
//! before anything they sent is decoded.

use crate::helpers::{TestApp, session_cookie_of, spawn_app, status_for_announced_body};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// A raw POST to a server function, the way a script (not the page) might send it.
async fn post(app: &TestApp, client: &reqwest::Client, endpoint: &str, content_type: &str, body: Vec<u8>) -> reqwest::Response {
    client
        .post(app.url(&format!("/api/{endpoint}")))
        .header("accept", "application/json")
        .header("sec-fetch-site", "same-origin")
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

const FORM: &str = "application/x-www-form-urlencoded";

async fn code_of(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    let body: serde_json::Value = res.json().await.unwrap_or_default();
    (status, body["code"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn missing_fields_invalid_utf8_and_garbage_are_400() {
    let app = spawn_app().await;
    let visitor = app.client();
    let admin = app.signed_in("admin@northwind.test").await;
    let invalid_utf8 = b"email=\xff\xfe\xfd&password=\xc3\x28".to_vec();
    let cases: [(&reqwest::Client, &str, &str, Vec<u8>); 9] = [
        (&visitor, "login", FORM, b"email=alice%40northwind.test".to_vec()),
        (&visitor, "login", FORM, invalid_utf8.clone()),
        (&visitor, "login", "application/json", br#"{"email": "alice@northwind.test", "password": "#.to_vec()),
        (&admin, "load_activity", FORM, b"kind=&q=".to_vec()),
        (&admin, "load_activity", FORM, b"kind=&q=&page=minus-one&member=".to_vec()),
        (&admin, "load_activity", FORM, invalid_utf8.clone()),
        (&admin, "save_office365_settings", FORM, b"form[enabled]=maybe&confirm_poll_primary=".to_vec()),
        (&admin, "save_office365_settings", "application/json", b"\x00\x01{[}".to_vec()),
        (&admin, "remove_service_account_user", FORM, b"%zz=%zz".to_vec()),
    ];
    for (client, endpoint, content_type, body) in cases {
        let shown = String::from_utf8_lossy(&body).into_owned();
        let (status, code) = code_of(post(&app, client, endpoint, content_type, body).await).await;
        assert_eq!((status, code.as_str()), (400, "bad_request"), "{endpoint} {shown:?}");
    }
    // A well-formed call still works.
    assert_eq!(app.call(&admin, "load_activity", &[("kind", ""), ("q", ""), ("page", "0"), ("member", "")]).await.status(), 200);
}

#[tokio::test]
async fn visitors_get_401_before_their_arguments_are_read() {
    let app = spawn_app().await;
    let visitor = app.client();
    for (endpoint, body) in [
        ("load_activity", b"\xff\xfe".to_vec()),
        ("save_office365_settings", b"garbage".to_vec()),
        ("add_service_account_user", Vec::new()),
        ("load_my_connection", b"{".to_vec()),
    ] {
        let (status, code) = code_of(post(&app, &visitor, endpoint, FORM, body).await).await;
        assert_eq!((status, code.as_str()), (401, "unauthorized"), "{endpoint}");
    }
    // A cookie that names no session is no better than none.
    let res = visitor
        .post(app.url("/api/load_activity"))
        .header("cookie", "i360_session=not-a-session")
        .header("sec-fetch-site", "same-origin")
        .body("\u{0}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // The public functions are reachable without a session.
    let me = app.call(&visitor, "current_user", &[]).await;
    assert_eq!(me.status(), 200);
    assert_eq!(app.call(&visitor, "login", &[("email", "x@y.test"), ("password", "wrong-wrong")]).await.status(), 422);
}

#[tokio::test]
async fn a_12_mb_body_is_413() {
    let app = spawn_app().await;
    let admin = session_cookie_of(&app.base, "admin@northwind.test").await;
    const TWELVE_MB: usize = 12 * 1024 * 1024;
    for (path, cookie) in
        [("/api/login", None), ("/api/add_service_account_user", Some(admin.as_str())), ("/oauth/office365/start", Some(&admin))]
    {
        let status = status_for_announced_body(&app.base, path, cookie, TWELVE_MB).await;
        assert_eq!(status, "HTTP/1.1 413 Payload Too Large", "{path}");
    }
    // Just under the limit is read (and refused for what it says, not for its size).
    let body = format!("email={}&password=x", "a".repeat(server::http::MAX_BODY_BYTES - 100));
    let res = post(&app, &app.client(), "login", FORM, body.into_bytes()).await;
    assert!(res.status().is_client_error() && res.status() != 413, "{}", res.status());
}

#[tokio::test]
async fn a_12_mb_body_without_a_length_is_413_too() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    let host = app.base.trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(&host).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let head = format!(
        "POST /api/login HTTP/1.1\r\nHost: {host}\r\nContent-Type: {FORM}\r\nAccept: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    // Written while the answer is read: the server answers once it has read past the limit, and
    // may close before the whole body is sent.
    let writer = tokio::spawn(async move {
        write.write_all(head.as_bytes()).await?;
        let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "a".repeat(64 * 1024));
        for _ in 0..(12 * 16) {
            write.write_all(chunk.as_bytes()).await?;
        }
        write.write_all(b"0\r\n\r\n").await
    });
    let mut answer = [0u8; 64];
    let mut got = 0;
    while got < 12 {
        match read.read(&mut answer[got..]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    let answer = String::from_utf8_lossy(&answer[..got]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:?}");
    writer.abort();
}

/// Query strings a callback might get from anyone: random text, the real parameter names with
/// random values, invalid percent-escapes, repeated and huge parameters.
fn query_strategy() -> impl Strategy<Value = String> {
    let names = prop::sample::select(vec![
        "code",
        "state",
        "error",
        "error_description",
        "error_subcode",
        "session_state",
        "admin_consent",
        "tenant",
        "scope",
        "client_info",
    ]);
    let value = prop_oneof![
        "[ -~]{0,40}",
        "(%[0-9a-zA-Z]{0,2}){1,10}",
        Just("AADSTS65004%3a+declined".to_owned()),
        (1usize..8_000).prop_map(|n| "x".repeat(n)),
    ];
    let pairs = prop::collection::vec((names, value), 0..12)
        .prop_map(|pairs| pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&"));
    prop_oneof![pairs, "[ -~]{0,300}", "[&=%]{0,50}"]
}

/// Bodies for a server function: random bytes (mostly not UTF-8), form-ish text, JSON-ish text.
fn body_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..1024),
        "[a-z_\\[\\]=&%0-9.@-]{0,200}".prop_map(String::into_bytes),
        "[\\[\\]{}\":, a-z0-9]{0,200}".prop_map(String::into_bytes),
    ]
}

const FUZZED_FNS: [&str; 7] = [
    "login",
    "save_office365_settings",
    "add_service_account_user",
    "remove_service_account_user",
    "load_activity",
    "disconnect_team_connection",
    "sync_team_connection_now",
];

#[test]
fn random_callbacks_and_bodies_never_get_a_5xx_and_store_nothing() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let (app, admin, visitor) = rt.block_on(async {
        let app = spawn_app().await;
        let admin = app.signed_in("admin@northwind.test").await;
        let visitor = app.client();
        (app, admin, visitor)
    });
    let org = rt.block_on(app.store.organization_by_name(server::demo::ORG_NAME)).unwrap().unwrap().id;
    let mut runner = TestRunner::new(Config { cases: 96, failure_persistence: None, ..Config::default() });
    let strategy = (query_strategy(), body_strategy(), prop::sample::select(FUZZED_FNS.to_vec()), any::<bool>());
    runner
        .run(&strategy, |(query, body, endpoint, as_json)| {
            rt.block_on(async {
                for path in ["/oauth/office365/callback", "/oauth/office365/admin-consent"] {
                    for client in [&admin, &visitor] {
                        let res = client.get(format!("{}?{query}", app.url(path))).send().await.unwrap();
                        prop_assert!(res.status().as_u16() < 500, "{path}?{query}: {}", res.status());
                    }
                }
                let content_type = if as_json { "application/json" } else { FORM };
                for client in [&admin, &visitor] {
                    let res = post(&app, client, endpoint, content_type, body.clone()).await;
                    let status = res.status().as_u16();
                    prop_assert!(status < 500, "{endpoint} {:?}: {status} {}", String::from_utf8_lossy(&body), res.text().await.unwrap());
                }
                Ok::<(), TestCaseError>(())
            })
        })
        .unwrap();
    rt.block_on(async {
        assert!(app.store.audit_log(org, 10).await.unwrap().is_empty(), "nothing was recorded");
        assert!(app.store.connections_in_org(org).await.unwrap().is_empty());
        assert!(app.store.service_account_users(org).await.unwrap().is_empty());
        assert!(!app.store.office365_settings(org).await.unwrap().enabled);
        assert!(app.store.admin_consent(org).await.unwrap().granted.is_none());
    });
}
