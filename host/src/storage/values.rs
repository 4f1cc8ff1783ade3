//! Typed values across the host/component boundary, per backend, and the
//! bounds every component statement runs within.
//!
//! Components send [`Value`]s as parameters and get [`Rows`] back. SQLite
//! types values dynamically (a BOOLEAN column holds 0/1), PostgreSQL types
//! them statically, so binding and decoding are written once per backend.
//! SQL NULL parameters are sent to PostgreSQL with an unspecified type so the
//! server infers it from context, as it would for a literal `NULL`.
//!
//! A component statement costs the host time and memory the guest's own
//! limits do not reach, so each one runs within [`Bounds`]:
//! - time: the calling component's deadline. On SQLite a progress handler
//!   stops the statement inside the database once the deadline passes or
//!   once the future waiting for it is dropped (the client went away), so
//!   a runaway statement never keeps the write lock; on PostgreSQL the unit
//!   of work sets `statement_timeout` (see [`super::uow`]).
//! - memory: rows are streamed and counted as they are decoded, and a
//!   result past [`ResultLimits`] is refused without buffering the rest.
//!   SQLite connections cap any one string or blob at
//!   [`SQLITE_MAX_VALUE_BYTES`], so amplification inside SQLite
//!   (`replace()` on `replace()`, recursive concatenation) fails fast.

use std::time::{Duration, Instant};

use futures_core::stream::BoxStream;
use sqlx::{Column, Row, TypeInfo, ValueRef, error::ErrorKind};

use super::{Tx, sqlite::ReadConn};
use crate::bindings::db::{ConstraintKind, DbError, Rows, Value};

/// Largest string or blob a SQLite connection builds or stores
/// (`SQLITE_LIMIT_LENGTH`; SQLite's default is 1 GB). Far above any honest
/// value, and small enough that a statement amplifying a string fails with
/// "string or blob too big" long before it costs the host real memory.
pub const SQLITE_MAX_VALUE_BYTES: i32 = 16 << 20;

/// How many SQLite virtual machine instructions run between two looks at a
/// statement's deadline: a few microseconds of work, so a statement stops
/// within well under a millisecond of its deadline while the check (a clock
/// read) costs a fraction of a percent.
pub(crate) const SQLITE_PROGRESS_OPS: i32 = 1000;

/// How long a PostgreSQL connection may sit idle inside a transaction
/// before the server ends its session. Between two statements of a request
/// the host runs the component's code, which its deadline bounds (seconds);
/// a transaction idle for this long was abandoned and must not keep its
/// locks and snapshot.
pub const POSTGRES_IDLE_IN_TRANSACTION: Duration = Duration::from_secs(60);

/// Most rows one component statement may return, whatever its grant.
pub const MAX_RESULT_ROWS: usize = 100_000;

/// What each value and each row of a result is counted as beyond its
/// payload: the guest receives a result as a list of lists of `value`
/// variants, which take 16 bytes each plus a list header of 8 per row, and
/// the host holds the decoded `Value`s (32 bytes) and row `Vec`s (24) while
/// it lowers them. Counting them keeps a million empty values from passing
/// as zero bytes.
const VALUE_OVERHEAD_BYTES: usize = 32;
const ROW_OVERHEAD_BYTES: usize = 24;

/// How much one statement's result may cost, derived from the calling
/// component's grant in one place: [`ResultLimits::for_memory`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResultLimits {
    /// Most rows.
    pub max_rows: usize,
    /// Most decoded bytes: payloads plus the per-value and per-row overhead.
    pub max_bytes: usize,
}

impl ResultLimits {
    /// No limit: for host-owned SQL only.
    pub const UNLIMITED: Self = Self {
        max_rows: usize::MAX,
        max_bytes: usize::MAX,
    };

    /// The limits for a component whose instances may grow to
    /// `memory_bytes`: a quarter of that in bytes, and at most
    /// [`MAX_RESULT_ROWS`] rows. The result is copied into the guest's
    /// memory, so anything near `memory_bytes` could not be received anyway
    /// (the guest needs room for its own work and for what it builds from
    /// the rows); a quarter leaves it that room, and bounds the host's
    /// memory per statement to the same figure (32 MiB for a core service,
    /// 8 MiB for an extension by default).
    pub fn for_memory(memory_bytes: usize) -> Self {
        Self {
            max_rows: MAX_RESULT_ROWS,
            max_bytes: memory_bytes / 4,
        }
    }
}

/// What one component statement runs within.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// When the calling component's deadline passes: the statement is
    /// stopped then, inside the database.
    pub deadline: Instant,
    /// How much its result may cost.
    pub result: ResultLimits,
    /// The statement comes from a core service, the host's own code: on
    /// SQLite it may start on the calling thread, and is kept prepared
    /// (see `storage::sqlite::conn`). An extension's never does: one call
    /// of a built-in function (`instr`, `LIKE`, `trim` over megabytes)
    /// runs without SQLite ever asking the progress handler, so only a
    /// thread of its own may be spent on it.
    pub trusted: bool,
}

/// The reason a statement cut off at its deadline reports (also the mark by
/// which [`is_cut_off`] recognises it).
const CUT_OFF: &str = "the statement was stopped: the component's deadline passed";

