//! `GET /openapi.json` and `GET /docs`: the OpenAPI 3.1 document assembled
//! from the host's own routes and every loaded component's fragment, so the
//! documentation always matches what is deployed, and a dependency-free
//! HTML page that renders it for people.

use std::sync::Arc;

use axum::{
    Json,
    extract::State,
    response::{Html, IntoResponse},
};
use serde_json::{Map, Value, json};

use super::AppState;
use crate::runtime::registry::Snapshot;

/// `GET /openapi.json`.
pub async fn document(State(app): State<Arc<AppState>>) -> impl IntoResponse {
    let assembled = assemble(&app.runtime.registry().snapshot());
    for clash in &assembled.clashes {
        tracing::warn!(
            component = %clash.component,
            section = %clash.section,
            name = %clash.name,
            "OpenAPI clash; first definition kept"
        );
    }
    Json(assembled.document)
}

/// `GET /docs`.
pub async fn docs() -> Html<&'static str> {
    Html(include_str!("docs.html"))
}

/// The assembled document, and every definition a fragment made that the
/// document already had differently (kept out of the document).
#[derive(Debug)]
pub struct Assembled {
    /// OpenAPI 3.1.
    pub document: Value,
    /// What was refused, in the order met.
    pub clashes: Vec<Clash>,
}

/// A fragment's definition of a path, schema, tag, ... that the host or an
/// earlier component already defined differently. Re-stating an identical
/// definition is not a clash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clash {
    /// The component whose definition was dropped.
    pub component: String,
    /// Where, e.g. `paths` or `components.schemas`.
    pub section: String,
    /// The path, schema or tag name.
    pub name: String,
}

/// The host's routes and shared schemas, then each loaded component's
/// fragment.
pub fn assemble(snapshot: &Snapshot) -> Assembled {
    // Core services first, so their definitions win over anything an
    // extension's fragment says about shared names.
    let mut components: Vec<_> = snapshot.components().collect();
    components.sort_by_key(|c| !crate::runtime::core_services::is_core_service(&c.name));
    let confined: Vec<(&str, String)> = components
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                confine(&c.descriptor.openapi, &c.descriptor.routes),
            )
        })
        .collect();
    assemble_fragments(confined.iter().map(|(name, text)| (*name, text.as_str())))
}

/// A component documents only its own routes: paths outside its route
/// prefixes are dropped (an extension may not document, or redocument,
/// `/api/v1/auth/login`), and so is every `servers` override, which would
/// send a reader's "try it" requests elsewhere.
fn confine(fragment: &str, prefixes: &[String]) -> String {
    let Ok(mut fragment) = serde_json::from_str::<Value>(fragment) else {
        return fragment.to_owned();
    };
    if let Some(object) = fragment.as_object_mut() {
        object.remove("servers");
    }
    if let Some(paths) = fragment.get_mut("paths").and_then(Value::as_object_mut) {
        paths.retain(|path, _| {
            prefixes.iter().any(|prefix| {
                let prefix = prefix.trim_end_matches('/');
                path.strip_prefix(prefix)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            })
        });
        for item in paths.values_mut().filter_map(Value::as_object_mut) {
            item.remove("servers");
            for operation in item.values_mut().filter_map(Value::as_object_mut) {
                operation.remove("servers");
            }
        }
    }
    fragment.to_string()
}

/// The platform document plus `fragments` (component name, OpenAPI JSON
/// text), in order. A path, component definition or tag that is already
/// there keeps its first definition; a different re-definition is a
/// [`Clash`], returned (and logged by [`document`]), so that a component
/// can neither hijack a platform route nor silently change a shared schema.
pub fn assemble_fragments<'a>(
    fragments: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Assembled {
    let mut document = platform_document();
    let mut clashes = Vec::new();
    for (component, text) in fragments {
        let fragment: Value = match serde_json::from_str(text) {
            Ok(fragment) => fragment,
            Err(error) => {
                tracing::warn!(component, "ignoring an invalid OpenAPI fragment: {error}");
                continue;
            }
        };
        merge_section(
            &mut document,
            &fragment,
            &["paths"],
            component,
            &mut clashes,
        );
        if let Some(sections) = fragment.get("components").and_then(Value::as_object) {
            for section in sections.keys() {
                merge_section(
                    &mut document,
                    &fragment,
                    &["components", section],
                    component,
                    &mut clashes,
                );
            }
        }
        merge_tags(&mut document, &fragment, component, &mut clashes);
    }
    document_parameter_refusals(&mut document);
    Assembled { document, clashes }
}

/// Tags are a list, but their names must be unique: a tag already listed
/// is skipped, and one listed with another description is a clash.
fn merge_tags(document: &mut Value, fragment: &Value, component: &str, clashes: &mut Vec<Clash>) {
    let Some(tags) = fragment.get("tags").and_then(Value::as_array) else {
        return;
    };
    let Some(all) = document.get_mut("tags").and_then(Value::as_array_mut) else {
        return;
    };
    for tag in tags {
        let name = tag.get("name").and_then(Value::as_str).unwrap_or_default();
        match all
            .iter()
            .find(|t| t.get("name").and_then(Value::as_str) == Some(name))
        {
            Some(existing) if existing == tag => {}
            Some(_) => clashes.push(Clash {
                component: component.to_owned(),
                section: "tags".to_owned(),
                name: name.to_owned(),
            }),
            None => all.push(tag.clone()),
        }
    }
}

