//! The `db` capability: statements from a component run in the request's
//! unit of work after the statement check has accepted them. A refusal is
//! returned to the component (never a trap), logged and counted.
//!
//! Each statement carries the calling store's bounds (see
//! [`crate::storage::values`]): its deadline, and result limits derived from
//! the component's grant.

use std::sync::Arc;

use crate::{
    bindings::db::{DbError, Rows, Value},
    runtime::core_services::is_core_service,
    runtime::state::{RequestScope, StoreState},
    storage::{
        sql_check::StatementKind,
        uow::Statement,
        values::{self, Bounds, ResultLimits},
    },
};

/// Longest statement text accepted.
const MAX_SQL_BYTES: usize = 16 * 1024;
/// Most parameters accepted in one statement.
const MAX_PARAMS: usize = 256;

impl StoreState {
    /// Check `sql` for this component and return the request scope it runs
    /// in; on refusal, log and count it.
    fn admit(
        &self,
        sql: &str,
        params: &[Value],
    ) -> Result<(Arc<RequestScope>, Statement), DbError> {
        let Some(scope) = &self.scope else {
            return Err(DbError::Unavailable(
                "there is no database access outside a request".into(),
            ));
        };
        let verdict = if sql.len() > MAX_SQL_BYTES {
            Err(format!("statement is longer than {MAX_SQL_BYTES} bytes"))
        } else if params.len() > MAX_PARAMS {
            Err(format!("statement has more than {MAX_PARAMS} parameters"))
        } else {
            values::check_params(params)
                .and_then(|()| self.access.check_statement(scope.uow.dialect(), sql))
        };
        let statement = |kind| Statement {
            component: self.access.name.clone(),
            writes: kind == StatementKind::Write,
            bounds: Bounds {
                deadline: self.deadline,
                result: ResultLimits::for_memory(self.access.grant.limits.memory_bytes),
                trusted: is_core_service(&self.access.name),
            },
        };
        verdict.map(|kind| (scope.clone(), statement(kind))).map_err(|reason| {
            tracing::warn!(
                component = %self.access.name,
                request_id = %scope.request_id,
                %reason,
                "refused a component statement"
            );
            metrics::counter!("souk_statements_refused_total", "component" => self.access.name.clone())
                .increment(1);
            DbError::Refused(reason)
        })
    }
}

impl crate::bindings::db::Host for StoreState {
    async fn query(
        &mut self,
        sql: String,
        params: Vec<Value>,
    ) -> wasmtime::Result<Result<Rows, DbError>> {
        Ok(match self.admit(&sql, &params) {
            Ok((scope, statement)) => scope.uow.query(&statement, &sql, &params).await,
            Err(refused) => Err(refused),
        })
    }

    async fn execute(
        &mut self,
        sql: String,
        params: Vec<Value>,
    ) -> wasmtime::Result<Result<u64, DbError>> {
        Ok(match self.admit(&sql, &params) {
            Ok((scope, statement)) => scope.uow.execute(&statement, &sql, &params).await,
            Err(refused) => Err(refused),
        })
    }
}
