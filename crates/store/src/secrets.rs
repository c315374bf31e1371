//! Secrets at rest: client secrets and OAuth tokens are sealed with XChaCha20-Poly1305 before they
//! reach the database, under a key that lives outside it (a key file, created on first run).
//!
//! Each sealed value is bound to where it is stored (table, column, row id) as associated data, so
//! a ciphertext copied into another row — someone else's token moved onto my connection — fails to
//! open instead of silently working. The key id travels with the ciphertext, which is what makes
//! rotation possible: new values use the current key, old values still open with the key that
//! sealed them until they are re-sealed.
//!
//! Rotation is two-phase so that no running instance meets a key it does not hold: `add_key` puts a
//! new key in the file without making it current (instances read it on SIGHUP, or on their own when
//! they meet a value sealed with a key they do not hold), and `promote` makes it current, after
//! which the store's `reseal_secrets` moves the stored values onto it. The keys a [`Keyring`] holds
//! can be re-read from its file while it is shared ([`Keyring::reload`]), so every store handle of a
//! running server sees the new keys at once.
//!
//! The key file is lines of `i360-secret-key <id> <key>` and `i360-current-key <id>` (the last such
//! line wins; a file without one seals with its last key). It must be readable by its owner only.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// Format version of a sealed value: `[VERSION][key id: u32 BE][nonce: 24][ciphertext + tag]`.
const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const HEADER_LEN: usize = 1 + 4 + NONCE_LEN;
const KEY_LINE_PREFIX: &str = "i360-secret-key";
const CURRENT_LINE_PREFIX: &str = "i360-current-key";
/// A value sealed with a key this keyring does not hold makes it re-read its file whenever the file
/// changed since the last try, and otherwise at most this often (a value under a key that is in no
/// file would re-read an unchanged file on every open).
const UNKNOWN_KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the key file {path}: {source}")]
    KeyFile { path: String, source: std::io::Error },
    #[error("the key file {path} is not valid: {reason}")]
    KeyFileInvalid { path: String, reason: String },
    #[error("the key file {path} is open to group or others (mode {mode:03o}); make it readable by its owner only: chmod 600 {path}")]
    KeyFileNotPrivate { path: String, mode: u32 },
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

/// The keys read from the key file at one moment, and which of them seals new values.
struct KeySet {
    keys: Vec<Key>,
    /// Index in `keys` of the key that seals.
    current: usize,
}

impl KeySet {
    fn find(&self, id: u32) -> Option<&Key> {
        self.keys.iter().find(|k| k.id == id)
    }

    fn current(&self) -> Option<&Key> {
        self.keys.get(self.current)
    }

    fn newest_id(&self) -> u32 {
        self.keys.iter().map(|k| k.id).max().unwrap_or(0)
    }
}

/// The keys secrets are sealed with: the current key seals, every key opens what it sealed.
/// Shared by every store handle of a process; [`Keyring::reload`] swaps the keys for all of them.
pub struct Keyring {
    keys: RwLock<Arc<KeySet>>,
    /// The file the keys come from; `None` for an in-memory keyring.
    file: Option<PathBuf>,
    /// The last time the file was re-read because a value named a key not held, and how the file
    /// looked then (`None`: it could not be seen).
    unknown_key_reload: Mutex<Option<(Option<FileStamp>, Instant)>>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring").field("key_ids", &self.key_ids()).field("current", &self.current_key_id()).finish()
    }
}

fn random_key() -> [u8; 32] {
    let mut k = [0u8; 32];
    rand::rng().fill_bytes(&mut k);
    k
}

impl Keyring {
    fn with(set: KeySet, file: Option<PathBuf>) -> Keyring {
        Keyring { keys: RwLock::new(Arc::new(set)), file, unknown_key_reload: Mutex::new(None) }
    }

    /// A keyring with one fresh key that exists only in memory (tests).
    pub fn ephemeral() -> Keyring {
        Self::with(KeySet { keys: vec![Key { id: 1, cipher: XChaCha20Poly1305::new(&random_key().into()) }], current: 0 }, None)
    }

    /// Reads the key file, creating it with one new key (readable by the owner only) if it does
    /// not exist yet.
    pub fn load_or_create(path: &Path) -> Result<Keyring, SecretError> {
        if !path.exists() {
            append_lines(path, &key_line(1, &random_key()))?;
        }
        Self::load(path)
    }

