//! `souk-bench`: Souk against a native axum + sqlx floor, on loopback.
//!
//! One run starts the release `souk` binary (building it if missing) and
//! the native floor (this binary's hidden `native` subcommand), each on a
//! fresh database of its own, seeds Souk through its API (an admin, goods
//! with stock, customers with money, their tokens) and the floor at start
//! (the same rows, tokens signed with its secret), then drives each
//! scenario against both with the built-in load generator ([`load`]),
//! interleaved so that other load on the machine hits both alike. Last, it
//! times start-to-serving with a warm compile cache. `--postgres URL` runs
//! everything again on fresh PostgreSQL databases created under that URL.
//!
//! Figures are only meaningful as ratios to the native floor of the same
//! run: the load generator shares the cores with the server it measures.

mod load;
mod native;
mod servers;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context;
use clap::Parser;
use serde_json::{Value, json};

use load::{RawRequest, Report};
use servers::Server;

/// The admin Souk is started with.
const ADMIN: (&str, &str) = ("benchadmin", "bench-admin-password-1");
/// The customers' password.
const PASSWORD: &str = "bench-password-1";
/// Both servers' JWT secret (HS256, at least 32 bytes).
const JWT_SECRET: &str = "souk-bench-secret-of-at-least-32-bytes";
/// Stock of every good: enough that no purchase runs out.
const STOCK: i64 = 1_000_000;
/// Money of every customer, in dollars: enough that no purchase is refused.
const WALLET_DOLLARS: i64 = 1_000_000;

#[derive(Parser, Debug)]
#[command(about = "Benchmark Souk against a native axum + sqlx floor on loopback")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Measured seconds per scenario and server.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Unmeasured seconds before each measurement.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Connections for the anonymous read (`GET /api/v1/goods/{id}`).
    #[arg(long, default_value_t = 64)]
    read_connections: usize,
    /// Connections for the authenticated read (`GET /api/v1/customers/{me}`).
    #[arg(long, default_value_t = 64)]
    auth_connections: usize,
    /// Connections for the purchase (`POST /api/v1/sales`).
    #[arg(long, default_value_t = 16)]
    purchase_connections: usize,
    /// Scenarios to run (read, auth, purchase), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "read,auth,purchase")]
    scenarios: Vec<Scenario>,
    /// Customers to seed (each registers and logs in: Argon2 twice).
    #[arg(long, default_value_t = 16)]
    customers: usize,
    /// Goods to seed.
    #[arg(long, default_value_t = 64)]
    goods: usize,
    /// How many warm starts to time (0: none).
    #[arg(long, default_value_t = 3)]
    start_runs: usize,
    /// Threads of the load generator (it shares the cores with the server).
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Also run on PostgreSQL: fresh databases are created (and dropped)
    /// under this URL, e.g. postgres://postgres@127.0.0.1:5432/postgres.
    #[arg(long)]
    postgres: Option<String>,
    /// Skip SQLite (with --postgres: PostgreSQL only).
    #[arg(long)]
    no_sqlite: bool,
    /// The souk binary; default `target/release/souk`, built if missing.
    #[arg(long)]
    souk: Option<PathBuf>,
    /// Souk's log filter (`SOUK_LOG`); its output goes to a file.
    #[arg(long, default_value = "info")]
    souk_log: String,
    /// Keep the work directory (databases, logs) and print where it is.
    #[arg(long)]
    keep: bool,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// The native floor server (started by the harness).
    #[command(hide = true)]
    Native(native::NativeArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Scenario {
    /// `GET /api/v1/goods/{id}`, no token.
    Read,
    /// `GET /api/v1/customers/{me}` with the customer's token.
    Auth,
    /// `POST /api/v1/sales`, one unit of a good.
    Purchase,
}

impl Scenario {
    fn label(self) -> &'static str {
        match self {
            Self::Read => "read GET /goods/{id}",
            Self::Auth => "auth read GET /customers/{me}",
            Self::Purchase => "purchase POST /sales",
        }
    }
}

/// What the load generator needs to know about a seeded server.
struct Fixtures {
    /// (id, name) of every good.
    goods: Vec<(String, String)>,
    /// (username, token) of every customer.
    customers: Vec<(String, String)>,
}

/// One row of the table.
struct Row {
    backend: &'static str,
    scenario: String,
    server: &'static str,
    connections: usize,
    report: Option<Report>,
    rss_kib: u64,
    hwm_kib: u64,
    ratio: Option<f64>,
    /// Native's server CPU per request over this server's (1.0: as cheap).
    cpu_ratio: Option<f64>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Native(args)) = cli.command {
        return tokio::runtime::Runtime::new()?.block_on(native::serve(args));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.client_threads.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(harness(cli))
}

