//! Secrets at rest: client secrets and OAuth tokens are sealed with XChaCha20-Poly1305 before they
//! reach the database, under a key that lives outside it (a key file, created on first run).
//!
//! Each sealed value is bound to where it is stored (table, column, row id) as associated data, so
//! a ciphertext copied into another row — someone else's token moved onto my connection — fails to
//! open instead of silently working. The key id travels with the ciphertext, which is what makes
//! rotation possible: new values use the newest key, old values still open with the key that
//! sealed them until they are re-sealed.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use std::fmt;
use std::path::Path;

/// Format version of a sealed value: `[VERSION][key id: u32 BE][nonce: 24][ciphertext + tag]`.
const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const HEADER_LEN: usize = 1 + 4 + NONCE_LEN;
const KEY_LINE_PREFIX: &str = "i360-secret-key";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the key file {path}: {source}")]
    KeyFile { path: String, source: std::io::Error },
    #[error("the key file {path} is not valid: {reason}")]
    KeyFileInvalid { path: String, reason: String },
    #[error("a stored secret was sealed with key {0}, which is not in the key file")]
    UnknownKey(u32),
    #[error("a stored secret could not be opened: it was altered, moved to another row, or sealed with a different key")]
    Tampered,
    #[error("a stored secret has an unknown format")]
    Malformed,
}

/// The one secret-string type of the product (the `secrecy` crate's): `Debug` never shows the
/// value, and the memory is zeroed when it is dropped.
pub use secrecy::{ExposeSecret, SecretString};

/// Where a sealed value lives; it becomes the AEAD's associated data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding(String);

impl Binding {
    pub fn new(table: &str, column: &str, row: impl fmt::Display) -> Binding {
        Binding(format!("{table}.{column}:{row}"))
    }
}

struct Key {
    id: u32,
    cipher: XChaCha20Poly1305,
}

/// The keys secrets are sealed with. The last key is current; older ones only open old values.
pub struct Keyring {
    keys: Vec<Key>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<u32> = self.keys.iter().map(|k| k.id).collect();
        f.debug_struct("Keyring").field("key_ids", &ids).finish()
    }
}

fn random_key() -> [u8; 32] {
    let mut k = [0u8; 32];
    rand::rng().fill_bytes(&mut k);
    k
}

impl Keyring {
    /// A keyring with one fresh key that exists only in memory (tests).
    pub fn ephemeral() -> Keyring {
        Keyring { keys: vec![Key { id: 1, cipher: XChaCha20Poly1305::new(&random_key().into()) }] }
    }

    /// Reads the key file, creating it with one new key (readable by the owner only) if it does
    /// not exist yet.
    pub fn load_or_create(path: &Path) -> Result<Keyring, SecretError> {
        if !path.exists() {
            append_key_line(path, 1, &random_key())?;
        }
        Self::load(path)
    }

