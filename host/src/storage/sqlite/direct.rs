//! Host statements run directly on a SQLite connection's handle, on the
//! calling thread, while the caller holds the handle
//! ([`sqlx::SqliteConnection::lock_handle`]).
//!
//! For the end of a write transaction: the host's own rows (events, audit
//! entries) and `COMMIT` were each a round trip to the connection's worker
//! thread, and each round trip, measured under purchase load, waited
//! ~170 µs for the worker and then for a busy tokio worker, while every
//! other writer of the process waited for the turn. Handed the handle
//! once, they cost one such wait in all.
//!
//! Only host-written SQL whose work is bounded runs here: a request's rows
//! are at most [`crate::events::MAX_EVENTS_PER_REQUEST`] events of bounded
//! size and their audit entries. A component's statement could run until
//! its deadline and would hold the calling thread (a tokio worker) all
//! that time, so component statements stay on the worker thread.
//!
//! The one module of the host that calls SQLite's C API beyond single
//! reads of a connection's state: sqlx has no way to run a statement on
//! the caller's thread.

#![allow(unsafe_code)]

use std::{
    borrow::Cow,
    ffi::{CStr, CString, c_char, c_int, c_void},
    ptr::NonNull,
};

use libsqlite3_sys as ffi;
use sqlx::error::{DatabaseError, ErrorKind};

use crate::bindings::db::Value;

/// Run `sql`, one statement whose parameters are `$1`, `$2`, … bound to
/// `params` in order, to its end on `db`. Rows it returns are skipped.
///
/// `db` must come from a [`sqlx::sqlite::LockedSqliteHandle`] the caller
/// holds for the whole call.
pub(super) fn execute(
    db: NonNull<ffi::sqlite3>,
    sql: &str,
    params: &[Value],
) -> Result<(), sqlx::Error> {
    let statement = Statement::prepare(db, sql)?;
    statement.bind(params)?;
    statement.run()
}

/// `COMMIT` on `db`, returning how many frames the write-ahead log holds
/// after it (0 outside WAL mode).
///
/// SQLite reports that count to a connection's WAL hook, which is also how
/// it runs its automatic checkpoint: the hook is installed for the
/// `COMMIT` and removed after it, which leaves the connection with no
/// automatic checkpoint (see [`super::CHECKPOINT_FRAMES`] for who
/// checkpoints instead).
pub(super) fn commit(db: NonNull<ffi::sqlite3>) -> Result<u64, sqlx::Error> {
    let mut frames: c_int = 0;
    // SAFETY: `db` is an open connection only this thread uses while the
    // caller holds its handle. `frames` outlives the `COMMIT` below, the
    // only call during which SQLite may call the hook, and the hook is
    // removed before `frames` goes out of scope.
    unsafe {
        ffi::sqlite3_wal_hook(
            db.as_ptr(),
            Some(count_wal_frames),
            (&raw mut frames).cast(),
        );
    }
    let committed = execute(db, "COMMIT", &[]);
    // SAFETY: as above; a null hook removes it.
    unsafe {
        ffi::sqlite3_wal_hook(db.as_ptr(), None, std::ptr::null_mut());
    }
    committed.map(|()| u64::try_from(frames).unwrap_or(0))
}

/// The WAL hook [`commit`] installs: notes the log's size in frames.
unsafe extern "C" fn count_wal_frames(
    frames_out: *mut c_void,
    _db: *mut ffi::sqlite3,
    _schema: *const c_char,
    frames: c_int,
) -> c_int {
    // SAFETY: `frames_out` is the `c_int` [`commit`] installed the hook
    // with, alive for the whole `COMMIT` during which SQLite calls this.
    unsafe {
        let out = frames_out.cast::<c_int>();
        *out = (*out).max(frames);
    }
    ffi::SQLITE_OK
}

/// A prepared statement, finalized when dropped.
struct Statement {
    db: NonNull<ffi::sqlite3>,
    raw: NonNull<ffi::sqlite3_stmt>,
}

impl Statement {
    fn prepare(db: NonNull<ffi::sqlite3>, sql: &str) -> Result<Self, sqlx::Error> {
        let length = c_int::try_from(sql.len())
            .map_err(|_| invalid(format!("host SQL of {} bytes is too long", sql.len())))?;
        let mut raw = std::ptr::null_mut();
        let mut tail = std::ptr::null();
        // SAFETY: `db` is an open connection only this thread uses while
        // the caller holds its handle; `sql` is valid for `length` bytes
        // (no terminating NUL is needed when the length is given); `raw`
        // and `tail` are valid places for SQLite to write to.
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
        let raw = NonNull::new(raw).ok_or_else(|| invalid("host SQL holds no statement"))?;
        let statement = Self { db, raw };
        // SQLite compiles only the first statement; one after it would be
        // silently skipped.
        let parsed = (tail as usize).saturating_sub(sql.as_ptr() as usize);
        let rest = sql.get(parsed..).unwrap_or_default();
        if !rest.trim().is_empty() {
            return Err(invalid("host SQL holds more than one statement"));
        }
        Ok(statement)
    }

    fn bind(&self, params: &[Value]) -> Result<(), sqlx::Error> {
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
                return Err(last_error(self.db));
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

    fn run(&self) -> Result<(), sqlx::Error> {
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
fn last_error(db: NonNull<ffi::sqlite3>) -> sqlx::Error {
    // SAFETY: `db` is an open connection only this thread uses meanwhile;
    // sqlite3_errmsg returns a NUL-terminated string valid until the next
    // call on the connection, copied here before any.
    let (code, message) = unsafe {
        let code = ffi::sqlite3_extended_errcode(db.as_ptr());
        let message = ffi::sqlite3_errmsg(db.as_ptr());
        let message = if message.is_null() {
            String::from("unknown SQLite error")
        } else {
            CStr::from_ptr(message).to_string_lossy().into_owned()
        };
        (code, message)
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
