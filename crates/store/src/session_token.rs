//! Session tokens: 256 random bits in the cookie, only their SHA-256 in the database.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fmt;

/// The session cookie's name over plain http. `HttpOnly` keeps it from scripts; `SameSite=Lax`
/// (not `Strict`) because the OAuth callback is a top-level navigation from Microsoft's site and
/// must still carry the session.
pub const SESSION_COOKIE: &str = "i360_session";
/// The session cookie's name when cookies are `Secure` (an https public URL). Browsers accept a
/// `__Host-` cookie only when it is Secure, has `Path=/` and no `Domain`: a sibling subdomain or
/// a plain-http page cannot set or overwrite it.
pub const HOST_SESSION_COOKIE: &str = "__Host-i360_session";

/// The one rule for the session cookie, from the deployment's configuration: its name, the
/// `Set-Cookie` values that set and clear it, and the token it carries in a request. Everything
/// that reads or writes the cookie goes through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionCookie {
    secure: bool,
}

impl SessionCookie {
    /// `secure` when the public URL is https: the cookie is then `Secure` and `__Host-` prefixed.
    pub fn new(secure: bool) -> SessionCookie {
        SessionCookie { secure }
    }

    /// The rule for a deployment reached at `public_url`.
    pub fn for_public_url(public_url: &str) -> SessionCookie {
        SessionCookie::new(public_url.starts_with("https://"))
    }

    pub fn name(&self) -> &'static str {
        if self.secure { HOST_SESSION_COOKIE } else { SESSION_COOKIE }
    }

    /// The `Set-Cookie` value that gives the browser `token` for `max_age_secs`.
    pub fn set(&self, token: &SessionToken, max_age_secs: i64) -> String {
        self.header(token.as_cookie_value(), max_age_secs)
    }

    /// The `Set-Cookie` value that removes it.
    pub fn clear(&self) -> String {
        self.header("", 0)
    }

    fn header(&self, value: &str, max_age_secs: i64) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!("{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}", self.name())
    }

    /// Our session token among a request's `Cookie` header values, if it carries exactly one
    /// session cookie and that one has this deployment's name. Two session cookies (either name,
    /// twice, or both names) mean someone planted one beside ours (a sibling subdomain can set a
    /// cookie for this host): neither is trusted, and the request is treated as signed out.
    pub fn token_in<'a>(&self, cookie_headers: impl IntoIterator<Item = &'a str>) -> Option<SessionToken> {
        let mut ours = cookie_headers
            .into_iter()
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .filter(|(name, _)| *name == SESSION_COOKIE || *name == HOST_SESSION_COOKIE);
        let (Some((name, value)), None) = (ours.next(), ours.next()) else { return None };
        if name != self.name() {
            return None;
        }
        SessionToken::from_cookie(value)
    }
}

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
        let rule = SessionCookie::new(false);
        let one = format!("theme=dark; {SESSION_COOKIE}={}", a.as_cookie_value());
        assert_eq!(rule.token_in([one.as_str()]), Some(a.clone()));
        let planted = format!("{SESSION_COOKIE}={}", b.as_cookie_value());
        assert_eq!(rule.token_in([one.as_str(), planted.as_str()]), None, "two header lines");
        let both = format!("{one}; {planted}");
        assert_eq!(rule.token_in([both.as_str()]), None, "one line");
    }

    #[test]
    fn secure_cookies_are_host_prefixed_and_the_other_name_is_not_ours() {
        let token = SessionToken::generate();
        let (https, http) = (SessionCookie::for_public_url("https://i360.example"), SessionCookie::for_public_url("http://127.0.0.1:3000"));
        assert_eq!(https.name(), "__Host-i360_session");
        assert!(https.set(&token, 60).starts_with("__Host-i360_session="));
        assert!(https.set(&token, 60).ends_with("; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure"));
        assert!(https.clear().contains("Max-Age=0; Secure"));
        assert_eq!(http.name(), "i360_session");
        assert!(!http.set(&token, 60).contains("Secure"));
        let host = format!("{HOST_SESSION_COOKIE}={}", token.as_cookie_value());
        let plain = format!("{SESSION_COOKIE}={}", token.as_cookie_value());
        assert_eq!(https.token_in([host.as_str()]), Some(token.clone()));
        assert_eq!(https.token_in([plain.as_str()]), None, "a plain cookie may have been planted over http");
        assert_eq!(http.token_in([host.as_str()]), None);
        assert_eq!(https.token_in([format!("{host}; {plain}").as_str()]), None, "both names: two session cookies");
    }

    #[test]
    fn foreign_cookie_values_are_refused() {
        assert!(SessionToken::from_cookie("").is_none());
        assert!(SessionToken::from_cookie("not base64!").is_none());
        assert!(SessionToken::from_cookie("c2hvcnQ").is_none());
    }
}
