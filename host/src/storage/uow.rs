//! The unit of work: one database transaction per HTTP request, shared by
//! every component the request touches (including cross-component calls),
//! begun lazily on the first statement and committed or rolled back once
//! when the request ends, by the one helper every caller goes through
//! ([`crate::runtime::state::RequestScope::run`]).
//!
//! On SQLite the reads before a request's first write run in autocommit
//! mode (no `BEGIN`/`COMMIT` round trips; each statement sees what was
//! committed when it started, as under PostgreSQL's READ COMMITTED), and the
//! transaction begins `BEGIN IMMEDIATE` at the first write, after the unit of
//! work's turn at the database's writer connection (`sqlite`): see
//! [`UnitOfWork::ensure_open`].
//!
//! Each component statement runs within its caller's [`Bounds`]. On
//! PostgreSQL the deadline becomes `SET LOCAL statement_timeout`, sent in the
//! same round trip as the role switch or the savepoint when there is one,
//! and renewed only when the timeout in force would let the statement run
//! noticeably past the deadline (or cut it noticeably short): see
//! [`timeout_to_set`]. A statement stopped at its deadline leaves the
//! transaction unusable (SQLite may have rolled it back, PostgreSQL has
//! aborted it), so the unit of work refuses further statements and will
//! only roll back.

use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use super::{
    Database, Intent, Tx,
    sqlite::{BeginWriteError, CommitWithError},
    values::{self, Bounds},
};
use crate::bindings::db::{DbError, Rows, Value};

/// Below this, a `statement_timeout` left by a component statement is
/// lifted before the host commits a transaction that wrote (one more round
/// trip): host-owned SQL is not bound by a component's deadline, and a
/// timeout firing during COMMIT would report a failure for a transaction
/// that did commit. A timeout this long leaves COMMIT ample time.
const HOST_STATEMENT_ALLOWANCE: Duration = Duration::from_secs(1);

/// A request's transaction. Statements from any component of the request
/// run one at a time on it, in the order the components issue them.
#[derive(Debug)]
pub struct UnitOfWork {
    db: Database,
    intent: Intent,
    state: Mutex<State>,
    /// Host rows to write just before the commit.
    at_commit: std::sync::Mutex<Vec<HostRow>>,
}

/// Who runs a component statement, whether it may write, and its bounds.
#[derive(Debug, Clone)]
pub struct Statement {
    /// The component issuing it (on PostgreSQL, its role runs it).
    pub component: String,
    /// Whether the checker found a write in it.
    pub writes: bool,
    /// The caller's deadline and what its result may cost.
    pub bounds: Bounds,
}

#[derive(Debug)]
enum State {
    /// No statement has run yet: no connection is held.
    NotStarted,
    /// The transaction is open.
    Open(Open),
    /// Commit or rollback happened; further statements are refused.
    Finished,
}

#[derive(Debug)]
struct Open {
    tx: Tx,
    /// On PostgreSQL, the component whose role is set (`None`: the
    /// session user's).
    role: Option<String>,
    /// On PostgreSQL, the `statement_timeout` set in this transaction, in
    /// milliseconds (`None`: the server's default, none).
    timeout_ms: Option<u64>,
    /// A statement was stopped at its deadline: only a rollback is left.
    cut_off: bool,
    /// A statement that may write ran (or tried to).
    wrote: bool,
    /// On PostgreSQL, the server process running the transaction, asked
    /// for with the first statement: whom to cancel if a statement's
    /// future is dropped while the server still works on it.
    backend_pid: Option<i32>,
    /// On PostgreSQL, the savepoint of a write that succeeded is still to
    /// be released: with the next statement's script (before anything
    /// else in it), with the host's, or by the commit. Releasing it at
    /// once cost a round trip per write, with the write's row locks held.
    savepoint_to_release: bool,
}

/// Releases the savepoint that guards each write on PostgreSQL.
const RELEASE_SAVEPOINT: &str = "RELEASE SAVEPOINT souk_statement;";

