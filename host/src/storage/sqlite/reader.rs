//! Reader connections driven through SQLite's C API on the caller's
//! thread, for the reads a unit of work makes before its first write.
//!
//! sqlx runs every statement of a SQLite connection on that connection's
//! worker thread: each read was a hand-over to the worker and a wake-up
//! back, which a profile of the read scenario under load put at about a
//! fifth of the host's CPU (flume's signal and receive, the futex wake-ups
//! and the scheduler behind them), more than SQLite's own work. A reader
//! here is a connection of the host's own: a statement runs where it is
//! asked for.
//!
//! Running a statement on a tokio worker must not let anyone hold that
//! thread. Only a core service's read (the host's own code, see
//! [`Bounds::trusted`]) with small parameters ([`DIRECT_PARAM_BYTES`])
//! starts there, with a small budget ([`DIRECT_BUDGET`]) and SQLite's busy
//! handler off. One that needs more (a large scan, a lock to wait for) is
//! stopped and run again, from the start, on a blocking thread, bounded by
//! its deadline as before. A read has no effect to repeat: the connection
//! is `query_only`, so a statement that would write fails on it either
//! way. An extension's read always runs on a blocking thread: SQLite asks
//! the progress handler only between its instructions, and one call of a
//! built-in function over megabytes (`instr`, `LIKE`, `trim`) is a single
//! instruction, so no budget could bound it on the calling thread. A
//! statement whose future is dropped while it runs there (the client went
//! away) is interrupted, and its connection closed rather than reused; the
//! connection keeps its place among the readers until then.
//!
//! What every component statement gets still holds here: its deadline
//! (a progress handler every [`SQLITE_PROGRESS_OPS`] instructions), its
//! result limits ([`RowsWithin`]), the connection's value length limit,
//! and the values decoded and bound as sqlx does on the writer.

#![allow(unsafe_code)]

use std::{
    cell::Cell,
    ffi::{CString, c_int, c_void},
    ptr::NonNull,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use libsqlite3_sys as ffi;
use sqlx::sqlite::SqliteConnectOptions;
use tokio::sync::OwnedSemaphorePermit;

use super::direct::{self, Statement};
use crate::{
    bindings::db::{DbError, Rows, Value},
    storage::values::{
        self, Bounds, RowsWithin, SQLITE_MAX_VALUE_BYTES, SQLITE_PROGRESS_OPS, payload_bytes,
        set_sqlite_length_limit,
    },
};

/// How long a statement may run on the calling thread before it is moved
/// to a blocking thread: reads by key take a few microseconds, so this is
/// reached only by the statements a blocking thread should run anyway.
const DIRECT_BUDGET: Duration = Duration::from_millis(1);

/// Most bytes of text and blob parameters a statement may carry and still
/// start on the calling thread: a core service's lookups bind keys and
/// names, and work on large values belongs on a thread of its own.
const DIRECT_PARAM_BYTES: usize = 16 << 10;

/// A reader connection checked out for a unit of work, with its place
/// among the readers: the place goes wherever the connection goes (to a
/// blocking thread, and away with it if its caller leaves), so the number
/// of open readers stays bounded.
#[derive(Debug)]
pub(super) struct Checkout {
    pub(super) reader: RawReader,
    pub(super) _permit: OwnedSemaphorePermit,
}

/// What a statement returns to its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Want {
    /// Its rows.
    Rows,
    /// How many rows it changed (none, on a reader).
    Changes,
}

/// What a statement gave.
#[derive(Debug)]
pub(super) enum Ran {
    Rows(Rows),
    Changes(u64),
}

/// Why a statement run here did not give a result.
#[derive(Debug)]
enum Halt {
    /// It needs more than [`DIRECT_BUDGET`] or would wait for a lock: run it
    /// again on a blocking thread.
    Elsewhere,
    /// Its deadline passed.
    Deadline,
    /// Its caller went away.
    Abandoned,
    /// It failed.
    Failed(DbError),
    /// It failed and the connection is unusable.
    Lost(DbError),
}

/// A reader connection of the host's own.
#[derive(Debug)]
pub(super) struct RawReader {
    db: NonNull<ffi::sqlite3>,
    busy_timeout: c_int,
    /// Statements this connection ran on a blocking thread.
    off_thread: u64,
}

// SAFETY: a connection opened with SQLITE_OPEN_NOMUTEX may move between
// threads as long as one thread at a time uses it; `RawReader` is used
// only through `&mut self` and never shared.
unsafe impl Send for RawReader {}