/// The HTTP methods an OpenAPI path item may hold operations for.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Every operation that takes a path or query parameter can be refused
/// with 400 before its component decides anything: the edge refuses a path
/// with control characters or malformed escapes, and the SDK refuses a
/// parameter no database can store (NUL). The platform does this, so the
/// platform documents it, wherever a fragment did not already.
fn document_parameter_refusals(document: &mut Value) {
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut() {
        let shared = has_parameters(item);
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for method in METHODS {
            let Some(operation) = item.get_mut(method) else {
                continue;
            };
            if !(shared || has_parameters(operation)) {
                continue;
            }
            if let Some(responses) = operation
                .get_mut("responses")
                .and_then(Value::as_object_mut)
                && !responses.contains_key("400")
            {
                responses.insert(
                    "400".to_owned(),
                    problem_response(
                        "A parameter is malformed: the path has a control character or a \
                         malformed escape, or a parameter contains NUL (`bad-request`, \
                         `invalid-input`).",
                    ),
                );
            }
        }
    }
}

fn has_parameters(value: &Value) -> bool {
    value
        .get("parameters")
        .and_then(Value::as_array)
        .is_some_and(|parameters| !parameters.is_empty())
}

fn merge_section(
    document: &mut Value,
    fragment: &Value,
    path: &[&str],
    component: &str,
    clashes: &mut Vec<Clash>,
) {
    let Some(source) = path
        .iter()
        .try_fold(fragment, |value, key| value.get(*key))
        .and_then(Value::as_object)
    else {
        return;
    };
    let mut target = &mut *document;
    for key in path {
        let Some(object) = target.as_object_mut() else {
            return;
        };
        target = object
            .entry((*key).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    let Some(target) = target.as_object_mut() else {
        return;
    };
    for (name, value) in source {
        match target.get(name) {
            Some(existing) if existing == value => {}
            Some(_) => clashes.push(Clash {
                component: component.to_owned(),
                section: path.join("."),
                name: name.clone(),
            }),
            None => {
                target.insert(name.clone(), value.clone());
            }
        }
    }
}

fn problem_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } }
    })
}

/// A reference to one of the document's schemas.
fn schema(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// A response with a JSON body.
fn json_response(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

/// A required JSON request body.
fn json_request(schema: Value) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": schema } } })
}

/// A page of `item`s, as every list of the API is shaped.
fn page_of(item: &str) -> Value {
    json!({
        "type": "object",
        "required": ["items", "total", "limit", "offset"],
        "properties": {
            "items": { "type": "array", "items": schema(item) },
            "total": { "type": "integer", "minimum": 0 },
            "limit": { "type": "integer", "minimum": 1, "maximum": 200 },
            "offset": { "type": "integer", "minimum": 0 }
        }
    })
}

/// A path parameter, shared by every operation of its path.
fn path_parameter(name: &str, description: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": description,
        "schema": { "type": "string" } })
}

/// A string query parameter.
fn query_parameter(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": description, "schema": schema })
}

/// `?limit=` and `?offset=` with the API's page rules.
fn page_parameters() -> [Value; 2] {
    [
        query_parameter(
            "limit",
            "Page size.",
            json!({ "type": "integer", "minimum": 1, "maximum": 200, "default": 50 }),
        ),
        query_parameter(
            "offset",
            "How many items to skip.",
            json!({ "type": "integer", "minimum": 0, "default": 0 }),
        ),
    ]
}

const UNAUTHORIZED: &str = "Missing, malformed, expired or revoked bearer token (`unauthorized`).";
const FORBIDDEN: &str = "Authenticated, but not an admin (`forbidden`).";
const UNAVAILABLE: &str = "The database, or the customers service that resolves the token, is \
    unavailable or overloaded; retry later (`database-unavailable`, `unavailable`, `overloaded`, \
    `deadline-exceeded`).";
const UNSUPPORTED_JSON: &str =
    "The body was not sent with `Content-Type: application/json` (`unsupported-media-type`).";
const BAD_JSON: &str = "The body is not a JSON object (`bad-request`), or `errors` names every bad \
    field, unknown fields included (`invalid-input`).";

/// An admin operation: `operation` plus the admin's bearer token and the
/// refusals every admin handler can answer before its own logic
/// ([`super::admin::require_admin`], and storage failures).
fn admin_operation(tag: &str, mut operation: Value) -> Value {
    operation["tags"] = json!([tag]);
    operation["security"] = json!([{ "bearerAuth": [] }]);
    let description = match operation["description"].as_str() {
        Some(description) => format!("Admin only. {description}"),
        None => "Admin only.".to_owned(),
    };
    operation["description"] = Value::String(description);
    if let Some(responses) = operation["responses"].as_object_mut() {
        for (code, description) in [
            ("401", UNAUTHORIZED),
            ("403", FORBIDDEN),
            ("503", UNAVAILABLE),
        ] {
            responses
                .entry(code)
                .or_insert_with(|| problem_response(description));
        }
    }
    operation
}

