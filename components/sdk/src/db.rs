//! Database access: statements with typed `$1`, `$2`, ... parameters and a
//! row accessor by column name.
//!
//! Every statement runs in the request's transaction, after the host checks
//! that it is one SELECT/INSERT/UPDATE/DELETE on the component's own tables.
//! SQL must run unchanged on SQLite and PostgreSQL.
//!
//! ```ignore
//! let row = db::query_opt(
//!     "SELECT id, username, age FROM customers WHERE lower(username) = lower($1)",
//!     params![username],
//! )?;
//! if let Some(row) = row {
//!     let id = row.text("id")?;
//!     let age = row.opt_int("age")?;
//! }
//! ```
//!
//! Functions return [`DbError`] so a caller can still tell a constraint
//! violation apart (see [`crate::error::OnConstraint`]); `?` in a handler
//! turns the rest into the right client error. A row that does not have the
//! expected shape is a bug in the component's SQL, reported as
//! [`DbError::Failed`] (a 500 whose detail goes only to the log).

use std::rc::Rc;

use crate::money::Cents;
pub use crate::wit::db::{ConstraintKind, DbError, Value};

/// Builds a statement's parameter list, converting each argument with
/// `Value::from`: `params![username, age, Cents(100), None::<String>]`.
#[macro_export]
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        &[$($crate::db::Value::from($value)),*] as &[$crate::db::Value]
    };
}

#[doc(inline)]
pub use crate::params;

/// Runs a statement that returns rows (SELECT, or a write with RETURNING).
pub fn query(sql: &str, params: &[Value]) -> Result<Rows, DbError> {
    crate::wit::db::query(sql, params).map(Rows::from)
}

/// Runs a statement that must return exactly one row, such as an
/// `INSERT ... RETURNING`. Zero or several rows is a bug.
pub fn query_one(sql: &str, params: &[Value]) -> Result<Row, DbError> {
    query(sql, params)?.single()
}

/// Runs a statement that returns at most one row, such as a lookup by a
/// unique key. Several rows is a bug.
pub fn query_opt(sql: &str, params: &[Value]) -> Result<Option<Row>, DbError> {
    query(sql, params)?.at_most_one()
}

/// Runs a statement and returns how many rows it changed.
pub fn execute(sql: &str, params: &[Value]) -> Result<u64, DbError> {
    crate::wit::db::execute(sql, params)
}

/// A result set. Iterate it (by value) to get [`Row`]s.
#[derive(Debug, Clone)]
pub struct Rows {
    /// Shared by every row so that each can look columns up by name.
    columns: Rc<[String]>,
    rows: Vec<Vec<Value>>,
}

impl From<crate::wit::db::Rows> for Rows {
    fn from(rows: crate::wit::db::Rows) -> Self {
        Rows {
            columns: rows.columns.into(),
            rows: rows.rows,
        }
    }
}

impl Rows {
    /// How many rows there are.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The only row; an error for zero or several.
    pub fn single(self) -> Result<Row, DbError> {
        match self.at_most_one()? {
            Some(row) => Ok(row),
            None => Err(DbError::Failed(
                "expected exactly one row, got none".to_owned(),
            )),
        }
    }

    /// The only row, if any; an error for several.
    pub fn at_most_one(self) -> Result<Option<Row>, DbError> {
        if self.rows.len() > 1 {
            return Err(DbError::Failed(format!(
                "expected at most one row, got {}",
                self.rows.len()
            )));
        }
        Ok(self.into_iter().next())
    }

    /// Converts every row with `map`, stopping at the first error.
    pub fn map<T, E>(self, map: impl FnMut(Row) -> Result<T, E>) -> Result<Vec<T>, E> {
        self.into_iter().map(map).collect()
    }
}

impl IntoIterator for Rows {
    type Item = Row;
    type IntoIter = RowsIter;

    fn into_iter(self) -> RowsIter {
        RowsIter {
            columns: self.columns,
            rows: self.rows.into_iter(),
        }
    }
}

/// Iterator over the rows of a [`Rows`].
#[derive(Debug)]
pub struct RowsIter {
    columns: Rc<[String]>,
    rows: std::vec::IntoIter<Vec<Value>>,
}

impl Iterator for RowsIter {
    type Item = Row;