/// A unit of work that was to commit failed to: the database refused or
/// broke off the commit, or a statement of it had been stopped at its
/// deadline (then it was rolled back instead).
#[derive(Debug, thiserror::Error)]
pub enum CommitFailed {
    /// The database refused or broke off the commit (or the rollback that
    /// replaced it).
    #[error("the unit of work did not commit")]
    Database(#[source] sqlx::Error),
    /// The rows appended for the commit could not be written: nothing was
    /// committed.
    #[error("the unit of work did not commit")]
    HostRows(#[source] HostRowsFailed),
}

/// Why the rows appended for a commit could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the host's rows of the unit of work: {0:?}")]
pub struct HostRowsFailed(DbError);

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
            at_commit: std::sync::Mutex::new(Vec::new()),
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
        let open = self.prepare(&mut state, statement).await?;
        let watch = CancelOnDrop::arm(&self.db, open.backend_pid);
        let result = values::query_within(&mut open.tx, sql, params, &statement.bounds).await;
        watch.disarm();
        finish_statement(open, statement, result).await
    }

    /// Run a (checked) component statement; returns how many rows it changed.
    pub async fn execute(
        &self,
        statement: &Statement,
        sql: &str,
        params: &[Value],
    ) -> Result<u64, DbError> {
        let mut state = self.state.lock().await;
        let open = self.prepare(&mut state, statement).await?;
        let watch = CancelOnDrop::arm(&self.db, open.backend_pid);
        let result = values::execute_within(&mut open.tx, sql, params, &statement.bounds).await;
        watch.disarm();
        finish_statement(open, statement, result).await
    }

