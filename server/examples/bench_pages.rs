//! Page speed of the real server: `make bench-pages` (a release build, as deployed: no demo).
//!
//! Creates an organization and its admin with the operator's commands (`server org create`,
//! `server user create`) on a fresh SQLite database, starts the server binary as a process of its
//! own on the built site, signs in as the admin and then loads, each for `BENCH_PAGES_SECS` seconds
//! (default 5) from `BENCH_PAGES_CLIENTS` concurrent clients (default 16):
//!
//! - `/healthz`, the floor: one database round trip and a few bytes;
//! - the Office 365 settings page, rendered for the signed-in admin (session lookup, settings
//!   read, server-side rendering of the whole page);
//! - the sign-in page for a visitor (rendering a small page, nothing read), to tell rendering's
//!   share from the reads';
//! - the wasm bundle with brotli, as a browser fetches it.
//!
//! It prints requests per second and p50/p99 latency of each, and the settings page's ratios to
//! `/healthz` measured in the same run (issue 15's goals: ≥ 0.3 × the requests per second, p99 ≤
//! 5 × its p99), with the machine's load average, since other work on the machine skews figures.
//! The server binary is `<target>/release/server` or `BENCH_SERVER_BIN`; the site is
//! `<target>/site` or `BENCH_SITE_ROOT`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const ADMIN: &str = "admin@bench.test";
const SETTINGS_PAGE: &str = "/settings/integrations/office365";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `<target>/<profile>/`, where this example's binary lives (`…/examples/bench_pages`).
fn profile_dir() -> Res<PathBuf> {
    let exe = std::env::current_exe()?;
    Ok(exe.parent().and_then(Path::parent).ok_or("no profile directory")?.to_path_buf())
}

fn free_port() -> Res<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The server binary with the bench's database and key file.
struct Server {
    bin: PathBuf,
    dir: tempfile::TempDir,
}

