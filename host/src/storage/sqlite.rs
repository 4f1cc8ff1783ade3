//! The SQLite connections units of work run on: a set of reader
//! connections for the reads of a unit of work before its first write (in
//! autocommit mode), and one writer connection per database file and
//! process, which every write transaction of the process takes in turn.
//! sqlx's pool stays for the host's own reads.
//!
//! Neither readers nor the writer are sqlx connections: they are the
//! host's own ([`conn`]), and a core service's statement runs on the
//! calling thread, where on a sqlx connection every statement was a
//! hand-over to the connection's worker thread and a wake-up back. A
//! reader's statement that takes more than a millisecond or would wait
//! for a lock moves to a blocking thread; an extension's statement always
//! runs on one. A connection whose statement was abandoned mid-way (its
//! client went away) is closed instead of reused.
//!
//! The writer's turn is a fair queue (tokio's mutex serves waiters in
//! arrival order): writers of this process never poll SQLite's busy
//! handler against each other, which sleeps in growing steps and lets
//! later arrivals overtake (under load most purchases waited a few
//! milliseconds and some a second). The turn is per database file, so
//! hosts sharing a file in one process (tests) share it; other processes
//! on the file still meet the busy timeout, which stays the fallback.
//!
//! Inside the turn nothing is handed over: `BEGIN IMMEDIATE`, a core
//! service's statements, and at the end the host's rows for the request
//! and `COMMIT` ([`direct`]) all run on the holder's thread. A write
//! cannot be stopped and run again elsewhere the way a read is (an
//! interrupted write rolls the whole transaction back), so a core
//! service's statement in a write transaction runs where it starts, to its
//! end or its deadline: the core services' writes are by key, and only one
//! thread of the process is ever inside the turn. The host's other SQL on
//! the writer (migrations, deployments, the event pump) runs on a blocking
//! thread, as it did on sqlx's worker. The writer never checkpoints inside
//! its turn unless the log grew far past [`CHECKPOINT_FRAMES`]: the host's
//! checkpointer ([`SqliteDb::checkpoint`]) copies the log on another
//! connection.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex, Weak},
    time::{Duration, Instant},
};

use sqlx::{SqlitePool, sqlite::SqliteConnectOptions};
use tokio::sync::{Notify, OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};

use super::{lock_unpoisoned, values::Bounds};
use crate::bindings::db::{DbError, Rows, Value};

mod conn;
mod direct;

use conn::{Holder, RawConn, Role, close_elsewhere, on_blocking_thread};

/// How a write transaction begins: see [`crate::storage::Intent::Write`].
const BEGIN: &str = "BEGIN IMMEDIATE";

/// Most reader connections open at once.
const MAX_READERS: usize = 16;

/// How long closing waits for a write transaction to end.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Frames in the write-ahead log past which a commit asks for a checkpoint
/// ([`SqliteDb::wal_grown`]): ten times SQLite's default for its automatic
/// one, about 40 MiB of log with 4 KiB pages.
///
/// SQLite runs its automatic checkpoint inside the `COMMIT` that crossed
/// its mark, so on the writer it ran while every other writer of the
/// process waited for the turn. The writer therefore has no automatic
/// checkpoint; the host's checkpointer copies the log on a connection of
/// its own ([`SqliteDb::checkpoint`]). Measured under purchase load
/// (souk-bench, 16 connections, 2026-12-01): with no checkpoint at all
/// Souk made 1,373–1,438 purchases a second against 1,062 with one every
/// 1,000 frames, and each checkpoint's cost is mostly per checkpoint (a
/// hot page is copied once however often it was written since the last
/// one): every 4,000 frames 1,080–1,155 a second, every 10,000 frames
/// 1,265–1,273, every 30,000 1,402–1,432. Ten thousand keeps most of the
/// gain with the log a tenth of the last one's size.
pub const CHECKPOINT_FRAMES: u64 = 10_000;

/// Past this many frames the committing writer checkpoints itself, as
/// SQLite's automatic checkpoint would, before giving up its turn: the log
/// stays bounded in a process that runs no checkpointer or whose
/// checkpointer cannot keep up.
const CHECKPOINT_FRAMES_FALLBACK: u64 = 2 * CHECKPOINT_FRAMES;

/// A SQLite database: sqlx's pool for the host's own reads, and the
/// connections units of work and write transactions run on.
#[derive(Clone, Debug)]
pub struct SqliteDb {
    /// For the host's reads (deferred transactions, health checks).
    pub pool: SqlitePool,
    readers: Arc<Readers>,
    writer: Arc<Writer>,
}

/// Why a write transaction could not begin.
#[derive(Debug, thiserror::Error)]
pub enum BeginWriteError {
    /// The turn did not come within the time allowed.
    #[error("timed out waiting for the database's write lock")]
    TimedOut,
    /// Opening the writer or `BEGIN IMMEDIATE` failed.
    #[error("cannot begin a write transaction")]
    Database(#[source] sqlx::Error),
}

impl BeginWriteError {
    /// As sqlx reports a pool that gave no connection in time.
    pub fn into_sqlx(self) -> sqlx::Error {
        match self {
            Self::TimedOut => sqlx::Error::PoolTimedOut,
            Self::Database(error) => error,
        }
    }
}

impl SqliteDb {
    /// The database `pool` opened, with its reader set and this process's
    /// writer for the file (shared with other hosts of the process), which
    /// runs `writer_pragmas` when it opens (the settings sqlx applies to
    /// the pool's connections).
    pub fn new(pool: SqlitePool, writer_pragmas: String) -> Self {
        let options = pool.connect_options();
        Self {
            readers: Arc::new(Readers {
                options: options.clone(),
                permits: Arc::new(Semaphore::new(MAX_READERS)),
                idle: Mutex::new(Vec::new()),
            }),
            writer: Writer::for_file(options, writer_pragmas),
            pool,
        }
    }