    /// Open the transaction if needed and, on PostgreSQL, switch to the
    /// component's role, bound the statement by its deadline and guard a
    /// write with a savepoint, all in one round trip (none if nothing
    /// changed and the statement only reads).
    async fn prepare<'s>(
        &self,
        state: &'s mut State,
        statement: &Statement,
    ) -> Result<&'s mut Open, DbError> {
        let Some(remaining) = statement
            .bounds
            .deadline
            .checked_duration_since(Instant::now())
            .filter(|remaining| !remaining.is_zero())
        else {
            return Err(values::cut_off());
        };
        // Waiting for the write turn counts against the deadline.
        self.ensure_open(state, Some(remaining), statement.writes)
            .await?;
        let State::Open(open) = state else {
            return Err(DbError::Unavailable(
                "the request's transaction has already ended".into(),
            ));
        };
        open.wrote |= statement.writes;
        if open.cut_off {
            return Err(DbError::Unavailable(
                "an earlier statement of this request was stopped at its deadline; \
                 the request's transaction can only be rolled back"
                    .into(),
            ));
        }
        if let Tx::Postgres(_) = open.tx {
            let mut script = String::new();
            // First: what follows must not be inside the last write's
            // savepoint, or rolling back to it would undo this.
            if open.savepoint_to_release {
                script.push_str(RELEASE_SAVEPOINT);
            }
            let switch_role = open.role.as_deref() != Some(statement.component.as_str());
            if switch_role {
                script.push_str(&format!(
                    "SET LOCAL ROLE {};",
                    component_role(&statement.component)
                ));
            }
            let timeout = timeout_to_set(open.timeout_ms, remaining);
            if let Some(ms) = timeout {
                // Before the savepoint: a rollback to it must not undo this.
                script.push_str(&format!("SET LOCAL statement_timeout = {ms};"));
            }
            let ask_pid = open.backend_pid.is_none();
            if ask_pid {
                script.push_str("SELECT pg_backend_pid();");
            }
            if statement.writes {
                script.push_str("SAVEPOINT souk_statement");
            }
            if ask_pid {
                open.backend_pid = Some(backend_pid(&mut open.tx, &script).await?);
            } else if !script.is_empty() {
                Database::run_script(&mut open.tx, &script)
                    .await
                    .map_err(values::db_error)?;
            }
            open.savepoint_to_release = false;
            if switch_role {
                open.role = Some(statement.component.clone());
            }
            if timeout.is_some() {
                open.timeout_ms = timeout;
            }
        }
        Ok(open)
    }

    /// Make sure `state` is open for a statement that `writes` or not: on
    /// PostgreSQL, the transaction; on SQLite, a connection in autocommit
    /// mode for reads, and a transaction from the first write on.
    ///
    /// On SQLite the transaction is begun only for the first write, with
    /// `BEGIN IMMEDIATE` on the database's writer connection, after this
    /// unit of work's turn at it ([`super::sqlite`]): the write lock is held
    /// from the first write to the end of the request, not from its first
    /// read (authentication, lookups), so writers queue for less time, in
    /// arrival order, and never poll SQLite's busy handler against each
    /// other. The reads before it ran each in its own snapshot, as every
    /// statement does under PostgreSQL's READ COMMITTED; the transaction
    /// holds no earlier read, so it cannot fail with SQLITE_BUSY_SNAPSHOT.
    /// The autocommit connection goes back before the wait, so queued
    /// writers hold no reader. The wait is bounded by `within` (the
    /// statement's remaining deadline) or, for host SQL, by
    /// [`crate::config::DATABASE_ACQUIRE_TIMEOUT`].
    async fn ensure_open(
        &self,
        state: &mut State,
        within: Option<Duration>,
        writes: bool,
    ) -> Result<(), DbError> {
        let upgrade = match &*state {
            State::NotStarted => true,
            State::Open(open) => writes && !open.cut_off && matches!(open.tx, Tx::SqliteReader(_)),
            State::Finished => false,
        };
        if !upgrade {
            return Ok(());
        }
        // An autocommit connection goes back for reuse before waiting.
        if let State::Open(open) = std::mem::replace(state, State::NotStarted) {
            // Nothing to commit: this only gives the connection back.
            open.tx.commit().await.map_err(values::db_error)?;
        }
        let tx = match (&self.db, writes) {
            (Database::Sqlite(sqlite), false) => sqlite
                .reader(crate::config::DATABASE_ACQUIRE_TIMEOUT)
                .await
                .map(Tx::SqliteReader)
                .map_err(values::db_error)?,
            (Database::Sqlite(_), true) => {
                let wait = within.unwrap_or(crate::config::DATABASE_ACQUIRE_TIMEOUT);
                self.db
                    .begin_write(wait)
                    .await
                    .map_err(|error| match error {
                        // Waiting for the turn counts against the
                        // statement's deadline: running out is its cut-off.
                        BeginWriteError::TimedOut if within.is_some() => values::cut_off(),
                        BeginWriteError::TimedOut => DbError::Unavailable(error.to_string()),
                        BeginWriteError::Database(error) => values::db_error(error),
                    })?
            }
            (Database::Postgres(_), _) => self.begin_tx(self.intent).await?,
        };
        *state = State::Open(Open {
            tx,
            role: None,
            timeout_ms: None,
            cut_off: false,
            wrote: false,
            backend_pid: None,
            savepoint_to_release: false,
        });
        Ok(())
    }

    async fn begin_tx(&self, intent: Intent) -> Result<Tx, DbError> {
        self.db.begin(intent).await.map_err(values::db_error)
    }

    /// Run a statement the host wrote (the event outbox, the audit log) in
    /// the request's transaction, so it commits or rolls back with the
    /// request's own changes. It runs as the session user, not as any
    /// component's role, and is not a component's statement: never pass it
    /// SQL a component supplied.
    pub async fn run_host(&self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        let mut state = self.state.lock().await;
        let open = self.open_for_host(&mut state).await?;
        values::execute(&mut open.tx, sql, params).await
    }

    /// Append `row` to a host table when this unit of work commits, in its
    /// transaction, just before the commit; nothing if it rolls back. The
    /// rows of a request are written together, one statement per table
    /// (a purchase's three events and three audit entries: two statements,
    /// not six round trips to the database).
    pub fn append_at_commit(&self, row: HostRow) {
        super::lock_unpoisoned(&self.at_commit).push(row);
    }

    /// The open transaction, ready for host SQL: begun for writing if it
    /// was not, running as the session user with no statement timeout
    /// (host SQL is not bound by the last component statement's deadline).
    async fn open_for_host<'s>(&self, state: &'s mut State) -> Result<&'s mut Open, DbError> {
        self.ensure_open(state, None, true).await?;
        let State::Open(open) = state else {
            return Err(DbError::Unavailable(
                "the request's transaction has already ended".into(),
            ));
        };
        if open.cut_off {
            return Err(values::cut_off());
        }
        open.wrote = true;
        let mut reset = String::new();
        if open.savepoint_to_release {
            reset.push_str(RELEASE_SAVEPOINT);
        }
        if open.role.is_some() {
            reset.push_str("SET LOCAL ROLE NONE;");
        }
        if open.timeout_ms.is_some() {
            reset.push_str("SET LOCAL statement_timeout = 0;");
        }
        if !reset.is_empty() {
            Database::run_script(&mut open.tx, &reset)
                .await
                .map_err(values::db_error)?;
            open.savepoint_to_release = false;
            open.role = None;
            open.timeout_ms = None;
        }
        Ok(open)
    }

    /// Give up a SQLite write lock the unit of work holds but has not used:
    /// its transaction (begun `BEGIN IMMEDIATE`, which takes the lock) is
    /// rolled back if no statement that may write ran in it, and the next
    /// statement begins a new one. Called before slow host work (password
    /// hashing) so other writers are not kept waiting meanwhile. Reads
    /// before and after then see separate snapshots, which is the price.
    /// Does nothing on PostgreSQL, where beginning takes no write lock.
    /// Since SQLite transactions begin at the first write (see
    /// [`Self::ensure_open`]), a unit of work that has not written holds no
    /// lock to give up either; this stays as the guarantee's second line.
    pub async fn release_unwritten(&self) {
        let mut state = self.state.lock().await;
        let releasable = matches!(
            &*state,
            State::Open(open)
                if matches!(open.tx, Tx::SqliteWrite(_))
                    && self.intent == Intent::Write
                    && !open.wrote
                    && !open.cut_off
        );
        if !releasable {
            return;
        }
        if let State::Open(open) = std::mem::replace(&mut *state, State::NotStarted)
            && let Err(error) = open.tx.rollback().await
        {
            tracing::warn!("cannot release an unused write transaction: {error}");
        }
    }

    /// End the unit of work. Does nothing if no statement ever ran. A
    /// commit after a statement was stopped at its deadline rolls back and
    /// fails instead: part of the request's work is gone. To commit, the
    /// rows appended for the commit ([`Self::append_at_commit`]) are
    /// written first, in the transaction; if they cannot be, nothing
    /// commits.
    pub async fn finish(&self, outcome: Outcome) -> Result<(), CommitFailed> {
        let mut state = self.state.lock().await;
        let rows = match outcome {
            Outcome::Commit => std::mem::take(&mut *super::lock_unpoisoned(&self.at_commit)),
            Outcome::Rollback => Vec::new(),
        };
        if !rows.is_empty()
            && let Err(error) = self.open_for_host(&mut state).await
        {
            return Err(match std::mem::replace(&mut *state, State::Finished) {
                State::Open(open) => host_rows_failed(open.tx, error).await,
                State::NotStarted | State::Finished => {
                    CommitFailed::HostRows(HostRowsFailed(error))
                }
            });
        }
        let open = match std::mem::replace(&mut *state, State::Finished) {
            State::Open(open) => open,
            State::NotStarted | State::Finished => return Ok(()),
        };
        if open.cut_off {
            let rolled_back = open.tx.rollback().await;
            if outcome == Outcome::Commit {
                return Err(CommitFailed::Database(sqlx::Error::InvalidArgument(
                    "not committed: a statement of the request was stopped at its \
                     deadline, so the transaction was rolled back"
                        .into(),
                )));
            }
            return rolled_back.map_err(CommitFailed::Database);
        }
        if outcome == Outcome::Rollback {
            return open.tx.rollback().await.map_err(CommitFailed::Database);
        }
        let host_rows = HostRow::inserts(&rows);
        match open.tx {
            // The rows and the commit on this thread, inside the writer's
            // turn that every other writer waits for.
            Tx::SqliteWrite(txn) => match txn.commit_with(&host_rows).await {
                Ok(()) => Ok(()),
                Err(CommitWithError::Statement(txn, error)) => {
                    Err(host_rows_failed(Tx::SqliteWrite(txn), values::db_error(error)).await)
                }
                Err(CommitWithError::Commit(error)) => Err(CommitFailed::Database(error)),
            },
            mut tx => {
                for (sql, params) in &host_rows {
                    if let Err(error) = values::execute(&mut tx, sql, params).await {
                        return Err(host_rows_failed(tx, error).await);
                    }
                }
                let allowance = HOST_STATEMENT_ALLOWANCE.as_millis();
                if open.wrote && open.timeout_ms.is_some_and(|ms| u128::from(ms) < allowance) {
                    Database::run_script(&mut tx, "SET LOCAL statement_timeout = 0")
                        .await
                        .map_err(CommitFailed::Database)?;
                }
                tx.commit().await.map_err(CommitFailed::Database)
            }
        }
    }
}