impl RawReader {
    /// Open a `query_only` connection to the database `options` name, with
    /// extended result codes (as sqlx's) and the value length limit.
    pub(super) fn open(
        options: &SqliteConnectOptions,
        busy_timeout: Duration,
    ) -> Result<Self, sqlx::Error> {
        let filename = options.get_filename();
        let path = CString::new(filename.as_os_str().as_encoded_bytes())
            .map_err(|_| sqlx::Error::Configuration("the SQLite path holds a NUL".into()))?;
        let mut flags = ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_NOMUTEX;
        if filename
            .as_os_str()
            .as_encoded_bytes()
            .starts_with(b"file:")
        {
            flags |= ffi::SQLITE_OPEN_URI;
        }
        let mut raw = std::ptr::null_mut();
        // SAFETY: `path` is NUL-terminated and `raw` a valid place for the
        // handle, which SQLite sets even when opening fails.
        let code =
            unsafe { ffi::sqlite3_open_v2(path.as_ptr(), &mut raw, flags, std::ptr::null()) };
        let db = NonNull::new(raw).ok_or_else(|| direct::error_for_code(ffi::SQLITE_NOMEM))?;
        let reader = Self {
            db,
            busy_timeout: c_int::try_from(busy_timeout.as_millis()).unwrap_or(c_int::MAX),
            off_thread: 0,
        };
        if code != ffi::SQLITE_OK {
            return Err(direct::last_error(db));
        }
        // SAFETY: `db` is open and only this thread has it; the option
        // takes an int and a pointer for the previous value (none wanted).
        unsafe {
            ffi::sqlite3_extended_result_codes(db.as_ptr(), 1);
            // Closing a reader (one whose statement was abandoned) must not
            // checkpoint: when no other connection holds a lock, the
            // closing one would take the database's exclusive lock to copy
            // and remove the log, and readers starting meanwhile would be
            // refused as busy. The host's checkpointer copies the log.
            ffi::sqlite3_db_config(
                db.as_ptr(),
                ffi::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
                1 as c_int,
                std::ptr::null_mut::<c_int>(),
            );
        }
        set_sqlite_length_limit(db, SQLITE_MAX_VALUE_BYTES);
        Statement::execute(db, "PRAGMA query_only = ON", &[])?;
        Ok(reader)
    }

    /// Run a component's read within `bounds`: on the calling thread if it
    /// may start there and fits [`DIRECT_BUDGET`], else on a blocking
    /// thread. `None` in `slot` when this returns means the connection is
    /// gone (lost, or left with a statement its caller abandoned).
    pub(super) async fn run(
        slot: &mut Option<Checkout>,
        sql: &str,
        params: &[Value],
        bounds: &Bounds,
        want: Want,
    ) -> Result<Ran, DbError> {
        let Some(checkout) = slot.as_mut() else {
            return Err(DbError::Unavailable("the reader connection is gone".into()));
        };
        if bounds.trusted && params.iter().map(payload_bytes).sum::<usize>() <= DIRECT_PARAM_BYTES {
            let budget_end = Instant::now() + DIRECT_BUDGET;
            let watch = Watch::new(Some(budget_end), bounds.deadline, None);
            match checkout.reader.statement(sql, params, bounds, want, &watch) {
                Ok(ran) => return Ok(ran),
                Err(Halt::Elsewhere) => {}
                Err(halt) => return Self::settle(slot, halt),
            }
        }
        let Some(checkout) = slot.take() else {
            return Err(DbError::Unavailable("the reader connection is gone".into()));
        };
        let abandoned = Arc::new(AtomicBool::new(false));
        let on_drop = AbandonOnDrop(Some(abandoned.clone()));
        let (sql, params, bounds) = (sql.to_owned(), params.to_vec(), *bounds);
        // How many reads leave the calling thread: every extension's, and
        // a core service's past its budget.
        metrics::counter!("souk_sqlite_reads_off_thread_total").increment(1);
        let (checkout, outcome) = tokio::task::spawn_blocking(move || {
            let mut checkout = checkout;
            checkout.reader.off_thread += 1;
            let watch = Watch::new(None, bounds.deadline, Some(abandoned));
            let outcome = checkout
                .reader
                .statement(&sql, &params, &bounds, want, &watch);
            (checkout, outcome)
        })
        .await
        .map_err(|error| DbError::Failed(format!("a reader's thread failed: {error}")))?;
        on_drop.disarm();
        *slot = Some(checkout);
        match outcome {
            Ok(ran) => Ok(ran),
            Err(halt) => Self::settle(slot, halt),
        }
    }