    /// A reader connection in autocommit mode, waiting at most `wait` for
    /// one of [`MAX_READERS`]: for the reads of a unit of work before its
    /// first write (PostgreSQL has no such thing: a component's statements
    /// need the transaction that scopes `SET LOCAL ROLE` and
    /// `statement_timeout`). It saves the `BEGIN` and `COMMIT` round trips
    /// and holds no lock while the request's components run between
    /// statements. Each statement then sees the database as last committed
    /// when it started, which is what PostgreSQL's default READ COMMITTED
    /// gives every statement of a transaction: components already cannot
    /// rely on more.
    pub async fn reader(&self, wait: Duration) -> Result<ReadConn, sqlx::Error> {
        let permit = tokio::time::timeout(wait, self.readers.permits.clone().acquire_owned())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            // Never closed: only the timeout ends the wait.
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let idle = lock_unpoisoned(&self.readers.idle).pop();
        let reader = match idle {
            Some(reader) => reader,
            // Opening reads nothing yet: no lock to wait for.
            None => RawConn::open(
                &self.readers.options,
                Role::Reader,
                "",
                super::SQLITE_BUSY_TIMEOUT,
            )?,
        };
        Ok(ReadConn {
            checkout: Some(Checkout {
                reader,
                _permit: permit,
            }),
            home: self.readers.clone(),
        })
    }

    /// `BEGIN IMMEDIATE` on the writer, after this caller's turn, waiting
    /// at most `wait` for it (and for another process's write lock).
    pub async fn begin_write(&self, wait: Duration) -> Result<WriteTxn, BeginWriteError> {
        let started = Instant::now();
        let mut turn = tokio::time::timeout(wait, self.writer.conn.clone().lock_owned())
            .await
            .map_err(|_| BeginWriteError::TimedOut)?;
        let mut conn = match turn.take() {
            Some(conn) => conn,
            // Opening sets write-ahead logging, which reads the file.
            None => {
                let (options, pragmas) = (self.writer.options.clone(), self.writer.pragmas.clone());
                tokio::task::spawn_blocking(move || {
                    RawConn::open(&options, Role::Writer, &pragmas, super::SQLITE_BUSY_TIMEOUT)
                })
                .await
                .map_err(|_| BeginWriteError::Database(sqlx::Error::WorkerCrashed))?
                .map_err(BeginWriteError::Database)?
            }
        };
        let begun = conn.without_waiting(|conn| conn.host_changes(BEGIN, &[]));
        // Dropped on failure: the turn passes on, and a connection left
        // outside a transaction is kept for the next writer.
        let mut txn = WriteTxn {
            conn: Some(conn),
            turn: Some(turn),
            wal_grown: self.writer.wal_grown.clone(),
        };
        match begun {
            Ok(_) => {}
            // Another process writes, or the connection of an abandoned
            // transaction is still closing: wait on a blocking thread.
            Err(error) if is_busy(&error) => {
                let left = wait.saturating_sub(started.elapsed());
                on_blocking_thread(&mut txn.conn, move |conn, _| {
                    conn.waiting(left.min(super::SQLITE_BUSY_TIMEOUT), |conn| {
                        conn.host_changes(BEGIN, &[])
                    })
                })
                .await
                .and_then(|begun| begun)
                .map_err(BeginWriteError::Database)?;
            }
            // Not a lock another connection holds: the connection may be
            // in any state, so the next writer opens a new one.
            Err(error) => {
                close_elsewhere(txn.conn.take());
                return Err(BeginWriteError::Database(error));
            }
        }
        Ok(txn)
    }

    /// How many reader connections are idle (for tests).
    #[cfg(test)]
    pub(crate) fn idle_readers(&self) -> usize {
        lock_unpoisoned(&self.readers.idle).len()
    }

    /// Resolves after a commit left the write-ahead log past
    /// [`CHECKPOINT_FRAMES`] frames (or at once, if one did since the last
    /// call): the checkpointer's cue.
    pub async fn wal_grown(&self) {
        self.writer.wal_grown.notified().await;
    }

    /// Copy the write-ahead log into the database file, on a connection
    /// of sqlx's pool, not on the writer, in two passive checkpoints. The
    /// first copies what is there while writers go on: a passive
    /// checkpoint takes no write lock and waits for no reader. SQLite
    /// starts the log over only when a write transaction begins with
    /// every frame already copied, which under steady writes never holds
    /// after that first pass, so the log would grow without end. The
    /// second pass therefore runs in the writers' turn, copying what was
    /// committed during the first (and what a reader then still needed:
    /// no more than SQLite's automatic checkpoint copied in the turn), and
    /// the next writer starts the log over. If the turn does not come
    /// within `wait`, the log stays as the first pass left it. Pages a
    /// reader may still need stay in the log for the next checkpoint.
    pub async fn checkpoint(&self, wait: Duration) -> Result<Checkpoint, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        let first = checkpoint(&mut conn).await?;
        let Ok(_turn) = tokio::time::timeout(wait, self.writer.conn.lock()).await else {
            return Ok(first);
        };
        checkpoint(&mut conn).await
    }

