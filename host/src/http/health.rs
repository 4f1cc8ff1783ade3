//! Platform endpoints: liveness with component versions, database health,
//! and Prometheus metrics.

use std::sync::Arc;

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use serde_json::json;

use super::{AppState, problem::Problem};

/// `GET /health/status`.
pub async fn status(State(app): State<Arc<AppState>>) -> impl IntoResponse {
    let snapshot = app.runtime.registry().snapshot();
    let components: Vec<_> = snapshot
        .components()
        .map(|c| json!({ "name": c.name, "version": c.version, "status": "loaded" }))
        .collect();
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": app.started.elapsed().as_secs(),
        "components": components,
    }))
}

/// `GET /health/database`: 200 with the round-trip latency, or 503.
pub async fn database(State(app): State<Arc<AppState>>) -> axum::response::Response {
    match app.db.ping().await {
        Ok(latency) => Json(json!({
            "status": "ok",
            "backend": app.db.backend_name(),
            "latency_ms": latency.as_secs_f64() * 1000.0,
        }))
        .into_response(),
        Err(error) => {
            tracing::error!("database health check failed: {error:#}");
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database-unavailable",
                format!("the {} database is unreachable", app.db.backend_name()),
            )
            .retry_after(5)
            .into_response()
        }
    }
}

/// `GET /metrics` in Prometheus text format.
pub async fn metrics(State(app): State<Arc<AppState>>) -> impl IntoResponse {
    let snapshot = app.runtime.registry().snapshot();
    for component in snapshot.components() {
        metrics::gauge!(
            "souk_component_info",
            "component" => component.name.clone(),
            "version" => component.version.clone(),
            "sha256" => component.sha256.clone(),
        )
        .set(1.0);
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.render(),
    )
}
