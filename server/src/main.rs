//! `server`: starts the web server or runs an operator command. See `server --help`.

use clap::Parser;
use server::cli::{Cli, Command, OrgCommand, ServeArgs, UserCommand};
use server::{MicrosoftEndpoints, ServeConfig, demo, metrics::Metrics, shutdown, telemetry};
use std::sync::Arc;
use store::secrets::Keyring;

mod keys;

/// See the `mimalloc` line of Cargo.toml: page rendering allocates much, across threads.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    // Before the database is opened: a refused demo touches nothing.
    if let Err(refusal) = demo::check(&cli) {
        eprintln!("error: {refusal}");
        return std::process::ExitCode::FAILURE;
    }
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    ensure_sqlite_dir(&cli.database_url)?;
    let key_file = keys::key_file(cli.key_file.as_deref())?;
    if let Some(Command::Keys(command)) = &cli.command {
        return keys::run(command, &key_file, &cli.database_url).await;
    }
    let keyring = Arc::new(Keyring::load_or_create(&key_file)?);
    let store = store::open(&cli.database_url, keyring.clone()).await?;
    match cli.command.unwrap_or(Command::Serve(cli.serve)) {
        Command::Keys(_) => Ok(()),
        // SIGHUP re-reads the key file, listened to before the server serves (it would end it).
        Command::Serve(args) => {
            keys::reload_on_hangup(keyring);
            serve(store, args).await
        }
        Command::Migrate => {
            println!("database is up to date ({})", store.backend().as_str());
            Ok(())
        }
        Command::Org(OrgCommand::Create { name }) => {
            let org = store.create_organization(name.trim()).await?;
            println!("created organization {:?} ({})", org.name, org.id);
            Ok(())
        }
        Command::User(UserCommand::Create { org, email, name, role, password, password_file }) => {
            create_user(store, &org, &email, &name, role, &user_password(password, password_file)?).await
        }
    }
}

/// The new user's password: given (`I360_USER_PASSWORD`), or the first line of `--password-file`.
fn user_password(given: Option<String>, file: Option<std::path::PathBuf>) -> anyhow::Result<String> {
    match (given, file) {
        (Some(p), _) => Ok(p),
        (None, Some(path)) => Ok(std::fs::read_to_string(&path)?.lines().next().unwrap_or_default().to_owned()),
        (None, None) => anyhow::bail!("give the password with --password-file or I360_USER_PASSWORD"),
    }
}

async fn create_user(store: store::DynStore, org: &str, email: &str, name: &str, role: domain::Role, password: &str) -> anyhow::Result<()> {
    let organization = store
        .organization_by_name(org.trim())
        .await?
        .ok_or_else(|| anyhow::anyhow!("no organization named {org:?}; create it with `server org create`"))?;
    let user = store::accounts::create_user(store.as_ref(), organization.id, email, name, role, password).await?;
    println!("created {} {} in {:?}", user.role.as_str(), user.email, organization.name);
    Ok(())
}

async fn serve(store: store::DynStore, args: ServeArgs) -> anyhow::Result<()> {
    // Listening before anything else starts, so a stop signal is never missed.
    let signals = shutdown::Signals::listen();
    let drain = std::time::Duration::from_secs(args.shutdown_timeout);
    if args.demo {
        seed_demo(&store).await?;
    }
    let listener = tokio::net::TcpListener::bind(args.bind).await?;
    let bound = listener.local_addr()?;
    let public_url = args.public_url.clone().unwrap_or_else(|| format!("http://{bound}"));
    // The emulator (demo only) is kept alive for as long as the server runs.
    let (microsoft, emulator) = microsoft_for(&args, &public_url).await?;
    let config = serve_config(args, bound, public_url, microsoft)?;
    let scheduler = server::http::sync_scheduler(store.clone(), &config)?;
    let metrics = Arc::new(Metrics::default());
    let router = server::router(store.clone(), scheduler.clone(), &config, metrics.clone())?;
    // Sync workers run inside every instance; they share work with other instances through leases.
    let (stop_sync, sync_stopped) = tokio::sync::watch::channel(false);
    // `--metrics-bind`: `/metrics` on its own listener, closed when the workers stop.
    server::http::serve_metrics_apart(store.clone(), scheduler.clone(), &config, metrics, sync_stopped.clone()).await?;
    // Expired sessions are purged hourly; the task ends with the workers.
    server::housekeeping::spawn(store, sync_stopped.clone());
    let workers = scheduler.spawn(sync_stopped);
    tracing::info!(url = %config.public_url, authority = %config.microsoft.authority, "listening");
    println!("\nIntelligence360 is running at {}\n", config.public_url);
    if let Some(emu) = &emulator {
        print_demo_banners(emu);
    }
    serve_until_stopped(listener, router, config.edge.limits, signals, drain, stop_sync, workers).await
}

