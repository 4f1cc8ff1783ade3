//! A route declared once, with everything its documentation says: the
//! method, path and handler, who may call it, its query and header
//! parameters, its body (field by field, with the rules the handler parses
//! it with), its responses and the errors it can answer. The router
//! dispatches from these declarations, the OpenAPI fragment is generated
//! from them ([`crate::openapi`]), and in debug builds the router checks
//! every answer against them.
//!
//! ```ignore
//! Route::post("/api/v1/goods", add)
//!     .operation("addGood", "Add a good")
//!     .caller(Caller::Admin)
//!     .body(
//!         Body::object("NewGood", "")
//!             .required::<GoodName>("name")
//!             .required::<Category>("category")
//!             .required::<Positive>("price")
//!             .optional::<Description>("description").default(json!(""))
//!             .optional::<Stock>("count").default(json!(0)),
//!     )
//!     .created::<Good>("The new good.")
//!     .header("Location", "`/api/v1/goods/{id}`")
//!     .error(GOOD_NAME_TAKEN)
//! ```
//!
//! What every route shares is implied rather than repeated: a route with a
//! body or parameters can answer 400 and, with a body, 413; a caller
//! requirement brings its security and its 401/403; every route can answer
//! 503 (its database or a service it calls is unavailable) and 500 (a
//! bug, never documented).

use std::any::TypeId;

use serde_json::Value;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::field::{Field, disagreements};
use crate::respond::Page;
use crate::schema::{Describe, Schema, Schemas, schema_of};
use crate::wit::types::Response;

/// A handler: a plain function from the request to a response.
pub type Handler = fn(&Context) -> Result<Response>;

/// Who may call a route, as far as the route as a whole says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// Anyone, with or without a token; the answer does not depend on it.
    Anyone,
    /// Anyone; a token may show the caller more (their own hidden things).
    Optional,
    /// Any authenticated caller (401 without a token).
    Authenticated,
    /// Admins only (401 without a token, 403 for a customer).
    Admin,
    /// The customer named in the path, or an admin (401, 403).
    SelfOrAdmin,
}

impl Caller {
    /// Whether the route answers 401 to a caller without a token.
    pub(crate) fn needs_token(self) -> bool {
        matches!(
            self,
            Caller::Authenticated | Caller::Admin | Caller::SelfOrAdmin
        )
    }

    /// The 403 it implies, if any.
    pub(crate) fn forbidden(self) -> Option<&'static str> {
        match self {
            Caller::Admin => Some("Authenticated, but only an admin may do this (`forbidden`)."),
            Caller::SelfOrAdmin => Some(
                "Authenticated, but only the customer themselves or an admin may do this (`forbidden`).",
            ),
            Caller::Anyone | Caller::Optional | Caller::Authenticated => None,
        }
    }
}

/// A kind of error a route can answer: its status, its problem type slug
/// (`urn:souk:error:<slug>`) and what it means. Declare each once, list it
/// on the routes that answer it, and build the error from it, so the slug
/// a handler answers with is the slug documented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorKind {
    status: u16,
    slug: &'static str,
    doc: &'static str,
}

/// Conflict slugs a core service answers through its service interface,
/// which its callers match on or pass on as their own answer (a purchase
/// documents the wallet's and the inventory's refusals): one spelling for
/// the service and every caller.
pub mod service_slugs {
    /// `wallet.debit`: the balance does not cover the amount.
    pub const INSUFFICIENT_FUNDS: &str = "insufficient-funds";
    /// `inventory-api.take-stock`: fewer units are in stock than asked for.
    pub const INSUFFICIENT_STOCK: &str = "insufficient-stock";
}

impl ErrorKind {
    /// 400 `bad-request`: the request as a whole is refused.
    pub const fn bad_request(doc: &'static str) -> ErrorKind {
        ErrorKind {
            status: 400,
            slug: "bad-request",
            doc,
        }
    }

    /// 401 `unauthorized`, where the caller requirement does not imply it.
    pub const fn unauthorized(doc: &'static str) -> ErrorKind {
        ErrorKind {
            status: 401,
            slug: "unauthorized",
            doc,
        }
    }