    /// Reads the key file; it must be readable by its owner only.
    pub fn load(path: &Path) -> Result<Keyring, SecretError> {
        Ok(Self::with(read_key_file(path)?, Some(path.to_owned())))
    }

    /// Reads the key file again (SIGHUP): keys added since are held, a promoted key seals from now
    /// on, keys removed from the file are dropped. On an error the keys held are kept. An
    /// in-memory keyring has nothing to re-read.
    pub fn reload(&self) -> Result<(), SecretError> {
        let Some(path) = &self.file else { return Ok(()) };
        let set = read_key_file(path)?;
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(set);
        Ok(())
    }

    /// Phase 1 of a rotation: appends a new key to the file without making it current (the key
    /// that sealed until now keeps sealing), and returns its id. Once every instance holds it,
    /// [`Keyring::promote`] makes it current.
    pub fn add_key(path: &Path) -> Result<u32, SecretError> {
        let set = read_key_file(path)?;
        let current = set.current().map(|k| k.id).unwrap_or(0);
        let next = set.newest_id() + 1;
        // The current key is named before the new key is added, in one write, so nobody reading
        // the file meanwhile takes the new key for the current one.
        append_lines(path, &format!("{CURRENT_LINE_PREFIX} {current}\n{}", key_line(next, &random_key())))?;
        Ok(next)
    }

    /// Phase 2 of a rotation: makes key `id` (the newest when `None`) the one that seals, and
    /// returns the keyring read back from the file. Re-seal the stored values afterwards.
    pub fn promote(path: &Path, id: Option<u32>) -> Result<Keyring, SecretError> {
        let set = read_key_file(path)?;
        let id = id.unwrap_or_else(|| set.newest_id());
        if set.find(id).is_none() {
            return Err(SecretError::KeyFileInvalid { path: path.display().to_string(), reason: format!("there is no key {id}") });
        }
        if set.current().map(|k| k.id) != Some(id) {
            append_lines(path, &format!("{CURRENT_LINE_PREFIX} {id}\n"))?;
        }
        Self::load(path)
    }

    fn snapshot(&self) -> Arc<KeySet> {
        self.keys.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub fn current_key_id(&self) -> u32 {
        self.snapshot().current().map(|k| k.id).unwrap_or(0)
    }

    /// The ids of the keys held, in the file's order.
    pub fn key_ids(&self) -> Vec<u32> {
        self.snapshot().keys.iter().map(|k| k.id).collect()
    }

    /// "keys 1,2; current 2", for the logs.
    pub fn summary(&self) -> String {
        let ids: Vec<String> = self.key_ids().iter().map(u32::to_string).collect();
        format!("keys {}; current {}", ids.join(","), self.current_key_id())
    }

    /// Seals `plaintext` for storage at `binding`.
    pub fn seal(&self, plaintext: &[u8], binding: &Binding) -> Result<Vec<u8>, SecretError> {
        let set = self.snapshot();
        let key = set.current().ok_or(SecretError::Malformed)?;
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

    /// Opens a value sealed for `binding`; fails if it was altered or stored elsewhere. A value
    /// sealed with a key not held makes the keyring re-read its file first (another instance may
    /// have promoted a key added since this one read it).
    pub fn open(&self, sealed: &[u8], binding: &Binding) -> Result<Vec<u8>, SecretError> {
        let id = Self::key_id_of(sealed).ok_or(SecretError::Malformed)?;
        let mut set = self.snapshot();
        if set.find(id).is_none() {
            self.reload_for_unknown_key(id);
            set = self.snapshot();
        }
        let key = set.find(id).ok_or(SecretError::UnknownKey(id))?;
        let nonce = XNonce::from_slice(&sealed[5..HEADER_LEN]);
        key.cipher.decrypt(nonce, Payload { msg: &sealed[HEADER_LEN..], aad: binding.0.as_bytes() }).map_err(|_| SecretError::Tampered)
    }

    /// Re-reads the file for a value sealed with key `id`, unless the file is unchanged since it
    /// was re-read moments ago for the same reason (then the keys read then are all there is).
    fn reload_for_unknown_key(&self, id: u32) {
        let Some(path) = &self.file else { return };
        let mut last = self.unknown_key_reload.lock().unwrap_or_else(PoisonError::into_inner);
        // Another caller may have re-read it while this one waited for the lock.
        if self.snapshot().find(id).is_some() {
            return;
        }
        let stamp = std::fs::metadata(path).ok().map(|m| FileStamp::of(&m));
        if last.is_some_and(|(seen, at)| seen == stamp && at.elapsed() < UNKNOWN_KEY_RELOAD_INTERVAL) {
            return;
        }
        *last = Some((stamp, Instant::now()));
        match self.reload() {
            Ok(()) => {
                tracing::info!(key_file = %path.display(), "key file reloaded: {} (a stored secret was sealed with key {id})", self.summary())
            }
            Err(e) => {
                tracing::warn!(error = %e, "a stored secret was sealed with key {id}, not held; the key file could not be read again")
            }
        }
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

/// How the key file looked (taken before it is read: a change meanwhile shows as a change later).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    #[cfg(unix)]
    inode: u64,
}

impl FileStamp {
    fn of(meta: &std::fs::Metadata) -> FileStamp {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        FileStamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            #[cfg(unix)]
            inode: meta.ino(),
        }
    }
}

/// Reads and parses the key file, refusing one that group or others may open.
fn read_key_file(path: &Path) -> Result<KeySet, SecretError> {
    let shown = path.display().to_string();
    ensure_private(path, &shown)?;
    let text = std::fs::read_to_string(path).map_err(|source| SecretError::KeyFile { path: shown.clone(), source })?;
    parse_key_file(&text).map_err(|reason| SecretError::KeyFileInvalid { path: shown, reason })
}

/// The key file is the only thing between a copied database and every token in it.
fn ensure_private(path: &Path, shown: &str) -> Result<(), SecretError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map_err(|source| SecretError::KeyFile { path: shown.to_owned(), source })?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(SecretError::KeyFileNotPrivate { path: shown.to_owned(), mode: mode & 0o777 });
        }
    }
    #[cfg(not(unix))]
    let _ = (path, shown);
    Ok(())
}

