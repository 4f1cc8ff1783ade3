//! Statement bounds, from the outside: what a component's statements cost
//! the host is bounded, not only what its own code costs. The hostile
//! component (its `/bounds/NAME` routes) sends NUL in statement text and
//! parameters, runaway statements, string amplification and huge results;
//! the host must refuse or stop each one with a clear db-error (503 from the
//! component when the database is reported unavailable) and keep serving
//! everyone else promptly: a registration issued while the attack runs, or
//! right after, answers 201 within a few seconds, far below SQLite's 10 s
//! busy timeout that a statement holding the write lock would cause.
//!
//! The bounds are generous in time on purpose: a loaded 2-core machine
//! running a debug host must not fail them, while a host that lost control
//! of a statement fails them by a wide margin.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Reply, SpawnOptions, TestApp, backend, spawn_app_with};

/// Long enough for any honest answer, short enough that a host that lost
/// control of a statement fails the test instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(30);

/// What "promptly" means for a customer's request during or after an
/// attack: well under SQLite's 10 s busy timeout.
const PROMPTLY: Duration = Duration::from_secs(5);

/// A short deadline: runaway statements must be cut off at it.
const SHORT_DEADLINE: &str = r#"{"hostile": {"deadline_ms": 300}}"#;

/// A core service's order of deadline: SQLite's value limit stops string
/// amplification long before it; on PostgreSQL it may be the deadline.
const MODERATE_DEADLINE: &str = r#"{"hostile": {"deadline_ms": 2000}}"#;

/// A deadline long enough that only the size bounds (or, for the
/// disconnect test, the client leaving) can stop a statement first.
const LONG_DEADLINE: &str = r#"{"hostile": {"deadline_ms": 30000}}"#;

async fn hostile_app(grants: &'static str) -> TestApp {
    spawn_app_with(SpawnOptions {
        test_components: vec!["hostile"],
        grants: Some(grants),
        ..SpawnOptions::default()
    })
    .await
}

/// POST (a write transaction: on SQLite it holds the write lock) to the
/// bound attack `name`; returns the reply and how long it took.
async fn attack(app: &TestApp, name: &str) -> (Reply, Duration) {
    attack_at(app, "bounds", name).await
}

/// As [`attack`], on the hostile component's route `route` (`bounds`, or
/// `bounds-after-write`: the attack after a write of the request).
async fn attack_at(app: &TestApp, route: &str, name: &str) -> (Reply, Duration) {
    let started = Instant::now();
    let builder = app
        .request(
            Method::POST,
            &format!("/api/v1/hostile/{route}/{name}"),
            None,
        )
        .json(&json!({}))
        .timeout(PATIENCE);
    let reply = app.send_built(builder).await;
    (reply, started.elapsed())
}

