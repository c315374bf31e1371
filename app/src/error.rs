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

    /// On the server this is reached only before the function runs: its arguments could not be
    /// read from the request. That is the caller's fault (400, or 413 for a body over the limit),
    /// never ours, so it is not logged as an error. In the browser it is a transport failure.
    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        let code = request_fault(&value).unwrap_or(ErrorCode::Transport);
        #[cfg(feature = "ssr")]
        ssr::set_status(code);
        let message = match code {
            ErrorCode::BadRequest => format!("The request could not be read: {value}"),
            ErrorCode::TooLarge => "The request is too large.".to_owned(),
            _ => format!("The request could not be completed: {value}"),
        };
        AppError { code, message }
    }
}

/// The kind of a server-function error that the request itself caused, if it is one: arguments
/// missing or malformed, and (on the server, where it means reading the request body) a body that
/// is not UTF-8 or is over the size limit.
fn request_fault(value: &ServerFnErrorErr) -> Option<ErrorCode> {
    match value {
        ServerFnErrorErr::Args(_) | ServerFnErrorErr::MissingArg(_) => Some(ErrorCode::BadRequest),
        // In the browser, `Deserialization` is about the server's answer; on the server, the request.
        ServerFnErrorErr::Deserialization(detail) if cfg!(feature = "ssr") => {
            Some(if detail.contains("length limit exceeded") { ErrorCode::TooLarge } else { ErrorCode::BadRequest })
        }
        _ => None,
    }
}

#[cfg(feature = "ssr")]
mod ssr {
    use super::{AppError, ErrorCode};

    /// Sets the HTTP status of the current server-function response from `code`.
    pub(super) fn set_status(code: ErrorCode) {
        if let (Some(res), Ok(status)) =
            (leptos::prelude::use_context::<leptos_axum::ResponseOptions>(), axum::http::StatusCode::from_u16(code.status()))
        {
            res.set_status(status);
        }
    }

    impl From<office365::Error> for AppError {
        /// Sets the HTTP status of the current response from the error's code, and words it for
        /// the user (quoting the request id for our own faults).
        fn from(err: office365::Error) -> Self {
            let code = err.code();
            set_status(code);
            AppError { code, message: err.user_message(&crate::state::error_reference()) }
        }
    }

    impl From<store::StoreError> for AppError {
        fn from(err: store::StoreError) -> Self {
            office365::Error::from(err).into()
        }
    }
}
