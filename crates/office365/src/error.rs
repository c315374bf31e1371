//! The one error type at the application boundary. Every workflow returns it; it decides what a
//! user sees (the words, who must act), the kind of failure and so the HTTP status
//! ([`domain::ErrorCode::status`]), and where an OAuth navigation ends (`/connect/result`).
//! Internal details are logged, never shown.

use domain::{ErrorCode, ReasonCode, Refusal, WhoMustAct};
use microsoft::MicrosoftError;
use store::StoreError;
use sync::SyncError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Your session has ended. Sign in again to continue.")]
    Unauthorized,
    #[error("Only admins can do this. Ask an admin of your organization.")]
    Forbidden,
    /// What was asked about is not (or no longer) in the caller's organization.
    #[error("{0}")]
    NotFound(&'static str),
    /// Too many attempts (sign-in); the words say how long to wait.
    #[error("{0}")]
    RateLimited(String),
    /// Input the user can fix; the words say how.
    #[error("{0}")]
    Invalid(String),
    #[error("The service connection is not active yet. Activate it under My Connection first.")]
    NotActivated,
    /// Microsoft refused or failed; `code` is its AADSTS number when it gave one.
    #[error("{}", .reason.explained())]
    Microsoft { reason: ReasonCode, code: Option<u32> },
    /// The product turned an OAuth flow away before or after Microsoft.
    #[error("{} {}", .0.title(), .0.next_step())]
    Refused(Refusal),
    /// A write the organization's settings or Microsoft's grant do not allow.
    #[error("{}", .0.sentence())]
    WriteRefused(domain::WriteRefusal),
    /// Our fault. The text goes to the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn internal(err: impl std::fmt::Display) -> Error {
        Error::Internal(err.to_string())
    }

    pub fn microsoft(reason: ReasonCode) -> Error {
        Error::Microsoft { reason, code: None }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Unauthorized => ErrorCode::Unauthorized,
            Error::Forbidden | Error::Refused(Refusal::AdminsOnly) | Error::WriteRefused(_) => ErrorCode::Forbidden,
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::Invalid(_) => ErrorCode::Invalid,
            Error::RateLimited(_) => ErrorCode::RateLimited,
            Error::Microsoft { reason, .. } if reason.is_transient() => ErrorCode::Unavailable,
            Error::Microsoft { .. } | Error::NotActivated | Error::Refused(_) => ErrorCode::Conflict,
            Error::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The HTTP status, from [`Error::code`].
    pub fn status(&self) -> u16 {
        self.code().status()
    }

    pub fn who_must_act(&self) -> Option<WhoMustAct> {
        match self {
            Error::Microsoft { reason, .. } => Some(reason.who_must_act()),
            Error::NotActivated => Some(WhoMustAct::PlatformAdmin),
            _ => None,
        }
    }

    /// What the user reads. For our own faults it quotes `reference` (the request id), under
    /// which the details were logged.
    pub fn user_message(&self, reference: &str) -> String {
        match self {
            Error::Internal(detail) => {
                tracing::error!(reference = %reference, error = %detail, "internal error");
                format!("Something went wrong on our side. Try again; if it keeps happening, contact support and quote {reference}.")
            }
            other => other.to_string(),
        }
    }

    /// Where a browser navigation (an OAuth start or callback) that failed with this error ends:
    /// a page that says what happened and what to do next.
    pub fn result_page(&self) -> String {
        match self {
            Error::Unauthorized => "/login".to_owned(),
            Error::Microsoft { reason, code } => {
                let code = code.map(|c| format!("&code=AADSTS{c}")).unwrap_or_default();
                format!("/connect/result?reason={}{code}", reason.as_str())
            }
            Error::Internal(detail) => {
                tracing::error!(error = %detail, "OAuth route failed");
                refused(Refusal::Internal)
            }
            Error::Refused(r) => refused(*r),
            Error::Forbidden => refused(Refusal::AdminsOnly),
            Error::NotActivated => refused(Refusal::Internal),
            Error::NotFound(_) | Error::Invalid(_) | Error::RateLimited(_) | Error::WriteRefused(_) => refused(Refusal::Unknown),
        }
    }
}

fn refused(r: Refusal) -> String {
    format!("/connect/result?refused={}", r.as_str())
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => Error::Invalid(format!("{what} already exists.")),
            other => Error::internal(other),
        }
    }
}

impl From<MicrosoftError> for Error {
    fn from(e: MicrosoftError) -> Self {
        Error::Microsoft { reason: e.reason(), code: e.aad().and_then(|a| a.error_codes.first().copied()) }
    }
}

impl From<microsoft::GraphError> for Error {
    fn from(e: microsoft::GraphError) -> Self {
        Error::microsoft(e.reason)
    }
}

impl From<SyncError> for Error {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::Store(e) => e.into(),
            SyncError::Token(e) => e.into(),
            SyncError::Graph(e) => e.into(),
            // The settings lack a usable app registration: an Intelligence360 admin fixes it.
            SyncError::NotConfigured(_) => Error::microsoft(ReasonCode::AppNotFound),
            SyncError::LeaseLost => Error::internal("the sync lease was lost"),
            other => Error::microsoft(other.reason()),
        }
    }
}

#[cfg(feature = "axum")]
impl axum::response::IntoResponse for Error {
    /// `{"code":"forbidden","message":"…"}` with the status of its code; the same body a server
    /// function's error has.
    fn into_response(self) -> axum::response::Response {
        let status = axum::http::StatusCode::from_u16(self.status()).unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::json!({ "code": self.code(), "message": self.user_message("this request") });
        (status, axum::Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttled_or_vanished_request_is_not_reported_as_a_bad_secret() {
        let throttled: Error = SyncError::Throttled(0).into();
        assert_eq!(throttled.code(), ErrorCode::Unavailable);
        assert!(throttled.to_string().contains(ReasonCode::Throttled.message()));
        let store_down: Error = SyncError::Store(StoreError::Corrupt("x".into())).into();
        assert_eq!(store_down.code(), ErrorCode::Internal);
        assert!(!store_down.user_message("req-1").contains("secret"));
        assert!(store_down.user_message("req-1").contains("req-1"));
    }

    #[test]
    fn statuses_follow_the_code() {
        assert_eq!(Error::Forbidden.status(), 403);
        assert_eq!(Error::Refused(Refusal::AdminsOnly).status(), 403);
        assert_eq!(Error::Invalid("x".into()).status(), 422);
        assert_eq!(Error::NotFound("x").status(), 404);
        assert_eq!(Error::microsoft(ReasonCode::ClientSecretInvalid).status(), 409);
        assert_eq!(Error::microsoft(ReasonCode::MicrosoftUnavailable).status(), 503);
    }

    #[test]
    fn result_pages_carry_the_reason_and_microsofts_code() {
        let e = Error::Microsoft { reason: ReasonCode::AdminApprovalRequired, code: Some(90094) };
        assert_eq!(e.result_page(), format!("/connect/result?reason={}&code=AADSTS90094", ReasonCode::AdminApprovalRequired.as_str()));
        assert_eq!(Error::Refused(Refusal::Expired).result_page(), "/connect/result?refused=expired");
        assert_eq!(Error::internal("db down").result_page(), "/connect/result?refused=internal");
    }
}
