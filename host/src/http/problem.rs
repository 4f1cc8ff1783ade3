//! RFC 9457 problem details: the one place where every failure becomes an
//! HTTP response. Component errors, call failures and the edge's own
//! refusals all map here, each to one status and one stable `type` slug.
//! Details never carry SQL, paths, traps or secrets: internal causes are
//! logged, and the client gets the request id to quote.
//!
//! The edge's own refusals that axum makes (a platform route's 404 or 405,
//! an extractor's rejection, a caught panic) are made problems here too:
//! [`complete`] runs on every response at the edge, puts the request id into
//! any problem rendered without one, and turns any other error response the
//! host produced (not one a component answered) into a problem.

use axum::{
    body::{Body, to_bytes},
    http::{HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use crate::{
    bindings::types::{Error as WitError, FieldError},
    runtime::CallError,
};

/// A problem document, ready to send.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    kind: String,
    title: &'static str,
    #[serde(serialize_with = "serialize_status")]
    status: StatusCode,
    detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<FieldProblem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
    #[serde(skip)]
    retry_after: Option<u64>,
}

/// One bad field.
#[derive(Debug, Clone, Serialize)]
pub struct FieldProblem {
    field: String,
    message: String,
}

fn serialize_status<S: serde::Serializer>(status: &StatusCode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u16(status.as_u16())
}

impl Problem {
    /// A problem of kind `slug` (becomes `urn:souk:error:<slug>`).
    pub fn new(status: StatusCode, slug: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("urn:souk:error:{slug}"),
            title: status.canonical_reason().unwrap_or("Error"),
            status,
            detail: detail.into(),
            errors: Vec::new(),
            request_id: None,
            retry_after: None,
        }
    }

    /// Attach the request id the client can quote.
    pub fn with_request_id(mut self, request_id: &str) -> Self {
        self.request_id = Some(request_id.to_owned());
        self
    }

    /// Ask the client to retry after `seconds` (sets `Retry-After`).
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// 404 for a path no component serves.
    pub fn no_route() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "no resource at this path",
        )
    }

    /// 401 for a missing, malformed, expired, foreign or revoked token.
    pub fn invalid_token() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the bearer token is malformed, expired or no longer valid",
        )
    }

    /// 413 for a body over the limit.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            format!("the request body exceeds {limit} bytes"),
        )
    }

    /// 400 `invalid-input` naming each bad field (or parameter) with why.
    pub fn invalid_fields(fields: Vec<(String, String)>) -> Self {
        let mut problem = Self::new(
            StatusCode::BAD_REQUEST,
            "invalid-input",
            "some fields are invalid; see `errors`",
        );
        problem.errors = fields
            .into_iter()
            .map(|(field, message)| FieldProblem { field, message })
            .collect();
        problem
    }

    /// 500 with nothing but the request id to go on.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an internal error occurred; quote the request id when reporting it",
        )
    }

    /// 503 because the database could not complete the request.
    pub fn database_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database-unavailable",
            "the database could not complete the request; retry later",
        )
        .retry_after(1)
    }

    /// The problem for an error status the edge (axum) answered with on its
    /// own, e.g. a 405 of a platform route or an extractor's rejection.
    /// `detail` is what axum said, if it said anything; for a 5xx it is
    /// never shown, since it could describe internals.
    fn for_edge_status(status: StatusCode, detail: Option<String>) -> Self {
        // API.md: a body that is not valid JSON or not of the expected shape
        // is 400; axum's JSON extractor says 422 for the latter.
        let status = if status == StatusCode::UNPROCESSABLE_ENTITY {
            StatusCode::BAD_REQUEST
        } else {
            status
        };
        if status.is_server_error() {
            return match status {
                StatusCode::INTERNAL_SERVER_ERROR => Self::internal(),
                _ => Self::new(
                    status,
                    &slug_of(status),
                    "the service cannot answer right now; retry later",
                ),
            };
        }
        let slug = match status {
            StatusCode::TOO_MANY_REQUESTS => "rate-limited".to_owned(),
            _ => slug_of(status),
        };
        let detail = detail.unwrap_or_else(|| match status {
            StatusCode::NOT_FOUND => "no resource at this path".to_owned(),
            _ => status
                .canonical_reason()
                .unwrap_or("the request was refused")
                .to_owned(),
        });
        Self::new(status, &slug, detail)
    }
}

