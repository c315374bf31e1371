//! The command line. Every flag has an environment variable, shown by `server --help`.

use crate::telemetry::LogFormat;
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "server", version, about = "Intelligence360: the Office 365 integration server.")]
pub struct Cli {
    /// Database to use: `sqlite://path/file.db` (created if missing) or `postgres://user@host/db`.
    /// (Its value from the environment is never printed: it may hold a password.)
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://data/intelligence360.db", global = true, hide_env_values = true)]
    pub database_url: String,

    /// The key file that seals client secrets and tokens in the database (created on first run,
    /// readable by its owner only; a file group or others may read is refused). Keep it out of
    /// database backups. Default: `$XDG_CONFIG_HOME/intelligence360/secrets.key`, else
    /// `~/.config/intelligence360/secrets.key` (or `data/secrets.key` while an older install still
    /// has it there). SIGHUP makes a running server read it again.
    #[arg(long, env = "I360_KEY_FILE", global = true)]
    pub key_file: Option<PathBuf>,

    /// Log lines as human-readable text or as JSON.
    #[arg(long, env = "I360_LOG_FORMAT", value_enum, default_value = "text", global = true)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub serve: ServeArgs,
}

// Parsed once per process: the serve flags' size beside the small commands costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the web server (the default when no command is given).
    Serve(ServeArgs),
    /// Manage organizations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Manage the people who sign in.
    #[command(subcommand)]
    User(UserCommand),
    /// Create or update the database schema, then exit.
    Migrate,
    /// Manage the keys that seal secrets at rest. A rotation has two phases, so that no running
    /// instance meets a key it does not hold: `keys add`, then (once every instance has the file)
    /// `keys promote`.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Phase 1: add a new key to the key file without sealing with it yet. Then copy the file to
    /// every host that runs the server and send each instance SIGHUP to read it (instances also
    /// read it again on their own when they meet a secret sealed with a key they do not hold).
    Add,
    /// Phase 2: make a key the one that seals (the newest by default) and re-seal every stored
    /// secret with it. Run it once every instance's key file holds the key.
    Promote {
        /// The key to make current (its id in the key file).
        #[arg(long)]
        key: Option<u32>,
    },
    /// Re-seal the stored secrets still under an older key with the current one: again after
    /// every instance has reloaded the promoted key, before an older key is removed from the file.
    Reseal,
    /// Replaced by `keys add` and `keys promote`: explains them and changes nothing.
    Rotate,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, env = "I360_BIND", default_value = "127.0.0.1:3000")]
    pub bind: SocketAddr,

    /// Directory with the compiled front end (`pkg/i360.js`, `pkg/i360.wasm`, `pkg/i360.css`).
    #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,

    /// The URL people use to reach this server; `https://` turns on Secure cookies.
    /// Defaults to http://<bind>.
    #[arg(long, env = "I360_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Seed the demo organization (one admin, three members) if it is missing, and start the
    /// Microsoft 365 emulator in-process with its demo tenant in place of Microsoft. Only in a
    /// build with the `demo` feature (`make run`'s; a release build has none), on SQLite and a
    /// loopback --bind: the demo's passwords are public.
    #[arg(long, env = "I360_DEMO")]
    pub demo: bool,

    /// Where the demo's Microsoft 365 emulator listens (only with --demo; loopback only).
    #[arg(long, env = "I360_EMULATOR_BIND", default_value = "127.0.0.1:3001")]
    pub emulator_bind: SocketAddr,

    /// Microsoft identity platform authority (the emulator's address in the demo).
    #[arg(long, env = "I360_MICROSOFT_AUTHORITY", default_value = "https://login.microsoftonline.com")]
    pub microsoft_authority: String,

    /// Microsoft Graph base URL (the emulator's `/v1.0` in the demo).
    #[arg(long, env = "I360_MICROSOFT_GRAPH", default_value = "https://graph.microsoft.com/v1.0")]
    pub microsoft_graph: String,

    /// The deployment's own multi-tenant Microsoft app registration: its application (client) id.
    /// With it, organizations type no app registration (they may still bring their own). Give a
    /// certificate (Microsoft's recommendation) or a client secret file with it.
    #[arg(long, env = "I360_MICROSOFT_CLIENT_ID")]
    pub microsoft_client_id: Option<String>,

    /// PEM file with the app registration's certificate and its private key (PKCS#8 or PKCS#1),
    /// for `private_key_jwt` client assertions. The key may be in --microsoft-private-key-file.
    #[arg(long, env = "I360_MICROSOFT_CERTIFICATE_FILE")]
    pub microsoft_certificate_file: Option<PathBuf>,

    /// PEM file with the certificate's private key, when it is not in the certificate file.
    #[arg(long, env = "I360_MICROSOFT_PRIVATE_KEY_FILE")]
    pub microsoft_private_key_file: Option<PathBuf>,

    /// File holding the app registration's client secret (first line), instead of a certificate.
    #[arg(long, env = "I360_MICROSOFT_CLIENT_SECRET_FILE")]
    pub microsoft_client_secret_file: Option<PathBuf>,

    /// Let several organizations pin the same Microsoft 365 tenant (by default one tenant serves
    /// one organization, so nobody can attach another organization's tenant).
    #[arg(long, env = "I360_ALLOW_SHARED_TENANTS")]
    pub allow_shared_tenants: bool,

    /// Reverse proxies in front of the server (addresses or blocks, comma-separated, e.g.
    /// `10.0.0.0/8,192.0.2.1`): only from them are `Forwarded`/`X-Forwarded-For` believed, so sign-in
    /// limits count each client, not the proxy. Empty: the connection's own address counts.
    #[arg(long, env = "I360_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,

    /// Seconds to finish the requests in flight after SIGTERM or Ctrl-C (no new connections are
    /// accepted meanwhile; the sync workers stop at once and hand their mailboxes back). Requests
    /// still running after it are cut.
    #[arg(long, env = "I360_SHUTDOWN_TIMEOUT", default_value_t = 10, value_name = "SECONDS")]
    pub shutdown_timeout: u64,

    /// Seconds a connection has to send a whole request head, and the longest it may sit idle
    /// between requests; then it is closed (slow-connection floods hold nothing for long).
    /// Keep a reverse proxy's idle upstream keep-alive below it.
    #[arg(long, env = "I360_HEADER_READ_TIMEOUT", default_value_t = 15, value_name = "SECONDS")]
    pub header_read_timeout: u64,

    /// Seconds a request has to produce its response head; then it is answered 408.
    #[arg(long, env = "I360_REQUEST_TIMEOUT", default_value_t = 60, value_name = "SECONDS")]
    pub request_timeout: u64,

    /// Connections served at once; more wait to be accepted until one closes.
    #[arg(long, env = "I360_MAX_CONNECTIONS", default_value_t = 512)]
    pub max_connections: usize,

    /// Serve `/metrics` on this address alone (e.g. `127.0.0.1:9100`) instead of beside the app.
    #[arg(long, env = "I360_METRICS_BIND")]
    pub metrics_bind: Option<SocketAddr>,

    /// `/metrics` answers only `Authorization: Bearer <token>`. Prefer --metrics-token-file or the
    /// environment, so the token stays out of the process list.
    #[arg(long, env = "I360_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// Read the `/metrics` bearer token from this file (first line).
    #[arg(long, env = "I360_METRICS_TOKEN_FILE")]
    pub metrics_token_file: Option<PathBuf>,

    /// Seconds a session may go unused before it ends (it ends after 7 days regardless). At least
    /// 60: a session's use is recorded at most once a minute.
    #[arg(
        long,
        env = "I360_SESSION_IDLE_TIMEOUT",
        default_value_t = 12 * 60 * 60,
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(60..)
    )]
    pub session_idle_timeout: u64,
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an organization.
    Create {
        /// The organization's name, unique on this server.
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user in an organization.
    Create {
        /// The organization's name.
        #[arg(long)]
        org: String,
        /// The email the person signs in with.
        #[arg(long)]
        email: String,
        /// The name shown in the app.
        #[arg(long, default_value = "")]
        name: String,
        /// `admin` or `member`.
        #[arg(long, default_value = "member")]
        role: domain::Role,
        /// The password. Prefer `--password-file` or the environment so it stays out of shell history.
        #[arg(long, env = "I360_USER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Read the password from this file (first line).
        #[arg(long, env = "I360_USER_PASSWORD_FILE")]
        password_file: Option<PathBuf>,
    },
}
