//! The SQLite connections units of work run on: a set of reader
//! connections for the reads of a unit of work before its first write (in
//! autocommit mode), and one writer connection per database file and
//! process, which every write transaction of the process takes in turn.
//! sqlx's pool stays for the host's own reads.
//!
//! Why these are not taken from sqlx's pool: every component statement on
//! SQLite is bounded by a progress handler ([`StatementWatch`]), and
//! installing one takes the connection's handle away from its worker
//! thread and back (three thread wake-ups); the pool also pings every
//! connection it takes back (two more, in a task of their own). On a
//! one-statement read that was three round trips to the worker where the
//! statement needs one, and a write transaction paid the installation
//! while holding the write lock, which every other writer waits for. A
//! connection kept here has its handler installed once, when it is opened,
//! and goes back without a ping: what the ping would find out is known
//! here. A reader whose last statement was abandoned mid-way (its client
//! went away) is closed instead of reused, and so is the writer whenever
//! its transaction did not end cleanly (closing a SQLite connection rolls
//! its transaction back); the next writer opens a new one.
//!
//! The writer's turn is a fair queue (tokio's mutex serves waiters in
//! arrival order): writers of this process never poll SQLite's busy
//! handler against each other, which sleeps in growing steps and lets
//! later arrivals overtake (under load most purchases waited a few
//! milliseconds and some a second). The turn is per database file, so
//! hosts sharing a file in one process (tests) share it; other processes
//! on the file still meet the busy timeout, which stays the fallback.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use sqlx::{Connection, SqliteConnection, SqlitePool, sqlite::SqliteConnectOptions};
use tokio::sync::{OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};

use super::{lock_unpoisoned, values::StatementWatch};

/// Most reader connections open at once.
const MAX_READERS: usize = 16;

/// How long closing waits for a write transaction to end.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// A SQLite database: sqlx's pool for the host's own reads, and the
/// connections units of work and write transactions run on.
#[derive(Clone, Debug)]
pub struct SqliteDb {
    /// For the host's reads (deferred transactions, health checks).
    pub pool: SqlitePool,
    readers: Arc<Readers>,
    writer: Arc<Writer>,
}

/// A connection with its statement watch installed.
#[derive(Debug)]
pub struct WatchedConn {
    conn: SqliteConnection,
    watch: StatementWatch,
}

impl WatchedConn {
    async fn open(options: &SqliteConnectOptions) -> Result<Self, sqlx::Error> {
        let mut conn = SqliteConnection::connect_with(options).await?;
        let watch = StatementWatch::install(&mut conn).await?;
        Ok(Self { conn, watch })
    }

    /// A connection that cannot write: a statement the checker took for a
    /// read runs on a reader, outside the writer's turn and the request's
    /// transaction, so a write slipping through there must fail, not
    /// commit on its own.
    async fn open_reader(options: &SqliteConnectOptions) -> Result<Self, sqlx::Error> {
        let mut reader = Self::open(options).await?;
        sqlx::query("PRAGMA query_only = ON")
            .execute(&mut reader.conn)
            .await?;
        Ok(reader)
    }

    /// The connection and the watch that bounds its statements.
    pub fn parts(&mut self) -> (&mut SqliteConnection, &mut StatementWatch) {
        (&mut self.conn, &mut self.watch)
    }

    /// Whether it may be handed on: it did not break under a statement,
    /// and no abandoned statement may still be stopped by its watch (see
    /// [`StatementWatch::is_unsettled`]).
    fn reusable(&self) -> bool {
        !self.watch.connection_lost && !self.watch.is_unsettled()
    }
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
    /// writer for the file (shared with other hosts of the process).
    pub fn new(pool: SqlitePool) -> Self {
        let options = pool.connect_options();
        Self {
            readers: Arc::new(Readers {
                options: options.clone(),
                permits: Arc::new(Semaphore::new(MAX_READERS)),
                idle: Mutex::new(Vec::new()),
            }),
            writer: Writer::for_file(options),
            pool,
        }
    }

