//! Routing a request to a handler by method and path pattern.
//!
//! ```ignore
//! pub fn router() -> Router {
//!     Router::new()
//!         .post("/api/v1/customers", register)
//!         .get("/api/v1/customers/{username}", show)
//!         .delete("/api/v1/customers/{username}", delete)
//! }
//! ```
//!
//! A pattern is `/`-separated segments; `{name}` matches any one non-empty
//! segment and is available as `ctx.param("name")`, percent-decoded. Segments
//! are decoded after splitting, so `%2F` in a parameter never splits it. When
//! several routes match, the one with a literal segment earlier wins
//! (`/goods/search` before `/goods/{id}`). No route for the path is
//! `not-found`; a route for the path but not the method is
//! `method-not-allowed`. A trailing slash is a different path. A parameter
//! whose decoded value no database can store (NUL, see [`crate::text`]) is
//! `invalid-input` naming the parameter, before the handler runs. A query
//! parameter with NUL is hidden from the handler instead, and the answer is
//! `invalid-input` naming it and whatever else the handler found invalid.

use crate::context::Context;
use crate::error::{Error, Result};
use crate::percent;
use crate::text;
use crate::wit::types::{FieldError, Request, Response};

/// A handler: a plain function from the request to a response.
pub type Handler = fn(&Context) -> Result<Response>;

/// The routes of a component.
#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: Vec<Route>,
}

