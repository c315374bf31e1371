//! Password hashing with Argon2id.
//!
//! Hashing is deliberately slow (that is its point), so it runs on tokio's blocking pool rather than
//! on the async worker threads that serve requests. Each hash takes 19 MiB, so at most
//! [`max_concurrent_hashes`] run at once in a process; a request that cannot start one within
//! [`BUSY_WAIT`] fails with [`PasswordError::Busy`] (the server answers 429) instead of queueing
//! memory without bound.

use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};
use argon2::{Algorithm, Argon2, Params, Version};
use std::fmt;
use std::time::Duration;
use tokio::sync::{Semaphore, SemaphorePermit};

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
    /// Every hashing slot stayed taken for [`BUSY_WAIT`].
    #[error("Too many passwords are being checked right now. Try again in a moment.")]
    Busy,
}

/// How long a hash waits for a free slot before giving up with [`PasswordError::Busy`].
pub const BUSY_WAIT: Duration = Duration::from_secs(1);

/// Hashes allowed to run at once: the CPU count (at least 2). More would only queue on the CPUs
/// while each holds its 19 MiB.
pub fn max_concurrent_hashes() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()).max(2)
}

async fn hashing_slot() -> Result<SemaphorePermit<'static>, PasswordError> {
    static SLOTS: std::sync::OnceLock<Semaphore> = std::sync::OnceLock::new();
    let slots = SLOTS.get_or_init(|| Semaphore::new(max_concurrent_hashes()));
    match tokio::time::timeout(BUSY_WAIT, slots.acquire()).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => Err(PasswordError::Busy),
    }
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
    let _slot = hashing_slot().await?;
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
    let _slot = hashing_slot().await?;
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn hashing_is_capped_and_a_full_house_is_busy() {
        let h = hash("correct horse battery").await.unwrap();
        // Many more checks at once than slots: the ones that wait too long are refused, never run.
        let n = max_concurrent_hashes() * 100;
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let h = h.clone();
                tokio::spawn(async move { verify("wrong horse battery", &h).await })
            })
            .collect();
        let mut busy = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(matched) => assert!(!matched),
                Err(PasswordError::Busy) => busy += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert!(busy > 0, "{n} checks at once on {} slots: some must be refused", max_concurrent_hashes());
    }

    #[tokio::test]
    async fn short_passwords_are_refused() {
        assert!(matches!(hash("short").await, Err(PasswordError::TooShort)));
    }
}
