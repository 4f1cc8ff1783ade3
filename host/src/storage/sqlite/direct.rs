//! SQLite's C API for the host's own connections ([`super::conn`]):
//! prepared statements, bound and decoded as sqlx does, errors reported as
//! sqlx reports them, and the WAL hook that counts a commit's frames.
//!
//! Host SQL runs on the writer's holder's thread only where its work is
//! bounded: `BEGIN IMMEDIATE`, `ROLLBACK`, and at the end of a write
//! transaction the request's rows (at most
//! [`crate::events::MAX_EVENTS_PER_REQUEST`] events of bounded size and
//! their audit entries) and `COMMIT`, which writes the transaction's pages
//! to the log. Each was a round trip to the sqlx connection's worker
//! thread, which under purchase load waited ~170 µs for the worker and
//! then for a busy tokio worker while every other writer of the process
//! waited for the turn. Nothing there waits for another connection's lock
//! either: SQLite's busy handler is off meanwhile
//! (`RawConn::without_waiting`), so such a statement fails at once with
//! `SQLITE_BUSY` and the caller decides where to wait.

#![allow(unsafe_code)]

use std::{
    borrow::Cow,
    ffi::{CStr, CString, c_char, c_int, c_void},
    marker::PhantomData,
    ptr::NonNull,
};

use libsqlite3_sys as ffi;
use sqlx::error::{DatabaseError, ErrorKind};

use crate::bindings::db::{DbError, Value};

/// [`count_wal_frames`] installed as a connection's WAL hook, writing into
/// a `c_int` that outlives this guard; removed when the guard is dropped,
/// also on a panic.
///
/// SQLite reports the log's size in frames to a connection's WAL hook
/// after each commit, which is also how it runs its automatic checkpoint:
/// installing this hook for a `COMMIT` and removing it after leaves the
/// connection with no automatic checkpoint (see
/// [`super::CHECKPOINT_FRAMES`] for who checkpoints instead).
pub(super) struct WalHook<'f> {
    db: NonNull<ffi::sqlite3>,
    _frames: PhantomData<&'f mut c_int>,
}

impl<'f> WalHook<'f> {
    pub(super) fn count_into(db: NonNull<ffi::sqlite3>, frames: &'f mut c_int) -> Self {
        // SAFETY: `db` is an open connection only this thread uses
        // meanwhile. `frames` is borrowed for as long as the hook is
        // installed: SQLite calls the hook only within calls on `db`, all
        // of which end before the guard removes it.
        unsafe {
            ffi::sqlite3_wal_hook(
                db.as_ptr(),
                Some(count_wal_frames),
                std::ptr::from_mut(frames).cast(),
            );
        }
        Self {
            db,
            _frames: PhantomData,
        }
    }
}

impl Drop for WalHook<'_> {
    fn drop(&mut self) {
        // SAFETY: as in `count_into`; a null hook removes it.
        unsafe {
            ffi::sqlite3_wal_hook(self.db.as_ptr(), None, std::ptr::null_mut());
        }
    }
}

/// The WAL hook [`WalHook`] installs: notes the log's size in frames.
unsafe extern "C" fn count_wal_frames(
    frames_out: *mut c_void,
    _db: *mut ffi::sqlite3,
    _schema: *const c_char,
    frames: c_int,
) -> c_int {
    // SAFETY: `frames_out` is the `c_int` [`WalHook::count_into`]
    // installed the hook with, borrowed until the hook is removed.
    unsafe {
        let out = frames_out.cast::<c_int>();
        *out = (*out).max(frames);
    }
    ffi::SQLITE_OK
}

/// A prepared statement, finalized when dropped.
#[derive(Debug)]
pub(super) struct Statement {
    db: NonNull<ffi::sqlite3>,
    raw: NonNull<ffi::sqlite3_stmt>,
}

impl Statement {
    /// Prepare host SQL: exactly one statement, nothing after it.
    pub(super) fn prepare(db: NonNull<ffi::sqlite3>, sql: &str) -> Result<Self, sqlx::Error> {
        let (statement, rest) = Self::prepare_first(db, sql)?;
        let statement = statement.ok_or_else(|| invalid("host SQL holds no statement"))?;
        // SQLite compiles only the first statement; one after it would be
        // silently skipped.
        if !rest.trim().is_empty() {
            return Err(invalid("host SQL holds more than one statement"));
        }
        Ok(statement)
    }

