//! The host's own endpoints (API.md, "Platform"): health, database health,
//! metrics, and what happens on a path no component serves.

use reqwest::{Method, StatusCode};

use crate::helpers::{SpawnOptions, backend, spawn_app, spawn_app_with};

#[tokio::test]
async fn health_status_lists_every_loaded_component_with_its_version() {
    let app = spawn_app().await;

    let reply = app.get("/health/status", None).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert!(
        reply.content_type().starts_with("application/json"),
        "{}",
        reply.content_type()
    );
    assert_eq!(reply.body["status"], "ok");
    assert!(
        reply.body["version"]
            .as_str()
            .is_some_and(|v| !v.is_empty()),
        "{}",
        reply.text
    );
    assert!(reply.body["uptime_seconds"].is_u64(), "{}", reply.text);
    let components = reply.body["components"].as_array().unwrap();
    let customers = components
        .iter()
        .find(|c| c["name"] == "customers")
        .unwrap_or_else(|| panic!("customers not listed: {}", reply.text));
    let version = customers["version"].as_str().unwrap();
    assert_eq!(version.split('.').count(), 3, "not semantic: {version}");
    assert!(customers["status"].is_string(), "{}", reply.text);
    assert!(
        !components.iter().any(|c| c["name"] == "hostile"),
        "test components are opt-in"
    );
}

#[tokio::test]
async fn health_status_leaves_out_a_component_that_is_not_loaded_and_lists_extra_ones() {
    let app = spawn_app_with(SpawnOptions {
        test_components: vec!["hostile"],
        ..SpawnOptions::default()
    })
    .await;

    let reply = app.get("/health/status", None).await;

    let names: Vec<&str> = reply.body["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"customers"), "{names:?}");
    assert!(names.contains(&"hostile"), "{names:?}");
}

#[tokio::test]
async fn health_database_reports_the_backend_and_its_latency() {
    let app = spawn_app().await;

    let reply = app.get("/health/database", None).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["status"], "ok");
    assert_eq!(reply.body["backend"], backend());
    let latency = reply.body["latency_ms"].as_f64().unwrap_or(-1.0);
    assert!(latency >= 0.0, "{}", reply.text);
}

/// The value of `souk_http_requests_total` for `component` and `status`
/// in a Prometheus text page (0 when the series does not exist yet).
fn requests_total(page: &str, component: &str, status: &str) -> f64 {
    page.lines()
        .filter(|line| line.starts_with("souk_http_requests_total{"))
        .filter(|line| {
            line.contains(&format!("component=\"{component}\""))
                && line.contains(&format!("status=\"{status}\""))
        })
        .map(|line| line.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

#[tokio::test]
async fn metrics_are_prometheus_text_and_count_requests() {
    // The recorder is process-wide and tests run in parallel, so compare
    // before and after: counters only grow.
    let app = spawn_app().await;
    let before = app.get("/metrics", None).await.text;

    app.register("alice").await;
    app.get("/api/v1/customers/alice", None).await;
    app.get("/api/v1/customers/alice", None).await;
    let reply = app.get("/metrics", None).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert!(
        reply.content_type().starts_with("text/plain"),
        "{}",
        reply.content_type()
    );
    assert!(
        reply
            .text
            .contains("# TYPE souk_http_requests_total counter"),
        "{}",
        reply.text
    );
    let created = requests_total(&reply.text, "customers", "201")
        - requests_total(&before, "customers", "201");
    let refused = requests_total(&reply.text, "customers", "401")
        - requests_total(&before, "customers", "401");
    assert!(created >= 1.0, "{}", reply.text);
    assert!(refused >= 2.0, "{}", reply.text);
}

#[tokio::test]
async fn a_path_no_component_serves_gets_a_404_problem() {
    let app = spawn_app().await;

    for path in [
        "/api/v1/nope",
        "/api/v1",
        "/api/v1/customersx",
        "/nope",
        "/api/v2/customers",
    ] {
        let reply = app.get(path, None).await;
        reply.assert_problem(404);
        assert_eq!(reply.body["type"], "urn:souk:error:not-found", "{path}");
        assert!(reply.header("x-request-id").is_some(), "{path}");
    }
    let post = app
        .send(
            Method::POST,
            "/api/v1/nope",
            None,
            Some(serde_json::json!({})),
        )
        .await;
    post.assert_problem(404);
}

#[tokio::test]
async fn platform_endpoints_carry_a_request_id() {
    let app = spawn_app().await;

    for path in ["/health/status", "/health/database", "/metrics"] {
        let reply = app.get(path, None).await;
        assert!(
            reply
                .header("x-request-id")
                .is_some_and(|id| !id.is_empty()),
            "{path}"
        );
    }
}