/// Roll `tx` back after the rows for its commit could not be written, and
/// say so.
async fn host_rows_failed(tx: Tx, error: DbError) -> CommitFailed {
    if let Err(rollback) = tx.rollback().await {
        tracing::warn!("cannot roll back a unit of work: {rollback}");
    }
    CommitFailed::HostRows(HostRowsFailed(error))
}

/// A row the host appends to one of its own tables (the event outbox, the
/// audit log), written by [`UnitOfWork::append_at_commit`] or on its own.
#[derive(Debug, Clone, PartialEq)]
pub struct HostRow {
    /// `table (column, ...)`, a host-owned literal: rows with the same
    /// target are written in one statement.
    pub into: &'static str,
    /// One value per column, bound as parameters.
    pub values: Vec<Value>,
}

impl HostRow {
    /// Most rows one statement inserts: far below either backend's limit
    /// on parameters (SQLite 32,766, PostgreSQL 65,535) for host tables.
    const ROWS_PER_STATEMENT: usize = 100;

    /// The statements that insert `rows`: one per target table (in the
    /// order each first appears) and per [`Self::ROWS_PER_STATEMENT`], with
    /// the rows' values as numbered parameters.
    pub fn inserts(rows: &[HostRow]) -> Vec<(String, Vec<Value>)> {
        let mut targets: Vec<&'static str> = Vec::new();
        for row in rows {
            if !targets.contains(&row.into) {
                targets.push(row.into);
            }
        }
        let mut statements = Vec::new();
        for into in targets {
            let same: Vec<&HostRow> = rows.iter().filter(|row| row.into == into).collect();
            for chunk in same.chunks(Self::ROWS_PER_STATEMENT) {
                let mut sql = format!("INSERT INTO {into} VALUES ");
                let mut params = Vec::new();
                for (index, row) in chunk.iter().enumerate() {
                    sql.push_str(if index == 0 { "(" } else { ", (" });
                    for column in 0..row.values.len() {
                        if column > 0 {
                            sql.push_str(", ");
                        }
                        sql.push_str(&format!("${}", params.len() + column + 1));
                    }
                    sql.push(')');
                    params.extend(row.values.iter().cloned());
                }
                statements.push((sql, params));
            }
        }
        statements
    }
}