fn platform_document() -> Value {
    let mut paths = platform_paths();
    if let (Some(paths), Value::Object(admin)) = (paths.as_object_mut(), admin_paths()) {
        paths.extend(admin);
    }
    let mut schemas = json!({
        "FieldError": { "type": "object", "required": ["field", "message"], "properties": {
            "field": { "type": "string", "description": "JSON field or query parameter as the client sent it." },
            "message": { "type": "string" } } },
        "Problem": { "type": "object", "description": "RFC 9457 problem details (`application/problem+json`).",
            "required": ["type", "title", "status", "detail"], "properties": {
            "type": { "type": "string", "description": "Stable slug per kind of error.",
                "examples": ["urn:souk:error:insufficient-funds"] },
            "title": { "type": "string" },
            "status": { "type": "integer" },
            "detail": { "type": "string" },
            "errors": { "type": "array", "items": { "$ref": "#/components/schemas/FieldError" },
                "description": "On validation failures: every bad field, not only the first." },
            "request_id": { "type": "string" } } }
    });
    if let (Some(schemas), Value::Object(more)) = (schemas.as_object_mut(), platform_schemas()) {
        schemas.extend(more);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Souk API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "E-commerce backend whose services run as WebAssembly components. \
                Errors are RFC 9457 problem details (`application/problem+json`) with a stable \
                `type` URN per kind of error; validation problems name every bad field in `errors`. \
                Every response carries `X-Request-Id`. Money is JSON numbers in dollars with at most \
                2 decimals. Lists are pages `{items, total, limit, offset}` with `?limit=` (1..200, \
                default 50) and `?offset=` (default 0). Request bodies over 64 KiB get 413. \
                The `webhooks` section is the catalogue of events POSTed to registered webhooks."
        },
        "tags": [
            { "name": "platform", "description": "Health, metrics and documentation." },
            { "name": "admin: components", "description": "Deploy, roll back and unload components without a restart." },
            { "name": "admin: grants", "description": "What each component may import, its subscriptions and its limits." },
            { "name": "admin: audit", "description": "Who changed what, newest first." },
            { "name": "admin: webhooks", "description": "Endpoints committed events are POSTed to, signed; see `webhooks` for the events." }
        ],
        "paths": paths,
        "webhooks": crate::events::openapi_webhooks(),
        "components": {
            "securitySchemes": {
                "bearerAuth": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                    "description": "`POST /api/v1/auth/login` issues the token; it expires after `expires_in` seconds." }
            },
            "schemas": schemas
        }
    })
}

/// Health, metrics and documentation: anyone may ask.
fn platform_paths() -> Value {
    json!({
        "/health/status": { "get": {
            "operationId": "getHealthStatus", "tags": ["platform"],
            "summary": "Liveness, loaded component versions and what is failing",
            "description": "Always 200 while the process serves: `degraded`, with `problems`, when a \
                component that should serve cannot load or a background loop is failing.",
            "responses": { "200": json_response("The host is serving.", schema("HealthStatus")) }
        } },
        "/health/database": { "get": {
            "operationId": "getDatabaseHealth", "tags": ["platform"],
            "summary": "Database reachability and latency (readiness)",
            "responses": {
                "200": json_response("The database answered.", schema("DatabaseHealth")),
                "503": problem_response("The database is unreachable (`database-unavailable`); with `Retry-After`.")
            }
        } },
        "/metrics": { "get": {
            "operationId": "getMetrics", "tags": ["platform"], "summary": "Prometheus metrics",
            "responses": { "200": { "description": "Prometheus text format 0.0.4, with one \
                `souk_component_info` line per component serving.",
                "content": { "text/plain": { "schema": { "type": "string" } } } } }
        } },
        "/openapi.json": { "get": {
            "operationId": "getOpenApiDocument", "tags": ["platform"], "summary": "This document",
            "responses": { "200": json_response("OpenAPI 3.1, assembled from the host and the loaded components.",
                json!({ "type": "object" })) }
        } },
        "/docs": { "get": {
            "operationId": "getDocs", "tags": ["platform"], "summary": "Human-readable API documentation",
            "responses": { "200": { "description": "An HTML page rendering this document.",
                "content": { "text/html": { "schema": { "type": "string" } } } } }
        } }
    })
}

/// `/admin/...`, as host/src/http/admin.rs and webhooks.rs answer.
fn admin_paths() -> Value {
    let mut paths = Map::new();
    for item in [
        component_paths(),
        grant_paths(),
        audit_paths(),
        webhook_paths(),
    ] {
        if let Value::Object(item) = item {
            paths.extend(item);
        }
    }
    Value::Object(paths)
}

fn component_paths() -> Value {
    const TAG: &str = "admin: components";
    let name = path_parameter("name", "The component's name (its manifest's).");
    json!({
        "/admin/components": { "get": admin_operation(TAG, json!({
            "operationId": "listComponents", "summary": "The components serving now",
            "description": "Each with its version, digest, routes and earlier deployments.",
            "responses": { "200": json_response("Every loaded component.", json!({
                "type": "object", "required": ["items"],
                "properties": { "items": { "type": "array", "items": schema("ComponentInfo") } } })) }
        })) },
        "/admin/components/{name}": {
            "parameters": [name],
            "put": admin_operation(TAG, json!({
                "operationId": "deployComponent", "summary": "Deploy a new version of a component",
                "description": "The body is the component's bytes. It is compiled, checked against its \
                    grant, migrated and then swapped in on every replica with no failed request; \
                    a component that does not load changes nothing. The caller is authenticated \
                    and the media type checked before the body is read.",
                "requestBody": { "required": true, "content": { "application/wasm": {
                    "schema": { "type": "string", "contentMediaType": "application/wasm" } } } },
                "responses": {
                    "200": json_response("Deployed and serving.", schema("ComponentInfo")),
                    "400": problem_response("The bytes are not a component that loads as this name \
                        (`invalid-component`); whatever served before keeps serving."),
                    "413": problem_response(&format!(
                        "The component exceeds {} MiB (`too-large`).",
                        super::admin::MAX_COMPONENT_BYTES >> 20
                    )),
                    "415": problem_response("The body was not sent with `Content-Type: application/wasm` \
                        (`unsupported-media-type`).")
                }
            })),
            "delete": admin_operation(TAG, json!({
                "operationId": "unloadComponent", "summary": "Unload an extension",
                "description": "Stops serving it on every replica. Its tables stay (`data=keep`, the \
                    default: a later deploy finds its data) or are dropped (`data=drop`).",
                "parameters": [query_parameter("data", "What happens to the extension's tables.",
                    json!({ "type": "string", "enum": ["keep", "drop"], "default": "keep" }))],
                "responses": {
                    "204": { "description": "Unloaded." },
                    "400": problem_response("A query parameter other than `data=keep|drop` (`invalid-input`)."),
                    "404": problem_response("No component of this name is loaded (`not-found`)."),
                    "409": problem_response("Core services cannot be unloaded (`core-service`).")
                }
            }))
        },
        "/admin/components/{name}/rollback": {
            "parameters": [path_parameter("name", "The component's name (its manifest's).")],
            "post": admin_operation(TAG, json!({
                "operationId": "rollBackComponent", "summary": "Return a component to its previous version",
                "description": "Loads the version deployed before the current one and swaps it in on \
                    every replica.",
                "responses": {
                    "200": json_response("The previous version serves again.", schema("ComponentInfo")),
                    "400": problem_response("The previous version no longer loads, e.g. under today's \
                        grant (`invalid-component`); the current version keeps serving."),
                    "409": problem_response("There is no previous version of this name to return to \
                        (`no-previous-version`).")
                }
            }))
        }
    })
}

