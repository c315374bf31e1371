//! The operator CLI for a non-demo install.

use std::process::Command;
use store::secrets::ExposeSecret;

fn server(db: &str, args: &[&str]) -> std::process::Output {
    crate::helpers::operator(db, Some(&key_file_of(db))).args(args).output().unwrap()
}

/// The key file [`server`] uses for the database `db`: beside it, named after it.
fn key_file_of(db: &str) -> std::path::PathBuf {
    std::path::Path::new(db.trim_start_matches("sqlite://")).with_extension("key")
}

#[tokio::test]
async fn an_operator_creates_an_organization_and_its_first_admin() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("nested/ops.db").display());
    let out = server(&db, &["org", "create", "--name", "Contoso"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let pw = dir.path().join("pw");
    std::fs::write(&pw, "a-long-password\n").unwrap();
    let out = server(
        &db,
        &[
            "user",
            "create",
            "--org",
            "Contoso",
            "--email",
            "Ops@Contoso.test",
            "--name",
            "Olga Ops",
            "--role",
            "admin",
            "--password-file",
            pw.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("created admin ops@contoso.test"));

    let key_file = std::path::Path::new(db.trim_start_matches("sqlite://")).with_extension("key");
    let keyring = std::sync::Arc::new(store::secrets::Keyring::load(&key_file).unwrap());
    let store = store::open(&db, keyring).await.unwrap();
    let signed_in =
        store::accounts::sign_in(store.as_ref(), "ops@contoso.test", "a-long-password", "cli", store::now_unix()).await.unwrap();
    assert_eq!(signed_in.user.role, domain::Role::Admin);
    assert_eq!(signed_in.user.display_name, "Olga Ops");

    let out = server(&db, &["user", "create", "--org", "Nowhere", "--email", "x@y.test", "--password-file", pw.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no organization named \"Nowhere\""));
}

#[test]
fn help_lists_every_flag_with_its_environment_variable() {
    // A database URL with a password in the environment: --help must not print it.
    let out = Command::new(env!("CARGO_BIN_EXE_server"))
        .arg("--help")
        .env("DATABASE_URL", "postgres://i360:Sup3r-s3cret@db.internal/i360")
        .env("I360_MICROSOFT_CLIENT_ID", "22222222-3333-4444-8555-666666666666")
        .output()
        .unwrap();
    // Help text wraps to the terminal: compare with runs of whitespace made single spaces.
    let help = String::from_utf8_lossy(&out.stdout).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(!help.contains("Sup3r-s3cret"), "--help printed the database password:\n{help}");
    for (flag, env) in [
        ("--database-url", "DATABASE_URL"),
        ("--log-format", "I360_LOG_FORMAT"),
        ("--bind", "I360_BIND"),
        ("--site-root", "LEPTOS_SITE_ROOT"),
        ("--public-url", "I360_PUBLIC_URL"),
        ("--demo", "I360_DEMO"),
        ("--key-file", "I360_KEY_FILE"),
        ("--emulator-bind", "I360_EMULATOR_BIND"),
        ("--microsoft-authority", "I360_MICROSOFT_AUTHORITY"),
        ("--microsoft-graph", "I360_MICROSOFT_GRAPH"),
        ("--shutdown-timeout", "I360_SHUTDOWN_TIMEOUT"),
        ("--microsoft-client-id", "I360_MICROSOFT_CLIENT_ID"),
        ("--microsoft-certificate-file", "I360_MICROSOFT_CERTIFICATE_FILE"),
        ("--microsoft-private-key-file", "I360_MICROSOFT_PRIVATE_KEY_FILE"),
        ("--microsoft-client-secret-file", "I360_MICROSOFT_CLIENT_SECRET_FILE"),
        ("--allow-shared-tenants", "I360_ALLOW_SHARED_TENANTS"),
        ("--trusted-proxies", "I360_TRUSTED_PROXIES"),
    ] {
        assert!(help.contains(flag), "{flag} missing from --help:\n{help}");
        assert!(help.contains(&format!("[env: {env}")), "{env} missing from --help:\n{help}");
    }
}

#[tokio::test]
async fn a_rotation_adds_a_key_then_promotes_it_and_reseals_stored_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("ops.db").display());
    assert!(server(&db, &["org", "create", "--name", "Contoso"]).status.success());
    let key_file = key_file_of(&db);
    let keyring = std::sync::Arc::new(store::secrets::Keyring::load(&key_file).unwrap());
    let store = store::open(&db, keyring).await.unwrap();
    let org = store.organization_by_name("Contoso").await.unwrap().unwrap();
    let settings = domain::office365::Office365Settings::default();
    let secret = store::secrets::SecretString::from("rotate-me");
    store.save_office365_settings(org.id, &settings, Some(&secret), &[]).await.unwrap();
    store.close().await;

    // The one-step rotation is refused: it would re-seal before other instances hold the key.
    let out = server(&db, &["keys", "rotate"]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("server keys add") && said.contains("server keys promote") && said.contains("Nothing was changed"), "{said}");
    assert_eq!(store::secrets::Keyring::load(&key_file).unwrap().key_ids(), vec![1]);

    // Phase 1: key 2 is in the file, and key 1 still seals.
    let said = crate::helpers::keys_command(&db, &key_file, &["add"]);
    assert!(said.contains("added key 2") && said.contains("keys 1,2; current 1") && said.contains("SIGHUP"), "{said}");
    assert_eq!(store::secrets::Keyring::load(&key_file).unwrap().current_key_id(), 1);
    // Phase 2: key 2 seals, and the stored secret is re-sealed with it (once: a second pass has none left).
    let said = crate::helpers::keys_command(&db, &key_file, &["promote"]);
    assert!(said.contains("key 2 is now current; re-sealed 1 stored secrets"), "{said}");
    let said = crate::helpers::keys_command(&db, &key_file, &["reseal"]);
    assert!(said.contains("re-sealed 0 stored secrets with key 2"), "{said}");

    // Only the new key is needed from now on: drop key 1 from the file and the secret still opens.
    let text = std::fs::read_to_string(&key_file).unwrap();
    let only_new: String = text.lines().filter(|l| l.ends_with(" 2") || l.contains(" 2 ")).map(|l| format!("{l}\n")).collect();
    std::fs::write(&key_file, only_new).unwrap();
    let keyring = std::sync::Arc::new(store::secrets::Keyring::load(&key_file).unwrap());
    assert_eq!(keyring.summary(), "keys 2; current 2");
    let store = store::open(&db, keyring).await.unwrap();
    assert_eq!(
        store.office365_client_secret(org.id).await.unwrap().map(|s| s.expose_secret().to_owned()).as_deref(),
        Some(secret.expose_secret())
    );
}