/// The error a statement stopped (or not started) because the calling
/// component's deadline passed reports to the component.
pub fn cut_off() -> DbError {
    DbError::Unavailable(CUT_OFF.into())
}

/// Whether `error` reports a statement stopped at its deadline.
pub fn is_cut_off(error: &DbError) -> bool {
    matches!(error, DbError::Unavailable(reason) if reason == CUT_OFF)
}

/// Refuses parameters the backends would not store as sent: a text
/// containing NUL (PostgreSQL rejects it as invalid UTF-8 in the middle of
/// the request, SQLite's C string functions stop at it, so a value could be
/// checked in full and stored or compared truncated).
pub fn check_params(params: &[Value]) -> Result<(), String> {
    for (index, param) in params.iter().enumerate() {
        if let Value::Text(text) = param
            && text.contains('\0')
        {
            return Err(format!(
                "parameter ${} is a text containing a NUL character",
                index + 1
            ));
        }
    }
    Ok(())
}

/// Run a component statement that returns rows, within `bounds`: stopped
/// at the deadline, its rows streamed and counted against `bounds.result`.
pub async fn query_within(
    tx: &mut Tx,
    sql: &str,
    params: &[Value],
    bounds: &Bounds,
) -> Result<Rows, DbError> {
    match tx {
        Tx::SqliteReader(reader) => reader.query(sql, params, bounds).await,
        Tx::SqliteWrite(tx) => tx.query(sql, params, bounds).await,
        Tx::SqliteRead(_) => Err(no_component_sql()),
        Tx::Postgres(tx) => {
            let rows = bind_postgres(sqlx::query(assert_safe(sql)), params).fetch(&mut **tx);
            collect_rows(rows, postgres_value, &bounds.result).await
        }
    }
}

/// Run a component statement within `bounds` (its deadline) and return
/// the number of rows it changed.
pub async fn execute_within(
    tx: &mut Tx,
    sql: &str,
    params: &[Value],
    bounds: &Bounds,
) -> Result<u64, DbError> {
    match tx {
        Tx::SqliteReader(reader) => reader.execute(sql, params, bounds).await,
        Tx::SqliteWrite(tx) => tx.execute(sql, params, bounds).await,
        Tx::SqliteRead(_) => Err(no_component_sql()),
        Tx::Postgres(tx) => bind_postgres(sqlx::query(assert_safe(sql)), params)
            .execute(&mut **tx)
            .await
            .map(|done| done.rows_affected())
            .map_err(db_error),
    }
}

/// The error for a component statement sent to a host read transaction
/// on SQLite: units of work run theirs on a reader or the writer, where
/// each is bounded.
fn no_component_sql() -> DbError {
    DbError::Failed("component statements do not run in a host read transaction".into())
}

/// A statement's text for sqlx: the checker (for a component's) or the
/// host (for its own) has vouched for it.
fn assert_safe(sql: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(sql.to_owned())
}

/// Run a host-owned statement that returns rows (no component bounds:
/// host SQL is trusted and may read large values, such as component bytes).
pub async fn query(tx: &mut Tx, sql: &str, params: &[Value]) -> Result<Rows, DbError> {
    match tx {
        Tx::SqliteReader(_) => Err(db_error(ReadConn::no_host_sql())),
        Tx::SqliteWrite(tx) => tx.host_query(sql, params).await,
        Tx::SqliteRead(tx) => {
            let rows = bind_sqlite(sqlx::query(assert_safe(sql)), params).fetch(&mut **tx);
            collect_rows(rows, sqlite_value, &ResultLimits::UNLIMITED).await
        }
        Tx::Postgres(tx) => {
            let rows = bind_postgres(sqlx::query(assert_safe(sql)), params).fetch(&mut **tx);
            collect_rows(rows, postgres_value, &ResultLimits::UNLIMITED).await
        }
    }
}

/// Run a host-owned statement and return the number of rows it changed.
pub async fn execute(tx: &mut Tx, sql: &str, params: &[Value]) -> Result<u64, DbError> {
    match tx {
        Tx::SqliteReader(_) => Err(db_error(ReadConn::no_host_sql())),
        Tx::SqliteWrite(tx) => tx.host_execute(sql, params).await,
        Tx::SqliteRead(tx) => bind_sqlite(sqlx::query(assert_safe(sql)), params)
            .execute(&mut **tx)
            .await
            .map(|done| done.rows_affected())
            .map_err(db_error),
        Tx::Postgres(tx) => bind_postgres(sqlx::query(assert_safe(sql)), params)
            .execute(&mut **tx)
            .await
            .map(|done| done.rows_affected())
            .map_err(db_error),
    }
}

