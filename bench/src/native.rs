//! The native floor: what the benchmarked requests cost when written
//! directly with axum and sqlx, on the same schema (Souk's own migration
//! files) and with the same statements the components issue.
//!
//! It serves only what the harness measures, with the same semantics as
//! Souk's handlers: reads by id without a token; an authenticated read
//! that verifies the JWT, resolves the caller by id and checks its token
//! epoch, then reads the profile by username; and a purchase that verifies
//! the JWT and, in one transaction (`BEGIN IMMEDIATE` on SQLite, as Souk
//! does for writes), resolves the buyer, looks up the good by name, takes
//! the stock and debits the wallet with conditional updates and inserts
//! the sale. The pool is configured like Souk's (WAL, synchronous=NORMAL,
//! a 10 s busy timeout, 16 SQLite / 32 PostgreSQL connections), so the
//! difference measured is the WebAssembly host's, not the database's.
//!
//! Data is seeded at start from flags, with ids the harness derives too
//! ([`customer_id`], [`good_id`]).

use std::{str::FromStr, sync::Arc, time::Duration};

use anyhow::Context;
use axum::{
    Json, Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{
    PgPool, SqlitePool,
    postgres::PgPoolOptions,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

/// The migrations of the tables the benchmarked requests touch.
const MIGRATIONS: [&str; 4] = [
    include_str!("../../migrations/customers/0001_create_customers.sql"),
    include_str!("../../migrations/customers/0002_token_epoch.sql"),
    include_str!("../../migrations/inventory/0001_create_inventory_goods.sql"),
    include_str!("../../migrations/sales/0001_create_sales.sql"),
];

const GOOD_COLUMNS: &str =
    "id, name, category, price_cents, description, stock, created_at, updated_at";
const CUSTOMER_COLUMNS: &str = "id, username, full_name, age, address, gender, marital_status, \
                                wallet_cents, role, created_at, updated_at";

/// What the native server is started with.
#[derive(Debug, Clone, clap::Args)]
pub struct NativeArgs {
    /// `sqlite://FILE` or `postgres://...`.
    #[arg(long)]
    pub database_url: String,
    /// Listen address.
    #[arg(long)]
    pub addr: std::net::SocketAddr,
    /// HS256 secret of the tokens it accepts.
    #[arg(long)]
    pub jwt_secret: String,
    /// Customers to seed (`bench0`, `bench1`, ...).
    #[arg(long)]
    pub customers: usize,
    /// Goods to seed (`Bench Good 0`, ...).
    #[arg(long)]
    pub goods: usize,
    /// Stock of each good.
    #[arg(long)]
    pub stock: i64,
    /// Wallet of each customer, in cents.
    #[arg(long)]
    pub wallet_cents: i64,
}

/// The id of seeded customer `index`, as a UUID string.
pub fn customer_id(index: usize) -> String {
    uuid::Uuid::from_u128(0x0001_0000_0000_0000_0000_0000_0000_0000 + index as u128).to_string()
}

/// The id of seeded good `index`, as a UUID string.
pub fn good_id(index: usize) -> String {
    uuid::Uuid::from_u128(0x0002_0000_0000_0000_0000_0000_0000_0000 + index as u128).to_string()
}

/// The username of seeded customer `index`.
pub fn username(index: usize) -> String {
    format!("bench{index}")
}

/// The name of seeded good `index`.
pub fn good_name(index: usize) -> String {
    format!("Bench Good {index}")
}

#[derive(Clone)]
enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

struct App {
    db: Db,
    key: jsonwebtoken::DecodingKey,
    validation: jsonwebtoken::Validation,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    ep: u64,
}

#[derive(Serialize)]
struct Good {
    id: String,
    name: String,
    category: String,
    price: f64,
    description: String,
    count: i64,
    created_at: String,
    updated_at: String,
}

#[derive(Serialize)]
struct Customer {
    id: String,
    username: String,
    full_name: String,
    age: Option<i64>,
    address: Option<String>,
    gender: String,
    marital_status: String,
    wallet_balance: f64,
    role: String,
    created_at: String,
    updated_at: String,
}

#[derive(Serialize)]
struct Sale {
    id: String,
    username: String,
    good_id: String,
    good_name: String,
    quantity: i64,
    unit_price: f64,
    total: f64,
    created_at: String,
}

#[derive(Deserialize)]
struct PurchaseBody {
    good: String,
    #[serde(default = "one")]
    quantity: i64,
}

fn one() -> i64 {
    1
}

/// The caller a token names, as resolved now.
struct Caller {
    username: String,
    role: String,
}

/// Serve until killed.
pub async fn serve(args: NativeArgs) -> anyhow::Result<()> {
    let db = connect(&args.database_url).await?;
    migrate_and_seed(&db, &args).await?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.leeway = 0;
    let app = Arc::new(App {
        db,
        key: jsonwebtoken::DecodingKey::from_secret(args.jwt_secret.as_bytes()),
        validation,
    });
    let router = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/api/v1/goods/{id}", get(read_good))
        .route("/api/v1/customers/{username}", get(read_customer))
        .route("/api/v1/sales", post(purchase))
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    axum::serve(listener, router).await?;
    Ok(())
}

async fn connect(url: &str) -> anyhow::Result<Db> {
    if url.starts_with("sqlite:") {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .context("cannot open the SQLite database")?;
        Ok(Db::Sqlite(pool))
    } else {
        let pool = PgPoolOptions::new()
            .max_connections(32)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .context("cannot connect to PostgreSQL")?;
        Ok(Db::Postgres(pool))
    }
}

async fn migrate_and_seed(db: &Db, args: &NativeArgs) -> anyhow::Result<()> {
    let now = "2026-01-01T00:00:00Z";
    let mut script = MIGRATIONS.join("\n");
    for index in 0..args.customers {
        script.push_str(&format!(
            "\nINSERT INTO customers (id, username, full_name, age, address, gender, \
             marital_status, wallet_cents, role, password_hash, created_at, updated_at) \
             VALUES ('{}', '{}', 'Bench Customer', 30, '1 Market Street', 'female', 'single', \
             {}, 'customer', 'not-a-hash', '{now}', '{now}');",
            customer_id(index),
            username(index),
            args.wallet_cents
        ));
    }
    for index in 0..args.goods {
        let name = good_name(index);
        script.push_str(&format!(
            "\nINSERT INTO inventory_goods (id, name, name_key, category, price_cents, \
             description, description_key, stock, created_at, updated_at) \
             VALUES ('{}', '{name}', '{}', 'food', 100, 'fresh', 'fresh', {}, '{now}', '{now}');",
            good_id(index),
            name.to_lowercase(),
            args.stock
        ));
    }
    let script = sqlx::AssertSqlSafe(script);
    match db {
        Db::Sqlite(pool) => sqlx::raw_sql(script).execute(pool).await.map(drop),
        Db::Postgres(pool) => sqlx::raw_sql(script).execute(pool).await.map(drop),
    }
    .context("cannot create and seed the schema")
}

fn problem(status: StatusCode, detail: &str) -> Response {
    (
        status,
        Json(json!({ "status": status.as_u16(), "detail": detail })),
    )
        .into_response()
}

fn internal(error: sqlx::Error) -> Response {
    problem(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string())
}

fn subject(app: &App, headers: &HeaderMap) -> Option<Claims> {
    let token = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    jsonwebtoken::decode::<Claims>(token.trim(), &app.key, &app.validation)
        .ok()
        .map(|data| data.claims)
}

fn dollars(cents: i64) -> f64 {
    cents as f64 / 100.0
}

type GoodRow = (String, String, String, i64, String, i64, String, String);

async fn read_good(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let sql = format!("SELECT {GOOD_COLUMNS} FROM inventory_goods WHERE id = $1");
    let sql = sqlx::AssertSqlSafe(sql);
    let row: Result<Option<GoodRow>, _> = match &app.db {
        Db::Sqlite(pool) => sqlx::query_as(sql).bind(&id).fetch_optional(pool).await,
        Db::Postgres(pool) => sqlx::query_as(sql).bind(&id).fetch_optional(pool).await,
    };
    match row {
        Ok(Some((id, name, category, price, description, count, created_at, updated_at))) => {
            Json(Good {
                id,
                name,
                category,
                price: dollars(price),
                description,
                count,
                created_at,
                updated_at,
            })
            .into_response()
        }
        Ok(None) => problem(StatusCode::NOT_FOUND, "no good has this id"),
        Err(error) => internal(error),
    }
}

type CallerRow = (String, String, String, i64);

const RESOLVE: &str = "SELECT id, username, role, token_epoch FROM customers WHERE id = $1";

/// The caller's current identity if the token is valid and its epoch current.
async fn resolve(db: &Db, claims: &Claims) -> Result<Option<Caller>, sqlx::Error> {
    let row: Option<CallerRow> = match db {
        Db::Sqlite(pool) => {
            sqlx::query_as(RESOLVE)
                .bind(&claims.sub)
                .fetch_optional(pool)
                .await?
        }
        Db::Postgres(pool) => {
            sqlx::query_as(RESOLVE)
                .bind(&claims.sub)
                .fetch_optional(pool)
                .await?
        }
    };
    Ok(row
        .filter(|(_, _, _, epoch)| u64::try_from(*epoch).ok() == Some(claims.ep))
        .map(|(_, username, role, _)| Caller { username, role }))
}

async fn read_customer(
    State(app): State<Arc<App>>,
    Path(username): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(claims) = subject(&app, &headers) else {
        return problem(StatusCode::UNAUTHORIZED, "invalid token");
    };
    let caller = match resolve(&app.db, &claims).await {
        Ok(Some(caller)) => caller,
        Ok(None) => return problem(StatusCode::UNAUTHORIZED, "invalid token"),
        Err(error) => return internal(error),
    };
    if caller.role != "admin" && !caller.username.eq_ignore_ascii_case(&username) {
        return problem(StatusCode::FORBIDDEN, "not yours");
    }
    let sql = format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE lower(username) = lower($1)");
    let sql = sqlx::AssertSqlSafe(sql);
    type Row = (
        String,
        String,
        String,
        Option<i64>,
        Option<String>,
        String,
        String,
        i64,
        String,
        String,
        String,
    );
    let row: Result<Option<Row>, _> = match &app.db {
        Db::Sqlite(pool) => {
            sqlx::query_as(sql)
                .bind(&username)
                .fetch_optional(pool)
                .await
        }
        Db::Postgres(pool) => {
            sqlx::query_as(sql)
                .bind(&username)
                .fetch_optional(pool)
                .await
        }
    };
    match row {
        Ok(Some(r)) => Json(Customer {
            id: r.0,
            username: r.1,
            full_name: r.2,
            age: r.3,
            address: r.4,
            gender: r.5,
            marital_status: r.6,
            wallet_balance: dollars(r.7),
            role: r.8,
            created_at: r.9,
            updated_at: r.10,
        })
        .into_response(),
        Ok(None) => problem(StatusCode::NOT_FOUND, "no customer has this username"),
        Err(error) => internal(error),
    }
}

/// Why a purchase did not happen.
enum Refused {
    Status(StatusCode, &'static str),
    Db(sqlx::Error),
}

impl From<sqlx::Error> for Refused {
    fn from(error: sqlx::Error) -> Self {
        Self::Db(error)
    }
}

/// The statements of a purchase on one connection inside a transaction
/// (dropping the transaction on an error rolls it back). A macro, not a
/// generic function: the same text for either backend's connection type.
macro_rules! buy {
    ($conn:expr, $claims:expr, $name_key:expr, $quantity:expr) => {{
        let conn = $conn;
        let claims: &Claims = $claims;
        let quantity: i64 = $quantity;
        let now = now_rfc3339();
        async move {
            let caller: Option<CallerRow> = sqlx::query_as(RESOLVE)
                .bind(claims.sub.as_str())
                .fetch_optional(&mut *conn)
                .await?;
            let (buyer_id, buyer_name) = match caller {
                Some((id, name, _, epoch)) if u64::try_from(epoch).ok() == Some(claims.ep) => {
                    (id, name)
                }
                _ => return Err(Refused::Status(StatusCode::UNAUTHORIZED, "invalid token")),
            };
            let good: Option<(String, i64)> =
                sqlx::query_as("SELECT id, stock FROM inventory_goods WHERE name_key = $1")
                    .bind($name_key)
                    .fetch_optional(&mut *conn)
                    .await?;
            let Some((good_id, stock)) = good else {
                return Err(Refused::Status(StatusCode::NOT_FOUND, "no such good"));
            };
            if stock < quantity {
                return Err(Refused::Status(StatusCode::CONFLICT, "insufficient stock"));
            }
            let taken: Option<(String, i64)> = sqlx::query_as(
                "UPDATE inventory_goods SET stock = stock - $1, updated_at = $2 \
                 WHERE id = $3 AND stock >= $1 RETURNING name, price_cents",
            )
            .bind(quantity)
            .bind(now.as_str())
            .bind(good_id.as_str())
            .fetch_optional(&mut *conn)
            .await?;
            let Some((good_name, price)) = taken else {
                return Err(Refused::Status(StatusCode::CONFLICT, "insufficient stock"));
            };
            let total = price * quantity;
            let debited: Option<(String, i64)> = sqlx::query_as(
                "UPDATE customers SET wallet_cents = wallet_cents - $1, updated_at = $2 \
                 WHERE id = $3 AND wallet_cents >= $1 RETURNING username, wallet_cents",
            )
            .bind(total)
            .bind(now.as_str())
            .bind(buyer_id.as_str())
            .fetch_optional(&mut *conn)
            .await?;
            let Some((_, balance)) = debited else {
                return Err(Refused::Status(StatusCode::CONFLICT, "insufficient funds"));
            };
            let sale_id = uuid::Uuid::now_v7().to_string();
            let _: (String,) = sqlx::query_as(
                "INSERT INTO sales (id, customer_id, username, good_id, good_name, quantity, \
                 unit_price_cents, total_cents, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
            )
            .bind(sale_id.as_str())
            .bind(buyer_id.as_str())
            .bind(buyer_name.as_str())
            .bind(good_id.as_str())
            .bind(good_name.as_str())
            .bind(quantity)
            .bind(price)
            .bind(total)
            .bind(now.as_str())
            .fetch_one(&mut *conn)
            .await?;
            Ok::<_, Refused>((
                Sale {
                    id: sale_id,
                    username: buyer_name,
                    good_id,
                    good_name,
                    quantity,
                    unit_price: dollars(price),
                    total: dollars(total),
                    created_at: now,
                },
                balance,
            ))
        }
        .await
    }};
}

async fn purchase(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Json(body): Json<PurchaseBody>,
) -> Response {
    let Some(claims) = subject(&app, &headers) else {
        return problem(StatusCode::UNAUTHORIZED, "invalid token");
    };
    let name_key = body.good.trim().to_lowercase();
    if !(1..=1000).contains(&body.quantity) || name_key.is_empty() {
        return problem(StatusCode::BAD_REQUEST, "bad purchase");
    }
    let result = match &app.db {
        Db::Sqlite(pool) => match pool.begin_with("BEGIN IMMEDIATE").await {
            Ok(mut tx) => match buy!(&mut *tx, &claims, name_key.as_str(), body.quantity) {
                Ok(sale) => tx.commit().await.map(|()| sale).map_err(Refused::Db),
                Err(refused) => Err(refused),
            },
            Err(error) => Err(Refused::Db(error)),
        },
        Db::Postgres(pool) => match pool.begin().await {
            Ok(mut tx) => match buy!(&mut *tx, &claims, name_key.as_str(), body.quantity) {
                Ok(sale) => tx.commit().await.map(|()| sale).map_err(Refused::Db),
                Err(refused) => Err(refused),
            },
            Err(error) => Err(Refused::Db(error)),
        },
    };
    match result {
        Ok((sale, balance)) => (
            StatusCode::CREATED,
            [(header::LOCATION, format!("/api/v1/sales/{}", sale.id))],
            Json(json!({ "sale": sale, "wallet_balance": dollars(balance) })),
        )
            .into_response(),
        Err(Refused::Status(status, detail)) => problem(status, detail),
        Err(Refused::Db(error)) => internal(error),
    }
}

/// Seconds since the epoch as an RFC 3339 UTC timestamp (what Souk stores).
fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_micros()
    )
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}