    /// 403 `forbidden`: a refusal the caller requirement does not imply
    /// (or says more about).
    pub const fn forbidden(doc: &'static str) -> ErrorKind {
        ErrorKind {
            status: 403,
            slug: "forbidden",
            doc,
        }
    }

    /// 404 `not-found`.
    pub const fn not_found(doc: &'static str) -> ErrorKind {
        ErrorKind {
            status: 404,
            slug: "not-found",
            doc,
        }
    }

    /// 409 with its own `slug` (a slug a service answers to other
    /// components is one of [`service_slugs`]).
    pub const fn conflict(slug: &'static str, doc: &'static str) -> ErrorKind {
        ErrorKind {
            status: 409,
            slug,
            doc,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The problem type slug.
    pub fn slug(&self) -> &'static str {
        self.slug
    }

    /// What it means, for the documentation.
    pub fn doc(&self) -> &'static str {
        self.doc
    }

    /// This error, with `detail` for the client.
    pub fn error(&self, detail: impl Into<String>) -> Error {
        match self.status {
            400 => Error::bad_request(detail),
            401 => Error::unauthorized(detail),
            403 => Error::forbidden(detail),
            404 => Error::not_found(detail),
            409 => Error::conflict(self.slug, detail),
            // The constructors above are the only way to make a kind.
            _ => Error::internal(detail),
        }
    }
}

/// The HTTP status of a handler's error, and the slug where the component
/// chooses it (a conflict's).
pub fn status_of(error: &Error) -> (u16, Option<&str>) {
    match error {
        Error::InvalidInput(_) | Error::BadRequest(_) => (400, None),
        Error::Unauthorized(_) => (401, None),
        Error::Forbidden(_) => (403, None),
        Error::NotFound(_) => (404, None),
        Error::MethodNotAllowed(_) => (405, None),
        Error::Conflict(info) => (409, Some(info.code.as_str())),
        Error::Unavailable(_) => (503, None),
        Error::Internal(_) => (500, None),
    }
}

/// A JSON object request body, field by field.
#[derive(Debug, Clone)]
pub struct Body {
    /// Its schema's name under `components.schemas`.
    pub(crate) name: &'static str,
    /// What it is, if the fields do not say it all.
    pub(crate) doc: &'static str,
    /// Whether a request must send it (a flag's reason may be left out
    /// with the whole body).
    pub(crate) required: bool,
    /// A change: at least one field, every field optional.
    pub(crate) at_least_one: bool,
    pub(crate) fields: Vec<BodyField>,
}

/// One field of a [`Body`].
#[derive(Debug, Clone)]
pub struct BodyField {
    pub(crate) name: &'static str,
    pub(crate) required: bool,
    /// The [`Field`] rule it is read with.
    pub(crate) rule: TypeId,
    pub(crate) schema: fn(&mut Schemas) -> Schema,
    /// [`disagreements`] of its rule, for the conformance tests.
    pub(crate) probe: fn() -> Vec<String>,
    /// A description replacing the rule's own, where this body means
    /// something more specific.
    pub(crate) doc: Option<&'static str>,
    /// The value a handler uses when the field is left out.
    pub(crate) default: Option<Value>,
    /// Sent by clients, never returned (a password).
    pub(crate) write_only: bool,
}

impl Body {
    /// A body named `name` (described by `doc`, may be empty) whose fields
    /// are added with [`Body::required`] and [`Body::optional`]; any other
    /// field is refused.
    pub fn object(name: &'static str, doc: &'static str) -> Body {
        Body {
            name,
            doc,
            required: true,
            at_least_one: false,
            fields: Vec::new(),
        }
    }

    /// A body of changes (PATCH): every field optional, at least one given.
    pub fn changes(name: &'static str, doc: &'static str) -> Body {
        Body {
            at_least_one: true,
            ..Body::object(name, doc)
        }
    }

    /// The whole body may be left out.
    #[must_use]
    pub fn may_be_absent(mut self) -> Body {
        self.required = false;
        self
    }

    /// Field `name`, required, read with rule `T`.
    #[must_use]
    pub fn required<T: Field>(self, name: &'static str) -> Body {
        self.field::<T>(name, true)
    }

