//! Crash safety (issue #10): a purchase takes the money, lowers the stock
//! and records the sale as one unit, "also under ... a crash" (API.md,
//! Sales). This runs the real `souk` binary, kills it with SIGKILL in the
//! middle of concurrent purchases, restarts it on the same database and
//! checks the books through the API:
//!
//! - every balance = the charges made − the totals of the buyer's sales;
//! - every good's count = its initial count − the quantities sold;
//! - no negative balance, count, quantity or total;
//! - every sale the client saw confirmed (201) is still there.
//!
//! It does so for a few rounds, on SQLite (a fresh file) and on PostgreSQL
//! (a fresh database on `SOUK_TEST_POSTGRES_URL`; without it, that test
//! prints `SKIPPED` and returns). The process, the HTTP client and the
//! database set-up are written here with the standard library, so the test
//! needs nothing the host does not already depend on.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{
    collections::HashMap,
    fs::File,
    io::{self, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

const ADMIN_USERNAME: &str = "root";
const ADMIN_PASSWORD: &str = "rootpass123";
const PASSWORD: &str = "secret123";
/// Crash-and-restart rounds per backend.
const ROUNDS: usize = 3;
/// Concurrent buyers per round.
const BUYERS: usize = 6;
const CUSTOMERS: [&str; 4] = ["crash_ana", "crash_ben", "crash_cem", "crash_dia"];
/// (name, price in cents, initial count).
const GOODS: [(&str, i64, i64); 3] = [
    ("Crash Dates", 75, 60),
    ("Crash Scarf", 125, 60),
    ("Crash Lamp", 200, 60),
];
/// Charged to every customer before each round's purchases, in cents.
const CHARGE_PER_ROUND: i64 = 2_000;
/// How long a host may take to start serving (a cold compile cache on a
/// loaded 2-core machine takes tens of seconds).
const START_TIMEOUT: Duration = Duration::from_secs(240);
/// Every HTTP exchange is bounded, so a wedged host fails the test.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn sigkill_during_purchases_keeps_the_books_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("souk.db").display());
    crash_rounds(&url, dir.path());
}