    /// Close sqlx's pool (waiting for its connections), the idle readers
    /// and the writer, waiting at most [`CLOSE_WAIT`] for a write
    /// transaction to end. Readers still out close when they are dropped.
    /// Meant for shutdown: a later unit of work would open connections
    /// again (as another host of the process sharing the writer does).
    pub async fn close(&self) {
        self.pool.close().await;
        drop(std::mem::take(&mut *lock_unpoisoned(&self.readers.idle)));
        if let Ok(mut turn) = tokio::time::timeout(CLOSE_WAIT, self.writer.conn.lock()).await
            && let Some(writer) = turn.take()
        {
            // The last connection to close checkpoints the log.
            tokio::task::spawn_blocking(move || drop(writer)).await.ok();
        }
    }
}

/// The reader connections of a database: idle ones, and a permit per
/// connection checked out.
#[derive(Debug)]
struct Readers {
    options: Arc<SqliteConnectOptions>,
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<RawConn>>,
}

/// A reader connection checked out for a unit of work, with its place
/// among the readers: the place goes wherever the connection goes (to a
/// blocking thread, and away with it if its caller leaves), so the number
/// of open readers stays bounded.
#[derive(Debug)]
struct Checkout {
    reader: RawConn,
    _permit: OwnedSemaphorePermit,
}

impl Holder for Checkout {
    fn conn(&mut self) -> &mut RawConn {
        &mut self.reader
    }
}

/// A reader connection in autocommit mode (each statement its own
/// transaction) that cannot write: a statement the checker took for a
/// read runs here, outside the writer's turn and the request's
/// transaction, so a write slipping through must fail, not commit on its
/// own. A core service's read starts on the caller's thread and moves to
/// a blocking thread past a budget ([`conn::run`]).
/// [`Self::give_back`] returns it for the next unit of work; dropped
/// otherwise, it is closed.
#[derive(Debug)]
pub struct ReadConn {
    /// `None` once the connection is gone (lost, or left with a statement
    /// its caller abandoned, which keeps the connection's place until it
    /// ends).
    checkout: Option<Checkout>,
    home: Arc<Readers>,
}

impl ReadConn {
    /// Run a component's read within `bounds`, returning its rows.
    pub async fn query(
        &mut self,
        sql: &str,
        params: &[Value],
        bounds: &Bounds,
    ) -> Result<Rows, DbError> {
        conn::query(&mut self.checkout, sql, params, bounds).await
    }

    /// Run a component's statement within `bounds`, returning how many
    /// rows it changed (none: a reader cannot write).
    pub async fn execute(
        &mut self,
        sql: &str,
        params: &[Value],
        bounds: &Bounds,
    ) -> Result<u64, DbError> {
        conn::execute(&mut self.checkout, sql, params, bounds).await
    }

    /// How many statements this reader ran on a blocking thread.
    #[cfg(test)]
    pub(crate) fn off_thread(&self) -> Option<u64> {
        self.checkout
            .as_ref()
            .map(|checkout| checkout.reader.off_thread())
    }

