//! `spawn_app()` and one helper per endpoint, so tests read like the story
//! they check.

use std::{path::PathBuf, sync::OnceLock};

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use souk::{Application, Settings, config::BUILT_COMPONENTS_DIR};
use tempfile::TempDir;

/// Where the test components (tests/components/*) were built.
pub const TEST_COMPONENTS_DIR: &str = env!("SOUK_TEST_COMPONENTS_DIR");

/// The admin every test app starts with.
pub const ADMIN_USERNAME: &str = "root";
/// The admin's password.
pub const ADMIN_PASSWORD: &str = "rootpass123";
/// A password that passes every rule.
pub const PASSWORD: &str = "secret123";

/// A running host.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// HTTP client (no redirects, no cookies).
    pub client: reqwest::Client,
    /// The components directory and SQLite file live here.
    pub dir: TempDir,
    /// The database URL the host uses.
    pub database_url: String,
    /// The OpenAPI document as assembled when the host started, with the
    /// definitions its assembly refused.
    pub openapi: souk::http::openapi::Assembled,
    _postgres: Option<PostgresDatabase>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Options for [`spawn_app_with`].
#[derive(Default, Clone)]
pub struct SpawnOptions {
    /// Test components to load besides the product ones, by name.
    pub test_components: Vec<&'static str>,
    /// Product components to leave out.
    pub without: Vec<&'static str>,
    /// Overrides the fixed test JWT secret.
    pub jwt_secret: Option<String>,
    /// Reuse this database (e.g. to restart a host on the same data).
    pub database_url: Option<String>,
    /// Grants (JSON, the grants file format) added to the shipped ones,
    /// replacing a component's entry there, e.g.
    /// `{"hostile": {"max_concurrency": 2}}`.
    pub grants: Option<&'static str>,
    /// Deploy rebuilt `.wasm` files of the components directory
    /// automatically (`souk serve --watch`).
    pub watch: bool,
    /// The admin to bootstrap (`SOUK_ADMIN_USERNAME`/`_PASSWORD`) instead of
    /// [`ADMIN_USERNAME`].
    pub admin: Option<(&'static str, &'static str)>,
    /// Changes the settings last, before the host is built (e.g. a faster
    /// webhook retry schedule).
    pub settings: Option<fn(&mut Settings)>,
}

/// A host with the product components, a fresh database and an admin.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(SpawnOptions::default()).await
}

/// A host with extra test components and other options.
pub async fn spawn_app_with(options: SpawnOptions) -> TestApp {
    init_logging();
    let dir = tempfile::tempdir().expect("temp dir");
    let components = dir.path().join("components");
    std::fs::create_dir(&components).unwrap();
    copy_components(BUILT_COMPONENTS_DIR, &components, |name| {
        !options.without.contains(&name)
    });
    copy_components(TEST_COMPONENTS_DIR, &components, |name| {
        options.test_components.contains(&name)
    });

    let (database_url, postgres) = match options.database_url.clone() {
        Some(url) => (url, None),
        None => fresh_database(&dir).await,
    };
    let mut settings = Settings::new(database_url.clone(), components);
    settings.addr = "127.0.0.1:0".parse().unwrap();
    settings.cache_dir = Some(cache_dir());
    settings.jwt_secret = Some(souk::config::Secret::new(
        options
            .jwt_secret
            .clone()
            .unwrap_or_else(|| JWT_SECRET.into()),
    ));
    let (admin, admin_password) = options.admin.unwrap_or((ADMIN_USERNAME, ADMIN_PASSWORD));
    settings.admin = Some((admin.into(), souk::config::Secret::new(admin_password)));
    // Behaviour tests of the bundled extensions must not fail because a
    // loaded 2-core CI machine running a debug host needs more than the
    // production deadline; the deadlines themselves are tested in
    // `limits.rs` with the hostile component and grants of their own.
    settings.grants = with_shipped_grants(options.grants.unwrap_or(RELAXED_EXTENSION_DEADLINES));
    settings.watch = options.watch;
    if let Some(configure) = options.settings {
        configure(&mut settings);
    }

    let app = Application::build(settings)
        .await
        .expect("application builds");
    let address = format!("http://{}", app.local_addr().unwrap());
    let openapi = app.openapi();
    let server = tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        dir,
        database_url,
        openapi,
        _postgres: postgres,
        server,
    }
}

