//! The edge (issue 13, items 10 and 11): slow and surplus connections, security headers, the
//! `/metrics` endpoint, request ids, escaped callback errors, and the session cookie's name and
//! idle timeout. Served through the server's own accept loop ([`server::edge::serve`]).

use crate::helpers::{TestApp, enable_demo_integration, location, session_cookie_of, spawn_app, spawn_app_configured};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn host(app: &TestApp) -> &str {
    app.base.trim_start_matches("http://")
}

/// Reads until the server closes the connection or `limit` passes; returns what it sent and
/// whether it closed.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
        }
    }
}

#[tokio::test]
async fn a_request_head_sent_a_byte_at_a_time_is_cut_at_the_header_timeout() {
    let app = spawn_app_configured(|c| c.edge.limits.header_read_timeout = Duration::from_secs(1)).await;
    let mut stream = TcpStream::connect(host(&app)).await.unwrap();
    let started = Instant::now();
    let head = format!("GET /healthz HTTP/1.1\r\nHost: {}\r\nX-Slow: ", host(&app));
    stream.write_all(head.as_bytes()).await.unwrap();
    // A slowloris: one more header byte every 300 ms, never the end of the head.
    let mut closed = false;
    for _ in 0..20 {
        if stream.write_all(b"a").await.is_err() {
            closed = true;
            break;
        }
        let (_, gone) = read_until_closed(&mut stream, Duration::from_millis(300)).await;
        if gone {
            closed = true;
            break;
        }
    }
    assert!(closed, "the connection was still open after {:?}", started.elapsed());
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(4), "closed after {took:?}");

    // A connection that sends its head in time is served.
    let res = reqwest::get(app.url("/healthz")).await.unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let app = spawn_app_configured(|c| c.edge.limits.max_connections = 2).await;
    let first = TcpStream::connect(host(&app)).await.unwrap();
    let _second = TcpStream::connect(host(&app)).await.unwrap();
    let mut third = TcpStream::connect(host(&app)).await.unwrap();
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", host(&app));
    third.write_all(request.as_bytes()).await.unwrap();
    let (answer, _) = read_until_closed(&mut third, Duration::from_millis(800)).await;
    assert_eq!(answer, "", "two connections are open: the third is not served");
    drop(first);
    let (answer, closed) = read_until_closed(&mut third, Duration::from_secs(5)).await;
    assert!(closed && answer.starts_with("HTTP/1.1 200"), "served once a slot freed: {answer:?}");
}

fn header<'a>(res: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    res.headers().get(name).and_then(|v| v.to_str().ok())
}

fn assert_security_headers(res: &reqwest::Response, what: &str) {
    let csp = header(res, "content-security-policy").unwrap_or_else(|| panic!("{what}: no CSP"));
    for directive in ["default-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "base-uri 'self'", "form-action 'self'"] {
        assert!(csp.contains(directive), "{what}: {directive} missing from {csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert_eq!(header(res, "x-content-type-options"), Some("nosniff"), "{what}");
    assert_eq!(header(res, "x-frame-options"), Some("DENY"), "{what}");
    assert_eq!(header(res, "referrer-policy"), Some("same-origin"), "{what}");
}

#[tokio::test]
async fn every_response_carries_the_security_headers_and_a_page_its_scripts_nonce() {
    let app = spawn_app().await;
    let client = app.client();
    let page = client.get(app.url("/login")).send().await.unwrap();
    assert_security_headers(&page, "page");
    assert_eq!(header(&page, "strict-transport-security"), None, "no HSTS over http");
    let csp = header(&page, "content-security-policy").unwrap().to_owned();
    let nonce = csp.split("'nonce-").nth(1).and_then(|rest| rest.split('\'').next()).expect("a nonce in the page's policy").to_owned();
    assert!(csp.contains(&format!("form-action 'self' {}", app.emu.login_base().trim_end_matches('/'))), "Microsoft's sign-in: {csp}");
    let html = page.text().await.unwrap();
    assert!(html.contains(&format!("nonce=\"{nonce}\"")), "the hydration script carries the nonce:\n{html}");

    let again = client.get(app.url("/login")).send().await.unwrap();
    assert!(!header(&again, "content-security-policy").unwrap().contains(&nonce), "a fresh nonce for every page");
    for path in ["/healthz", "/metrics", "/no-such-page", "/pkg/i360.css"] {
        assert_security_headers(&client.get(app.url(path)).send().await.unwrap(), path);
    }
    let refused = client.post(app.url("/api/load_activity")).header("sec-fetch-site", "same-origin").send().await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_security_headers(&refused, "a refused server function");
}

#[tokio::test]
async fn hsts_is_sent_only_when_the_public_url_is_https() {
    let app = spawn_app_configured(|c| c.public_url = "https://i360.example".into()).await;
    let res = reqwest::get(app.url("/healthz")).await.unwrap();
    assert_security_headers(&res, "https");
    assert_eq!(header(&res, "strict-transport-security"), Some("max-age=31536000"));
}

#[tokio::test]
async fn invented_methods_are_counted_as_other() {
    let app = spawn_app().await;
    let client = reqwest::Client::new();
    for method in ["BREW", "PROPFIND", "X-RANDOM-1"] {
        let res = client.request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), app.url("/healthz")).send().await.unwrap();
        assert_eq!(res.status(), 405, "{method}");
    }
    let text = client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("http_requests_total{route=\"/healthz\",method=\"OTHER\",status=\"405\"} 3"), "{text}");
    assert!(!text.contains("BREW") && !text.contains("PROPFIND"), "{text}");
}