    /// The texts of the statements it keeps prepared (for tests).
    #[cfg(test)]
    pub(crate) fn kept(&self) -> Vec<String> {
        self.checkout
            .as_ref()
            .map(|checkout| {
                checkout
                    .reader
                    .kept()
                    .into_iter()
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The error for host SQL sent to a reader: the host runs its own
    /// statements in the unit of work's write transaction.
    pub fn no_host_sql() -> sqlx::Error {
        sqlx::Error::InvalidArgument("host SQL does not run on a reader connection".into())
    }

    /// Return it to the idle set, unless it is gone.
    pub fn give_back(self) {
        if let Some(checkout) = self.checkout {
            lock_unpoisoned(&self.home.idle).push(checkout.reader);
        }
    }
}

/// This process's writer connection to one database file, taken in turn.
#[derive(Debug)]
struct Writer {
    options: Arc<SqliteConnectOptions>,
    /// Run when the connection opens.
    pragmas: Arc<str>,
    /// `None` until opened, and after a transaction that did not end
    /// cleanly.
    conn: Arc<tokio::sync::Mutex<Option<RawConn>>>,
    /// Poked when a commit leaves the log past [`CHECKPOINT_FRAMES`].
    wal_grown: Arc<Notify>,
}

impl Writer {
    /// The writer for the file `options` open, shared by every host of
    /// this process on it.
    fn for_file(options: Arc<SqliteConnectOptions>, pragmas: String) -> Arc<Self> {
        static WRITERS: Mutex<Option<HashMap<PathBuf, Weak<Writer>>>> = Mutex::new(None);
        let file = options.get_filename().to_path_buf();
        let mut writers = lock_unpoisoned(&WRITERS);
        let writers = writers.get_or_insert_with(HashMap::new);
        if let Some(writer) = writers.get(&file).and_then(Weak::upgrade) {
            return writer;
        }
        // Forget writers of files no longer in use.
        writers.retain(|_, writer| writer.strong_count() > 0);
        let writer = Arc::new(Self {
            options,
            pragmas: pragmas.into(),
            conn: Arc::new(tokio::sync::Mutex::new(None)),
            wal_grown: Arc::new(Notify::new()),
        });
        writers.insert(file, Arc::downgrade(&writer));
        writer
    }
}

/// A write transaction on the writer connection, holding the turn until it
/// ends. Dropped without [`Self::commit`] or [`Self::rollback`] (its
/// request was dropped), it is rolled back and the writer kept, unless a
/// statement of it was running on a blocking thread: that one is
/// interrupted, and its connection closed when it stops (closing rolls
/// the transaction back). The turn passes on at once; the next writer
/// opens a new connection, whose `BEGIN IMMEDIATE` waits for that close.
#[derive(Debug)]
pub struct WriteTxn {
    /// `None` once the connection is gone (lost, or left with a statement
    /// its caller abandoned).
    conn: Option<RawConn>,
    /// `None` only once the transaction ended.
    turn: Option<OwnedMutexGuard<Option<RawConn>>>,
    wal_grown: Arc<Notify>,
}

impl WriteTxn {
    /// Run a component's statement within `bounds`, returning its rows.
    pub async fn query(
        &mut self,
        sql: &str,
        params: &[Value],
        bounds: &Bounds,
    ) -> Result<Rows, DbError> {
        conn::query(&mut self.conn, sql, params, bounds).await
    }

    /// Run a component's statement within `bounds`, returning how many rows
    /// it changed.
    pub async fn execute(
        &mut self,
        sql: &str,
        params: &[Value],
        bounds: &Bounds,
    ) -> Result<u64, DbError> {
        conn::execute(&mut self.conn, sql, params, bounds).await
    }

    /// Run a statement the host wrote (`$n`-numbered parameters),
    /// returning its rows, on a blocking thread: host SQL is not bounded
    /// the way a component's is (a migration, a component's bytes).
    pub async fn host_query(&mut self, sql: &str, params: &[Value]) -> Result<Rows, DbError> {
        let (sql, params) = (sql.to_owned(), params.to_vec());
        on_blocking_thread(&mut self.conn, move |conn, _| conn.host_rows(&sql, &params))
            .await
            .map_err(super::values::db_error)?
    }

    /// As [`Self::host_query`], returning how many rows it changed.
    pub async fn host_execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        let (sql, params) = (sql.to_owned(), params.to_vec());
        on_blocking_thread(&mut self.conn, move |conn, _| {
            conn.host_changes(&sql, &params)
        })
        .await
        .and_then(|changed| changed)
        .map_err(super::values::db_error)
    }

    /// Run host SQL text (several statements allowed) on a blocking
    /// thread: only SQL the host wrote or a migration that passed the
    /// check.
    pub async fn host_script(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        let sql = sql.to_owned();
        on_blocking_thread(&mut self.conn, move |conn, _| conn.script(&sql)).await?
    }

    /// Statements this writer ran on a blocking thread (for tests).
    #[cfg(test)]
    pub(crate) fn off_thread(&self) -> Option<u64> {
        self.conn.as_ref().map(RawConn::off_thread)
    }

    /// `COMMIT`. If it fails the transaction is rolled back (SQLite keeps
    /// it open after a busy COMMIT).
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.commit_with(&[])
            .await
            .map_err(CommitWithError::into_sqlx)
    }

    /// Run the host's own `statements` (`$n`-numbered SQL and its
    /// parameters: the rows a request appends for its commit), then
    /// `COMMIT`, on the calling thread (see [`direct`]). Only for host SQL
    /// with a bounded amount of work.
    pub async fn commit_with(
        mut self,
        statements: &[(String, Vec<Value>)],
    ) -> Result<(), CommitWithError> {
        let ended = match self.conn.as_mut() {
            Some(conn) if conn.in_transaction() => conn.without_waiting(|conn| {
                for (sql, params) in statements {
                    conn.host_changes(sql, params)
                        .map_err(Ended::StatementFailed)?;
                }
                conn.commit().map_err(Ended::CommitFailed)
            }),
            Some(_) => Err(Ended::StatementFailed(sqlx::Error::InvalidArgument(
                "the write transaction had already ended".into(),
            ))),
            None => Err(Ended::CommitFailed(sqlx::Error::PoolClosed)),
        };
        let ended = match ended {
            // Outside WAL mode COMMIT waits for readers to finish: on a
            // blocking thread, not on this one.
            Err(Ended::CommitFailed(error)) if is_busy(&error) => {
                on_blocking_thread(&mut self.conn, |conn, _| conn.commit())
                    .await
                    .and_then(|committed| committed)
                    .map_err(Ended::CommitFailed)
            }
            ended => ended,
        };
        match ended {
            Ok(frames) => {
                if frames >= CHECKPOINT_FRAMES {
                    self.wal_grown.notify_one();
                }
                if frames >= CHECKPOINT_FRAMES_FALLBACK {
                    self.checkpoint_instead_of_the_checkpointer().await;
                }
                self.give_back();
                Ok(())
            }
            Err(Ended::StatementFailed(error)) => Err(CommitWithError::Statement(self, error)),
            Err(Ended::CommitFailed(error)) => {
                // SQLite keeps the transaction open after some failed
                // commits (a deferred constraint, which a migration may
                // declare): roll back and keep the connection, as for any
                // other transaction that does not commit.
                self.roll_back();
                Err(CommitWithError::Commit(error))
            }
        }
    }

    /// `ROLLBACK`. A transaction SQLite already ended (a statement
    /// interrupted at its deadline can roll the whole transaction back)
    /// counts as rolled back: the unit of work learned that when the
    /// statement failed (see [`Self::ended_by_sqlite`]).
    pub async fn rollback(mut self) -> Result<(), sqlx::Error> {
        self.roll_back();
        self.give_back();
        Ok(())
    }

    /// Roll back on the calling thread (in WAL mode a rollback only drops
    /// the transaction's pages). If `ROLLBACK` fails, the connection is
    /// closed instead, which rolls back too.
    fn roll_back(&mut self) {
        let Some(conn) = self.conn.as_mut() else {
            // Gone: closing it rolled back.
            return;
        };
        if !conn.in_transaction() {
            return;
        }
        if let Err(error) = conn.without_waiting(|conn| conn.host_changes("ROLLBACK", &[])) {
            tracing::debug!("ROLLBACK failed; closing the writer instead: {error}");
            close_elsewhere(self.conn.take());
        }
    }

    /// Whether SQLite itself ended the transaction (it rolls the whole
    /// transaction back after some failures of a statement in it: an
    /// interrupt, a full disk, an I/O error, a busy or out-of-memory
    /// statement): the connection is outside any transaction now. Asked
    /// after a failed statement, since statements run after that would
    /// each commit on their own. A connection that is gone ended it too.
    pub fn ended_by_sqlite(&self) -> bool {
        self.conn.as_ref().is_none_or(|conn| !conn.in_transaction())
    }

    /// A passive checkpoint on the writer, within its turn: only when the
    /// log grew far past [`CHECKPOINT_FRAMES`] without one.
    async fn checkpoint_instead_of_the_checkpointer(&mut self) {
        let checkpointed = on_blocking_thread(&mut self.conn, |conn, _| {
            conn.script("PRAGMA wal_checkpoint(PASSIVE)")
        });
        if let Err(error) = checkpointed.await.and_then(|done| done) {
            tracing::debug!("the writer could not checkpoint the log: {error}");
        }
    }

    /// End the turn, keeping the connection for the next writer if it is
    /// outside any transaction.
    fn give_back(&mut self) {
        let Some(mut turn) = self.turn.take() else {
            return;
        };
        match self.conn.take() {
            Some(conn) if !conn.in_transaction() => *turn = Some(conn),
            inside => close_elsewhere(inside),
        }
    }
}

impl Drop for WriteTxn {
    fn drop(&mut self) {
        if self.turn.is_some() {
            // Abandoned: a statement on a blocking thread has the
            // connection (and is being stopped), or none runs.
            self.roll_back();
            self.give_back();
        }
    }
}

/// What a checkpoint did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkpoint {
    /// It ran: the log holds `logged` frames, `checkpointed` of which are
    /// in the database file now (fewer if readers still need the rest).
    Ran {
        /// Frames in the log.
        logged: i64,
        /// Frames copied into the database file, now or before.
        checkpointed: i64,
    },
    /// Another checkpoint was running (another host or process on the
    /// file): nothing was copied, and the next one catches up.
    Blocked,
}

