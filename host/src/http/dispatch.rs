//! Dispatch of business requests to components.
//!
//! Each request (method and path already canonical, see
//! [`super::canonical`]) goes through a few stages: [`route`] finds the
//! component by path prefix; [`serve_component`] bounds the body and, in
//! the request's unit of work ([`RequestScope::run`]), [`authenticate`]s the
//! caller (resolving their current identity) and [`call`]s the component,
//! whose answer must fit its limit ([`within_limit`]), keeping the work
//! only if the component succeeded (status < 400, no trap); [`into_http`]
//! turns the answer into the response.
//! Password guesses are throttled where passwords are verified, in the
//! `credentials` capability, not here.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Instant,
};

use axum::{
    body::{Body, Bytes, to_bytes},
    extract::{ConnectInfo, Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};

use super::{
    AppState,
    problem::{Problem, Refusal},
};
use crate::{
    bindings::types::{self, Identity},
    runtime::{registry::LoadedComponent, state::RequestScope},
    storage::{Intent, uow::UnitOfWork},
};

/// Headers never forwarded to a component.
const PRIVATE_HEADERS: [HeaderName; 3] = [
    header::AUTHORIZATION,
    header::COOKIE,
    header::PROXY_AUTHORIZATION,
];

/// Axum fallback: every path not served by the host itself.
pub async fn dispatch(
    State(app): State<Arc<AppState>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let request_id = super::request_id(&parts.headers).to_owned();
    let client = app.settings.trusted_proxies.client(
        client.ip(),
        parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    let (component, response) = serve(&app, client, parts, body, &request_id).await;
    let response = match response {
        Ok(response) => response,
        Err(problem) => problem.with_request_id(&request_id).into_response(),
    };
    let status = response.status().as_u16().to_string();
    metrics::counter!("souk_http_requests_total", "component" => component.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("souk_http_request_duration_seconds", "component" => component)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Serve one request; returns the component name (for metrics) and the
/// response or the problem to answer with.
async fn serve(
    app: &AppState,
    client: IpAddr,
    parts: Parts,
    body: Body,
    request_id: &str,
) -> (String, Result<Response, Problem>) {
    match route(app, parts.uri.path()) {
        Ok(component) => {
            let answer = serve_component(app, &component, client, parts, body, request_id).await;
            (component.name.clone(), answer)
        }
        Err(refusal) => ("-".into(), Err(refusal.into())),
    }
}

/// The component that serves `path` now.
fn route(app: &AppState, path: &str) -> Result<Arc<LoadedComponent>, Refusal> {
    let snapshot = app.runtime.registry().snapshot();
    snapshot.route(path).cloned().ok_or_else(Refusal::no_route)
}

/// Serve a request `component` owns: read the body, then, in the
/// request's unit of work, authenticate the caller and call the component;
/// keep the work only if the component succeeded, and send its answer.
async fn serve_component(
    app: &AppState,
    component: &Arc<LoadedComponent>,
    client: IpAddr,
    parts: Parts,
    body: Body,
    request_id: &str,
) -> Result<Response, Problem> {
    let limit = app.settings.max_body_bytes;
    let body = to_bytes(body, limit)
        .await
        .map_err(|_| Refusal::PayloadTooLarge { limit })?;
    let scope = RequestScope::new(
        UnitOfWork::new(app.db.clone(), intent_of(&parts.method)),
        request_id,
        client,
    );
    let answer = scope
        .run(
            app.runtime.event_bus(),
            async |scope| {
                let caller = authenticate(app, &parts.headers, scope).await?;
                let request = component_request(&parts, body, caller, request_id);
                call(app, component, scope, &request).await
            },
            // A component's error answer is sent, but what it wrote is not
            // kept: a request commits only if it succeeded (2xx or 3xx; an
            // invalid status is a bug, answered 500 below, and keeps nothing).
            |answer| matches!(answer, Ok(response) if (200..400).contains(&response.status)),
        )
        .await
        .map_err(Refusal::database)??;
    into_http(answer).map_err(Problem::from)
}

/// How the request's unit of work begins: reads need no write lock.
fn intent_of(method: &Method) -> Intent {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        Intent::Read
    } else {
        Intent::Write
    }
}

/// The request as the component sees it.
fn component_request(
    parts: &Parts,
    body: Bytes,
    caller: Option<Identity>,
    request_id: &str,
) -> types::Request {
    types::Request {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: forwarded_headers(&parts.headers),
        // Takes the buffer over when nothing else shares it (no copy).
        body: Vec::from(body),
        caller,
        request_id: request_id.to_owned(),
    }
}

/// Call `component` with `request`: its answer if it may be sent, or why
/// not (counted per component and kind of failure).
async fn call(
    app: &AppState,
    component: &Arc<LoadedComponent>,
    scope: &Arc<RequestScope>,
    request: &types::Request,
) -> Result<types::Response, Problem> {
    let failed = |kind: &'static str| {
        metrics::counter!("souk_component_failures_total", "component" => component.name.clone(), "kind" => kind)
            .increment(1);
    };
    match app.runtime.handle(component, scope.clone(), request).await {
        Ok(Ok(response)) => within_limit(component, response).map_err(|refusal| {
            failed("response-size");
            refusal.into()
        }),
        Ok(Err(error)) => Err(Problem::from(error)),
        Err(error) => {
            failed(failure_kind(&error));
            Err(Refusal::from(error).into())
        }
    }
}

/// `response` if it fits `component`'s response limit, headers included.
fn within_limit(
    component: &LoadedComponent,
    response: types::Response,
) -> Result<types::Response, Refusal> {
    let (bytes, limit) = (
        response_size(&response),
        component.access.grant.limits.max_response_bytes,
    );
    if bytes > limit {
        return Err(Refusal::ResponseTooLarge(
            format!(
                "component `{}` answered {bytes} bytes, over its limit of {limit}",
                component.name
            )
            .into(),
        ));
    }
    Ok(response)
}

/// The caller's current identity, if the request carries a bearer token.
pub(super) async fn authenticate(
    app: &AppState,
    headers: &HeaderMap,
    scope: &Arc<RequestScope>,
) -> Result<Option<Identity>, Problem> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        // The scheme is case-insensitive (RFC 9110 §11.1).
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or(Refusal::InvalidToken)?;
    let bearer = app.verifier.bearer(token).ok_or(Refusal::InvalidToken)?;
    match app
        .runtime
        .resolve_account(scope.clone(), &bearer.subject)
        .await
    {
        // A token carries the privileges of the moment it was issued: once
        // the customer's role or password changed, the epoch moved on.
        Ok(Ok(Some(account))) if account.token_epoch == bearer.token_epoch => {
            // Ignored if already set: one scope, one caller.
            let _ = scope.actor.set(account.identity.username.clone());
            Ok(Some(account.identity))
        }
        Ok(Ok(_)) => Err(Refusal::InvalidToken.into()),
        Ok(Err(error)) => Err(Problem::from(error)),
        Err(error) => Err(Refusal::from(error).into()),
    }
}

/// What a component's response costs to send: its body and every header
/// (a component must not slip an 8 MiB header past its response limit).
fn response_size(response: &types::Response) -> usize {
    let headers: usize = response
        .headers
        .iter()
        // ": " and CRLF per header line.
        .map(|(name, value)| name.len() + value.len() + 4)
        .sum();
    response.body.len() + headers
}

fn forwarded_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| !PRIVATE_HEADERS.contains(name))
        // Lossy, not dropped: a component must see that a header was sent
        // (e.g. an Idempotency-Key with bad bytes gets 400, not ignored).
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// Turn a component's response into an HTTP response. An invalid status
/// is a component bug: 500, logged; invalid headers are dropped, logged.
fn into_http(response: types::Response) -> Result<Response, Refusal> {
    let status = StatusCode::from_u16(response.status)
        .ok()
        .filter(|s| !s.is_informational())
        .ok_or_else(|| {
            Refusal::internal(
                "a component answered an invalid status",
                format!("status {}", response.status),
            )
        })?;
    let mut http = Response::new(Body::from(response.body));
    *http.status_mut() = status;
    let headers = http.headers_mut();
    for (name, value) in response.headers {
        match (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value),
        ) {
            (Ok(name), Ok(value)) if !is_hop_by_hop(&name) => {
                headers.append(name, value);
            }
            _ => tracing::warn!(header = %name, "dropped an invalid header from a component"),
        }
    }
    if !headers.contains_key(header::CONTENT_TYPE) && status != StatusCode::NO_CONTENT {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    Ok(http)
}