fn parse_key_file(text: &str) -> Result<KeySet, String> {
    let mut keys: Vec<Key> = Vec::new();
    let mut current = None;
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#')) {
        let n = n + 1;
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts.as_slice() {
            [CURRENT_LINE_PREFIX, id] => current = Some(id.parse::<u32>().map_err(|_| format!("line {n}: bad key id"))?),
            [KEY_LINE_PREFIX, id, material] => {
                let id: u32 = id.parse().map_err(|_| format!("line {n}: bad key id"))?;
                let bytes = URL_SAFE_NO_PAD.decode(material).map_err(|_| format!("line {n}: bad key"))?;
                let bytes: [u8; 32] = bytes.try_into().map_err(|_| format!("line {n}: a key has 32 bytes"))?;
                if keys.iter().any(|k| k.id == id) {
                    return Err(format!("key id {id} appears twice"));
                }
                keys.push(Key { id, cipher: XChaCha20Poly1305::new(&bytes.into()) });
            }
            _ => return Err(format!("line {n} is not `{KEY_LINE_PREFIX} <id> <key>` or `{CURRENT_LINE_PREFIX} <id>`")),
        }
    }
    if keys.is_empty() {
        return Err("no keys".into());
    }
    let current = match current {
        None => keys.len() - 1,
        Some(id) => keys.iter().position(|k| k.id == id).ok_or(format!("the current key {id} is not in the file"))?,
    };
    Ok(KeySet { keys, current })
}

fn key_line(id: u32, key: &[u8; 32]) -> String {
    format!("{KEY_LINE_PREFIX} {id} {}\n", URL_SAFE_NO_PAD.encode(key))
}

/// Appends `text` to the key file in one write (creating it, and its directory, readable by the
/// owner only), so an instance reading the file meanwhile sees all of it or none of it.
fn append_lines(path: &Path, text: &str) -> Result<(), SecretError> {
    use std::io::Write;
    let shown = path.display().to_string();
    let io = |source| SecretError::KeyFile { path: shown.clone(), source };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(dir).map_err(io)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}

