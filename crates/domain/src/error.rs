//! What kind of failure a request ended in, as the browser sees it. The application layer decides
//! the kind; the HTTP status follows from it here, in one place, for routes and server functions
//! alike.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// No session: sign in again.
    Unauthorized,
    /// Signed in, but this needs an admin.
    Forbidden,
    /// The thing asked about does not exist (any more) in the caller's organization.
    NotFound,
    /// Input the user can fix; the message says how.
    Invalid,
    /// The integration is not in a state that allows this; someone must act first (the message
    /// says who).
    Conflict,
    /// Too many attempts; wait.
    RateLimited,
    /// Microsoft is unavailable or throttling; it is retried, nothing was lost.
    Unavailable,
    /// The request itself could not be read (a missing or malformed argument, a body that is not
    /// UTF-8): the caller's fault, not the user's, so there are no words to fix it with.
    BadRequest,
    /// The request body is larger than the server accepts.
    TooLarge,
    /// Our fault; logged with the request id the message quotes.
    Internal,
    /// The request never reached a server function (the browser's side).
    Transport,
}

impl ErrorCode {
    /// The HTTP status of a response that fails with this code.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict => 409,
            ErrorCode::TooLarge => 413,
            ErrorCode::Invalid => 422,
            ErrorCode::RateLimited => 429,
            ErrorCode::Unavailable => 503,
            ErrorCode::Internal | ErrorCode::Transport => 500,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn only_our_own_faults_are_5xx_besides_microsoft_being_unavailable() {
        let user_side = [
            ErrorCode::BadRequest,
            ErrorCode::TooLarge,
            ErrorCode::Unauthorized,
            ErrorCode::Forbidden,
            ErrorCode::NotFound,
            ErrorCode::Invalid,
            ErrorCode::Conflict,
            ErrorCode::RateLimited,
        ];
        assert!(user_side.iter().all(|c| (400..500).contains(&c.status())));
        assert_eq!(ErrorCode::Unavailable.status(), 503);
        assert_eq!(ErrorCode::Internal.status(), 500);
    }
}
