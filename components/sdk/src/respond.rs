//! Building responses: JSON bodies, `201 Created` with `Location`,
//! `204 No Content`, and pages of a list.
//!
//! Each returns `Result<Response>` so it can be a handler's last expression.
//! Error responses are not built here: a handler returns an
//! [`Error`] and the host renders problem+json.

use serde::Serialize;

use crate::context::PageRequest;
use crate::error::{Error, Result};
use crate::schema::{Describe, Object, Schema, Schemas};
use crate::wit::types::Response;

/// A page of a list, as every list endpoint returns it:
/// `{"items": [...], "total": N, "limit": L, "offset": O}`.
///
/// Use it directly (with `#[serde(flatten)]`) when a list response needs
/// more fields, such as an average rating.
#[derive(Debug, Clone, Serialize)]
pub struct Page<I> {
    /// This page's items.
    pub items: I,
    /// How many items match in all pages.
    pub total: i64,
    /// The `limit` the page was asked with.
    pub limit: i64,
    /// The `offset` the page was asked with.
    pub offset: i64,
}

impl<I> Page<I> {
    /// The page of `items` out of `total`, for `request`.
    pub fn new(request: PageRequest, items: I, total: i64) -> Self {
        Page {
            items,
            total,
            limit: request.limit,
            offset: request.offset,
        }
    }
}

/// The page envelope around `I`'s schema (the items' array).
impl<I: Describe> Describe for Page<I> {
    fn describe(schemas: &mut Schemas) -> Schema {
        let mut object = Object::new();
        object.property("items", schemas.of::<I>(), true);
        let total = Schema::integer().minimum(0).doc("Matches in all pages.");
        object.property("total", total, true);
        let limit = Schema::integer().range(1, PageRequest::MAX_LIMIT);
        object.property("limit", limit.doc("The `limit` asked for."), true);
        let offset = Schema::integer().minimum(0).doc("The `offset` asked for.");
        object.property("offset", offset, true);
        object.into_schema()
    }
}

/// A response with `status` and `body` as JSON.
pub fn json<T: Serialize + ?Sized>(status: u16, body: &T) -> Result<Response> {
    let body = serde_json::to_vec(body).map_err(|e| {
        crate::log::error!("could not serialize a response body: {e}");
        Error::internal("internal error")
    })?;
    Ok(Response {
        status,
        headers: vec![("content-type".to_owned(), "application/json".to_owned())],
        body,
    })
}

/// `200 OK` with `body` as JSON.
pub fn ok<T: Serialize + ?Sized>(body: &T) -> Result<Response> {
    json(200, body)
}

/// `201 Created` with `body` as JSON and `Location: location` (a path such
/// as `/api/v1/customers/alice`, already percent-encoded where needed).
pub fn created<T: Serialize + ?Sized>(location: &str, body: &T) -> Result<Response> {
    Ok(json(201, body)?.with_header("location", location))
}

/// `204 No Content`.
pub fn no_content() -> Result<Response> {
    Ok(Response {
        status: 204,
        headers: Vec::new(),
        body: Vec::new(),
    })
}

/// `200 OK` with a [`Page`] of `items` out of `total`.
pub fn page<T: Serialize>(request: PageRequest, items: &[T], total: i64) -> Result<Response> {
    ok(&Page::new(request, items, total))
}

impl Response {
    /// The same response with one more header (`name` in lower case).
    #[must_use]
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The value of header `name`, if set (matched ignoring case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::money::Cents;

    fn body(response: &Response) -> serde_json::Value {
        serde_json::from_slice(&response.body).unwrap()
    }

    #[test]
    fn ok_is_json_with_status_200() {
        let response = ok(&serde_json::json!({"a": 1})).unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.header("Content-Type"), Some("application/json"));
        assert_eq!(body(&response), serde_json::json!({"a": 1}));
    }

    #[test]
    fn created_sets_the_location() {
        let response = created("/api/v1/customers/alice", &serde_json::json!({})).unwrap();
        assert_eq!(response.status, 201);
        assert_eq!(response.header("location"), Some("/api/v1/customers/alice"));
    }

    #[test]
    fn no_content_has_no_body() {
        let response = no_content().unwrap();
        assert_eq!(response.status, 204);
        assert!(response.body.is_empty());
        assert!(response.headers.is_empty());
    }

    #[test]
    fn pages_carry_their_paging() {
        let request = PageRequest {
            limit: 2,
            offset: 4,
        };
        let response = page(request, &[Cents(150), Cents(99)], 7).unwrap();
        assert_eq!(
            String::from_utf8(response.body).unwrap(),
            r#"{"items":[1.5,0.99],"total":7,"limit":2,"offset":4}"#
        );
    }
}