/// Creates the key file's directory (and its parents) if missing; the ones made here are the
/// owner's only.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
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

    /// A key file written by the test, readable by its owner only.
    fn write_private(path: &Path, text: &str) {
        std::fs::write(path, text).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }

    #[test]
    fn the_key_file_is_created_private_and_a_two_phase_rotation_keeps_old_values_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/secrets.key");
        let ring = Keyring::load_or_create(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            assert_eq!(std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o077, 0);
        }
        let b = Binding::new("t", "c", 1);
        let old = ring.seal(b"old secret", &b).unwrap();
        assert_eq!(Keyring::key_id_of(&old), Some(1));

        // Phase 1: the new key is in the file but does not seal yet.
        assert_eq!(Keyring::add_key(&path).unwrap(), 2);
        let added = Keyring::load(&path).unwrap();
        assert_eq!((added.key_ids(), added.current_key_id()), (vec![1, 2], 1));
        assert_eq!(Keyring::key_id_of(&added.seal(b"x", &b).unwrap()), Some(1));

        // Phase 2: it seals; the old value still opens.
        let promoted = Keyring::promote(&path, None).unwrap();
        assert_eq!(promoted.summary(), "keys 1,2; current 2");
        assert_eq!(promoted.open(&old, &b).unwrap(), b"old secret");
        let new = promoted.seal(b"new secret", &b).unwrap();
        assert_eq!(Keyring::key_id_of(&new), Some(2));
        // Promoting again changes nothing; a key that is not there is refused.
        assert_eq!(Keyring::promote(&path, None).unwrap().current_key_id(), 2);
        assert!(Keyring::promote(&path, Some(7)).unwrap_err().to_string().contains("there is no key 7"));
        // Reloading gives the same keys, and SIGHUP's reload makes the promoted key seal.
        let again = Keyring::load_or_create(&path).unwrap();
        assert_eq!(again.open(&new, &b).unwrap(), b"new secret");
        added.reload().unwrap();
        assert_eq!(added.summary(), "keys 1,2; current 2");
    }

    #[test]
    fn an_instance_holding_only_the_old_key_opens_a_value_sealed_with_a_key_added_since() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.key");
        // A running instance read the file when it held key 1 only.
        let running = Keyring::load_or_create(&path).unwrap();
        // Another instance (or `keys add` then `keys promote`) seals with key 2.
        Keyring::add_key(&path).unwrap();
        let other = Keyring::promote(&path, None).unwrap();
        let b = Binding::new("connections", "refresh_token", "row-1");
        let sealed = other.seal(b"rotated", &b).unwrap();
        assert_eq!(running.key_ids(), vec![1]);
        assert_eq!(running.open(&sealed, &b).unwrap(), b"rotated");
        assert_eq!(running.summary(), "keys 1,2; current 2");
        // A key that is in no file stays an error, without re-reading the file on every open.
        let mut foreign = sealed.clone();
        foreign[1..5].copy_from_slice(&9u32.to_be_bytes());
        assert!(matches!(running.open(&foreign, &b), Err(SecretError::UnknownKey(9))));
        // ... but a key that reaches the file right after that is read at once.
        Keyring::add_key(&path).unwrap();
        let third = Keyring::promote(&path, None).unwrap().seal(b"third", &b).unwrap();
        assert_eq!(running.open(&third, &b).unwrap(), b"third");
        // An in-memory keyring has no file to read and says which key it lacks.
        assert!(matches!(Keyring::ephemeral().open(&sealed, &b), Err(SecretError::UnknownKey(2))));
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_open_to_group_or_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.key");
        let ring = Keyring::load_or_create(&path).unwrap();
        for mode in [0o640, 0o604, 0o620] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = Keyring::load(&path).unwrap_err().to_string();
            assert!(err.contains(&path.display().to_string()) && err.contains("chmod 600"), "{err}");
            assert!(Keyring::add_key(&path).is_err() && ring.reload().is_err());
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert!(Keyring::load(&path).is_ok());
    }

    #[test]
    fn a_damaged_key_file_is_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        write_private(&path, "i360-secret-key 1 not-base64!!\n");
        let err = Keyring::load(&path).unwrap_err().to_string();
        assert!(err.contains("bad key"), "{err}");
        write_private(&path, &format!("{}i360-current-key 3\n", key_line(1, &random_key())));
        let err = Keyring::load(&path).unwrap_err().to_string();
        assert!(err.contains("the current key 3 is not in the file"), "{err}");
        assert!(!format!("{:?}", SecretString::from("hunter2")).contains("hunter2"));
    }
}
