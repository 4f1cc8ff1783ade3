//! SQLite connections of the host's own, driven through SQLite's C API:
//! the readers and the writer units of work run on ([`super`]).
//!
//! sqlx runs every statement of a SQLite connection on that connection's
//! worker thread: each statement was a hand-over to the worker and a
//! wake-up back. A profile of the read scenario under load put that at
//! about a fifth of the host's CPU (flume's signal and receive, the futex
//! wake-ups and the scheduler behind them), more than SQLite's own work;
//! under purchase load the writer's worker thread took a fifth of the
//! samples, and each hand-over happened inside the writer's turn, while
//! every other writer waited. A connection here runs a statement where it
//! is asked for.
//!
//! Running a statement on a tokio worker must not let anyone hold that
//! thread. Only a core service's statement (the host's own code, see
//! [`Bounds::trusted`]) with small parameters ([`DIRECT_PARAM_BYTES`])
//! starts there ([`run`]), with SQLite's busy handler off. An extension's
//! statement always runs on a blocking thread: SQLite asks the progress
//! handler only between its instructions, and one call of a built-in
//! function over megabytes (`instr`, `LIKE`, `trim`) is a single
//! instruction, so nothing could bound it on the calling thread. A
//! statement whose future is dropped while it runs there (the client went
//! away) is interrupted, and its connection closed rather than reused.
//!
//! What every component statement gets holds on both paths: its deadline
//! (a progress handler every [`SQLITE_PROGRESS_OPS`] instructions), its
//! result limits ([`RowsWithin`]), the connection's value length limit,
//! and the values decoded and bound as sqlx does.

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

use super::direct::{self, Statement};
use crate::{
    bindings::db::{DbError, Rows, Value},
    storage::values::{
        self, Bounds, ResultLimits, RowsWithin, SQLITE_MAX_VALUE_BYTES, SQLITE_PROGRESS_OPS,
        payload_bytes, set_sqlite_length_limit,
    },
};

/// How many prepared statements a connection keeps for their next use
/// ([`RawConn::kept`]).
const KEPT_STATEMENTS: usize = 32;

/// How long a read-only statement may run on the calling thread before it
/// is stopped and run again, from the start, on a blocking thread: reads
/// by key take a few microseconds, so this is reached only by the
/// statements a blocking thread should run anyway. A read has no effect to
/// repeat, and stopping one does not end the transaction it runs in
/// (SQLite rolls a transaction back when it interrupts a statement that
/// writes, not one that reads). A statement that writes has no budget: it
/// runs where it started, to its end or its deadline.
const READ_BUDGET: Duration = Duration::from_millis(1);

/// Most bytes of text and blob parameters a statement may carry and still
/// start on the calling thread: a core service's lookups and writes bind
/// keys, names and amounts, and work on large values belongs on a thread
/// of its own.
const DIRECT_PARAM_BYTES: usize = 16 << 10;

/// What a connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// Component reads in autocommit mode: `query_only`, and never left
    /// inside a transaction.
    Reader,
    /// The write transactions of the process, one at a time.
    Writer,
}

/// What a statement returns to its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// Its rows.
    Rows,
    /// How many rows it changed.
    Changes,
}

/// What a statement gave.
#[derive(Debug)]
enum Ran {
    Rows(Rows),
    Changes(u64),
}

impl Ran {
    /// Its rows (none for a statement run for its changes).
    fn into_rows(self) -> Rows {
        match self {
            Self::Rows(rows) => rows,
            Self::Changes(_) => Rows {
                columns: Vec::new(),
                rows: Vec::new(),
            },
        }
    }

    /// How many rows it changed (0 for a statement run for its rows).
    fn into_changes(self) -> u64 {
        match self {
            Self::Changes(changes) => changes,
            Self::Rows(_) => 0,
        }
    }
}