/// Headers a component may not set: hop-by-hop ones and the request id
/// are the host's; the others would act for the whole shop's origin, not
/// just the component's routes (a cookie, HSTS for every subdomain, an
/// alternative service, wiping the browser's data for the site).
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "transfer-encoding"
            | "content-length"
            | "keep-alive"
            | "upgrade"
            | "x-request-id"
            | "set-cookie"
            | "strict-transport-security"
            | "alt-svc"
            | "clear-site-data"
    )
}

fn failure_kind(error: &crate::runtime::CallError) -> &'static str {
    use crate::runtime::CallError;
    match error {
        CallError::Overloaded(_) => "overloaded",
        CallError::Deadline(_) => "deadline",
        CallError::MemoryLimit(_) => "memory",
        CallError::Trap { .. } => "trap",
        CallError::NotLoaded(_) => "not-loaded",
        CallError::Throttled { .. } => "throttled",
        CallError::NotGranted { .. } => "not-granted",
        CallError::Host { .. } => "host",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_count_toward_the_response_size() {
        let response = types::Response {
            status: 200,
            headers: vec![("x-big".into(), "y".repeat(1000))],
            body: vec![b'a'; 10],
        };
        assert_eq!(response_size(&response), 10 + 5 + 1000 + 4);
    }

    #[test]
    fn private_headers_are_not_forwarded() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        headers.insert(header::COOKIE, HeaderValue::from_static("a=b"));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let forwarded = forwarded_headers(&headers);
        assert_eq!(
            forwarded,
            vec![("content-type".to_owned(), "application/json".to_owned())]
        );
    }
}
