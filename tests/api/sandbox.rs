//! The sandbox, from the outside: a hostile component (tests/components/
//! hostile) tries to reach tables it does not own, smuggle statements, take
//! over the transaction, trap after a write, spin forever and eat memory.
//! The host must refuse or stop each attempt, roll back what the request
//! wrote, leave the customers' data untouched and keep serving.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, SpawnOptions, TestApp, spawn_app_with};

/// Long enough for any honest answer, short enough that a host that lost
/// control of a component fails the test instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(30);

async fn hostile_app() -> TestApp {
    spawn_app_with(SpawnOptions {
        test_components: vec!["hostile"],
        ..SpawnOptions::default()
    })
    .await
}

/// The names of the hostile component's attacks.
async fn attacks(app: &TestApp) -> Vec<String> {
    let reply = app.get("/api/v1/hostile/attacks", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let names: Vec<String> = serde_json::from_value(reply.body).unwrap();
    // A table-driven test over an empty table proves nothing.
    assert!(names.len() >= 40, "only {} attacks: {names:?}", names.len());
    names
}

/// How many notes the hostile component's own table holds.
async fn notes(app: &TestApp) -> i64 {
    let reply = app.get("/api/v1/hostile/notes", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.body["count"].as_i64().unwrap()
}

/// Asserts that the host answers platform and customers requests.
async fn assert_host_serves(app: &TestApp, customer: &str) {
    let health = app.get("/health/status", None).await;
    assert_eq!(health.status, StatusCode::OK, "{}", health.text);
    let token = app.token(customer, PASSWORD).await;
    let profile = app
        .get(&format!("/api/v1/customers/{customer}"), Some(&token))
        .await;
    assert_eq!(profile.status, StatusCode::OK, "{}", profile.text);
}

#[tokio::test]
async fn every_attack_of_the_hostile_component_is_refused_by_the_statement_check() {
    let app = hostile_app().await;

    let mut not_refused = Vec::new();
    for name in attacks(&app).await {
        let reply = app
            .get(&format!("/api/v1/hostile/attack/{name}"), None)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{name}: {}", reply.text);
        match reply.body["outcome"].as_str() {
            Some("refused") => {
                let reason = reply.body["reason"].as_str().unwrap_or("");
                assert!(!reason.is_empty(), "{name}: refused without a reason");
            }
            _ => not_refused.push(format!("{name}: {}", reply.text)),
        }
    }

    assert!(
        not_refused.is_empty(),
        "attacks the host did not refuse:\n{}",
        not_refused.join("\n")
    );
}

#[tokio::test]
async fn attacks_leave_the_customers_table_untouched_and_the_host_serving() {
    let app = hostile_app().await;
    app.customer("alice").await;
    app.charge("alice", json!(42.5)).await;
    let admin = app.admin_token().await;
    let before = app.get("/api/v1/customers", Some(&admin)).await;
    assert_eq!(before.body["total"], 2, "{}", before.text);

    for name in attacks(&app).await {
        app.get(&format!("/api/v1/hostile/attack/{name}"), None)
            .await;
    }

    let after = app.get("/api/v1/customers", Some(&admin)).await;
    assert_eq!(after.status, StatusCode::OK, "{}", after.text);
    assert_eq!(after.body, before.body);
    assert_eq!(app.profile("alice").await["wallet_balance"], 42.5);
    assert_host_serves(&app, "alice").await;
    let bob = app.register("bob").await;
    assert_eq!(bob.status, StatusCode::CREATED, "{}", bob.text);
}

#[tokio::test]
async fn a_component_may_read_and_write_its_own_table() {
    let app = hostile_app().await;
    assert_eq!(notes(&app).await, 0);

    for _ in 0..2 {
        let reply = app.post("/api/v1/hostile/notes", None, json!({})).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    }

    assert_eq!(notes(&app).await, 2);
}

#[tokio::test]
async fn a_trap_mid_request_gets_500_rolls_back_its_writes_and_the_host_keeps_serving() {
    let app = hostile_app().await;
    app.customer("alice").await;
    app.post("/api/v1/hostile/notes", None, json!({})).await;
    let before = notes(&app).await;
    assert_eq!(before, 1);

    for attempt in 0..3 {
        let id = format!("trap-{attempt}");
        let builder = app
            .request(Method::POST, "/api/v1/hostile/notes-then-trap", None)
            .header("x-request-id", &id)
            .json(&json!({}));
        let reply = app.send_built(builder).await;

        reply.assert_problem(500);
        assert_eq!(reply.body["request_id"], id.as_str(), "{}", reply.text);
        assert_eq!(reply.header("x-request-id"), Some(id.as_str()));
        let text = reply.text.to_lowercase();
        for leak in ["deliberate", "panicked", "backtrace", "wasm", ".rs"] {
            assert!(!text.contains(leak), "{leak} in {}", reply.text);
        }
        assert_eq!(
            notes(&app).await,
            before,
            "the trapped request's insert was kept"
        );
    }

    let next = app.post("/api/v1/hostile/notes", None, json!({})).await;
    assert_eq!(next.status, StatusCode::CREATED, "{}", next.text);
    assert_eq!(notes(&app).await, before + 1);
    assert_host_serves(&app, "alice").await;
}

#[tokio::test]
async fn a_component_that_never_returns_gets_503_and_the_host_keeps_serving() {
    let app = hostile_app().await;
    app.customer("alice").await;

    let builder = app
        .request(Method::GET, "/api/v1/hostile/spin", None)
        .timeout(PATIENCE);
    let reply = app.send_built(builder).await;

    reply.assert_problem(503);
    assert_eq!(
        reply.problem_type(),
        "urn:souk:error:deadline-exceeded",
        "{}",
        reply.text
    );
    assert!(reply.header("retry-after").is_some(), "{:?}", reply.headers);
    assert_eq!(notes(&app).await, 0);
    assert_host_serves(&app, "alice").await;
}

#[tokio::test]
async fn a_component_that_eats_memory_is_stopped_and_the_host_keeps_serving() {
    let app = hostile_app().await;
    app.customer("alice").await;

    let builder = app
        .request(Method::GET, "/api/v1/hostile/hog", None)
        .timeout(PATIENCE);
    let reply = app.send_built(builder).await;

    reply.assert_problem(503);
    assert_eq!(
        reply.problem_type(),
        "urn:souk:error:memory-limit",
        "{}",
        reply.text
    );
    assert_host_serves(&app, "alice").await;
    assert_eq!(notes(&app).await, 0);
}

#[tokio::test]
async fn a_component_never_sees_credentials_but_gets_the_verified_caller() {
    let app = hostile_app().await;
    let token = app.customer("alice").await;

    let builder = app
        .request(Method::GET, "/api/v1/hostile/request", Some(&token))
        .header("cookie", "session=secret-cookie")
        .header("proxy-authorization", "Basic c2VjcmV0")
        .header("x-custom", "1")
        .header("x-request-id", "req-7");
    let reply = app.send_built(builder).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let headers: Vec<&str> = reply.body["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    assert!(headers.contains(&"x-custom"), "{headers:?}");
    for private in ["authorization", "cookie", "proxy-authorization"] {
        assert!(
            !headers.contains(&private),
            "{private} was forwarded: {headers:?}"
        );
    }
    assert_eq!(reply.body["caller"]["username"], "alice");
    assert_eq!(reply.body["caller"]["role"], "customer");
    assert_eq!(reply.body["request_id"], "req-7");

    let anonymous = app.get("/api/v1/hostile/request", None).await;
    assert_eq!(anonymous.body["caller"], Value::Null, "{}", anonymous.text);
    let forged = app
        .get("/api/v1/hostile/request", Some("forged.token.value"))
        .await;
    forged.assert_problem(401);
}
