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

#[derive(Debug)]
enum State {
    /// No statement has run yet: no connection is held.
    NotStarted,
    /// The transaction is open.
    Open(Tx),
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

    /// Run a (checked) statement that returns rows.
    pub async fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, DbError> {
        let mut state = self.state.lock().await;
        let tx = self.open(&mut state).await?;
        values::query(tx, sql, params).await
    }

    /// Run a (checked) statement and return how many rows it changed.
    pub async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        let mut state = self.state.lock().await;
        let tx = self.open(&mut state).await?;
        values::execute(tx, sql, params).await
    }

    /// End the unit of work. Does nothing if no statement ever ran.
    pub async fn finish(&self, outcome: Outcome) -> Result<(), sqlx::Error> {
        let mut state = self.state.lock().await;
        match std::mem::replace(&mut *state, State::Finished) {
            State::Open(tx) => match outcome {
                Outcome::Commit => tx.commit().await,
                Outcome::Rollback => tx.rollback().await,
            },
            State::NotStarted | State::Finished => Ok(()),
        }
    }

    async fn open<'s>(&self, state: &'s mut State) -> Result<&'s mut Tx, DbError> {
        if matches!(state, State::NotStarted) {
            let tx = self.db.begin(self.intent).await.map_err(values::db_error)?;
            *state = State::Open(tx);
        }
        match state {
            State::Open(tx) => Ok(tx),
            State::NotStarted | State::Finished => Err(DbError::Unavailable(
                "the request's transaction has already ended".into(),
            )),
        }
    }
}