#[derive(Debug, Clone)]
struct Route {
    method: &'static str,
    /// The pattern as written, for [`Router::routes`].
    text: &'static str,
    pattern: Vec<Segment>,
    handler: Handler,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment {
    Literal(&'static str),
    Param(&'static str),
}

impl Router {
    /// A router with no routes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a route for `method` (upper case) and `pattern`.
    pub fn route(mut self, method: &'static str, pattern: &'static str, handler: Handler) -> Self {
        let pattern_text = pattern;
        let pattern = pattern
            .trim_start_matches('/')
            .split('/')
            .map(|segment| {
                match segment
                    .strip_prefix('{')
                    .and_then(|rest| rest.strip_suffix('}'))
                {
                    Some(name) => Segment::Param(name),
                    None => Segment::Literal(segment),
                }
            })
            .collect();
        self.routes.push(Route {
            method,
            text: pattern_text,
            pattern,
            handler,
        });
        self
    }

    /// Adds a `GET` route.
    pub fn get(self, pattern: &'static str, handler: Handler) -> Self {
        self.route("GET", pattern, handler)
    }

    /// Adds a `POST` route.
    pub fn post(self, pattern: &'static str, handler: Handler) -> Self {
        self.route("POST", pattern, handler)
    }

    /// Adds a `PUT` route.
    pub fn put(self, pattern: &'static str, handler: Handler) -> Self {
        self.route("PUT", pattern, handler)
    }

    /// Adds a `PATCH` route.
    pub fn patch(self, pattern: &'static str, handler: Handler) -> Self {
        self.route("PATCH", pattern, handler)
    }

    /// Adds a `DELETE` route.
    pub fn delete(self, pattern: &'static str, handler: Handler) -> Self {
        self.route("DELETE", pattern, handler)
    }

    /// Every route as (method, pattern), in the order added; for checking
    /// that a component's OpenAPI document covers what it serves.
    pub fn routes(&self) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
        self.routes.iter().map(|route| (route.method, route.text))
    }

    /// Route patterns not under any of `prefixes` (whole segments): the host
    /// would never route them here, so a manifest must declare them all.
    pub fn routes_outside(&self, prefixes: &[String]) -> Vec<&'static str> {
        self.routes
            .iter()
            .map(|route| route.text)
            .filter(|pattern| {
                !prefixes.iter().any(|prefix| {
                    pattern
                        .strip_prefix(prefix.as_str())
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
                })
            })
            .collect()
    }

    /// Routes `request` and runs its handler: what the `handler` export
    /// calls.
    pub fn handle(&self, request: Request) -> Result<Response> {
        let (handler, params) = self.resolve(&request.method, &request.path)?;
        let unstorable: Vec<FieldError> = params
            .iter()
            .filter(|(_, value)| !text::is_storable(value))
            .map(|(name, _)| FieldError::new(name.clone(), text::NUL_MESSAGE))
            .collect();
        if !unstorable.is_empty() {
            return Err(Error::invalid_fields(unstorable));
        }
        let context = Context::new(request, params)?;
        let outcome = handler(&context);
        if context.unstorable().is_empty() {
            return outcome;
        }
        // The handler ran without the refused query parameters, so that the
        // answer names every bad field at once (API.md); whatever else it
        // did is rolled back, since the answer is a 400.
        let mut errors = context.unstorable().to_vec();
        if let Err(Error::InvalidInput(more)) = outcome {
            for error in more {
                if !errors.iter().any(|known| known.field == error.field) {
                    errors.push(error);
                }
            }
        }
        Err(Error::invalid_fields(errors))
    }

    /// The handler for `method` and `path`, with the decoded path parameters.
    fn resolve(&self, method: &str, path: &str) -> Result<(Handler, Vec<(String, String)>)> {
        let segments = path
            .strip_prefix('/')
            .ok_or_else(|| Error::not_found("no resource at this path"))?
            .split('/')
            .map(|segment| percent::decode(segment, false))
            .collect::<Option<Vec<String>>>()
            .ok_or_else(|| Error::bad_request("the path is not valid percent-encoded UTF-8"))?;

        let mut allowed: Vec<&'static str> = Vec::new();
        let mut best: Option<(&Route, Vec<bool>)> = None;
        for route in &self.routes {
            if !matches(&route.pattern, &segments) {
                continue;
            }
            if !route.method.eq_ignore_ascii_case(method) {
                if !allowed.contains(&route.method) {
                    allowed.push(route.method);
                }
                continue;
            }
            let specificity: Vec<bool> = route
                .pattern
                .iter()
                .map(|segment| matches!(segment, Segment::Literal(_)))
                .collect();
            if best
                .as_ref()
                .is_none_or(|(_, current)| specificity > *current)
            {
                best = Some((route, specificity));
            }
        }

        match best {
            Some((route, _)) => {
                let params = route
                    .pattern
                    .iter()
                    .zip(segments)
                    .filter_map(|(segment, value)| match segment {
                        Segment::Param(name) => Some(((*name).to_owned(), value)),
                        Segment::Literal(_) => None,
                    })
                    .collect();
                Ok((route.handler, params))
            }
            None if allowed.is_empty() => Err(Error::not_found("no resource at this path")),
            None => Err(Error::method_not_allowed(format!(
                "{method} is not allowed here; allowed: {}",
                allowed.join(", ")
            ))),
        }
    }
}

fn matches(pattern: &[Segment], segments: &[String]) -> bool {
    pattern.len() == segments.len()
        && pattern
            .iter()
            .zip(segments)
            .all(|(segment, value)| match segment {
                Segment::Literal(literal) => literal == value,
                Segment::Param(_) => !value.is_empty(),
            })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::respond::ok;

    fn list(_: &Context) -> Result<Response> {
        ok(&"list")
    }
    fn create(_: &Context) -> Result<Response> {
        ok(&"create")
    }
    fn show(ctx: &Context) -> Result<Response> {
        ok(&format!("show {}", ctx.param("username")?))
    }
    fn search(_: &Context) -> Result<Response> {
        ok(&"search")
    }
    fn charge(ctx: &Context) -> Result<Response> {
        ok(&format!("charge {}", ctx.param("username")?))
    }

    #[test]
    fn routes_outside_the_declared_prefixes_are_listed() {
        let router = Router::new()
            .get("/api/v1/customers", list)
            .get("/api/v1/customers/{username}", show)
            .get("/api/v1/customersx", list)
            .get("/api/v1/auth/login", list);
        let prefixes = vec!["/api/v1/customers".to_owned()];
        assert_eq!(
            router.routes_outside(&prefixes),
            vec!["/api/v1/customersx", "/api/v1/auth/login"]
        );
    }

    fn router() -> Router {
        Router::new()
            .get("/api/v1/customers", list)
            .post("/api/v1/customers", create)
            .get("/api/v1/customers/{username}", show)
            .delete("/api/v1/customers/{username}", show)
            .get("/api/v1/customers/search", search)
            .post("/api/v1/customers/{username}/wallet/charge", charge)
    }

    fn call(method: &str, path: &str) -> Result<String> {
        let request = Request {
            method: method.into(),
            path: path.into(),
            query: String::new(),
            headers: vec![],
            body: vec![],
            caller: None,
            request_id: "r".into(),
        };
        let response = router().handle(request)?;
        Ok(serde_json::from_slice(&response.body).unwrap())
    }

    #[test]
    fn routes_match_by_method_and_path() {
        assert_eq!(call("GET", "/api/v1/customers").unwrap(), "list");
        assert_eq!(call("POST", "/api/v1/customers").unwrap(), "create");
        assert_eq!(
            call("GET", "/api/v1/customers/alice").unwrap(),
            "show alice"
        );
        assert_eq!(
            call("POST", "/api/v1/customers/bob/wallet/charge").unwrap(),
            "charge bob"
        );
    }

    #[test]
    fn path_parameters_are_percent_decoded_after_splitting() {
        assert_eq!(call("GET", "/api/v1/customers/a%2Fb").unwrap(), "show a/b");
        assert_eq!(
            call("GET", "/api/v1/customers/caf%C3%A9%20au%20lait").unwrap(),
            "show café au lait"
        );
    }

    #[test]
    fn literal_segments_win_over_parameters() {
        assert_eq!(call("GET", "/api/v1/customers/search").unwrap(), "search");
        // DELETE has no literal route, so the parameter route takes it.
        assert_eq!(
            call("DELETE", "/api/v1/customers/search").unwrap(),
            "show search"
        );
    }

    #[test]
    fn unknown_paths_are_not_found() {
        for path in [
            "/api/v1/customer",
            "/api/v1/customers/alice/wallet",
            "/api/v1/customers/alice/wallet/charge/extra",
            "/api/v1/customers/",
            "/api/v1/customers//wallet/charge",
            "api/v1/customers",
            "/",
        ] {
            assert!(
                matches!(call("GET", path), Err(Error::NotFound(_))),
                "{path}"
            );
        }
    }

    #[test]
    fn known_paths_with_other_methods_are_not_allowed() {
        let error = call("PUT", "/api/v1/customers/alice").unwrap_err();
        assert_eq!(
            error,
            Error::method_not_allowed("PUT is not allowed here; allowed: GET, DELETE")
        );
        assert!(matches!(
            call("GET", "/api/v1/customers/alice/wallet/charge"),
            Err(Error::MethodNotAllowed(_))
        ));
    }

    #[test]
    fn routes_are_listed_as_written() {
        let routes: Vec<_> = router().routes().collect();
        assert_eq!(routes.len(), 6);
        assert_eq!(routes[2], ("GET", "/api/v1/customers/{username}"));
    }

    #[test]
    fn parameters_no_database_can_store_are_invalid_input() {
        let error = call("POST", "/api/v1/customers/a%00b/wallet/charge").unwrap_err();
        assert_eq!(error, Error::invalid("username", text::NUL_MESSAGE));
        // No route, no parameter to name.
        assert!(matches!(
            call("GET", "/api/v1/customers%00"),
            Err(Error::NotFound(_))
        ));
    }

    fn paged(ctx: &Context) -> Result<Response> {
        let paging = ctx.page()?;
        ok(&format!("{} {:?}", paging.limit, ctx.query("q")))
    }

    #[test]
    fn query_parameters_with_nul_are_named_with_the_handlers_findings() {
        let router = Router::new().get("/api/v1/things", paged);
        let call = |query: &str| {
            router.handle(Request {
                method: "GET".into(),
                path: "/api/v1/things".into(),
                query: query.into(),
                headers: vec![],
                body: vec![],
                caller: None,
                request_id: "r".into(),
            })
        };
        let fields = |error: Error| match error {
            Error::InvalidInput(errors) => errors.into_iter().map(|e| e.field).collect::<Vec<_>>(),
            other => panic!("expected invalid-input, got {other:?}"),
        };
        assert_eq!(fields(call("q=%00").unwrap_err()), vec!["q"]);
        assert_eq!(
            fields(call("q=%00&limit=0").unwrap_err()),
            vec!["q", "limit"]
        );
        assert!(call("q=x&limit=3").is_ok());
    }

    #[test]
    fn malformed_percent_encoding_is_a_bad_request() {
        assert!(matches!(
            call("GET", "/api/v1/customers/%E2%28"),
            Err(Error::BadRequest(_))
        ));
    }
}
