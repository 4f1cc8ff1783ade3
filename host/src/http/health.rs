//! Platform endpoints: liveness with component versions, database health,
//! and Prometheus metrics.
//!
//! `/health/status` says the truth: it is `degraded`, with a `problems`
//! list, when a component that should serve cannot load (its entry in
//! `components` then has a status other than `serving` and a `reason`) or
//! a background loop (reconciler, deployment listener, watch) is failing.
//! It stays 200 either way: the process is alive and serving what it can;
//! `/health/database` is the readiness check that answers 503.

use std::sync::{Arc, Mutex, OnceLock};

use axum::{Json, extract::State, response::IntoResponse};
use serde_json::json;

use super::{AppState, problem::Refusal};
use crate::runtime::background::FailureLog;

/// Longest reason or detail `/health/status` shows.
const MAX_PUBLIC_DETAIL: usize = 200;

/// What an anonymous caller may read of a failure: its first line only
/// (a trap's backtrace or a database error's context stays in the log),
/// without control characters, and at most [`MAX_PUBLIC_DETAIL`]
/// characters (a subscriber's error text is the extension's to choose).
fn public(detail: &str) -> String {
    let first_line = detail.lines().next().unwrap_or_default();
    let mut shown: String = first_line
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_PUBLIC_DETAIL)
        .collect();
    if first_line.chars().count() > MAX_PUBLIC_DETAIL {
        shown.push('…');
    }
    shown
}

/// `GET /health/status`: `{status, version, uptime_seconds, components:
/// [{name, version, status, reason?}], problems: [{source, detail,
/// failing_seconds}]}`; `status` is `ok` or `degraded`.
pub async fn status(State(app): State<Arc<AppState>>) -> impl IntoResponse {
    let snapshot = app.runtime.registry().snapshot();
    let failed = app.runtime.failed_components();
    let mut problems = Vec::new();
    let mut components: Vec<_> = snapshot
        .components()
        .map(|c| match failed.iter().find(|f| f.name == c.name) {
            // An older version serves; the deployed one cannot load.
            Some(failure) => json!({
                "name": c.name, "version": c.version, "status": "outdated",
                "reason": public(&failure.reason),
            }),
            None => json!({ "name": c.name, "version": c.version, "status": "serving" }),
        })
        .collect();
    for failure in &failed {
        if snapshot.get(&failure.name).is_none() {
            components.push(json!({
                "name": failure.name, "version": null, "status": "failed",
                "reason": public(&failure.reason),
            }));
        }
        problems.push(json!({
            "source": format!("component:{}", failure.name),
            "detail": public(&failure.reason),
            "failing_seconds": failure.failing_for.as_secs(),
        }));
    }
    for (source, problem) in app.runtime.background().problems() {
        problems.push(json!({
            "source": source,
            "detail": public(&problem.detail),
            "failing_seconds": problem.since.elapsed().as_secs(),
        }));
    }
    Json(json!({
        "status": if problems.is_empty() { "ok" } else { "degraded" },
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": app.started.elapsed().as_secs(),
        "components": components,
        "problems": problems,
    }))
}

/// `GET /health/database`: 200 with the round-trip latency, or 503.
pub async fn database(State(app): State<Arc<AppState>>) -> axum::response::Response {
    match app.db.ping().await {
        Ok(latency) => {
            database_failures().succeeded();
            Json(json!({
            "status": "ok",
            "backend": app.db.backend_name(),
            "latency_ms": latency.as_secs_f64() * 1000.0,
            }))
            .into_response()
        }
        Err(error) => {
            // Probes may ask every second: say it once, not per probe.
            database_failures().failed(&format_args!("{error:#}"));
            Refusal::DatabaseUnreachable {
                backend: app.db.backend_name(),
            }
            .into_response()
        }
    }
}

/// The log of failed database health checks, shared by every request.
fn database_failures() -> std::sync::MutexGuard<'static, FailureLog> {
    static LOG: OnceLock<Mutex<FailureLog>> = OnceLock::new();
    LOG.get_or_init(|| Mutex::new(FailureLog::new("the database health check")))
        .lock()
        .unwrap_or_else(|e| e.into_inner())
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
    #[test]
    fn public_details_are_one_short_clean_line() {
        assert_eq!(super::public("trap\n  at wasm backtrace"), "trap");
        assert_eq!(super::public("a\u{7}b"), "ab");
        let long = super::public(&"x".repeat(1000));
        assert_eq!(long.chars().count(), super::MAX_PUBLIC_DETAIL + 1);
    }

    use super::label;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(label("x\ny"), "x\\ny");
    }
}
