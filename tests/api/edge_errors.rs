//! Errors the host's edge answers itself, before any component runs, are
//! problem details like every other error (API.md, "Conventions"):
//! `application/problem+json` with the request id in the `X-Request-Id`
//! header and in the body. A platform route with the wrong method, a path
//! nothing serves, a refused upload: none may fall back to axum's empty or
//! plain-text bodies.

use reqwest::{Method, StatusCode};

use crate::helpers::{Reply, TestApp, spawn_app};

/// The request id every request here sends, so the echo can be checked.
const REQUEST_ID: &str = "edge-errors-0001";

async fn send(app: &TestApp, method: Method, path: &str, token: Option<&str>) -> Reply {
    let builder = app
        .request(method, path, token)
        .header("x-request-id", REQUEST_ID);
    app.send_built(builder).await
}

/// A problem with `status` that carries the request id both ways.
#[track_caller]
fn assert_edge_problem(reply: &Reply, status: u16, what: &str) {
    assert_eq!(reply.status.as_u16(), status, "{what}: {}", reply.text);
    assert_eq!(
        reply.content_type(),
        "application/problem+json",
        "{what}: {}",
        reply.text
    );
    assert_eq!(reply.header("x-request-id"), Some(REQUEST_ID), "{what}");
    assert_eq!(
        reply.body["request_id"], REQUEST_ID,
        "{what}: {}",
        reply.text
    );
    assert_eq!(reply.body["status"], status, "{what}: {}", reply.text);
    assert!(
        reply.problem_type().starts_with("urn:souk:error:"),
        "{what}: {}",
        reply.text
    );
    assert!(reply.body["title"].is_string(), "{what}: {}", reply.text);
    assert!(reply.body["detail"].is_string(), "{what}: {}", reply.text);
}

#[tokio::test]
async fn a_platform_route_with_another_method_is_a_405_problem_with_allow() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;

    for (method, path, token) in [
        (Method::POST, "/health/status", None),
        (Method::DELETE, "/health/database", None),
        (Method::DELETE, "/metrics", None),
        (Method::PUT, "/openapi.json", None),
        (Method::POST, "/docs", None),
        (Method::POST, "/admin/components", Some(admin.as_str())),
        (
            Method::GET,
            "/admin/components/x/rollback",
            Some(admin.as_str()),
        ),
        (Method::PATCH, "/admin/components/x", Some(admin.as_str())),
    ] {
        let what = format!("{method} {path}");
        let reply = send(&app, method, path, token).await;
        assert_edge_problem(&reply, 405, &what);
        assert_eq!(
            reply.problem_type(),
            "urn:souk:error:method-not-allowed",
            "{what}"
        );
        assert!(
            reply.header("allow").is_some_and(|allow| !allow.is_empty()),
            "{what}: 405 without Allow"
        );
    }
}

#[tokio::test]
async fn a_path_nothing_serves_is_a_404_problem_inside_and_outside_api_v1() {
    let app = spawn_app().await;

    for path in [
        "/",
        "/favicon.ico",
        "/health",
        "/health/status/extra",
        "/admin",
        "/admin/components/x/rollback/extra",
        "/api",
        "/api/v2/goods",
        "/api/v1/nothing-here",
    ] {
        let reply = send(&app, Method::GET, path, None).await;
        assert_edge_problem(&reply, 404, path);
        assert_eq!(reply.problem_type(), "urn:souk:error:not-found", "{path}");
    }
}

#[tokio::test]
async fn refusals_of_the_admin_routes_are_problems_with_the_request_id() {
    let app = spawn_app().await;

    let reply = send(&app, Method::GET, "/admin/components", None).await;
    assert_edge_problem(&reply, 401, "no token");

    let customer = app.customer("edgy_customer").await;
    let reply = send(
        &app,
        Method::POST,
        "/admin/components/inventory/rollback",
        Some(&customer),
    )
    .await;
    assert_edge_problem(&reply, 403, "customer rolls back");

    let admin = app.admin_token().await;
    let builder = app
        .request(Method::PUT, "/admin/components/inventory", Some(&admin))
        .header("x-request-id", REQUEST_ID)
        .header("content-type", "text/plain")
        .body("not wasm");
    let reply = app.send_built(builder).await;
    assert_edge_problem(&reply, 415, "deploy without application/wasm");
}

#[tokio::test]
async fn a_request_without_an_id_gets_a_new_one_in_header_and_body() {
    let app = spawn_app().await;

    let reply = app
        .send_built(app.request(Method::DELETE, "/metrics", None))
        .await;

    assert_eq!(
        reply.status,
        StatusCode::METHOD_NOT_ALLOWED,
        "{}",
        reply.text
    );
    let id = reply
        .header("x-request-id")
        .expect("a request id")
        .to_owned();
    assert!(!id.is_empty());
    assert_eq!(reply.body["request_id"], id.as_str(), "{}", reply.text);
}
