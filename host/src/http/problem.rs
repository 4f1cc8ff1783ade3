//! RFC 9457 problem details: the one place where every failure becomes an
//! HTTP response. Component errors, call failures and the edge's own
//! refusals all map here, each to one status and one stable `type` slug.
//! Details never carry SQL, paths, traps or secrets: internal causes are
//! logged, and the client gets the request id to quote.

use axum::{
    http::{HeaderValue, StatusCode, header},
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
        let mut response = (status, body).into_response();
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