#[cfg(unix)]
#[test]
fn a_key_file_open_to_group_or_others_is_refused_with_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("ops.db").display());
    assert!(server(&db, &["migrate"]).status.success());
    let key_file = key_file_of(&db);
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    for args in [&["migrate"][..], &["keys", "add"]] {
        let out = server(&db, args);
        assert!(!out.status.success(), "{args:?} ran with a readable key file");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains(&key_file.display().to_string()) && said.contains("chmod 600"), "{said}");
    }
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(server(&db, &["migrate"]).status.success());
}

#[test]
fn the_default_key_file_is_kept_out_of_the_data_directory_and_an_old_one_there_is_used_until_moved() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let new_default = home.join(".config/intelligence360/secrets.key");
    // Run from `work/` as `make run` does, with the default database in `data/`.
    let run_in = |cwd: &std::path::Path| {
        std::fs::create_dir_all(cwd).unwrap();
        let out = crate::helpers::operator("sqlite://data/intelligence360.db", None)
            .arg("migrate")
            .current_dir(cwd)
            .env("HOME", &home)
            .env_remove("XDG_CONFIG_HOME")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let fresh = dir.path().join("fresh");
    run_in(&fresh);
    assert!(new_default.is_file(), "a fresh install makes its key in the configuration directory");
    assert!(fresh.join("data/intelligence360.db").is_file() && !fresh.join("data/secrets.key").exists());

    // An older install: its key is in data/, and the new default is not there. It is used (its
    // database's secrets open with it), and the log says to move it; no second key is made.
    let older = dir.path().join("older");
    std::fs::create_dir_all(older.join("data")).unwrap();
    std::fs::rename(&new_default, older.join("data/secrets.key")).unwrap();
    let log = run_in(&older);
    assert!(log.contains("still at data/secrets.key") && log.contains("mv data/secrets.key"), "{log}");
    assert!(!new_default.exists(), "a second key would leave every stored secret unreadable");
}

/// The server with these arguments (which ask for the demo) on a fresh directory's SQLite database
/// unless they name another; the environment's demo settings are cleared so only the arguments count.
/// A server that does start (a refusal missed) is stopped after 20 s and its output returned.
fn demo_server(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(args)
        .env("DATABASE_URL", format!("sqlite://{}", dir.join("demo.db").display()))
        .env("I360_KEY_FILE", dir.join("demo.key"))
        .env("LEPTOS_SITE_ROOT", dir.join("site"))
        .env_remove("I360_BIND")
        .env_remove("I360_EMULATOR_BIND")
        .env_remove("I360_DEMO")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    child.wait_with_output().unwrap()
}

#[test]
fn the_demo_refuses_postgresql_and_addresses_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 9: a server that tried to connect would fail differently, and later.
    let postgres = "postgres://i360:pw@127.0.0.1:9/i360";
    let cases = [
        (vec!["--demo", "--database-url", postgres, "--bind", "127.0.0.1:0"], "it runs on a SQLite database only, not on PostgreSQL"),
        (vec!["--demo", "--bind", "0.0.0.0:0"], "it listens on a loopback address only, not on 0.0.0.0:0"),
        (vec!["--demo", "--bind", "[::]:0"], "not on [::]:0"),
        (vec!["--demo", "--bind", "127.0.0.1:0", "--emulator-bind", "0.0.0.0:0"], "not on 0.0.0.0:0"),
        (vec!["serve", "--demo", "--bind", "192.0.2.1:0"], "not on 192.0.2.1:0"),
    ];
    for (args, expected) in cases {
        let out = demo_server(dir.path(), &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} ran:\n{stderr}");
        assert!(stderr.contains("error: the demo seeds well-known passwords") && stderr.contains(expected), "{args:?}:\n{stderr}");
    }
    // Refused before anything was opened: no database, no key file.
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "a refused demo created {left:?}");
}