fn copy_components(from: &str, to: &std::path::Path, wanted: impl Fn(&str) -> bool) {
    for entry in std::fs::read_dir(from).expect("components were built") {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        if path.extension().is_some_and(|e| e == "wasm") && wanted(&name) {
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
}

/// Compiled components are shared by every test process through this cache.
fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("souk-compile-cache")
}

fn init_logging() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let filter = std::env::var("SOUK_TEST_LOG").unwrap_or_else(|_| "warn".into());
        souk::telemetry::init_logging(&filter);
    });
}

/// Which backend this run of the suite uses.
pub fn backend() -> &'static str {
    match std::env::var("SOUK_TEST_BACKEND").as_deref() {
        Ok("postgres") => "postgres",
        _ => "sqlite",
    }
}

/// A fresh PostgreSQL database, dropped when the value is dropped.
pub struct PostgresDatabase {
    admin_url: String,
    name: String,
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop on a thread of its own: the test's runtime may be gone.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async move {
                    use sqlx::Connection;
                    if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await {
                        let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                            .execute(&mut conn)
                            .await;
                    }
                });
            }
        })
        .join();
    }
}

/// A fresh, empty database of the configured backend (in `dir` for SQLite),
/// with the guard that drops it (PostgreSQL).
pub async fn fresh_database(dir: &TempDir) -> (String, Option<PostgresDatabase>) {
    if backend() != "postgres" {
        let url = format!("sqlite://{}", dir.path().join("souk.db").display());
        return (url, None);
    }
    let admin_url = std::env::var("SOUK_TEST_POSTGRES_URL")
        .expect("SOUK_TEST_BACKEND=postgres needs SOUK_TEST_POSTGRES_URL");
    let name = format!("souk_test_{}", uuid::Uuid::new_v4().simple());
    {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&admin_url)
            .await
            .expect("postgres reachable");
        let sql = format!("CREATE DATABASE \"{name}\"");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let (base, _) = admin_url.rsplit_once('/').expect("URL has a database path");
    let url = format!("{base}/{name}");
    (url, Some(PostgresDatabase { admin_url, name }))
}

/// A response read once: status, headers and JSON body (or `Null`).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    /// Read a response once.
    pub async fn read(response: Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            body,
            text,
        }
    }

    /// The `content-type` header.
    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Assert this is a problem+json with `status`, and return its body.
    #[track_caller]
    pub fn assert_problem(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        assert_eq!(
            self.content_type(),
            "application/problem+json",
            "body: {}",
            self.text
        );
        assert_eq!(self.body["status"], status, "body: {}", self.text);
        assert!(
            self.body["type"]
                .as_str()
                .unwrap_or("")
                .starts_with("urn:souk:error:"),
            "{}",
            self.text
        );
        assert!(self.body["title"].is_string(), "{}", self.text);
        assert!(self.body["detail"].is_string(), "{}", self.text);
        &self.body
    }

    /// A header's value as text, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The problem's `type`, e.g. `urn:souk:error:invalid-input`.
    pub fn problem_type(&self) -> &str {
        self.body["type"].as_str().unwrap_or("")
    }

    /// The fields named in a validation problem, sorted.
    pub fn error_fields(&self) -> Vec<String> {
        let mut fields: Vec<String> = self.body["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .filter_map(|e| e["field"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        fields.sort();
        fields
    }
}

impl TestApp {
    /// A request to `path` with an optional bearer token.
    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let builder = self
            .client
            .request(method, format!("{}{path}", self.address));
        match token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    /// Send a request built with [`TestApp::request`].
    pub async fn send_built(&self, builder: RequestBuilder) -> Reply {
        Reply::read(builder.send().await.expect("request sent")).await
    }