impl Server {
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.env("DATABASE_URL", format!("sqlite://{}", self.dir.path().join("bench.db").display()))
            .env("I360_KEY_FILE", self.dir.path().join("secrets.key"))
            .env("RUST_LOG", "warn");
        cmd
    }

    /// An operator command, which must succeed.
    fn operator(&self, args: &[&str]) -> Res<()> {
        let out = self.command().args(args).output()?;
        if !out.status.success() {
            return Err(format!("server {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr)).into());
        }
        Ok(())
    }

    fn start(&self, port: u16, site: &Path) -> Res<Child> {
        let log = std::fs::File::create(self.dir.path().join("server.log"))?;
        Ok(self
            .command()
            .args(["serve", "--bind", &format!("127.0.0.1:{port}"), "--site-root", &site.to_string_lossy()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?)
    }
}

async fn wait_healthy(http: &reqwest::Client, base: &str) -> Res<()> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if http.get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("the server did not become healthy within 30 s".into())
}

/// A client signed in as the admin through the sign-in server function, as the page does.
async fn sign_in(base: &str, password: &str) -> Res<reqwest::Client> {
    let client = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build()?;
    let res = client
        .post(format!("{base}/api/login"))
        .header("accept", "application/json")
        .header("sec-fetch-site", "same-origin")
        .form(&[("email", ADMIN), ("password", password)])
        .send()
        .await?;
    if !(res.status().is_success() || res.status().is_redirection()) {
        return Err(format!("sign-in: {}", res.status()).into());
    }
    Ok(client)
}

struct Load {
    rps: f64,
    p50: Duration,
    p99: Duration,
}

/// `clients` concurrent loops requesting `url` for `secs` seconds; every answer must be a 200.
async fn load(client: &reqwest::Client, url: &str, headers: &[(&str, &str)], clients: u64, secs: u64) -> Res<Load> {
    let until = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, url) = (client.clone(), url.to_owned());
        let headers: Vec<(String, String)> = headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        tasks.push(tokio::spawn(async move {
            let mut took = Vec::new();
            while Instant::now() < until {
                let t = Instant::now();
                let mut req = client.get(&url);
                for (k, v) in &headers {
                    req = req.header(k, v);
                }
                let res = req.send().await?;
                if res.status() != 200 {
                    return Err(format!("{url}: {}", res.status()).into());
                }
                res.bytes().await?;
                took.push(t.elapsed());
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(took)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    let at = |q: f64| all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or_default();
    Ok(Load { rps: all.len() as f64 / elapsed, p50: at(0.50), p99: at(0.99) })
}

fn print(name: &str, l: &Load) {
    println!("{name:<32} {:>9.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms", l.rps, ms(l.p50), ms(l.p99));
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The wasm bundle's hashed address, from the site's hash file.
fn wasm_path(site: &Path) -> Option<String> {
    let listed = std::fs::read_to_string(site.join("hash.txt")).ok()?;
    let hash = listed.lines().find_map(|l| l.trim().strip_prefix("wasm:"))?.trim().to_owned();
    Some(format!("/pkg/i360.{hash}.wasm"))
}

#[tokio::main]
async fn main() -> Res<()> {
    let profile = profile_dir()?;
    let bin = std::env::var_os("BENCH_SERVER_BIN").map_or_else(|| profile.join("server"), PathBuf::from);
    let site = std::env::var_os("BENCH_SITE_ROOT").map_or_else(|| profile.join("..").join("site"), PathBuf::from);
    let (clients, secs) = (env_or("BENCH_PAGES_CLIENTS", 16), env_or("BENCH_PAGES_SECS", 5));
    println!("bench-pages: {} ({clients} clients, {secs} s each; load average {})", bin.display(), load_average());

    let server = Server { bin, dir: tempfile::tempdir()? };
    let password = "bench-pages-password";
    std::fs::write(server.dir.path().join("password"), password)?;
    server.operator(&["org", "create", "--name", "Bench"])?;
    let password_file = server.dir.path().join("password").to_string_lossy().into_owned();
    server.operator(&[
        "user",
        "create",
        "--org",
        "Bench",
        "--email",
        ADMIN,
        "--name",
        "Bench Admin",
        "--role",
        "admin",
        "--password-file",
        &password_file,
    ])?;
    let port = free_port()?;
    let mut child = server.start(port, &site)?;
    let base = format!("http://127.0.0.1:{port}");
    let outcome = measure(&base, &site, password, clients, secs).await;
    let _ = child.kill();
    let _ = child.wait();
    if outcome.is_err() {
        eprintln!("server log:\n{}", std::fs::read_to_string(server.dir.path().join("server.log")).unwrap_or_default());
    }
    outcome
}

async fn measure(base: &str, site: &Path, password: &str, clients: u64, secs: u64) -> Res<()> {
    let plain = reqwest::Client::builder().no_brotli().no_gzip().build()?;
    wait_healthy(&plain, base).await?;
    let admin = sign_in(base, password).await?;
    // Warm-up: first renders, the connection pool, the sessions table.
    load(&admin, &format!("{base}{SETTINGS_PAGE}"), &[], 2, 1).await?;

    let health = load(&plain, &format!("{base}/healthz"), &[], clients, secs).await?;
    let page = load(&admin, &format!("{base}{SETTINGS_PAGE}"), &[], clients, secs).await?;
    // The sign-in page for a visitor: rendering a small page, with no session or settings read.
    let public = load(&plain, &format!("{base}/login"), &[], clients, secs).await?;
    print("/healthz", &health);
    print(SETTINGS_PAGE, &page);
    print("/login (a visitor)", &public);
    if let Some(wasm) = wasm_path(site) {
        let bundle = load(&plain, &format!("{base}{wasm}"), &[("accept-encoding", "br")], clients, secs).await?;
        print("wasm bundle (brotli)", &bundle);
    }
    let (rps_ratio, p99_ratio) = (page.rps / health.rps, page.p99.as_secs_f64() / health.p99.as_secs_f64().max(1e-9));
    println!("settings page / healthz: {rps_ratio:.2}× the requests per second (goal ≥ 0.3), p99 {p99_ratio:.1}× (goal ≤ 5)");
    Ok(())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map_or_else(|_| "unknown".into(), |s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}