/// Decodes `rows` as they arrive, refusing the result once it passes
/// `limits`. Dropping the stream then tells the driver to stop: SQLite's
/// worker stops stepping the statement, PostgreSQL's remaining rows are
/// discarded as they arrive (the server stops at `statement_timeout`).
async fn collect_rows<R: Row>(
    mut rows: BoxStream<'_, Result<R, sqlx::Error>>,
    decode: fn(&R, usize) -> Result<Value, DbError>,
    limits: &ResultLimits,
) -> Result<Rows, DbError> {
    let mut result = RowsWithin::new(limits);
    while let Some(row) = std::future::poll_fn(|cx| rows.as_mut().poll_next(cx)).await {
        let row = row.map_err(db_error)?;
        result.admit_row(|| row.columns().iter().map(|c| c.name().to_owned()).collect())?;
        let mut values = Vec::with_capacity(row.len());
        for index in 0..row.len() {
            values.push(result.admit_value(decode(&row, index)?)?);
        }
        result.push(values);
    }
    Ok(result.into_rows())
}

/// A statement's result as it is collected, refused once it passes its
/// [`ResultLimits`]: the one place a result's cost is counted, whichever
/// way its rows arrive.
pub(crate) struct RowsWithin<'l> {
    limits: &'l ResultLimits,
    bytes: usize,
    rows: Rows,
}

impl<'l> RowsWithin<'l> {
    pub(crate) fn new(limits: &'l ResultLimits) -> Self {
        Self {
            limits,
            bytes: 0,
            rows: Rows {
                columns: Vec::new(),
                rows: Vec::new(),
            },
        }
    }

    /// Count one more row, or refuse it; the first row names the columns.
    pub(crate) fn admit_row(
        &mut self,
        columns: impl FnOnce() -> Vec<String>,
    ) -> Result<(), DbError> {
        if self.rows.rows.len() >= self.limits.max_rows {
            return Err(too_large(format!(
                "more than {} rows",
                self.limits.max_rows
            )));
        }
        if self.rows.columns.is_empty() {
            self.rows.columns = columns();
        }
        self.bytes = self.bytes.saturating_add(ROW_OVERHEAD_BYTES);
        Ok(())
    }

    /// Count `value` of the row being admitted, or refuse it.
    pub(crate) fn admit_value(&mut self, value: Value) -> Result<Value, DbError> {
        self.bytes = self
            .bytes
            .saturating_add(VALUE_OVERHEAD_BYTES)
            .saturating_add(payload_bytes(&value));
        if self.bytes > self.limits.max_bytes {
            return Err(too_large(format!(
                "more than {} bytes",
                self.limits.max_bytes
            )));
        }
        Ok(value)
    }

    /// Keep the row whose values were admitted.
    pub(crate) fn push(&mut self, values: Vec<Value>) {
        self.rows.rows.push(values);
    }

    pub(crate) fn into_rows(self) -> Rows {
        self.rows
    }
}

/// The bytes a value carries beyond its fixed size: a text's or a blob's.
pub(crate) fn payload_bytes(value: &Value) -> usize {
    match value {
        Value::Text(text) => text.len(),
        Value::Blob(blob) => blob.len(),
        Value::Null | Value::Integer(_) | Value::Real(_) | Value::Boolean(_) => 0,
    }
}

fn too_large(what: String) -> DbError {
    DbError::Unavailable(format!(
        "the result is larger than this component may receive ({what}); \
         select fewer rows or columns (LIMIT, paging)"
    ))
}

/// Sets the bounds every SQLite connection of the pool runs with
/// (`after_connect`): [`SQLITE_MAX_VALUE_BYTES`].
pub async fn limit_sqlite_connection(conn: &mut sqlx::SqliteConnection) -> Result<(), sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    set_sqlite_length_limit(handle.as_raw_handle(), SQLITE_MAX_VALUE_BYTES);
    Ok(())
}

/// `sqlite3_limit(SQLITE_LIMIT_LENGTH)`: sqlx has no option for it.
#[allow(unsafe_code)]
pub(crate) fn set_sqlite_length_limit(db: std::ptr::NonNull<libsqlite3_sys::sqlite3>, bytes: i32) {
    // SAFETY: `db` is an open connection the caller holds (a
    // `LockedSqliteHandle`, or a reader of its own), so no other thread
    // uses it meanwhile; sqlite3_limit only reads and writes that
    // connection's limit array.
    unsafe {
        libsqlite3_sys::sqlite3_limit(db.as_ptr(), libsqlite3_sys::SQLITE_LIMIT_LENGTH, bytes);
    }
}

/// Sets the bounds every PostgreSQL connection of the pool runs with
/// (`after_connect`): [`POSTGRES_IDLE_IN_TRANSACTION`]. Statement timeouts
/// are per statement (see [`super::uow`]).
pub async fn limit_postgres_connection(conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    let sql = format!(
        "SET idle_in_transaction_session_timeout = {}",
        POSTGRES_IDLE_IN_TRANSACTION.as_millis()
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(conn)
        .await
        .map(drop)
}

type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;
type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

fn bind_sqlite<'q>(mut query: SqliteQuery<'q>, params: &[Value]) -> SqliteQuery<'q> {
    for param in params {
        query = match param.clone() {
            Value::Null => query.bind(None::<String>),
            Value::Integer(v) => query.bind(v),
            Value::Real(v) => query.bind(v),
            Value::Text(v) => query.bind(v),
            Value::Blob(v) => query.bind(v),
            Value::Boolean(v) => query.bind(v),
        };
    }
    query
}

