//! `--demo`: the Northwind organization with well-known passwords, and the Microsoft 365 emulator
//! in place of Microsoft. Both exist only in a build with the `demo` feature (`make run` and
//! `make test` turn it on; a release build leaves it off), and even there the demo runs only on a
//! SQLite database and a loopback address, so its passwords never guard anything reachable or real.
//!
//! [`availability`] decides, in every build, whether `--demo` may run.

use crate::cli::{Cli, Command};
use std::net::SocketAddr;

#[cfg(feature = "demo")]
mod northwind;
#[cfg(feature = "demo")]
pub use northwind::*;

/// Whether this binary was built with the demo (the `demo` feature).
pub const BUILT_WITH_DEMO: bool = cfg!(feature = "demo");

/// Why `--demo` does not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DemoRefusal {
    #[error("this build has no demo; build with --features demo (make run does)")]
    NotBuilt,
    #[error(
        "the demo seeds well-known passwords, so it runs on a SQLite database only, not on {0}; \
         give it --database-url sqlite://… (make run does)"
    )]
    NotSqlite(&'static str),
    #[error(
        "the demo seeds well-known passwords, so it listens on a loopback address only, not on {0}; \
         give it --bind and --emulator-bind on 127.0.0.1 or [::1]"
    )]
    NotLoopback(SocketAddr),
}

/// Whether `--demo` may run: the build has the demo, the database is SQLite (what `store::open`
/// takes as SQLite: a `sqlite:` URL) and the server and its emulator listen on loopback addresses
/// only. Pure, so both builds' answers are tested wherever the tests are built.
pub fn availability(build_has_demo: bool, database_url: &str, bind: SocketAddr, emulator_bind: SocketAddr) -> Result<(), DemoRefusal> {
    if !build_has_demo {
        return Err(DemoRefusal::NotBuilt);
    }
    if !database_url.starts_with("sqlite:") {
        let kind = if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
            "PostgreSQL"
        } else {
            "this database"
        };
        return Err(DemoRefusal::NotSqlite(kind));
    }
    for addr in [bind, emulator_bind] {
        // `::ffff:127.0.0.1` is loopback too; `0.0.0.0` and `::` are every address, not loopback.
        if !addr.ip().to_canonical().is_loopback() {
            return Err(DemoRefusal::NotLoopback(addr));
        }
    }
    Ok(())
}

/// Whether the command line may run: refuses `--demo` (or `I360_DEMO`) where [`availability`] does,
/// for the command that serves. The other commands seed nothing and start no emulator.
pub fn check(cli: &Cli) -> Result<(), DemoRefusal> {
    let args = match &cli.command {
        None => &cli.serve,
        Some(Command::Serve(args)) => args,
        Some(_) => return Ok(()),
    };
    if !args.demo {
        return Ok(());
    }
    availability(BUILT_WITH_DEMO, &cli.database_url, args.bind, args.emulator_bind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    const SQLITE: &str = "sqlite://data/intelligence360.db";
    const LOOPBACK: &str = "127.0.0.1:3001";

    fn decide(build: bool, db: &str, bind: &str) -> Result<(), DemoRefusal> {
        availability(build, db, addr(bind), addr(LOOPBACK))
    }

    #[test]
    fn the_demo_runs_on_sqlite_and_loopback() {
        assert_eq!(decide(true, SQLITE, "127.0.0.1:3000"), Ok(()));
        assert_eq!(decide(true, "sqlite::memory:", "127.0.0.1:0"), Ok(()));
        assert_eq!(decide(true, SQLITE, "127.8.9.10:3000"), Ok(()), "all of 127.0.0.0/8 is loopback");
        assert_eq!(decide(true, SQLITE, "[::1]:3000"), Ok(()));
        assert_eq!(decide(true, SQLITE, "[::ffff:127.0.0.1]:3000"), Ok(()), "an IPv4-mapped loopback");
    }

    #[test]
    fn a_build_without_the_demo_refuses_it_whatever_else_is_given() {
        assert_eq!(decide(false, SQLITE, "127.0.0.1:3000"), Err(DemoRefusal::NotBuilt));
        assert_eq!(decide(false, "postgres://db/i360", "0.0.0.0:3000"), Err(DemoRefusal::NotBuilt));
        let message = DemoRefusal::NotBuilt.to_string();
        assert!(message.contains("this build has no demo") && message.contains("--features demo"), "{message}");
    }

    #[test]
    fn the_demo_refuses_postgresql() {
        for url in ["postgres://i360@127.0.0.1/i360", "postgresql://i360@localhost/i360"] {
            let refusal = decide(true, url, "127.0.0.1:3000").unwrap_err();
            assert_eq!(refusal, DemoRefusal::NotSqlite("PostgreSQL"));
            assert!(refusal.to_string().contains("not on PostgreSQL"), "{refusal}");
        }
        assert_eq!(decide(true, "mysql://db/i360", "127.0.0.1:3000"), Err(DemoRefusal::NotSqlite("this database")));
    }

    #[test]
    fn the_demo_refuses_an_address_beyond_loopback() {
        for bind in ["0.0.0.0:3000", "[::]:3000", "192.0.2.10:3000", "[2001:db8::1]:3000", "[::ffff:192.0.2.10]:3000"] {
            let refusal = decide(true, SQLITE, bind).unwrap_err();
            assert_eq!(refusal, DemoRefusal::NotLoopback(addr(bind)));
            assert!(refusal.to_string().contains(&format!("not on {}", addr(bind))), "{refusal}");
        }
        // The emulator's address counts too: it signs anyone in with the demo's password.
        assert_eq!(
            availability(true, SQLITE, addr("127.0.0.1:3000"), addr("0.0.0.0:3001")),
            Err(DemoRefusal::NotLoopback(addr("0.0.0.0:3001")))
        );
    }

    #[test]
    fn the_command_line_is_checked_for_the_command_that_serves() {
        let check_args = |args: &[&str]| check(&Cli::parse_from([&["server"][..], args].concat()));
        let postgres = ["--database-url", "postgres://i360@db.internal/i360"];
        // In this build (the tests are built with the demo) only the database and the binds count.
        assert_eq!(check_args(&["--demo", "--database-url", "sqlite://x.db"]), Ok(()));
        assert_eq!(check_args(&[&postgres[..], &["--demo"]].concat()), Err(DemoRefusal::NotSqlite("PostgreSQL")));
        assert_eq!(
            check_args(&["--database-url", "sqlite://x.db", "serve", "--demo", "--bind", "0.0.0.0:3000"]),
            Err(DemoRefusal::NotLoopback(addr("0.0.0.0:3000")))
        );
        // Without --demo, or for a command that does not serve, nothing is refused.
        assert_eq!(check_args(&postgres), Ok(()));
        assert_eq!(check_args(&[&postgres[..], &["--bind", "0.0.0.0:3000"]].concat()), Ok(()));
        assert_eq!(check_args(&[&postgres[..], &["--demo", "migrate"]].concat()), Ok(()));
    }
}