    /// Field `name`, optional, read with rule `T`.
    #[must_use]
    pub fn optional<T: Field>(self, name: &'static str) -> Body {
        self.field::<T>(name, false)
    }

    fn field<T: Field>(mut self, name: &'static str, required: bool) -> Body {
        self.fields.push(BodyField {
            name,
            required,
            rule: TypeId::of::<T>(),
            schema: schema_of::<T>,
            probe: disagreements::<T>,
            doc: None,
            default: None,
            write_only: false,
        });
        self
    }

    /// Describes the last field added as `doc` in this body.
    #[must_use]
    pub fn doc(mut self, doc: &'static str) -> Body {
        if let Some(field) = self.fields.last_mut() {
            field.doc = Some(doc);
        }
        self
    }

    /// The value the handler uses when the last field added is left out.
    #[must_use]
    pub fn default(mut self, value: Value) -> Body {
        if let Some(field) = self.fields.last_mut() {
            field.default = Some(value);
        }
        self
    }

    /// Marks the last field added as sent, never returned (a password).
    #[must_use]
    pub fn write_only(mut self) -> Body {
        if let Some(field) = self.fields.last_mut() {
            field.write_only = true;
        }
        self
    }

    /// The body's schema.
    pub(crate) fn schema(&self, schemas: &mut Schemas) -> Schema {
        let mut object = crate::schema::Object::new();
        for field in &self.fields {
            let mut schema = (field.schema)(schemas);
            if let Some(doc) = field.doc {
                schema = schema.doc(doc);
            }
            if let Some(default) = &field.default {
                schema = schema.default_value(default.clone());
            }
            if field.write_only {
                schema = schema.write_only();
            }
            object.property(field.name, schema, field.required && !self.at_least_one);
        }
        let mut schema = object
            .into_schema()
            .with("additionalProperties", Value::Bool(false));
        if self.at_least_one {
            schema = schema.with("minProperties", Value::from(1));
        }
        if !self.doc.is_empty() {
            schema = schema.doc(self.doc);
        }
        schema
    }
}

/// A query or header parameter.
#[derive(Debug, Clone)]
pub struct Param {
    pub(crate) name: &'static str,
    /// `query` or `header`.
    pub(crate) location: &'static str,
    pub(crate) doc: &'static str,
    pub(crate) schema: fn(&mut Schemas) -> Schema,
}

/// A successful answer.
#[derive(Debug, Clone)]
pub struct Success {
    pub(crate) status: u16,
    pub(crate) doc: &'static str,
    /// The JSON body's schema; `None` for no body.
    pub(crate) schema: Option<fn(&mut Schemas) -> Schema>,
    /// The name a page's schema is defined under.
    pub(crate) page: Option<&'static str>,
    /// Response headers worth documenting, with what they hold.
    pub(crate) headers: Vec<(&'static str, &'static str)>,
}

/// One route: its dispatch and its documentation.
#[derive(Debug, Clone)]
pub struct Route {
    pub(crate) method: &'static str,
    pub(crate) pattern: &'static str,
    pub(crate) handler: Handler,
    pub(crate) operation_id: &'static str,
    pub(crate) summary: &'static str,
    pub(crate) description: Option<&'static str>,
    pub(crate) tag: Option<&'static str>,
    pub(crate) caller: Caller,
    pub(crate) params: Vec<Param>,
    pub(crate) paged: bool,
    pub(crate) body: Option<Body>,
    pub(crate) successes: Vec<Success>,
    pub(crate) errors: Vec<ErrorKind>,
    /// Why the host may answer 429 before the handler decides.
    pub(crate) rate_limited: Option<&'static str>,
}

impl Route {
    /// A route for `method` (upper case) and `pattern`, answered by
    /// `handler`; `{name}` segments are path parameters.
    pub fn new(method: &'static str, pattern: &'static str, handler: Handler) -> Route {
        Route {
            method,
            pattern,
            handler,
            operation_id: "",
            summary: "",
            description: None,
            tag: None,
            caller: Caller::Anyone,
            params: Vec::new(),
            paged: false,
            body: None,
            successes: Vec::new(),
            errors: Vec::new(),
            rate_limited: None,
        }
    }