/// Registers a fresh customer and asserts it answers 201 promptly.
async fn assert_registers_promptly(app: &TestApp, during: &str) {
    let username = format!("u{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
    let started = Instant::now();
    let builder = app
        .request(Method::POST, "/api/v1/customers", None)
        .json(&crate::helpers::customer_body(&username))
        .timeout(PATIENCE);
    let reply = app.send_built(builder).await;
    let took = started.elapsed();
    assert_eq!(
        reply.status,
        StatusCode::CREATED,
        "registration {during}: {}",
        reply.text
    );
    assert!(took < PROMPTLY, "registration {during} took {took:?}");
}

/// How many notes the hostile component's own table holds.
async fn notes(app: &TestApp) -> i64 {
    let reply = app.get("/api/v1/hostile/notes", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.body["count"].as_i64().unwrap()
}

#[track_caller]
fn assert_outcome(name: &str, reply: &Reply, outcome: &str, reason_has: &[&str]) {
    assert_eq!(reply.body["outcome"], outcome, "{name}: {}", reply.text);
    let reason = reply.body["reason"].as_str().unwrap_or("").to_lowercase();
    assert!(
        reason_has.iter().any(|fragment| reason.contains(fragment)),
        "{name}: reason `{reason}` has none of {reason_has:?}"
    );
}

#[tokio::test]
async fn a_parameter_numbered_zero_is_refused_and_writes_keep_flowing() {
    let app = hostile_app(SHORT_DEADLINE).await;
    for name in ["zero_param", "zero_param_write"] {
        let (reply, took) = attack(&app, name).await;
        assert_eq!(reply.status, StatusCode::OK, "{name}: {}", reply.text);
        assert_outcome(name, &reply, "refused", &["does not exist"]);
        assert!(took < PROMPTLY, "{name} took {took:?}");
        assert_registers_promptly(&app, &format!("after {name}")).await;
    }
}

#[tokio::test]
async fn a_nul_anywhere_in_a_statement_is_refused_and_writes_keep_flowing() {
    let app = hostile_app(SHORT_DEADLINE).await;

    for name in [
        "nul_comment",
        "nul_block_comment",
        "nul_literal",
        "nul_identifier",
        "nul_trailing",
    ] {
        let (reply, took) = attack(&app, name).await;

        assert_eq!(reply.status, StatusCode::OK, "{name}: {}", reply.text);
        assert_outcome(name, &reply, "refused", &["nul"]);
        assert!(took < PROMPTLY, "{name} took {took:?}");
        // The attack was a POST: a hung statement would hold SQLite's write
        // lock, and this registration would wait for the busy timeout.
        assert_registers_promptly(&app, &format!("after {name}")).await;
    }
}

#[tokio::test]
async fn a_text_parameter_with_a_nul_is_refused_before_the_driver() {
    let app = hostile_app(SHORT_DEADLINE).await;

    for name in ["nul_param", "nul_param_write"] {
        let (reply, _) = attack(&app, name).await;

        assert_eq!(reply.status, StatusCode::OK, "{name}: {}", reply.text);
        assert_outcome(name, &reply, "refused", &["nul"]);
    }
    assert_eq!(notes(&app).await, 0);
    assert_registers_promptly(&app, "after NUL parameters").await;
}

#[tokio::test]
async fn a_runaway_statement_is_cut_off_at_the_deadline_while_customers_keep_registering() {
    let app = hostile_app(SHORT_DEADLINE).await;

    for name in ["runaway_cte", "runaway_cross_join", "runaway_insert"] {
        let runaway = attack(&app, name);
        let customer = async {
            // Issued while the runaway statement runs.
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert_registers_promptly(&app, &format!("during {name}")).await;
        };
        let ((reply, took), ()) = tokio::join!(runaway, customer);

        // Either the component answers the cut-off statement's error with
        // 503, or, past its deadline itself, it is stopped as soon as it
        // runs again and the host answers 503 for it.
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{name}: {}",
            reply.text
        );
        if reply.body["outcome"].is_null() {
            assert_eq!(
                reply.problem_type(),
                "urn:souk:error:deadline-exceeded",
                "{name}: {}",
                reply.text
            );
        } else {
            assert_outcome(name, &reply, "unavailable", &["deadline"]);
        }
        assert!(took < Duration::from_secs(10), "{name} took {took:?}");
        assert_registers_promptly(&app, &format!("after {name}")).await;
    }
    // The cut-off insert was rolled back with its request.
    assert_eq!(notes(&app).await, 0);
}

#[tokio::test]
async fn a_statement_stops_in_the_database_when_its_client_goes_away() {
    let app = hostile_app(LONG_DEADLINE).await;

    // A read (before the request's first write: on SQLite a reader
    // connection) and a write (inside the request's write transaction),
    // each abandoned twice: the connection it ran on must neither keep
    // working on it nor be handed on in a state that could stop the next
    // holder's statements.
    for name in [
        "runaway_cte",
        "runaway_insert",
        "runaway_cte",
        "runaway_insert",
    ] {
        let builder = app
            .request(
                Method::POST,
                &format!("/api/v1/hostile/bounds/{name}"),
                None,
            )
            .json(&json!({}))
            .timeout(Duration::from_millis(500));
        let gone = builder.send().await;
        assert!(gone.is_err(), "{name} answered: {gone:?}");

        // With a 30 s deadline, only the dropped request can have stopped
        // the statement (and released SQLite's write lock) this soon.
        assert_registers_promptly(&app, &format!("after the client of {name} left")).await;
        if backend() == "postgres" {
            assert_postgres_stops_working_on_it(&app).await;
        }
    }
    let builder = app
        .request(Method::POST, "/api/v1/hostile/notes", None)
        .json(&json!({}))
        .timeout(PROMPTLY);
    let note = app.send_built(builder).await;
    assert_eq!(note.status, StatusCode::CREATED, "{}", note.text);
    // The abandoned inserts were rolled back with their requests.
    assert_eq!(notes(&app).await, 1);
}

/// Polls `pg_stat_activity` until no server process runs the runaway
/// statement any more; fails if one still does after [`PROMPTLY`].
async fn assert_postgres_stops_working_on_it(app: &TestApp) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&app.database_url)
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        let running: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE state = 'active' AND query LIKE 'WITH RECURSIVE r(n)%' \
             AND pid <> pg_backend_pid()",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        if running == 0 {
            return;
        }
        assert!(
            started.elapsed() < PROMPTLY,
            "PostgreSQL still runs the abandoned statement after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn string_amplification_fails_fast_and_the_host_keeps_serving() {
    let app = hostile_app(MODERATE_DEADLINE).await;
    let aggregate = match backend() {
        "postgres" => "aggregate_value_pg",
        _ => "aggregate_value",
    };

    for name in ["nested_replace", "concat_doubling", aggregate] {
        let (reply, took) = attack(&app, name).await;

        // SQLite refuses to build a value past 16 MiB; PostgreSQL past
        // 1 GB, or its statement timeout stops it at the deadline (then the
        // component, past its deadline too, may be stopped by the host).
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{name}: {}",
            reply.text
        );
        if reply.body["outcome"].is_null() {
            assert_eq!(
                reply.problem_type(),
                "urn:souk:error:deadline-exceeded",
                "{name}: {}",
                reply.text
            );
        } else {
            assert_outcome(
                name,
                &reply,
                "unavailable",
                &["limit", "larger", "deadline"],
            );
        }
        assert!(took < Duration::from_secs(10), "{name} took {took:?}");
        assert_registers_promptly(&app, &format!("after {name}")).await;
    }
}