    pub(super) fn bind(&self, params: &[Value]) -> Result<(), sqlx::Error> {
        // SAFETY: `raw` is a live statement of this connection.
        let expected = unsafe { ffi::sqlite3_bind_parameter_count(self.raw.as_ptr()) };
        if usize::try_from(expected).ok() != Some(params.len()) {
            return Err(invalid(format!(
                "host SQL takes {expected} parameters, given {}",
                params.len()
            )));
        }
        for (number, value) in (1..).zip(params) {
            let name = CString::new(format!("${number}"))
                .map_err(|_| invalid("parameter name holds a NUL"))?;
            // SAFETY: `raw` is a live statement; `name` is NUL-terminated.
            let position =
                unsafe { ffi::sqlite3_bind_parameter_index(self.raw.as_ptr(), name.as_ptr()) };
            if position == 0 {
                return Err(invalid(format!("host SQL has no parameter ${number}")));
            }
            let code = self.bind_one(position, value)?;
            if code != ffi::SQLITE_OK {
                // A bind reports its error by its result only.
                return Err(error_for_code(code));
            }
        }
        Ok(())
    }

    /// Binds `value` at `position` as sqlx binds it on SQLite (a boolean
    /// as the integer 0 or 1).
    fn bind_one(&self, position: c_int, value: &Value) -> Result<c_int, sqlx::Error> {
        let raw = self.raw.as_ptr();
        // SAFETY: `raw` is a live statement and `position` one of its
        // parameters. Text and blobs are given with their exact length and
        // SQLITE_TRANSIENT, so SQLite copies them before returning and
        // keeps no pointer into `value`.
        let code = unsafe {
            match value {
                Value::Null => ffi::sqlite3_bind_null(raw, position),
                Value::Integer(v) => ffi::sqlite3_bind_int64(raw, position, *v),
                Value::Boolean(v) => ffi::sqlite3_bind_int64(raw, position, i64::from(*v)),
                Value::Real(v) => ffi::sqlite3_bind_double(raw, position, *v),
                Value::Text(v) => ffi::sqlite3_bind_text64(
                    raw,
                    position,
                    v.as_ptr().cast(),
                    byte_length(v.len())?,
                    ffi::SQLITE_TRANSIENT(),
                    // SQLITE_UTF8 is 1: it fits.
                    ffi::SQLITE_UTF8 as u8,
                ),
                Value::Blob(v) => ffi::sqlite3_bind_blob64(
                    raw,
                    position,
                    v.as_ptr().cast(),
                    byte_length(v.len())?,
                    ffi::SQLITE_TRANSIENT(),
                ),
            }
        };
        Ok(code)
    }

    pub(super) fn run(&self) -> Result<(), sqlx::Error> {
        loop {
            // SAFETY: `raw` is a live, fully bound statement.
            match unsafe { ffi::sqlite3_step(self.raw.as_ptr()) } {
                ffi::SQLITE_ROW => {}
                ffi::SQLITE_DONE => return Ok(()),
                _ => return Err(last_error(self.db)),
            }
        }
    }
}

/// A component's statement, bound and decoded as sqlx would: see
/// [`super::conn`].
impl Statement {
    /// Prepare the one statement of a component's `sql`. What follows it
    /// may only be what SQLite compiles to nothing (semicolons, comments,
    /// space), which sqlx would also skip; a second statement is refused
    /// (the checker already refused it).
    /// `None` for SQL that compiles to nothing at all (sqlx runs nothing
    /// and returns no rows).
    pub(super) fn prepare_one(
        db: NonNull<ffi::sqlite3>,
        sql: &str,
    ) -> Result<Option<Self>, sqlx::Error> {
        let (statement, mut rest) = Self::prepare_first(db, sql)?;
        while !rest.trim().is_empty() {
            let (next, after) = Self::prepare_first(db, rest)?;
            if next.is_some() {
                return Err(invalid("the SQL holds more than one statement"));
            }
            if after.len() == rest.len() {
                return Err(invalid("the SQL could not be split into statements"));
            }
            rest = after;
        }
        Ok(statement)
    }

    /// The first statement of `sql` (none if it compiles to nothing) and
    /// the text after it.
    pub(super) fn prepare_first(
        db: NonNull<ffi::sqlite3>,
        sql: &str,
    ) -> Result<(Option<Self>, &str), sqlx::Error> {
        let length = c_int::try_from(sql.len())
            .map_err(|_| invalid(format!("SQL of {} bytes is too long", sql.len())))?;
        let mut raw = std::ptr::null_mut();
        let mut tail = std::ptr::null();
        // SAFETY: `db` is an open connection only this thread uses while
        // the caller holds it; `sql` is valid for `length` bytes (no
        // terminating NUL is needed when the length is given); `raw` and
        // `tail` are valid places for SQLite to write to.
        let code = unsafe {
            ffi::sqlite3_prepare_v2(
                db.as_ptr(),
                sql.as_ptr().cast(),
                length,
                &mut raw,
                &mut tail,
            )
        };
        if code != ffi::SQLITE_OK {
            return Err(last_error(db));
        }
        let statement = NonNull::new(raw).map(|raw| Self { db, raw });
        let parsed = (tail as usize).saturating_sub(sql.as_ptr() as usize);
        let rest = sql
            .get(parsed..)
            .ok_or_else(|| invalid("the SQL could not be split into statements"))?;
        Ok((statement, rest))
    }

