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
/// How long a session may go unused before it ends (the default of `--session-idle-timeout`).
pub const SESSION_IDLE_SECS: i64 = 12 * 60 * 60;
/// A session's last use is written at most this often.
pub const SESSION_TOUCH_EVERY_SECS: i64 = 60;

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Deliberately the same for unknown email and wrong password.
    #[error("That email and password do not match an account.")]
    BadCredentials,
    #[error("Too many failed sign-in attempts. Wait {minutes} minutes and try again.")]
    RateLimited { minutes: i64 },
    /// Every password-hashing slot is taken (a burst of sign-ins): try again in a moment (429).
    #[error("Too many sign-ins are being checked right now. Try again in a moment.")]
    Busy,
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
///
/// The attempt is recorded and counted against the limits **before** the password is checked, in
/// one transaction ([`Store::begin_sign_in_attempt`]): however many guesses arrive at once, at most
/// [`MAX_FAILURES_PER_EMAIL`] of them are checked in the window. A wrong password leaves the attempt
/// counted; the right one clears the email's attempts. When no hashing slot frees up in time the
/// attempt is taken back unchecked and the answer is [`SignInError::Busy`].
pub async fn sign_in(store: &dyn Store, email: &str, password: &str, client_ip: &str, now: UnixTime) -> Result<SignedIn, SignInError> {
    sign_in_idle_after(store, SESSION_IDLE_SECS, email, password, client_ip, now).await
}

/// [`sign_in`] with a session that ends once unused for `idle_timeout_secs`.
pub async fn sign_in_idle_after(
    store: &dyn Store,
    idle_timeout_secs: i64,
    email: &str,
    password: &str,
    client_ip: &str,
    now: UnixTime,
) -> Result<SignedIn, SignInError> {
    let key = email.trim().to_ascii_lowercase();
    let Some(attempt) = store.begin_sign_in_attempt(&key, client_ip, now).await? else {
        return Err(SignInError::RateLimited { minutes: FAILURE_WINDOW_SECS / 60 });
    };
    let user = match check_password(store, email, password).await {
        Err(SignInError::Password(PasswordError::Busy)) => {
            store.withdraw_sign_in_attempt(attempt).await?;
            return Err(SignInError::Busy);
        }
        // Any other failure leaves the attempt counted: it may have been checked.
        other => other?,
    };
    match user {
        Some(user) => {
            store.clear_sign_in_failures(&key).await?;
            let token = SessionToken::generate();
            let expires_at = now + SESSION_TTL_SECS;
            store.start_session(&user, &token.hash(), now, expires_at, idle_timeout_secs).await?;
            Ok(SignedIn { user, token, expires_at })
        }
        None => Err(SignInError::BadCredentials),
    }
}

/// The user when `password` is theirs.
async fn check_password(store: &dyn Store, email: &str, password: &str) -> Result<Option<User>, SignInError> {
    let found = match EmailAddress::parse(email) {
        Ok(address) => store.user_credentials(&address).await?,
        Err(_) => None,
    };
    match found {
        Some(creds) => Ok(password::verify(password, &creds.password_hash).await?.then_some(creds.user)),
        None => {
            // Same work as a real check, so response time does not reveal whether the email exists.
            let decoy = password::decoy().await?;
            password::verify(password, &decoy).await?;
            Ok(None)
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