fn grant_paths() -> Value {
    const TAG: &str = "admin: grants";
    json!({
        "/admin/grants": { "get": admin_operation(TAG, json!({
            "operationId": "listGrants", "summary": "Every component's grant",
            "description": "Each component some grant names and each loaded one: its imports, \
                subscriptions, limits and where the grant comes from.",
            "responses": { "200": json_response("The grants.", json!({
                "type": "object", "required": ["items"],
                "properties": { "items": { "type": "array", "items": schema("Grant") } } })) }
        })) },
        "/admin/grants/{component}": {
            "parameters": [path_parameter("component", "The extension's name: 2-32 of a-z, 0-9 and `_`, starting with a letter.")],
            "put": admin_operation(TAG, json!({
                "operationId": "setGrant", "summary": "Set an extension's grant",
                "description": "Replaces its grant at once and on every replica, without a restart; \
                    components serving are re-linked under it.",
                "requestBody": json_request(schema("GrantSpec")),
                "responses": {
                    "200": json_response("The grant now in force.", schema("Grant")),
                    "400": problem_response("The body is not a JSON object (`bad-request`), or `errors` \
                        names every bad field: unknown fields, unknown or host-only interfaces, limits \
                        out of range, a bad component name (`invalid-input`)."),
                    "409": problem_response("Core services' grants are built in (`core-service`)."),
                    "413": problem_response("The body exceeds 16 KiB (`payload-too-large`)."),
                    "415": problem_response(UNSUPPORTED_JSON)
                }
            })),
            "delete": admin_operation(TAG, json!({
                "operationId": "revokeGrant", "summary": "Revoke an extension's grant",
                "description": "It keeps only the base imports and the strict extension limits, at \
                    once and on every replica.",
                "responses": {
                    "204": { "description": "Revoked." },
                    "400": problem_response("Not a component name (`invalid-input`)."),
                    "409": problem_response("Core services' grants are built in (`core-service`).")
                }
            }))
        }
    })
}

fn audit_paths() -> Value {
    let time = json!({ "type": "string", "format": "date-time" });
    let mut parameters = vec![
        query_parameter(
            "actor",
            "Only entries by this username.",
            json!({ "type": "string" }),
        ),
        query_parameter(
            "action",
            "Only this action, e.g. `component.deployed`.",
            json!({ "type": "string" }),
        ),
        query_parameter(
            "subject",
            "Only entries about this subject (a name or id).",
            json!({ "type": "string" }),
        ),
        query_parameter(
            "since",
            "Only entries at or after this time (RFC 3339).",
            time.clone(),
        ),
        query_parameter(
            "until",
            "Only entries at or before this time (RFC 3339).",
            time,
        ),
    ];
    parameters.extend(page_parameters());
    json!({
        "/admin/audit": { "get": admin_operation("admin: audit", json!({
            "operationId": "listAuditEntries", "summary": "The audit log",
            "description": "A page of entries, newest first. Each is written in the same transaction \
                as the change it records.",
            "parameters": parameters,
            "responses": {
                "200": json_response("A page of entries.", page_of("AuditEntry")),
                "400": problem_response("`errors` names every bad or unknown parameter (`invalid-input`).")
            }
        })) }
    })
}