    /// A reader connection in autocommit mode, waiting at most `wait` for
    /// one of [`MAX_READERS`]: for the reads of a unit of work before its
    /// first write (PostgreSQL has no such thing: a component's statements
    /// need the transaction that scopes `SET LOCAL ROLE` and
    /// `statement_timeout`). It saves the `BEGIN` and `COMMIT` round trips
    /// to the connection's worker thread and holds no lock while the
    /// request's components run between statements. Each statement then
    /// sees the database as last committed when it started, which is what
    /// PostgreSQL's default READ COMMITTED gives every statement of a
    /// transaction: components already cannot rely on more.
    pub async fn reader(&self, wait: Duration) -> Result<ReadConn, sqlx::Error> {
        let permit = tokio::time::timeout(wait, self.readers.permits.clone().acquire_owned())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            // Never closed: only the timeout ends the wait.
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let idle = lock_unpoisoned(&self.readers.idle).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => WatchedConn::open_reader(&self.readers.options).await?,
        };
        Ok(ReadConn {
            conn,
            home: self.readers.clone(),
            _permit: permit,
        })
    }

    /// `BEGIN IMMEDIATE` on the writer, after this caller's turn, waiting
    /// at most `wait` for it.
    pub async fn begin_write(&self, wait: Duration) -> Result<WriteTxn, BeginWriteError> {
        let mut turn = tokio::time::timeout(wait, self.writer.conn.clone().lock_owned())
            .await
            .map_err(|_| BeginWriteError::TimedOut)?;
        let mut conn = match turn.take() {
            Some(conn) => conn,
            None => WatchedConn::open(&self.writer.options)
                .await
                .map_err(BeginWriteError::Database)?,
        };
        // On failure the connection is dropped (closed): it may be in any
        // state, and the next writer opens a new one.
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut conn.conn)
            .await
            .map_err(BeginWriteError::Database)?;
        Ok(WriteTxn { conn, turn })
    }

    /// Close sqlx's pool (waiting for its connections), the idle readers
    /// and the writer, waiting at most [`CLOSE_WAIT`] for a write
    /// transaction to end. Readers still out close when they are dropped.
    /// Meant for shutdown: a later unit of work would open connections
    /// again (as another host of the process sharing the writer does).
    pub async fn close(&self) {
        self.pool.close().await;
        let idle = std::mem::take(&mut *lock_unpoisoned(&self.readers.idle));
        for reader in idle {
            reader.conn.close().await.ok();
        }
        if let Ok(mut turn) = tokio::time::timeout(CLOSE_WAIT, self.writer.conn.lock()).await
            && let Some(writer) = turn.take()
        {
            writer.conn.close().await.ok();
        }
    }
}

/// The reader connections of a database: idle ones, and a permit per
/// connection checked out.
#[derive(Debug)]
struct Readers {
    options: Arc<SqliteConnectOptions>,
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<WatchedConn>>,
}

/// A reader connection in autocommit mode (each statement its own
/// transaction). [`Self::give_back`] returns it for the next unit of
/// work; dropped otherwise, it is closed.
#[derive(Debug)]
pub struct ReadConn {
    conn: WatchedConn,
    home: Arc<Readers>,
    _permit: OwnedSemaphorePermit,
}

impl ReadConn {
    /// The connection.
    pub fn conn(&self) -> &SqliteConnection {
        &self.conn.conn
    }

    /// The connection and its watch.
    pub fn parts(&mut self) -> (&mut SqliteConnection, &mut StatementWatch) {
        self.conn.parts()
    }

    /// Return it to the idle set, unless a statement of it may still be
    /// stopped by its watch (then it is closed).
    pub fn give_back(self) {
        if self.conn.reusable() {
            lock_unpoisoned(&self.home.idle).push(self.conn);
        }
    }
}

/// This process's writer connection to one database file, taken in turn.
#[derive(Debug)]
struct Writer {
    options: Arc<SqliteConnectOptions>,
    /// `None` until opened, and after a transaction that did not end
    /// cleanly.
    conn: Arc<tokio::sync::Mutex<Option<WatchedConn>>>,
}

impl Writer {
    /// The writer for the file `options` open, shared by every host of
    /// this process on it.
    fn for_file(options: Arc<SqliteConnectOptions>) -> Arc<Self> {
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
            conn: Arc::new(tokio::sync::Mutex::new(None)),
        });
        writers.insert(file, Arc::downgrade(&writer));
        writer
    }
}

/// A write transaction on the writer connection, holding the turn until it
/// ends. Dropped without [`Self::commit`] or [`Self::rollback`] (its
/// request was dropped), the connection is dropped, which closes it once
/// its worker thread is done (an abandoned statement is interrupted by its
/// watch), and closing rolls the transaction back; the turn passes on at
/// once, and the next writer opens a new connection, whose `BEGIN
/// IMMEDIATE` waits in SQLite's busy handler for that close.
#[derive(Debug)]
pub struct WriteTxn {
    conn: WatchedConn,
    turn: OwnedMutexGuard<Option<WatchedConn>>,
}

impl WriteTxn {
    /// The connection.
    pub fn conn(&self) -> &SqliteConnection {
        &self.conn.conn
    }

    /// The connection and its watch.
    pub fn parts(&mut self) -> (&mut SqliteConnection, &mut StatementWatch) {
        self.conn.parts()
    }