    /// Bind `params` as sqlx binds a query's arguments on SQLite: `?NNN`
    /// and `$NNN` by number, a bare `?` by its position among the bare
    /// ones, and a parameter past the arguments given left NULL.
    pub(super) fn bind_as_sqlx(&self, params: &[Value]) -> Result<(), sqlx::Error> {
        // SAFETY: `raw` is a live statement of this connection.
        let count = unsafe { ffi::sqlite3_bind_parameter_count(self.raw.as_ptr()) };
        let mut bare = 0usize;
        for position in 1..=count {
            // SAFETY: `raw` is live and `position` one of its parameters;
            // the name (null for a bare `?`) lives as long as the statement.
            let name = unsafe { ffi::sqlite3_bind_parameter_name(self.raw.as_ptr(), position) };
            let number = if name.is_null() {
                bare += 1;
                bare
            } else {
                // SAFETY: a non-null name is NUL-terminated.
                let name = unsafe { CStr::from_ptr(name) }.to_string_lossy();
                // sqlx reads the number as C's atoi does: the leading
                // digits (`$1::int` is parameter 1).
                name.strip_prefix('?')
                    .or_else(|| name.strip_prefix('$'))
                    .and_then(leading_number)
                    .filter(|number| *number > 0)
                    .ok_or_else(|| invalid(format!("unsupported SQL parameter format: {name}")))?
            };
            let Some(value) = params.get(number - 1) else {
                break;
            };
            let code = self.bind_one(position, value)?;
            if code != ffi::SQLITE_OK {
                return Err(error_for_code(code));
            }
        }
        Ok(())
    }

    /// Whether it makes no change to the database (a read).
    pub(super) fn read_only(&self) -> bool {
        // SAFETY: `raw` is a live statement.
        unsafe { ffi::sqlite3_stmt_readonly(self.raw.as_ptr()) != 0 }
    }

    /// Make it ready to run again, its parameters unbound (NULL).
    pub(super) fn reset(&self) {
        // SAFETY: `raw` is a live statement. The result of sqlite3_reset
        // repeats the last step's error, already reported.
        unsafe {
            ffi::sqlite3_reset(self.raw.as_ptr());
            ffi::sqlite3_clear_bindings(self.raw.as_ptr());
        }
    }

    /// One step: `SQLITE_ROW`, `SQLITE_DONE` or an error code.
    pub(super) fn step(&self) -> c_int {
        // SAFETY: `raw` is a live, bound statement.
        unsafe { ffi::sqlite3_step(self.raw.as_ptr()) }
    }

    pub(super) fn column_count(&self) -> usize {
        // SAFETY: `raw` is a live statement.
        usize::try_from(unsafe { ffi::sqlite3_column_count(self.raw.as_ptr()) }).unwrap_or(0)
    }

    pub(super) fn column_names(&self) -> Vec<String> {
        (0..self.column_count())
            .map(|index| {
                // SAFETY: `raw` is live and `index` one of its columns; the
                // name is copied before the next call on the statement.
                let name = unsafe { ffi::sqlite3_column_name(self.raw.as_ptr(), column(index)) };
                if name.is_null() {
                    String::new()
                } else {
                    // SAFETY: a non-null name is NUL-terminated.
                    unsafe { CStr::from_ptr(name) }
                        .to_string_lossy()
                        .into_owned()
                }
            })
            .collect()
    }

    /// Column `index` of the current row, decoded as the writer's rows are
    /// (see `values::sqlite_value`): by the value's storage class, except
    /// that an integer in a column declared BOOLEAN (or BOOL) is a boolean.
    pub(super) fn value(&self, index: usize) -> Result<Value, DbError> {
        let raw = self.raw.as_ptr();
        let at = column(index);
        // SAFETY: `raw` has a current row and `at` is one of its columns.
        // Text and blob pointers are read (with their length, fetched
        // after them as SQLite asks) and copied before the next call on
        // the statement.
        unsafe {
            Ok(match ffi::sqlite3_column_type(raw, at) {
                ffi::SQLITE_NULL => Value::Null,
                ffi::SQLITE_INTEGER => {
                    let number = ffi::sqlite3_column_int64(raw, at);
                    if declared_boolean(ffi::sqlite3_column_decltype(raw, at)) {
                        Value::Boolean(number != 0)
                    } else {
                        Value::Integer(number)
                    }
                }
                ffi::SQLITE_FLOAT => Value::Real(ffi::sqlite3_column_double(raw, at)),
                ffi::SQLITE_TEXT => {
                    let text = ffi::sqlite3_column_text(raw, at);
                    let bytes = column_bytes(text.cast(), ffi::sqlite3_column_bytes(raw, at));
                    Value::Text(String::from_utf8(bytes.to_vec()).map_err(|_| {
                        DbError::Failed(format!("column {index} holds text that is not UTF-8"))
                    })?)
                }
                _ => {
                    let blob = ffi::sqlite3_column_blob(raw, at);
                    Value::Blob(
                        column_bytes(blob.cast(), ffi::sqlite3_column_bytes(raw, at)).to_vec(),
                    )
                }
            })
        }
    }
}