async fn harness(cli: Cli) -> anyhow::Result<()> {
    let root = workspace_root();
    let souk = match &cli.souk {
        Some(path) => path.clone(),
        None => ensure_souk(&root)?,
    };
    let work = tempfile::Builder::new().prefix("souk-bench-").tempdir()?;
    // Persistent, so every start but the very first is a warm start.
    let cache = root.join("target/bench/cache");
    std::fs::create_dir_all(&cache)?;
    let load_before = loadavg();

    let mut rows = Vec::new();
    let mut starts = Vec::new();
    if !cli.no_sqlite {
        let souk_db = format!("sqlite://{}", work.path().join("souk.db").display());
        let native_db = format!("sqlite://{}", work.path().join("native.db").display());
        backend_run(
            &cli,
            "sqlite",
            &souk,
            &cache,
            work.path(),
            &souk_db,
            &native_db,
            &mut rows,
        )
        .await?;
        if cli.start_runs > 0 {
            starts.push(start_times(&cli, &souk, &cache, work.path()).await?);
        }
    }
    if let Some(admin_url) = &cli.postgres {
        let souk_db = servers::PgDatabase::create(admin_url, "souk_bench").await?;
        let native_db = servers::PgDatabase::create(admin_url, "souk_bench_native").await?;
        let result = backend_run(
            &cli,
            "postgres",
            &souk,
            &cache,
            work.path(),
            &souk_db.url,
            &native_db.url,
            &mut rows,
        )
        .await;
        souk_db.drop_database().await;
        native_db.drop_database().await;
        result?;
    }

    print_table(&cli, &rows, &starts, &load_before);
    if cli.keep {
        let kept = work.keep();
        println!("work directory kept: {}", kept.display());
    }
    Ok(())
}

/// The repository's root (this crate lives in `bench/`).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `target/release/souk`, built with `cargo build --release -p souk` if missing.
fn ensure_souk(root: &Path) -> anyhow::Result<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let binary = target.join("release/souk");
    if !binary.exists() {
        eprintln!("building the release souk binary (cargo build --release -p souk)...");
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "--release", "-p", "souk"])
            .current_dir(root)
            .status()
            .context("cannot run cargo")?;
        anyhow::ensure!(status.success(), "cargo build --release -p souk failed");
    }
    Ok(binary)
}

#[allow(clippy::too_many_arguments)]
async fn backend_run(
    cli: &Cli,
    backend: &'static str,
    souk: &Path,
    cache: &Path,
    work: &Path,
    souk_db: &str,
    native_db: &str,
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    eprintln!("[{backend}] starting the native floor and souk...");
    let native = Server::native(
        native_db,
        JWT_SECRET,
        cli.customers,
        cli.goods,
        STOCK,
        WALLET_DOLLARS * 100,
    )
    .await?;
    let native_fixtures = native_fixtures(cli.customers, cli.goods)?;
    let souk_server =
        Server::souk(souk, souk_db, cache, work, JWT_SECRET, ADMIN, &cli.souk_log).await?;
    eprintln!("[{backend}] seeding souk through its API...");
    let souk_fixtures = seed_souk(souk_server.addr, cli.customers, cli.goods).await?;
    // Seeding hashes passwords (Argon2, 19 MiB each): what the allocator
    // keeps of that shows here, before any measured load.
    let (souk_rss, _) = servers::memory(souk_server.pid());
    let (native_rss, _) = servers::memory(native.pid());
    eprintln!(
        "[{backend}] RSS after seeding: souk {:.0} MiB, native {:.0} MiB",
        souk_rss as f64 / 1024.0,
        native_rss as f64 / 1024.0
    );
    rows.push(Row {
        backend,
        scenario: "idle after seeding".into(),
        server: "souk",
        connections: 0,
        report: None,
        rss_kib: souk_rss,
        hwm_kib: servers::memory(souk_server.pid()).1,
        ratio: None,
        cpu_ratio: None,
    });

    let duration = Duration::from_secs_f64(cli.duration);
    let warmup = Duration::from_secs_f64(cli.warmup);
    for &scenario in &cli.scenarios {
        let connections = match scenario {
            Scenario::Read => cli.read_connections,
            Scenario::Auth => cli.auth_connections,
            Scenario::Purchase => cli.purchase_connections,
        };
        let mut native_rate = None;
        let mut native_cpu = None;
        for (name, server, fixtures) in [
            ("native", &native, &native_fixtures),
            ("souk", &souk_server, &souk_fixtures),
        ] {
            eprintln!(
                "[{backend}] {} on {name}, {connections} connections...",
                scenario.label()
            );
            let requests = requests(scenario, fixtures, connections);
            let report = load::run(
                server.addr,
                server.pid(),
                requests,
                connections,
                warmup,
                duration,
            )
            .await?;
            if let Some(error) = &report.first_error {
                eprintln!("  first error: {error}");
            }
            let (rss_kib, hwm_kib) = servers::memory(server.pid());
            let cpu = report.server_cpu_per_request.as_secs_f64();
            let (ratio, cpu_ratio) = match name {
                "native" => {
                    native_rate = Some(report.ok_per_sec);
                    native_cpu = Some(cpu);
                    (Some(1.0), Some(1.0))
                }
                _ => (
                    native_rate
                        .filter(|n| *n > 0.0)
                        .map(|n| report.ok_per_sec / n),
                    native_cpu.filter(|_| cpu > 0.0).map(|n| n / cpu),
                ),
            };
            rows.push(Row {
                backend,
                scenario: scenario.label().to_owned(),
                server: name,
                connections,
                report: Some(report),
                rss_kib,
                hwm_kib,
                ratio,
                cpu_ratio,
            });
        }
    }
    Ok(())
}

