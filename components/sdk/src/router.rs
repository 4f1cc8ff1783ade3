//! Routing a request to the handler of its declared [`Route`].
//!
//! ```ignore
//! pub fn router() -> Router {
//!     Router::new("customers")
//!         .path_param("username", "The customer's username, matched ignoring case.")
//!         .route(Route::post("/api/v1/customers", register).operation(...)...)
//!         .route(Route::get("/api/v1/customers/{username}", show).operation(...)...)
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
//!
//! The router is also what the component says about itself: its manifest's
//! route prefixes ([`Router::prefixes`]) and its OpenAPI fragment
//! ([`Router::openapi`]) are derived from the same declarations. In debug
//! builds (the components' unit tests) every answer is checked against its
//! route's declaration ([`Route::undeclared`]): a handler that answers a
//! status, a conflict or reads a field its route does not declare fails
//! the test that made it do so.

use crate::context::Context;
use crate::error::{Error, Result};
use crate::percent;
use crate::route::Route;
use crate::text;
use crate::wit::types::{FieldError, Request, Response};

/// The routes of a component, and what its documentation says about them
/// as a whole.
#[derive(Debug, Clone)]
pub struct Router {
    /// The tag its operations are listed under, unless a route says another.
    pub(crate) tag: &'static str,
    /// The tag's description, when the component documents its tag.
    pub(crate) tag_doc: Option<&'static str>,
    /// What each path parameter means, by name: one description for every
    /// path that has it.
    pub(crate) path_params: Vec<(&'static str, &'static str)>,
    /// Schemas another component's fragment defines that these routes
    /// refer to (the host merges the fragments into one document).
    pub(crate) foreign_schemas: Vec<&'static str>,
    routes: Vec<Compiled>,
}

