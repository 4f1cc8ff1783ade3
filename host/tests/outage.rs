//! A PostgreSQL outage, simulated with a TCP proxy between the real `souk`
//! binary and the shared server (cut, then restored): the host keeps
//! running, answers 503 fast, reports the outage in health, logs it a
//! bounded number of times instead of per tick, and recovers on its own,
//! LISTEN connection included. Skipped, saying so, without
//! `SOUK_TEST_POSTGRES_URL`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::time::{Duration, Instant};

use support::{Host, Proxy};

/// How long the outage is watched.
const OUTAGE: Duration = Duration::from_secs(10);
/// Background log lines (not a request's own) allowed over [`OUTAGE`]:
/// each failing loop says so once (reconciler, listener, health check,
/// event and webhook loops). Before issue #10 this was thousands.
const MAX_LOG_LINES: usize = 10;
/// sqlx's pool notes each idle connection whose ping failed, once per
/// connection: at most the pool's size (32 on PostgreSQL), however long
/// the outage lasts, and how many are idle when it starts varies.
const POOL_NOTE: &str = "ping on idle connection returned error";
const MAX_POOL_NOTES: usize = 32;

fn wait_until(bound: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + bound;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    false
}

fn problem_sources(host: &Host) -> Vec<String> {
    let status = host.request("GET", "/health/status", None).json();
    status["problems"]
        .as_array()
        .map(|problems| {
            problems
                .iter()
                .filter_map(|p| p["source"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_database_outage_is_survived_reported_logged_sparingly_and_recovered_from() {
    let Some(db) = support::postgres("database outage") else {
        return;
    };
    let proxy = Proxy::start(&db.server_addr());
    let mut host = Host::start(&db.url_via(&proxy.addr), &[]);
    assert_eq!(host.request("GET", "/health/database", None).status, 200);
    assert_eq!(
        host.request("GET", "/health/status", None).json()["status"],
        "ok"
    );

    let registered = host.request(
        "POST",
        "/api/v1/customers",
        Some(&support::customer_json("outage")),
    );
    assert_eq!(registered.status, 201, "{}", registered.text);
    let login = host.request(
        "POST",
        "/api/v1/auth/login",
        Some(r#"{"username": "outage", "password": "secret123"}"#),
    );
    let token = login.json()["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!token.is_empty(), "{}", login.text);

    proxy.cut();
    // Resolving a token's identity needs the database: 503, not 401 or 500.
    let me = support::request_with_token(&host.addr, "GET", "/api/v1/customers/me", &token);
    assert_eq!(me.status, 503, "{}", me.text);
    let before = host.log_lines().len();
    let started = Instant::now();
    let mut answers = Vec::new();
    while started.elapsed() < OUTAGE {
        let asked = Instant::now();
        let reply = host.request("GET", "/api/v1/goods", None);
        let took = asked.elapsed();
        assert_eq!(reply.status, 503, "{}", reply.text);
        assert!(reply.header("retry-after").is_some(), "{}", reply.text);
        // Bounded by the pool's acquire timeout (5 s), with room for a
        // loaded machine.
        assert!(took < Duration::from_secs(9), "a request hung for {took:?}");
        answers.push(took);
        std::thread::sleep(Duration::from_secs(1));
    }
    // Lines logged inside a request's span are that request's (two per
    // 503 here: the component's warning and the access log), proportional
    // to traffic, not to time.
    let outage_log: Vec<String> = host.log_lines()[before..]
        .iter()
        .filter(|line| !line.contains("request{"))
        .cloned()
        .collect();
    println!(
        "{} log lines over {OUTAGE:?} of outage:\n{}",
        outage_log.len(),
        outage_log.join("\n")
    );
    println!("503s took {answers:?}");
    let (pool_notes, loop_lines): (Vec<&String>, Vec<&String>) =
        outage_log.iter().partition(|line| line.contains(POOL_NOTE));
    assert!(
        loop_lines.len() <= MAX_LOG_LINES,
        "{} lines in {OUTAGE:?}",
        loop_lines.len()
    );
    assert!(
        pool_notes.len() <= MAX_POOL_NOTES,
        "{} notes of the pool in {OUTAGE:?}",
        pool_notes.len()
    );

    let reply = host.request("GET", "/health/database", None);
    assert_eq!(reply.status, 503, "{}", reply.text);
    let status = host.request("GET", "/health/status", None).json();
    assert_eq!(status["status"], "degraded", "{status}");
    let sources = problem_sources(&host);
    assert!(sources.iter().any(|s| s == "reconciler"), "{status}");
    assert!(
        sources.iter().any(|s| s == "deployment-listener"),
        "{status}"
    );

    proxy.restore();
    assert!(
        wait_until(Duration::from_secs(60), || {
            host.request("GET", "/health/database", None).status == 200
                && problem_sources(&host).is_empty()
        }),
        "no recovery: {}\n{}",
        host.request("GET", "/health/status", None).text,
        host.log_text()
    );
    assert_eq!(host.request("GET", "/api/v1/goods", None).status, 200);
    assert!(
        host.log_text().contains("works again"),
        "{}",
        host.log_text()
    );

    host.sigterm();
    let status = host.wait_exit(Duration::from_secs(10)).expect("exits");
    assert!(status.success(), "{status:?}");
}
