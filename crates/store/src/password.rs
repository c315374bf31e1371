//! Password hashing with Argon2id.
//!
//! Hashing is deliberately slow (that is its point), so it runs on tokio's blocking pool rather than
//! on the async worker threads that serve requests.

use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};
use argon2::{Algorithm, Argon2, Params, Version};
use std::fmt;

/// A PHC-format Argon2id hash. Debug output is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    pub fn from_stored(phc: String) -> PasswordHash {
        PasswordHash(phc)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("Choose a password of at least {MIN_LEN} characters.")]
    TooShort,
    #[error("hashing failed: {0}")]
    Hash(String),
    #[error("hashing task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

pub const MIN_LEN: usize = 8;

fn hasher() -> Argon2<'static> {
    // OWASP's minimum for Argon2id: 19 MiB, 2 iterations, 1 lane.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub async fn hash(password: &str) -> Result<PasswordHash, PasswordError> {
    if password.chars().count() < MIN_LEN {
        return Err(PasswordError::TooShort);
    }
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        hasher()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| PasswordHash(h.to_string()))
            .map_err(|e| PasswordError::Hash(e.to_string()))
    })
    .await?
}

/// True when `password` matches. A malformed stored hash counts as a mismatch.
pub async fn verify(password: &str, stored: &PasswordHash) -> Result<bool, PasswordError> {
    let password = password.to_owned();
    let stored = stored.0.clone();
    Ok(tokio::task::spawn_blocking(move || {
        argon2::PasswordHash::new(&stored).map(|parsed| hasher().verify_password(password.as_bytes(), &parsed).is_ok()).unwrap_or(false)
    })
    .await?)
}

/// A valid hash of a password nobody knows. Verifying against it when an email is unknown keeps
/// "no such user" as slow as "wrong password", so timing does not reveal which emails exist.
pub async fn decoy() -> Result<PasswordHash, PasswordError> {
    static DECOY: tokio::sync::OnceCell<PasswordHash> = tokio::sync::OnceCell::const_new();
    DECOY
        .get_or_try_init(|| async {
            let random: String = {
                use rand::Rng;
                let mut rng = rand::rng();
                (0..32).map(|_| rng.sample(rand::distr::Alphanumeric) as char).collect()
            };
            hash(&random).await
        })
        .await
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_are_argon2id() {
        let h = hash("correct horse battery").await.unwrap();
        assert!(h.as_str().starts_with("$argon2id$"));
        assert!(verify("correct horse battery", &h).await.unwrap());
        assert!(!verify("correct horse batterz", &h).await.unwrap());
        assert!(!verify("anything", &PasswordHash::from_stored("garbage".into())).await.unwrap());
        assert_eq!(format!("{h:?}"), "PasswordHash(..)");
    }

    #[tokio::test]
    async fn short_passwords_are_refused() {
        assert!(matches!(hash("short").await, Err(PasswordError::TooShort)));
    }
}
