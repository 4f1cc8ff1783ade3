//! The servers under test as child processes: started on a free loopback
//! port, timed until they answer, measured through `/proc`, killed when
//! dropped; and the throwaway PostgreSQL databases they run on.

use std::{
    net::SocketAddr,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context;

/// How long a server may take to answer its health check.
const START_TIMEOUT: Duration = Duration::from_secs(300);

/// A running server process.
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// From spawning the process until its health check answered 200.
    pub started: Duration,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// `souk serve` on `database_url`, its output in `work/souk-*.log`.
    pub async fn souk(
        binary: &Path,
        database_url: &str,
        cache: &Path,
        work: &Path,
        jwt_secret: &str,
        admin: (&str, &str),
        log: &str,
    ) -> anyhow::Result<Self> {
        let addr = free_port()?;
        let log_path = work.join(format!("souk-{}.log", addr.port()));
        let log_file = std::fs::File::create(&log_path)?;
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .env("SOUK_ADDR", addr.to_string())
            .env("SOUK_DATABASE_URL", database_url)
            .env("SOUK_CACHE_DIR", cache)
            .env("SOUK_JWT_SECRET", jwt_secret)
            .env("SOUK_ADMIN_USERNAME", admin.0)
            .env("SOUK_ADMIN_PASSWORD", admin.1)
            .env("SOUK_LOG", log)
            .env_remove("SOUK_WATCH")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file);
        Self::start(command, addr, "/health/status")
            .await
            .with_context(|| {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                format!("souk's last words: {}", tail.join(" | "))
            })
    }

    /// The native floor (this binary's `native` subcommand).
    pub async fn native(
        database_url: &str,
        jwt_secret: &str,
        customers: usize,
        goods: usize,
        stock: i64,
        wallet_cents: i64,
    ) -> anyhow::Result<Self> {
        let addr = free_port()?;
        let mut command = Command::new(std::env::current_exe()?);
        command
            .arg("native")
            .args(["--database-url", database_url])
            .args(["--addr", &addr.to_string()])
            .args(["--jwt-secret", jwt_secret])
            .args(["--customers", &customers.to_string()])
            .args(["--goods", &goods.to_string()])
            .args(["--stock", &stock.to_string()])
            .args(["--wallet-cents", &wallet_cents.to_string()])
            .stdin(Stdio::null());
        Self::start(command, addr, "/health").await
    }

    async fn start(mut command: Command, addr: SocketAddr, health: &str) -> anyhow::Result<Self> {
        let started = Instant::now();
        let child = command.spawn().context("cannot start the server")?;
        let mut server = Self {
            child,
            addr,
            started: Duration::ZERO,
        };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let url = format!("http://{addr}{health}");
        loop {
            if let Some(status) = server.child.try_wait()? {
                anyhow::bail!("the server exited at start ({status}); see its log");
            }
            if let Ok(response) = client.get(&url).send().await
                && response.status().is_success()
            {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < START_TIMEOUT,
                "the server did not answer {health} within {START_TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        server.started = started.elapsed();
        Ok(server)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// A port nobody listens on now (a race is possible but harmless here:
/// the server would fail to start and the run would stop).
fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

/// Resident set size now and its peak (`VmRSS`, `VmHWM`), in KiB.
pub fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// CPU time the process has used so far, user and system, every thread
/// (`utime` + `stime` of `/proc/PID/stat`, in USER_HZ ticks: 100 per second
/// on Linux whatever the kernel's own tick). Zero if it cannot be read.
pub fn cpu_time(pid: u32) -> Duration {
    const TICKS_PER_SECOND: u64 = 100;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name (field 2) may contain spaces: count after its ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // Fields 14 and 15 of the file are the 12th and 13th after the name.
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|field| field.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(11) + ticks(12)) * 1000 / TICKS_PER_SECOND)
}

/// A fresh PostgreSQL database for one run.
pub struct PgDatabase {
    admin_url: String,
    name: String,
    /// Its URL.
    pub url: String,
}

impl PgDatabase {
    /// Create `<prefix>_<random>` through `admin_url`.
    pub async fn create(admin_url: &str, prefix: &str) -> anyhow::Result<Self> {
        use sqlx::Connection;
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(admin_url)
            .await
            .context("cannot connect to PostgreSQL")?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await?;
        let (base, _) = admin_url
            .rsplit_once('/')
            .context("the PostgreSQL URL has no database path")?;
        Ok(Self {
            url: format!("{base}/{name}"),
            admin_url: admin_url.to_owned(),
            name,
        })
    }

    /// Drop it (the servers using it must be gone or are disconnected).
    pub async fn drop_database(&self) {
        use sqlx::Connection;
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin_url).await {
            let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
            if let Err(error) = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
            {
                eprintln!("cannot drop database {}: {error}", self.name);
            }
        }
    }
}
