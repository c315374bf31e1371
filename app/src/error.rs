//! The one error type server functions return. It carries only what a user may see: a message and,
//! for unexpected failures, a request id to quote to support. Internal details are logged on the
//! server with that id and never serialized to the browser.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    #[error("Your session has ended. Sign in again to continue.")]
    Unauthorized,
    #[error("Only admins can do this. Ask an admin of your organization.")]
    Forbidden,
    #[error("{0}")]
    Invalid(String),
    #[error("Something went wrong on our side. Try again; if it keeps happening, contact support and quote {0}.")]
    Internal(String),
    #[error("The request could not be completed: {0}")]
    Transport(String),
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        AppError::Transport(value.to_string())
    }
}

#[cfg(feature = "ssr")]
mod ssr {
    use super::AppError;
    use axum::http::StatusCode;

    impl AppError {
        pub fn status(&self) -> StatusCode {
            match self {
                AppError::Unauthorized => StatusCode::UNAUTHORIZED,
                AppError::Forbidden => StatusCode::FORBIDDEN,
                AppError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
                AppError::Internal(_) | AppError::Transport(_) => StatusCode::INTERNAL_SERVER_ERROR,
            }
        }

        /// Logs `err` with a fresh reference and returns the message users see.
        pub fn internal(err: impl std::fmt::Display) -> AppError {
            let reference = crate::state::error_reference();
            tracing::error!(reference = %reference, error = %err, "internal error");
            AppError::Internal(reference)
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
            AppError::internal(err).respond()
        }
    }
}