/// Why a statement did not give a result.
#[derive(Debug)]
enum Halt {
    /// It needs more than its budget on the calling thread or would wait
    /// for a lock, having changed nothing: run it again on a blocking
    /// thread.
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

/// What holds a connection while a unit of work has it: the connection,
/// perhaps with more that must go wherever it goes (a reader's place
/// among the readers).
pub(super) trait Holder: Send + 'static {
    fn conn(&mut self) -> &mut RawConn;
}

impl Holder for RawConn {
    fn conn(&mut self) -> &mut RawConn {
        self
    }
}

/// A connection of the host's own.
#[derive(Debug)]
pub(super) struct RawConn {
    db: NonNull<ffi::sqlite3>,
    role: Role,
    /// How long SQLite's busy handler waits for a lock, unless a caller
    /// says otherwise.
    busy_timeout: Duration,
    /// Statements this connection ran on a blocking thread.
    off_thread: u64,
    /// Prepared statements kept for their next use, the most recently used
    /// last: a core service's and the host's, which send the same few
    /// texts again and again. Parsing and planning a statement cost SQLite
    /// more than running one of these (a profile of purchases put a twentieth
    /// of the host's CPU in SQLite's parser and planner). An extension's
    /// statements are never kept: how many and how large they are is the
    /// extension's choice, and a kept statement holds its compiled program.
    kept: Vec<Kept>,
}

/// A prepared statement kept by a connection, reset, under its text.
#[derive(Debug)]
struct Kept {
    kind: Kind,
    sql: String,
    statement: Statement,
}

/// How a statement's text is checked when it is prepared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A component's: one statement, perhaps with comments or semicolons
    /// after it ([`Statement::prepare_one`]).
    Component,
    /// The host's: exactly one statement ([`Statement::prepare`]).
    Host,
}

// SAFETY: a connection opened with SQLITE_OPEN_NOMUTEX may move between
// threads, with its prepared statements, as long as one thread at a time
// uses it; `RawConn` is used only through `&mut self` and never shared.
unsafe impl Send for RawConn {}

impl RawConn {
    /// Open a connection to the database `options` name for `role`, with
    /// extended result codes (as sqlx's), the value length limit and
    /// `pragmas` (the settings sqlx would apply to a connection of its
    /// own); a reader is `query_only`.
    pub(super) fn open(
        options: &SqliteConnectOptions,
        role: Role,
        pragmas: &str,
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
        let mut conn = Self {
            db,
            role,
            busy_timeout,
            off_thread: 0,
            kept: Vec::new(),
        };
        if code != ffi::SQLITE_OK {
            return Err(direct::last_error(db));
        }
        // SAFETY: `db` is open and only this thread has it; the option
        // takes an int and a pointer for the previous value (none wanted).
        unsafe {
            ffi::sqlite3_extended_result_codes(db.as_ptr(), 1);
            if role == Role::Reader {
                // Closing a reader (one whose statement was abandoned)
                // must not checkpoint: when no other connection holds a
                // lock, the closing one would take the database's
                // exclusive lock to copy and remove the log, and readers
                // starting meanwhile would be refused as busy. The host's
                // checkpointer copies the log. The writer closes at
                // shutdown (and after a failed transaction), where the
                // last connection's checkpoint is what empties the log.
                ffi::sqlite3_db_config(
                    db.as_ptr(),
                    ffi::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
                    1 as c_int,
                    std::ptr::null_mut::<c_int>(),
                );
            } else {
                // No automatic checkpoint inside the writer's turn: see
                // `super::CHECKPOINT_FRAMES`.
                ffi::sqlite3_wal_autocheckpoint(db.as_ptr(), 0);
            }
        }
        set_sqlite_length_limit(db, SQLITE_MAX_VALUE_BYTES);
        conn.waiting(busy_timeout, |conn| conn.script(pragmas))?;
        if role == Role::Reader {
            conn.script("PRAGMA query_only = ON")?;
        }
        Ok(conn)
    }

    /// Whether a transaction is open (SQLite ends one itself after some
    /// failures: statements run now would each commit on their own).
    pub(super) fn in_transaction(&self) -> bool {
        // SAFETY: `db` is open and only this thread has it.
        unsafe { ffi::sqlite3_get_autocommit(self.db.as_ptr()) == 0 }
    }

