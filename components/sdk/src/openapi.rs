//! A component's OpenAPI fragment, generated from its router's route
//! declarations ([`crate::route`]), and the checks that keep those
//! declarations complete enough to document.
//!
//! The fragment holds `paths`, the schemas its routes name
//! (`components.schemas`) and, when the router documents its tag, `tags`.
//! It never defines what the host owns: the `Problem` and `FieldError`
//! schemas every error response refers to, and the `bearerAuth` security
//! scheme. The host merges fragments into `/openapi.json` and documents
//! what only it can refuse (a malformed path, a body over the limit before
//! any component sees it).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::context::PageRequest;
use crate::route::{Caller, Route};
use crate::router::Router;
use crate::schema::{Schema, Schemas};

/// Schemas the host's document defines for every component.
const PLATFORM_SCHEMAS: &[&str] = &["Problem", "FieldError"];

/// The security scheme the host defines: a bearer JWT.
const BEARER: &str = "bearerAuth";

const INVALID_BODY: &str = "Invalid input: `errors` names every bad field (`invalid-input`), or \
    the body is not a JSON object sent as `application/json` (`bad-request`).";
const INVALID_PARAMETER: &str = "A bad parameter (`invalid-input` naming each one).";
const UNAUTHORIZED: &str = "Missing, malformed, expired or revoked bearer token (`unauthorized`).";
const TOO_LARGE: &str =
    "The request body is larger than the host's limit (64 KiB unless configured otherwise).";
const UNAVAILABLE: &str = "The service or its database is unavailable, overloaded or ran past \
    its deadline; retry later.";

/// The OpenAPI fragment documenting `router`'s routes.
pub fn fragment(router: &Router) -> Value {
    let mut schemas = Schemas::new();
    let mut paths = Map::new();
    for route in router.routes() {
        let item = paths
            .entry(route.pattern().to_owned())
            .or_insert_with(|| path_item(router, route.pattern()));
        if let Some(item) = item.as_object_mut() {
            item.insert(
                route.method().to_lowercase(),
                operation(router, route, &mut schemas),
            );
        }
    }
    let mut fragment = json!({
        "paths": paths,
        "components": { "schemas": schemas.into_map() },
    });
    if let Some(doc) = router.tag_doc {
        fragment["tags"] = json!([{ "name": router.tag, "description": doc }]);
    }
    fragment
}

/// The names of the `{name}` segments of `pattern`.
fn path_parameters(pattern: &str) -> impl Iterator<Item = &str> {
    pattern
        .split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
}

/// A path item with its path parameters, shared by its operations.
fn path_item(router: &Router, pattern: &str) -> Value {
    let parameters: Vec<Value> = path_parameters(pattern)
        .map(|name| {
            let doc = router
                .path_params
                .iter()
                .find(|(known, _)| *known == name)
                .map_or("", |(_, doc)| *doc);
            json!({ "name": name, "in": "path", "required": true, "description": doc,
                "schema": { "type": "string" } })
        })
        .collect();
    if parameters.is_empty() {
        json!({})
    } else {
        json!({ "parameters": parameters })
    }
}

fn operation(router: &Router, route: &Route, schemas: &mut Schemas) -> Value {
    let mut operation = json!({
        "operationId": route.operation_id,
        "tags": [route.tag.unwrap_or(router.tag)],
        "summary": route.summary,
    });
    if let Some(description) = route.description {
        operation["description"] = json!(description);
    }
    match route.caller {
        Caller::Anyone => {}
        Caller::Optional => operation["security"] = json!([{}, { BEARER: [] }]),
        Caller::Authenticated | Caller::Admin | Caller::SelfOrAdmin => {
            operation["security"] = json!([{ BEARER: [] }]);
        }
    }
    let mut parameters: Vec<Value> = route
        .params
        .iter()
        .map(|param| {
            json!({ "name": param.name, "in": param.location, "required": false,
                "description": param.doc, "schema": (param.schema)(schemas).into_value() })
        })
        .collect();
    if route.paged {
        parameters.push(json!({ "name": "limit", "in": "query", "required": false,
            "description": "Page size.",
            "schema": { "type": "integer", "minimum": 1, "maximum": PageRequest::MAX_LIMIT,
                "default": PageRequest::DEFAULT_LIMIT } }));
        parameters.push(json!({ "name": "offset", "in": "query", "required": false,
            "description": "How many items to skip.",
            "schema": { "type": "integer", "minimum": 0, "default": 0 } }));
    }
    if !parameters.is_empty() {
        operation["parameters"] = json!(parameters);
    }
    if let Some(body) = &route.body {
        let schema = body.schema(schemas);
        let reference = schemas.define(body.name, schema);
        operation["requestBody"] = json!({ "required": body.required,
            "content": { "application/json": { "schema": reference.into_value() } } });
    }
    operation["responses"] = Value::Object(responses(route, schemas));
    operation
}

