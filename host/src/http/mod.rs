//! The HTTP edge: the router, request ids, tracing, body limits, and the
//! dispatch of `/api/v1/...` to the component that serves the path.

mod admin;
mod dispatch;
mod health;
pub mod login_guard;
mod openapi;
pub mod problem;

use std::{sync::Arc, time::Instant};

use axum::{
    Router,
    extract::Request,
    http::{HeaderName, HeaderValue},
    middleware::{self, Next},
    response::Response,
    routing::get,
};
use metrics_exporter_prometheus::PrometheusHandle;
use tower::ServiceBuilder;
use tower_http::{
    catch_panic::CatchPanicLayer,
    request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer},
    trace::TraceLayer,
};

use crate::{auth::TokenVerifier, config::Settings, runtime::Runtime, storage::Database};
use login_guard::LoginGuard;
use problem::Problem;

/// The header that carries the request id.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What every handler shares.
pub struct AppState {
    /// Loaded components and the calls into them.
    pub runtime: Arc<Runtime>,
    /// The database (health checks; units of work).
    pub db: Database,
    /// Verifies bearer tokens.
    pub verifier: TokenVerifier,
    /// Counts login failures.
    pub login_guard: LoginGuard,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// When the application started, for uptime.
    pub started: Instant,
    /// Limits and other settings.
    pub settings: Settings,
}

/// Build the application's router.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/health/status", get(health::status))
        .route("/health/database", get(health::database))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(openapi::document))
        .route("/docs", get(openapi::docs))
        .route("/admin/components", get(admin::list))
        .route(
            "/admin/components/{name}",
            axum::routing::put(admin::deploy)
                .delete(admin::unload)
                .layer(axum::extract::DefaultBodyLimit::max(admin::MAX_COMPONENT_BYTES)),
        )
        .route("/admin/components/{name}/rollback", axum::routing::post(admin::rollback))
        .fallback(dispatch::dispatch)
        .with_state(state)
        .layer(
            ServiceBuilder::new()
                .layer(middleware::from_fn(drop_invalid_request_id))
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuidV7))
                .layer(
                    TraceLayer::new_for_http().make_span_with(|request: &Request| {
                        let id = request
                            .headers()
                            .get(REQUEST_ID)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("-");
                        tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
                    }),
                )
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(CatchPanicLayer::custom(|_| {
                    use axum::response::IntoResponse;
                    Problem::internal().into_response()
                })),
        )
}

/// New request ids are UUIDv7: unique and roughly time-ordered in logs.
#[derive(Clone, Copy)]
struct MakeRequestUuidV7;

impl MakeRequestId for MakeRequestUuidV7 {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&uuid::Uuid::now_v7().to_string())
            .ok()
            .map(RequestId::new)
    }
}

/// An incoming request id is echoed only if it is 1-128 characters of
/// `[A-Za-z0-9._:-]`; anything else is replaced, so logs cannot be forged.
async fn drop_invalid_request_id(mut request: Request, next: Next) -> Response {
    let valid = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_valid_request_id);
    if !valid {
        request.headers_mut().remove(REQUEST_ID);
    }
    next.run(request).await
}

fn is_valid_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'))
}

#[cfg(test)]
mod tests {
    use super::is_valid_request_id;

    #[test]
    fn request_ids_are_validated() {
        assert!(is_valid_request_id("abc-123_x.y:z"));
        assert!(!is_valid_request_id(""));
        assert!(!is_valid_request_id("has space"));
        assert!(!is_valid_request_id("line\nbreak"));
        assert!(!is_valid_request_id(&"a".repeat(129)));
    }
}
