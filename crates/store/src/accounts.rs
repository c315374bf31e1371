//! Signing in and out, with rate limiting, on top of any [`Store`].

use crate::password::{self, PasswordError};
use crate::{NewUser, SessionToken, Store, StoreError, UnixTime, User};
use domain::{EmailAddress, OrgId, Role};

/// Failures older than this no longer count.
pub const FAILURE_WINDOW_SECS: i64 = 15 * 60;
/// Wrong passwords allowed per email in the window before sign-in is refused for it.
pub const MAX_FAILURES_PER_EMAIL: u32 = 5;
/// Wrong passwords allowed per client address in the window (many emails from one place).
pub const MAX_FAILURES_PER_IP: u32 = 30;
/// How long a session lasts.
pub const SESSION_TTL_SECS: i64 = 7 * 24 * 60 * 60;

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Deliberately the same for unknown email and wrong password.
    #[error("That email and password do not match an account.")]
    BadCredentials,
    #[error("Too many failed sign-in attempts. Wait {minutes} minutes and try again.")]
    RateLimited { minutes: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Password(#[from] PasswordError),
}

pub struct SignedIn {
    pub user: User,
    pub token: SessionToken,
    pub expires_at: UnixTime,
}

/// Checks the password and starts a fresh session (a new token every time: no session fixation).
pub async fn sign_in(store: &dyn Store, email: &str, password: &str, client_ip: &str, now: UnixTime) -> Result<SignedIn, SignInError> {
    let key = email.trim().to_ascii_lowercase();
    let failures = store.sign_in_failures_since(&key, client_ip, now - FAILURE_WINDOW_SECS).await?;
    if failures.for_email >= MAX_FAILURES_PER_EMAIL || failures.from_ip >= MAX_FAILURES_PER_IP {
        return Err(SignInError::RateLimited { minutes: FAILURE_WINDOW_SECS / 60 });
    }
    let found = match EmailAddress::parse(email) {
        Ok(address) => store.user_credentials(&address).await?,
        Err(_) => None,
    };
    let matched = match &found {
        Some(creds) => password::verify(password, &creds.password_hash).await?,
        None => {
            // Same work as a real check, so response time does not reveal whether the email exists.
            let decoy = password::decoy().await?;
            password::verify(password, &decoy).await?;
            false
        }
    };
    match found {
        Some(creds) if matched => {
            store.clear_sign_in_failures(&key).await?;
            let token = SessionToken::generate();
            let expires_at = now + SESSION_TTL_SECS;
            store.start_session(&creds.user, &token.hash(), now, expires_at).await?;
            Ok(SignedIn { user: creds.user, token, expires_at })
        }
        _ => {
            store.record_sign_in_failure(&key, client_ip, now).await?;
            Err(SignInError::BadCredentials)
        }
    }
}

pub async fn sign_out(store: &dyn Store, token: &SessionToken) -> Result<(), StoreError> {
    store.end_session(&token.hash()).await
}

#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error(transparent)]
    Email(#[from] domain::EmailError),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates a user with an Argon2id hash of `password`.
pub async fn create_user(
    store: &dyn Store,
    org_id: OrgId,
    email: &str,
    display_name: &str,
    role: Role,
    password: &str,
) -> Result<User, CreateUserError> {
    let email = EmailAddress::parse(email)?;
    let password_hash = password::hash(password).await?;
    let display_name = match display_name.trim() {
        "" => email.as_str().split('@').next().unwrap_or_default().to_owned(),
        name => name.to_owned(),
    };
    Ok(store.create_user(NewUser { org_id, email, display_name, role, password_hash }).await?)
}
