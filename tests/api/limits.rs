//! Limits and grants, from the outside: the operator's grants (JSON) give
//! the hostile test component small limits, and the host must stop each
//! breach with its own problem type, count it in `/metrics` and keep
//! serving; an import outside a component's grant is refused at load,
//! naming the import; and a trap after a call into another component rolls
//! back what that component did in the same request.

use std::{sync::Arc, time::Duration};

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{
    PASSWORD, Reply, SpawnOptions, TestApp, metric, spawn_app_with, test_component_bytes,
};

/// Long enough for any honest answer, short enough that a host that lost
/// control of a component fails the test instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(30);

/// Small limits for the hostile component: 16 MiB, 300 ms, 64 KiB answers.
const STRICT: &str = r#"{"hostile": {"memory_mib": 16, "deadline_ms": 300, "max_concurrency": 4, "max_response_kib": 64}}"#;

/// Two slots and a deadline far beyond `/busy`'s 150 ms, so only the
/// concurrency cap can refuse a request.
const TWO_SLOTS: &str = r#"{"hostile": {"max_concurrency": 2, "deadline_ms": 10000}}"#;

/// The grant that lets wallet_thief move money through the customers service.
const WALLET_THIEF_GRANTED: &str =
    r#"{"wallet_thief": {"imports": ["souk:platform/customers-api", "souk:platform/wallet"]}}"#;

/// A grant to look customers up, and nothing more.
const LOOKUPS_ONLY: &str = r#"{"wallet_thief": {"imports": ["souk:platform/customers-api"]}}"#;

async fn hostile_app(grants: &'static str) -> TestApp {
    spawn_app_with(SpawnOptions {
        test_components: vec!["hostile"],
        grants: Some(grants),
        ..SpawnOptions::default()
    })
    .await
}

async fn get_patiently(app: &TestApp, path: &str) -> Reply {
    let builder = app.request(Method::GET, path, None).timeout(PATIENCE);
    app.send_built(builder).await
}

/// `souk_component_failures_total` of the hostile component for `kind`.
async fn hostile_failures(app: &TestApp, kind: &str) -> f64 {
    metric(
        &app.metrics_page().await,
        "souk_component_failures_total",
        &[("component", "hostile"), ("kind", kind)],
    )
}

/// Asserts that the hostile component and the customers service answer.
async fn assert_still_serving(app: &TestApp) {
    let notes = get_patiently(app, "/api/v1/hostile/notes").await;
    assert_eq!(notes.status, StatusCode::OK, "{}", notes.text);
    let busy = get_patiently(app, "/api/v1/hostile/busy?ms=1").await;
    assert_eq!(busy.status, StatusCode::OK, "{}", busy.text);
    let registered = app
        .register(&format!(
            "u{}",
            &uuid::Uuid::new_v4().simple().to_string()[..16]
        ))
        .await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{}",
        registered.text
    );
}

#[tokio::test]
async fn an_endless_loop_is_stopped_at_the_deadline_counted_and_the_host_keeps_serving() {
    let app = hostile_app(STRICT).await;

    for _ in 0..2 {
        let reply = get_patiently(&app, "/api/v1/hostile/spin").await;

        let problem = reply.assert_problem(503);
        assert_eq!(
            problem["type"], "urn:souk:error:deadline-exceeded",
            "{}",
            reply.text
        );
        assert!(reply.header("retry-after").is_some(), "{:?}", reply.headers);
        assert_still_serving(&app).await;
    }
    // Failures are counted per component and kind (at least ours: other
    // tests in this process may add to the same counter).
    assert!(hostile_failures(&app, "deadline").await >= 2.0);
}

#[tokio::test]
async fn a_memory_bomb_is_stopped_at_the_cap_counted_and_the_next_request_is_fine() {
    let app = hostile_app(STRICT).await;

    for route in ["/api/v1/hostile/hog", "/api/v1/hostile/bomb"] {
        let reply = get_patiently(&app, route).await;

        let problem = reply.assert_problem(503);
        assert_eq!(
            problem["type"], "urn:souk:error:memory-limit",
            "{route}: {}",
            reply.text
        );
        assert_still_serving(&app).await;
    }
    assert!(hostile_failures(&app, "memory").await >= 2.0);
}