/// `PRAGMA wal_checkpoint(PASSIVE)` on `conn`.
async fn checkpoint(conn: &mut sqlx::SqliteConnection) -> Result<Checkpoint, sqlx::Error> {
    let (blocked, logged, checkpointed): (i64, i64, i64) =
        sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(conn)
            .await?;
    Ok(if blocked != 0 {
        Checkpoint::Blocked
    } else {
        Checkpoint::Ran {
            logged,
            checkpointed,
        }
    })
}

/// Why [`WriteTxn::commit_with`] did not commit.
#[derive(Debug)]
pub enum CommitWithError {
    /// One of the host's statements failed; nothing is committed. The
    /// transaction is the caller's to roll back.
    Statement(WriteTxn, sqlx::Error),
    /// `COMMIT` failed, or the connection did; the transaction was rolled
    /// back.
    Commit(sqlx::Error),
}

impl CommitWithError {
    /// The error, rolling back a transaction that is still open.
    pub fn into_sqlx(self) -> sqlx::Error {
        match self {
            // Dropping the transaction rolls it back.
            Self::Statement(_, error) | Self::Commit(error) => error,
        }
    }
}

/// How the statements of [`WriteTxn::commit_with`] failed.
enum Ended {
    StatementFailed(sqlx::Error),
    CommitFailed(sqlx::Error),
}

