//! The one error type server functions return. It carries only what a user may see: a code, a
//! message and, for unexpected failures, the request id to quote to support. Internal details are
//! logged on the server with that id and never serialized to the browser.
//!
//! On the wire it is `{"code":"forbidden","message":"Only admins can do this. …"}`, so a script
//! calling a server function directly gets the same plain words as the page.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    Unauthorized,
    Forbidden,
    Invalid,
    RateLimited,
    Internal,
    Transport,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    pub code: ErrorCode,
    pub message: String,
}

impl AppError {
    pub fn unauthorized() -> AppError {
        AppError { code: ErrorCode::Unauthorized, message: "Your session has ended. Sign in again to continue.".into() }
    }

    pub fn forbidden() -> AppError {
        AppError { code: ErrorCode::Forbidden, message: "Only admins can do this. Ask an admin of your organization.".into() }
    }

    /// Something the user can fix; the message says how.
    pub fn invalid(message: impl Into<String>) -> AppError {
        AppError { code: ErrorCode::Invalid, message: message.into() }
    }

    pub fn rate_limited(message: impl Into<String>) -> AppError {
        AppError { code: ErrorCode::RateLimited, message: message.into() }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        AppError { code: ErrorCode::Transport, message: format!("The request could not be completed: {value}") }
    }
}

#[cfg(feature = "ssr")]
mod ssr {
    use super::{AppError, ErrorCode};
    use axum::http::StatusCode;

    impl AppError {
        pub fn status(&self) -> StatusCode {
            match self.code {
                ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
                ErrorCode::Forbidden => StatusCode::FORBIDDEN,
                ErrorCode::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::Internal | ErrorCode::Transport => StatusCode::INTERNAL_SERVER_ERROR,
            }
        }

        /// Logs `err` under the request id and returns the message users see (with that id).
        pub fn internal(err: impl std::fmt::Display) -> AppError {
            let reference = crate::state::error_reference();
            tracing::error!(reference = %reference, error = %err, "internal error");
            AppError {
                code: ErrorCode::Internal,
                message: format!(
                    "Something went wrong on our side. Try again; if it keeps happening, contact support and quote {reference}."
                ),
            }
            .respond()
        }

        /// Sets the HTTP status of the current response to match, then returns `self`.
        pub fn respond(self) -> AppError {
            if let Some(res) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
                res.set_status(self.status());
            }
            self
        }
    }

    impl From<store::StoreError> for AppError {
        fn from(err: store::StoreError) -> Self {
            AppError::internal(err)
        }
    }
}
