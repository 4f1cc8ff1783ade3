//! A unit of work that may write holds SQLite's write lock only once it
//! wrote: its reads before that take no lock, and it gives back anything
//! unused before slow host work (Argon2 in the `credentials` capability).
//! So a flood of logins — each a POST that reads a password hash and then
//! verifies it — never keeps other writers waiting.
//!
//! Proven with a second connection whose busy timeout is zero: it can begin
//! a write transaction exactly when nobody holds the lock.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{str::FromStr, time::Duration};

use souk::storage::{
    Database, Intent,
    uow::{Statement, UnitOfWork},
    values::{Bounds, ResultLimits},
};
use sqlx::{
    Connection,
    sqlite::{SqliteConnectOptions, SqliteConnection},
};

/// Whether a connection that never waits can take the write lock now.
async fn lock_is_free(url: &str) -> bool {
    let options = SqliteConnectOptions::from_str(url)
        .unwrap()
        .busy_timeout(Duration::ZERO);
    let mut other = SqliteConnection::connect_with(&options).await.unwrap();
    let free = sqlx::raw_sql("BEGIN IMMEDIATE; ROLLBACK;")
        .execute(&mut other)
        .await
        .is_ok();
    other.close().await.ok();
    free
}

fn read() -> Statement {
    Statement {
        component: "test".into(),
        writes: false,
        bounds: Bounds {
            deadline: std::time::Instant::now() + Duration::from_secs(30),
            result: ResultLimits::for_memory(32 << 20),
            trusted: false,
        },
    }
}

#[tokio::test]
async fn an_unwritten_unit_of_work_gives_the_write_lock_back_and_a_written_one_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("lock.db").display());
    let db = Database::connect(&url).await.unwrap();
    assert!(lock_is_free(&url).await);

    // A write request that has only read so far (a login reading a hash),
    // and then hashes: nobody else waits for it.
    let login = UnitOfWork::new(db.clone(), Intent::Write);
    login.query(&read(), "SELECT 1 AS one", &[]).await.unwrap();
    login.release_unwritten().await;
    assert!(lock_is_free(&url).await, "a login holds no write lock");
    login.query(&read(), "SELECT 1 AS one", &[]).await.unwrap();
    assert!(lock_is_free(&url).await);
    login
        .finish(souk::storage::uow::Outcome::Rollback)
        .await
        .unwrap();

    // Once something was written, the lock (and the write) stays.
    let register = UnitOfWork::new(db.clone(), Intent::Write);
    register
        .run_host(
            "CREATE TABLE IF NOT EXISTS souk_lock_probe (id INTEGER)",
            &[],
        )
        .await
        .unwrap();
    register.release_unwritten().await;
    assert!(
        !lock_is_free(&url).await,
        "a written unit of work keeps its lock"
    );
    register
        .finish(souk::storage::uow::Outcome::Rollback)
        .await
        .unwrap();
    assert!(lock_is_free(&url).await);
    db.close().await;
}
