//! The key file that seals secrets at rest: where it is, the `server keys` commands (a two-phase
//! rotation), and its reload on SIGHUP.

use server::cli::KeysCommand;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use store::secrets::Keyring;

/// Where the key file was by default until it moved out of the database's directory: beside the
/// default SQLite database, so every copy of `data/` carried the key with the data it protects.
const OLD_DEFAULT: &str = "data/secrets.key";

/// The key file to use: the one given (`--key-file`, `I360_KEY_FILE`), else the default in the
/// user's configuration directory — or the old default, `data/secrets.key`, while a deployment
/// still has it there and not at the new place (with a warning to move it). Creating a new key
/// beside an old one would leave every stored secret unreadable.
pub fn key_file(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = given {
        return Ok(path.to_owned());
    }
    let default = default_key_file(|name| std::env::var_os(name))?;
    choose_default(default, Path::new(OLD_DEFAULT))
}

/// `$XDG_CONFIG_HOME/intelligence360/secrets.key`, else `$HOME/.config/intelligence360/secrets.key`.
fn default_key_file(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> anyhow::Result<PathBuf> {
    let config = match (var("XDG_CONFIG_HOME").map(PathBuf::from).filter(|p| p.is_absolute()), var("HOME").filter(|h| !h.is_empty())) {
        (Some(config), _) => config,
        (None, Some(home)) => PathBuf::from(home).join(".config"),
        (None, None) => anyhow::bail!("neither XDG_CONFIG_HOME nor HOME is set, so there is no default key file: give --key-file"),
    };
    Ok(config.join("intelligence360").join("secrets.key"))
}

fn choose_default(default: PathBuf, old: &Path) -> anyhow::Result<PathBuf> {
    if !old.is_file() {
        return Ok(default);
    }
    let (shown_old, shown_new) = (old.display(), default.display());
    if !default.exists() {
        tracing::warn!(
            "the key file is still at {shown_old}, beside the database, so a copy of the data directory carries its key: \
             using it; move it out with `mkdir -p -m 700 {} && mv {shown_old} {shown_new}` (or give --key-file)",
            default.parent().map(|d| d.display().to_string()).unwrap_or_default()
        );
        return Ok(old.to_owned());
    }
    if std::fs::read(old)? != std::fs::read(&default)? {
        anyhow::bail!(
            "two key files hold different keys: {shown_new} (the default) and {shown_old} (the old default). Keep the one \
             that sealed this database's secrets at {shown_new} and remove the other, or choose one with --key-file"
        );
    }
    tracing::warn!("{shown_old} is a copy of the key file {shown_new}, which is used: remove the copy beside the database");
    Ok(default)
}

/// `server keys …`.
pub async fn run(command: &KeysCommand, key_file: &Path, database_url: &str) -> anyhow::Result<()> {
    match command {
        KeysCommand::Add => add(key_file),
        KeysCommand::Promote { key } => promote(key_file, *key, database_url).await,
        KeysCommand::Reseal => {
            let keyring = Arc::new(Keyring::load(key_file)?);
            let count = reseal(keyring.clone(), database_url).await?;
            println!("re-sealed {count} stored secrets with key {}", keyring.current_key_id());
            Ok(())
        }
        KeysCommand::Rotate => anyhow::bail!(
            "`keys rotate` is two steps now, so no running instance meets a key it does not hold:\n  \
             1. server keys add       a new key in the file, not sealing yet; copy the file to every host and SIGHUP the instances\n  \
             2. server keys promote   the new key seals, and every stored secret is re-sealed with it\n\
             Nothing was changed."
        ),
    }
}

/// `keys add`: a new key in the file that does not seal yet.
fn add(key_file: &Path) -> anyhow::Result<()> {
    let id = Keyring::add_key(key_file)?;
    let held = Keyring::load(key_file)?;
    println!(
        "added key {id} to {} ({}): it does not seal yet.\n\
         Next: copy the key file to every host that runs the server and send each instance SIGHUP\n\
         (instances reading this same file need nothing), then run `server keys promote`.",
        key_file.display(),
        held.summary()
    );
    Ok(())
}

/// `keys promote`: the key seals from now on, and every stored secret is re-sealed with it.
async fn promote(key_file: &Path, key: Option<u32>, database_url: &str) -> anyhow::Result<()> {
    let keyring = Arc::new(Keyring::promote(key_file, key)?);
    let count = reseal(keyring.clone(), database_url).await?;
    println!(
        "key {} is now current; re-sealed {count} stored secrets.\n\
         Instances seal with it once they reload the key file (SIGHUP) or restart; run `server keys reseal`\n\
         after that, before removing an older key from the file.",
        keyring.current_key_id()
    );
    Ok(())
}

async fn reseal(keyring: Arc<Keyring>, database_url: &str) -> anyhow::Result<u64> {
    let store = store::open(database_url, keyring).await?;
    let count = store.reseal_secrets().await?;
    store.close().await;
    Ok(count)
}

/// Reads the key file again on every SIGHUP, for every store handle of this process.
pub fn reload_on_hangup(keyring: Arc<Keyring>) {
    server::shutdown::on_hangup(move || match keyring.reload() {
        Ok(()) => tracing::info!("key file reloaded: {}", keyring.summary()),
        Err(e) => tracing::error!(error = %e, "the key file was not reloaded; the keys held are kept: {}", keyring.summary()),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    #[test]
    fn the_default_key_file_is_in_the_users_configuration_directory() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| OsString::from(v))
        };
        let xdg = default_key_file(env(&[("XDG_CONFIG_HOME", "/etc/xdg-conf"), ("HOME", "/home/ops")])).unwrap();
        assert_eq!(xdg, Path::new("/etc/xdg-conf/intelligence360/secrets.key"));
        let home = default_key_file(env(&[("XDG_CONFIG_HOME", "relative"), ("HOME", "/home/ops")])).unwrap();
        assert_eq!(home, Path::new("/home/ops/.config/intelligence360/secrets.key"));
        assert!(default_key_file(env(&[])).unwrap_err().to_string().contains("--key-file"));
    }

    #[test]
    fn an_old_key_file_beside_the_database_is_used_until_it_is_moved() {
        let dir = tempfile::tempdir().unwrap();
        let (old, new) = (dir.path().join("data/secrets.key"), dir.path().join("config/secrets.key"));
        assert_eq!(choose_default(new.clone(), &old).unwrap(), new, "a fresh install uses the new default");
        Keyring::load_or_create(&old).unwrap();
        assert_eq!(choose_default(new.clone(), &old).unwrap(), old, "no second key next to the old one");
        std::fs::create_dir_all(dir.path().join("config")).unwrap();
        std::fs::copy(&old, &new).unwrap();
        assert_eq!(choose_default(new.clone(), &old).unwrap(), new, "a copy at the new place is used");
        std::fs::remove_file(&new).unwrap();
        Keyring::load_or_create(&new).unwrap();
        let err = choose_default(new.clone(), &old).unwrap_err().to_string();
        assert!(err.contains("two key files hold different keys"), "{err}");
    }
}