#[tokio::test]
async fn metrics_behind_a_token_answer_only_the_bearer() {
    let app = spawn_app_configured(|c| c.edge.metrics_token = Some("scrape-me-0123456789".to_owned().into())).await;
    let client = reqwest::Client::new();
    let metrics = |token: Option<&'static str>| {
        let mut req = client.get(app.url("/metrics"));
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        async move { req.send().await.unwrap() }
    };
    let none = metrics(None).await;
    assert_eq!(none.status(), 401);
    assert_eq!(header(&none, "www-authenticate"), Some("Bearer"));
    assert_eq!(metrics(Some("scrape-me-0123456788")).await.status(), 401);
    let ok = metrics(Some("scrape-me-0123456789")).await;
    assert_eq!(ok.status(), 200);
    assert!(ok.text().await.unwrap().contains("http_requests_total"));
    assert_eq!(client.get(app.url("/healthz")).send().await.unwrap().status(), 200, "health checks need no token");
}

#[tokio::test]
async fn metrics_on_their_own_bind_leave_the_app_without_them() {
    let seen = Arc::new(Mutex::new(None));
    let app = spawn_app_configured({
        let seen = seen.clone();
        move |c| {
            c.edge.metrics_bind = Some("127.0.0.1:0".parse().unwrap());
            *seen.lock().unwrap() = Some(c.clone());
        }
    })
    .await;
    let config = seen.lock().unwrap().take().unwrap();
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let metrics = Arc::new(server::metrics::Metrics::default());
    let bound =
        server::http::serve_metrics_apart(app.store.clone(), app.scheduler.clone(), &config, metrics, stopped).await.unwrap().unwrap();
    assert_eq!(reqwest::get(app.url("/metrics")).await.unwrap().status(), 404, "not beside the app");
    let res = reqwest::get(format!("http://{bound}/metrics")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("sync_items_upserted_total"));
    assert_eq!(reqwest::get(format!("http://{bound}/healthz")).await.unwrap().status(), 404, "only /metrics there");
}

#[tokio::test]
async fn a_clients_request_id_is_kept_only_when_well_formed() {
    let app = spawn_app().await;
    let client = reqwest::Client::new();
    let id_for = |sent: String| {
        let req = client.get(app.url("/healthz")).header("x-request-id", sent);
        async move { header(&req.send().await.unwrap(), "x-request-id").unwrap().to_owned() }
    };
    assert_eq!(id_for("lb-7f3a.09_X".into()).await, "lb-7f3a.09_X");
    for bad in ["has spaces".to_owned(), "a".repeat(65), "quote\"d".to_owned(), "semi;colon".to_owned()] {
        let given = id_for(bad.clone()).await;
        assert_ne!(given, bad);
        assert!(uuid::Uuid::parse_str(&given).is_ok(), "{bad:?} replaced by a fresh id, got {given:?}");
    }
}

/// Log lines written while `run` runs on this thread (the test's runtime is single-threaded, so
/// the server's tasks log here too).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_callbacks_error_text_is_escaped_in_the_log() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer({
            let captured = captured.clone();
            move || captured.clone()
        })
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let app = spawn_app().await;
    enable_demo_integration(app.store.as_ref()).await;
    let member = app.signed_in("bob@northwind.test").await;
    let res = member.post(app.url("/oauth/office365/start")).form(&[("purpose", "connect")]).send().await.unwrap();
    let to_microsoft = reqwest::Url::parse(&location(&res)).unwrap();
    let state = to_microsoft.query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    let forged = "access_denied%0A2026-01-01T00:00:00Z  INFO forged: admin signed in";
    let back = format!("/oauth/office365/callback?error={forged}&error_description=nope%0D%0AINFO+forged+too&state={state}");
    let res = member.get(app.url(&back)).send().await.unwrap();
    assert!(location(&res).starts_with("/connect/result?"), "{}", location(&res));

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let line = log.lines().find(|l| l.contains("Microsoft returned an error to the callback")).unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains(r"access_denied\n2026-01-01T00:00:00Z  INFO forged"), "{line}");
    assert!(line.contains(r"nope\r\nINFO forged too"), "{line}");
    assert!(!log.lines().any(|l| l.starts_with("2026-01-01") || l.starts_with("INFO forged")), "a forged line:\n{log}");
}