fn bind_postgres<'q>(mut query: PgQuery<'q>, params: &[Value]) -> PgQuery<'q> {
    for param in params {
        query = match param.clone() {
            Value::Null => query.bind(UntypedNull),
            Value::Integer(v) => query.bind(v),
            Value::Real(v) => query.bind(v),
            Value::Text(v) => query.bind(v),
            Value::Blob(v) => query.bind(v),
            Value::Boolean(v) => query.bind(v),
        };
    }
    query
}

/// A NULL parameter whose type PostgreSQL infers from the statement.
struct UntypedNull;

impl sqlx::Type<sqlx::Postgres> for UntypedNull {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        // OID 0 means "unspecified" in the extended query protocol.
        sqlx::postgres::PgTypeInfo::with_oid(sqlx::postgres::types::Oid(0))
    }
}

impl sqlx::Encode<'_, sqlx::Postgres> for UntypedNull {
    fn encode_by_ref(
        &self,
        _buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        Ok(sqlx::encode::IsNull::Yes)
    }
}

fn sqlite_value(row: &sqlx::sqlite::SqliteRow, index: usize) -> Result<Value, DbError> {
    let raw = row.try_get_raw(index).map_err(db_error)?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    // The value's storage class decides, except that a column declared
    // BOOLEAN comes back as a boolean so both backends agree.
    let storage = raw.type_info().name().to_ascii_uppercase();
    let declared = row.columns()[index].type_info().name().to_ascii_uppercase();
    Ok(match storage.as_str() {
        "INTEGER" | "BOOLEAN" if declared == "BOOLEAN" => {
            Value::Boolean(row.try_get::<i64, _>(index).map_err(db_error)? != 0)
        }
        "INTEGER" | "INT8" | "BIGINT" => Value::Integer(row.try_get(index).map_err(db_error)?),
        "REAL" => Value::Real(row.try_get(index).map_err(db_error)?),
        "TEXT" | "DATETIME" | "DATE" | "TIME" => Value::Text(row.try_get(index).map_err(db_error)?),
        "BLOB" => Value::Blob(row.try_get(index).map_err(db_error)?),
        other => {
            return Err(DbError::Failed(format!(
                "column {index} has an unsupported SQLite type {other}"
            )));
        }
    })
}

fn postgres_value(row: &sqlx::postgres::PgRow, index: usize) -> Result<Value, DbError> {
    let raw = row.try_get_raw(index).map_err(db_error)?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let type_name = raw.type_info().name().to_owned();
    let get = |e| db_error(e);
    Ok(match type_name.as_str() {
        "INT2" => Value::Integer(row.try_get::<i16, _>(index).map_err(get)?.into()),
        "INT4" => Value::Integer(row.try_get::<i32, _>(index).map_err(get)?.into()),
        "INT8" => Value::Integer(row.try_get(index).map_err(get)?),
        "FLOAT4" => Value::Real(row.try_get::<f32, _>(index).map_err(get)?.into()),
        "FLOAT8" => Value::Real(row.try_get(index).map_err(get)?),
        "BOOL" => Value::Boolean(row.try_get(index).map_err(get)?),
        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CHAR" => {
            Value::Text(row.try_get(index).map_err(get)?)
        }
        "BYTEA" => Value::Blob(row.try_get(index).map_err(get)?),
        "NUMERIC" => {
            return Err(DbError::Failed(format!(
                "column {index} is NUMERIC: CAST it to BIGINT or DOUBLE PRECISION"
            )));
        }
        other => {
            return Err(DbError::Failed(format!(
                "column {index} has an unsupported PostgreSQL type {other}"
            )));
        }
    })
}

/// Map a database error to what the component is told.
pub fn db_error(error: sqlx::Error) -> DbError {
    match &error {
        sqlx::Error::Database(db) => match db.kind() {
            ErrorKind::UniqueViolation => DbError::Constraint(ConstraintKind::Unique),
            ErrorKind::ForeignKeyViolation => DbError::Constraint(ConstraintKind::ForeignKey),
            ErrorKind::NotNullViolation => DbError::Constraint(ConstraintKind::NotNull),
            ErrorKind::CheckViolation => DbError::Constraint(ConstraintKind::Check),
            _ if is_transient(db.code().as_deref()) => {
                DbError::Unavailable("the database is busy; retry".into())
            }
            _ if is_cancel(db.code().as_deref()) => cut_off(),
            _ if is_over_limit(db.code().as_deref()) => DbError::Unavailable(format!(
                "the statement went past a database limit: {}",
                db.message()
            )),
            _ => DbError::Failed(db.message().to_owned()),
        },
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            DbError::Unavailable("the database is unavailable".into())
        }
        _ => DbError::Failed(error.to_string()),
    }
}

/// SQLite BUSY/LOCKED (with any of their extended codes) and PostgreSQL
/// serialization failure, deadlock and "transaction aborted": the request
/// failed, but a retry may succeed.
fn is_transient(code: Option<&str>) -> bool {
    matches!(
        sqlite_primary_code(code),
        Some(libsqlite3_sys::SQLITE_BUSY | libsqlite3_sys::SQLITE_LOCKED)
    ) || matches!(code, Some("40001" | "40P01" | "25P02" | "55P03"))
}

