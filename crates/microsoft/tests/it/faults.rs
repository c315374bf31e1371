//! Microsoft being slow, down or throttling: transient reasons, with Retry-After honoured.

use crate::helpers::*;
use domain::ReasonCode;
use m365_emulator::FaultRule;
use microsoft::{Endpoints, MailboxRef, MicrosoftClient, MicrosoftError, Timeouts};
use std::time::Duration;

fn fault(route: &str, status: Option<u16>, retry_after: Option<f64>, delay_ms: Option<u64>) -> FaultRule {
    FaultRule { route: Some(route.to_string()), status, retry_after, delay_ms, count: 1, ..FaultRule::default() }
}

#[tokio::test]
async fn graph_throttling_carries_retry_after_and_outages_are_transient() {
    let env = spawn().await;
    env.emu.grant_admin_consent(NW, m365_emulator::DEMO_CLIENT_ID, &[], &["Mail.Read"]).unwrap();
    let token = env.client.client_credentials(&app(NW)).await.unwrap().access_token;
    let alice = MailboxRef::User("alice@northwind.test".into());

    env.emu.inject_fault(fault("mailFolders/inbox", Some(429), Some(2.5), None));
    let err = env.client.probe_mailbox(&token, &alice).await.unwrap_err();
    assert_eq!(err.reason, ReasonCode::Throttled);
    assert_eq!(err.retry_after, Some(Duration::from_millis(2500)));
    assert!(err.reason.is_transient());

    env.emu.inject_fault(fault("mailFolders/inbox", Some(503), None, None));
    let err = env.client.probe_mailbox(&token, &alice).await.unwrap_err();
    assert_eq!((err.status, err.reason), (Some(503), ReasonCode::MicrosoftUnavailable));

    // After the faults, the same call works.
    env.client.probe_mailbox(&token, &alice).await.unwrap();
    env.emu.shutdown().await;
}

#[tokio::test]
async fn token_endpoint_outages_and_timeouts_are_microsoft_unavailable() {
    let env = spawn().await;
    env.emu.inject_fault(fault("/oauth2/v2.0/token", Some(503), Some(1.0), None));
    let err = env.client.client_credentials(&app(NW)).await.unwrap_err();
    assert_eq!(err.reason(), ReasonCode::MicrosoftUnavailable, "{err:?}");
    assert_eq!(err.aad().unwrap().retry_after, Some(Duration::from_secs(1)));

    let impatient = MicrosoftClient::with_timeouts(
        endpoints(&env.emu),
        Timeouts { connect: Duration::from_secs(1), request: Duration::from_millis(300) },
    )
    .unwrap();
    env.emu.inject_fault(fault("/oauth2/v2.0/token", None, None, Some(2_000)));
    let err = impatient.client_credentials(&app(NW)).await.unwrap_err();
    assert!(matches!(err, MicrosoftError::Unavailable { status: None, .. }), "{err:?}");
    assert_eq!(err.reason(), ReasonCode::MicrosoftUnavailable);
    assert!(!err.to_string().contains("demo-client-secret"));
    env.emu.shutdown().await;
}

#[tokio::test]
async fn nothing_listening_is_microsoft_unavailable() {
    // Bind then drop a listener to get a port nobody serves.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let client = MicrosoftClient::new(Endpoints::parse(&base, &format!("{base}/v1.0")).unwrap()).unwrap();
    let err = client.client_credentials(&app(NW)).await.unwrap_err();
    assert_eq!(err.reason(), ReasonCode::MicrosoftUnavailable);
    let err = client.me(&secret("t")).await.unwrap_err();
    assert_eq!((err.status, err.reason), (None, ReasonCode::MicrosoftUnavailable));
}