    /// `COMMIT`. If it fails the transaction is rolled back (SQLite keeps
    /// it open after a busy COMMIT).
    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        match sqlx::query("COMMIT").execute(&mut self.conn.conn).await {
            Ok(_) => {
                self.give_back();
                Ok(())
            }
            Err(error) => {
                // Dropping the connection closes it, which rolls back.
                drop(self);
                Err(error)
            }
        }
    }

    /// `ROLLBACK`. A transaction SQLite already ended (a statement
    /// interrupted at its deadline can roll the whole transaction back)
    /// counts as rolled back: the unit of work learned that when the
    /// statement failed (see [`Self::ended_by_sqlite`]).
    pub async fn rollback(mut self) -> Result<(), sqlx::Error> {
        match sqlx::query("ROLLBACK").execute(&mut self.conn.conn).await {
            Ok(_) => {
                self.give_back();
                Ok(())
            }
            Err(error) => {
                if self.ended_by_sqlite().await {
                    self.give_back();
                    Ok(())
                } else {
                    Err(error)
                }
            }
        }
    }

    /// Whether SQLite itself ended the transaction (it rolls the whole
    /// transaction back after some failures of a statement in it: an
    /// interrupt, a full disk, an I/O error, a busy or out-of-memory
    /// statement): the connection is outside any transaction now. Asked
    /// after a failed statement, since statements run after that would
    /// each commit on their own, and after a failed `ROLLBACK`.
    pub async fn ended_by_sqlite(&mut self) -> bool {
        match self.conn.conn.lock_handle().await {
            Ok(mut handle) => is_autocommit(handle.as_raw_handle()),
            Err(_) => false,
        }
    }

    fn give_back(self) {
        let Self { conn, mut turn } = self;
        if conn.reusable() {
            *turn = Some(conn);
        }
    }
}

/// `sqlite3_get_autocommit`: sqlx tracks only the transactions it began.
#[allow(unsafe_code)]
fn is_autocommit(db: std::ptr::NonNull<libsqlite3_sys::sqlite3>) -> bool {
    // SAFETY: `db` comes from a `LockedSqliteHandle` the caller holds, so it
    // is an open connection no other thread uses meanwhile;
    // sqlite3_get_autocommit only reads its state.
    unsafe { libsqlite3_sys::sqlite3_get_autocommit(db.as_ptr()) != 0 }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::storage::Database;

    async fn sqlite() -> (tempfile::TempDir, SqliteDb) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let Database::Sqlite(db) = Database::connect(&url).await.unwrap() else {
            panic!("not SQLite");
        };
        sqlx::query("CREATE TABLE t (n INTEGER)")
            .execute(&db.pool)
            .await
            .unwrap();
        (dir, db)
    }

    const WAIT: Duration = Duration::from_secs(5);

    /// A write the statement check ever took for a read would run on a
    /// reader, outside the writer's turn and the request's transaction:
    /// it must fail there, not commit on its own.
    #[tokio::test]
    async fn a_reader_refuses_to_write() {
        let (_dir, db) = sqlite().await;
        let mut reader = db.reader(WAIT).await.unwrap();
        let refused = sqlx::query("INSERT INTO t VALUES (1)")
            .execute(&mut *reader.parts().0)
            .await;
        assert!(refused.is_err(), "{refused:?}");
        reader.give_back();
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(rows, 0);
    }

    #[tokio::test]
    async fn a_reader_given_back_is_reused_and_one_dropped_is_not() {
        let (_dir, db) = sqlite().await;
        let first = db.reader(WAIT).await.unwrap();
        first.give_back();
        assert_eq!(lock_unpoisoned(&db.readers.idle).len(), 1);
        let again = db.reader(WAIT).await.unwrap();
        assert!(
            lock_unpoisoned(&db.readers.idle).is_empty(),
            "the idle one was taken"
        );
        drop(again);
        assert!(
            lock_unpoisoned(&db.readers.idle).is_empty(),
            "a dropped one is closed"
        );
        let mut broken = db.reader(WAIT).await.unwrap();
        broken.parts().1.connection_lost = true;
        broken.give_back();
        assert!(
            lock_unpoisoned(&db.readers.idle).is_empty(),
            "a broken one is closed"
        );
        assert_eq!(db.readers.permits.available_permits(), MAX_READERS);
    }

    #[tokio::test]
    async fn a_write_transaction_dropped_midway_is_rolled_back_and_the_turn_passes_on() {
        let (_dir, db) = sqlite().await;
        let mut abandoned = db.begin_write(WAIT).await.unwrap();
        let (conn, _) = abandoned.parts();
        sqlx::query("INSERT INTO t VALUES (1)")
            .execute(conn)
            .await
            .unwrap();
        drop(abandoned);
        // The next writer waits for the closed connection's lock through
        // the busy timeout, then writes.
        let mut next = db.begin_write(WAIT).await.unwrap();
        let (conn, _) = next.parts();
        sqlx::query("INSERT INTO t VALUES (2)")
            .execute(conn)
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
        let (conn, _) = tx.parts();
        sqlx::query("ROLLBACK").execute(conn).await.unwrap();
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
}
