//! Event delivery survives SIGKILL (issue #14): events that committed but
//! were not yet delivered when the real `souk` binary died are delivered
//! after a restart, and none is delivered twice to a subscriber that had
//! acknowledged it.
//!
//! The subscriber is the `event_counter` test component
//! (`tests/components/event_counter`, built here if needed), which records
//! each delivery it acknowledges in its own table, in the same unit of
//! work as its cursor. The test:
//!
//! 1. emits a first batch and waits until every event is acknowledged;
//! 2. makes the counter refuse deliveries, emits a second batch (committed,
//!    not deliverable) and a third in a burst, and SIGKILLs the host as
//!    soon as the last event committed;
//! 3. restarts the host on the same database, lets the counter accept
//!    again, and checks that every event of the three batches was
//!    acknowledged exactly once, in order.
//!
//! On SQLite (a fresh file) and on PostgreSQL (a fresh database on
//! `SOUK_TEST_POSTGRES_URL`; without it, that test prints `SKIPPED`).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use serde_json::Value;
use support::Host;

/// Events per batch.
const BATCH: usize = 20;
/// How long the counter may take to acknowledge what it was sent.
const DELIVERED_WITHIN: Duration = Duration::from_secs(30);

#[test]
fn sigkill_between_commit_and_delivery_loses_and_repeats_nothing_on_sqlite() {
    let database = support::sqlite();
    kill_and_restart(&database.url);
}

#[test]
fn sigkill_between_commit_and_delivery_loses_and_repeats_nothing_on_postgres() {
    let Some(database) = support::postgres("event delivery after SIGKILL on PostgreSQL") else {
        return;
    };
    kill_and_restart(&database.url);
}

fn kill_and_restart(database_url: &str) {
    let components = components_dir();
    let grants = components.path().join("grants.json");
    std::fs::write(
        &grants,
        r#"{"event_counter": {"subscribe": ["event_counter.*"], "deadline_ms": 10000}}"#,
    )
    .unwrap();
    let env = [
        ("SOUK_COMPONENTS_DIR", components.path().to_str().unwrap()),
        ("SOUK_GRANTS", grants.to_str().unwrap()),
    ];

    let mut host = Host::start(database_url, &env);
    emit(&host, "acked", BATCH);
    let acked = wait_for(&host, BATCH);
    assert_once_in_order(&acked, BATCH);

    assert_eq!(
        host.request("POST", "/api/v1/event_counter/refuse", Some("{}"))
            .status,
        200
    );
    emit(&host, "pending", BATCH);
    emit(&host, "burst", BATCH);
    let killed = Instant::now();
    let status = Command::new("kill")
        .args(["-KILL", &host.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        host.wait_exit(Duration::from_secs(10)).is_some(),
        "the host survived SIGKILL"
    );
    drop(host);

    let host = Host::start(database_url, &env);
    let before = counter(&host);
    assert_eq!(
        before["deliveries"].as_u64(),
        Some(BATCH as u64),
        "a refused delivery counted, or an acknowledged one was lost: {before}"
    );
    assert_eq!(
        host.request("POST", "/api/v1/event_counter/accept", Some("{}"))
            .status,
        200
    );
    let all = wait_for(&host, 3 * BATCH);
    println!(
        "{} events acknowledged {:?} after the SIGKILL (restart included)",
        3 * BATCH,
        killed.elapsed()
    );
    // A repeated delivery would show up now.
    std::thread::sleep(Duration::from_millis(500));
    let settled = counter(&host);
    assert_eq!(all["deliveries"], settled["deliveries"], "{settled}");
    assert_once_in_order(&settled, 3 * BATCH);
    let verbs: Vec<&str> = settled["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|item| item["event_type"].as_str())
        .collect();
    for (index, verb) in verbs.iter().enumerate() {
        let wanted = [
            "event_counter.acked",
            "event_counter.pending",
            "event_counter.burst",
        ][index / BATCH];
        assert_eq!(*verb, wanted, "delivery {index} out of order: {verbs:?}");
    }
}

/// Emit `count` events `event_counter.<verb>`, each answered 200 (so each
/// committed).
fn emit(host: &Host, verb: &str, count: usize) {
    for _ in 0..count {
        let reply = host.request(
            "POST",
            &format!("/api/v1/event_counter/emit?verb={verb}"),
            Some("{}"),
        );
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
}

/// The counter's state.
fn counter(host: &Host) -> Value {
    let reply = host.request("GET", "/api/v1/event_counter", None);
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json()
}

/// Wait until the counter acknowledged at least `count` deliveries.
fn wait_for(host: &Host, count: usize) -> Value {
    let deadline = Instant::now() + DELIVERED_WITHIN;
    loop {
        let state = counter(host);
        if state["deliveries"].as_u64().unwrap_or(0) >= count as u64 {
            return state;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {count} delivered within {DELIVERED_WITHIN:?}; log:\n{}",
            state["deliveries"],
            host.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Exactly `count` deliveries, all distinct, sequences increasing.
#[track_caller]
fn assert_once_in_order(state: &Value, count: usize) {
    assert_eq!(state["deliveries"].as_u64(), Some(count as u64), "{state}");
    assert_eq!(state["distinct"].as_u64(), Some(count as u64), "{state}");
    let sequences: Vec<i64> = state["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["sequence"].as_i64().unwrap())
        .collect();
    assert!(
        sequences.windows(2).all(|pair| pair[0] < pair[1]),
        "out of order: {sequences:?}"
    );
}

/// The product components plus `event_counter`, in a directory of their own.
fn components_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(souk::config::BUILT_COMPONENTS_DIR).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "wasm") {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::copy(event_counter_wasm(), dir.path().join("event_counter.wasm")).unwrap();
    dir
}

/// `event_counter.wasm`, built (or brought up to date) with the same
/// command and target directory `tests/build.rs` uses, so a warm build
/// costs about a second.
fn event_counter_wasm() -> PathBuf {
    // BUILT_COMPONENTS_DIR is `<target>/wasm/dist/product`.
    let wasm_target = Path::new(souk::config::BUILT_COMPONENTS_DIR)
        .ancestors()
        .nth(2)
        .expect("the components directory is <target>/wasm/dist/product")
        .to_path_buf();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(workspace)
        .args([
            "build",
            "--locked",
            "--profile",
            "component",
            "--target",
            "wasm32-wasip2",
            "-p",
            "event_counter",
        ])
        .arg("--target-dir")
        .arg(&wasm_target)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building event_counter failed");
    wasm_target.join("wasm32-wasip2/component/event_counter.wasm")
}