/// Runs `script` (host-owned; it contains `SELECT pg_backend_pid()`) and
/// returns the pid it reports.
async fn backend_pid(tx: &mut Tx, script: &str) -> Result<i32, DbError> {
    let Tx::Postgres(tx) = tx else {
        return Err(DbError::Failed(
            "a backend pid exists only on PostgreSQL".into(),
        ));
    };
    let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(script.to_owned()))
        .fetch_all(&mut **tx)
        .await
        .map_err(values::db_error)?;
    rows.iter()
        .find_map(|row| sqlx::Row::try_get::<i32, _>(row, 0).ok())
        .ok_or_else(|| DbError::Failed("the server did not report its process id".into()))
}

/// While armed, a dropped statement future (the client went away and the
/// request was dropped) makes PostgreSQL cancel the statement its server
/// process is running, from another connection of the pool: the server
/// would otherwise keep working on it until `statement_timeout`. SQLite
/// needs no such thing: its progress handler sees the drop (values.rs).
///
/// The cancel is sent a moment after the drop; if the statement ended
/// meanwhile, `pg_cancel_backend` finds the process idle (or, in a rare
/// race, running the dropped transaction's rollback or a later statement,
/// which then fails and is retried by its client like any cancelled one).
struct CancelOnDrop {
    target: Option<(sqlx::PgPool, i32)>,
}