#[tokio::test]
async fn huge_results_are_refused_by_rows_and_by_bytes() {
    let app = hostile_app(LONG_DEADLINE).await;

    for (name, bound) in [
        ("many_rows", "rows"),
        ("many_bytes", "bytes"),
        ("huge_value", "bytes"),
    ] {
        let started = Instant::now();
        let customer = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert_registers_promptly(&app, &format!("during {name}")).await;
        };
        let ((reply, _), ()) = tokio::join!(attack(&app, name), customer);

        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{name}: {}",
            reply.text
        );
        assert_outcome(name, &reply, "unavailable", &[bound]);
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{name} took {:?}",
            started.elapsed()
        );
    }
    assert_registers_promptly(&app, "after the huge results").await;
}

/// An extension's reads after its request's first write run inside the
/// write transaction (on SQLite, on the writer connection, where a core
/// service's statements run on the calling thread): they are bounded there
/// as everywhere, cut off at the deadline, refused past their size limits
/// or stopped when the client leaves, and the request's write is rolled
/// back with it while customers keep registering.
#[tokio::test]
async fn reads_after_a_write_are_bounded_inside_the_write_transaction() {
    let app = hostile_app(SHORT_DEADLINE).await;
    let customer = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_registers_promptly(&app, "during a runaway read after a write").await;
    };
    let ((reply, took), ()) = tokio::join!(
        attack_at(&app, "bounds-after-write", "runaway_cte"),
        customer
    );
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.text
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_eq!(notes(&app).await, 0, "the write was rolled back");

    let app = hostile_app(LONG_DEADLINE).await;
    for (name, bound) in [("many_rows", "rows"), ("huge_value", "bytes")] {
        let (reply, took) = attack_at(&app, "bounds-after-write", name).await;
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{name}: {}",
            reply.text
        );
        assert_outcome(name, &reply, "unavailable", &[bound]);
        assert!(took < Duration::from_secs(20), "{name} took {took:?}");
    }
    // Abandoned by its client: stopped, and the write lock released.
    let builder = app
        .request(
            Method::POST,
            "/api/v1/hostile/bounds-after-write/runaway_cte",
            None,
        )
        .json(&json!({}))
        .timeout(Duration::from_millis(500));
    let gone = builder.send().await;
    assert!(gone.is_err(), "answered: {gone:?}");
    assert_registers_promptly(&app, "after the client of a read after a write left").await;
    if backend() == "postgres" {
        assert_postgres_stops_working_on_it(&app).await;
    }
    assert_eq!(notes(&app).await, 0, "every write was rolled back");
}
