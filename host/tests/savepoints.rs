//! On PostgreSQL every component write runs under a savepoint, so that a
//! failed write undoes only itself and the request can go on. The
//! savepoint of a write that succeeded is released with whatever the
//! transaction runs next rather than in a round trip of its own: a failed
//! write must still undo only itself, whichever component ran before it,
//! and the request's other writes must commit.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::time::{Duration, Instant};

use souk::{
    bindings::db::{ConstraintKind, DbError, Value},
    storage::{
        Database, Intent,
        uow::{Outcome, Statement, UnitOfWork, component_role},
        values::{Bounds, ResultLimits},
    },
};

fn by(component: &str, writes: bool) -> Statement {
    Statement {
        component: component.into(),
        writes,
        bounds: Bounds {
            deadline: Instant::now() + Duration::from_secs(30),
            result: ResultLimits::for_memory(32 << 20),
            trusted: false,
        },
    }
}

#[test]
fn a_failed_write_undoes_only_itself_after_writes_by_other_components() {
    // Creating and dropping the database blocks: outside the runtime.
    let Some(postgres) = support::postgres("savepoints") else {
        return;
    };
    // Roles are the cluster's: named for this database, dropped after it.
    let suffix = postgres.name.trim_start_matches("souk_proc_").to_owned();
    let components = [format!("sp_a_{suffix}"), format!("sp_b_{suffix}")];
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(savepoints_of(&postgres.url, &components));
    drop(postgres);
    runtime.block_on(async {
        let admin = sqlx::PgPool::connect(&std::env::var("SOUK_TEST_POSTGRES_URL").unwrap())
            .await
            .unwrap();
        for component in &components {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP ROLE IF EXISTS {}",
                component_role(component)
            )))
            .execute(&admin)
            .await
            .unwrap();
        }
    });
}

async fn savepoints_of(url: &str, [first, second]: &[String; 2]) {
    let db = Database::connect(url).await.unwrap();
    let Database::Postgres(pool) = &db else {
        panic!("not PostgreSQL");
    };
    for component in [first, second] {
        let role = component_role(component);
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE ROLE {role}; GRANT {role} TO CURRENT_USER;"
        )))
        .execute(pool)
        .await
        .unwrap();
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE t (n INTEGER UNIQUE); GRANT ALL ON t TO {}, {};",
        component_role(first),
        component_role(second)
    )))
    .execute(pool)
    .await
    .unwrap();

    let uow = UnitOfWork::new(db.clone(), Intent::Write);
    let insert = |n: i64| {
        (
            String::from("INSERT INTO t VALUES ($1)"),
            vec![Value::Integer(n)],
        )
    };
    for (component, n) in [(first, 1), (second, 2), (second, 3)] {
        let (sql, params) = insert(n);
        uow.execute(&by(component, true), &sql, &params)
            .await
            .unwrap();
    }
    let (sql, params) = insert(2);
    let refused = uow.execute(&by(first, true), &sql, &params).await;
    assert_eq!(refused, Err(DbError::Constraint(ConstraintKind::Unique)));
    let (sql, params) = insert(4);
    uow.execute(&by(first, true), &sql, &params).await.unwrap();
    let seen = uow
        .query(&by(second, false), "SELECT count(*) FROM t", &[])
        .await
        .unwrap();
    assert_eq!(seen.rows, vec![vec![Value::Integer(4)]]);
    uow.finish(Outcome::Commit).await.unwrap();

    let stored: Vec<i32> = sqlx::query_scalar("SELECT n FROM t ORDER BY n")
        .fetch_all(pool)
        .await
        .unwrap();
    assert_eq!(stored, vec![1, 2, 3, 4]);

    db.close().await;
}