#[tokio::test]
async fn a_panic_is_a_500_component_fault_counted_and_the_next_request_is_fine() {
    let app = hostile_app(STRICT).await;

    let reply = app
        .post("/api/v1/hostile/notes-then-trap", None, json!({}))
        .await;

    let problem = reply.assert_problem(500);
    assert_eq!(
        problem["type"], "urn:souk:error:component-fault",
        "{}",
        reply.text
    );
    let next = app.post("/api/v1/hostile/notes", None, json!({})).await;
    assert_eq!(next.status, StatusCode::CREATED, "{}", next.text);
    let notes = app.get("/api/v1/hostile/notes", None).await;
    assert_eq!(notes.body["count"], 1, "the trapped insert was kept");
    assert_still_serving(&app).await;
    assert!(hostile_failures(&app, "trap").await >= 1.0);
}

#[tokio::test]
async fn an_invalid_status_is_a_500_and_keeps_nothing_the_component_wrote() {
    let app = hostile_app(STRICT).await;

    for status in [99, 100, 101, 199] {
        let reply = app
            .post(
                &format!("/api/v1/hostile/notes-then-bad-status?status={status}"),
                None,
                json!({}),
            )
            .await;
        reply.assert_problem(500);
    }
    let notes = app.get("/api/v1/hostile/notes", None).await;
    assert_eq!(
        notes.body["count"], 0,
        "a write answered with an invalid status was kept"
    );
    assert_still_serving(&app).await;
}