#[test]
fn sigkill_during_purchases_keeps_the_books_on_postgres() {
    let Ok(admin_url) = std::env::var("SOUK_TEST_POSTGRES_URL") else {
        println!("SKIPPED: crash safety on PostgreSQL (SOUK_TEST_POSTGRES_URL is unset)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let database = PostgresDatabase::create(&admin_url);
    crash_rounds(&database.url, dir.path());
}

/// What the client knows for sure: money it charged and sales it saw made.
#[derive(Default)]
struct Ledger {
    /// Cents charged per customer (each charge answered 200).
    charged: HashMap<String, i64>,
    /// Sale ids the host answered 201 for.
    confirmed: Vec<String>,
}

fn crash_rounds(database_url: &str, dir: &Path) {
    let mut host = Host::start(database_url, dir, 0);
    let admin = host.token(ADMIN_USERNAME, ADMIN_PASSWORD);
    let mut ledger = Ledger::default();
    for username in CUSTOMERS {
        let (status, body) =
            host.call("POST", "/api/v1/customers", None, Some(&customer(username)));
        assert_eq!(status, 201, "register {username}: {body}");
        ledger.charged.insert(username.to_owned(), 0);
    }
    let mut goods = Vec::new();
    for (name, price, count) in GOODS {
        let good = json!({
            "name": name, "category": "food", "price": dollars(price),
            "description": "bought while the host dies", "count": count,
        });
        let (status, body) = host.call("POST", "/api/v1/goods", Some(&admin), Some(&good));
        assert_eq!(status, 201, "add {name}: {body}");
        goods.push((body["id"].as_str().unwrap().to_owned(), name, count));
    }

    for round in 1..=ROUNDS {
        let admin = host.token(ADMIN_USERNAME, ADMIN_PASSWORD);
        for username in CUSTOMERS {
            let path = format!("/api/v1/customers/{username}/wallet/charge");
            let amount = json!({ "amount": dollars(CHARGE_PER_ROUND) });
            let (status, body) = host.call("POST", &path, Some(&admin), Some(&amount));
            assert_eq!(status, 200, "charge {username}: {body}");
            *ledger.charged.get_mut(username).unwrap() += CHARGE_PER_ROUND;
        }
        let tokens: Vec<String> = CUSTOMERS
            .iter()
            .map(|username| host.token(username, PASSWORD))
            .collect();

        let confirmed = buy_until_killed(&mut host, &tokens, round);
        println!(
            "round {round}: {} sales confirmed before SIGKILL",
            confirmed.len()
        );
        ledger.confirmed.extend(confirmed);

        host = Host::start(database_url, dir, round);
        check_books(&host, &ledger, &goods);
    }
}

/// Buyers purchase concurrently until the host is killed; the host is
/// killed once several purchases were answered in this round, so requests
/// are in flight when it dies. Returns the sale ids confirmed by a 201.
fn buy_until_killed(host: &mut Host, tokens: &[String], round: usize) -> Vec<String> {
    let answered = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let confirmed = Arc::new(Mutex::new(Vec::new()));
    let buyers: Vec<_> = (0..BUYERS)
        .map(|buyer| {
            let token = tokens[buyer % tokens.len()].clone();
            let addr = host.addr;
            let (answered, stop, confirmed) = (answered.clone(), stop.clone(), confirmed.clone());
            thread::spawn(move || {
                for attempt in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    // A fixed pattern per buyer, round and attempt: which
                    // good and how many vary, the outcome checks do not.
                    let pick = buyer * 7 + round * 3 + attempt;
                    let order =
                        json!({ "good": GOODS[pick % GOODS.len()].0, "quantity": 1 + pick % 3 });
                    match http(addr, "POST", "/api/v1/sales", Some(&token), Some(&order)) {
                        Ok((201, body)) => {
                            let id = body["sale"]["id"].as_str().map(str::to_owned);
                            confirmed
                                .lock()
                                .unwrap()
                                .push(id.expect("a 201 names its sale"));
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                        // Out of money or stock: a refusal, also a full answer.
                        Ok((409, _)) => {
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok((status, body)) => panic!("purchase answered {status}: {body}"),
                        // The host died under this request: its outcome is
                        // unknown, which is what the checks are for.
                        Err(_) => break,
                    }
                }
            })
        })
        .collect();

    let deadline = Instant::now() + Duration::from_secs(120);
    while answered.load(Ordering::Relaxed) < 2 * BUYERS && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    host.kill();
    stop.store(true, Ordering::Relaxed);
    for buyer in buyers {
        buyer.join().expect("a buyer thread panicked");
    }
    assert!(
        answered.load(Ordering::Relaxed) >= 2 * BUYERS,
        "round {round}: the host answered too few purchases before the deadline"
    );
    Arc::try_unwrap(confirmed).unwrap().into_inner().unwrap()
}

/// The invariants, read back through the API of the restarted host.
fn check_books(host: &Host, ledger: &Ledger, goods: &[(String, &str, i64)]) {
    let admin = host.token(ADMIN_USERNAME, ADMIN_PASSWORD);
    let mut sold: HashMap<String, i64> = HashMap::new();
    let mut seen: Vec<String> = Vec::new();
    for username in CUSTOMERS {
        let (status, profile) = host.call(
            "GET",
            &format!("/api/v1/customers/{username}"),
            Some(&admin),
            None,
        );
        assert_eq!(status, 200, "{profile}");
        let balance = cents(&profile["wallet_balance"]);
        let mut spent = 0;
        for sale in history(host, &admin, username) {
            let quantity = sale["quantity"].as_i64().unwrap();
            let total = cents(&sale["total"]);
            assert!(
                quantity > 0 && total > 0,
                "a sale with nothing in it: {sale}"
            );
            assert_eq!(total, quantity * cents(&sale["unit_price"]), "{sale}");
            assert_eq!(sale["username"], username, "{sale}");
            spent += total;
            *sold
                .entry(sale["good_id"].as_str().unwrap().to_owned())
                .or_default() += quantity;
            seen.push(sale["id"].as_str().unwrap().to_owned());
        }
        assert!(balance >= 0, "{username} has a negative balance: {balance}");
        assert_eq!(
            balance,
            ledger.charged[username] - spent,
            "{username}: balance != charges - sale totals (a sale without its debit, or a debit without its sale)"
        );
    }
    for (id, name, initial) in goods {
        let (status, good) = host.call("GET", &format!("/api/v1/goods/{id}"), None, None);
        assert_eq!(status, 200, "{good}");
        let count = good["count"].as_i64().unwrap();
        let sold = sold.get(id).copied().unwrap_or(0);
        assert!(count >= 0, "{name} has negative stock: {count}");
        assert_eq!(
            count,
            initial - sold,
            "{name}: count != initial - quantities sold"
        );
    }
    for id in &ledger.confirmed {
        assert!(
            seen.contains(id),
            "sale {id} was confirmed with 201 but is gone after the crash"
        );
    }
}

/// Every sale of `username`, page by page.
fn history(host: &Host, admin: &str, username: &str) -> Vec<Value> {
    let mut sales = Vec::new();
    loop {
        let path = format!(
            "/api/v1/sales/history/{username}?limit=200&offset={}",
            sales.len()
        );
        let (status, page) = host.call("GET", &path, Some(admin), None);
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap();
        sales.extend(items.iter().cloned());
        if items.is_empty() || sales.len() as i64 >= page["total"].as_i64().unwrap() {
            return sales;
        }
    }
}

fn customer(username: &str) -> Value {
    json!({
        "username": username, "password": PASSWORD, "full_name": "Crash Tester",
        "age": 30, "address": "1 Market Street", "gender": "other",
        "marital_status": "single",
    })
}

/// Cents as a JSON number of dollars.
fn dollars(cents: i64) -> Value {
    serde_json::from_str(&format!("{}.{:02}", cents / 100, cents % 100)).unwrap()
}

/// A JSON number of dollars as cents, from its exact digits.
fn cents(amount: &Value) -> i64 {
    let text = amount.to_string();
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    assert!(
        amount.is_number() && fraction.len() <= 2,
        "not money: {text}"
    );
    whole.parse::<i64>().unwrap() * 100 + format!("{fraction:0<2}").parse::<i64>().unwrap()
}

/// A `souk serve` child process on 127.0.0.1.
struct Host {
    child: Child,
    addr: SocketAddr,
}

impl Host {
    /// Starts the binary on `database_url` and waits until it serves.
    /// `generation` names its log file, kept in `dir` for a failure's report.
    fn start(database_url: &str, dir: &Path, generation: usize) -> Host {
        // A free port is picked by binding port 0 and letting it go; if
        // another process takes it meanwhile, the host cannot listen and
        // exits, and the next attempt picks another.
        for attempt in 0..3 {
            let addr = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap();
            let log_path = dir.join(format!("souk-{generation}-{attempt}.log"));
            let log = File::create(&log_path).unwrap();
            let child = Command::new(env!("CARGO_BIN_EXE_souk"))
                .arg("serve")
                .env("SOUK_ADDR", addr.to_string())
                .env("SOUK_DATABASE_URL", database_url)
                .env(
                    "SOUK_JWT_SECRET",
                    "crash-safety-secret-of-at-least-32-bytes",
                )
                .env("SOUK_ADMIN_USERNAME", ADMIN_USERNAME)
                .env("SOUK_ADMIN_PASSWORD", ADMIN_PASSWORD)
                .env("SOUK_COMPONENTS_DIR", souk::config::BUILT_COMPONENTS_DIR)
                .env("SOUK_CACHE_DIR", cache_dir())
                .env("SOUK_LOG", "warn")
                .env("NO_COLOR", "1")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("souk starts");
            let mut host = Host { child, addr };
            match host.wait_until_serving() {
                Ok(()) => return host,
                Err(exit) => {
                    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    if !log.contains("cannot listen") {
                        panic!("souk did not start ({exit}); its log:\n{log}");
                    }
                }
            }
        }
        panic!("souk found no free port in 3 attempts");
    }

    fn wait_until_serving(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Err(format!("exited with {status}"));
            }
            if let Ok((200, _)) = http(self.addr, "GET", "/health/status", None, None) {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(100));
        }
        self.kill();
        Err(format!("not serving after {START_TIMEOUT:?}"))
    }

    /// SIGKILL: no shutdown handler, no flush, no rollback by the host.
    fn kill(&mut self) {
        // `Child::kill` sends SIGKILL on Unix.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        http(self.addr, method, path, token, body)
            .unwrap_or_else(|error| panic!("{method} {path}: {error}"))
    }

    fn token(&self, username: &str, password: &str) -> String {
        let login = json!({ "username": username, "password": password });
        let (status, body) = self.call("POST", "/api/v1/auth/login", None, Some(&login));
        assert_eq!(status, 200, "login {username}: {body}");
        body["access_token"].as_str().unwrap().to_owned()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Compiled components are shared with the black-box suite's cache.
fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("souk-compile-cache")
}

/// One HTTP/1.1 exchange on a fresh connection (`Connection: close`):
/// the status and the JSON body (`Null` when there is none). An error means
/// the outcome is unknown: no connection, or no complete response.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> io::Result<(u16, Value)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        head.push_str("Content-Type: application/json\r\n");
    }
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "incomplete HTTP response"))
}

