//! Microsoft's per app + mailbox limits under concurrent load.

use crate::helpers::*;
use m365_emulator::{FaultRule, ThrottleConfig};
use std::time::Duration;

#[tokio::test]
async fn more_than_four_concurrent_requests_per_mailbox_get_application_throttled() {
    let t = spawn().await;
    let at = user_token(&t, "alice@northwind.test").await;
    // Slow every request down so they overlap.
    t.emu.inject_fault(FaultRule { mailbox: Some("alice@northwind.test".into()), delay_ms: Some(400), count: 100, ..Default::default() });
    let mut handles = Vec::new();
    for _ in 0..10 {
        let http = t.http.clone();
        let url = format!("{}/me/mailFolders/inbox/messages/delta", t.emu.graph_base());
        let at = at.clone();
        handles.push(tokio::spawn(async move {
            let r = http.get(url).bearer_auth(at).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.text().await.unwrap())
        }));
    }
    let mut ok = 0;
    let mut throttled = 0;
    for h in handles {
        let (status, body) = h.await.unwrap();
        match status {
            200 => ok += 1,
            429 => {
                throttled += 1;
                assert_graph_error_shape(&body, "ApplicationThrottled");
                assert!(body.contains("Application is over its MailboxConcurrency limit."));
            }
            s => panic!("unexpected {s}: {body}"),
        }
    }
    assert_eq!(ok, 4, "exactly four in flight");
    assert_eq!(throttled, 6);
    let c = t.emu.counters();
    let m = c.mailbox("alice@northwind.test").unwrap();
    assert_eq!(m.max_concurrency, 5, "the fifth arrival is seen (and refused)");
    assert_eq!(m.throttled, 6);
    assert_eq!(c.throttled, 6);
    // Another mailbox is unaffected meanwhile.
    let bob = user_token(&t, "bob@northwind.test").await;
    assert_eq!(graph(&t, &bob, "/me/mailFolders/inbox/messages/delta", &[]).await.status, 200);
    t.emu.shutdown().await;
}

#[tokio::test]
async fn request_rate_limit_answers_too_many_requests_with_retry_after() {
    let t = spawn_with(|c| {
        c.throttling = ThrottleConfig { max_requests_per_window: 5, window: Duration::from_secs(2), ..ThrottleConfig::default() }
    })
    .await;
    let at = user_token(&t, "carol@northwind.test").await;
    for _ in 0..5 {
        assert_eq!(graph(&t, &at, "/me/mailFolders", &[]).await.status, 200);
    }
    let r = graph(&t, &at, "/me/mailFolders", &[]).await;
    assert_eq!(r.status, 429);
    assert_graph_error_shape(&r.text.replace(",\"innerError\":{\"code\":\"429\",", ",\"innerError\":{"), "TooManyRequests");
    assert_eq!(r.body["error"]["message"], "Please retry again later.");
    assert_eq!(r.body["error"]["innerError"]["code"], "429");
    let retry: f64 = r.headers.get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
    assert!(retry > 0.0 && retry <= 2.0, "{retry}");
    // Retrying at once is noted as an early retry.
    assert_eq!(graph(&t, &at, "/me/mailFolders", &[]).await.status, 429);
    assert!(t.emu.counters().mailbox("carol@northwind.test").unwrap().retried_before_retry_after);
    // Waiting out Retry-After lets requests through again; /me (directory) is not mailbox-throttled.
    tokio::time::sleep(Duration::from_secs_f64(retry + 0.1)).await;
    assert_eq!(graph(&t, &at, "/me/mailFolders", &[]).await.status, 200);
    assert_eq!(graph(&t, &at, "/me", &[]).await.status, 200);
    t.emu.shutdown().await;
}

#[tokio::test]
async fn throttling_can_be_switched_off() {
    let t = spawn_with(|c| c.throttling = ThrottleConfig::disabled()).await;
    let at = user_token(&t, "alice@northwind.test").await;
    t.emu.inject_fault(FaultRule { delay_ms: Some(300), count: 8, ..Default::default() });
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let http = t.http.clone();
            let url = format!("{}/me/mailFolders", t.emu.graph_base());
            let at = at.clone();
            tokio::spawn(async move { http.get(url).bearer_auth(at).send().await.unwrap().status().as_u16() })
        })
        .collect();
    for h in handles {
        assert_eq!(h.await.unwrap(), 200);
    }
    assert_eq!(t.emu.counters().mailbox("alice@northwind.test").unwrap().max_concurrency, 8);
    t.emu.shutdown().await;
}
