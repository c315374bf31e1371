//! Session tokens: 256 random bits in the cookie, only their SHA-256 in the database.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fmt;

/// The session cookie's name. `HttpOnly` keeps it from scripts; `SameSite=Lax` (not `Strict`)
/// because the OAuth callback is a top-level navigation from Microsoft's site and must still carry
/// the session.
pub const SESSION_COOKIE: &str = "i360_session";

/// The secret a browser holds in its session cookie. Debug output is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

/// What the database keeps for a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionTokenHash(pub [u8; 32]);

impl SessionToken {
    pub fn generate() -> SessionToken {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        SessionToken(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Accepts a cookie value; anything that cannot be one of ours is refused before any lookup.
    pub fn from_cookie(value: &str) -> Option<SessionToken> {
        let decoded = URL_SAFE_NO_PAD.decode(value).ok()?;
        (decoded.len() == 32).then(|| SessionToken(value.to_owned()))
    }

    /// Our session token among a request's `Cookie` header values, if it carries exactly one. Two
    /// session cookies mean someone planted one beside ours (a sibling subdomain can set a cookie
    /// for this host): neither is trusted, and the request is treated as signed out.
    pub fn from_cookie_headers<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<SessionToken> {
        let mut ours = values
            .into_iter()
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .filter(|(name, _)| *name == SESSION_COOKIE)
            .map(|(_, value)| value);
        let (Some(value), None) = (ours.next(), ours.next()) else { return None };
        SessionToken::from_cookie(value)
    }

    pub fn as_cookie_value(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> SessionTokenHash {
        SessionTokenHash(Sha256::digest(self.0.as_bytes()).into())
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_round_trip_through_the_cookie() {
        let a = SessionToken::generate();
        let b = SessionToken::generate();
        assert_ne!(a, b);
        let back = SessionToken::from_cookie(a.as_cookie_value()).unwrap();
        assert_eq!(back.hash(), a.hash());
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn a_request_with_two_session_cookies_has_none() {
        let (a, b) = (SessionToken::generate(), SessionToken::generate());
        let one = format!("theme=dark; {SESSION_COOKIE}={}", a.as_cookie_value());
        assert_eq!(SessionToken::from_cookie_headers([one.as_str()]), Some(a.clone()));
        let planted = format!("{SESSION_COOKIE}={}", b.as_cookie_value());
        assert_eq!(SessionToken::from_cookie_headers([one.as_str(), planted.as_str()]), None, "two header lines");
        let both = format!("{one}; {planted}");
        assert_eq!(SessionToken::from_cookie_headers([both.as_str()]), None, "one line");
    }

    #[test]
    fn foreign_cookie_values_are_refused() {
        assert!(SessionToken::from_cookie("").is_none());
        assert!(SessionToken::from_cookie("not base64!").is_none());
        assert!(SessionToken::from_cookie("c2hvcnQ").is_none());
    }
}
