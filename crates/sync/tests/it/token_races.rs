//! Two instances refreshing one connection's tokens at once (item 4 of the hardening issue): the
//! per-process refresh lock does not keep them apart, the version of the stored tokens does.
//!
//! The token endpoint is reached through a small proxy that makes refresh tokens single-use (a
//! refresh token presented a second time is refused with `invalid_grant`, as an identity platform
//! with strict rotation does) and orders the two racing answers, so both interleavings are tested:
//! the winner saves before the loser hears of its refusal, and the loser hears (and marks the
//! connection) before the winner saves.

use crate::harness::*;
use microsoft::{Endpoints, ExposeSecret, MicrosoftClient, SecretString, Timeouts};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use sync::{Engine, TokenKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Order {
    /// The winner's answer (a rotated refresh token) arrives, and is saved, before the loser's refusal.
    WinnerSavesFirst,
    /// The loser's refusal arrives first (it marks the connection), the winner's answer after.
    LoserHearsFirst,
}

struct Proxy {
    /// Where the emulator listens (`http://host:port`).
    upstream: String,
    order: Order,
    http: reqwest::Client,
    used: std::sync::Mutex<HashSet<String>>,
    /// The first refresh is held back until the second one (presenting the same refresh token)
    /// has arrived, so the two really race; later ones pass straight through.
    race_armed: AtomicBool,
    second_arrived: Notify,
    refused: AtomicUsize,
    winner_answered: Notify,
    loser_answered: Notify,
}

impl Proxy {
    async fn start(upstream: String, order: Order) -> (Arc<Proxy>, String) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let proxy = Arc::new(Proxy {
            upstream,
            order,
            http: reqwest::Client::new(),
            used: std::sync::Mutex::new(HashSet::new()),
            race_armed: AtomicBool::new(true),
            second_arrived: Notify::new(),
            refused: AtomicUsize::new(0),
            winner_answered: Notify::new(),
            loser_answered: Notify::new(),
        });
        let me = proxy.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let me = me.clone();
                tokio::spawn(async move { me.serve(socket).await });
            }
        });
        (proxy, format!("http://{addr}"))
    }

    async fn serve(&self, mut socket: TcpStream) {
        // One request per connection (answered with `connection: close`).
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            let n = socket.read(&mut chunk).await.unwrap();
            if n == 0 {
                return;
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let length = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap()))
            .unwrap_or(0);
        while buf.len() < head_end + length {
            let n = socket.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the request body was cut short");
            buf.extend_from_slice(&chunk[..n]);
        }
        let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).to_string();
        let mut request_line = head.lines().next().unwrap().split(' ');
        let (method, path) = (request_line.next().unwrap().to_string(), request_line.next().unwrap().to_string());
        let form: Vec<(String, String)> = reqwest::Url::parse(&format!("http://form/?{body}"))
            .unwrap()
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let refresh = (field("grant_type").as_deref() == Some("refresh_token")).then(|| field("refresh_token")).flatten();

        let (status, answer) = match refresh {
            Some(rt) if !self.used.lock().unwrap().insert(rt.clone()) => {
                self.second_arrived.notify_one();
                // Presented before: refused, after the winner's answer when that is the order.
                if self.order == Order::WinnerSavesFirst {
                    let _ = tokio::time::timeout(Duration::from_secs(5), self.winner_answered.notified()).await;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                self.refused.fetch_add(1, Ordering::SeqCst);
                let refusal = serde_json::json!({
                    "error": "invalid_grant",
                    "error_description": "AADSTS70000: Provided grant is invalid or malformed. The refresh token was already used.",
                    "error_codes": [70000],
                    "timestamp": "2025-01-01 00:00:00Z",
                    "trace_id": "00000000-0000-0000-0000-000000000000",
                    "correlation_id": "00000000-0000-0000-0000-000000000000"
                });
                self.write(&mut socket, 400, &refusal.to_string()).await;
                self.loser_answered.notify_one();
                return;
            }
            Some(_) => {
                let first = self.race_armed.swap(false, Ordering::SeqCst);
                if first {
                    // Without this, a slow second instance may read the rotated token the first
                    // one already saved, and there is no race to test.
                    let _ = tokio::time::timeout(Duration::from_secs(5), self.second_arrived.notified()).await;
                }
                let forwarded = self.forward(&method, &path, &body).await;
                if first && self.order == Order::LoserHearsFirst {
                    let _ = tokio::time::timeout(Duration::from_secs(5), self.loser_answered.notified()).await;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                forwarded
            }
            None => self.forward(&method, &path, &body).await,
        };
        self.write(&mut socket, status, &answer).await;
        self.winner_answered.notify_one();
    }

    async fn forward(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = self
            .http
            .request(method, format!("{}{path}", self.upstream))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    async fn write(&self, socket: &mut TcpStream, status: u16, body: &str) {
        let head = format!(
            "HTTP/1.1 {status} {}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            if status == 200 { "OK" } else { "Bad Request" },
            body.len()
        );
        socket.write_all(head.as_bytes()).await.unwrap();
        socket.write_all(body.as_bytes()).await.unwrap();
        socket.shutdown().await.unwrap();
    }
}

async fn two_instances_refresh_at_once(order: Order) {
    let env = spawn().await;
    let (_, conn) = env.connect(ALICE, true).await;
    let login = reqwest::Url::parse(&env.emu.login_base()).unwrap();
    let upstream = format!("{}://{}", login.scheme(), login.host_str().zip(login.port()).map(|(h, p)| format!("{h}:{p}")).unwrap());
    let (proxy, proxy_base) = Proxy::start(upstream, order).await;
    let authority = format!("{proxy_base}{}", login.path().trim_end_matches('/'));
    let client = MicrosoftClient::with_timeouts(
        Endpoints::parse(&authority, &env.emu.graph_base()).unwrap(),
        Timeouts { connect: Duration::from_secs(2), request: Duration::from_secs(15) },
    )
    .unwrap();
    let before = env.store.connection_tokens(conn).await.unwrap().unwrap();

    // Two instances (engines with their own token sources) refresh the same tokens at once.
    let a = Engine::new(env.store.clone(), client.clone(), test_config("instance-a"));
    let b = Engine::new(env.store.clone(), client.clone(), test_config("instance-b"));
    let kind = TokenKind::Delegated { connection: conn };
    let (ra, rb) = tokio::join!(a.tokens().access_token(kind, true), b.tokens().access_token(kind, true));
    assert_eq!(proxy.refused.load(Ordering::SeqCst), 1, "the two refreshes raced on one refresh token");
    assert!(ra.is_ok() || rb.is_ok(), "{:?} / {:?}", ra.err(), rb.err());
    if order == Order::WinnerSavesFirst {
        // The loser's refusal came after the winner saved: it uses the winner's tokens.
        assert!(ra.is_ok() && rb.is_ok(), "{:?} / {:?}", ra.err(), rb.err());
    }

    // Nothing lost: the connection is active, with the rotated refresh token the winner got...
    let after = env.store.connection_tokens(conn).await.unwrap().unwrap();
    assert!(!after.needs_attention, "a refusal of an already rotated refresh token marked the connection ({order:?})");
    assert_ne!(after.refresh_token.as_ref().unwrap().expose_secret(), before.refresh_token.as_ref().unwrap().expose_secret());
    assert!(after.version > before.version);
    // ...which a third instance can use, and which Microsoft still accepts (never presented yet).
    let c = Engine::new(env.store.clone(), client.clone(), test_config("instance-c"));
    c.tokens().access_token(kind, false).await.unwrap();
    let stored = SecretString::from(after.refresh_token.as_ref().unwrap().expose_secret().to_string());
    client.refresh(&app(), &stored, None).await.unwrap();
    assert_eq!(proxy.refused.load(Ordering::SeqCst), 1);
    env.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_refreshes_lose_no_rotation_when_the_winner_saves_first() {
    two_instances_refresh_at_once(Order::WinnerSavesFirst).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_refreshes_lose_no_rotation_when_the_loser_hears_first() {
    two_instances_refresh_at_once(Order::LoserHearsFirst).await;
}

/// A reconnect while a refresh of the old grant is in flight: the refresh's tokens are not saved
/// over the new grant, and the instance goes on with the new grant's tokens.
#[tokio::test]
async fn a_refresh_in_flight_during_a_reconnect_keeps_the_new_grant() {
    let env = spawn().await;
    let (_, conn) = env.connect(ALICE, true).await;
    let stale = env.store.connection_tokens(conn).await.unwrap().unwrap();
    // The refresh of the old grant got its answer from Microsoft...
    let rt = SecretString::from(stale.refresh_token.as_ref().unwrap().expose_secret().to_string());
    let fresh = env.client.refresh(&app(), &rt, None).await.unwrap();
    // ...meanwhile the owner reconnected (a new grant)...
    let (_, again) = env.connect(ALICE, true).await;
    assert_eq!(again, conn);
    let granted = env.store.connection_tokens(conn).await.unwrap().unwrap();
    // ...and the refresh's save, from the version it read, writes nothing.
    let access = store::secrets::SecretString::from(fresh.access_token.expose_secret().to_string());
    let saved =
        env.store.save_refreshed_tokens(conn, stale.version, &access, fresh.expires_at.unix_timestamp(), None, store::now_unix()).await;
    assert!(!saved.unwrap(), "the old grant's refresh overwrote the new grant");
    let now = env.store.connection_tokens(conn).await.unwrap().unwrap();
    assert_eq!(now.access_token.expose_secret(), granted.access_token.expose_secret());
    assert_eq!(now.refresh_token.as_ref().unwrap().expose_secret(), granted.refresh_token.as_ref().unwrap().expose_secret());
    env.emu.shutdown().await;
}

/// A refused credential of the deployment's own app registration is reported as the operator's to
/// fix, not as the organization's client secret; an organization's own registration keeps its words.
#[tokio::test]
async fn a_refused_deployment_credential_is_the_operators_not_the_settings_page_secret() {
    let env = spawn().await;
    env.settings(|s| {
        s.mode = domain::permissions::ConnectionMode::ApplicationPermissions;
        s.own_app = false;
        s.pinned_tenant = Some(NW.into());
    })
    .await;
    let wrong = sync::DeploymentApp {
        client_id: m365_emulator::DEPLOYMENT_CLIENT_ID.into(),
        credential: microsoft::ClientCredential::Secret(SecretString::from("not-the-deployment-secret")),
    };
    let engine = env.engine(sync::SyncConfig { deployment_app: Some(wrong), ..test_config("deployment") });
    let e = engine.tokens().access_token(TokenKind::App { org: env.org }, false).await.unwrap_err();
    assert_eq!(e.reason(), domain::ReasonCode::DeploymentCredentialRejected, "{e}");

    env.settings(|s| s.own_app = true).await;
    env.store
        .save_office365_settings(env.org, &env.store.office365_settings(env.org).await.unwrap(), Some(&SecretString::from("wrong")), &[])
        .await
        .unwrap();
    let e = engine.tokens().access_token(TokenKind::App { org: env.org }, true).await.unwrap_err();
    assert_eq!(e.reason(), domain::ReasonCode::ClientSecretInvalid, "{e}");
}

/// A cached app-only token belongs to the app registration and tenant it came from: after the
/// organization switches to the deployment's app, the old registration's token is not handed out.
#[tokio::test]
async fn an_app_only_token_is_not_reused_after_the_app_registration_changes() {
    let env = spawn().await;
    env.settings(|s| s.mode = domain::permissions::ConnectionMode::ApplicationPermissions).await;
    let wrong = sync::DeploymentApp {
        client_id: m365_emulator::DEPLOYMENT_CLIENT_ID.into(),
        credential: microsoft::ClientCredential::Secret(SecretString::from("not-the-deployment-secret")),
    };
    let engine = env.engine(sync::SyncConfig { deployment_app: Some(wrong), ..test_config("switch") });
    let app = TokenKind::App { org: env.org };
    let own = engine.tokens().access_token(app, false).await;
    assert!(own.is_ok(), "the organization's own registration gets a token: {own:?}");
    let before = env.store.office365_settings(env.org).await.unwrap();
    env.settings(|s| {
        s.own_app = false;
        s.pinned_tenant = Some(NW.into());
    })
    .await;
    let after = engine.tokens().access_token(app, false).await;
    assert!(after.is_err(), "the own registration's cached token must not stand in for the deployment app's");

    // A run takes the token cached for the registration its settings name, and no other.
    let run_before = engine.tokens().access_token_as_of(app, &before, false).await.expect("the run that began before the change");
    assert_eq!(run_before.expose_secret(), own.unwrap().expose_secret());
    let now_settings = env.store.office365_settings(env.org).await.unwrap();
    let run_after = engine.tokens().access_token_as_of(app, &now_settings, false).await;
    assert!(run_after.is_err(), "a run under the new settings asks for the deployment app's token");
}