fn webhook_paths() -> Value {
    const TAG: &str = "admin: webhooks";
    let id = || path_parameter("id", "The webhook's id.");
    let not_found = || problem_response("No webhook has this id (`not-found`).");
    let too_large = || problem_response("The body exceeds 16 KiB (`payload-too-large`).");
    let mut delivery_parameters = vec![query_parameter(
        "status",
        "Only deliveries in this state.",
        json!({ "type": "string", "enum": ["pending", "delivered", "failed"] }),
    )];
    delivery_parameters.extend(page_parameters());
    json!({
        "/admin/webhooks": {
            "post": admin_operation(TAG, json!({
                "operationId": "createWebhook", "summary": "Register a webhook",
                "description": "Committed events matching `events` are POSTed to `url`, signed with the \
                    secret, which this answer shows once and never again.",
                "requestBody": json_request(schema("NewWebhook")),
                "responses": {
                    "201": {
                        "description": "Registered; `Location` names it.",
                        "headers": { "Location": { "schema": { "type": "string" } } },
                        "content": { "application/json": { "schema": schema("CreatedWebhook") } }
                    },
                    "400": problem_response(BAD_JSON),
                    "413": too_large(),
                    "415": problem_response(UNSUPPORTED_JSON)
                }
            })),
            "get": admin_operation(TAG, json!({
                "operationId": "listWebhooks", "summary": "The webhooks",
                "description": "A page of webhooks, oldest first, without their secrets.",
                "parameters": page_parameters(),
                "responses": {
                    "200": json_response("A page of webhooks.", page_of("Webhook")),
                    "400": problem_response("`errors` names every bad or unknown parameter (`invalid-input`).")
                }
            }))
        },
        "/admin/webhooks/{id}": {
            "parameters": [id()],
            "get": admin_operation(TAG, json!({
                "operationId": "getWebhook", "summary": "One webhook",
                "responses": { "200": json_response("The webhook, without its secret.", schema("Webhook")), "404": not_found() }
            })),
            "patch": admin_operation(TAG, json!({
                "operationId": "updateWebhook", "summary": "Change a webhook's events or pause it",
                "description": "Send `events` and/or `enabled`; the URL cannot change (delete and create \
                    another).",
                "requestBody": json_request(schema("WebhookChanges")),
                "responses": {
                    "200": json_response("The webhook after the change.", schema("Webhook")),
                    "400": problem_response("An empty object or not a JSON object (`bad-request`), or \
                        `errors` names every bad field, `url` and unknown fields included (`invalid-input`)."),
                    "404": not_found(),
                    "413": too_large(),
                    "415": problem_response(UNSUPPORTED_JSON)
                }
            })),
            "delete": admin_operation(TAG, json!({
                "operationId": "deleteWebhook", "summary": "Delete a webhook",
                "description": "Its pending deliveries go too.",
                "responses": { "204": { "description": "Deleted." }, "404": not_found() }
            }))
        },
        "/admin/webhooks/{id}/deliveries": {
            "parameters": [id()],
            "get": admin_operation(TAG, json!({
                "operationId": "listWebhookDeliveries", "summary": "A webhook's delivery log",
                "description": "A page of its deliveries, newest first: attempts, status, next retry.",
                "parameters": delivery_parameters,
                "responses": {
                    "200": json_response("A page of deliveries.", page_of("Delivery")),
                    "400": problem_response("`errors` names every bad or unknown parameter (`invalid-input`)."),
                    "404": not_found()
                }
            }))
        },
        "/admin/webhooks/{id}/replay": {
            "parameters": [id()],
            "post": admin_operation(TAG, json!({
                "operationId": "replayWebhook", "summary": "Send past events to a webhook again",
                "description": "Enqueues a new delivery of every matching event from `from_sequence` on \
                    (as far as the fan-out has got), a bounded number per call; `next_sequence` says \
                    where to continue if that cut it short. Event ids stay the same.",
                "requestBody": json_request(schema("ReplayRequest")),
                "responses": {
                    "202": json_response("Enqueued.", schema("Replayed")),
                    "400": problem_response(BAD_JSON),
                    "404": not_found(),
                    "413": too_large(),
                    "415": problem_response(UNSUPPORTED_JSON)
                }
            }))
        }
    })
}