/// A stable slug from a status's reason phrase: `Payload Too Large` →
/// `payload-too-large`, matching the slugs the host uses elsewhere.
fn slug_of(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => reason
            .chars()
            .filter_map(|c| match c {
                ' ' | '-' => Some('-'),
                c if c.is_ascii_alphanumeric() => Some(c.to_ascii_lowercase()),
                _ => None,
            })
            .collect(),
        None => format!("http-{}", status.as_u16()),
    }
}

/// Why a parameter with NUL is refused; the SDK says the same to clients
/// of components.
pub const NUL_MESSAGE: &str = "must not contain the NUL character (U+0000)";

/// Marks a response a component answered (successfully or with its own
/// error), so [`complete`] leaves it exactly as the component made it.
#[derive(Debug, Clone, Copy)]
pub struct FromComponent;

/// A problem rendered before the request id was known (e.g. by the panic
/// layer, which sees only the panic): [`complete`] re-renders it with the
/// id.
#[derive(Debug, Clone)]
struct WithoutRequestId(Problem);

/// The largest rejection text of axum's kept as a problem's detail.
const MAX_EDGE_DETAIL: usize = 1024;

/// Makes `response` a problem with `request_id` if the edge produced it as
/// an error: a [`Problem`] rendered without the id gets it; any other error
/// response not marked [`FromComponent`] and not already a problem becomes
/// one of its status (405 keeps its `Allow` header, 413 and 429 their
/// headers); successes and components' responses pass untouched.
pub async fn complete(response: Response, method: &Method, request_id: &str) -> Response {
    if let Some(WithoutRequestId(problem)) = response.extensions().get().cloned() {
        let (parts, _) = response.into_parts();
        return rerender(parts, problem.with_request_id(request_id));
    }
    let status = response.status();
    if status.as_u16() < 400 || response.extensions().get::<FromComponent>().is_some() {
        return response;
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("application/problem+json") {
        return response;
    }
    let (parts, body) = response.into_parts();
    // axum's rejections are short plain text worth passing on (e.g. which
    // JSON field was missing); anything else is not shown.
    let text = if content_type.starts_with("text/plain") {
        to_bytes(body, MAX_EDGE_DETAIL)
            .await
            .ok()
            .and_then(|bytes| String::from_utf8(bytes.to_vec()).ok())
            .map(|text| text.trim().to_owned())
            .filter(|text| !text.is_empty())
    } else {
        None
    };
    let detail = text.or_else(|| {
        let allow = parts.headers.get(header::ALLOW)?.to_str().ok()?;
        (status == StatusCode::METHOD_NOT_ALLOWED)
            .then(|| format!("{method} is not allowed here; allowed: {allow}"))
    });
    rerender(
        parts,
        Problem::for_edge_status(status, detail).with_request_id(request_id),
    )
}

/// `problem` as the response, keeping the headers of the response it
/// replaces (`Allow`, `Retry-After`, ...) except those of the old body.
fn rerender(old: axum::http::response::Parts, problem: Problem) -> Response {
    let mut response = problem.into_response();
    for (name, value) in &old.headers {
        if name != header::CONTENT_TYPE
            && name != header::CONTENT_LENGTH
            && !response.headers().contains_key(name)
        {
            response.headers_mut().append(name.clone(), value.clone());
        }
    }
    response
}

impl From<WitError> for Problem {
    fn from(error: WitError) -> Self {
        match error {
            WitError::InvalidInput(fields) => {
                let mut problem = Self::new(
                    StatusCode::BAD_REQUEST,
                    "invalid-input",
                    "some fields are invalid; see `errors`",
                );
                problem.errors = fields
                    .into_iter()
                    .map(|FieldError { field, message }| FieldProblem { field, message })
                    .collect();
                problem
            }
            WitError::BadRequest(detail) => {
                Self::new(StatusCode::BAD_REQUEST, "bad-request", detail)
            }
            WitError::Unauthorized(detail) => {
                Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
            }
            WitError::Forbidden(detail) => Self::new(StatusCode::FORBIDDEN, "forbidden", detail),
            WitError::NotFound(detail) => Self::new(StatusCode::NOT_FOUND, "not-found", detail),
            WitError::MethodNotAllowed(detail) => {
                Self::new(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", detail)
            }
            WitError::Conflict(conflict) => {
                let slug = if is_slug(&conflict.code) {
                    conflict.code.as_str()
                } else {
                    "conflict"
                };
                Self::new(StatusCode::CONFLICT, slug, conflict.detail)
            }
            WitError::Unavailable(detail) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail).retry_after(1)
            }
            WitError::Internal(detail) => {
                tracing::error!(%detail, "component reported an internal error");
                Self::internal()
            }
        }
    }
}