    /// Run `f` with SQLite's busy handler waiting at most `wait` for
    /// another connection's lock, then waiting as before.
    pub(super) fn waiting<T>(&mut self, wait: Duration, f: impl FnOnce(&mut Self) -> T) -> T {
        self.set_busy_timeout(wait);
        let result = f(self);
        self.set_busy_timeout(self.busy_timeout);
        result
    }

    fn set_busy_timeout(&mut self, wait: Duration) {
        let wait = c_int::try_from(wait.as_millis()).unwrap_or(c_int::MAX);
        // SAFETY: `db` is open and only this thread has it.
        unsafe {
            ffi::sqlite3_busy_timeout(self.db.as_ptr(), wait);
        }
    }

    /// Run `f` with SQLite's busy handler off: a lock another connection
    /// holds fails at once with `SQLITE_BUSY` (for the calling thread).
    pub(super) fn without_waiting<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        self.waiting(Duration::ZERO, f)
    }

    /// The texts of the statements kept, least recently used first (for
    /// tests).
    #[cfg(test)]
    pub(super) fn kept(&self) -> Vec<&str> {
        self.kept.iter().map(|kept| kept.sql.as_str()).collect()
    }

    /// Statements this connection ran on a blocking thread (for tests).
    #[cfg(test)]
    pub(super) fn off_thread(&self) -> u64 {
        self.off_thread
    }

    /// Run host SQL text, several statements allowed, without parameters,
    /// skipping any rows: settings, and scripts the host wrote or a
    /// migration that passed the check.
    pub(super) fn script(&mut self, mut sql: &str) -> Result<(), sqlx::Error> {
        while !sql.trim().is_empty() {
            let (statement, rest) = Statement::prepare_first(self.db, sql)?;
            if let Some(statement) = statement {
                statement.run()?;
            }
            if rest.len() == sql.len() {
                return Err(sqlx::Error::InvalidArgument(
                    "the SQL could not be split into statements".into(),
                ));
            }
            sql = rest;
        }
        Ok(())
    }

    /// Run one host statement (`$n`-numbered parameters) to its end,
    /// returning its rows, unbounded: host SQL is trusted and may read
    /// large values (component bytes).
    pub(super) fn host_rows(&mut self, sql: &str, params: &[Value]) -> Result<Rows, DbError> {
        let rows = self.with_statement(Kind::Host, sql, true, |conn, statement| {
            statement.bind(params)?;
            conn.collect(statement, &ResultLimits::UNLIMITED)
        });
        match rows {
            Ok(rows) => {
                Ok(rows.unwrap_or_else(|| RowsWithin::new(&ResultLimits::UNLIMITED).into_rows()))
            }
            Err(Stepped::Sqlite(error)) => Err(values::db_error(error)),
            Err(Stepped::Refused(error)) => Err(error),
        }
    }

    /// Run one host statement to its end, returning how many rows it
    /// changed.
    pub(super) fn host_changes(&mut self, sql: &str, params: &[Value]) -> Result<u64, sqlx::Error> {
        let changed = self.with_statement(Kind::Host, sql, true, |conn, statement| {
            statement.bind(params)?;
            conn.run_to_end(statement)
        })?;
        // A host statement is never one that compiles to nothing.
        Ok(changed.unwrap_or(0))
    }

    /// `COMMIT`, returning how many frames the write-ahead log holds after
    /// it (see [`direct::WalHook`]).
    pub(super) fn commit(&mut self) -> Result<u64, sqlx::Error> {
        let mut frames = 0;
        let hook = direct::WalHook::count_into(self.db, &mut frames);
        let committed = self.host_changes("COMMIT", &[]);
        drop(hook);
        committed.map(|_| u64::try_from(frames).unwrap_or(0))
    }

    /// Run `use_it` with `sql` prepared as `kind` asks, from the kept
    /// statements if it is there, and keep it afterwards (reset) if `keep`.
    /// `None` for component SQL that compiles to nothing.
    fn with_statement<T, E: From<sqlx::Error>>(
        &mut self,
        kind: Kind,
        sql: &str,
        keep: bool,
        use_it: impl FnOnce(&mut Self, &Statement) -> Result<T, E>,
    ) -> Result<Option<T>, E> {
        let kept = keep
            .then(|| {
                self.kept
                    .iter()
                    .position(|kept| kept.kind == kind && kept.sql == sql)
            })
            .flatten()
            .map(|at| self.kept.remove(at));
        let (text, statement) = match kept {
            Some(Kept { sql, statement, .. }) => (Some(sql), statement),
            None => {
                let prepared = match kind {
                    Kind::Component => Statement::prepare_one(self.db, sql),
                    Kind::Host => Statement::prepare(self.db, sql).map(Some),
                };
                match prepared? {
                    Some(statement) => (None, statement),
                    None => return Ok(None),
                }
            }
        };
        let result = use_it(self, &statement);
        if keep {
            // Reset at once: a statement left mid-way would hold its read
            // snapshot, and with it the log, until its next use.
            statement.reset();
            if self.kept.len() >= KEPT_STATEMENTS {
                self.kept.remove(0);
            }
            self.kept.push(Kept {
                kind,
                sql: text.unwrap_or_else(|| sql.to_owned()),
                statement,
            });
        }
        result.map(Some)
    }

    /// Step `statement` to its end, skipping its rows, and return how many
    /// rows it changed.
    fn run_to_end(&mut self, statement: &Statement) -> Result<u64, sqlx::Error> {
        loop {
            match statement.step() {
                ffi::SQLITE_ROW => {}
                ffi::SQLITE_DONE => return Ok(self.changes()),
                _ => return Err(direct::last_error(self.db)),
            }
        }
    }

    fn changes(&mut self) -> u64 {
        // SAFETY: `db` is open and only this thread has it.
        u64::try_from(unsafe { ffi::sqlite3_changes64(self.db.as_ptr()) }).unwrap_or(0)
    }

    /// Prepare, bind and step one component statement to its end under
    /// `watch`. SQLite's busy handler waits for a lock only off the
    /// calling thread, and never past the deadline.
    fn statement(
        &mut self,
        sql: &str,
        params: &[Value],
        bounds: &Bounds,
        want: Want,
        watch: &Watch,
    ) -> Result<Ran, Halt> {
        let _handler = ProgressHandler::install(self.db, watch);
        let wait = if watch.on_calling_thread {
            Duration::ZERO
        } else {
            bounds.deadline.saturating_duration_since(Instant::now())
        };
        let outcome = self.waiting(wait.min(self.busy_timeout), |conn| {
            conn.step_all(sql, params, bounds, want, watch)
        });
        // A reader must hand on no transaction: it would pin one old
        // snapshot for every later request, and the log with it. The
        // checker refuses transaction control; this is the second line.
        if self.role == Role::Reader && self.in_transaction() {
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
        watch: &Watch,
    ) -> Result<Ran, Stepped> {
        let ran =
            self.with_statement(Kind::Component, sql, bounds.trusted, |conn, statement| {
                if !statement.read_only() {
                    watch.no_budget();
                }
                statement.bind_as_sqlx(params)?;
                Ok::<_, Stepped>(match want {
                    Want::Rows => Ran::Rows(conn.collect(statement, &bounds.result)?),
                    Want::Changes => Ran::Changes(conn.run_to_end(statement)?),
                })
            })?;
        // SQL that compiles to nothing runs nothing, as under sqlx.
        Ok(ran.unwrap_or_else(|| match want {
            Want::Rows => Ran::Rows(RowsWithin::new(&bounds.result).into_rows()),
            Want::Changes => Ran::Changes(0),
        }))
    }

    /// Step `statement` to its end, keeping its rows within `limits`.
    fn collect(&mut self, statement: &Statement, limits: &ResultLimits) -> Result<Rows, Stepped> {
        let mut result = RowsWithin::new(limits);
        loop {
            match statement.step() {
                ffi::SQLITE_ROW => {
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
                ffi::SQLITE_DONE => return Ok(result.into_rows()),
                _ => return Err(Stepped::Sqlite(direct::last_error(self.db))),
            }
        }
    }
}

/// Run a component's statement within `bounds` on the connection in
/// `slot` (see [`run`]), returning its rows.
pub(super) async fn query<H: Holder>(
    slot: &mut Option<H>,
    sql: &str,
    params: &[Value],
    bounds: &Bounds,
) -> Result<Rows, DbError> {
    run(slot, sql, params, bounds, Want::Rows)
        .await
        .map(Ran::into_rows)
}

/// Run a component's statement within `bounds` on the connection in
/// `slot` (see [`run`]), returning how many rows it changed.
pub(super) async fn execute<H: Holder>(
    slot: &mut Option<H>,
    sql: &str,
    params: &[Value],
    bounds: &Bounds,
) -> Result<u64, DbError> {
    run(slot, sql, params, bounds, Want::Changes)
        .await
        .map(Ran::into_changes)
}

/// Run a component's statement within `bounds` on the connection in
/// `slot`: on the calling thread if it may start there ([`Bounds::trusted`],
/// parameters within [`DIRECT_PARAM_BYTES`]) and, if it only reads, fits
/// [`READ_BUDGET`]; else on a blocking thread. `None` in `slot` when this
/// returns means the connection is gone (lost, or left with a statement
/// its caller abandoned).
async fn run<H: Holder>(
    slot: &mut Option<H>,
    sql: &str,
    params: &[Value],
    bounds: &Bounds,
    want: Want,
) -> Result<Ran, DbError> {
    let Some(holder) = slot.as_mut() else {
        return Err(values::db_error(sqlx::Error::PoolClosed));
    };
    if Instant::now() >= bounds.deadline {
        return Err(values::cut_off());
    }
    if bounds.trusted && params.iter().map(payload_bytes).sum::<usize>() <= DIRECT_PARAM_BYTES {
        let watch = Watch::on_calling_thread(bounds);
        match holder.conn().statement(sql, params, bounds, want, &watch) {
            Ok(ran) => return Ok(ran),
            Err(Halt::Elsewhere) => {}
            Err(halt) => return settle(slot, halt),
        }
    }
    // How many statements leave the calling thread: every extension's, and
    // a core service's past its budget or kept from a lock.
    let connection = match holder.conn().role {
        Role::Reader => "reader",
        Role::Writer => "writer",
    };
    metrics::counter!("souk_sqlite_statements_off_thread_total", "connection" => connection)
        .increment(1);
    let (sql, params, bounds) = (sql.to_owned(), params.to_vec(), *bounds);
    let outcome = on_blocking_thread(slot, move |holder, abandoned| {
        let conn = holder.conn();
        conn.off_thread += 1;
        let watch = Watch::on_blocking_thread(&bounds, abandoned);
        conn.statement(&sql, &params, &bounds, want, &watch)
    })
    .await
    .map_err(values::db_error)?;
    match outcome {
        Ok(ran) => Ok(ran),
        Err(halt) => settle(slot, halt),
    }
}

/// Run `work` with the connection in `slot` on a blocking thread, giving
/// it a flag set if the caller's future is dropped first (a watch given
/// the flag stops the statement). The connection comes back when `work`
/// is done; if the caller went away, it is dropped (closed) then, and
/// whatever it carries (a reader's place) is held until that moment. Fails
/// only if the connection is gone (`None` in `slot`) or the thread did.
pub(super) async fn on_blocking_thread<H: Holder, T: Send + 'static>(
    slot: &mut Option<H>,
    work: impl FnOnce(&mut H, Arc<AtomicBool>) -> T + Send + 'static,
) -> Result<T, sqlx::Error> {
    // Reported as a closed pool: the database is unavailable.
    let mut holder = slot.take().ok_or(sqlx::Error::PoolClosed)?;
    let abandoned = Arc::new(AtomicBool::new(false));
    let on_drop = AbandonOnDrop(Some(abandoned.clone()));
    let (holder, outcome) = tokio::task::spawn_blocking(move || {
        let outcome = work(&mut holder, abandoned);
        (holder, outcome)
    })
    .await
    .map_err(|_| sqlx::Error::WorkerCrashed)?;
    on_drop.disarm();
    *slot = Some(holder);
    Ok(outcome)
}