/// The shapes of the host's own answers and request bodies.
fn platform_schemas() -> Value {
    let time = json!({ "type": "string", "format": "date-time" });
    let optional_time = json!({ "type": ["string", "null"], "format": "date-time" });
    let patterns = json!({ "type": "array", "minItems": 1, "maxItems": crate::webhooks::MAX_PATTERNS,
        "items": { "type": "string" }, "description": "Event types (`noun.verb`) or `noun.*`; see `webhooks`." });
    json!({
        "HealthStatus": { "type": "object",
            "required": ["status", "version", "uptime_seconds", "components", "problems"],
            "properties": {
                "status": { "type": "string", "enum": ["ok", "degraded"] },
                "version": { "type": "string" },
                "uptime_seconds": { "type": "integer", "minimum": 0 },
                "components": { "type": "array", "items": schema("ComponentHealth") },
                "problems": { "type": "array", "items": schema("HealthProblem") }
            } },
        "ComponentHealth": { "type": "object", "required": ["name", "version", "status"], "properties": {
            "name": { "type": "string" },
            "version": { "type": ["string", "null"], "description": "`null` when no version of it loads." },
            "status": { "type": "string", "enum": ["serving", "outdated", "failed"],
                "description": "`outdated`: an older version serves because the deployed one cannot load; \
                    `failed`: none serves." },
            "reason": { "type": "string", "description": "Why it cannot load (not when serving)." }
        } },
        "HealthProblem": { "type": "object", "required": ["source", "detail", "failing_seconds"], "properties": {
            "source": { "type": "string", "description": "`component:<name>` or a background loop." },
            "detail": { "type": "string" },
            "failing_seconds": { "type": "integer", "minimum": 0 }
        } },
        "DatabaseHealth": { "type": "object", "required": ["status", "backend", "latency_ms"], "properties": {
            "status": { "type": "string", "const": "ok" },
            "backend": { "type": "string", "enum": ["sqlite", "postgres"] },
            "latency_ms": { "type": "number", "minimum": 0 }
        } },
        "ComponentInfo": { "type": "object",
            "required": ["name", "version", "sha256", "status", "core", "deployed_at", "deployed_by",
                "routes", "previous_versions"],
            "properties": {
                "name": { "type": "string" },
                "version": { "type": "string" },
                "sha256": { "type": "string", "description": "Of the component's bytes, hex." },
                "status": { "type": "string", "const": "serving" },
                "core": { "type": "boolean", "description": "Core services cannot be unloaded." },
                "deployed_at": optional_time,
                "deployed_by": { "type": ["string", "null"], "description": "An admin's username, or `build`/`watch`." },
                "routes": { "type": "array", "items": { "type": "string" }, "description": "The path prefixes it serves." },
                "previous_versions": { "type": "array", "items": schema("Deployment") }
            } },
        "Deployment": { "type": "object",
            "required": ["name", "version", "sha256", "source", "state", "deployed_at", "deployed_by"],
            "properties": {
                "name": { "type": "string" },
                "version": { "type": "string" },
                "sha256": { "type": "string" },
                "source": { "type": "string", "enum": ["directory", "api", "watch"] },
                "state": { "type": "string", "enum": ["current", "previous", "rolled-back", "unloaded"] },
                "deployed_at": time,
                "deployed_by": { "type": "string" }
            } },
        "Grant": { "type": "object",
            "required": ["component", "imports", "subscribe", "memory_mib", "deadline_ms",
                "max_concurrency", "max_response_kib", "source"],
            "properties": {
                "component": { "type": "string" },
                "imports": { "type": "array", "items": { "type": "string" },
                    "description": "Interfaces granted beyond the base set every component has." },
                "subscribe": { "type": "array", "items": { "type": "string" },
                    "description": "Event types (or `noun.*`) delivered to its `event-handler` export." },
                "memory_mib": { "type": "integer", "minimum": 0 },
                "deadline_ms": { "type": "integer", "minimum": 0 },
                "max_concurrency": { "type": "integer", "minimum": 0 },
                "max_response_kib": { "type": "integer", "minimum": 0 },
                "source": { "type": "string", "enum": ["builtin", "configured", "operator"] },
                "updated_at": { "type": "string", "format": "date-time", "description": "Operator grants only." },
                "updated_by": { "type": "string", "description": "Operator grants only." }
            } },
        "GrantSpec": { "type": "object", "additionalProperties": false,
            "description": "One component's entry of the grants file. Omitted limits take the defaults.",
            "properties": {
                "imports": { "type": "array", "items": { "type": "string" },
                    "description": "Grantable interfaces, e.g. `souk:platform/inventory-api`." },
                "subscribe": { "type": "array", "items": { "type": "string" },
                    "description": "Event types (`noun.verb`) or `noun.*`." },
                "memory_mib": { "type": "integer", "minimum": 1 },
                "deadline_ms": { "type": "integer", "minimum": 1 },
                "max_concurrency": { "type": "integer", "minimum": 1 },
                "max_response_kib": { "type": "integer", "minimum": 1 }
            } },
        "AuditEntry": { "type": "object",
            "required": ["id", "at", "actor", "action", "subject", "request_id", "changes"],
            "properties": {
                "id": { "type": "string" },
                "at": time,
                "actor": { "type": ["string", "null"], "description": "`null`: anonymous, or the system." },
                "action": { "type": "string", "examples": ["component.deployed", "wallet.charged"] },
                "subject": { "type": "string" },
                "request_id": { "type": "string" },
                "changes": { "type": "object", "description": "What changed; never a password or a secret." }
            } },
        "Webhook": { "type": "object",
            "required": ["id", "url", "events", "enabled", "created_at", "updated_at"],
            "properties": {
                "id": { "type": "string" },
                "url": { "type": "string" },
                "events": { "type": "array", "items": { "type": "string" } },
                "enabled": { "type": "boolean" },
                "created_at": time,
                "updated_at": time
            } },
        "CreatedWebhook": { "allOf": [schema("Webhook"), {
            "type": "object", "required": ["secret"], "properties": {
                "secret": { "type": "string", "description": "Signs every delivery; shown only here." } } }] },
        "NewWebhook": { "type": "object", "required": ["url", "events"], "additionalProperties": false,
            "properties": {
                "url": { "type": "string", "maxLength": crate::webhooks::MAX_URL_BYTES,
                    "description": "Absolute `http` URL with a host and no credentials." },
                "events": patterns
            } },
        "WebhookChanges": { "type": "object", "minProperties": 1, "additionalProperties": false,
            "properties": {
                "events": patterns,
                "enabled": { "type": "boolean", "description": "`false` pauses fan-out and sending." }
            } },
        "Delivery": { "type": "object",
            "required": ["id", "webhook_id", "event_id", "event_type", "event_sequence", "status",
                "attempts", "next_attempt_at", "last_attempt_at", "last_status_code", "last_error",
                "created_at", "delivered_at"],
            "properties": {
                "id": { "type": "string", "description": "This delivery's id (a replay makes a new one)." },
                "webhook_id": { "type": "string" },
                "event_id": { "type": "string", "description": "The same in every attempt and every replay." },
                "event_type": { "type": "string" },
                "event_sequence": { "type": "integer", "minimum": 1 },
                "status": { "type": "string", "enum": ["pending", "delivered", "failed"] },
                "attempts": { "type": "integer", "minimum": 0 },
                "next_attempt_at": optional_time,
                "last_attempt_at": optional_time,
                "last_status_code": { "type": ["integer", "null"] },
                "last_error": { "type": ["string", "null"] },
                "created_at": time,
                "delivered_at": optional_time
            } },
        "ReplayRequest": { "type": "object", "required": ["from_sequence"], "additionalProperties": false,
            "properties": { "from_sequence": { "type": "integer", "minimum": 1 } } },
        "Replayed": { "type": "object", "required": ["enqueued", "from_sequence", "next_sequence"],
            "properties": {
                "enqueued": { "type": "integer", "minimum": 0 },
                "from_sequence": { "type": "integer", "minimum": 1 },
                "next_sequence": { "type": ["integer", "null"],
                    "description": "Where to replay from next; `null` when every matching event was enqueued." }
            } }
    })
}