    /// Send a request with a JSON body (or none).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut builder = self.request(method, path, token);
        if let Some(body) = body {
            builder = builder.json(&body);
        }
        Reply::read(builder.send().await.expect("request sent")).await
    }

    /// GET `path`.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.send(Method::GET, path, token, None).await
    }

    /// POST JSON to `path`.
    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.send(Method::POST, path, token, Some(body)).await
    }

    /// PATCH JSON to `path`.
    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.send(Method::PATCH, path, token, Some(body)).await
    }

    /// DELETE `path`.
    pub async fn delete(&self, path: &str, token: Option<&str>) -> Reply {
        self.send(Method::DELETE, path, token, None).await
    }

    /// POST raw bytes with a content type.
    pub async fn post_raw(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        let mut builder = self.request(Method::POST, path, token).body(body);
        if let Some(content_type) = content_type {
            builder = builder.header("content-type", content_type);
        }
        Reply::read(builder.send().await.expect("request sent")).await
    }

    /// Log in; returns the reply.
    pub async fn login(&self, username: &str, password: &str) -> Reply {
        self.post(
            "/api/v1/auth/login",
            None,
            json!({ "username": username, "password": password }),
        )
        .await
    }

    /// Log in and return the access token, asserting success.
    pub async fn token(&self, username: &str, password: &str) -> String {
        let reply = self.login(username, password).await;
        assert_eq!(reply.status, StatusCode::OK, "login failed: {}", reply.text);
        reply.body["access_token"].as_str().unwrap().to_owned()
    }

    /// The admin's token.
    pub async fn admin_token(&self) -> String {
        self.token(ADMIN_USERNAME, ADMIN_PASSWORD).await
    }

    /// Register a customer with valid defaults; returns the reply.
    pub async fn register(&self, username: &str) -> Reply {
        self.post("/api/v1/customers", None, customer_body(username))
            .await
    }

    /// Register `username` and log in; returns the token.
    pub async fn customer(&self, username: &str) -> String {
        let reply = self.register(username).await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "register failed: {}",
            reply.text
        );
        self.token(username, PASSWORD).await
    }

    /// Send `body` as-is to `path` with `method` and an optional content type.
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        let mut builder = self.request(method, path, token).body(body);
        if let Some(content_type) = content_type {
            builder = builder.header("content-type", content_type);
        }
        self.send_built(builder).await
    }

    /// Charge `username`'s wallet by `amount` dollars as the admin.
    pub async fn charge(&self, username: &str, amount: Value) -> Reply {
        let admin = self.admin_token().await;
        self.post(
            &format!("/api/v1/customers/{username}/wallet/charge"),
            Some(&admin),
            json!({ "amount": amount }),
        )
        .await
    }
}

impl TestApp {
    /// Deduct `amount` dollars from `username`'s wallet as the admin.
    pub async fn deduct(&self, username: &str, amount: Value) -> Reply {
        let admin = self.admin_token().await;
        self.post(
            &format!("/api/v1/customers/{username}/wallet/deduct"),
            Some(&admin),
            json!({ "amount": amount }),
        )
        .await
    }

    /// `username`'s profile as the admin sees it, asserting it exists.
    pub async fn profile(&self, username: &str) -> Value {
        let admin = self.admin_token().await;
        let reply = self
            .get(&format!("/api/v1/customers/{username}"), Some(&admin))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "profile of {username}: {}",
            reply.text
        );
        reply.body
    }

    /// Register `username` and return their id, asserting success.
    pub async fn register_id(&self, username: &str) -> String {
        let reply = self.register(username).await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "register failed: {}",
            reply.text
        );
        reply.body["id"].as_str().unwrap().to_owned()
    }
}

/// The JWT secret of every test app (unless [`SpawnOptions::jwt_secret`]).
pub const JWT_SECRET: &str = "test-secret-of-at-least-32-bytes!";

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Claims shaped like the host's for customer `id`, valid for `ttl`
/// seconds from `issued_at`.
pub fn claims(id: &str, username: &str, role: &str, issued_at: u64, ttl: u64) -> Value {
    json!({
        "sub": id,
        "name": username,
        "role": role,
        "iat": issued_at,
        "exp": issued_at + ttl,
        "jti": uuid::Uuid::new_v4().to_string(),
    })
}