    /// The error for `halt`; the connection is dropped if it is unusable.
    fn settle(slot: &mut Option<Checkout>, halt: Halt) -> Result<Ran, DbError> {
        Err(match halt {
            Halt::Deadline => values::cut_off(),
            Halt::Failed(error) => error,
            Halt::Lost(error) => {
                *slot = None;
                error
            }
            Halt::Abandoned | Halt::Elsewhere => {
                *slot = None;
                DbError::Unavailable("the statement was abandoned".into())
            }
        })
    }

    /// Statements this connection ran on a blocking thread (for tests).
    #[cfg(test)]
    pub(super) fn off_thread(&self) -> u64 {
        self.off_thread
    }

    /// Prepare, bind and step one statement to its end under `watch`.
    /// SQLite's busy handler waits for a lock only off the calling thread
    /// (no budget), and never past the deadline.
    fn statement(
        &mut self,
        sql: &str,
        params: &[Value],
        bounds: &Bounds,
        want: Want,
        watch: &Watch,
    ) -> Result<Ran, Halt> {
        let _handler = ProgressHandler::install(self.db, watch);
        let wait = if watch.budget_end.is_some() {
            0
        } else {
            let left = bounds.deadline.saturating_duration_since(Instant::now());
            self.busy_timeout
                .min(c_int::try_from(left.as_millis()).unwrap_or(c_int::MAX))
        };
        // SAFETY: `db` is open and only this thread has it.
        unsafe {
            ffi::sqlite3_busy_timeout(self.db.as_ptr(), wait);
        }
        let outcome = self.step_all(sql, params, bounds, want);
        // A reader must hand on no transaction: it would pin one old
        // snapshot for every later request, and the log with it. The
        // checker refuses transaction control; this is the second line.
        // SAFETY: `db` is open and only this thread has it.
        if unsafe { ffi::sqlite3_get_autocommit(self.db.as_ptr()) } == 0 {
            return Err(Halt::Lost(DbError::Failed(
                "the statement left a transaction open on a reader".into(),
            )));
        }
        outcome.map_err(|error| watch.halt(error))
    }

    fn step_all(
        &mut self,
        sql: &str,
        params: &[Value],
        bounds: &Bounds,
        want: Want,
    ) -> Result<Ran, Stepped> {
        let mut result = RowsWithin::new(&bounds.result);
        let Some(statement) = Statement::prepare_one(self.db, sql).map_err(Stepped::Sqlite)? else {
            return Ok(match want {
                Want::Rows => Ran::Rows(result.into_rows()),
                Want::Changes => Ran::Changes(0),
            });
        };
        statement.bind_as_sqlx(params).map_err(Stepped::Sqlite)?;
        loop {
            match statement.step() {
                ffi::SQLITE_ROW if want == Want::Rows => {
                    result
                        .admit_row(|| statement.column_names())
                        .map_err(Stepped::Refused)?;
                    let count = statement.column_count();
                    let mut values = Vec::with_capacity(count);
                    for index in 0..count {
                        let value = statement.value(index).map_err(Stepped::Refused)?;
                        values.push(result.admit_value(value).map_err(Stepped::Refused)?);
                    }
                    result.push(values);
                }
                ffi::SQLITE_ROW => {}
                ffi::SQLITE_DONE => break,
                _ => return Err(Stepped::Sqlite(direct::last_error(self.db))),
            }
        }
        Ok(match want {
            Want::Rows => Ran::Rows(result.into_rows()),
            // SAFETY: `db` is open and only this thread has it.
            Want::Changes => Ran::Changes(
                u64::try_from(unsafe { ffi::sqlite3_changes64(self.db.as_ptr()) }).unwrap_or(0),
            ),
        })
    }
}

impl Drop for RawReader {
    fn drop(&mut self) {
        // SAFETY: every statement of the connection was finalized (each
        // lives within one call); the handle is closed once, here.
        unsafe {
            ffi::sqlite3_close(self.db.as_ptr());
        }
    }
}

/// How running a statement failed, before the watch says why.
enum Stepped {
    /// SQLite refused to prepare, bind or step it.
    Sqlite(sqlx::Error),
    /// The host refused its result (past its limits, undecodable).
    Refused(DbError),
}

/// When a statement must stop, consulted by the progress handler.
struct Watch {
    /// Past this, a statement on the calling thread moves elsewhere.
    budget_end: Option<Instant>,
    deadline: Instant,
    abandoned: Option<Arc<AtomicBool>>,
    /// Why the handler stopped the statement, once it has.
    stopped: Cell<Option<Stop>>,
}

