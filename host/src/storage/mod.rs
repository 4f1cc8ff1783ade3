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
pub mod sqlite;
pub mod uow;
pub mod values;
pub mod webhooks;

use std::{str::FromStr, time::Duration};

use anyhow::Context;
use sqlx::{
    Connection, PgPool,
    postgres::PgPoolOptions,
    sqlite::{SqliteConnectOptions, SqlitePoolOptions},
};

pub use sql_check::Dialect;
use sqlite::{BeginWriteError, ReadConn, SqliteDb, WriteTxn};

/// How long a statement waits for SQLite's write lock before giving up.
pub(crate) const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The settings of every SQLite connection that may write: sqlx applies
/// them to its own connections, and the host's writer ([`sqlite`]) runs
/// them when it opens. Write-ahead logging lets readers go on while a
/// transaction writes; `NORMAL` syncs the log at checkpoints only, which
/// WAL keeps consistent; foreign keys are what the schema declares.
const SQLITE_PRAGMAS: [(&str, &str); 3] = [
    ("journal_mode", "WAL"),
    ("synchronous", "NORMAL"),
    ("foreign_keys", "ON"),
];

/// [`SQLITE_PRAGMAS`] as a script.
fn sqlite_pragma_script() -> String {
    SQLITE_PRAGMAS
        .iter()
        .map(|(name, value)| format!("PRAGMA {name} = {value};"))
        .collect()
}

/// The configured backend: its connections, and how transactions begin
/// on it.
#[derive(Clone, Debug)]
pub enum Database {
    /// The embedded default: one file, WAL, one writer at a time.
    Sqlite(SqliteDb),
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
    /// A SQLite write transaction (`BEGIN IMMEDIATE`) on this process's
    /// writer connection, holding its turn until it ends.
    SqliteWrite(WriteTxn),
    /// A SQLite read transaction (deferred `BEGIN`) on a connection of
    /// sqlx's pool, for the host's own reads; component statements do not
    /// run on it.
    SqliteRead(sqlx::Transaction<'static, sqlx::Sqlite>),
    /// A SQLite reader in autocommit mode (each statement its own
    /// transaction; nothing to commit or roll back), for the component
    /// reads of a unit of work before its first write, see
    /// [`SqliteDb::reader`]. Host SQL never runs on it.
    SqliteReader(ReadConn),
    /// PostgreSQL transaction.
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

/// Lock `mutex`, also after a panic elsewhere while it was held: what
/// storage keeps behind a std mutex (a list of rows or connections, a
/// statement's flags) changes by single pushes, pops and assignments, so
/// it is whole whatever panicked.
fn lock_unpoisoned<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Open the SQLite pool, retrying while the file is locked. Turning a new
/// database file into WAL mode takes an exclusive lock that SQLite's busy
/// handler does not wait for: replicas starting together on a fresh file
/// would otherwise see all but one fail at once with "database is locked".
/// Bounded by [`SQLITE_BUSY_TIMEOUT`], as any other wait for the lock.
async fn open_sqlite(
    pool: SqlitePoolOptions,
    options: SqliteConnectOptions,
) -> Result<sqlx::SqlitePool, sqlx::Error> {
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(10);
    loop {
        match pool.clone().connect_with(options.clone()).await {
            Err(sqlx::Error::Database(error))
                if is_sqlite_busy(error.code().as_deref())
                    && started.elapsed() + pause < SQLITE_BUSY_TIMEOUT =>
            {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            result => return result,
        }
    }
}

/// Whether a SQLite result code is SQLITE_BUSY or one of its extended
/// codes (the primary code is the low byte).
fn is_sqlite_busy(code: Option<&str>) -> bool {
    values::sqlite_primary_code(code) == Some(libsqlite3_sys::SQLITE_BUSY)
}

impl Database {
    /// Connect to `url`, creating a SQLite file if it is missing.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            let options = SQLITE_PRAGMAS.iter().fold(
                SqliteConnectOptions::from_str(url)
                    .context("invalid SQLite database URL")?
                    .create_if_missing(true)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT),
                |options, (name, value)| options.pragma(*name, *value),
            );
            // The host's own reads; units of work and writes run on the
            // connections of `sqlite::SqliteDb`.
            let pool_options = SqlitePoolOptions::new()
                // A SQLite connection is a handle on a local file served by
                // its own worker thread, and sqlx already pings each one as
                // it comes back to the pool (closing one whose worker died):
                // a second ping before each use costs a round trip that
                // wakes that thread, and finds nothing.
                .test_before_acquire(false)
                .max_connections(8)
                .acquire_timeout(crate::config::DATABASE_ACQUIRE_TIMEOUT)
                // Bounds no component statement may go past (values.rs).
                .after_connect(|conn, _| Box::pin(values::limit_sqlite_connection(conn)))
                // A connection still inside a transaction is closed, not
                // reused: its ROLLBACK failed, and every later BEGIN on it
                // would fail, for whichever host read got it next.
                .after_release(|conn, _| {
                    let reusable = !conn.is_in_transaction();
                    Box::pin(async move { Ok(reusable) })
                });
            let pool = open_sqlite(pool_options, options)
                .await
                .context("cannot open the SQLite database")?;
            Ok(Self::Sqlite(SqliteDb::new(pool, sqlite_pragma_script())))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(32)
                // Bounds no session may go past (values.rs).
                .after_connect(|conn, _| Box::pin(values::limit_postgres_connection(conn)))
                // As for SQLite: never hand on a connection inside a transaction.
                .after_release(|conn, _| {
                    let reusable = !conn.is_in_transaction();
                    Box::pin(async move { Ok(reusable) })
                })
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
            Self::Sqlite(db) => sqlx::query("SELECT 1").execute(&db.pool).await.map(drop),
            Self::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
        }
        .context("database ping failed")?;
        Ok(started.elapsed())
    }

    /// Begin a transaction suited to `intent` (on SQLite, `BEGIN IMMEDIATE`
    /// for a write, on this process's writer connection after the writers
    /// before it: see [`Intent::Write`] and [`sqlite`]).
    pub async fn begin(&self, intent: Intent) -> Result<Tx, sqlx::Error> {
        match (self, intent) {
            (Self::Sqlite(_), Intent::Write) => self
                .begin_write(crate::config::DATABASE_ACQUIRE_TIMEOUT)
                .await
                .map_err(BeginWriteError::into_sqlx),
            (Self::Sqlite(db), Intent::Read) => db.pool.begin().await.map(Tx::SqliteRead),
            (Self::Postgres(pool), _) => pool.begin().await.map(Tx::Postgres),
        }
    }

    /// On SQLite, `BEGIN IMMEDIATE` on the writer connection once the
    /// writers before it are done, waiting at most `wait` for that turn.
    /// On PostgreSQL a plain transaction (row locks, no turn to wait for).
    pub async fn begin_write(&self, wait: Duration) -> Result<Tx, BeginWriteError> {
        match self {
            Self::Sqlite(db) => db.begin_write(wait).await.map(Tx::SqliteWrite),
            Self::Postgres(pool) => pool
                .begin()
                .await
                .map(Tx::Postgres)
                .map_err(BeginWriteError::Database),
        }
    }

    /// Run host-owned SQL text (several statements allowed) in `tx`.
    /// Only for SQL the host wrote or a migration that passed the check.
    pub async fn run_script(tx: &mut Tx, sql: &str) -> Result<(), sqlx::Error> {
        let script = || sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()));
        match tx {
            Tx::SqliteWrite(tx) => tx.host_script(sql).await,
            Tx::SqliteRead(tx) => script().execute(&mut **tx).await.map(drop),
            Tx::Postgres(tx) => script().execute(&mut **tx).await.map(drop),
            Tx::SqliteReader(_) => Err(ReadConn::no_host_sql()),
        }
    }

    /// Close the connections: PostgreSQL's pool waits for every connection
    /// to be returned; SQLite's, see [`SqliteDb::close`].
    pub async fn close(&self) {
        match self {
            Self::Sqlite(db) => db.close().await,
            Self::Postgres(pool) => pool.close().await,
        }
    }
}