/// Median, fastest and slowest start-to-serving of souk and of the native
/// floor, each on a fresh SQLite file (souk with the warm compile cache).
async fn start_times(
    cli: &Cli,
    souk: &Path,
    cache: &Path,
    work: &Path,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    eprintln!("[sqlite] timing {} warm starts...", cli.start_runs);
    let mut souk_times = Vec::new();
    let mut native_times = Vec::new();
    for run in 0..cli.start_runs {
        let db = format!(
            "sqlite://{}",
            work.join(format!("start-{run}.db")).display()
        );
        let server = Server::souk(souk, &db, cache, work, JWT_SECRET, ADMIN, "warn").await?;
        souk_times.push(server.started);
        drop(server);
        let db = format!(
            "sqlite://{}",
            work.join(format!("native-start-{run}.db")).display()
        );
        let server = Server::native(&db, JWT_SECRET, 0, 0, 0, 0).await?;
        native_times.push(server.started);
    }
    souk_times.sort();
    native_times.sort();
    Ok((souk_times, native_times))
}

fn native_fixtures(customers: usize, goods: usize) -> anyhow::Result<Fixtures> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let key = jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes());
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    let customers = (0..customers)
        .map(|index| {
            let claims = json!({
                "sub": native::customer_id(index),
                "name": native::username(index),
                "role": "customer",
                "iat": now,
                "exp": now + 24 * 3600,
                "jti": uuid::Uuid::new_v4().to_string(),
                "ep": 0,
            });
            let token = jsonwebtoken::encode(&header, &claims, &key)?;
            Ok((native::username(index), token))
        })
        .collect::<anyhow::Result<_>>()?;
    let goods = (0..goods)
        .map(|index| (native::good_id(index), native::good_name(index)))
        .collect();
    Ok(Fixtures { goods, customers })
}

/// Seed souk through its public API: goods as the admin, customers who
/// register, get money from the admin and log in.
async fn seed_souk(addr: SocketAddr, customers: usize, goods: usize) -> anyhow::Result<Fixtures> {
    let client = reqwest::Client::new();
    let base = format!("http://{addr}");
    let admin = login(&client, &base, ADMIN.0, ADMIN.1).await?;
    let mut good_list = Vec::new();
    for index in 0..goods {
        let name = native::good_name(index);
        let body = json!({
            "name": name,
            "category": "food",
            "price": 1.0,
            "description": "fresh",
            "count": STOCK,
        });
        let good = post(
            &client,
            &format!("{base}/api/v1/goods"),
            Some(&admin),
            &body,
        )
        .await?;
        let id = good["id"].as_str().context("a created good has no id")?;
        good_list.push((id.to_owned(), name));
    }
    // Registration and login each hash a password: a few at a time.
    let mut customer_list = Vec::new();
    for batch in (0..customers).collect::<Vec<_>>().chunks(4) {
        let mut tasks = Vec::new();
        for &index in batch {
            let (client, base, admin) = (client.clone(), base.clone(), admin.clone());
            tasks.push(tokio::spawn(async move {
                let username = native::username(index);
                let body = json!({
                    "username": username,
                    "password": PASSWORD,
                    "full_name": "Bench Customer",
                    "age": 30,
                    "address": "1 Market Street",
                    "gender": "female",
                    "marital_status": "single",
                });
                post(&client, &format!("{base}/api/v1/customers"), None, &body).await?;
                let charge = format!("{base}/api/v1/customers/{username}/wallet/charge");
                post(
                    &client,
                    &charge,
                    Some(&admin),
                    &json!({ "amount": WALLET_DOLLARS }),
                )
                .await?;
                let token = login(&client, &base, &username, PASSWORD).await?;
                anyhow::Ok((username, token))
            }));
        }
        for task in tasks {
            customer_list.push(task.await??);
        }
    }
    Ok(Fixtures {
        goods: good_list,
        customers: customer_list,
    })
}