fn responses(route: &Route, schemas: &mut Schemas) -> Map<String, Value> {
    let mut responses = Map::new();
    for success in &route.successes {
        let mut response = json!({ "description": success.doc });
        if !success.headers.is_empty() {
            let headers: Map<String, Value> = success
                .headers
                .iter()
                .map(|(name, doc)| {
                    let header = json!({ "description": doc, "schema": { "type": "string" } });
                    ((*name).to_owned(), header)
                })
                .collect();
            response["headers"] = Value::Object(headers);
        }
        if let Some(schema) = success.schema {
            let mut schema = schema(schemas);
            if let Some(name) = success.page {
                schema = schemas.define(name, schema);
            }
            response["content"] = json!({ "application/json": { "schema": schema.into_value() } });
        }
        responses.insert(success.status.to_string(), response);
    }

    // The problems, each status once with every reason for it.
    let mut problems: BTreeMap<u16, Vec<String>> = BTreeMap::new();
    let mut add = |status: u16, text: String| problems.entry(status).or_default().push(text);
    if route.body.is_some() {
        add(400, INVALID_BODY.to_owned());
        add(413, TOO_LARGE.to_owned());
    } else if route.takes_input() && (route.paged || !route.params.is_empty()) {
        add(400, INVALID_PARAMETER.to_owned());
    }
    if route.caller.needs_token() {
        add(401, UNAUTHORIZED.to_owned());
    }
    if let Some(text) = route.caller.forbidden() {
        add(403, text.to_owned());
    }
    for kind in &route.errors {
        let slug = if kind.status() == 409 {
            format!("urn:souk:error:{}", kind.slug())
        } else {
            kind.slug().to_owned()
        };
        let doc = kind.doc().trim_end_matches('.');
        add(kind.status(), format!("{doc} (`{slug}`)."));
    }
    if let Some(text) = route.rate_limited {
        add(429, text.to_owned());
    }
    add(503, UNAVAILABLE.to_owned());

    let conflicts: Vec<String> = route
        .errors
        .iter()
        .filter(|kind| kind.status() == 409)
        .map(|kind| format!("urn:souk:error:{}", kind.slug()))
        .collect();
    for (status, texts) in problems {
        let mut schema = Schema::reference("Problem").into_value();
        if status == 409 && !conflicts.is_empty() {
            // A conflict's slug is the component's to choose, and all of
            // them are declared: say exactly which.
            schema = json!({ "allOf": [schema,
                { "properties": { "type": { "enum": conflicts } } }] });
        }
        responses.insert(
            status.to_string(),
            json!({ "description": texts.join(" "),
                "content": { "application/problem+json": { "schema": schema } } }),
        );
    }
    responses
}