    pub fn load(path: &Path) -> Result<Keyring, SecretError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| SecretError::KeyFile { path: shown.clone(), source })?;
        let invalid = |reason: String| SecretError::KeyFileInvalid { path: shown.clone(), reason };
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#')) {
            let mut parts = line.split_whitespace();
            let (Some(KEY_LINE_PREFIX), Some(id), Some(material), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
                return Err(invalid(format!("line {} is not `{KEY_LINE_PREFIX} <id> <key>`", n + 1)));
            };
            let id: u32 = id.parse().map_err(|_| invalid(format!("line {}: bad key id", n + 1)))?;
            let bytes = URL_SAFE_NO_PAD.decode(material).map_err(|_| invalid(format!("line {}: bad key", n + 1)))?;
            let bytes: [u8; 32] = bytes.try_into().map_err(|_| invalid(format!("line {}: a key has 32 bytes", n + 1)))?;
            if keys.iter().any(|k: &Key| k.id == id) {
                return Err(invalid(format!("key id {id} appears twice")));
            }
            keys.push(Key { id, cipher: XChaCha20Poly1305::new(&bytes.into()) });
        }
        if keys.is_empty() {
            return Err(invalid("no keys".into()));
        }
        Ok(Keyring { keys })
    }

    /// Adds a new current key to the file and returns the new keyring. Existing values keep
    /// opening; re-seal them (the store's `reseal_secrets`) to retire the old key.
    pub fn rotate(path: &Path) -> Result<Keyring, SecretError> {
        let current = Self::load(path)?;
        let next = current.keys.iter().map(|k| k.id).max().unwrap_or(0) + 1;
        append_key_line(path, next, &random_key())?;
        Self::load(path)
    }

    pub fn current_key_id(&self) -> u32 {
        self.keys.last().map(|k| k.id).unwrap_or(0)
    }

    /// Seals `plaintext` for storage at `binding`.
    pub fn seal(&self, plaintext: &[u8], binding: &Binding) -> Result<Vec<u8>, SecretError> {
        let key = self.keys.last().ok_or(SecretError::Malformed)?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ct = key
            .cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad: binding.0.as_bytes() })
            .map_err(|_| SecretError::Malformed)?;
        let mut out = Vec::with_capacity(HEADER_LEN + ct.len());
        out.push(VERSION);
        out.extend_from_slice(&key.id.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    pub fn seal_str(&self, plaintext: &SecretString, binding: &Binding) -> Result<Vec<u8>, SecretError> {
        self.seal(plaintext.expose_secret().as_bytes(), binding)
    }

    /// Opens a value sealed for `binding`; fails if it was altered or stored elsewhere.
    pub fn open(&self, sealed: &[u8], binding: &Binding) -> Result<Vec<u8>, SecretError> {
        if sealed.len() < HEADER_LEN || sealed[0] != VERSION {
            return Err(SecretError::Malformed);
        }
        let id = u32::from_be_bytes([sealed[1], sealed[2], sealed[3], sealed[4]]);
        let key = self.keys.iter().find(|k| k.id == id).ok_or(SecretError::UnknownKey(id))?;
        let nonce = XNonce::from_slice(&sealed[5..HEADER_LEN]);
        key.cipher.decrypt(nonce, Payload { msg: &sealed[HEADER_LEN..], aad: binding.0.as_bytes() }).map_err(|_| SecretError::Tampered)
    }

    pub fn open_str(&self, sealed: &[u8], binding: &Binding) -> Result<SecretString, SecretError> {
        let bytes = self.open(sealed, binding)?;
        String::from_utf8(bytes).map(SecretString::from).map_err(|_| SecretError::Malformed)
    }

    /// The id of the key that sealed a stored value (to find values still under an old key).
    pub fn key_id_of(sealed: &[u8]) -> Option<u32> {
        (sealed.len() >= HEADER_LEN && sealed[0] == VERSION).then(|| u32::from_be_bytes([sealed[1], sealed[2], sealed[3], sealed[4]]))
    }
}

fn append_key_line(path: &Path, id: u32, key: &[u8; 32]) -> Result<(), SecretError> {
    use std::io::Write;
    let shown = path.display().to_string();
    let io = |source| SecretError::KeyFile { path: shown.clone(), source };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // The key is the only thing between a copied database and every token in it.
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io)?;
    writeln!(file, "{KEY_LINE_PREFIX} {id} {}", URL_SAFE_NO_PAD.encode(key)).map_err(io)?;
    file.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_where_they_were_stored() {
        let ring = Keyring::ephemeral();
        let here = Binding::new("connections", "refresh_token", "row-1");
        let there = Binding::new("connections", "refresh_token", "row-2");
        let sealed = ring.seal(b"1.AX-refresh-token", &here).unwrap();
        assert!(!sealed.windows(10).any(|w| w == b"1.AX-refre"), "no plaintext in the sealed bytes");
        assert_eq!(ring.open(&sealed, &here).unwrap(), b"1.AX-refresh-token");
        assert!(matches!(ring.open(&sealed, &there), Err(SecretError::Tampered)));
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(matches!(ring.open(&flipped, &here), Err(SecretError::Tampered)));
        assert!(matches!(ring.open(b"short", &here), Err(SecretError::Malformed)));
        // Same plaintext twice gives different ciphertexts (fresh nonce each time).
        assert_ne!(sealed, ring.seal(b"1.AX-refresh-token", &here).unwrap());
    }

    #[test]
    fn the_key_file_is_created_private_and_rotation_keeps_old_values_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/secrets.key");
        let ring = Keyring::load_or_create(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let b = Binding::new("t", "c", 1);
        let old = ring.seal(b"old secret", &b).unwrap();
        assert_eq!(Keyring::key_id_of(&old), Some(1));

        let rotated = Keyring::rotate(&path).unwrap();
        assert_eq!(rotated.current_key_id(), 2);
        assert_eq!(rotated.open(&old, &b).unwrap(), b"old secret");
        let new = rotated.seal(b"new secret", &b).unwrap();
        assert_eq!(Keyring::key_id_of(&new), Some(2));
        // Reloading gives the same keys.
        let again = Keyring::load_or_create(&path).unwrap();
        assert_eq!(again.open(&new, &b).unwrap(), b"new secret");
        // A keyring without key 2 cannot open it and says why.
        assert!(matches!(ring.open(&new, &b), Err(SecretError::UnknownKey(2))));
    }

    #[test]
    fn a_damaged_key_file_is_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, "i360-secret-key 1 not-base64!!\n").unwrap();
        let err = Keyring::load(&path).unwrap_err().to_string();
        assert!(err.contains("bad key"), "{err}");
        assert!(!format!("{:?}", SecretString::from("hunter2")).contains("hunter2"));
    }
}
