//! Shared by the process-level tests: run the real `souk` binary, read
//! its log, send it signals, talk raw HTTP/1.1 to it, give it a fresh
//! PostgreSQL database, and put a TCP proxy between it and PostgreSQL that
//! a test can cut and restore (an outage without stopping the shared
//! server). Everything is synchronous (threads), so a test reads top to
//! bottom; all traffic stays on 127.0.0.1.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{Shutdown, TcpListener, TcpStream},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

/// A running `souk serve` with its log captured.
pub struct Host {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    log: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Host {
    /// Start `souk serve` on a free port with `database_url`, with
    /// `extra_env` on top; waits until it serves.
    pub fn start(database_url: &str, extra_env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let cache = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("souk-compile-cache");
        let mut command = Command::new(env!("CARGO_BIN_EXE_souk"));
        command
            .arg("serve")
            .env("SOUK_ADDR", "127.0.0.1:0")
            .env("SOUK_DATABASE_URL", database_url)
            .env("SOUK_CACHE_DIR", cache)
            .env(
                "SOUK_JWT_SECRET",
                "process-test-secret-of-at-least-32-bytes",
            )
            .env("SOUK_LOG", "info")
            .env("NO_COLOR", "1")
            .env_remove("SOUK_ADMIN_USERNAME")
            .env_remove("SOUK_ADMIN_PASSWORD")
            .env_remove("SOUK_WATCH")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in extra_env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("souk starts");
        let log = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    log.lock().unwrap().push(strip_ansi(&line));
                }
            });
        }
        let mut host = Self {
            child,
            addr: String::new(),
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        let serving = loop {
            if let Some(line) = host.wait_for_log("serving", Duration::from_millis(200)) {
                break line;
            }
            let exited = host.child.try_wait().unwrap();
            if exited.is_some() || Instant::now() > deadline {
                std::thread::sleep(Duration::from_millis(200)); // the last lines
                panic!("the host did not start ({exited:?}):\n{}", host.log_text());
            }
        };
        let port = serving
            .split("127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .expect("the serving line names the port");
        host.addr = format!("127.0.0.1:{port}");
        host
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send SIGTERM.
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Wait up to `bound` for the process to exit.
    pub fn wait_exit(&mut self, bound: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + bound;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Every log line so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// The log so far as one text.
    pub fn log_text(&self) -> String {
        self.log_lines().join("\n")
    }

    /// Wait up to `bound` for a log line containing `needle`.
    pub fn wait_for_log(&self, needle: &str, bound: Duration) -> Option<String> {
        let deadline = Instant::now() + bound;
        while Instant::now() < deadline {
            if let Some(line) = self.log_lines().into_iter().find(|l| l.contains(needle)) {
                return Some(line);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// One request on a fresh connection (`Connection: close`).
    pub fn request(&self, method: &str, path: &str, body: Option<&str>) -> Reply {
        request(&self.addr, method, path, body)
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        // Only our own child, by its handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response read to the end.
#[derive(Debug)]
pub struct Reply {
    /// The status code, 0 if none could be read.
    pub status: u16,
    /// Head and body as text.
    pub text: String,
}

impl Reply {
    /// The body (after the blank line).
    pub fn body(&self) -> &str {
        self.text.split_once("\r\n\r\n").map_or("", |(_, b)| b)
    }

    /// The body as JSON (`Null` if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.body()).unwrap_or(serde_json::Value::Null)
    }

    /// A header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.text.split_once("\r\n\r\n").map_or("", |(h, _)| h);
        head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    }
}

/// Send `method path` with an optional JSON body on a new connection and
/// read the whole response (the server closes after it).
pub fn request(addr: &str, method: &str, path: &str, body: Option<&str>) -> Reply {
    send(addr, method, path, None, Some(body.unwrap_or("")))
}

/// `method path` with a bearer token and no body, on a new connection.
pub fn request_with_token(addr: &str, method: &str, path: &str, token: &str) -> Reply {
    send(addr, method, path, Some(token), None)
}

/// `method path` with an optional bearer token and JSON body, on a new
/// connection, read to the end.
pub fn send(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Reply {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let authorization = token.map_or(String::new(), |token| {
        format!("Authorization: Bearer {token}\r\n")
    });
    let content = body.map_or(String::new(), |body| {
        format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        )
    });
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         {authorization}{content}\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.unwrap_or("").as_bytes()).unwrap();
    read_reply(&mut stream)
}

/// Read a response until the server closes the connection.
pub fn read_reply(stream: &mut TcpStream) -> Reply {
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    Reply { status, text }
}

/// A registration body for `username`.
pub fn customer_json(username: &str) -> String {
    serde_json::json!({
        "username": username,
        "password": "secret123",
        "full_name": "Test Customer",
        "age": 30,
        "address": "1 Market Street",
        "gender": "female",
        "marital_status": "single",
    })
    .to_string()
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A fresh SQLite database in its own directory.
pub struct SqliteDatabase {
    /// `sqlite://...`.
    pub url: String,
    _dir: tempfile::TempDir,
}

/// A fresh SQLite database.
pub fn sqlite() -> SqliteDatabase {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("souk.db").display());
    SqliteDatabase { url, _dir: dir }
}

/// A fresh PostgreSQL database, dropped with this value.
pub struct PostgresDatabase {
    admin_url: String,
    /// The database's name.
    pub name: String,
    /// Its URL.
    pub url: String,
}

/// A fresh PostgreSQL database on `SOUK_TEST_POSTGRES_URL`, or `None`
/// (after printing why the test is skipped) when it is unset.
pub fn postgres(test: &str) -> Option<PostgresDatabase> {
    let Ok(admin_url) = std::env::var("SOUK_TEST_POSTGRES_URL") else {
        println!("SKIPPED: {test}: set SOUK_TEST_POSTGRES_URL to run it on PostgreSQL");
        return None;
    };
    let name = format!("souk_proc_{}", uuid::Uuid::new_v4().simple());
    run_sql(&admin_url, &format!("CREATE DATABASE \"{name}\""));
    let (base, _) = admin_url.rsplit_once('/').expect("URL has a database path");
    let url = format!("{base}/{name}");
    Some(PostgresDatabase {
        admin_url,
        name,
        url,
    })
}

impl PostgresDatabase {
    /// This database's URL with its host and port replaced by `addr`.
    pub fn url_via(&self, addr: &str) -> String {
        let (scheme, rest) = self.url.split_once("://").expect("URL has a scheme");
        let (authority, path) = rest.split_once('/').expect("URL has a path");
        let user = authority
            .rsplit_once('@')
            .map_or(String::new(), |(user, _)| format!("{user}@"));
        format!("{scheme}://{user}{addr}/{path}")
    }

    /// `host:port` of the server.
    pub fn server_addr(&self) -> String {
        let rest = self.url.split_once("://").expect("URL has a scheme").1;
        let authority = rest.split_once('/').expect("URL has a path").0;
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
        if host_port.contains(':') {
            host_port.to_owned()
        } else {
            format!("{host_port}:5432")
        }
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        run_sql(&self.admin_url, &sql);
    }
}

fn run_sql(url: &str, sql: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(url)
            .await
            .expect("postgres reachable");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut conn)
            .await
            .expect("statement runs");
    });
}

/// A TCP proxy on 127.0.0.1 to `upstream` that can be cut (every open
/// connection closed, new ones closed as soon as accepted) and restored.
pub struct Proxy {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    open: Arc<AtomicBool>,
    live: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    /// Start forwarding to `upstream`.
    pub fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let open = Arc::new(AtomicBool::new(true));
        let live: Arc<Mutex<Vec<TcpStream>>> = Arc::new(Mutex::new(Vec::new()));
        let upstream = upstream.to_owned();
        let (accept_open, accept_live) = (open.clone(), live.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !accept_open.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let mut live = accept_live.lock().unwrap();
                for stream in [&client, &server] {
                    if let Ok(clone) = stream.try_clone() {
                        live.push(clone);
                    }
                }
                pipe(&client, &server);
                pipe(&server, &client);
            }
        });
        Self { addr, open, live }
    }

    /// Close every connection and refuse new ones.
    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for stream in self.live.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Accept and forward again.
    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

fn pipe(from: &TcpStream, to: &TcpStream) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}