/// An HS256 JWT over `claims` signed with `secret`.
pub fn sign_token(secret: &str, claims: &Value) -> String {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// An unsigned JWT (`"alg": "none"`) over `claims`.
pub fn unsigned_token(claims: &Value) -> String {
    let header = base64url(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = base64url(claims.to_string().as_bytes());
    format!("{header}.{payload}.")
}

/// Unpadded base64url (RFC 4648 §5).
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

/// Whether `text` is an RFC 3339 timestamp in UTC: `YYYY-MM-DDTHH:MM:SS`,
/// optional fraction, then `Z`.
pub fn is_rfc3339_utc(text: &str) -> bool {
    let Some(rest) = text.strip_suffix('Z') else {
        return false;
    };
    let (main, fraction) = rest.split_once('.').unwrap_or((rest, "0"));
    let shape = main.len() == 19
        && main.char_indices().all(|(i, c)| match i {
            4 | 7 => c == '-',
            10 => c == 'T',
            13 | 16 => c == ':',
            _ => c.is_ascii_digit(),
        });
    shape && !fraction.is_empty() && fraction.bytes().all(|b| b.is_ascii_digit())
}

/// A valid registration body for `username`.
pub fn customer_body(username: &str) -> Value {
    json!({
        "username": username,
        "password": PASSWORD,
        "full_name": format!("{username} Example"),
        "age": 30,
        "address": "1 Market Street",
        "gender": "female",
        "marital_status": "single",
    })
}

/// A valid body for `POST /api/v1/goods`: category `food`, a description,
/// `price` dollars and `count` in stock.
pub fn good_body(name: &str, price: Value, count: i64) -> Value {
    json!({
        "name": name,
        "category": "food",
        "price": price,
        "description": format!("{name}, fresh from the souk"),
        "count": count,
    })
}

impl TestApp {
    /// Add a good as the admin (see [`good_body`]); returns the good,
    /// asserting 201.
    pub async fn add_good(&self, name: &str, price: Value, count: i64) -> Value {
        let admin = self.admin_token().await;
        let reply = self
            .post("/api/v1/goods", Some(&admin), good_body(name, price, count))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "add good {name}: {}",
            reply.text
        );
        reply.body
    }

    /// The good with `id` as anyone sees it, asserting it exists.
    pub async fn good(&self, id: &str) -> Value {
        let reply = self.get(&format!("/api/v1/goods/{id}"), None).await;
        assert_eq!(reply.status, StatusCode::OK, "good {id}: {}", reply.text);
        reply.body
    }

    /// `username`'s wallet balance in integer cents, as the admin sees it.
    pub async fn balance_cents(&self, username: &str) -> i64 {
        cents(&self.profile(username).await["wallet_balance"])
    }
}

/// A JSON money amount (dollars, at most 2 decimals) as integer cents,
/// read from its exact digits rather than through a float.
pub fn cents(amount: &Value) -> i64 {
    let text = amount.to_string();
    assert!(amount.is_number(), "not a number: {text}");
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    assert!(fraction.len() <= 2, "more than 2 decimals: {text}");
    let negative = whole.starts_with('-');
    let whole: i64 = whole.trim_start_matches('-').parse().unwrap();
    let fraction: i64 = format!("{fraction:0<2}").parse().unwrap();
    let magnitude = whole * 100 + fraction;
    if negative { -magnitude } else { magnitude }
}

/// The shipped extensions' grants with a generous deadline.
const RELAXED_EXTENSION_DEADLINES: &str = r#"{
    "wishlist": { "imports": ["souk:platform/inventory-api"],
                  "subscribe": ["customer.deleted", "good.deleted"], "deadline_ms": 10000 },
    "recommendations": {
        "imports": ["souk:platform/customers-api", "souk:platform/inventory-api",
                    "souk:platform/sales-api", "souk:platform/reviews-api"],
        "deadline_ms": 10000
    }
}"#;

/// The grants every test app starts from: the shipped
/// `host/default-grants.json`, so the bundled extensions keep theirs.
const SHIPPED_GRANTS: &str = include_str!("../../host/default-grants.json");

/// The shipped grants with the entries of `test_json` (a JSON object in the
/// grants file format) added or replacing theirs.
fn with_shipped_grants(test_json: &str) -> souk::config::GrantsSource {
    let mut grants: serde_json::Map<String, Value> =
        serde_json::from_str(SHIPPED_GRANTS).expect("the shipped grants are a JSON object");
    let extra: serde_json::Map<String, Value> =
        serde_json::from_str(test_json).expect("test grants are a JSON object");
    grants.extend(extra);
    let json = Value::Object(grants).to_string();
    souk::config::GrantsSource::Given(json)
}