/// Everything that keeps `router`'s declarations from documenting it
/// fully; empty when they do: an operation without an id, a summary or an
/// answer, an id used twice, a path parameter nobody described, a field
/// rule that disagrees with its schema, a reference to a schema no one
/// defines, or a fragment defining what the host owns.
pub fn declaration_problems(router: &Router) -> Vec<String> {
    let mut problems = Vec::new();
    let mut ids: Vec<&str> = Vec::new();
    for route in router.routes() {
        let what = format!("{} {}", route.method(), route.pattern());
        if route.operation_id.is_empty() || route.summary.is_empty() {
            problems.push(format!("{what}: no operationId or summary"));
        }
        if ids.contains(&route.operation_id) {
            problems.push(format!(
                "{what}: operationId {} is used twice",
                route.operation_id
            ));
        }
        ids.push(route.operation_id);
        if route.successes.is_empty() {
            problems.push(format!("{what}: no successful answer declared"));
        }
        for name in path_parameters(route.pattern()) {
            if !router.path_params.iter().any(|(known, _)| *known == name) {
                problems.push(format!("{what}: path parameter `{name}` is not described"));
            }
        }
        problems.extend(
            route
                .field_disagreements()
                .into_iter()
                .map(|problem| format!("{what}: {problem}")),
        );
    }

    let document = fragment(router);
    let empty = Map::new();
    let schemas = document["components"]["schemas"]
        .as_object()
        .unwrap_or(&empty);
    for name in PLATFORM_SCHEMAS {
        if schemas.contains_key(*name) {
            problems.push(format!("defines `{name}`, which the host owns"));
        }
    }
    if document["components"].get("securitySchemes").is_some() {
        problems.push("defines security schemes, which the host owns".to_owned());
    }
    let text = document.to_string();
    for reference in text.split("\"$ref\":\"").skip(1) {
        let target = reference.split('"').next().unwrap_or_default();
        match target.strip_prefix("#/components/schemas/") {
            Some(name)
                if schemas.contains_key(name)
                    || PLATFORM_SCHEMAS.contains(&name)
                    || router.foreign_schemas.contains(&name) => {}
            _ => problems.push(format!("unresolved reference {target}")),
        }
    }
    problems
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::field::Positive;
    use crate::route::{Body, ErrorKind};
    use crate::{Response, Result, context::Context};

    fn handler(_: &Context) -> Result<Response> {
        crate::respond::no_content()
    }

    const TAKEN: ErrorKind = ErrorKind::conflict("taken", "The name is taken.");

    fn router() -> Router {
        Router::new("things")
            .describe_tag("Things.")
            .path_param("id", "A thing's id.")
            .route(
                Route::post("/api/v1/things/{id}/pay", handler)
                    .operation("payThing", "Pay a thing")
                    .caller(Caller::SelfOrAdmin)
                    .body(Body::object("Payment", "").required::<Positive>("amount"))
                    .ok::<String>("Paid.")
                    .header("Location", "Where.")
                    .error(ErrorKind::not_found("No thing has this id."))
                    .error(TAKEN),
            )
            .route(
                Route::get("/api/v1/things", handler)
                    .operation("listThings", "List things")
                    .page::<String>("ThingPage", "A page of things."),
            )
    }

    #[test]
    fn a_route_declaration_becomes_an_operation() {
        let fragment = fragment(&router());
        let operation = &fragment["paths"]["/api/v1/things/{id}/pay"]["post"];
        assert_eq!(operation["operationId"], "payThing");
        assert_eq!(operation["security"], json!([{ "bearerAuth": [] }]));
        let statuses: Vec<&String> = operation["responses"].as_object().unwrap().keys().collect();
        assert_eq!(
            statuses,
            ["200", "400", "401", "403", "404", "409", "413", "503"]
        );
        assert_eq!(
            operation["responses"]["409"]["content"]["application/problem+json"]["schema"]["allOf"]
                [1],
            json!({ "properties": { "type": { "enum": ["urn:souk:error:taken"] } } })
        );
        assert_eq!(
            operation["requestBody"]["content"]["application/json"]["schema"],
            json!({ "$ref": "#/components/schemas/Payment" })
        );
        let payment = &fragment["components"]["schemas"]["Payment"];
        assert_eq!(payment["required"], json!(["amount"]));
        assert_eq!(payment["additionalProperties"], false);
        assert_eq!(payment["properties"]["amount"]["maximum"], 1_000_000);
        assert_eq!(
            fragment["paths"]["/api/v1/things/{id}/pay"]["parameters"][0]["description"],
            "A thing's id."
        );
        assert_eq!(fragment["tags"][0]["name"], "things");
    }

    #[test]
    fn pages_take_the_page_parameters_and_name_their_schema() {
        let fragment = fragment(&router());
        let operation = &fragment["paths"]["/api/v1/things"]["get"];
        let names: Vec<&str> = operation["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(names, ["limit", "offset"]);
        let page = &fragment["components"]["schemas"]["ThingPage"];
        assert_eq!(
            page["required"],
            json!(["items", "total", "limit", "offset"])
        );
        assert!(operation.get("security").is_none());
        assert!(operation["responses"].get("401").is_none());
    }

    #[test]
    fn complete_declarations_have_no_problems() {
        assert_eq!(declaration_problems(&router()), Vec::<String>::new());
    }

    #[test]
    fn incomplete_declarations_are_named() {
        let router = Router::new("t")
            .route(Route::get("/a/{id}", handler).ok::<String>("x"))
            .route(Route::get("/b", handler).operation("b", "B"));
        let problems = declaration_problems(&router);
        assert_eq!(problems.len(), 3, "{problems:#?}");
    }
}
