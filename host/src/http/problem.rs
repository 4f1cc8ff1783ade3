//! RFC 9457 problem details: the one place where every failure becomes an
//! HTTP response. A component's own error answer (its WIT `error`) maps
//! here; everything the host refuses itself, call failures included, is a
//! [`Refusal`] with its own table ([`refusal`]). Each maps to one status
//! and one stable `type` slug. Details never carry SQL, paths, traps or
//! secrets: internal causes are logged, and the client gets the request id
//! to quote.
//!
//! The edge's own refusals that axum makes (a platform route's 404 or 405,
//! an extractor's rejection, a caught panic) are made problems here too:
//! [`complete`] runs on every response at the edge, puts the request id into
//! any problem rendered without one, and turns any other error response the
//! host produced (not one a component answered) into a problem.

mod refusal;

pub use refusal::{Cause, Refusal, Wait};

use axum::{
    body::{Body, to_bytes},
    http::{HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use crate::bindings::types::{Error as WitError, FieldError};

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
    /// A problem of kind `slug` (becomes `urn:souk:error:<slug>`). Private:
    /// the host's problems come from [`Refusal`], components' from their
    /// WIT `error`.
    fn new(status: StatusCode, slug: &str, detail: impl Into<String>) -> Self {
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

    /// Ask the client to wait as [`Wait`] says (sets `Retry-After`).
    fn wait(mut self, wait: Wait) -> Self {
        self.retry_after = Some(wait.seconds());
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

/// 400 `invalid-input` naming each bad field (or parameter) with why.
fn invalid_input(fields: impl IntoIterator<Item = FieldError>) -> Problem {
    let mut problem = Problem::new(
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

/// 500 with nothing but the request id to go on.
fn internal() -> Problem {
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "an internal error occurred; quote the request id when reporting it",
    )
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
        Problem::from(Refusal::Edge { status, detail }).with_request_id(request_id),
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
            WitError::InvalidInput(fields) => invalid_input(fields),
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
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail).wait(Wait::Moment)
            }
            WitError::Internal(detail) => {
                tracing::error!(%detail, "component reported an internal error");
                internal()
            }
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
    }
}