#[tokio::test]
async fn an_answer_over_the_size_cap_is_a_500_and_smaller_ones_pass() {
    let app = hostile_app(STRICT).await;

    let big = get_patiently(&app, "/api/v1/hostile/big?kib=128").await;
    let problem = big.assert_problem(500);
    assert_eq!(
        problem["type"], "urn:souk:error:response-too-large",
        "{}",
        big.text
    );
    let small = get_patiently(&app, "/api/v1/hostile/big?kib=16").await;
    assert_eq!(small.status, StatusCode::OK);
    assert_eq!(small.text.len(), 16 << 10);
    assert!(hostile_failures(&app, "response-size").await >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_beyond_the_concurrency_cap_gets_503_overloaded_for_the_excess_only() {
    const AT_ONCE: usize = 12;
    let app = Arc::new(hostile_app(TWO_SLOTS).await);

    // Twelve 150 ms requests sent together overlap, so at most two run and
    // the others are turned away. Should a loaded machine happen to
    // serialise a round, the next round overlaps.
    let (mut ok, mut overloaded) = (0, 0);
    for _round in 0..5 {
        let requests: Vec<_> = (0..AT_ONCE)
            .map(|_| {
                let app = app.clone();
                tokio::spawn(
                    async move { get_patiently(&app, "/api/v1/hostile/busy?ms=150").await },
                )
            })
            .collect();
        for request in requests {
            let reply = request.await.unwrap();
            if reply.status == StatusCode::OK {
                ok += 1;
                continue;
            }
            let problem = reply.assert_problem(503);
            assert_eq!(
                problem["type"], "urn:souk:error:overloaded",
                "{}",
                reply.text
            );
            let retry_after: u64 = reply
                .header("retry-after")
                .expect("Retry-After")
                .parse()
                .unwrap();
            assert!(retry_after >= 1);
            overloaded += 1;
        }
        if ok > 0 && overloaded > 0 {
            break;
        }
    }

    assert!(ok >= 1, "no request was served");
    assert!(overloaded >= 1, "no request was turned away ({ok} served)");
    // The slots were given back: one request at a time is served.
    for _ in 0..3 {
        let reply = get_patiently(&app, "/api/v1/hostile/busy?ms=1").await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    }
    assert!(hostile_failures(&app, "overloaded").await >= f64::from(overloaded));
    assert_still_serving(&app).await;
}

#[tokio::test]
async fn an_import_outside_the_grant_is_refused_at_deploy_naming_it() {
    let app = hostile_app(STRICT).await;
    let admin = app.admin_token().await;

    let reply = app
        .put_component(
            "token_thief",
            test_component_bytes("token_thief"),
            Some(&admin),
        )
        .await;

    let problem = reply.assert_problem(400);
    assert_eq!(problem["type"], "urn:souk:error:invalid-component");
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("`token_thief` imports `souk:platform/tokens@"),
        "{detail}"
    );
    assert!(app.component("token_thief").await.is_none());
    app.get("/api/v1/token_thief", None)
        .await
        .assert_problem(404);
}

async fn wallet_app(grants: Option<&'static str>) -> TestApp {
    spawn_app_with(SpawnOptions {
        test_components: vec!["wallet_thief"],
        grants,
        ..SpawnOptions::default()
    })
    .await
}

#[tokio::test]
async fn a_trap_after_a_call_into_the_customers_service_rolls_its_debit_back() {
    let app = wallet_app(Some(WALLET_THIEF_GRANTED)).await;
    let alice = app.customer("alice").await;
    let charged = app.charge("alice", json!(10)).await;
    assert_eq!(charged.status, StatusCode::OK, "{}", charged.text);

    // The grant path works: a debit through the wallet interface commits.
    let debit = app
        .post(
            "/api/v1/wallet_thief/debit?cents=250",
            Some(&alice),
            json!({}),
        )
        .await;
    assert_eq!(debit.status, StatusCode::OK, "{}", debit.text);
    assert_eq!(debit.body["wallet_cents"], 750, "{}", debit.text);
    assert_eq!(app.balance_cents("alice").await, 750);

    for _ in 0..3 {
        let reply = app
            .post(
                "/api/v1/wallet_thief/debit-then-panic?cents=300",
                Some(&alice),
                json!({}),
            )
            .await;

        let problem = reply.assert_problem(500);
        assert_eq!(
            problem["type"], "urn:souk:error:component-fault",
            "{}",
            reply.text
        );
        assert_eq!(
            app.balance_cents("alice").await,
            750,
            "the debit before the trap was kept"
        );
    }

    // The customers service's own refusal reaches the client, and changes
    // nothing either.
    let too_much = app
        .post(
            "/api/v1/wallet_thief/debit?cents=100000",
            Some(&alice),
            json!({}),
        )
        .await;
    let problem = too_much.assert_problem(409);
    assert_eq!(problem["type"], "urn:souk:error:insufficient-funds");
    assert_eq!(app.balance_cents("alice").await, 750);
    let token = app.token("alice", PASSWORD).await;
    let profile = app.get("/api/v1/customers/alice", Some(&token)).await;
    assert_eq!(profile.status, StatusCode::OK, "{}", profile.text);
}

#[tokio::test]
async fn without_the_grant_a_customers_api_client_is_not_loaded() {
    // The shipped grants do not name wallet_thief.
    let app = wallet_app(None).await;
    let admin = app.admin_token().await;
    let alice = app.customer("alice").await;
    app.charge("alice", json!(10)).await;

    assert!(app.component("wallet_thief").await.is_none());
    let reply = app
        .post("/api/v1/wallet_thief/debit", Some(&alice), json!({}))
        .await;
    reply.assert_problem(404);
    assert_eq!(app.balance_cents("alice").await, 1000);

    let deploy = app
        .put_component(
            "wallet_thief",
            test_component_bytes("wallet_thief"),
            Some(&admin),
        )
        .await;
    let problem = deploy.assert_problem(400);
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("imports `souk:platform/") && detail.contains("which it was not granted"),
        "{detail}"
    );
    assert!(app.component("wallet_thief").await.is_none());
}

#[tokio::test]
async fn a_grant_to_look_customers_up_never_carries_the_power_to_move_money() {
    let app = wallet_app(Some(LOOKUPS_ONLY)).await;
    let admin = app.admin_token().await;
    assert!(app.component("wallet_thief").await.is_none());
    let deploy = app
        .put_component(
            "wallet_thief",
            test_component_bytes("wallet_thief"),
            Some(&admin),
        )
        .await;
    let problem = deploy.assert_problem(400);
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("imports `souk:platform/wallet@"),
        "{detail}"
    );
}