    fn next(&mut self) -> Option<Row> {
        let values = self.rows.next()?;
        Some(Row {
            columns: Rc::clone(&self.columns),
            values,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.rows.size_hint()
    }
}

/// One result row, read by column name.
///
/// Names are matched ignoring ASCII case, because PostgreSQL folds unquoted
/// names to lower case while SQLite keeps them as written.
#[derive(Debug, Clone)]
pub struct Row {
    columns: Rc<[String]>,
    values: Vec<Value>,
}

impl Row {
    /// The raw value of `column`.
    pub fn value(&self, column: &str) -> Result<&Value, DbError> {
        self.columns
            .iter()
            .position(|name| name.eq_ignore_ascii_case(column))
            .and_then(|index| self.values.get(index))
            .ok_or_else(|| DbError::Failed(format!("no column `{column}` in the result")))
    }

    /// A non-NULL text column.
    pub fn text(&self, column: &str) -> Result<String, DbError> {
        self.opt_text(column)?.ok_or_else(|| null(column))
    }

    /// A nullable text column.
    pub fn opt_text(&self, column: &str) -> Result<Option<String>, DbError> {
        match self.value(column)? {
            Value::Null => Ok(None),
            Value::Text(text) => Ok(Some(text.clone())),
            other => Err(mismatch(column, "text", other)),
        }
    }

    /// A non-NULL integer column.
    pub fn int(&self, column: &str) -> Result<i64, DbError> {
        self.opt_int(column)?.ok_or_else(|| null(column))
    }

    /// A nullable integer column.
    pub fn opt_int(&self, column: &str) -> Result<Option<i64>, DbError> {
        match self.value(column)? {
            Value::Null => Ok(None),
            Value::Integer(value) => Ok(Some(*value)),
            other => Err(mismatch(column, "integer", other)),
        }
    }

    /// A non-NULL float column. Never use this for money.
    pub fn real(&self, column: &str) -> Result<f64, DbError> {
        self.opt_real(column)?.ok_or_else(|| null(column))
    }

    /// A nullable float column; integers are widened (SQLite returns
    /// `avg()` of whole numbers as REAL but `sum()` as INTEGER).
    pub fn opt_real(&self, column: &str) -> Result<Option<f64>, DbError> {
        match self.value(column)? {
            Value::Null => Ok(None),
            Value::Real(value) => Ok(Some(*value)),
            // Precision loss only beyond 2^53, far outside what a float column holds.
            #[allow(clippy::cast_precision_loss)]
            Value::Integer(value) => Ok(Some(*value as f64)),
            other => Err(mismatch(column, "real", other)),
        }
    }

    /// A non-NULL boolean column. Accepts integers 0 and 1 too, because
    /// SQLite stores booleans as integers.
    pub fn bool(&self, column: &str) -> Result<bool, DbError> {
        self.opt_bool(column)?.ok_or_else(|| null(column))
    }

    /// A nullable boolean column (see [`Row::bool`]).
    pub fn opt_bool(&self, column: &str) -> Result<Option<bool>, DbError> {
        match self.value(column)? {
            Value::Null => Ok(None),
            Value::Boolean(value) => Ok(Some(*value)),
            Value::Integer(0) => Ok(Some(false)),
            Value::Integer(1) => Ok(Some(true)),
            other => Err(mismatch(column, "boolean", other)),
        }
    }

    /// A non-NULL money column stored as integer cents.
    pub fn cents(&self, column: &str) -> Result<Cents, DbError> {
        self.int(column).map(Cents)
    }

    /// A nullable money column stored as integer cents.
    pub fn opt_cents(&self, column: &str) -> Result<Option<Cents>, DbError> {
        Ok(self.opt_int(column)?.map(Cents))
    }
}

fn null(column: &str) -> DbError {
    DbError::Failed(format!("column `{column}` is NULL"))
}

fn mismatch(column: &str, expected: &str, found: &Value) -> DbError {
    let found = match found {
        Value::Null => "null",
        Value::Integer(_) => "integer",
        Value::Real(_) => "real",
        Value::Text(_) => "text",
        Value::Blob(_) => "blob",
        Value::Boolean(_) => "boolean",
    };
    DbError::Failed(format!("column `{column}` is {found}, expected {expected}"))
}

impl From<&str> for Value {
    fn from(value: &str) -> Self {
        Value::Text(value.to_owned())
    }
}

impl From<String> for Value {
    fn from(value: String) -> Self {
        Value::Text(value)
    }
}

impl From<&String> for Value {
    fn from(value: &String) -> Self {
        Value::Text(value.clone())
    }
}

impl From<i64> for Value {
    fn from(value: i64) -> Self {
        Value::Integer(value)
    }
}

impl From<i32> for Value {
    fn from(value: i32) -> Self {
        Value::Integer(value.into())
    }
}

impl From<u32> for Value {
    fn from(value: u32) -> Self {
        Value::Integer(value.into())
    }
}

impl From<f64> for Value {
    fn from(value: f64) -> Self {
        Value::Real(value)
    }
}

impl From<bool> for Value {
    fn from(value: bool) -> Self {
        Value::Boolean(value)
    }
}

impl From<Vec<u8>> for Value {
    fn from(value: Vec<u8>) -> Self {
        Value::Blob(value)
    }
}

impl From<Cents> for Value {
    fn from(value: Cents) -> Self {
        Value::Integer(value.0)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(value: Option<T>) -> Self {
        value.map_or(Value::Null, Into::into)
    }
}

impl<T: Clone + Into<Value>> From<&Option<T>> for Value {
    fn from(value: &Option<T>) -> Self {
        value.clone().map_or(Value::Null, Into::into)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn rows(columns: &[&str], rows: Vec<Vec<Value>>) -> Rows {
        Rows::from(crate::wit::db::Rows {
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows,
        })
    }

    fn one_row() -> Row {
        rows(
            &[
                "id",
                "Age",
                "nickname",
                "active",
                "flag",
                "wallet_cents",
                "score",
            ],
            vec![vec![
                Value::Text("c1".into()),
                Value::Integer(42),
                Value::Null,
                Value::Integer(1),
                Value::Boolean(false),
                Value::Integer(1250),
                Value::Integer(4),
            ]],
        )
        .single()
        .unwrap()
    }

    #[test]
    fn columns_are_read_by_name_ignoring_case() {
        let row = one_row();
        assert_eq!(row.text("id").unwrap(), "c1");
        assert_eq!(row.int("age").unwrap(), 42);
        assert_eq!(row.int("AGE").unwrap(), 42);
        assert_eq!(row.cents("wallet_cents").unwrap(), Cents(1250));
        assert_eq!(row.real("score").unwrap(), 4.0);
    }

    #[test]
    fn nulls_are_options_or_errors() {
        let row = one_row();
        assert_eq!(row.opt_text("nickname").unwrap(), None);
        assert_eq!(row.opt_int("nickname").unwrap(), None);
        assert!(matches!(row.text("nickname"), Err(DbError::Failed(_))));
    }

    #[test]
    fn booleans_accept_sqlite_integers() {
        let row = one_row();
        assert!(row.bool("active").unwrap());
        assert!(!row.bool("flag").unwrap());
        let two = rows(&["b"], vec![vec![Value::Integer(2)]])
            .single()
            .unwrap();
        assert!(two.bool("b").is_err());
    }

    #[test]
    fn wrong_types_and_missing_columns_are_failures() {
        let row = one_row();
        assert!(matches!(row.int("id"), Err(DbError::Failed(_))));
        assert!(matches!(row.text("missing"), Err(DbError::Failed(_))));
    }

    #[test]
    fn single_and_at_most_one_check_the_row_count() {
        let none = rows(&["a"], vec![]);
        assert!(none.clone().single().is_err());
        assert!(none.at_most_one().unwrap().is_none());
        let two = rows(&["a"], vec![vec![Value::Null], vec![Value::Null]]);
        assert!(two.clone().single().is_err());
        assert!(two.at_most_one().is_err());
    }

    #[test]
    fn rows_map_into_domain_values() {
        let set = rows(
            &["n"],
            vec![vec![Value::Integer(1)], vec![Value::Integer(2)]],
        );
        assert_eq!(set.len(), 2);
        let numbers = set.map(|row| row.int("n")).unwrap();
        assert_eq!(numbers, vec![1, 2]);
    }

    #[test]
    fn params_convert_each_argument() {
        let name = String::from("alice");
        let missing: Option<i64> = None;
        let params = params![
            "x",
            &name,
            name,
            7_i64,
            3_u32,
            true,
            Cents(5),
            missing,
            Some("y")
        ];
        assert_eq!(
            params,
            &[
                Value::Text("x".into()),
                Value::Text("alice".into()),
                Value::Text("alice".into()),
                Value::Integer(7),
                Value::Integer(3),
                Value::Boolean(true),
                Value::Integer(5),
                Value::Null,
                Value::Text("y".into()),
            ]
        );
        assert!(params![].is_empty());
    }
}
