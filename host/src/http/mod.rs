//! The HTTP edge: the router, request ids, tracing, body limits, and the
//! dispatch of `/api/v1/...` to the component that serves the path.

mod admin;
pub mod canonical;
mod dispatch;
mod health;
pub mod openapi;
pub mod problem;
mod webhooks;

use std::{sync::Arc, time::Instant};

use axum::{
    Router,
    extract::Request,
    handler::Handler,
    http::{HeaderName, HeaderValue},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use metrics_exporter_prometheus::PrometheusHandle;
use tower::ServiceBuilder;
use tower_http::{
    catch_panic::CatchPanicLayer,
    request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer},
    trace::TraceLayer,
};

use crate::{
    auth::TokenVerifier, bindings::types::FieldError, config::Settings, runtime::Runtime,
    storage::Database,
};
use problem::Refusal;

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
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// When the application started, for uptime.
    pub started: Instant,
    /// Limits and other settings.
    pub settings: Settings,
}

/// Build the application's router.
pub fn router(state: Arc<AppState>) -> Router {
    let routes = Router::new()
        .route("/health/status", get(health::status))
        .route("/health/database", get(health::database))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(openapi::document))
        .route("/docs", get(openapi::docs))
        .route("/admin/components", get(admin::list))
        .route(
            "/admin/components/{name}",
            axum::routing::put(admin::deploy).delete(admin::unload),
        )
        .route(
            "/admin/components/{name}/rollback",
            axum::routing::post(admin::rollback),
        )
        .route("/admin/grants", get(admin::grants))
        .route("/admin/audit", get(admin::audit_log))
        .route(
            "/admin/webhooks",
            get(webhooks::list).post(webhooks::create),
        )
        .route(
            "/admin/webhooks/{id}",
            get(webhooks::get)
                .patch(webhooks::update)
                .delete(webhooks::delete),
        )
        .route("/admin/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route(
            "/admin/webhooks/{id}/replay",
            axum::routing::post(webhooks::replay),
        )
        .route(
            "/admin/grants/{component}",
            axum::routing::put(admin::set_grant).delete(admin::revoke_grant),
        )
        // The host's own routes only: a route layer wraps the routes added
        // above it and never the fallback (components get the same check
        // from their SDK). Keep it below the last `.route`.
        .route_layer(middleware::from_fn(refuse_unstorable_parameters))
        // Marked, so that the edge's problem layer never rewrites what a
        // component answered.
        .fallback(dispatch::dispatch.layer(middleware::map_response(mark_from_component)))
        .with_state(state);
    // Routing happens inside: the outer router only canonicalises the
    // method and path first, so every route matches on one spelling.
    with_edge_layers(
        Router::new()
            .fallback_service(routes)
            .layer(middleware::from_fn(canonical::canonicalize)),
    )
}

/// The layers every request passes first: request ids, tracing, problem
/// completion and the panic catcher, in that order from the outside in.
fn with_edge_layers(router: Router) -> Router {
    router.layer(
        ServiceBuilder::new()
            .layer(middleware::from_fn(drop_invalid_request_id))
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuidV7))
            .layer(
                TraceLayer::new_for_http().make_span_with(|request: &Request| {
                    let id = request_id(request.headers());
                    tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
                }),
            )
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            // Inside the request id layers, outside everything that can
            // fail: every error the edge makes is a problem with the id.
            .layer(middleware::from_fn(edge_problems))
            .layer(CatchPanicLayer::custom(panicked)),
    )
}

/// A path or query parameter of one of the host's own routes whose text no
/// database can store (NUL: PostgreSQL's `text` refuses it) is a 400 naming
/// the parameter, before any handler runs, as the SDK does for components.
/// Only the URL is looked at: bodies are read by handlers after they
/// authenticate the caller.
async fn refuse_unstorable_parameters(request: Request, next: Next) -> Response {
    let pattern = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|matched| matched.as_str().to_owned())
        .unwrap_or_default();
    let fields = unstorable_parameters(
        &pattern,
        request.uri().path(),
        request.uri().query().unwrap_or(""),
    );
    if fields.is_empty() {
        return next.run(request).await;
    }
    Refusal::InvalidInput(
        fields
            .into_iter()
            .map(|field| FieldError {
                field,
                message: problem::NUL_MESSAGE.to_owned(),
            })
            .collect(),
    )
    .respond(request_id(request.headers()))
}

/// The names of the parameters of `path` (matched by route `pattern`) and of
/// `query` that decode to text containing NUL. Percent-decoding yields a NUL
/// byte only from `%00` (a raw NUL cannot be in a URI), so that is what is
/// looked for.
fn unstorable_parameters(pattern: &str, path: &str, query: &str) -> Vec<String> {
    let has_nul = |text: &str| text.contains("%00");
    let mut fields: Vec<String> = pattern
        .split('/')
        .zip(path.split('/'))
        .filter_map(|(pattern, value)| {
            let name = pattern.strip_prefix('{')?.strip_suffix('}')?;
            has_nul(value).then(|| name.to_owned())
        })
        .collect();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if has_nul(name) || has_nul(value) {
            // Named as sent, minus the escapes: a name cannot be shown
            // decoded to NUL.
            let name = name.replace("%00", "");
            if !fields.contains(&name) {
                fields.push(name);
            }
        }
    }
    fields
}

/// A panic in a handler: 500 `internal`, the panic's message logged. The
/// request id is added on the way out ([`edge_problems`]), since the panic
/// layer sees only the panic.
fn panicked(payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned());
    Refusal::internal("a request handler panicked", message).into_response()
}