#[tokio::test]
async fn with_an_https_public_url_the_session_cookie_is_host_prefixed() {
    let app = spawn_app_configured(|c| c.public_url = "https://i360.example".into()).await;
    let res = reqwest::Client::new()
        .post(app.url("/api/login"))
        .header("sec-fetch-site", "same-origin")
        .form(&[("email", "alice@northwind.test"), ("password", server::demo::MEMBER_PASSWORD)])
        .send()
        .await
        .unwrap();
    let set = res.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).find(|v| v.contains("i360_session")).unwrap();
    assert!(set.starts_with("__Host-i360_session=") && set.contains("; Secure") && set.contains("Path=/"), "{set}");
    assert!(!set.contains("Domain"), "{set}");
    let own = set.split(';').next().unwrap().to_owned();
    let value = own.split_once('=').unwrap().1.to_owned();
    let activity = |cookie: String| {
        let req =
            reqwest::Client::new().post(app.url("/api/load_activity")).header("cookie", cookie).header("sec-fetch-site", "same-origin");
        async move { req.send().await.unwrap().status() }
    };
    assert_ne!(activity(own.clone()).await, 401, "the __Host- cookie signs in");
    assert_eq!(activity(format!("i360_session={value}")).await, 401, "the plain name is not this deployment's");
    assert_eq!(activity(format!("{own}; i360_session={value}")).await, 401, "both names: two session cookies");
}

#[tokio::test]
async fn a_session_unused_past_its_idle_timeout_is_refused_and_purged() {
    let app = spawn_app_configured(|c| c.session_idle_timeout = Duration::from_secs(600)).await;
    let cookie = session_cookie_of(&app.base, "alice@northwind.test").await;
    let token = store::SessionToken::from_cookie(cookie.split_once('=').unwrap().1).unwrap().hash();
    let now = store::now_unix();
    assert!(app.store.session_user(&token, now + 30).await.unwrap().is_some(), "used within the idle timeout");
    assert!(app.store.session_user(&token, now + 601).await.unwrap().is_none(), "unused for the configured 10 minutes");

    // Each use (recorded at most once a minute) starts the idle timeout over.
    let alice = app.store.user_credentials(&domain::EmailAddress::parse("alice@northwind.test").unwrap()).await.unwrap().unwrap().user;
    let (used, idle) = (store::SessionToken::generate(), store::SessionToken::generate());
    app.store.start_session(&alice, &used.hash(), now - 100, now + 3600, 150).await.unwrap();
    app.store.start_session(&alice, &idle.hash(), now - 100, now + 3600, 60).await.unwrap();
    let activity = |token: &store::SessionToken| {
        let req = reqwest::Client::new()
            .post(app.url("/api/load_activity"))
            .header("cookie", format!("i360_session={}", token.as_cookie_value()))
            .header("sec-fetch-site", "same-origin");
        async move { req.send().await.unwrap().status() }
    };
    assert_eq!(activity(&idle).await, 401, "idle for 100 s of its 60");
    assert_ne!(activity(&used).await, 401, "idle for 100 s of its 150");
    assert!(app.store.session_user(&used.hash(), now + 100).await.unwrap().is_some(), "its use just now counts");
    assert_eq!(server::housekeeping::sweep(&app.store).await.unwrap(), 1, "the idle session is purged");
    assert!(app.store.session_user(&used.hash(), now + 100).await.unwrap().is_some(), "the used one is kept");
}

/// The `server` binary itself, as an operator starts it (no demo), with `args` added; killed when
/// dropped.
struct Binary {
    child: std::process::Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Binary {
    fn start(args: &[&str]) -> Binary {
        use std::io::BufRead as _;
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
            .args(["--bind", "127.0.0.1:0", "--database-url"])
            .arg(format!("sqlite://{}", dir.path().join("app.db").display()))
            .arg("--key-file")
            .arg(dir.path().join("secrets.key"))
            .arg("--site-root")
            .arg(dir.path().join("site"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Its output is read to the end (it keeps logging), the address taken from it.
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if let Some(url) = line.split("Intelligence360 is running at ").nth(1) {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let base = rx.recv_timeout(Duration::from_secs(60)).expect("the server printed its address");
        Binary { child, base, _dir: dir }
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn the_binary_closes_a_slow_connection_after_its_header_read_timeout() {
    let server = Binary::start(&["--header-read-timeout", "1"]);
    let host = server.base.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&host).await.unwrap();
    let started = Instant::now();
    stream.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nX-Slow: ").as_bytes()).await.unwrap();
    let mut closed = false;
    for _ in 0..20 {
        if stream.write_all(b"a").await.is_err() || read_until_closed(&mut stream, Duration::from_millis(300)).await.1 {
            closed = true;
            break;
        }
    }
    let took = started.elapsed();
    assert!(closed && took < Duration::from_secs(4), "still open after {took:?}");
    assert_eq!(reqwest::get(format!("{}/healthz", server.base)).await.unwrap().status(), 200);
}
