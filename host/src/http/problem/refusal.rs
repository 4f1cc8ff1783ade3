//! The host's own refusals: every error the host answers itself, rather
//! than one a component answered, is a [`Refusal`]. One exhaustive `match`
//! (`From<Refusal> for Problem`) gives each its status, `type` slug, detail
//! and `Retry-After`; the title follows from the status. [`Wait`] is the
//! one `Retry-After` policy, for refusals and components' answers alike.
//!
//! A refusal keeps what caused it as its error source. The cause is logged
//! once, when the refusal becomes the problem sent, and never sent itself:
//! the client gets the request id to quote instead.

use std::{borrow::Cow, error::Error, fmt, time::Duration};

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};

use super::{Problem, internal, invalid_input};
use crate::{bindings::types::FieldError, runtime::CallError};

/// What caused a refusal, kept for the log.
pub type Cause = Box<dyn Error + Send + Sync + 'static>;

/// A request the host refuses, or cannot serve, on its own account.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The request as a whole makes no sense to the host: a path that
    /// cannot be made canonical, a body that is not a JSON object, an
    /// update that changes nothing.
    #[error("bad request: {0}")]
    BadRequest(Cow<'static, str>),
    /// Input of one of the host's own routes is wrong; names every bad
    /// field or parameter, not only the first.
    #[error("invalid input")]
    InvalidInput(Vec<FieldError>),
    /// Deployed bytes the host cannot load; the reason is the deployer's
    /// to read.
    #[error("invalid component: {0}")]
    InvalidComponent(String),
    /// A route that needs a caller got no bearer token.
    #[error("no bearer token")]
    MissingToken,
    /// The bearer token is malformed, expired, foreign or revoked.
    #[error("invalid bearer token")]
    InvalidToken,
    /// The caller is known but may not do this.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// Nothing at this path, or none of the host's things (a webhook, a
    /// component) by this name.
    #[error("not found: {0}")]
    NotFound(Cow<'static, str>),
    /// The request body did not arrive within the edge's timeouts.
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    /// What was asked of a core service only an extension allows.
    #[error("{0}")]
    CoreService(String),
    /// A rollback with no earlier version to go back to.
    #[error("{0}")]
    NoPreviousVersion(String),
    /// A request body over the limit of `limit` bytes.
    #[error("request body over {limit} bytes")]
    PayloadTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// A component upload over the deploy limit of `limit` bytes.
    #[error("component upload over {limit} bytes")]
    ComponentTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// A request target over `limit` bytes.
    #[error("request target over {limit} bytes")]
    UriTooLong {
        /// The limit, in bytes.
        limit: usize,
    },
    /// A request head with more than `fields` header fields or `bytes`
    /// bytes of them.
    #[error("request head over {fields} fields or {bytes} bytes")]
    HeadersTooLarge {
        /// The most header fields accepted.
        fields: usize,
        /// The most header bytes accepted.
        bytes: usize,
    },
    /// A body that is not of the one media type a route takes.
    #[error("a body not of type {media}")]
    UnsupportedMediaType {
        /// What to send, in words ("JSON").
        send: &'static str,
        /// Its media type (`application/json`).
        media: &'static str,
    },
    /// A component answered more than it may send (body and headers).
    #[error("the response is over the component's limit")]
    ResponseTooLarge(#[source] Cause),
    /// The call into a component failed as a call (not as the
    /// component's own error answer): capacity, deadline, memory, a trap,
    /// a missing grant or component, a throttle.
    #[error("the call into a component failed")]
    Call(#[from] CallError),
    /// The database could not complete the request.
    #[error("the database could not complete the request")]
    DatabaseFailed(#[source] Cause),
    /// The database does not answer at all (the health check, which logs
    /// its failures itself, once per outage rather than per probe).
    #[error("the {backend} database is unreachable")]
    DatabaseUnreachable {
        /// `sqlite` or `postgres`.
        backend: &'static str,
    },
    /// A bug in the host; `context` says where it showed.
    #[error("{context}")]
    Internal {
        /// Where the bug showed, for the log.
        context: &'static str,
        /// What went wrong there.
        #[source]
        cause: Cause,
    },
    /// An error status axum answered with on its own: a platform route's
    /// 404 or 405, an extractor's rejection. `detail` is what axum said,
    /// if anything; for a 5xx it is never shown (it could describe
    /// internals).
    #[error("{status}")]
    Edge {
        /// The status axum answered.
        status: StatusCode,
        /// axum's short text, if it said anything.
        detail: Option<String>,
    },
}

/// The detail of a 404 for a path nothing serves.
const NO_RESOURCE: &str = "no resource at this path";

impl Refusal {
    /// A host bug that showed at `context`, caused by `cause`.
    pub fn internal(context: &'static str, cause: impl Into<Cause>) -> Self {
        Self::Internal {
            context,
            cause: cause.into(),
        }
    }

    /// A 404 for a path no component or platform route serves.
    pub fn no_route() -> Self {
        Self::NotFound(NO_RESOURCE.into())
    }

    /// The database failed the request with `cause`.
    pub fn database(cause: impl Into<Cause>) -> Self {
        Self::DatabaseFailed(cause.into())
    }

    /// The response for this refusal, carrying `request_id`.
    pub fn respond(self, request_id: &str) -> Response {
        Problem::from(self)
            .with_request_id(request_id)
            .into_response()
    }

    /// Log what caused this refusal (if anything did), once: as an error
    /// when the host or a component failed (`status` is 5xx), else as a
    /// warning.
    fn log(&self, status: StatusCode) {
        if self.source().is_none() {
            return;
        }
        let chain = Chain(self);
        if status.is_server_error() {
            tracing::error!("{chain}");
        } else {
            tracing::warn!("{chain}");
        }
    }
}

/// The one table of the host's refusals.
impl From<Refusal> for Problem {
    fn from(refusal: Refusal) -> Self {
        use StatusCode as S;
        let problem = match &refusal {
            Refusal::BadRequest(detail) => Problem::new(S::BAD_REQUEST, "bad-request", &**detail),
            Refusal::InvalidInput(fields) => invalid_input(fields.iter().cloned()),
            Refusal::InvalidComponent(detail) => {
                Problem::new(S::BAD_REQUEST, "invalid-component", detail.as_str())
            }
            Refusal::MissingToken => Problem::new(
                S::UNAUTHORIZED,
                "unauthorized",
                "a bearer token is required",
            ),
            Refusal::InvalidToken => Problem::new(
                S::UNAUTHORIZED,
                "unauthorized",
                "the bearer token is malformed, expired or no longer valid",
            ),
            Refusal::Forbidden(detail) => Problem::new(S::FORBIDDEN, "forbidden", *detail),
            Refusal::NotFound(detail) => Problem::new(S::NOT_FOUND, "not-found", &**detail),
            Refusal::RequestTimeout => Problem::new(
                S::REQUEST_TIMEOUT,
                "request-timeout",
                "the request body did not arrive in time",
            ),
            Refusal::CoreService(detail) => {
                Problem::new(S::CONFLICT, "core-service", detail.as_str())
            }
            Refusal::NoPreviousVersion(detail) => {
                Problem::new(S::CONFLICT, "no-previous-version", detail.as_str())
            }
            Refusal::PayloadTooLarge { limit } => Problem::new(
                S::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                format!("the request body exceeds {limit} bytes"),
            ),
            Refusal::ComponentTooLarge { limit } => Problem::new(
                S::PAYLOAD_TOO_LARGE,
                "too-large",
                format!("a component may be at most {} MiB", limit >> 20),
            ),
            Refusal::UriTooLong { limit } => Problem::new(
                S::URI_TOO_LONG,
                "uri-too-long",
                format!("the request target exceeds {limit} bytes"),
            ),
            Refusal::HeadersTooLarge { fields, bytes } => Problem::new(
                S::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers-too-large",
                format!(
                    "the request has more than {fields} header fields or {bytes} bytes of them"
                ),
            ),
            Refusal::UnsupportedMediaType { send, media } => Problem::new(
                S::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                format!("send {send} with Content-Type: {media}"),
            ),
            Refusal::ResponseTooLarge(_) => Problem::new(
                S::INTERNAL_SERVER_ERROR,
                "response-too-large",
                "the service produced a response larger than it is allowed to",
            ),
            Refusal::Call(CallError::Overloaded(_)) => Problem::new(
                S::SERVICE_UNAVAILABLE,
                "overloaded",
                "the service is at capacity; retry shortly",
            )
            .wait(Wait::Moment),
            Refusal::Call(CallError::Deadline(_)) => Problem::new(
                S::SERVICE_UNAVAILABLE,
                "deadline-exceeded",
                "the service took too long to answer",
            )
            .wait(Wait::Moment),
            Refusal::Call(CallError::MemoryLimit(_)) => Problem::new(
                S::SERVICE_UNAVAILABLE,
                "memory-limit",
                "the service ran out of its memory allowance",
            ),
            Refusal::Call(CallError::NotLoaded(_)) => Problem::new(
                S::SERVICE_UNAVAILABLE,
                "unavailable",
                "a service this request needs is not loaded",
            )
            .wait(Wait::Reload),
            Refusal::Call(CallError::NotGranted { .. }) => Problem::new(
                S::SERVICE_UNAVAILABLE,
                "not-granted",
                "the service is not granted something this request needs",
            ),
            Refusal::Call(CallError::Throttled { retry_after, .. }) => Problem::new(
                S::TOO_MANY_REQUESTS,
                "rate-limited",
                "too many failed logins; wait before trying again",
            )
            .wait(Wait::Until(*retry_after)),
            Refusal::Call(CallError::Trap { .. }) => Problem::new(
                S::INTERNAL_SERVER_ERROR,
                "component-fault",
                "the service failed while handling the request; nothing was changed",
            ),
            Refusal::Call(CallError::Host { .. }) => Problem::new(
                S::SERVICE_UNAVAILABLE,
                "unavailable",
                "the service could not be started for this request; retry shortly",
            )
            .wait(Wait::Moment),
            Refusal::DatabaseFailed(_) => Problem::new(
                S::SERVICE_UNAVAILABLE,
                "database-unavailable",
                "the database could not complete the request; retry later",
            )
            .wait(Wait::Moment),
            Refusal::DatabaseUnreachable { backend } => Problem::new(
                S::SERVICE_UNAVAILABLE,
                "database-unavailable",
                format!("the {backend} database is unreachable"),
            )
            .wait(Wait::Moment),
            Refusal::Internal { .. } => internal(),
            Refusal::Edge { status, detail } => edge(*status, detail.as_deref()),
        };
        refusal.log(problem.status());
        problem
    }
}

impl IntoResponse for Refusal {
    /// Without the request id, which the edge adds on the way out
    /// ([`super::complete`]); where the id is known, use
    /// [`Refusal::respond`].
    fn into_response(self) -> Response {
        Problem::from(self).into_response()
    }
}

/// The problem for an error status axum answered with on its own.
fn edge(status: StatusCode, detail: Option<&str>) -> Problem {
    // API.md: a body that is not valid JSON or not of the expected shape
    // is 400; axum's JSON extractor says 422 for the latter.
    let status = if status == StatusCode::UNPROCESSABLE_ENTITY {
        StatusCode::BAD_REQUEST
    } else {
        status
    };
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        return internal();
    }
    if status.is_server_error() {
        return Problem::new(
            status,
            &slug_of(status),
            "the service cannot answer right now; retry later",
        );
    }
    let slug = match status {
        StatusCode::TOO_MANY_REQUESTS => "rate-limited".to_owned(),
        _ => slug_of(status),
    };
    let detail = match detail {
        Some(detail) => detail,
        None if status == StatusCode::NOT_FOUND => NO_RESOURCE,
        None => status
            .canonical_reason()
            .unwrap_or("the request was refused"),
    };
    Problem::new(status, &slug, detail)
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

/// The one `Retry-After` policy: how long a refused client should wait
/// before trying again, by why it was refused. Refusals that waiting does
/// not cure (bad input, a missing grant, a memory limit) carry none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// This attempt ran out of capacity or time, or the database or a
    /// component could not complete it: the next one may well succeed.
    Moment,
    /// A component the request needs is not loaded: it comes back with a
    /// deploy or the reconciler's next attempt.
    Reload,
    /// A throttle admits the client again after this long.
    Until(Duration),
}

impl Wait {
    /// The `Retry-After` value, in whole seconds (at least 1).
    pub fn seconds(self) -> u64 {
        let seconds = match self {
            Self::Moment => 1,
            Self::Reload => 5,
            // Rounded up: retrying at the floor would be refused again.
            Self::Until(wait) => wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
        };
        seconds.max(1)
    }
}

/// An error and its sources on one line, `a: b: c`, leaving out a source
/// whose text its predecessor already includes (errors that print their
/// cause inside their own message).
struct Chain<'a>(&'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.0.to_string();
        f.write_str(&shown)?;
        let mut next = self.0.source();
        while let Some(source) = next {
            let text = source.to_string();
            if !shown.contains(&text) {
                write!(f, ": {text}")?;
            }
            shown = text;
            next = source.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One refusal of every kind (every arm of the table).
    fn every_refusal() -> Vec<Refusal> {
        let component = || "c".to_owned();
        vec![
            Refusal::BadRequest("b".into()),
            Refusal::InvalidInput(vec![FieldError {
                field: "f".into(),
                message: "m".into(),
            }]),
            Refusal::InvalidComponent("i".into()),
            Refusal::MissingToken,
            Refusal::InvalidToken,
            Refusal::Forbidden("no"),
            Refusal::no_route(),
            Refusal::RequestTimeout,
            Refusal::CoreService("core".into()),
            Refusal::NoPreviousVersion("none".into()),
            Refusal::PayloadTooLarge { limit: 1 },
            Refusal::ComponentTooLarge { limit: 1 << 20 },
            Refusal::UriTooLong { limit: 1 },
            Refusal::HeadersTooLarge {
                fields: 1,
                bytes: 1,
            },
            Refusal::UnsupportedMediaType {
                send: "JSON",
                media: "application/json",
            },
            Refusal::ResponseTooLarge("9 bytes".into()),
            Refusal::Call(CallError::Overloaded(component())),
            Refusal::Call(CallError::Deadline(component())),
            Refusal::Call(CallError::MemoryLimit(component())),
            Refusal::Call(CallError::NotLoaded(component())),
            Refusal::Call(CallError::NotGranted {
                component: component(),
                interface: "i".into(),
            }),
            Refusal::Call(CallError::Throttled {
                component: component(),
                retry_after: Duration::from_millis(2500),
            }),
            Refusal::Call(CallError::Trap {
                component: component(),
                message: "wasm backtrace at /src/lib.rs:3".into(),
            }),
            Refusal::Call(CallError::Host {
                component: component(),
                source: anyhow::anyhow!("pool exhausted"),
            }),
            Refusal::database(sqlx::Error::PoolTimedOut),
            Refusal::DatabaseUnreachable { backend: "sqlite" },
            Refusal::internal("a test", "SELECT secret FROM /etc/passwd"),
            Refusal::Edge {
                status: StatusCode::METHOD_NOT_ALLOWED,
                detail: None,
            },
        ]
    }

    fn json(problem: &Problem) -> serde_json::Value {
        serde_json::to_value(problem).unwrap_or_default()
    }

    #[test]
    fn a_slug_always_means_one_status_and_one_wait() {
        let mut seen = std::collections::BTreeMap::new();
        for refusal in every_refusal() {
            let what = format!("{refusal:?}");
            let problem = Problem::from(refusal);
            let wait = problem.retry_after.is_some();
            let row = (problem.status, wait);
            if let Some(earlier) = seen.insert(problem.kind.clone(), row) {
                // Throttles wait as long as they say, but always wait.
                assert_eq!(earlier, row, "{} in {what}", problem.kind);
            }
        }
    }

    #[test]
    fn every_refusal_is_a_complete_problem_with_the_request_id() {
        for refusal in every_refusal() {
            let what = format!("{refusal:?}");
            let body = json(&Problem::from(refusal).with_request_id("r-7"));
            assert!(
                body["type"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("urn:souk:error:")),
                "{what}"
            );
            assert!(body["title"].is_string(), "{what}");
            assert!(body["status"].is_u64(), "{what}");
            assert!(body["detail"].is_string(), "{what}");
            assert_eq!(body["request_id"], "r-7", "{what}");
        }
    }

    #[test]
    fn retry_after_only_where_waiting_helps() {
        for refusal in every_refusal() {
            let what = format!("{refusal:?}");
            let problem = Problem::from(refusal);
            // A memory limit or a missing grant is there on the next try.
            let cured_by_waiting = matches!(
                problem.status,
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
            ) && !problem.kind.ends_with(":memory-limit")
                && !problem.kind.ends_with(":not-granted");
            assert_eq!(problem.retry_after.is_some(), cured_by_waiting, "{what}");
        }
    }

    #[test]
    fn each_situation_waits_as_the_policy_says() {
        for (refusal, seconds) in [
            (Refusal::from(CallError::Overloaded("c".into())), 1),
            (Refusal::from(CallError::NotLoaded("c".into())), 5),
            (
                Refusal::from(CallError::Throttled {
                    component: "c".into(),
                    retry_after: Duration::from_millis(2500),
                }),
                3,
            ),
            (Refusal::DatabaseUnreachable { backend: "sqlite" }, 1),
            (Refusal::database(sqlx::Error::PoolTimedOut), 1),
        ] {
            let what = format!("{refusal:?}");
            assert_eq!(Problem::from(refusal).retry_after, Some(seconds), "{what}");
        }
    }

    #[test]
    fn the_wait_policy_rounds_throttles_up_and_never_says_zero() {
        assert_eq!(Wait::Moment.seconds(), 1);
        assert_eq!(Wait::Reload.seconds(), 5);
        assert_eq!(Wait::Until(Duration::from_millis(2001)).seconds(), 3);
        assert_eq!(Wait::Until(Duration::from_secs(2)).seconds(), 2);
        assert_eq!(Wait::Until(Duration::ZERO).seconds(), 1);
    }

    #[test]
    fn causes_never_reach_the_client() {
        for refusal in every_refusal() {
            let body = serde_json::to_string(&Problem::from(refusal)).unwrap_or_default();
            for secret in ["backtrace", "SELECT", "/etc", "pool", "timed out"] {
                assert!(!body.contains(secret), "{body}");
            }
        }
    }

    #[test]
    fn a_cause_is_kept_as_the_source() {
        let refusal = Refusal::database(sqlx::Error::PoolTimedOut);
        let source = refusal.source().map(ToString::to_string);
        assert_eq!(source, Some(sqlx::Error::PoolTimedOut.to_string()));
        let call = Refusal::from(CallError::Deadline("c".into()));
        assert!(call.source().is_some_and(|s| s.is::<CallError>()));
    }

    #[test]
    fn the_logged_chain_says_each_cause_once() {
        let refusal = Refusal::Call(CallError::Host {
            component: "c".into(),
            source: anyhow::anyhow!("pool exhausted"),
        });
        assert_eq!(
            Chain(&refusal).to_string(),
            "the call into a component failed: cannot call component `c`: pool exhausted"
        );
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
            let problem = Problem::from(Refusal::Edge {
                status,
                detail: None,
            });
            assert_eq!(problem.kind, format!("urn:souk:error:{slug}"), "{status}");
        }
    }
}