/// Marks a component's answer as such (see [`problem::FromComponent`]).
async fn mark_from_component(mut response: Response) -> Response {
    response.extensions_mut().insert(problem::FromComponent);
    response
}

/// Every error the edge answers itself (axum's 404 and 405 of platform
/// routes, extractor rejections, a caught panic, a problem rendered before
/// the request id was known) leaves as `application/problem+json` carrying
/// the request id; see [`problem::complete`].
async fn edge_problems(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let request_id = request_id(request.headers()).to_owned();
    let response = next.run(request).await;
    problem::complete(response, &method, &request_id).await
}

/// The request's id, as the edge's request-id layers set it (`-` outside
/// them).
pub fn request_id(headers: &axum::http::HeaderMap) -> &str {
    headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
}

/// Whether the request's `Content-Type` is `media` (parameters such as
/// `charset` ignored, case-insensitive).
pub fn has_media_type(headers: &axum::http::HeaderMap, media: &str) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|found| found.trim().eq_ignore_ascii_case(media))
}

/// A request body that must be a JSON object (the admin API's): 415
/// without `application/json`, 413 past `limit` bytes, 400 if it is not a
/// JSON object.
pub(crate) async fn json_object(
    headers: &axum::http::HeaderMap,
    body: axum::body::Body,
    limit: usize,
) -> Result<serde_json::Map<String, serde_json::Value>, Refusal> {
    if !has_media_type(headers, "application/json") {
        return Err(Refusal::UnsupportedMediaType {
            send: "JSON",
            media: "application/json",
        });
    }
    let body = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| Refusal::PayloadTooLarge { limit })?;
    match serde_json::from_slice(&body) {
        Ok(serde_json::Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(Refusal::BadRequest("the body must be a JSON object".into())),
        Err(_) => Err(Refusal::BadRequest("the body is not valid JSON".into())),
    }
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
    use super::*;
    use axum::{body::Body, http::StatusCode};
    use tower::ServiceExt;

    /// A router with a panicking route and a JSON route behind the edge
    /// layers, answering `request`: (status, headers, body).
    async fn edge(
        request: axum::http::Request<Body>,
    ) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        #[derive(serde::Deserialize)]
        struct Target {
            url: String,
        }
        async fn boom() -> &'static str {
            panic!("a bug at the edge")
        }
        async fn json(axum::Json(target): axum::Json<Target>) -> String {
            target.url
        }
        let router = with_edge_layers(
            Router::new()
                .route("/boom", get(boom))
                .route("/json", axum::routing::post(json)),
        );
        let response = router.oneshot(request).await.unwrap_or_else(|e| match e {});
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap_or_default();
        let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (status, headers, body)
    }

    fn request(method: &str, path: &str, body: &str) -> axum::http::Request<Body> {
        axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header(REQUEST_ID, "edge-test-1")
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap_or_default()
    }

    fn assert_problem(
        (status, headers, body): &(StatusCode, axum::http::HeaderMap, serde_json::Value),
        expected: u16,
    ) {
        assert_eq!(status.as_u16(), expected, "{body}");
        assert_eq!(
            headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/problem+json")
        );
        assert_eq!(
            headers.get(REQUEST_ID).and_then(|v| v.to_str().ok()),
            Some("edge-test-1")
        );
        assert_eq!(body["status"], expected);
        assert_eq!(body["request_id"], "edge-test-1");
    }

    #[test]
    fn parameters_with_nul_are_named() {
        assert_eq!(
            unstorable_parameters(
                "/admin/components/{name}/rollback",
                "/admin/components/x%00y/rollback",
                "force=1&actor=a%00&since=%002026&x%00=1"
            ),
            vec!["name", "actor", "since", "x"]
        );
        assert!(unstorable_parameters("/admin/audit", "/admin/audit", "actor=a%2500").is_empty());
    }

    #[tokio::test]
    async fn a_panic_is_a_problem_with_the_request_id() {
        let reply = edge(request("GET", "/boom", "")).await;
        assert_problem(&reply, 500);
        assert_eq!(reply.2["type"], "urn:souk:error:internal");
        assert!(!reply.2.to_string().contains("a bug at the edge"));
    }

    #[tokio::test]
    async fn axum_refusals_are_problems_with_the_request_id() {
        let reply = edge(request("DELETE", "/boom", "")).await;
        assert_problem(&reply, 405);
        assert_eq!(reply.2["type"], "urn:souk:error:method-not-allowed");
        assert_eq!(
            reply.1.get("allow").and_then(|v| v.to_str().ok()),
            Some("GET,HEAD")
        );

        let reply = edge(request("GET", "/nowhere", "")).await;
        assert_problem(&reply, 404);
        assert_eq!(reply.2["type"], "urn:souk:error:not-found");
    }

    #[tokio::test]
    async fn json_rejections_are_400_problems() {
        for body in ["{", "{\"uri\": 1}", "[]"] {
            let reply = edge(request("POST", "/json", body)).await;
            assert_problem(&reply, 400);
            assert_eq!(reply.2["type"], "urn:souk:error:bad-request", "{body}");
        }
        let mut no_type = request("POST", "/json", "{}");
        no_type.headers_mut().remove("content-type");
        let reply = edge(no_type).await;
        assert_problem(&reply, 415);
        assert_eq!(reply.2["type"], "urn:souk:error:unsupported-media-type");
    }

    #[test]
    fn request_ids_are_validated() {
        assert!(is_valid_request_id("abc-123_x.y:z"));
        assert!(!is_valid_request_id(""));
        assert!(!is_valid_request_id("has space"));
        assert!(!is_valid_request_id("line\nbreak"));
        assert!(!is_valid_request_id(&"a".repeat(129)));
    }
}