/// Whether `error` is SQLite's "busy": a lock another connection holds.
fn is_busy(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(error) if super::is_sqlite_busy(error.code().as_deref()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(crate) mod tests {
    use sqlx::Connection;

    use super::*;
    use crate::storage::Database;

    /// Commit a transaction that adds about `pages` pages to the log.
    pub(crate) async fn write_frames(db: &SqliteDb, pages: u64) {
        /// Pages per row: each below the connection's value length limit.
        const ROW_PAGES: u64 = 2_000;
        sqlx::query("CREATE TABLE IF NOT EXISTS big (b BLOB)")
            .execute(&db.pool)
            .await
            .unwrap();
        let mut tx = db.begin_write(WAIT).await.unwrap();
        let mut left = pages;
        while left > 0 {
            let row = left.min(ROW_PAGES);
            tx.host_execute(
                "INSERT INTO big VALUES (zeroblob($1))",
                &[Value::Integer(i64::try_from(row << 12).unwrap())],
            )
            .await
            .unwrap();
            left -= row;
        }
        tx.commit().await.unwrap();
    }

    /// A new database file, its path, and the database on it.
    pub(crate) async fn fresh_file() -> (tempfile::TempDir, PathBuf, SqliteDb) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.db");
        let url = format!("sqlite://{}", file.display());
        let Database::Sqlite(db) = Database::connect(&url).await.unwrap() else {
            panic!("not SQLite");
        };
        (dir, file, db)
    }

    /// A new database with a table `t (n INTEGER)`.
    async fn sqlite() -> (tempfile::TempDir, SqliteDb) {
        let (dir, _, db) = fresh_file().await;
        sqlx::query("CREATE TABLE t (n INTEGER)")
            .execute(&db.pool)
            .await
            .unwrap();
        (dir, db)
    }

    const WAIT: Duration = Duration::from_secs(5);

    fn far() -> Bounds {
        Bounds {
            deadline: std::time::Instant::now() + Duration::from_secs(600),
            result: crate::storage::values::ResultLimits::UNLIMITED,
            trusted: true,
        }
    }

    /// A write the statement check ever took for a read would run on a
    /// reader, outside the writer's turn and the request's transaction:
    /// it must fail there, not commit on its own.
    #[tokio::test]
    async fn a_reader_refuses_to_write() {
        let (_dir, db) = sqlite().await;
        let mut reader = db.reader(WAIT).await.unwrap();
        let refused = reader
            .execute("INSERT INTO t VALUES (1)", &[], &far())
            .await;
        assert!(refused.is_err(), "{refused:?}");
        let refused = reader
            .query("INSERT INTO t VALUES (2) RETURNING n", &[], &far())
            .await;
        assert!(refused.is_err(), "{refused:?}");
        reader.give_back();
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(rows, 0);
    }

    /// A core service's statements are prepared once per connection and
    /// kept for their next use, reset: none holds a read snapshot, which
    /// would keep a checkpoint from copying what was committed after it.
    /// An extension's statements are never kept.
    #[tokio::test]
    async fn only_a_core_service_statements_are_kept_and_none_holds_a_snapshot() {
        let (_dir, db) = sqlite().await;
        sqlx::query(
            "INSERT INTO t WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r \
             WHERE n < 20) SELECT n FROM r",
        )
        .execute(&db.pool)
        .await
        .unwrap();
        let mut reader = db.reader(WAIT).await.unwrap();
        let all = "SELECT n FROM t";
        let few = Bounds {
            result: crate::storage::values::ResultLimits {
                max_rows: 10,
                max_bytes: 1 << 20,
            },
            ..far()
        };
        let refused = reader.query(all, &[], &few).await;
        assert!(refused.is_err(), "stopped mid-way: {refused:?}");
        let count = "SELECT count(*) AS n FROM t";
        for _ in 0..2 {
            let counted = reader.query(count, &[], &far()).await.unwrap();
            assert_eq!(counted.rows, vec![vec![Value::Integer(20)]]);
        }
        let extension = Bounds {
            trusted: false,
            ..far()
        };
        reader
            .query("SELECT 1 AS one", &[], &extension)
            .await
            .unwrap();
        assert_eq!(reader.kept(), [all, count]);
        one_row_written(&db).await.commit().await.unwrap();
        let Checkpoint::Ran {
            logged,
            checkpointed,
        } = db.checkpoint(WAIT).await.unwrap()
        else {
            panic!("blocked");
        };
        assert_eq!(checkpointed, logged, "no reader holds an old snapshot");
        let counted = reader.query(count, &[], &far()).await.unwrap();
        assert_eq!(counted.rows, vec![vec![Value::Integer(21)]]);
    }

    /// In a write transaction a core service's read past its budget moves
    /// to a blocking thread (stopping a read does not end the
    /// transaction), while a write runs where it started, however long.
    #[tokio::test]
    async fn only_reads_leave_the_calling_thread_in_a_write_transaction() {
        let (_dir, db) = sqlite().await;
        let mut tx = one_row_written(&db).await;
        let count = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r \
                     WHERE n < 300000) SELECT count(*) AS n FROM r";
        let counted = tx.query(count, &[], &far()).await.unwrap();
        assert_eq!(counted.rows, vec![vec![Value::Integer(300_000)]]);
        assert_eq!(tx.off_thread(), Some(1), "the long read moved");
        let many = "INSERT INTO t WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL \
                    SELECT n + 1 FROM r WHERE n < 300000) SELECT n FROM r";
        assert_eq!(tx.execute(many, &[], &far()).await.unwrap(), 300_000);
        assert_eq!(tx.off_thread(), Some(1), "the long write stayed");
        tx.commit().await.unwrap();
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(rows, 300_001, "the first write survived the moved read");
    }

    /// A commit refused by a deferred constraint (a migration may declare
    /// one) leaves SQLite's transaction open: it is rolled back and the
    /// writer kept.
    #[tokio::test]
    async fn a_commit_refused_by_a_deferred_constraint_rolls_back_and_keeps_the_writer() {
        let (_dir, db) = sqlite().await;
        sqlx::raw_sql(
            "CREATE TABLE p (id INTEGER PRIMARY KEY); \
             CREATE TABLE c (p INTEGER REFERENCES p (id) DEFERRABLE INITIALLY DEFERRED)",
        )
        .execute(&db.pool)
        .await
        .unwrap();
        let mut tx = db.begin_write(WAIT).await.unwrap();
        tx.execute("INSERT INTO c VALUES (7)", &[], &far())
            .await
            .unwrap();
        let refused = tx.commit().await;
        assert!(refused.is_err(), "{refused:?}");
        assert!(db.writer.conn.lock().await.is_some(), "writer kept");
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM c")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(rows, 0);
        one_row_written(&db).await.commit().await.unwrap();
    }

    /// A reader hands on no transaction: a statement that left one open
    /// costs the connection.
    #[tokio::test]
    async fn a_reader_left_in_a_transaction_is_closed() {
        let (_dir, db) = sqlite().await;
        let mut reader = db.reader(WAIT).await.unwrap();
        let begun = reader.execute("BEGIN", &[], &far()).await;
        assert!(begun.is_err(), "{begun:?}");
        let next = reader.query("SELECT 1", &[], &far()).await;
        assert!(next.is_err(), "the connection is gone: {next:?}");
        reader.give_back();
        assert_eq!(db.idle_readers(), 0);
        assert_eq!(db.readers.permits.available_permits(), MAX_READERS);
    }

    #[tokio::test]
    async fn a_reader_given_back_is_reused_and_one_dropped_is_not() {
        let (_dir, db) = sqlite().await;
        let first = db.reader(WAIT).await.unwrap();
        first.give_back();
        assert_eq!(db.idle_readers(), 1);
        let again = db.reader(WAIT).await.unwrap();
        assert_eq!(db.idle_readers(), 0, "the idle one was taken");
        drop(again);
        assert_eq!(db.idle_readers(), 0, "a dropped one is closed");
        assert_eq!(db.readers.permits.available_permits(), MAX_READERS);
    }

    /// A reader sees what was committed when its statement began, also
    /// while a write transaction is open on the writer.
    #[tokio::test]
    async fn a_reader_sees_the_last_commit_while_a_writer_works() {
        let (_dir, db) = sqlite().await;
        let tx = one_row_written(&db).await;
        let mut reader = db.reader(WAIT).await.unwrap();
        let count = "SELECT count(*) AS n FROM t";
        let before = reader.query(count, &[], &far()).await.unwrap();
        assert_eq!(before.rows, vec![vec![Value::Integer(0)]]);
        tx.commit().await.unwrap();
        let after = reader.query(count, &[], &far()).await.unwrap();
        assert_eq!(after.rows, vec![vec![Value::Integer(1)]]);
    }

    /// A write transaction dropped between statements (its request was
    /// dropped) is rolled back on the spot, and the writer kept.
    #[tokio::test]
    async fn a_write_transaction_dropped_midway_is_rolled_back_and_the_turn_passes_on() {
        let (_dir, db) = sqlite().await;
        let abandoned = one_row_written(&db).await;
        drop(abandoned);
        assert!(db.writer.conn.lock().await.is_some(), "kept after rollback");
        let mut next = db.begin_write(WAIT).await.unwrap();
        next.execute("INSERT INTO t VALUES (2)", &[], &far())
            .await
            .unwrap();
        next.commit().await.unwrap();
        let rows: Vec<i64> = sqlx::query_scalar("SELECT n FROM t")
            .fetch_all(&db.pool)
            .await
            .unwrap();
        assert_eq!(rows, vec![2]);
        assert!(db.writer.conn.lock().await.is_some(), "kept after commit");
    }

    #[tokio::test]
    async fn a_rollback_of_a_transaction_sqlite_already_ended_counts_and_keeps_the_writer() {
        let (_dir, db) = sqlite().await;
        let mut tx = db.begin_write(WAIT).await.unwrap();
        tx.host_script("ROLLBACK").await.unwrap();
        assert!(tx.ended_by_sqlite());
        tx.rollback().await.unwrap();
        assert!(db.writer.conn.lock().await.is_some());
        db.begin_write(WAIT)
            .await
            .unwrap()
            .rollback()
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn writers_take_turns_and_a_turn_not_given_in_time_is_refused() {
        let (_dir, db) = sqlite().await;
        let held = db.begin_write(WAIT).await.unwrap();
        let refused = db.begin_write(Duration::from_millis(50)).await;
        assert!(matches!(refused, Err(BeginWriteError::TimedOut)));
        let waiting = tokio::spawn({
            let db = db.clone();
            async move { db.begin_write(WAIT).await.map(drop).is_ok() }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        held.commit().await.unwrap();
        assert!(waiting.await.unwrap());
    }

    /// A write transaction that inserted 1 into `t`.
    async fn one_row_written(db: &SqliteDb) -> WriteTxn {
        let mut tx = db.begin_write(WAIT).await.unwrap();
        tx.execute("INSERT INTO t VALUES (1)", &[], &far())
            .await
            .unwrap();
        tx
    }

    fn all_kinds() -> Vec<Value> {
        vec![
            Value::Null,
            Value::Integer(-7),
            Value::Real(1.5),
            Value::Text("h\u{e9}llo".into()),
            Value::Text(String::new()),
            Value::Blob(vec![0, 1, 2]),
            Value::Blob(Vec::new()),
            Value::Boolean(true),
        ]
    }

    #[tokio::test]
    async fn host_rows_commit_with_the_transaction_and_keep_their_values() {
        let (_dir, db) = sqlite().await;
        sqlx::query("CREATE TABLE v (a, b, c, d, e, f, g, h)")
            .execute(&db.pool)
            .await
            .unwrap();
        let tx = one_row_written(&db).await;
        let rows = vec![
            (
                "INSERT INTO v VALUES ($1, $2, $3, $4, $5, $6, $7, $8)".to_owned(),
                all_kinds(),
            ),
            // Numbered, not positional: $2 is bound where it appears.
            (
                "INSERT INTO t VALUES ($2 - $1)".to_owned(),
                vec![Value::Integer(1), Value::Integer(3)],
            ),
        ];
        tx.commit_with(&rows).await.unwrap();
        // quote() shows each value's type as well as its value.
        let stored: String = sqlx::query_scalar(
            "SELECT concat_ws(' ', quote(a), quote(b), quote(c), quote(d), quote(e), quote(f), \
             quote(g), quote(h)) FROM v",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert_eq!(stored, "NULL -7 1.5 'h\u{e9}llo' '' X'000102' X'' 1");
        let ns: Vec<i64> = sqlx::query_scalar("SELECT n FROM t ORDER BY n")
            .fetch_all(&db.pool)
            .await
            .unwrap();
        assert_eq!(ns, vec![1, 2]);
        assert!(db.writer.conn.lock().await.is_some(), "kept after commit");
    }

    #[tokio::test]
    async fn a_failed_host_row_commits_nothing_and_the_writer_goes_on() {
        let (_dir, db) = sqlite().await;
        let refused = [
            ("INSERT INTO missing VALUES ($1)", vec![Value::Integer(1)]),
            // The second statement would be skipped silently.
            (
                "INSERT INTO t VALUES ($1); DELETE FROM t",
                vec![Value::Integer(1)],
            ),
            ("INSERT INTO t VALUES ($1)", Vec::new()),
            (
                "INSERT INTO t VALUES ($1)",
                vec![Value::Integer(1), Value::Integer(2)],
            ),
            ("INSERT INTO t VALUES (?)", vec![Value::Integer(1)]),
        ];
        for (sql, params) in refused {
            let tx = one_row_written(&db).await;
            let rows = vec![
                (
                    "INSERT INTO t VALUES ($1)".to_owned(),
                    vec![Value::Integer(2)],
                ),
                (sql.to_owned(), params),
            ];
            match tx.commit_with(&rows).await {
                Err(CommitWithError::Statement(tx, _)) => tx.rollback().await.unwrap(),
                other => panic!("{sql}: {other:?}"),
            }
            let count: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
                .fetch_one(&db.pool)
                .await
                .unwrap();
            assert_eq!(count, 0, "{sql}");
            assert!(db.writer.conn.lock().await.is_some(), "{sql}: writer kept");
        }
    }

    /// The writer does not checkpoint inside its turn (SQLite's automatic
    /// checkpoint would, at the commit crossing the mark): it asks the
    /// checkpointer, whose checkpoint then copies the log.
    #[tokio::test]
    async fn a_commit_past_the_mark_asks_for_a_checkpoint_instead_of_running_one() {
        let (_dir, file, db) = fresh_file().await;
        let before = std::fs::metadata(&file).unwrap().len();
        write_frames(&db, CHECKPOINT_FRAMES + 100).await;
        tokio::time::timeout(WAIT, db.wal_grown())
            .await
            .expect("the commit asked for a checkpoint");
        assert!(
            std::fs::metadata(&file).unwrap().len() < before + CHECKPOINT_FRAMES * 4096,
            "the writer did not checkpoint"
        );
        let Checkpoint::Ran {
            logged,
            checkpointed,
        } = db.checkpoint(WAIT).await.unwrap()
        else {
            panic!("blocked");
        };
        assert!(
            u64::try_from(logged).unwrap() > CHECKPOINT_FRAMES && checkpointed == logged,
            "{logged} {checkpointed}"
        );
        assert!(std::fs::metadata(&file).unwrap().len() >= before + CHECKPOINT_FRAMES * 4096);
    }

    #[tokio::test]
    async fn a_small_commit_asks_for_no_checkpoint() {
        let (_dir, db) = sqlite().await;
        write_frames(&db, 1).await;
        let asked = tokio::time::timeout(Duration::from_millis(50), db.wal_grown()).await;
        assert!(asked.is_err());
    }

    /// With no checkpointer (or one that cannot keep up), the writer
    /// checkpoints itself once the log is far past the mark.
    #[tokio::test]
    async fn a_log_far_past_the_mark_is_checkpointed_by_the_writer() {
        let (_dir, file, db) = fresh_file().await;
        write_frames(&db, CHECKPOINT_FRAMES_FALLBACK + 100).await;
        assert!(
            std::fs::metadata(&file).unwrap().len() >= CHECKPOINT_FRAMES_FALLBACK * 4096,
            "the writer checkpointed"
        );
    }

    #[tokio::test]
    async fn a_host_row_refused_by_a_constraint_is_reported_as_one() {
        let (_dir, db) = sqlite().await;
        sqlx::query("CREATE TABLE u (k TEXT UNIQUE)")
            .execute(&db.pool)
            .await
            .unwrap();
        let tx = db.begin_write(WAIT).await.unwrap();
        let twice = vec![
            (
                "INSERT INTO u VALUES ($1)".to_owned(),
                vec![Value::Text("k".into())]
            );
            2
        ];
        match tx.commit_with(&twice).await {
            Err(CommitWithError::Statement(tx, error)) => {
                assert_eq!(
                    crate::storage::values::db_error(error),
                    crate::bindings::db::DbError::Constraint(
                        crate::bindings::db::ConstraintKind::Unique
                    )
                );
                tx.rollback().await.unwrap();
            }
            other => panic!("{other:?}"),
        }
    }

    /// Outside WAL mode `COMMIT` waits for readers to let go of the file.
    /// It must not wait on the calling thread: on this test's one thread,
    /// the reader could then never let go.
    #[tokio::test]
    async fn a_commit_that_must_wait_for_a_reader_waits_off_the_calling_thread() {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("t.db"))
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Delete)
            .busy_timeout(crate::storage::SQLITE_BUSY_TIMEOUT);
        let pool = SqlitePool::connect_with(options.clone()).await.unwrap();
        sqlx::query("CREATE TABLE t (n INTEGER)")
            .execute(&pool)
            .await
            .unwrap();
        let db = SqliteDb::new(pool, String::new());
        let mut reader = sqlx::SqliteConnection::connect_with(&options)
            .await
            .unwrap();
        sqlx::query("BEGIN").execute(&mut reader).await.unwrap();
        sqlx::query("SELECT * FROM t")
            .fetch_all(&mut reader)
            .await
            .unwrap();
        let tx = one_row_written(&db).await;
        let started = std::time::Instant::now();
        let let_go = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            sqlx::query("COMMIT").execute(&mut reader).await.unwrap();
        });
        tx.commit().await.unwrap();
        let_go.await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(5));
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(rows, 1);
    }
}