/// What keeps `document` from being valid OpenAPI 3.1 as far as a
/// client generator or a fuzzer cares: unresolvable `$ref`s, operations
/// without responses, non-operations in path items, undeclared path
/// parameters, duplicate `operationId`s, unknown security schemes. The
/// host's tests run it on the platform document, the black-box suite on
/// the document assembled from the real components.
pub fn structural_problems(document: &Value) -> Vec<String> {
    fn references(value: &Value, at: &str, found: &mut Vec<(String, String)>) {
        match value {
            Value::Object(object) => {
                if let Some(Value::String(target)) = object.get("$ref") {
                    found.push((at.to_owned(), target.clone()));
                }
                for (key, child) in object {
                    references(child, &format!("{at}/{key}"), found);
                }
            }
            Value::Array(items) => {
                for (index, child) in items.iter().enumerate() {
                    references(child, &format!("{at}/{index}"), found);
                }
            }
            _ => {}
        }
    }
    let resolve = |value: &'_ Value| -> Option<Value> {
        match value.get("$ref").and_then(Value::as_str) {
            Some(target) => document.pointer(target.strip_prefix('#')?).cloned(),
            None => Some(value.clone()),
        }
    };
    let mut problems = Vec::new();
    if document["openapi"] != "3.1.0" {
        problems.push("not OpenAPI 3.1.0".to_owned());
    }
    let mut found = Vec::new();
    references(document, "#", &mut found);
    for (at, target) in found {
        let resolved = target
            .strip_prefix('#')
            .and_then(|pointer| document.pointer(pointer));
        if resolved.is_none() {
            problems.push(format!("{at}: unresolved $ref {target}"));
        }
    }
    let schemes = &document["components"]["securitySchemes"];
    let mut operation_ids = Vec::new();
    let empty = Map::new();
    for section in ["paths", "webhooks"] {
        for (path, item) in document[section].as_object().unwrap_or(&empty) {
            let shared = item["parameters"].as_array().cloned().unwrap_or_default();
            for (key, operation) in item.as_object().unwrap_or(&empty) {
                if !METHODS.contains(&key.as_str()) {
                    if !["parameters", "summary", "description", "servers"].contains(&key.as_str())
                    {
                        problems.push(format!("{section} {path}: `{key}` is not an operation"));
                    }
                    continue;
                }
                let what = format!("{section} {key} {path}");
                let responses = operation["responses"].as_object().unwrap_or(&empty);
                if responses.is_empty() {
                    problems.push(format!("{what}: no responses"));
                }
                for (code, response) in responses {
                    let valid_code = code == "default"
                        || (code.len() == 3
                            && code.starts_with(['1', '2', '3', '4', '5'])
                            && code[1..].chars().all(|c| c.is_ascii_digit() || c == 'X'));
                    let described = resolve(response).is_some_and(|r| r["description"].is_string());
                    if !valid_code || !described {
                        problems.push(format!("{what}: response {code} is malformed"));
                    }
                }
                if let Some(id) = operation["operationId"].as_str() {
                    if operation_ids.contains(&id.to_owned()) {
                        problems.push(format!("{what}: operationId {id} is not unique"));
                    }
                    operation_ids.push(id.to_owned());
                }
                for requirement in operation["security"].as_array().unwrap_or(&Vec::new()) {
                    for scheme in requirement.as_object().unwrap_or(&empty).keys() {
                        if !schemes[scheme].is_object() {
                            problems.push(format!("{what}: unknown security scheme {scheme}"));
                        }
                    }
                }
                if section != "paths" {
                    continue;
                }
                let mut declared: Vec<String> = shared
                    .iter()
                    .chain(operation["parameters"].as_array().unwrap_or(&Vec::new()))
                    .filter_map(resolve)
                    .filter(|p| p["in"] == "path" && p["required"] == true)
                    .filter_map(|p| p["name"].as_str().map(str::to_owned))
                    .collect();
                declared.sort();
                declared.dedup();
                let mut template: Vec<String> = path
                    .split('/')
                    .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}').map(str::to_owned))
                    .collect();
                template.sort();
                if declared != template {
                    problems.push(format!(
                        "{what}: path parameters {declared:?}, template {template:?}"
                    ));
                }
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_fragment_documents_only_its_own_routes_and_no_servers() {
        let fragment = r#"{"servers":[{"url":"https://evil"}],"paths":{
            "/api/v1/auth/login":{"post":{"responses":{}}},
            "/api/v1/shadow":{"servers":[{"url":"https://evil"}],"get":{"servers":[],"responses":{}}},
            "/api/v1/shadowx":{"get":{"responses":{}}}}}"#;
        let confined: Value =
            serde_json::from_str(&confine(fragment, &["/api/v1/shadow".to_owned()]))
                .unwrap_or_default();
        assert!(confined.get("servers").is_none());
        let paths = confined["paths"].as_object().cloned().unwrap_or_default();
        assert_eq!(paths.keys().collect::<Vec<_>>(), ["/api/v1/shadow"]);
        assert!(paths["/api/v1/shadow"].get("servers").is_none());
        assert!(paths["/api/v1/shadow"]["get"].get("servers").is_none());
    }

    use super::*;

    /// The host's own routes, as `super::router` declares them.
    const HOST_ROUTES: &[(&str, &str)] = &[
        ("get", "/health/status"),
        ("get", "/health/database"),
        ("get", "/metrics"),
        ("get", "/openapi.json"),
        ("get", "/docs"),
        ("get", "/admin/components"),
        ("put", "/admin/components/{name}"),
        ("delete", "/admin/components/{name}"),
        ("post", "/admin/components/{name}/rollback"),
        ("get", "/admin/grants"),
        ("put", "/admin/grants/{component}"),
        ("delete", "/admin/grants/{component}"),
        ("get", "/admin/audit"),
        ("get", "/admin/webhooks"),
        ("post", "/admin/webhooks"),
        ("get", "/admin/webhooks/{id}"),
        ("patch", "/admin/webhooks/{id}"),
        ("delete", "/admin/webhooks/{id}"),
        ("get", "/admin/webhooks/{id}/deliveries"),
        ("post", "/admin/webhooks/{id}/replay"),
    ];

    #[test]
    fn the_platform_document_is_valid_openapi_3_1() {
        // The shipped components' fragments are checked with the real
        // components in the black-box suite (tests/api/openapi.rs).
        let document = assemble_fragments([]).document;
        assert_eq!(structural_problems(&document), Vec::<String>::new());
        assert_eq!(
            document["webhooks"].as_object().map(Map::len),
            Some(crate::events::CATALOGUE.len())
        );
    }

    #[test]
    fn the_checker_sees_what_is_wrong() {
        let document = json!({ "openapi": "3.1.0", "paths": {
            "/a/{id}": {
                "parameters": [{ "name": "id", "in": "path", "required": true }],
                "get": { "operationId": "x", "responses": { "200": { "$ref": "#/components/responses/Nope" } } },
                "post": { "operationId": "x", "responses": {}, "security": [{ "nope": [] }] },
                "other": {}
            },
            "/b/{id}": { "get": { "responses": { "200": { "description": "ok" } } } }
        } });
        let problems = structural_problems(&document);
        for expected in [
            "unresolved $ref",
            "no responses",
            "not unique",
            "unknown security scheme",
            "`other` is not an operation",
            "template [\"id\"]",
            "response 200 is malformed",
        ] {
            assert!(
                problems.iter().any(|p| p.contains(expected)),
                "{expected}: {problems:#?}"
            );
        }
    }

    #[test]
    fn every_host_route_is_documented_and_nothing_else() {
        let document = platform_document();
        let mut documented: Vec<(String, String)> = document["paths"]
            .as_object()
            .into_iter()
            .flatten()
            .flat_map(|(path, item)| {
                METHODS
                    .iter()
                    .filter(|m| item.get(**m).is_some())
                    .map(|m| ((*m).to_owned(), path.clone()))
            })
            .collect();
        let mut expected: Vec<(String, String)> = HOST_ROUTES
            .iter()
            .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
            .collect();
        documented.sort();
        expected.sort();
        assert_eq!(documented, expected);
        for (method, path) in HOST_ROUTES {
            let operation = &document["paths"][path][method];
            let responses = &operation["responses"];
            if path.starts_with("/admin/") {
                assert_eq!(
                    operation["security"],
                    json!([{ "bearerAuth": [] }]),
                    "{method} {path}"
                );
                for code in ["401", "403", "503"] {
                    assert!(responses[code].is_object(), "{method} {path}: {code}");
                }
            }
            if operation["requestBody"].is_object() {
                for code in ["400", "413", "415"] {
                    assert!(responses[code].is_object(), "{method} {path}: {code}");
                }
            }
            // Every route that looks its subject up says so; deploying
            // and granting create theirs instead.
            if path.starts_with("/admin/webhooks/{id}") {
                assert!(responses["404"].is_object(), "{method} {path}");
            }
        }
    }

    #[test]
    fn operations_with_parameters_document_the_edges_400() {
        let mut document = json!({ "paths": {
            "/a/{id}": {
                "parameters": [{ "name": "id", "in": "path" }],
                "get": { "responses": { "200": {} } },
                "delete": { "responses": { "204": {}, "400": { "description": "own" } } }
            },
            "/b": {
                "get": { "parameters": [{ "name": "q", "in": "query" }], "responses": { "200": {} } },
                "post": { "responses": { "201": {} } }
            }
        } });
        document_parameter_refusals(&mut document);
        let paths = &document["paths"];
        assert!(paths["/a/{id}"]["get"]["responses"]["400"]["content"].is_object());
        assert_eq!(
            paths["/a/{id}"]["delete"]["responses"]["400"]["description"],
            "own"
        );
        assert!(paths["/b"]["get"]["responses"]["400"].is_object());
        assert!(paths["/b"]["post"]["responses"]["400"].is_null());
    }

    #[test]
    fn fragments_merge_without_overwriting_and_report_each_clash() {
        let host = platform_document();
        let same = json!({
            "tags": [host["tags"][0].clone()],
            "components": {
                "schemas": { "Problem": host["components"]["schemas"]["Problem"].clone() },
                "securitySchemes": host["components"]["securitySchemes"].clone()
            }
        })
        .to_string();
        let hijack = json!({
            "tags": [{ "name": "platform", "description": "mine" }, { "name": "x" }],
            "paths": { "/api/v1/x": { "get": {} }, "/health/status": { "get": { "summary": "hijack" } } },
            "components": { "schemas": { "X": { "type": "object" }, "Problem": { "type": "string" } } }
        })
        .to_string();
        let assembled = assemble_fragments([("same", same.as_str()), ("x", hijack.as_str())]);
        let document = &assembled.document;
        assert!(document["paths"]["/api/v1/x"]["get"].is_object());
        assert_ne!(
            document["paths"]["/health/status"]["get"]["summary"],
            "hijack"
        );
        assert_eq!(
            document["components"]["schemas"]["Problem"]["type"],
            "object"
        );
        assert!(document["components"]["schemas"]["X"].is_object());
        let tags: Vec<&str> = document["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["name"].as_str())
            .collect();
        assert_eq!(tags.iter().filter(|t| **t == "platform").count(), 1);
        assert!(tags.contains(&"x"));
        let clash = |section: &str, name: &str| Clash {
            component: "x".to_owned(),
            section: section.to_owned(),
            name: name.to_owned(),
        };
        assert_eq!(
            assembled.clashes,
            vec![
                clash("paths", "/health/status"),
                clash("components.schemas", "Problem"),
                clash("tags", "platform"),
            ]
        );
    }
}
