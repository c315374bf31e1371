//! What a failed server function sends the browser: a code and the words to show. It is built on
//! the server only from the application layer's one error type (`office365::Error`), which
//! decides the code, the words and so the HTTP status; internal details are logged there under
//! the request id the message quotes, never serialized.
//!
//! On the wire it is `{"code":"forbidden","message":"Only admins can do this. …"}`, so a script
//! calling a server function directly gets the same plain words as the page.

pub use domain::ErrorCode;
use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    pub code: ErrorCode,
    pub message: String,
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        AppError { code: ErrorCode::Transport, message: format!("The request could not be completed: {value}") }
    }
}

#[cfg(feature = "ssr")]
mod ssr {
    use super::AppError;

    impl From<office365::Error> for AppError {
        /// Sets the HTTP status of the current response from the error's code, and words it for
        /// the user (quoting the request id for our own faults).
        fn from(err: office365::Error) -> Self {
            let code = err.code();
            if let (Some(res), Ok(status)) =
                (leptos::prelude::use_context::<leptos_axum::ResponseOptions>(), axum::http::StatusCode::from_u16(code.status()))
            {
                res.set_status(status);
            }
            AppError { code, message: err.user_message(&crate::state::error_reference()) }
        }
    }

    impl From<store::StoreError> for AppError {
        fn from(err: store::StoreError) -> Self {
            office365::Error::from(err).into()
        }
    }
}
