//! The unit of work: one database transaction per HTTP request, shared by
//! every component the request touches (including cross-component calls),
//! begun lazily on the first statement and committed or rolled back once by
//! the edge when the request ends.

use tokio::sync::Mutex;

use super::{Database, Intent, Tx, values};
use crate::bindings::db::{DbError, Rows, Value};

/// A request's transaction. Statements from any component of the request
/// run one at a time on it, in the order the components issue them.
#[derive(Debug)]
pub struct UnitOfWork {
    db: Database,
    intent: Intent,
    state: Mutex<State>,
}

/// Who runs a component statement, and whether it may write.
#[derive(Debug, Clone)]
pub struct Statement {
    /// The component issuing it (on PostgreSQL, its role runs it).
    pub component: String,
    /// Whether the checker found a write in it.
    pub writes: bool,
}

#[derive(Debug)]
enum State {
    /// No statement has run yet: no connection is held.
    NotStarted,
    /// The transaction is open; on PostgreSQL, `role` is the component
    /// whose role is set for it (`None`: the session user's).
    Open { tx: Tx, role: Option<String> },
    /// Commit or rollback happened; further statements are refused.
    Finished,
}

/// How a unit of work ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Make every write of the request durable.
    Commit,
    /// Undo every write of the request.
    Rollback,
}

impl UnitOfWork {
    /// A unit of work that will begin its transaction for `intent`.
    pub fn new(db: Database, intent: Intent) -> Self {
        Self {
            db,
            intent,
            state: Mutex::new(State::NotStarted),
        }
    }

    /// The dialect statements will run on.
    pub fn dialect(&self) -> super::Dialect {
        self.db.dialect()
    }

    /// Run a (checked) component statement that returns rows.
    pub async fn query(
        &self,
        statement: &Statement,
        sql: &str,
        params: &[Value],
    ) -> Result<Rows, DbError> {
        let mut state = self.state.lock().await;
        let tx = self.prepare(&mut state, statement).await?;
        let result = values::query(tx, sql, params).await;
        finish_statement(tx, statement, result).await
    }

    /// Run a (checked) component statement; returns how many rows it changed.
    pub async fn execute(
        &self,
        statement: &Statement,
        sql: &str,
        params: &[Value],
    ) -> Result<u64, DbError> {
        let mut state = self.state.lock().await;
        let tx = self.prepare(&mut state, statement).await?;
        let result = values::execute(tx, sql, params).await;
        finish_statement(tx, statement, result).await
    }

    /// Open the transaction if needed and, on PostgreSQL, switch to the
    /// component's role and guard a write with a savepoint.
    async fn prepare<'s>(
        &self,
        state: &'s mut State,
        statement: &Statement,
    ) -> Result<&'s mut Tx, DbError> {
        if matches!(state, State::NotStarted) {
            let tx = self.db.begin(self.intent).await.map_err(values::db_error)?;
            *state = State::Open { tx, role: None };
        }
        let State::Open { tx, role } = state else {
            return Err(DbError::Unavailable(
                "the request's transaction has already ended".into(),
            ));
        };
        if let Tx::Postgres(_) = tx {
            if role.as_deref() != Some(statement.component.as_str()) {
                let set = format!("SET LOCAL ROLE {}", component_role(&statement.component));
                Database::run_script(tx, &set)
                    .await
                    .map_err(values::db_error)?;
                *role = Some(statement.component.clone());
            }
            if statement.writes {
                Database::run_script(tx, "SAVEPOINT souk_statement")
                    .await
                    .map_err(values::db_error)?;
            }
        }
        Ok(tx)
    }

    /// End the unit of work. Does nothing if no statement ever ran.
    pub async fn finish(&self, outcome: Outcome) -> Result<(), sqlx::Error> {
        let mut state = self.state.lock().await;
        match std::mem::replace(&mut *state, State::Finished) {
            State::Open { tx, .. } => match outcome {
                Outcome::Commit => tx.commit().await,
                Outcome::Rollback => tx.rollback().await,
            },
            State::NotStarted | State::Finished => Ok(()),
        }
    }
}

/// On PostgreSQL, end a write's savepoint: keep it on success, undo just
/// that statement on failure, so the transaction stays usable exactly as on
/// SQLite (where a failed statement never aborts the transaction).
async fn finish_statement<T>(
    tx: &mut Tx,
    statement: &Statement,
    result: Result<T, DbError>,
) -> Result<T, DbError> {
    if statement.writes && matches!(tx, Tx::Postgres(_)) {
        let end = if result.is_ok() {
            "RELEASE SAVEPOINT souk_statement"
        } else {
            "ROLLBACK TO SAVEPOINT souk_statement"
        };
        Database::run_script(tx, end)
            .await
            .map_err(values::db_error)?;
    }
    result
}

/// The PostgreSQL role a component's statements run as. Component names
/// are validated (`[a-z][a-z0-9_]*`), so the name is a safe identifier.
pub fn component_role(component: &str) -> String {
    format!("souk_c_{component}")
}
