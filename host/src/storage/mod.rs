//! Storage: the connection pool for SQLite or PostgreSQL, the per-request
//! unit of work (one transaction shared by every component the request
//! touches), component migrations with table ownership, and the statement
//! check that keeps each component inside its own tables.
//!
//! SQLite and PostgreSQL differ in how values are typed on the wire, so
//! binding and decoding are written once per backend in [`values`]; all
//! other code works on [`Database`] and [`Tx`] without caring which.

pub mod deployments;
pub mod events;
pub mod grants;
pub mod migrations;
pub mod sql_check;
pub mod uow;
pub mod values;
pub mod webhooks;

use std::{str::FromStr, time::Duration};

use anyhow::Context;
use sqlx::{
    PgPool, SqlitePool,
    postgres::PgPoolOptions,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

pub use sql_check::Dialect;

/// How long a statement waits for SQLite's write lock before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection pool to the configured backend.
#[derive(Clone, Debug)]
pub enum Database {
    /// The embedded default: one file, WAL, one writer at a time.
    Sqlite(SqlitePool),
    /// The production backend.
    Postgres(PgPool),
}

/// Whether a unit of work may write, which decides how SQLite begins it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intent {
    /// Reads only: a deferred transaction, concurrent with other readers.
    Read,
    /// May write: on SQLite `BEGIN IMMEDIATE`, because a deferred transaction
    /// that reads and later writes can fail with SQLITE_BUSY_SNAPSHOT under
    /// concurrency, and a busy timeout does not help with that.
    Write,
}

/// An open transaction on either backend.
#[derive(Debug)]
pub enum Tx {
    /// SQLite transaction.
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    /// PostgreSQL transaction.
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl Database {
    /// Connect to `url`, creating a SQLite file if it is missing.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .context("invalid SQLite database URL")?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(SQLITE_BUSY_TIMEOUT);
            let pool = SqlitePoolOptions::new()
                .max_connections(16)
                .acquire_timeout(crate::config::DATABASE_ACQUIRE_TIMEOUT)
                // Bounds no component statement may go past (values.rs).
                .after_connect(|conn, _| Box::pin(values::limit_sqlite_connection(conn)))
                .connect_with(options)
                .await
                .context("cannot open the SQLite database")?;
            Ok(Self::Sqlite(pool))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(32)
                // Bounds no session may go past (values.rs).
                .after_connect(|conn, _| Box::pin(values::limit_postgres_connection(conn)))
                .acquire_timeout(crate::config::DATABASE_ACQUIRE_TIMEOUT)
                .connect(url)
                .await
                .context("cannot connect to PostgreSQL")?;
            Ok(Self::Postgres(pool))
        } else {
            anyhow::bail!("unsupported database URL: use sqlite://FILE or postgres://...")
        }
    }

    /// The SQL dialect of this backend.
    pub fn dialect(&self) -> Dialect {
        match self {
            Self::Sqlite(_) => Dialect::Sqlite,
            Self::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Backend name as reported by `/health/database`.
    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    /// Round-trip one trivial query; returns how long it took.
    pub async fn ping(&self) -> anyhow::Result<Duration> {
        let started = std::time::Instant::now();
        match self {
            Self::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
            Self::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
        }
        .context("database ping failed")?;
        Ok(started.elapsed())
    }

    /// Begin a transaction suited to `intent`.
    pub async fn begin(&self, intent: Intent) -> Result<Tx, sqlx::Error> {
        match (self, intent) {
            (Self::Sqlite(pool), Intent::Write) => {
                pool.begin_with("BEGIN IMMEDIATE").await.map(Tx::Sqlite)
            }
            (Self::Sqlite(pool), Intent::Read) => pool.begin().await.map(Tx::Sqlite),
            (Self::Postgres(pool), _) => pool.begin().await.map(Tx::Postgres),
        }
    }

    /// Run host-owned SQL text (several statements allowed) in `tx`.
    /// Only for SQL the host wrote or a migration that passed the check.
    pub async fn run_script(tx: &mut Tx, sql: &str) -> Result<(), sqlx::Error> {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match tx {
            Tx::Sqlite(tx) => sqlx::raw_sql(sql).execute(&mut **tx).await.map(drop),
            Tx::Postgres(tx) => sqlx::raw_sql(sql).execute(&mut **tx).await.map(drop),
        }
    }

    /// Close the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        match self {
            Self::Sqlite(pool) => pool.close().await,
            Self::Postgres(pool) => pool.close().await,
        }
    }
}

impl Tx {
    /// Commit the transaction.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(tx) => tx.commit().await,
            Self::Postgres(tx) => tx.commit().await,
        }
    }

    /// Roll the transaction back.
    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(tx) => tx.rollback().await,
            Self::Postgres(tx) => tx.rollback().await,
        }
    }
}
