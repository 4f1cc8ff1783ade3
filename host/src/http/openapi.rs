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
    Json(assemble(&app.runtime.registry().snapshot()))
}

/// `GET /docs`.
pub async fn docs() -> Html<&'static str> {
    Html(include_str!("docs.html"))
}

/// The host's routes and shared schemas, then each component's fragment.
/// A path or schema a component defines twice (or that the host defines)
/// keeps its first definition, and the clash is logged.
pub fn assemble(snapshot: &Snapshot) -> Value {
    let mut document = platform_document();
    for component in snapshot.components() {
        let fragment: Value = match serde_json::from_str(&component.descriptor.openapi) {
            Ok(fragment) => fragment,
            Err(error) => {
                tracing::warn!(component = %component.name, "ignoring an invalid OpenAPI fragment: {error}");
                continue;
            }
        };
        merge_section(&mut document, &fragment, &["paths"], &component.name);
        if let Some(sections) = fragment.get("components").and_then(Value::as_object) {
            for section in sections.keys() {
                merge_section(
                    &mut document,
                    &fragment,
                    &["components", section],
                    &component.name,
                );
            }
        }
        if let Some(tags) = fragment.get("tags").and_then(Value::as_array)
            && let Some(all) = document.get_mut("tags").and_then(Value::as_array_mut)
        {
            all.extend(tags.iter().cloned());
        }
    }
    document_parameter_refusals(&mut document);
    document
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

fn merge_section(document: &mut Value, fragment: &Value, path: &[&str], component: &str) {
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
        if target.contains_key(name) {
            if target.get(name) != Some(value) {
                tracing::warn!(
                    component,
                    section = path.join("."),
                    name,
                    "OpenAPI clash; first definition kept"
                );
            }
            continue;
        }
        target.insert(name.clone(), value.clone());
    }
}

fn problem_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } }
    })
}

fn platform_document() -> Value {
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
                default 50) and `?offset=` (default 0). Request bodies over 64 KiB get 413."
        },
        "tags": [{ "name": "platform", "description": "Health, metrics and documentation." }],
        "paths": {
            "/health/status": { "get": {
                "tags": ["platform"], "summary": "Liveness and loaded component versions",
                "responses": { "200": { "description": "The host is serving.", "content": { "application/json": { "schema": {
                    "type": "object", "required": ["status", "version", "uptime_seconds", "components"],
                    "properties": {
                        "status": { "type": "string", "const": "ok" },
                        "version": { "type": "string" },
                        "uptime_seconds": { "type": "integer" },
                        "components": { "type": "array", "items": { "type": "object", "properties": {
                            "name": { "type": "string" }, "version": { "type": "string" }, "status": { "type": "string" } } } }
                    } } } } } }
            } },
            "/health/database": { "get": {
                "tags": ["platform"], "summary": "Database reachability and latency",
                "responses": {
                    "200": { "description": "The database answered.", "content": { "application/json": { "schema": {
                        "type": "object", "properties": {
                            "status": { "type": "string", "const": "ok" },
                            "backend": { "type": "string", "enum": ["sqlite", "postgres"] },
                            "latency_ms": { "type": "number" } } } } } },
                    "503": problem_response("The database is unreachable (`database-unavailable`).")
                }
            } },
            "/metrics": { "get": {
                "tags": ["platform"], "summary": "Prometheus metrics",
                "responses": { "200": { "description": "Prometheus text format.", "content": { "text/plain": { "schema": { "type": "string" } } } } }
            } },
            "/openapi.json": { "get": {
                "tags": ["platform"], "summary": "This document",
                "responses": { "200": { "description": "OpenAPI 3.1, assembled from the loaded components." } }
            } },
            "/docs": { "get": {
                "tags": ["platform"], "summary": "Human-readable API documentation",
                "responses": { "200": { "description": "An HTML page rendering this document.", "content": { "text/html": {} } } }
            } }
        },
        "components": {
            "securitySchemes": {
                "bearerAuth": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                    "description": "`POST /api/v1/auth/login` issues the token; it expires after `expires_in` seconds." }
            },
            "schemas": {
                "FieldError": { "type": "object", "required": ["field", "message"], "properties": {
                    "field": { "type": "string" }, "message": { "type": "string" } } },
                "Problem": { "type": "object", "required": ["type", "title", "status", "detail"], "properties": {
                    "type": { "type": "string", "examples": ["urn:souk:error:insufficient-funds"] },
                    "title": { "type": "string" },
                    "status": { "type": "integer" },
                    "detail": { "type": "string" },
                    "errors": { "type": "array", "items": { "$ref": "#/components/schemas/FieldError" } },
                    "request_id": { "type": "string" } } }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_platform_document_is_openapi_3_1_with_problem_schema() {
        let document = platform_document();
        assert_eq!(document["openapi"], "3.1.0");
        assert!(document["components"]["schemas"]["Problem"].is_object());
        assert!(document["paths"]["/health/status"]["get"].is_object());
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
    fn fragments_merge_without_overwriting() {
        let mut document = platform_document();
        let fragment = json!({
            "paths": { "/api/v1/x": { "get": {} }, "/health/status": { "get": { "summary": "hijack" } } },
            "components": { "schemas": { "X": { "type": "object" }, "Problem": { "type": "string" } } }
        });
        merge_section(&mut document, &fragment, &["paths"], "x");
        merge_section(&mut document, &fragment, &["components", "schemas"], "x");
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
    }
}
