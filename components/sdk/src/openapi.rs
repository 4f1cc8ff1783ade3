//! A check that a component's OpenAPI fragment tells the truth about its
//! router, for each component's unit tests: every served route documented
//! and nothing else, every `$ref` resolvable, and every operation with an
//! `operationId` and at least one 4xx response.

use serde_json::Value;

use crate::router::Router;

/// Schemas the host's document defines for every component.
const PLATFORM_SCHEMAS: &[&str] = &["Problem", "FieldError"];

/// Everything wrong with `fragment` (OpenAPI JSON text) for `router`;
/// empty when it is accurate.
pub fn fragment_problems(fragment: &str, router: &Router) -> Vec<String> {
    let document: Value = match serde_json::from_str(fragment) {
        Ok(document) => document,
        Err(error) => return vec![format!("not JSON: {error}")],
    };
    let mut problems = Vec::new();
    let empty = serde_json::Map::new();
    let paths = document["paths"].as_object().unwrap_or(&empty);

    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap_or(&empty) {
            if method == "parameters" {
                continue;
            }
            documented.push((method.to_uppercase(), path.clone()));
            if !operation["operationId"].is_string() {
                problems.push(format!("{method} {path}: no operationId"));
            }
            let has_4xx = operation["responses"]
                .as_object()
                .is_some_and(|responses| responses.keys().any(|s| s.starts_with('4')));
            if !has_4xx {
                problems.push(format!("{method} {path}: no 4xx response documented"));
            }
        }
    }
    let mut served: Vec<(String, String)> = router
        .routes()
        .map(|(method, pattern)| (method.to_owned(), pattern.to_owned()))
        .collect();
    documented.sort();
    served.sort();
    for route in served.iter().filter(|r| !documented.contains(r)) {
        problems.push(format!(
            "{} {}: served but not documented",
            route.0, route.1
        ));
    }
    for route in documented.iter().filter(|r| !served.contains(r)) {
        problems.push(format!(
            "{} {}: documented but not served",
            route.0, route.1
        ));
    }

    let schemas = document["components"]["schemas"]
        .as_object()
        .unwrap_or(&empty);
    let text = document.to_string();
    for reference in text.split("\"$ref\":\"").skip(1) {
        let target = reference.split('"').next().unwrap_or_default();
        match target.strip_prefix("#/components/schemas/") {
            Some(name) if schemas.contains_key(name) || PLATFORM_SCHEMAS.contains(&name) => {}
            _ => problems.push(format!("unresolved reference {target}")),
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Response, Result, context::Context};

    fn handler(_: &Context) -> Result<Response> {
        crate::respond::no_content()
    }

    #[test]
    fn an_accurate_fragment_has_no_problems() {
        let router = Router::new().get("/api/v1/x/{id}", handler);
        let fragment = r##"{"paths": {"/api/v1/x/{id}": {"get": {"operationId": "getX",
            "responses": {"404": {"$ref": "#/components/schemas/Problem"}}}}}}"##;
        assert_eq!(fragment_problems(fragment, &router), Vec::<String>::new());
    }

    #[test]
    fn every_discrepancy_is_reported() {
        let router = Router::new()
            .get("/api/v1/x", handler)
            .post("/api/v1/x", handler);
        let fragment = r##"{"paths": {"/api/v1/x": {"get": {"responses": {"200": {"$ref": "#/components/schemas/Nope"}}}},
            "/api/v1/y": {"get": {"operationId": "y", "responses": {"400": {}}}}}}"##;
        let problems = fragment_problems(fragment, &router);
        assert_eq!(problems.len(), 5, "{problems:#?}");
    }
}