/// The bytes of the test component `name` (tests/components/<name>), as
/// built for wasm32-wasip2.
pub fn test_component_bytes(name: &str) -> Vec<u8> {
    let path = PathBuf::from(TEST_COMPONENTS_DIR).join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The sum of the samples of metric `name` whose labels include every
/// `key="value"` of `labels`, in a Prometheus text `page` (0 if none).
pub fn metric(page: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    page.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let series_labels = match series.split_once('{') {
                Some((series_name, rest)) if series_name == name => rest,
                None if series == name => "",
                _ => return None,
            };
            labels
                .iter()
                .all(|(key, val)| series_labels.contains(&format!("{key}=\"{val}\"")))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

/// What is left of a [`TestApp`] after [`TestApp::shut_down`]: its database
/// (and the directory holding it, for SQLite), kept until this is dropped.
pub struct StoppedApp {
    /// The database the stopped host used.
    pub database_url: String,
    _dir: TempDir,
    _postgres: Option<PostgresDatabase>,
}

impl TestApp {
    /// `PUT /admin/components/{name}` with `bytes` as `application/wasm`.
    pub async fn put_component(&self, name: &str, bytes: Vec<u8>, token: Option<&str>) -> Reply {
        self.send_raw(
            Method::PUT,
            &format!("/admin/components/{name}"),
            token,
            Some("application/wasm"),
            bytes,
        )
        .await
    }

    /// `GET /admin/components` as the admin: the items, asserting 200.
    pub async fn components(&self) -> Vec<Value> {
        let admin = self.admin_token().await;
        let reply = self.get("/admin/components", Some(&admin)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.body["items"].as_array().expect("items").clone()
    }

    /// The entry of component `name` in `GET /admin/components`, if loaded.
    pub async fn component(&self, name: &str) -> Option<Value> {
        self.components()
            .await
            .into_iter()
            .find(|item| item["name"] == name)
    }

    /// Whether `table` exists in the app's database, read directly: for
    /// checking what the host did (or did not do) to the schema.
    pub async fn table_exists(&self, table: &str) -> bool {
        let sql = if self.database_url.starts_with("sqlite:") {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = $1"
        } else {
            "SELECT tablename::text FROM pg_tables WHERE tablename = $1"
        };
        if self.database_url.starts_with("sqlite:") {
            let pool = sqlx::SqlitePool::connect(&self.database_url).await.unwrap();
            let row: Option<(String,)> = sqlx::query_as(sql)
                .bind(table)
                .fetch_optional(&pool)
                .await
                .unwrap();
            pool.close().await;
            row.is_some()
        } else {
            let pool = sqlx::PgPool::connect(&self.database_url).await.unwrap();
            let row: Option<(String,)> = sqlx::query_as(sql)
                .bind(table)
                .fetch_optional(&pool)
                .await
                .unwrap();
            pool.close().await;
            row.is_some()
        }
    }

    /// Runs `sql` on the app's database directly, behind the host's back:
    /// for breaking what a component relies on (fault injection).
    pub async fn tamper_with_database(&self, sql: &'static str) {
        if self.database_url.starts_with("sqlite:") {
            let pool = sqlx::SqlitePool::connect(&self.database_url).await.unwrap();
            sqlx::raw_sql(sql).execute(&pool).await.unwrap();
            pool.close().await;
        } else {
            let pool = sqlx::PgPool::connect(&self.database_url).await.unwrap();
            sqlx::raw_sql(sql).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }

    /// `GET /metrics` as text, asserting 200.
    pub async fn metrics_page(&self) -> String {
        let reply = self.get("/metrics", None).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.text
    }

    /// Stop the host (as if its process ended) but keep its database, so
    /// another host can start on it (`SpawnOptions::database_url`).
    pub async fn shut_down(mut self) -> StoppedApp {
        self.server.abort();
        let _ = (&mut self.server).await;
        StoppedApp {
            database_url: self.database_url.clone(),
            _dir: std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir")),
            _postgres: self._postgres.take(),
        }
    }
}