fn parse_response(raw: &[u8]) -> Option<(u16, Value)> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut payload = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse::<usize>().ok(),
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            _ => {}
        }
    }
    if chunked {
        payload = dechunk(&payload)?;
    } else if let Some(length) = length {
        // Fewer bytes than announced: the connection died mid-body.
        if payload.len() < length {
            return None;
        }
        payload.truncate(length);
    }
    let body = if payload.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&payload).ok()?
    };
    Some((status, body))
}

/// The body of a complete chunked encoding, or `None` if it was cut short.
fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// A fresh PostgreSQL database for one test, dropped afterwards.
struct PostgresDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl PostgresDatabase {
    fn create(admin_url: &str) -> Self {
        let name = format!("souk_crash_{}", uuid::Uuid::new_v4().simple());
        run_sql(admin_url, &format!("CREATE DATABASE \"{name}\""));
        let (base, _) = admin_url
            .rsplit_once('/')
            .expect("the URL names a database");
        PostgresDatabase {
            admin_url: admin_url.to_owned(),
            url: format!("{base}/{name}"),
            name,
        }
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        run_sql(
            &self.admin_url,
            &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name),
        );
    }
}

fn run_sql(url: &str, sql: &str) {
    use sqlx::Connection;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut connection = sqlx::PgConnection::connect(url)
            .await
            .expect("PostgreSQL is reachable");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut connection)
            .await
            .unwrap_or_else(|error| panic!("{sql}: {error}"));
    });
}

#[test]
fn responses_are_parsed_whole_or_not_at_all() {
    let whole = b"HTTP/1.1 201 Created\r\ncontent-length: 8\r\n\r\n{\"a\":1}\n";
    assert_eq!(parse_response(whole), Some((201, json!({"a": 1}))));
    let cut = b"HTTP/1.1 201 Created\r\ncontent-length: 20\r\n\r\n{\"a\":1}";
    assert_eq!(parse_response(cut), None);
    let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n";
    assert_eq!(parse_response(chunked), Some((200, json!({"a": 1}))));
    assert_eq!(parse_response(&chunked[..chunked.len() - 7]), None);
    assert_eq!(cents(&dollars(1_005)), 1_005);
}