#[derive(Debug, Clone, Copy)]
enum Stop {
    Budget,
    Deadline,
    Abandoned,
}

impl Watch {
    fn new(
        budget_end: Option<Instant>,
        deadline: Instant,
        abandoned: Option<Arc<AtomicBool>>,
    ) -> Self {
        Self {
            budget_end,
            deadline,
            abandoned,
            stopped: Cell::new(None),
        }
    }

    /// The progress handler's verdict: `Some` stops the statement.
    fn verdict(&self) -> Option<Stop> {
        if self
            .abandoned
            .as_ref()
            .is_some_and(|flag| flag.load(Ordering::Acquire))
        {
            return Some(Stop::Abandoned);
        }
        let now = Instant::now();
        if now >= self.deadline {
            return Some(Stop::Deadline);
        }
        if self.budget_end.is_some_and(|end| now >= end) {
            return Some(Stop::Budget);
        }
        None
    }

    /// What a failed statement means, given whether the handler stopped it.
    fn halt(&self, stepped: Stepped) -> Halt {
        match self.stopped.get() {
            // The interrupted step may report SQLITE_INTERRUPT or whatever
            // it was doing; either way, the watch ended it.
            Some(Stop::Budget) => Halt::Elsewhere,
            Some(Stop::Deadline) => Halt::Deadline,
            Some(Stop::Abandoned) => Halt::Abandoned,
            None => match stepped {
                Stepped::Refused(error) => Halt::Failed(error),
                Stepped::Sqlite(error) => match primary_code(&error) {
                    // On the calling thread nothing waits for a lock.
                    Some(ffi::SQLITE_BUSY) if self.budget_end.is_some() => Halt::Elsewhere,
                    Some(
                        ffi::SQLITE_CORRUPT
                        | ffi::SQLITE_NOTADB
                        | ffi::SQLITE_IOERR
                        | ffi::SQLITE_CANTOPEN,
                    ) => Halt::Lost(values::db_error(error)),
                    _ => Halt::Failed(values::db_error(error)),
                },
            },
        }
    }
}

/// SQLite's primary result code for `error`, if it carries one.
fn primary_code(error: &sqlx::Error) -> Option<c_int> {
    let code = error.as_database_error().and_then(|e| e.code());
    values::sqlite_primary_code(code.as_deref())
}

/// `watch` installed as the connection's progress handler; removed when
/// dropped, also on a panic.
struct ProgressHandler<'w> {
    db: NonNull<ffi::sqlite3>,
    _watch: std::marker::PhantomData<&'w Watch>,
}

impl<'w> ProgressHandler<'w> {
    fn install(db: NonNull<ffi::sqlite3>, watch: &'w Watch) -> Self {
        // SAFETY: `db` is open and only this thread has it. `watch` is
        // borrowed for as long as the handler is installed, and SQLite
        // calls the handler only within calls on `db` made on this thread
        // while the guard lives.
        unsafe {
            ffi::sqlite3_progress_handler(
                db.as_ptr(),
                SQLITE_PROGRESS_OPS,
                Some(consult_watch),
                std::ptr::from_ref(watch).cast_mut().cast(),
            );
        }
        Self {
            db,
            _watch: std::marker::PhantomData,
        }
    }
}

impl Drop for ProgressHandler<'_> {
    fn drop(&mut self) {
        // SAFETY: as in `install`; a null handler removes it.
        unsafe {
            ffi::sqlite3_progress_handler(self.db.as_ptr(), 0, None, std::ptr::null_mut());
        }
    }
}

/// The progress handler [`ProgressHandler`] installs: non-zero stops the
/// statement.
unsafe extern "C" fn consult_watch(watch: *mut c_void) -> c_int {
    // SAFETY: `watch` is the `Watch` the handler was installed with,
    // borrowed until it is removed; only this thread uses it.
    let watch = unsafe { &*watch.cast::<Watch>() };
    match watch.verdict() {
        Some(stop) => {
            watch.stopped.set(Some(stop));
            1
        }
        None => 0,
    }
}

/// Marks a statement sent to a blocking thread abandoned if its caller's
/// future is dropped first.
struct AbandonOnDrop(Option<Arc<AtomicBool>>);

impl AbandonOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for AbandonOnDrop {
    fn drop(&mut self) {
        if let Some(flag) = &self.0 {
            flag.store(true, Ordering::Release);
        }
    }
}