    /// A `GET` route.
    pub fn get(pattern: &'static str, handler: Handler) -> Route {
        Route::new("GET", pattern, handler)
    }

    /// A `POST` route.
    pub fn post(pattern: &'static str, handler: Handler) -> Route {
        Route::new("POST", pattern, handler)
    }

    /// A `PUT` route.
    pub fn put(pattern: &'static str, handler: Handler) -> Route {
        Route::new("PUT", pattern, handler)
    }

    /// A `PATCH` route.
    pub fn patch(pattern: &'static str, handler: Handler) -> Route {
        Route::new("PATCH", pattern, handler)
    }

    /// A `DELETE` route.
    pub fn delete(pattern: &'static str, handler: Handler) -> Route {
        Route::new("DELETE", pattern, handler)
    }

    /// Its `operationId` (unique in the whole API) and one-line summary.
    #[must_use]
    pub fn operation(mut self, id: &'static str, summary: &'static str) -> Route {
        self.operation_id = id;
        self.summary = summary;
        self
    }

    /// What it does, beyond the summary.
    #[must_use]
    pub fn description(mut self, text: &'static str) -> Route {
        self.description = Some(text);
        self
    }

    /// Its tag, when not the router's.
    #[must_use]
    pub fn tag(mut self, tag: &'static str) -> Route {
        self.tag = Some(tag);
        self
    }

    /// Who may call it.
    #[must_use]
    pub fn caller(mut self, caller: Caller) -> Route {
        self.caller = caller;
        self
    }

    /// Query parameter `name`, documented with `T`'s schema.
    #[must_use]
    pub fn query<T: Describe + ?Sized>(mut self, name: &'static str, doc: &'static str) -> Route {
        self.params.push(Param {
            name,
            location: "query",
            doc,
            schema: schema_of::<T>,
        });
        self
    }

    /// Request header `name`, documented with `T`'s schema.
    #[must_use]
    pub fn request_header<T: Describe + ?Sized>(
        mut self,
        name: &'static str,
        doc: &'static str,
    ) -> Route {
        self.params.push(Param {
            name,
            location: "header",
            doc,
            schema: schema_of::<T>,
        });
        self
    }

    /// Takes `?limit=` and `?offset=` ([`Context::page`]).
    #[must_use]
    pub fn paged(mut self) -> Route {
        self.paged = true;
        self
    }

    /// Reads a JSON body.
    #[must_use]
    pub fn body(mut self, body: Body) -> Route {
        self.body = Some(body);
        self
    }

    /// Answers `status` with a `T` as JSON.
    #[must_use]
    pub fn responds<T: Describe + ?Sized>(mut self, status: u16, doc: &'static str) -> Route {
        self.successes.push(Success {
            status,
            doc,
            schema: Some(schema_of::<T>),
            page: None,
            headers: Vec::new(),
        });
        self
    }

    /// Answers 200 with a `T`.
    #[must_use]
    pub fn ok<T: Describe + ?Sized>(self, doc: &'static str) -> Route {
        self.responds::<T>(200, doc)
    }

    /// Answers 201 with the new `T`.
    #[must_use]
    pub fn created<T: Describe + ?Sized>(self, doc: &'static str) -> Route {
        self.responds::<T>(201, doc)
    }

    /// Answers 204 with no body.
    #[must_use]
    pub fn no_content(mut self, doc: &'static str) -> Route {
        self.successes.push(Success {
            status: 204,
            doc,
            schema: None,
            page: None,
            headers: Vec::new(),
        });
        self
    }

    /// Takes the page parameters and answers 200 with a page of `T`s,
    /// whose schema is defined as `name`.
    #[must_use]
    pub fn page<T: Describe>(mut self, name: &'static str, doc: &'static str) -> Route {
        self.paged = true;
        self.successes.push(Success {
            status: 200,
            doc,
            schema: Some(schema_of::<Page<Vec<T>>>),
            page: Some(name),
            headers: Vec::new(),
        });
        self
    }

    /// Documents response header `name` of the last answer declared.
    #[must_use]
    pub fn header(mut self, name: &'static str, doc: &'static str) -> Route {
        if let Some(success) = self.successes.last_mut() {
            success.headers.push((name, doc));
        }
        self
    }