impl From<&CallError> for Problem {
    fn from(error: &CallError) -> Self {
        match error {
            CallError::Overloaded(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "the service is at capacity; retry shortly",
            )
            .retry_after(1),
            CallError::Deadline(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "deadline-exceeded",
                "the service took too long to answer",
            )
            .retry_after(1),
            CallError::MemoryLimit(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "memory-limit",
                "the service ran out of its memory allowance",
            ),
            CallError::NotLoaded(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "a service this request needs is not loaded",
            )
            .retry_after(5),
            CallError::NotGranted { .. } => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not-granted",
                "the service is not granted something this request needs",
            ),
            // Rounded up: retrying at the floor would be refused again.
            CallError::Throttled { retry_after, .. } => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "too many failed logins; wait before trying again",
            )
            .retry_after(retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0)),
            CallError::Trap { .. } => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "component-fault",
                "the service failed while handling the request; nothing was changed",
            ),
            CallError::Host { .. } => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the service could not be started for this request; retry shortly",
            )
            .retry_after(1),
        }
    }
}

/// A conflict code must be a plain slug to become part of a URI.
fn is_slug(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 64
        && code
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status;
        let retry_after = self.retry_after;
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, Body::from(body)).into_response();
        if self.request_id.is_none() {
            response.extensions_mut().insert(WithoutRequestId(self));
        }
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::types::ConflictInfo;

    #[test]
    fn invalid_input_names_every_field() {
        let problem = Problem::from(WitError::InvalidInput(vec![
            FieldError {
                field: "age".into(),
                message: "too young".into(),
            },
            FieldError {
                field: "username".into(),
                message: "taken".into(),
            },
        ]));
        let json = serde_json::to_value(&problem).unwrap_or_default();
        assert_eq!(json["status"], 400);
        assert_eq!(json["type"], "urn:souk:error:invalid-input");
        assert_eq!(json["errors"][1]["field"], "username");
    }

    #[test]
    fn conflicts_keep_their_code_as_the_type() {
        let problem = Problem::from(WitError::Conflict(ConflictInfo {
            code: "insufficient-funds".into(),
            detail: "not enough".into(),
        }));
        assert_eq!(problem.status(), StatusCode::CONFLICT);
        assert_eq!(problem.kind, "urn:souk:error:insufficient-funds");
    }

    #[test]
    fn a_malformed_conflict_code_is_not_put_into_the_type() {
        let problem = Problem::from(WitError::Conflict(ConflictInfo {
            code: "Bad Code/../x".into(),
            detail: "d".into(),
        }));
        assert_eq!(problem.kind, "urn:souk:error:conflict");
    }

    #[test]
    fn edge_statuses_get_slugs_from_their_reason() {
        for (status, slug) in [
            (StatusCode::NOT_FOUND, "not-found"),
            (StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed"),
            (StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large"),
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type"),
            (StatusCode::UNPROCESSABLE_ENTITY, "bad-request"),
            (StatusCode::TOO_MANY_REQUESTS, "rate-limited"),
            (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            (StatusCode::SERVICE_UNAVAILABLE, "service-unavailable"),
        ] {
            let problem = Problem::for_edge_status(status, None);
            assert_eq!(problem.kind, format!("urn:souk:error:{slug}"), "{status}");
        }
    }

    #[tokio::test]
    async fn component_responses_are_left_alone() {
        let mut response = (StatusCode::CONFLICT, "plain").into_response();
        response.extensions_mut().insert(FromComponent);
        let response = complete(response, &Method::GET, "r-1").await;
        assert_eq!(
            response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            Some("text/plain; charset=utf-8")
        );
    }

    #[tokio::test]
    async fn server_error_text_is_never_shown() {
        let response = (StatusCode::INTERNAL_SERVER_ERROR, "/etc/secret at line 3").into_response();
        let response = complete(response, &Method::GET, "r-1").await;
        let bytes = to_bytes(response.into_body(), 4096)
            .await
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains("r-1"), "{text}");
    }

    #[test]
    fn internal_details_never_reach_the_client() {
        let problem = Problem::from(WitError::Internal("SELECT * FROM secrets".into()));
        let body = serde_json::to_string(&problem).unwrap_or_default();
        assert!(!body.contains("SELECT"), "{body}");
        let trap = CallError::Trap {
            component: "x".into(),
            message: "wasm backtrace /src/x.rs".into(),
        };
        let body = serde_json::to_string(&Problem::from(&trap)).unwrap_or_default();
        assert!(!body.contains("backtrace"), "{body}");
    }
}
