//! Microsoft's change-notification and lifecycle-notification endpoints (MICROSOFT.md §4.3): the
//! validation handshake, then each POST handed to the workflow and answered 202. Microsoft posts
//! without a session or an origin, so these routes sit outside `/api/`.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use microsoft::NotificationUrls;
use serde::Deserialize;

/// Where Microsoft posts change notifications.
pub const NOTIFICATION_PATH: &str = "/webhooks/microsoft/notifications";
/// Where Microsoft posts lifecycle notifications.
pub const LIFECYCLE_PATH: &str = "/webhooks/microsoft/lifecycle";

/// The longest `validationToken` echoed (Microsoft's are about 150 characters).
const MAX_VALIDATION_TOKEN: usize = 1024;

/// The notification URLs of a deployment, when Microsoft can reach them: an https public URL; or
/// an http one on this machine when Graph is on this machine too (the emulator of the demo and the
/// tests delivers to loopback). Otherwise why not, in one line for Connection Settings and the log.
pub fn notification_urls(public_url: &str, graph: &str) -> Result<NotificationUrls, String> {
    let url = url::Url::parse(public_url).map_err(|_| format!("the public URL {public_url:?} is not a URL"))?;
    let loopback = |u: &url::Url| match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    let graph_is_local = url::Url::parse(graph).is_ok_and(|g| loopback(&g));
    let reachable = url.scheme() == "https" || (url.scheme() == "http" && loopback(&url) && graph_is_local);
    if !reachable {
        return Err(format!("the public URL {public_url} is not https, so Microsoft cannot deliver change notifications to it"));
    }
    let base = public_url.trim_end_matches('/');
    Ok(NotificationUrls { notification: format!("{base}{NOTIFICATION_PATH}"), lifecycle: format!("{base}{LIFECYCLE_PATH}") })
}

#[derive(Deserialize)]
pub struct Validation {
    #[serde(rename = "validationToken")]
    validation_token: Option<String>,
}

/// `POST {NOTIFICATION_PATH}`.
pub async fn changes(State(integration): State<office365::Integration>, Query(q): Query<Validation>, body: Bytes) -> Response {
    if let Some(token) = q.validation_token {
        return echo(token);
    }
    match integration.receive_change_notifications(&body).await {
        Ok(_) => StatusCode::ACCEPTED.into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST {LIFECYCLE_PATH}`.
pub async fn lifecycle(State(integration): State<office365::Integration>, Query(q): Query<Validation>, body: Bytes) -> Response {
    if let Some(token) = q.validation_token {
        return echo(token);
    }
    match integration.receive_lifecycle_notifications(&body).await {
        Ok(_) => StatusCode::ACCEPTED.into_response(),
        Err(e) => e.into_response(),
    }
}

/// The handshake: the decoded token back as `text/plain`, within Microsoft's 10 seconds.
fn echo(token: String) -> Response {
    if token.len() > MAX_VALIDATION_TOKEN {
        return (StatusCode::BAD_REQUEST, "validationToken is too long.").into_response();
    }
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; charset=utf-8"), (header::X_CONTENT_TYPE_OPTIONS, "nosniff")], token)
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microsoft_must_be_able_to_reach_the_urls() {
        let graph = "https://graph.microsoft.com/v1.0";
        let ok = notification_urls("https://i360.example/", graph).unwrap();
        assert_eq!(ok.notification, "https://i360.example/webhooks/microsoft/notifications");
        assert_eq!(ok.lifecycle, "https://i360.example/webhooks/microsoft/lifecycle");
        assert!(notification_urls("http://i360.example", graph).unwrap_err().contains("not https"));
        assert!(notification_urls("http://127.0.0.1:3000", graph).is_err(), "real Microsoft cannot reach loopback");
        let emulator = "http://127.0.0.1:4365/v1.0";
        assert!(notification_urls("http://127.0.0.1:3000", emulator).is_ok(), "the local emulator can");
        assert!(notification_urls("http://localhost:3000", "http://[::1]:4365/v1.0").is_ok());
        assert!(notification_urls("http://10.0.0.5:3000", emulator).is_err(), "not on this machine");
        assert!(notification_urls("not a url", emulator).is_err());
    }
}