/// The number `text` starts with, as C's atoi reads it (digits only).
fn leading_number(text: &str) -> Option<usize> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    text.get(..digits)?.parse().ok()
}

/// A column index as SQLite takes it (column counts fit in a `c_int`).
fn column(index: usize) -> c_int {
    c_int::try_from(index).unwrap_or(c_int::MAX)
}

/// The `length` bytes at `data` (none if null).
///
/// # Safety
/// `data` is null or valid for `length` bytes until the caller copies them.
unsafe fn column_bytes<'a>(data: *const u8, length: c_int) -> &'a [u8] {
    match usize::try_from(length) {
        Ok(length) if !data.is_null() && length > 0 => {
            // SAFETY: the caller's promise.
            unsafe { std::slice::from_raw_parts(data, length) }
        }
        _ => &[],
    }
}

/// Whether a column's declared type is sqlx's BOOLEAN.
///
/// # Safety
/// `declared` is null or NUL-terminated.
unsafe fn declared_boolean(declared: *const c_char) -> bool {
    if declared.is_null() {
        return false;
    }
    // SAFETY: the caller's promise.
    let declared = unsafe { CStr::from_ptr(declared) }.to_bytes();
    declared.eq_ignore_ascii_case(b"boolean") || declared.eq_ignore_ascii_case(b"bool")
}

impl Drop for Statement {
    fn drop(&mut self) {
        // SAFETY: `raw` was prepared on this connection and is finalized
        // exactly once, here. Its result repeats the last step's error,
        // already reported.
        unsafe {
            ffi::sqlite3_finalize(self.raw.as_ptr());
        }
    }
}

fn byte_length(length: usize) -> Result<u64, sqlx::Error> {
    u64::try_from(length).map_err(|_| invalid("value too long"))
}

fn invalid(message: impl Into<String>) -> sqlx::Error {
    sqlx::Error::InvalidArgument(message.into())
}

/// The error SQLite reports for the last call on `db`, as a database error
/// carrying the extended result code (as sqlx reports its own), so the
/// host maps it the way it maps every other statement's.
pub(super) fn last_error(db: NonNull<ffi::sqlite3>) -> sqlx::Error {
    // SAFETY: `db` is an open connection only this thread uses meanwhile;
    // sqlite3_errmsg returns a NUL-terminated string valid until the next
    // call on the connection, copied by `host_error` before any.
    unsafe {
        host_error(
            ffi::sqlite3_extended_errcode(db.as_ptr()),
            ffi::sqlite3_errmsg(db.as_ptr()),
        )
    }
}

/// The error a call reported only by its result `code`.
pub(super) fn error_for_code(code: c_int) -> sqlx::Error {
    // SAFETY: sqlite3_errstr returns a static NUL-terminated string (or
    // null) for any code.
    unsafe { host_error(code, ffi::sqlite3_errstr(code)) }
}

/// The error `code` with SQLite's `message` for it.
///
/// # Safety
/// `message` is null or a NUL-terminated string valid for this call.
unsafe fn host_error(code: c_int, message: *const c_char) -> sqlx::Error {
    let message = if message.is_null() {
        String::from("unknown SQLite error")
    } else {
        // SAFETY: the caller's promise.
        unsafe { CStr::from_ptr(message) }
            .to_string_lossy()
            .into_owned()
    };
    sqlx::Error::Database(Box::new(HostStatementError { code, message }))
}

/// SQLite's verdict on a statement run here.
#[derive(Debug, thiserror::Error)]
#[error("{message} (SQLite code {code})")]
pub struct HostStatementError {
    code: c_int,
    message: String,
}

impl DatabaseError for HostStatementError {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        Some(self.code.to_string().into())
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> ErrorKind {
        match self.code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                ErrorKind::UniqueViolation
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => ErrorKind::ForeignKeyViolation,
            ffi::SQLITE_CONSTRAINT_NOTNULL => ErrorKind::NotNullViolation,
            ffi::SQLITE_CONSTRAINT_CHECK => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}
