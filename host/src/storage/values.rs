//! Typed values across the host/component boundary, per backend.
//!
//! Components send [`Value`]s as parameters and get [`Rows`] back. SQLite
//! types values dynamically (a BOOLEAN column holds 0/1), PostgreSQL types
//! them statically, so binding and decoding are written once per backend.
//! SQL NULL parameters are sent to PostgreSQL with an unspecified type so the
//! server infers it from context, as it would for a literal `NULL`.

use sqlx::{Column, Row, TypeInfo, ValueRef, error::ErrorKind};

use super::Tx;
use crate::bindings::db::{ConstraintKind, DbError, Rows, Value};

/// Run a statement that returns rows.
pub async fn query(tx: &mut Tx, sql: &str, params: &[Value]) -> Result<Rows, DbError> {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    match tx {
        Tx::Sqlite(tx) => {
            let rows = bind_sqlite(sqlx::query(sql), params)
                .fetch_all(&mut **tx)
                .await
                .map_err(db_error)?;
            decode_rows(&rows, sqlite_value)
        }
        Tx::Postgres(tx) => {
            let rows = bind_postgres(sqlx::query(sql), params)
                .fetch_all(&mut **tx)
                .await
                .map_err(db_error)?;
            decode_rows(&rows, postgres_value)
        }
    }
}

/// Run a statement and return the number of rows it changed.
pub async fn execute(tx: &mut Tx, sql: &str, params: &[Value]) -> Result<u64, DbError> {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    match tx {
        Tx::Sqlite(tx) => bind_sqlite(sqlx::query(sql), params)
            .execute(&mut **tx)
            .await
            .map(|done| done.rows_affected())
            .map_err(db_error),
        Tx::Postgres(tx) => bind_postgres(sqlx::query(sql), params)
            .execute(&mut **tx)
            .await
            .map(|done| done.rows_affected())
            .map_err(db_error),
    }
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

fn decode_rows<R: Row>(
    rows: &[R],
    decode: fn(&R, usize) -> Result<Value, DbError>,
) -> Result<Rows, DbError> {
    let columns = rows
        .first()
        .map(|row| row.columns().iter().map(|c| c.name().to_owned()).collect())
        .unwrap_or_default();
    let rows = rows
        .iter()
        .map(|row| (0..row.len()).map(|i| decode(row, i)).collect())
        .collect::<Result<_, _>>()?;
    Ok(Rows { columns, rows })
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
            _ => DbError::Failed(db.message().to_owned()),
        },
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            DbError::Unavailable("the database is unavailable".into())
        }
        _ => DbError::Failed(error.to_string()),
    }
}

/// SQLite BUSY/LOCKED and PostgreSQL serialization failure, deadlock and
/// "transaction aborted": the request failed, but a retry may succeed.
fn is_transient(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("5" | "6" | "517" | "40001" | "40P01" | "25P02" | "55P03")
    )
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

    #[tokio::test]
    async fn sqlite_binds_numbered_parameters_by_number_not_position() {
        let (_dir, db) = sqlite().await;
        let mut tx = db
            .begin(Intent::Write)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
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

    #[tokio::test]
    async fn sqlite_values_round_trip_with_declared_booleans() {
        let (_dir, db) = sqlite().await;
        let mut tx = db
            .begin(Intent::Write)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        Database::run_script(
            &mut tx,
            "CREATE TABLE t (i BIGINT, r DOUBLE PRECISION, s TEXT, b BOOLEAN, x BLOB, n TEXT)",
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        let values = vec![
            Value::Integer(-7),
            Value::Real(1.5),
            Value::Text("é".into()),
            Value::Boolean(true),
            Value::Blob(vec![0, 255]),
            Value::Null,
        ];
        execute(
            &mut tx,
            "INSERT INTO t VALUES ($1, $2, $3, $4, $5, $6)",
            &values,
        )
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
        let rows = query(&mut tx, "SELECT i, r, s, b, x, n FROM t", &[])
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(rows.rows, vec![values]);
    }

    #[tokio::test]
    async fn constraint_violations_are_reported_by_kind() {
        let (_dir, db) = sqlite().await;
        let mut tx = db
            .begin(Intent::Write)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
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

    #[test]
    fn busy_and_serialization_failures_are_transient() {
        for code in ["5", "517", "40001", "40P01"] {
            assert!(is_transient(Some(code)), "{code}");
        }
        assert!(!is_transient(Some("23505")));
        assert!(!is_transient(None));
    }
}