/// A route and its pattern split into segments.
#[derive(Debug, Clone)]
struct Compiled {
    route: Route,
    pattern: Vec<Segment>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment {
    Literal(&'static str),
    Param(&'static str),
}

/// How many leading literal segments make a route's prefix
/// (`/api/v1/goods/{id}` is served under `/api/v1/goods`).
const PREFIX_SEGMENTS: usize = 3;

impl Router {
    /// A router with no routes whose operations are tagged `tag`.
    pub fn new(tag: &'static str) -> Self {
        Router {
            tag,
            tag_doc: None,
            path_params: Vec::new(),
            foreign_schemas: Vec::new(),
            routes: Vec::new(),
        }
    }

    /// Refers to schema `name`, which a core service's fragment defines
    /// (sales shows the inventory's `Good` as the inventory documents it).
    #[must_use]
    pub fn refers_to(mut self, name: &'static str) -> Self {
        self.foreign_schemas.push(name);
        self
    }

    /// Documents the tag (listed in the document's `tags`).
    #[must_use]
    pub fn describe_tag(mut self, doc: &'static str) -> Self {
        self.tag_doc = Some(doc);
        self
    }

    /// What path parameter `name` means, wherever a pattern has `{name}`.
    #[must_use]
    pub fn path_param(mut self, name: &'static str, doc: &'static str) -> Self {
        self.path_params.push((name, doc));
        self
    }

    /// Adds `route`.
    #[must_use]
    pub fn route(mut self, route: Route) -> Self {
        let pattern = route
            .pattern
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
        self.routes.push(Compiled { route, pattern });
        self
    }

    /// Every route, in the order added.
    pub fn routes(&self) -> impl Iterator<Item = &Route> + '_ {
        self.routes.iter().map(|compiled| &compiled.route)
    }

    /// The route prefixes a manifest claims for these routes: each route's
    /// first three literal segments (`/api/v1/goods`), in order of first
    /// appearance. The host routes every path under a prefix here.
    pub fn prefixes(&self) -> Vec<String> {
        let mut prefixes: Vec<String> = Vec::new();
        for compiled in &self.routes {
            let literals: Vec<&str> = compiled
                .pattern
                .iter()
                .map_while(|segment| match segment {
                    Segment::Literal(literal) => Some(*literal),
                    Segment::Param(_) => None,
                })
                .take(PREFIX_SEGMENTS)
                .collect();
            let prefix = format!("/{}", literals.join("/"));
            if !prefixes.contains(&prefix) {
                prefixes.push(prefix);
            }
        }
        prefixes
    }

    /// The OpenAPI fragment documenting these routes (JSON text).
    pub fn openapi(&self) -> String {
        crate::openapi::fragment(self).to_string()
    }

    /// Route patterns not under any of `prefixes` (whole segments): the host
    /// would never route them here, so a manifest must declare them all.
    pub fn routes_outside(&self, prefixes: &[String]) -> Vec<&'static str> {
        self.routes()
            .map(Route::pattern)
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
        let (route, params) = self.resolve(&request.method, &request.path)?;
        let unstorable: Vec<FieldError> = params
            .iter()
            .filter(|(_, value)| !text::is_storable(value))
            .map(|(name, _)| FieldError::new(name.clone(), text::NUL_MESSAGE))
            .collect();
        if !unstorable.is_empty() {
            return Err(Error::invalid_fields(unstorable));
        }
        let context = Context::new(request, params)?;
        let outcome = (route.handler)(&context);
        #[cfg(debug_assertions)]
        {
            let problems = route.undeclared(&context, &outcome);
            debug_assert!(
                problems.is_empty(),
                "{} {} answers beyond its declaration: {problems:?}",
                route.method,
                route.pattern
            );
        }
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
    fn resolve(&self, method: &str, path: &str) -> Result<(&Route, Vec<(String, String)>)> {
        let segments = path
            .strip_prefix('/')
            .ok_or_else(|| Error::not_found("no resource at this path"))?
            .split('/')
            .map(|segment| percent::decode(segment, false))
            .collect::<Option<Vec<String>>>()
            .ok_or_else(|| Error::bad_request("the path is not valid percent-encoded UTF-8"))?;

        let mut allowed: Vec<&'static str> = Vec::new();
        let mut best: Option<(&Compiled, Vec<bool>)> = None;
        for route in &self.routes {
            if !matches(&route.pattern, &segments) {
                continue;
            }
            if !route.route.method.eq_ignore_ascii_case(method) {
                if !allowed.contains(&route.route.method) {
                    allowed.push(route.route.method);
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
                Ok((&route.route, params))
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
    use crate::route::Handler;

    /// A documented route answering 200 with a string.
    fn route(method: &'static str, pattern: &'static str, handler: Handler) -> Route {
        Route::new(method, pattern, handler)
            .operation("x", "x")
            .ok::<String>("a string")
    }

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
        let router = Router::new("t")
            .route(route("GET", "/api/v1/customers", list))
            .route(route("GET", "/api/v1/customers/{username}", show))
            .route(route("GET", "/api/v1/customersx", list))
            .route(route("GET", "/api/v1/auth/login", list));
        let prefixes = vec!["/api/v1/customers".to_owned()];
        assert_eq!(
            router.routes_outside(&prefixes),
            vec!["/api/v1/customersx", "/api/v1/auth/login"]
        );
    }

    fn router() -> Router {
        Router::new("t")
            .route(route("GET", "/api/v1/customers", list))
            .route(route("POST", "/api/v1/customers", create))
            .route(route("GET", "/api/v1/customers/{username}", show))
            .route(route("DELETE", "/api/v1/customers/{username}", show))
            .route(route("GET", "/api/v1/customers/search", search))
            .route(route(
                "POST",
                "/api/v1/customers/{username}/wallet/charge",
                charge,
            ))
    }

    #[test]
    fn prefixes_are_the_leading_literal_segments_in_first_seen_order() {
        let router = Router::new("t")
            .route(route("POST", "/api/v1/auth/login", list))
            .route(route("GET", "/api/v1/customers/{username}", show))
            .route(route("GET", "/api/v1/customers", list))
            .route(route("GET", "/health", list));
        assert_eq!(
            router.prefixes(),
            ["/api/v1/auth", "/api/v1/customers", "/health"]
        );
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
        let routes: Vec<_> = router()
            .routes()
            .map(|route| (route.method(), route.pattern()))
            .collect();
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
        let router = Router::new("t").route(
            route("GET", "/api/v1/things", paged)
                .paged()
                .query::<String>("q", "a search"),
        );
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod declaration_checks {
    use super::*;
    use crate::field::Positive;
    use crate::respond::ok;
    use crate::route::{Body, Caller, ErrorKind};

    const TAKEN: ErrorKind = ErrorKind::conflict("taken", "Already taken.");

    fn conflict(_: &Context) -> Result<Response> {
        Err(Error::conflict("other", "x"))
    }
    fn forbidden(_: &Context) -> Result<Response> {
        Err(Error::forbidden("x"))
    }
    fn reads(ctx: &Context) -> Result<Response> {
        let _ = ctx.query("q");
        let mut form = ctx.form()?;
        let amount = form.optional::<Positive>("amount");
        let amount = form.finish(amount)?;
        ok(&amount)
    }
    fn honest(_: &Context) -> Result<Response> {
        Err(TAKEN.error("it is taken"))
    }

    fn call(route: Route, body: &str) -> Result<Response> {
        let router = Router::new("t").route(route);
        router.handle(Request {
            method: "POST".into(),
            path: "/x".into(),
            query: "q=1".into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
            caller: None,
            request_id: "r".into(),
        })
    }

    fn undeclared(route: Route, body: &str) -> Vec<String> {
        let router = Router::new("t").route(route);
        let request = Request {
            method: "POST".into(),
            path: "/x".into(),
            query: "q=1".into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
            caller: None,
            request_id: "r".into(),
        };
        let (route, params) = router.resolve("POST", "/x").unwrap();
        let context = Context::new(request, params).unwrap();
        let outcome = (route.handler)(&context);
        route.undeclared(&context, &outcome)
    }

    #[test]
    fn declared_answers_pass() {
        let route = Route::post("/x", honest).no_content("done").error(TAKEN);
        assert!(matches!(call(route, "{}"), Err(Error::Conflict(_))));
        let route = Route::post("/x", forbidden)
            .caller(Caller::Admin)
            .no_content("done");
        assert!(matches!(call(route, "{}"), Err(Error::Forbidden(_))));
    }

    #[test]
    fn undeclared_statuses_and_slugs_are_named() {
        let route = Route::post("/x", conflict).no_content("done").error(TAKEN);
        assert_eq!(
            undeclared(route, "{}"),
            ["answered conflict `other`, which is not declared"]
        );
        let route = Route::post("/x", forbidden)
            .caller(Caller::Authenticated)
            .no_content("done");
        assert_eq!(
            undeclared(route, "{}"),
            ["answered 403, which is not declared"]
        );
    }

    #[test]
    fn undeclared_reads_are_named() {
        let route = Route::post("/x", reads).ok::<String>("ok");
        assert_eq!(
            undeclared(route, r#"{"amount": 1}"#),
            [
                "read query parameter `q`, which is not declared",
                "read body field `amount`, which is not declared",
            ]
        );
        let route = Route::post("/x", reads)
            .query::<String>("q", "")
            .body(Body::object("B", "").required::<Positive>("amount"))
            .ok::<Option<String>>("ok");
        assert_eq!(
            undeclared(route, r#"{"amount": 1}"#),
            ["read body field `amount` as optional, declared required"]
        );
        let route = Route::post("/x", reads)
            .query::<String>("q", "")
            .body(Body::object("B", "").optional::<String>("amount"))
            .ok::<Option<String>>("ok");
        assert_eq!(
            undeclared(route, r#"{"amount": 1}"#),
            ["read body field `amount` with another rule than declared"]
        );
    }

    #[test]
    #[should_panic(expected = "answers beyond its declaration")]
    fn the_router_refuses_an_undeclared_answer_in_debug_builds() {
        let route = Route::post("/x", conflict).no_content("done");
        let _ = call(route, "{}");
    }
}
