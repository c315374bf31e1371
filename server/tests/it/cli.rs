//! The operator CLI for a non-demo install.

use std::process::Command;
use store::secrets::ExposeSecret;

fn server(db: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_server"))
        .args(args)
        .env("DATABASE_URL", db)
        .env("I360_KEY_FILE", std::path::Path::new(db.trim_start_matches("sqlite://")).with_extension("key"))
        .env_remove("I360_USER_PASSWORD")
        .output()
        .unwrap()
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
async fn rotating_the_key_reseals_stored_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("ops.db").display());
    assert!(server(&db, &["org", "create", "--name", "Contoso"]).status.success());
    let key_file = dir.path().join("ops.key");
    let keyring = std::sync::Arc::new(store::secrets::Keyring::load(&key_file).unwrap());
    let store = store::open(&db, keyring).await.unwrap();
    let org = store.organization_by_name("Contoso").await.unwrap().unwrap();
    let settings = domain::office365::Office365Settings::default();
    let secret = store::secrets::SecretString::from("rotate-me");
    store.save_office365_settings(org.id, &settings, Some(&secret), &[]).await.unwrap();
    store.close().await;

    let out = server(&db, &["keys", "rotate"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("key 2 is now current; re-sealed 1 stored secrets"));

    // Only the new key is needed from now on: drop key 1 from the file and the secret still opens.
    let text = std::fs::read_to_string(&key_file).unwrap();
    let only_new: String = text.lines().filter(|l| l.contains(" 2 ")).map(|l| format!("{l}\n")).collect();
    std::fs::write(&key_file, only_new).unwrap();
    let keyring = std::sync::Arc::new(store::secrets::Keyring::load(&key_file).unwrap());
    let store = store::open(&db, keyring).await.unwrap();
    assert_eq!(
        store.office365_client_secret(org.id).await.unwrap().map(|s| s.expose_secret().to_owned()).as_deref(),
        Some(secret.expose_secret())
    );
}
