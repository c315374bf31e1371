//! The `server` binary run as its own process, as an operator runs it: stopped with SIGTERM (what
//! systemd and Kubernetes send) or Ctrl-C, and watched through its log lines.

use crate::helpers::location;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `server --demo` (its own emulator in-process on a free port) on a fresh SQLite file,
/// logging JSON lines.
struct Server {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    /// Reads the process's output into `lines`; done once the process has exited.
    reader: Option<std::thread::JoinHandle<()>>,
    base: String,
    emulator: String,
    db_url: String,
    key_file: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start(shutdown_timeout_secs: u64) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let db_url = format!("sqlite://{}", dir.path().join("app.db").display());
        let key_file = dir.path().join("secrets.key");
        let mut child = Command::new(env!("CARGO_BIN_EXE_server"))
            .args(["--log-format", "json", "--demo", "--bind", "127.0.0.1:0", "--emulator-bind", "127.0.0.1:0"])
            .arg("--database-url")
            .arg(&db_url)
            .arg("--key-file")
            .arg(&key_file)
            .arg("--site-root")
            .arg(dir.path().join("site"))
            .env("I360_SHUTDOWN_TIMEOUT", shutdown_timeout_secs.to_string())
            .env("RUST_LOG", "info,sqlx=warn,tower_http=info,leptos=warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().unwrap();
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut server =
            Server { child, lines, reader: Some(reader), base: String::new(), emulator: String::new(), db_url, key_file, _dir: dir };
        let started = Instant::now();
        while server.base.is_empty() || server.emulator.is_empty() {
            assert!(started.elapsed() < Duration::from_secs(60), "the server did not start:\n{}", server.log());
            assert!(server.child.try_wait().unwrap().is_none(), "the server exited:\n{}", server.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
            for line in server.lines.lock().unwrap().iter() {
                if let Some(url) = line.split("Intelligence360 is running at ").nth(1) {
                    server.base = url.trim().to_owned();
                }
                if let Some(url) = line.split("(plays Microsoft for the demo) at ").nth(1) {
                    server.emulator = url.trim().to_owned();
                }
            }
        }
        server
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn log(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    fn signal(&self, name: &str) {
        let ok = Command::new("kill").args(["-s", name, &self.child.id().to_string()]).status().unwrap().success();
        assert!(ok, "kill -s {name}");
    }

    /// Waits up to `limit` for the process to exit.
    async fn exit_within(&mut self, limit: Duration) -> (ExitStatus, Duration) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let took = started.elapsed();
                // Every line it wrote, the last ones included.
                if let Some(reader) = self.reader.take() {
                    reader.join().unwrap();
                }
                return (status, took);
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                panic!("still running {limit:?} after the signal:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The same database and key file, opened from the test.
    async fn store(&self) -> store::DynStore {
        let keyring = Arc::new(store::secrets::Keyring::load(&self.key_file).unwrap());
        store::open(&self.db_url, keyring).await.unwrap()
    }

    async fn signed_in(&self, email: &str) -> reqwest::Client {
        let client = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let password = if email.starts_with("admin@") { server::demo::ADMIN_PASSWORD } else { server::demo::MEMBER_PASSWORD };
        let res = client
            .post(self.url("/api/login"))
            .header("sec-fetch-site", "same-origin")
            .form(&[("email", email), ("password", password)])
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success() || res.status().is_redirection(), "sign-in: {}", res.status());
        client
    }

    /// Makes the emulator answer matching requests only after `delay_ms` (its control API).
    async fn delay(&self, rule: serde_json::Value) {
        let res = reqwest::Client::new().post(format!("{}/_emulator/faults", self.emulator)).json(&rule).send().await.unwrap();
        assert!(res.status().is_success(), "fault rule refused: {}", res.status());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Sends the browser through Microsoft's (the emulator's) pages for `purpose` and returns the
/// callback URL it comes back to.
async fn through_microsoft(server: &Server, client: &reqwest::Client, purpose: &str, email: &str) -> String {
    let res = client
        .post(server.url("/oauth/office365/start"))
        .header("sec-fetch-site", "same-origin")
        .form(&[("purpose", purpose)])
        .send()
        .await
        .unwrap();
    let to_microsoft = location(&res);
    assert!(to_microsoft.starts_with(&server.emulator), "{to_microsoft}");
    m365_emulator::testkit::sign_in(&to_microsoft, email).await.unwrap().as_str().to_owned()
}

#[tokio::test]
async fn sigterm_finishes_requests_in_flight_stops_the_workers_and_hands_their_leases_back() {
    const DRAIN_SECS: u64 = 5;
    let mut server = Server::start(DRAIN_SECS).await;
    let store = server.store().await;
    let org = crate::helpers::enable_demo_integration(store.as_ref()).await;

    // The admin activates; Microsoft then answers the sync's delta requests only after a minute,
    // so the worker holds its lease when the signal comes.
    server.delay(serde_json::json!({ "route": "delta", "delay_ms": 60_000, "count": 100_000 })).await;
    let admin = server.signed_in("admin@northwind.test").await;
    let back = through_microsoft(&server, &admin, "activate", "admin@northwind.test").await;
    let res = admin.get(&back).send().await.unwrap();
    assert_eq!(location(&res), "/settings/integrations/office365/my-connection", "{}", server.log());
    let started = Instant::now();
    loop {
        let leased = store.sync_mailboxes_in_org(org).await.unwrap().into_iter().filter(|m| m.lease_owner.is_some()).count();
        if leased > 0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no worker took the mailbox:\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A member's connect callback is in flight (Microsoft's token endpoint answers after 1.5 s)
    // when SIGTERM arrives.
    let alice = server.signed_in("alice@northwind.test").await;
    let back = through_microsoft(&server, &alice, "connect", "alice@northwind.test").await;
    server.delay(serde_json::json!({ "route": "/oauth2/v2.0/token", "delay_ms": 1_500, "count": 10 })).await;
    let in_flight = tokio::spawn({
        let alice = alice.clone();
        async move { alice.get(&back).send().await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.signal("TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fresh = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
    assert!(fresh.get(server.url("/healthz")).send().await.is_err(), "no new connections once shutting down");

    let res = in_flight.await.unwrap().expect("the request in flight is answered, not cut");
    assert_eq!(location(&res), "/profile", "the connect went through");
    let (status, took) = server.exit_within(Duration::from_secs(DRAIN_SECS + 5)).await;
    assert_eq!(status.code(), Some(0), "{status:?}\n{}", server.log());
    assert!(took < Duration::from_secs(DRAIN_SECS), "exited {took:?} after the signal");
    let mailboxes = store.sync_mailboxes_in_org(org).await.unwrap();
    assert_eq!(mailboxes.len(), 2, "{mailboxes:?}");
    assert!(mailboxes.iter().all(|m| m.lease_owner.is_none()), "every lease handed back: {mailboxes:?}");
    assert!(server.log().contains("SIGTERM"), "the shutdown is logged:\n{}", server.log());
}

#[tokio::test]
async fn malformed_bodies_log_no_error_and_ctrl_c_stops_the_server_cleanly() {
    let mut server = Server::start(10).await;
    let admin = server.signed_in("admin@northwind.test").await;
    let visitor = reqwest::Client::new();
    let cookie = crate::helpers::session_cookie_of(&server.base, "admin@northwind.test").await;
    for (path, cookie) in [("/api/login", None), ("/api/load_activity", Some(cookie.as_str()))] {
        let status = crate::helpers::status_for_announced_body(&server.base, path, cookie, 12 * 1024 * 1024).await;
        assert_eq!(status, "HTTP/1.1 413 Payload Too Large", "{path}");
    }
    for client in [&admin, &visitor] {
        for (endpoint, body) in [
            ("login", b"email=nobody%40northwind.test".to_vec()),
            ("login", b"email=\xff\xfe&password=\xc3\x28".to_vec()),
            ("load_activity", b"kind=&q=".to_vec()),
            ("load_activity", b"\xff".to_vec()),
            ("save_office365_settings", b"{\"form\":".to_vec()),
        ] {
            let res = client
                .post(server.url(&format!("/api/{endpoint}")))
                .header("sec-fetch-site", "same-origin")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            assert!((400..500).contains(&status), "{endpoint}: {status}");
        }
    }
    server.signal("INT");
    let (status, _) = server.exit_within(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0), "{status:?}");
    let log = server.log();
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("\"level\":\"ERROR\"")).collect();
    assert!(errors.is_empty(), "no ERROR lines for bad requests:\n{}", errors.join("\n"));
    assert!(log.contains("SIGINT"), "the shutdown is logged:\n{log}");
}

impl Server {
    /// Waits up to 10 s for a log line containing `text`.
    async fn logged(&self, text: &str) {
        let started = Instant::now();
        while !self.log().contains(text) {
            assert!(started.elapsed() < Duration::from_secs(10), "no log line with {text:?}:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `server keys <args>` on this server's database and key file.
    fn keys(&self, args: &[&str]) -> String {
        crate::helpers::keys_command(&self.db_url, &self.key_file, args)
    }
}

#[tokio::test]
async fn sighup_reloads_the_key_file_so_a_promoted_key_seals_without_a_restart() {
    let mut server = Server::start(10).await;
    let store = server.store().await;
    crate::helpers::enable_demo_integration(store.as_ref()).await;

    // Phase 1, distributed: the server holds key 2 and still seals with key 1.
    server.keys(&["add"]);
    server.signal("HUP");
    server.logged("key file reloaded: keys 1,2; current 1").await;
    // Phase 2: the re-sealed client secret is under key 2, which the server already holds.
    assert!(server.keys(&["promote"]).contains("key 2 is now current; re-sealed 1 stored secrets"));
    server.signal("HUP");
    server.logged("key file reloaded: keys 1,2; current 2").await;

    // Alice connects: the server opens the client secret and seals her tokens with key 2, so a
    // re-seal finds nothing left under key 1.
    let alice = server.signed_in("alice@northwind.test").await;
    let back = through_microsoft(&server, &alice, "connect", "alice@northwind.test").await;
    let res = alice.get(&back).send().await.unwrap();
    assert_eq!(location(&res), "/profile", "{}", server.log());
    assert!(server.keys(&["reseal"]).contains("re-sealed 0 stored secrets with key 2"), "{}", server.log());
    assert!(!server.log().contains("a stored secret was sealed with key"), "SIGHUP gave the key, not a failed open:\n{}", server.log());
    assert!(server.child.try_wait().unwrap().is_none(), "SIGHUP does not stop the server");
    server.signal("TERM");
    let (status, _) = server.exit_within(Duration::from_secs(15)).await;
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[tokio::test]
async fn a_running_server_keeps_opening_secrets_when_a_key_is_added_and_promoted_without_a_reload() {
    let server = Server::start(10).await;
    let store = server.store().await;
    let org = crate::helpers::enable_demo_integration(store.as_ref()).await;
    // The admin's connection: tokens sealed by the server with key 1.
    let admin = server.signed_in("admin@northwind.test").await;
    let back = through_microsoft(&server, &admin, "activate", "admin@northwind.test").await;
    assert_eq!(location(&admin.get(&back).send().await.unwrap()), "/settings/integrations/office365/my-connection");

    // Both phases while the server runs, with no SIGHUP: the client secret and the admin's tokens
    // are re-sealed with key 2, which the server has never read.
    assert!(server.keys(&["add"]).contains("added key 2"));
    let said = server.keys(&["promote"]);
    assert!(said.contains("key 2 is now current; re-sealed"), "{said}");
    assert!(!said.contains("re-sealed 0 "), "{said}");

    // Alice's connect needs the client secret: the server meets key 2, reads the file again and opens it.
    let alice = server.signed_in("alice@northwind.test").await;
    let back = through_microsoft(&server, &alice, "connect", "alice@northwind.test").await;
    assert_eq!(location(&alice.get(&back).send().await.unwrap()), "/profile", "{}", server.log());
    server.logged("key file reloaded: keys 1,2; current 2 (a stored secret was sealed with key 2)").await;
    // The admin's tokens, re-sealed with key 2, still open for the server: after "Sync now" both
    // mailboxes (the admin's and Alice's) are synced, unpaused and due again later.
    let asked = store::now_unix();
    let res = admin.post(server.url("/api/sync_my_connection_now")).header("sec-fetch-site", "same-origin").send().await.unwrap();
    assert!(res.status().is_success(), "sync now: {}", res.status());
    let started = Instant::now();
    loop {
        let mailboxes = store.sync_mailboxes_in_org(org).await.unwrap();
        if mailboxes.len() == 2 && mailboxes.iter().all(|m| m.lease_owner.is_none() && m.next_due_at > asked) {
            assert!(mailboxes.iter().all(|m| m.paused.is_none()), "{mailboxes:?}\n{}", server.log());
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no sync after Sync now: {mailboxes:?}\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!server.log().contains("which is not in the key file"), "{}", server.log());
}
