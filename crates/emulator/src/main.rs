//! `m365-emulator`: runs the Microsoft 365 emulator as a process.

use clap::Parser;
use m365_emulator::{EmulatorConfig, Fixture, ThrottleConfig};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Microsoft identity platform + Graph emulator (tests, demo, benchmarks). Never point production here.
#[derive(Parser, Debug)]
#[command(name = "m365-emulator", version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "M365_EMULATOR_BIND", default_value = "127.0.0.1:4365")]
    bind: SocketAddr,
    /// Fixture file (JSON); default: the built-in demo tenants.
    #[arg(long, env = "M365_EMULATOR_FIXTURE")]
    fixture: Option<PathBuf>,
    /// Serve the control API under /_emulator (tests and demos only).
    #[arg(long, env = "M365_EMULATOR_CONTROL_API")]
    control_api: bool,
    /// Serve HTTPS with a freshly generated self-signed certificate.
    #[arg(long, env = "M365_EMULATOR_TLS")]
    tls: bool,
    /// Where to write the certificate PEM when --tls is on.
    #[arg(long, env = "M365_EMULATOR_TLS_CERT_OUT")]
    tls_cert_out: Option<PathBuf>,
    /// Turn Microsoft's per-mailbox limits off.
    #[arg(long, env = "M365_EMULATOR_NO_THROTTLING")]
    no_throttling: bool,
    /// Divide the 10,000 requests / 10 minutes limit (and window) by this factor.
    #[arg(long, env = "M365_EMULATOR_THROTTLE_SCALE")]
    throttle_scale: Option<u32>,
    /// Content seed (same seed, same mailboxes).
    #[arg(long, env = "M365_EMULATOR_SEED")]
    seed: Option<u64>,
    /// Messages per mailbox (overrides the fixture for every mailbox).
    #[arg(long, env = "M365_EMULATOR_MESSAGES")]
    messages: Option<u64>,
    /// Base URL to put in links (when behind a proxy).
    #[arg(long, env = "M365_EMULATOR_PUBLIC_URL")]
    public_url: Option<String>,
    /// Behave as Microsoft does in production, rough edges included (`ProtocolOptions::realistic`):
    /// varying token lifetimes, short-name scopes, ignored `$top`/`$select`, repeated calendar items,
    /// directory throttling, random 503/504s.
    #[arg(long, env = "M365_EMULATOR_REALISTIC")]
    realistic: bool,
    /// Print the demo fixture as JSON and exit.
    #[arg(long)]
    print_demo_fixture: bool,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = Args::parse();
    if args.print_demo_fixture {
        match serde_json::to_string_pretty(&Fixture::demo()) {
            Ok(s) => {
                println!("{s}");
                return std::process::ExitCode::SUCCESS;
            }
            Err(e) => {
                eprintln!("{e}");
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    let mut fixture = match &args.fixture {
        Some(p) => match Fixture::from_path(p) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("{e}");
                return std::process::ExitCode::FAILURE;
            }
        },
        None => Fixture::demo(),
    };
    if let Some(seed) = args.seed {
        fixture.seed = seed;
    }
    if let Some(m) = args.messages {
        let mut counts = fixture.content.counts;
        counts.messages = m;
        fixture.set_all_counts(counts);
    }
    let mut config = EmulatorConfig::new(fixture);
    config.bind = args.bind;
    config.control_api = args.control_api;
    config.tls = args.tls;
    config.tls_cert_path = args.tls_cert_out;
    config.public_base_url = args.public_url;
    if args.realistic {
        config.protocol = m365_emulator::ProtocolOptions::realistic();
    }
    config.throttling = if args.no_throttling {
        ThrottleConfig::disabled()
    } else if let Some(s) = args.throttle_scale {
        ThrottleConfig::scaled(s)
    } else {
        ThrottleConfig::default()
    };
    match m365_emulator::spawn(config).await {
        Ok(emu) => {
            println!(
                "m365-emulator listening on {} (authority base {}, graph base {})",
                emu.base_url(),
                emu.login_base(),
                emu.graph_base()
            );
            tokio::select! {
                _ = tokio::signal::ctrl_c() => emu.shutdown().await,
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("m365-emulator: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
