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

/// `GET /metrics` in Prometheus text format: the recorder's counters and
/// histograms, plus one `souk_component_info` line per component serving
/// now (written from the registry, so replaced versions disappear).
pub async fn metrics(State(app): State<Arc<AppState>>) -> impl IntoResponse {
    let mut text = app.metrics.render();
    text.push_str(&component_info(&app.runtime.registry().snapshot()));
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

fn component_info(snapshot: &crate::runtime::registry::Snapshot) -> String {
    let mut text = String::from(
        "# HELP souk_component_info The component versions serving now (always 1).\n\
         # TYPE souk_component_info gauge\n",
    );
    for component in snapshot.components() {
        text.push_str(&format!(
            "souk_component_info{{component=\"{}\",version=\"{}\",sha256=\"{}\"}} 1\n",
            label(&component.name),
            label(&component.version),
            label(&component.sha256),
        ));
    }
    text
}

/// Escape a Prometheus label value.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::label;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(label("x\ny"), "x\\ny");
    }
}