/// `--demo`: the demo organization and its people, in a build with the `demo` feature only.
async fn seed_demo(store: &store::DynStore) -> anyhow::Result<()> {
    #[cfg(feature = "demo")]
    {
        demo::seed(store.as_ref()).await
    }
    #[cfg(not(feature = "demo"))]
    {
        let _ = store;
        Err(demo::DemoRefusal::NotBuilt.into())
    }
}

/// What the router and the sync engine are built from: the flags, the bound address, the public URL
/// and Microsoft's endpoints. The deployment's app registration and the trusted proxies are checked
/// here, so a mistake in them stops the server before it serves anything.
fn serve_config(
    args: ServeArgs,
    bind: std::net::SocketAddr,
    public_url: String,
    microsoft: MicrosoftEndpoints,
) -> anyhow::Result<ServeConfig> {
    Ok(ServeConfig {
        bind,
        deployment_app: server::deployment_app::from_args(&args)?,
        trusted_proxies: server::client_address::TrustedProxies::parse(&args.trusted_proxies)
            .map_err(|e| anyhow::anyhow!("--trusted-proxies: {e}"))?,
        shared_tenants: args.allow_shared_tenants,
        edge: server::edge::EdgeConfig::from_args(&args)?,
        session_idle_timeout: std::time::Duration::from_secs(args.session_idle_timeout),
        site_root: args.site_root,
        public_url,
        microsoft,
    })
}

/// Microsoft's endpoints from the flags, or (demo) an emulator started in-process in its place.
async fn microsoft_for(args: &ServeArgs, public_url: &str) -> anyhow::Result<(MicrosoftEndpoints, Option<Emulator>)> {
    if !args.demo {
        return Ok((MicrosoftEndpoints { authority: args.microsoft_authority.clone(), graph: args.microsoft_graph.clone() }, None));
    }
    #[cfg(feature = "demo")]
    {
        let emu = demo::start_emulator(args.emulator_bind, public_url).await?;
        Ok((MicrosoftEndpoints { authority: emu.login_base(), graph: emu.graph_base() }, Some(emu)))
    }
    #[cfg(not(feature = "demo"))]
    {
        let _ = public_url;
        Err(demo::DemoRefusal::NotBuilt.into())
    }
}

/// The demo's emulator, kept alive for as long as the server runs. A build without the demo has
/// none (its type has no values; `demo::check` refused `--demo` already, and `serve` would too).
#[cfg(feature = "demo")]
type Emulator = m365_emulator::RunningEmulator;
#[cfg(not(feature = "demo"))]
type Emulator = std::convert::Infallible;

#[cfg(feature = "demo")]
fn print_demo_banners(emu: &Emulator) {
    println!("{}", demo::logins_banner());
    println!("{}", demo::emulator_banner(&emu.base_url()));
}

#[cfg(not(feature = "demo"))]
fn print_demo_banners(emu: &Emulator) {
    match *emu {}
}

/// Serves within the edge's `limits` until SIGTERM or Ctrl-C, then stops accepting, stops the sync
/// workers (they hand their leases back) and lets requests in flight finish within `drain`.
async fn serve_until_stopped(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    limits: server::edge::Limits,
    signals: shutdown::Signals,
    drain: std::time::Duration,
    stop_sync: tokio::sync::watch::Sender<bool>,
    workers: tokio::task::JoinHandle<()>,
) -> anyhow::Result<()> {
    let (begun_tx, begun_rx) = tokio::sync::oneshot::channel();
    let serving = server::edge::serve(listener, router, &limits, async move {
        let signal = signals.received().await;
        tracing::info!(signal, drain_timeout = ?drain, "shutting down: no new connections; finishing the requests in flight");
        // The workers stop now, in parallel with the drain, and hand their leases back.
        let _ = stop_sync.send(true);
        let _ = begun_tx.send(());
    });
    let begun = async move {
        if begun_rx.await.is_err() {
            std::future::pending().await
        }
    };
    let (ended, deadline) = shutdown::serve_with_drain(serving, begun, drain).await?;
    if ended == shutdown::Ended::TimedOut {
        tracing::warn!(drain_timeout = ?drain, "requests still running after the drain timeout are cut");
    }
    await_workers(deadline, workers).await;
    Ok(())
}

/// Waits for the stopping sync workers until the drain's deadline.
async fn await_workers(deadline: tokio::time::Instant, workers: tokio::task::JoinHandle<()>) {
    match tokio::time::timeout_at(deadline, workers).await {
        Ok(_) => tracing::info!("stopped; sync leases handed back"),
        Err(_) => tracing::warn!("the sync workers did not stop within the drain timeout; their leases will expire"),
    }
}

/// SQLite creates the file but not its directory; `./data/` may not exist on a fresh clone.
fn ensure_sqlite_dir(url: &str) -> anyhow::Result<()> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let path = path.split('?').next().unwrap_or(path);
        if let Some(dir) = std::path::Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
    }
    Ok(())
}