impl Tx {
    /// Commit the transaction (an autocommit connection has nothing to
    /// commit, and goes back for reuse).
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Self::SqliteWrite(tx) => tx.commit().await,
            Self::SqliteRead(tx) => tx.commit().await,
            Self::SqliteReader(conn) => {
                conn.give_back();
                Ok(())
            }
            Self::Postgres(tx) => tx.commit().await,
        }
    }

    /// Roll the transaction back (an autocommit connection has nothing to
    /// roll back, and goes back for reuse).
    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        match self {
            Self::SqliteWrite(tx) => tx.rollback().await,
            Self::SqliteRead(tx) => tx.rollback().await,
            Self::SqliteReader(conn) => {
                conn.give_back();
                Ok(())
            }
            Self::Postgres(tx) => tx.rollback().await,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn busy_and_its_extended_codes_are_busy() {
        assert!(is_sqlite_busy(Some("5")));
        assert!(is_sqlite_busy(Some("517"))); // SQLITE_BUSY_SNAPSHOT
        assert!(!is_sqlite_busy(Some("6"))); // SQLITE_LOCKED
        assert!(!is_sqlite_busy(Some("2067"))); // SQLITE_CONSTRAINT_UNIQUE
        assert!(!is_sqlite_busy(None));
    }

    /// The state an interrupted write leaves: SQLite ended the transaction
    /// itself, so sqlx's ROLLBACK fails and its depth stays at one. The
    /// next request must still be able to begin.
    #[tokio::test]
    async fn a_connection_whose_rollback_failed_is_not_handed_on() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let Database::Sqlite(db) = Database::connect(&url).await.unwrap() else {
            panic!("not SQLite");
        };
        let pool = db.pool;
        for _ in 0..20 {
            let mut tx = pool.begin().await.unwrap();
            sqlx::query("ROLLBACK").execute(&mut *tx).await.unwrap();
            assert!(tx.rollback().await.is_err(), "the ROLLBACK should fail");
            // The pool takes a released connection back in a task of its
            // own: wait until nothing is checked out, so the next BEGIN is
            // offered that connection if the pool kept it.
            for _ in 0..200 {
                if pool.num_idle() == pool.size() as usize {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            // A write's BEGIN, as the host's pool reads would never send
            // one: the worst a released connection could be asked for.
            let next = pool
                .begin_with("BEGIN IMMEDIATE")
                .await
                .expect("a later BEGIN IMMEDIATE");
            next.rollback().await.unwrap();
        }
    }
}