async fn login(
    client: &reqwest::Client,
    base: &str,
    username: &str,
    password: &str,
) -> anyhow::Result<String> {
    let body = json!({ "username": username, "password": password });
    let reply = post(client, &format!("{base}/api/v1/auth/login"), None, &body).await?;
    reply["access_token"]
        .as_str()
        .map(str::to_owned)
        .context("login answered without an access_token")
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: &Value,
) -> anyhow::Result<Value> {
    let mut request = client.post(url).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status();
    let text = response.text().await?;
    anyhow::ensure!(status.is_success(), "POST {url}: {status}: {text}");
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Per connection, the requests it cycles through.
fn requests(scenario: Scenario, fixtures: &Fixtures, connections: usize) -> Vec<Vec<RawRequest>> {
    let goods = &fixtures.goods;
    (0..connections)
        .map(|conn| {
            let (username, token) = &fixtures.customers[conn % fixtures.customers.len().max(1)];
            (0..goods.len())
                .map(|k| {
                    let (id, name) = &goods[(conn + k) % goods.len()];
                    match scenario {
                        Scenario::Read => {
                            load::request("GET", &format!("/api/v1/goods/{id}"), None, None)
                        }
                        Scenario::Auth => load::request(
                            "GET",
                            &format!("/api/v1/customers/{username}"),
                            Some(token),
                            None,
                        ),
                        Scenario::Purchase => load::request(
                            "POST",
                            "/api/v1/sales",
                            Some(token),
                            Some(&json!({ "good": name, "quantity": 1 }).to_string()),
                        ),
                    }
                })
                .collect()
        })
        .collect()
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "?".into())
}

fn ms(duration: Duration) -> String {
    let ms = duration.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

fn print_table(
    cli: &Cli,
    rows: &[Row],
    starts: &[(Vec<Duration>, Vec<Duration>)],
    load_before: &str,
) {
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!();
    println!(
        "souk-bench {date}: {cores} cores, load average {load_before} before / {} after; \
         {}s per run after {}s warm-up, {} load thread(s)",
        loadavg(),
        cli.duration,
        cli.warmup,
        cli.client_threads
    );
    println!();
    println!(
        "| backend | scenario | server | conns | req/s | p50 | p99 | max | errors | RSS / peak (MiB) | CPU/req | vs native | CPU vs native |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let Some(report) = &row.report else {
            println!(
                "| {} | {} | {} | - | - | - | - | - | - | {:.0} / {:.0} | - | - | - |",
                row.backend,
                row.scenario,
                row.server,
                row.rss_kib as f64 / 1024.0,
                row.hwm_kib as f64 / 1024.0,
            );
            continue;
        };
        println!(
            "| {} | {} | {} | {} | {:.0} | {} | {} | {} | {} | {:.0} / {:.0} | {:.0} µs | {} | {} |",
            row.backend,
            row.scenario,
            row.server,
            row.connections,
            report.ok_per_sec,
            ms(report.p50),
            ms(report.p99),
            ms(report.max),
            report.errors,
            row.rss_kib as f64 / 1024.0,
            row.hwm_kib as f64 / 1024.0,
            report.server_cpu_per_request.as_secs_f64() * 1e6,
            row.ratio.map_or("-".into(), |r| format!("{r:.2}x")),
            row.cpu_ratio.map_or("-".into(), |r| format!("{r:.2}x")),
        );
    }
    for (souk, native) in starts {
        let median = |times: &[Duration]| times.get(times.len() / 2).copied().unwrap_or_default();
        let range = |times: &[Duration]| {
            format!(
                "{}..{}",
                ms(times.first().copied().unwrap_or_default()),
                ms(times.last().copied().unwrap_or_default())
            )
        };
        println!();
        println!(
            "start-to-serving (fresh SQLite file, warm compile cache, {} runs): souk median {} ({}), \
             native median {} ({}), {:.1}x native",
            souk.len(),
            ms(median(souk)),
            range(souk),
            ms(median(native)),
            range(native),
            median(souk).as_secs_f64() / median(native).as_secs_f64().max(1e-9)
        );
    }
}