/// SQLite's primary result code (the low byte) of a database error's
/// `code`, if it is SQLite's: those are numbers of at most four digits,
/// where PostgreSQL's SQLSTATEs always have five characters.
pub(crate) fn sqlite_primary_code(code: Option<&str>) -> Option<i32> {
    code.filter(|code| code.len() < 5)
        .and_then(|code| code.parse::<i32>().ok())
        .map(|code| code & 0xff)
}

/// SQLite SQLITE_INTERRUPT (the progress handler stopped the statement)
/// and PostgreSQL query_canceled (`statement_timeout`): the deadline ended it.
fn is_cancel(code: Option<&str>) -> bool {
    matches!(code, Some("9" | "57014"))
}

/// SQLite SQLITE_TOOBIG (a value past [`SQLITE_MAX_VALUE_BYTES`]) and
/// PostgreSQL program_limit_exceeded (a value past 1 GB), statement too
/// complex and out of memory: the statement asked for too much.
fn is_over_limit(code: Option<&str>) -> bool {
    matches!(code, Some("18" | "54000" | "54001" | "53200"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Database, Intent};

    async fn sqlite() -> (tempfile::TempDir, Database) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let db = Database::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        (dir, db)
    }

    /// A transaction of `db` begun for `intent`.
    async fn begin(db: &Database, intent: Intent) -> Tx {
        db.begin(intent).await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// A reader connection of `db` (SQLite): the unit of work's reads
    /// before its first write, run through SQLite's C API.
    async fn reader(db: &Database) -> Tx {
        let Database::Sqlite(sqlite) = db else {
            panic!("SQLite")
        };
        Tx::SqliteReader(
            sqlite
                .reader(Duration::from_secs(5))
                .await
                .unwrap_or_else(|e| panic!("{e}")),
        )
    }

    /// Every way a component statement runs on SQLite: on the writer or
    /// on a reader (`true`: the writer), from a core service (`true`: on
    /// the calling thread) or from an extension (on a blocking thread).
    /// What bounds statements must hold on each.
    const EVERY_WAY: [(bool, bool); 4] =
        [(true, true), (true, false), (false, true), (false, false)];

    /// The connection for one of [`EVERY_WAY`] (a write transaction holds
    /// the writer's turn: end it before the next).
    async fn component_connection(db: &Database, writer: bool) -> Tx {
        if writer {
            begin(db, Intent::Write).await
        } else {
            reader(db).await
        }
    }

    /// Component statements on the host's own connections give what sqlx
    /// gives (which ran them before, and still runs the host's reads):
    /// parameters bound by number (`$N`, `?N`) or by position (`?`),
    /// missing ones as NULL, every kind of value, the same columns, and
    /// the same refusals; more refusals, too: a second statement, and on a
    /// reader a write.
    #[tokio::test]
    async fn component_statements_bind_and_decode_as_sqlx_does() {
        let (_dir, db) = sqlite().await;
        let mut writer = begin(&db, Intent::Write).await;
        one_row_of_every_kind(&mut writer).await;
        writer.commit().await.unwrap_or_else(|e| panic!("{e}"));
        let params = [
            Value::Integer(1),
            Value::Text("two".into()),
            Value::Real(0.25),
        ];
        let cases = [
            "SELECT i, r, s, b, c, x, n FROM kinds",
            "SELECT *, i + 1 AS next, b AS again FROM kinds",
            "SELECT $2 AS second, $1 AS first, $2 AS again",
            "SELECT ?2 AS second, ?1 AS first, ?3 AS third",
            "SELECT ? AS a, ? AS b",
            "SELECT $1 AS a, $9 AS missing",
            "SELECT $1::x AS a, $2abc AS b, ?3 AS c",
            "SELECT s FROM kinds WHERE i = $1 - 8;  -- a trailing comment",
            "SELECT s FROM kinds WHERE i < 0;;",
            "SELECT :name AS named",
            "SELECT 1; SELECT 2",
            "SELECT nope FROM kinds",
            "",
            "-- nothing",
            "INSERT INTO kinds (i) VALUES (1)",
        ];
        let far = bounds(Duration::from_secs(600), ROOMY);
        for sql in cases {
            let mut sqlx_read = begin(&db, Intent::Read).await;
            let expected = query(&mut sqlx_read, sql, &params).await;
            sqlx_read.rollback().await.unwrap_or_else(|e| panic!("{e}"));
            for (writer, trusted) in EVERY_WAY {
                let mut tx = component_connection(&db, writer).await;
                let within = Bounds { trusted, ..far };
                let got = query_within(&mut tx, sql, &params, &within).await;
                match (&expected, &got) {
                    (Ok(expected), Ok(got)) => assert_eq!(expected, got, "{sql}"),
                    (Err(_), Err(_)) => {}
                    // Refused: a second statement, which sqlx would run
                    // too, and on a reader a write (the checker refuses a
                    // second statement, and sends no write to a reader).
                    _ if sql.contains("; SELECT") || (!writer && sql.starts_with("INSERT")) => {
                        assert!(got.is_err(), "{sql}: ran it: {got:?}");
                    }
                    _ => panic!("{sql}: sqlx gave {expected:?}, this {got:?}"),
                }
                tx.rollback().await.unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }

    #[tokio::test]
    async fn sqlite_binds_numbered_parameters_by_number_not_position() {
        let (_dir, db) = sqlite().await;
        let mut tx = begin(&db, Intent::Write).await;
        let rows = query(
            &mut tx,
            "SELECT $2 AS second, $1 AS first, $2 AS again",
            &[Value::Integer(1), Value::Text("two".into())],
        )
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(rows.columns, ["second", "first", "again"]);
        assert_eq!(
            rows.rows,
            vec![vec![
                Value::Text("two".into()),
                Value::Integer(1),
                Value::Text("two".into())
            ]]
        );
    }

    /// Creates `kinds` with a column of every kind (BOOLEAN and BOOL
    /// declared, so they read back as booleans) and inserts one row;
    /// returns the row's values.
    async fn one_row_of_every_kind(tx: &mut Tx) -> Vec<Value> {
        Database::run_script(
            tx,
            "CREATE TABLE kinds (i BIGINT, r DOUBLE PRECISION, s TEXT, b BOOLEAN, c BOOL, \
             x BLOB, n TEXT)",
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        let values = vec![
            Value::Integer(-7),
            Value::Real(1.5),
            Value::Text("é\u{1F600}".into()),
            Value::Boolean(true),
            Value::Boolean(false),
            Value::Blob(vec![0, 255]),
            Value::Null,
        ];
        execute(
            tx,
            "INSERT INTO kinds VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &values,
        )
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
        values
    }

    #[tokio::test]
    async fn sqlite_values_round_trip_with_declared_booleans() {
        let (_dir, db) = sqlite().await;
        let mut tx = begin(&db, Intent::Write).await;
        let values = one_row_of_every_kind(&mut tx).await;
        let rows = query(&mut tx, "SELECT i, r, s, b, c, x, n FROM kinds", &[])
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(rows.rows, vec![values]);
    }

    #[tokio::test]
    async fn constraint_violations_are_reported_by_kind() {
        let (_dir, db) = sqlite().await;
        let mut tx = begin(&db, Intent::Write).await;
        Database::run_script(
            &mut tx,
            "CREATE TABLE u (k TEXT PRIMARY KEY, v BIGINT CHECK (v >= 0))",
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        let insert = "INSERT INTO u VALUES ($1, $2)";
        execute(
            &mut tx,
            insert,
            &[Value::Text("a".into()), Value::Integer(1)],
        )
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
        let duplicate = execute(
            &mut tx,
            insert,
            &[Value::Text("a".into()), Value::Integer(1)],
        )
        .await;
        assert!(
            matches!(duplicate, Err(DbError::Constraint(ConstraintKind::Unique))),
            "{duplicate:?}"
        );
        let negative = execute(
            &mut tx,
            insert,
            &[Value::Text("b".into()), Value::Integer(-1)],
        )
        .await;
        assert!(
            matches!(negative, Err(DbError::Constraint(ConstraintKind::Check))),
            "{negative:?}"
        );
    }

    fn bounds(deadline: Duration, result: ResultLimits) -> Bounds {
        Bounds {
            deadline: Instant::now() + deadline,
            result,
            trusted: true,
        }
    }

    const ROOMY: ResultLimits = ResultLimits {
        max_rows: 1000,
        max_bytes: 1 << 20,
    };

    /// Counts for ever: only an interrupt ends it.
    const RUNAWAY: &str = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) \
                           SELECT count(*) FROM r";

    #[test]
    fn text_parameters_with_a_nul_are_refused() {
        assert!(check_params(&[Value::Text("fine".into()), Value::Blob(vec![0])]).is_ok());
        let reason = check_params(&[Value::Integer(1), Value::Text("a\0b".into())])
            .expect_err("a NUL in a text parameter");
        assert!(reason.contains("$2") && reason.contains("NUL"), "{reason}");
    }

    #[test]
    fn result_limits_follow_the_memory_grant() {
        let limits = ResultLimits::for_memory(32 << 20);
        assert_eq!(limits.max_bytes, 8 << 20);
        assert_eq!(limits.max_rows, MAX_RESULT_ROWS);
    }

    /// [`RUNAWAY`] with a deadline 100 ms away is stopped at it, long
    /// before it could end on its own.
    async fn runaway_is_cut_off_at_its_deadline(tx: &mut Tx, trusted: bool) {
        let started = Instant::now();
        let within = Bounds {
            trusted,
            ..bounds(Duration::from_millis(100), ROOMY)
        };
        let result = query_within(tx, RUNAWAY, &[], &within).await;
        assert!(matches!(&result, Err(e) if is_cut_off(e)), "{result:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_reader_stops_a_runaway_read_at_its_deadline_and_stays_usable() {
        let (_dir, db) = sqlite().await;
        let mut read = reader(&db).await;
        runaway_is_cut_off_at_its_deadline(&mut read, true).await;
        // A long read that ends: moved off the calling thread, run again
        // from the start, and answered in full.
        let long = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r \
                    WHERE n < 300000) SELECT count(*) AS n, sum(n) AS total FROM r";
        let counted = query_within(
            &mut read,
            long,
            &[],
            &bounds(Duration::from_secs(600), ROOMY),
        )
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            counted.rows,
            vec![vec![
                Value::Integer(300_000),
                Value::Integer(45_000_150_000)
            ]]
        );
        read.commit().await.unwrap_or_else(|e| panic!("{e}"));
        let Database::Sqlite(sqlite) = &db else {
            panic!("SQLite")
        };
        assert_eq!(sqlite.idle_readers(), 1, "the reader was given back");
    }

    /// Only a core service's read with small parameters runs on the
    /// calling thread; an extension's, or one carrying large values, runs
    /// on a blocking thread.
    #[tokio::test]
    async fn only_a_core_service_read_with_small_parameters_runs_on_the_calling_thread() {
        let (_dir, db) = sqlite().await;
        let large = Value::Text("x".repeat(64 << 10));
        let cases = [
            (true, vec![Value::Integer(1)], 0),
            (false, vec![Value::Integer(1)], 1),
            (true, vec![large.clone()], 1),
            (false, vec![large], 1),
        ];
        for (trusted, params, moved) in cases {
            let Tx::SqliteReader(mut read) = reader(&db).await else {
                panic!("a reader")
            };
            let within = Bounds {
                trusted,
                ..bounds(Duration::from_secs(600), ROOMY)
            };
            let rows = read.query("SELECT length($1) AS n", &params, &within).await;
            assert_eq!(rows.map(|rows| rows.rows.len()), Ok(1));
            let bytes = parameter_bytes(&params);
            assert_eq!(
                read.off_thread(),
                Some(moved),
                "trusted: {trusted}, {bytes} bytes"
            );
        }
    }

    fn parameter_bytes(params: &[Value]) -> usize {
        params.iter().map(payload_bytes).sum()
    }

    #[tokio::test]
    async fn a_reader_stops_a_read_whose_future_was_dropped_and_is_not_reused() {
        let (_dir, db) = sqlite().await;
        let mut read = reader(&db).await;
        let far = bounds(Duration::from_secs(600), ROOMY);
        let dropped = tokio::time::timeout(
            Duration::from_millis(100),
            query_within(&mut read, RUNAWAY, &[], &far),
        )
        .await;
        assert!(dropped.is_err(), "the runaway read finished: {dropped:?}");
        let next = query_within(&mut read, "SELECT 1", &[], &far).await;
        assert!(next.is_err(), "its connection is gone: {next:?}");
        read.commit().await.unwrap_or_else(|e| panic!("{e}"));
        let Database::Sqlite(sqlite) = &db else {
            panic!("SQLite")
        };
        assert_eq!(
            sqlite.idle_readers(),
            0,
            "a reader left mid-statement is closed"
        );
        // The interrupted statement ended: the next reader reads at once.
        let mut fresh = reader(&db).await;
        let answered = tokio::time::timeout(
            Duration::from_secs(5),
            query_within(&mut fresh, "SELECT 1", &[], &far),
        )
        .await;
        assert!(matches!(answered, Ok(Ok(_))), "{answered:?}");
    }

    /// On the writer a statement is stopped at its deadline on either
    /// thread (a core service's read first moves off the calling thread
    /// past its budget), and the writer goes on.
    #[tokio::test]
    async fn the_writer_stops_a_runaway_statement_at_its_deadline() {
        let (_dir, db) = sqlite().await;
        for trusted in [true, false] {
            let mut tx = begin(&db, Intent::Write).await;
            runaway_is_cut_off_at_its_deadline(&mut tx, trusted).await;
            tx.rollback().await.unwrap_or_else(|e| panic!("{e}"));
            let mut tx = begin(&db, Intent::Write).await;
            query(&mut tx, "SELECT 1", &[])
                .await
                .unwrap_or_else(|e| panic!("{e:?}"));
            tx.rollback().await.unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[tokio::test]
    async fn every_statement_of_a_write_transaction_is_bounded_by_its_own_deadline() {
        let (_dir, db) = sqlite().await;
        let mut tx = begin(&db, Intent::Write).await;
        let short = || bounds(Duration::from_millis(50), ROOMY);
        let far = bounds(Duration::from_secs(600), ROOMY);
        // A statement that outlives an earlier statement's deadline is not
        // stopped by it.
        let earlier = query_within(&mut tx, "SELECT 1", &[], &short()).await;
        assert!(earlier.is_ok(), "{earlier:?}");
        tokio::time::sleep(Duration::from_millis(80)).await;
        let later = query_within(&mut tx, "SELECT 2", &[], &far).await;
        assert!(later.is_ok(), "{later:?}");
        // And the next runaway is stopped at its own.
        let again = query_within(&mut tx, RUNAWAY, &[], &short()).await;
        assert!(matches!(&again, Err(e) if is_cut_off(e)), "{again:?}");
    }

    /// An extension's statement on the writer runs on a blocking thread.
    /// If its caller goes away, it is stopped there, its connection is
    /// closed (which rolls the transaction back), and the next writer
    /// writes, waiting on a blocking thread for that connection's lock.
    #[tokio::test]
    async fn an_abandoned_write_transaction_is_rolled_back_and_the_next_writer_goes_on() {
        let (_dir, db) = sqlite().await;
        let mut setup = begin(&db, Intent::Write).await;
        Database::run_script(&mut setup, "CREATE TABLE a (n INTEGER)")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        setup.commit().await.unwrap_or_else(|e| panic!("{e}"));
        let far = bounds(Duration::from_secs(600), ROOMY);
        let extension = Bounds {
            trusted: false,
            ..far
        };
        let mut tx = begin(&db, Intent::Write).await;
        execute_within(&mut tx, "INSERT INTO a VALUES (1)", &[], &far)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        let dropped = tokio::time::timeout(
            Duration::from_millis(100),
            query_within(&mut tx, RUNAWAY, &[], &extension),
        )
        .await;
        assert!(dropped.is_err(), "the runaway finished: {dropped:?}");
        let next = query_within(&mut tx, "SELECT 1", &[], &far).await;
        assert!(next.is_err(), "its connection is gone: {next:?}");
        let Tx::SqliteWrite(txn) = &tx else {
            panic!("the writer")
        };
        assert!(txn.ended_by_sqlite());
        drop(tx);
        let mut next = tokio::time::timeout(Duration::from_secs(5), begin(&db, Intent::Write))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let rows = query(&mut next, "SELECT count(*) FROM a", &[])
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(rows.rows, vec![vec![Value::Integer(0)]], "rolled back");
        execute_within(&mut next, "INSERT INTO a VALUES (2)", &[], &far)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        next.commit().await.unwrap_or_else(|e| panic!("{e}"));
    }

    #[tokio::test]
    async fn sqlite_refuses_results_past_their_limits() {
        let (_dir, db) = sqlite().await;
        for (writer, trusted) in EVERY_WAY {
            let tx = component_connection(&db, writer).await;
            results_past_their_limits_are_refused(tx, trusted).await;
        }
    }

    async fn results_past_their_limits_are_refused(mut tx: Tx, trusted: bool) {
        let far = Duration::from_secs(600);
        let bounds = |deadline, result| Bounds {
            trusted,
            ..bounds(deadline, result)
        };
        let many =
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT n FROM r";
        let rows = query_within(&mut tx, many, &[], &bounds(far, ROOMY)).await;
        assert!(
            matches!(&rows, Err(DbError::Unavailable(r)) if r.contains("1000 rows")),
            "{:?}",
            rows.map(|rows| rows.rows.len())
        );
        let wide = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5000) \
                    SELECT replace(replace(replace('x', 'x', 'xxxxxxxxxx'), 'x', 'xxxxxxxxxx'), \
                    'x', 'xxxxxxxxxx') FROM r";
        let few_bytes = ResultLimits {
            max_rows: 100_000,
            max_bytes: 1 << 20,
        };
        let bytes = query_within(&mut tx, wide, &[], &bounds(far, few_bytes)).await;
        assert!(
            matches!(&bytes, Err(DbError::Unavailable(r)) if r.contains("bytes")),
            "{:?}",
            bytes.map(|rows| rows.rows.len())
        );
        // Both bounds stopped reading early and left the connection usable.
        let fine = query_within(&mut tx, "SELECT 1", &[], &bounds(far, ROOMY)).await;
        assert!(fine.is_ok(), "{fine:?}");
    }

    #[tokio::test]
    async fn sqlite_refuses_to_build_a_value_past_its_length_limit() {
        let (_dir, db) = sqlite().await;
        for (writer, trusted) in EVERY_WAY {
            let tx = component_connection(&db, writer).await;
            a_value_past_the_length_limit_is_refused(tx, trusted).await;
        }
    }

    async fn a_value_past_the_length_limit_is_refused(mut tx: Tx, trusted: bool) {
        let mut amplified = "'x'".to_owned();
        for _ in 0..9 {
            amplified = format!("replace({amplified}, 'x', 'xxxxxxxxxx')");
        }
        let sql = format!("SELECT length({amplified})");
        let started = Instant::now();
        let within = Bounds {
            trusted,
            ..bounds(Duration::from_secs(600), ROOMY)
        };
        let result = query_within(&mut tx, &sql, &[], &within).await;
        assert!(
            matches!(&result, Err(DbError::Unavailable(r)) if r.contains("database limit")),
            "{result:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn busy_and_serialization_failures_are_transient() {
        // BUSY, BUSY_RECOVERY, BUSY_SNAPSHOT, BUSY_TIMEOUT, LOCKED,
        // LOCKED_SHAREDCACHE; then PostgreSQL's.
        for code in ["5", "261", "517", "773", "6", "262", "40001", "40P01"] {
            assert!(is_transient(Some(code)), "{code}");
        }
        // A constraint (SQLite's extended UNIQUE, PostgreSQL's
        // unique_violation, whose low byte would not be BUSY anyway).
        for code in ["2067", "23505", "22005"] {
            assert!(!is_transient(Some(code)), "{code}");
        }
        assert!(!is_transient(None));
    }
}
