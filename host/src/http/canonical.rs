//! The edge's canonicalisation: every request's method and path are
//! rewritten to their one canonical spelling ([`crate::paths`]) before
//! anything routes on them, so the host's routing, the components' routers,
//! the credentials throttle and the logs all see the same request.

use axum::{
    extract::Request,
    http::{Uri, uri::PathAndQuery},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::problem::Refusal;
use crate::paths::{canonical_method, canonical_path};

/// Middleware run before any routing: rewrites the request's method and
/// path to their canonical form, or answers 400.
pub async fn canonicalize(mut request: Request, next: Next) -> Response {
    let path = match canonical_path(request.uri().path()) {
        Ok(path) => path,
        Err(bad) => {
            return Refusal::BadRequest(bad.detail().into())
                .respond(super::request_id(request.headers()));
        }
    };
    *request.method_mut() = canonical_method(request.method());
    if path != request.uri().path() {
        let path_and_query = match request.uri().query() {
            Some(query) => format!("{path}?{query}"),
            None => path,
        };
        let mut parts = request.uri().clone().into_parts();
        // The canonical path is valid URI text by construction: every
        // byte that could not stand in a path is percent-escaped.
        match PathAndQuery::try_from(path_and_query) {
            Ok(path_and_query) => parts.path_and_query = Some(path_and_query),
            Err(error) => {
                return Refusal::internal("a canonical path did not parse as a URI", error)
                    .into_response();
            }
        }
        match Uri::from_parts(parts) {
            Ok(uri) => *request.uri_mut() = uri,
            Err(error) => {
                return Refusal::internal("a canonical URI did not assemble", error)
                    .into_response();
            }
        }
    }
    next.run(request).await
}