/// The error for `halt`; the connection is closed if it is unusable.
fn settle<H: Holder, T>(slot: &mut Option<H>, halt: Halt) -> Result<T, DbError> {
    Err(match halt {
        Halt::Deadline => values::cut_off(),
        Halt::Failed(error) => error,
        Halt::Lost(error) => {
            close_elsewhere(slot.take());
            error
        }
        Halt::Abandoned | Halt::Elsewhere => {
            close_elsewhere(slot.take());
            DbError::Unavailable("the statement was abandoned".into())
        }
    })
}

/// Close a connection that is not to be used again. The writer closes on
/// a blocking thread when there is a runtime to ask: closing rolls back an
/// open transaction, and as the last connection to its file it copies the
/// whole log into it (its checkpoint on close), which is no work for a
/// tokio worker. A reader never checkpoints on close and holds no write,
/// so it closes at once, giving back its place among the readers.
pub(super) fn close_elsewhere<H: Holder>(holder: Option<H>) {
    let Some(mut holder) = holder else {
        return;
    };
    if holder.conn().role == Role::Writer
        && let Ok(runtime) = tokio::runtime::Handle::try_current()
    {
        drop(runtime.spawn_blocking(move || drop(holder)));
    }
}

impl Drop for RawConn {
    fn drop(&mut self) {
        // A connection with statements left open is not closed.
        self.kept.clear();
        // SAFETY: every statement of the connection is finalized now (the
        // kept ones just now; every other lives within one call); the
        // handle is closed once, here.
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

impl From<sqlx::Error> for Stepped {
    fn from(error: sqlx::Error) -> Self {
        Self::Sqlite(error)
    }
}

/// When a statement must stop, consulted by the progress handler.
struct Watch {
    /// Whether the statement runs on the calling thread (then it never
    /// waits for a lock).
    on_calling_thread: bool,
    /// Past this, a statement on the calling thread moves elsewhere
    /// (`None` for one that writes).
    budget_end: Cell<Option<Instant>>,
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
    /// For a statement on the calling thread, moved elsewhere past
    /// [`READ_BUDGET`] if it only reads.
    fn on_calling_thread(bounds: &Bounds) -> Self {
        Self {
            on_calling_thread: true,
            budget_end: Cell::new(Some(Instant::now() + READ_BUDGET)),
            deadline: bounds.deadline,
            abandoned: None,
            stopped: Cell::new(None),
        }
    }

    /// For a statement on a blocking thread, stopped once `abandoned` is
    /// set.
    fn on_blocking_thread(bounds: &Bounds, abandoned: Arc<AtomicBool>) -> Self {
        Self {
            on_calling_thread: false,
            budget_end: Cell::new(None),
            deadline: bounds.deadline,
            abandoned: Some(abandoned),
            stopped: Cell::new(None),
        }
    }

    /// The statement writes: it cannot be stopped and run again elsewhere
    /// (an interrupted write rolls the transaction back), so it runs where
    /// it started, bounded by its deadline.
    fn no_budget(&self) {
        self.budget_end.set(None);
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
        if self.budget_end.get().is_some_and(|end| now >= end) {
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
                    // On the calling thread nothing waits for a lock. A
                    // statement kept from one changed nothing, but only a
                    // read may be run again: SQLite asks that a busy
                    // statement inside a transaction be followed by a
                    // rollback. (A write transaction holds the write lock
                    // from `BEGIN IMMEDIATE` on, so in WAL mode its
                    // statements never meet one.)
                    Some(ffi::SQLITE_BUSY) if self.budget_end.get().is_some() => Halt::Elsewhere,
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