impl CancelOnDrop {
    fn arm(db: &Database, backend_pid: Option<i32>) -> Self {
        let target = match (db, backend_pid) {
            (Database::Postgres(pool), Some(pid)) => Some((pool.clone(), pid)),
            _ => None,
        };
        Self { target }
    }

    fn disarm(mut self) {
        self.target = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let Some((pool, pid)) = self.target.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let cancelled = sqlx::query("SELECT pg_cancel_backend($1)")
                .bind(pid)
                .execute(&pool)
                .await;
            if let Err(error) = cancelled {
                tracing::warn!(pid, "cannot cancel an abandoned statement: {error}");
            }
        });
    }
}

/// The `statement_timeout` (ms) to set before a statement that must end
/// within `remaining`, or `None` if the one in force (`current`) is close
/// enough. PostgreSQL counts the timeout from each statement's start, so a
/// value set earlier lets a later statement run past the deadline by the
/// time elapsed since; and a value set by another component of the request
/// may be far shorter or longer. Close enough means within an eighth of the
/// remaining time (at least 10 ms): renewing costs a round trip, so a
/// request renews it a handful of times over its deadline, not per
/// statement, and a statement overruns its deadline by at most that much.
fn timeout_to_set(current: Option<u64>, remaining: Duration) -> Option<u64> {
    // Rounded up, and at least 1: 0 would mean "no timeout".
    let wanted = u64::try_from(remaining.as_micros().div_ceil(1000))
        .unwrap_or(u64::MAX)
        .max(1);
    let slack = (wanted / 8).max(10);
    match current {
        Some(ms) if ms <= wanted.saturating_add(slack) && ms.saturating_add(slack) >= wanted => {
            None
        }
        _ => Some(wanted),
    }
}

/// After a component statement: on PostgreSQL, end a write's savepoint
/// (keep it on success, undo just that statement on failure, so the
/// transaction stays usable exactly as on SQLite, where a failed statement
/// never aborts the transaction); and remember a statement stopped at its
/// deadline, which leaves the transaction fit only for a rollback.
async fn finish_statement<T>(
    open: &mut Open,
    statement: &Statement,
    result: Result<T, DbError>,
) -> Result<T, DbError> {
    if result.as_ref().is_err_and(values::is_cut_off) {
        open.cut_off = true;
        return result;
    }
    // On SQLite a failed statement may have ended the whole transaction
    // (an interrupt, e.g. of a statement whose result went past its limits
    // while the host stopped reading it). Every later statement would then
    // commit on its own: the unit of work may only roll back.
    if result.is_err()
        && let Tx::SqliteWrite(tx) = &open.tx
        && tx.ended_by_sqlite()
    {
        open.cut_off = true;
        return Err(DbError::Unavailable(
            "the database ended the request's transaction after a failed statement; \
             it can only be rolled back"
                .into(),
        ));
    }
    if statement.writes && matches!(open.tx, Tx::Postgres(_)) {
        if result.is_ok() {
            // Released with whatever the transaction runs next.
            open.savepoint_to_release = true;
        } else {
            // Released too: savepoints left behind would pile up as
            // subtransactions, which slows every session on the server.
            Database::run_script(
                &mut open.tx,
                "ROLLBACK TO SAVEPOINT souk_statement; RELEASE SAVEPOINT souk_statement",
            )
            .await
            .map_err(values::db_error)?;
        }
    }
    result
}