    /// Can answer `kind`.
    #[must_use]
    pub fn error(mut self, kind: ErrorKind) -> Route {
        self.errors.push(kind);
        self
    }

    /// The host may answer 429 (`doc` says when) before the handler decides.
    #[must_use]
    pub fn rate_limited(mut self, doc: &'static str) -> Route {
        self.rate_limited = Some(doc);
        self
    }

    /// The method, upper case.
    pub fn method(&self) -> &'static str {
        self.method
    }

    /// The path pattern as written.
    pub fn pattern(&self) -> &'static str {
        self.pattern
    }

    /// Whether a request can be refused as invalid input (400).
    pub(crate) fn takes_input(&self) -> bool {
        self.body.is_some()
            || self.paged
            || !self.params.is_empty()
            || self.errors.iter().any(|kind| kind.status == 400)
    }

    /// Every status the route is documented to answer, ascending.
    pub fn statuses(&self) -> Vec<u16> {
        let mut statuses: Vec<u16> = self.successes.iter().map(|s| s.status).collect();
        statuses.extend(self.errors.iter().map(|kind| kind.status));
        if self.takes_input() {
            statuses.push(400);
        }
        if self.caller.needs_token() {
            statuses.push(401);
        }
        if self.caller.forbidden().is_some() {
            statuses.push(403);
        }
        if self.body.is_some() {
            statuses.push(413);
        }
        if self.rate_limited.is_some() {
            statuses.push(429);
        }
        statuses.push(503);
        statuses.sort_unstable();
        statuses.dedup();
        statuses
    }

    /// What the handler did, answering `outcome` to `ctx`, that this
    /// declaration does not allow: an undocumented status or conflict
    /// slug, a query parameter or body field it does not declare, or a
    /// field read with another rule. Empty when the answer is honest.
    pub fn undeclared(&self, ctx: &Context, outcome: &Result<Response>) -> Vec<String> {
        let mut problems = Vec::new();
        let (status, slug) = match outcome {
            Ok(response) => (response.status, None),
            Err(error) => status_of(error),
        };
        // 500 is a bug and 503 a dependency's failure: any route may
        // answer them, and every route documents 503.
        let allowed = status == 500 || self.statuses().contains(&status);
        if !allowed {
            problems.push(format!("answered {status}, which is not declared"));
        }
        if let Some(slug) = slug
            && !self
                .errors
                .iter()
                .any(|kind| kind.status == 409 && kind.slug == slug)
        {
            problems.push(format!("answered conflict `{slug}`, which is not declared"));
        }
        for name in ctx.queries_read() {
            let declared = self
                .params
                .iter()
                .any(|param| param.location == "query" && param.name == name)
                || (self.paged && (name == "limit" || name == "offset"));
            if !declared {
                problems.push(format!(
                    "read query parameter `{name}`, which is not declared"
                ));
            }
        }
        for read in ctx.fields_read() {
            let declared = self.body.as_ref().and_then(|body| {
                body.fields
                    .iter()
                    .find(|field| field.name == read.name)
                    .map(|field| (field, body.at_least_one))
            });
            match declared {
                None => problems.push(format!(
                    "read body field `{}`, which is not declared",
                    read.name
                )),
                Some((field, at_least_one)) => {
                    if field.rule != read.rule {
                        problems.push(format!(
                            "read body field `{}` with another rule than declared",
                            read.name
                        ));
                    }
                    if field.required != read.required && !at_least_one {
                        problems.push(format!(
                            "read body field `{}` as {}, declared {}",
                            read.name,
                            if read.required {
                                "required"
                            } else {
                                "optional"
                            },
                            if field.required {
                                "required"
                            } else {
                                "optional"
                            },
                        ));
                    }
                }
            }
        }
        problems
    }

    /// Every disagreement between a declared body field's rule and its
    /// schema (see [`disagreements`]).
    pub fn field_disagreements(&self) -> Vec<String> {
        self.body
            .iter()
            .flat_map(|body| body.fields.iter())
            .flat_map(|field| {
                (field.probe)()
                    .into_iter()
                    .map(move |problem| format!("body field `{}`: {problem}", field.name))
            })
            .collect()
    }
}