/// The PostgreSQL role a component's statements run as. Component names
/// are validated (`[a-z][a-z0-9_]*`), so the name is a safe identifier.
pub fn component_role(component: &str) -> String {
    format!("souk_c_{component}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn write() -> Statement {
        Statement {
            component: "test".into(),
            writes: true,
            bounds: Bounds {
                deadline: Instant::now() + Duration::from_secs(60),
                result: values::ResultLimits::UNLIMITED,
                trusted: true,
            },
        }
    }

    /// SQLite rolls a whole transaction back after some failed statements
    /// (an interrupt, a full disk), and the writer's connection is closed,
    /// rolling back, when a statement is abandoned on it: the unit of work
    /// must notice, or every later statement of the request would commit
    /// on its own.
    #[tokio::test]
    async fn a_failed_statement_that_ended_the_sqlite_transaction_leaves_only_a_rollback() {
        let (_dir, _, sqlite) = super::super::sqlite::tests::fresh_file().await;
        let db = Database::Sqlite(sqlite);
        let count = async |db: &Database| {
            let uow = UnitOfWork::new(db.clone(), Intent::Read);
            let statement = Statement {
                writes: false,
                ..write()
            };
            let rows = uow.query(&statement, "SELECT count(*) FROM t", &[]).await;
            rows.unwrap_or_else(|e| panic!("{e:?}")).rows[0][0].clone()
        };
        let commit_one = async |db: &Database, sql: &str| {
            let uow = UnitOfWork::new(db.clone(), Intent::Write);
            uow.execute(&write(), sql, &[])
                .await
                .unwrap_or_else(|e| panic!("{e:?}"));
            uow.finish(Outcome::Commit)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        };
        commit_one(&db, "CREATE TABLE t (n INTEGER)").await;

        let uow = UnitOfWork::new(db.clone(), Intent::Write);
        uow.execute(&write(), "INSERT INTO t VALUES (1)", &[])
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        // An extension's statement, on a blocking thread, whose caller
        // goes away: it is stopped and its connection closed.
        let mut extension = write();
        extension.bounds.trusted = false;
        let runaway = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) \
                       SELECT count(*) FROM r";
        let abandoned = tokio::time::timeout(50 * MS, uow.query(&extension, runaway, &[])).await;
        assert!(abandoned.is_err(), "{abandoned:?}");
        let later = uow.execute(&write(), "INSERT INTO t VALUES (2)", &[]).await;
        assert!(
            matches!(&later, Err(DbError::Unavailable(m)) if m.contains("rolled back")),
            "{later:?}"
        );
        let again = uow.execute(&write(), "INSERT INTO t VALUES (3)", &[]).await;
        assert!(again.is_err(), "{again:?}");
        assert!(uow.finish(Outcome::Commit).await.is_err());
        assert_eq!(count(&db).await, Value::Integer(0));

        // The writer is fine afterwards.
        commit_one(&db, "INSERT INTO t VALUES (4)").await;
        assert_eq!(count(&db).await, Value::Integer(1));
    }

    /// Host rows that cannot be written take the request's own writes
    /// with them, and the writer serves the next request.
    #[tokio::test]
    async fn host_rows_that_fail_commit_nothing() {
        let (_dir, _, sqlite) = super::super::sqlite::tests::fresh_file().await;
        let pool = sqlite.pool.clone();
        let db = Database::Sqlite(sqlite);
        let commit = async |rows: Vec<HostRow>| {
            let uow = UnitOfWork::new(db.clone(), Intent::Write);
            uow.execute(&write(), "CREATE TABLE IF NOT EXISTS t (n INTEGER)", &[])
                .await
                .unwrap_or_else(|e| panic!("{e:?}"));
            uow.execute(&write(), "INSERT INTO t VALUES (1)", &[])
                .await
                .unwrap_or_else(|e| panic!("{e:?}"));
            for row in rows {
                uow.append_at_commit(row);
            }
            uow.finish(Outcome::Commit).await
        };
        let failed = commit(vec![row("t (n)", &[2]), row("missing (n)", &[3])]).await;
        assert!(
            matches!(failed, Err(CommitFailed::HostRows(_))),
            "{failed:?}"
        );
        let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM sqlite_master")
            .fetch_one(&pool)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(tables, 0, "the table the request created is gone too");

        commit(vec![row("t (n)", &[2])])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let ns: Vec<i64> = sqlx::query_scalar("SELECT n FROM t ORDER BY n")
            .fetch_all(&pool)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ns, vec![1, 2]);
    }

    fn row(into: &'static str, values: &[i64]) -> HostRow {
        HostRow {
            into,
            values: values.iter().map(|&v| Value::Integer(v)).collect(),
        }
    }

    #[test]
    fn host_rows_are_written_one_statement_per_table_in_first_seen_order() {
        let rows = [
            row("a (x, y)", &[1, 2]),
            row("b (z)", &[3]),
            row("a (x, y)", &[4, 5]),
        ];
        let statements = HostRow::inserts(&rows);
        let sql: Vec<&str> = statements.iter().map(|(sql, _)| sql.as_str()).collect();
        assert_eq!(
            sql,
            [
                "INSERT INTO a (x, y) VALUES ($1, $2), ($3, $4)",
                "INSERT INTO b (z) VALUES ($1)"
            ]
        );
        assert_eq!(
            statements[0].1,
            [1, 2, 4, 5].map(Value::Integer).to_vec(),
            "values in row order"
        );
        assert!(HostRow::inserts(&[]).is_empty());
    }

    #[test]
    fn many_host_rows_are_split_into_bounded_statements() {
        let rows: Vec<HostRow> = (0..250).map(|v| row("a (x)", &[v])).collect();
        let statements = HostRow::inserts(&rows);
        let sizes: Vec<usize> = statements.iter().map(|(_, params)| params.len()).collect();
        assert_eq!(sizes, [100, 100, 50]);
        assert!(statements[2].0.ends_with("($50)"));
    }

    #[test]
    fn a_timeout_is_set_when_none_is_in_force() {
        assert_eq!(timeout_to_set(None, 250 * MS), Some(250));
        // Never 0, which would mean no timeout at all.
        assert_eq!(timeout_to_set(None, Duration::from_micros(10)), Some(1));
        assert_eq!(timeout_to_set(None, Duration::from_micros(1500)), Some(2));
    }

    #[test]
    fn a_timeout_close_to_the_remaining_time_is_kept() {
        assert_eq!(timeout_to_set(Some(5000), 4700 * MS), None);
        assert_eq!(timeout_to_set(Some(250), 245 * MS), None);
        assert_eq!(timeout_to_set(Some(250), 255 * MS), None);
    }

    #[test]
    fn a_timeout_that_would_overrun_the_deadline_is_renewed() {
        // Set at the start of a 5 s call, 2 s ago.
        assert_eq!(timeout_to_set(Some(5000), 3000 * MS), Some(3000));
        // Set by a caller with a long deadline, now in a 250 ms callee.
        assert_eq!(timeout_to_set(Some(5000), 240 * MS), Some(240));
    }

    #[test]
    fn a_timeout_far_shorter_than_the_remaining_time_is_renewed() {
        // Set by a 250 ms callee, now back in its 5 s caller.
        assert_eq!(timeout_to_set(Some(240), 4600 * MS), Some(4600));
    }
}
