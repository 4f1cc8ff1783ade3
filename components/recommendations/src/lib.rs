//! The recommendations extension of Souk: goods a customer has not bought
//! yet, ranked by item-based collaborative filtering over everyone's
//! purchases and approved ratings, filled up with best sellers and top
//! rated goods.
//!
//! It has no tables and no migrations: its world (`recommendations` in
//! `wit/worlds.wit`) lets it read purchases through `sales-api`, ratings
//! through `reviews-api` and goods through `inventory-api`, and nothing
//! else. Every request computes the ranking afresh from those facts.
//!
//! # Layout
//!
//! - [`scoring`]: the ranking as a pure function, with the formula.
//! - [`http`]: the route, who may call it, and gathering the facts.
//! - this file: the bindings, the exports and the manifest.

pub mod http;
pub mod scoring;

/// The generated bindings of the `recommendations` world. The shared
/// interfaces are the SDK's, so requests, responses and errors are
/// `souk_sdk` types.
#[allow(unsafe_code, missing_docs, clippy::all)]
pub(crate) mod bindings {
    wit_bindgen::generate!({
        world: "recommendations",
        path: "../../wit",
        with: {
            "souk:platform/types@0.1.0": souk_sdk::wit::types,
            "souk:platform/log@0.1.0": souk_sdk::wit::log,
            "souk:platform/db@0.1.0": souk_sdk::wit::db,
        },
    });

    use super::Component;
    export!(Component);
}

use bindings::exports::souk::platform::{handler, manifest};
use souk_sdk::{Error, Request, Response};

/// The component: one type implementing every export.
struct Component;

impl handler::Guest for Component {
    fn handle(req: Request) -> Result<Response, Error> {
        http::router().handle(req)
    }
}

impl manifest::Guest for Component {
    fn describe() -> manifest::Descriptor {
        manifest::Descriptor {
            name: "recommendations".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            routes: vec!["/api/v1/recommendations".to_owned()],
            migrations: Vec::new(),
            openapi: include_str!("../openapi.json").to_owned(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use manifest::Guest;

    fn openapi() -> serde_json::Value {
        serde_json::from_str(&Component::describe().openapi).unwrap()
    }

    #[test]
    fn manifest_names_the_component_and_its_prefix_and_has_no_tables() {
        let descriptor = Component::describe();
        assert_eq!(descriptor.name, "recommendations");
        assert_eq!(descriptor.routes, vec!["/api/v1/recommendations"]);
        assert!(descriptor.migrations.is_empty());
    }

    #[test]
    fn openapi_documents_exactly_the_routes_served() {
        let document = openapi();
        let mut documented: Vec<(String, String)> = document["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .keys()
                    .filter(|key| *key != "parameters")
                    .map(move |method| (method.to_uppercase(), path.clone()))
            })
            .collect();
        let mut served: Vec<(String, String)> = http::router()
            .routes()
            .map(|(method, pattern)| (method.to_owned(), pattern.to_owned()))
            .collect();
        documented.sort();
        served.sort();
        assert_eq!(documented, served);
    }

    #[test]
    fn openapi_references_only_own_or_platform_schemas() {
        let document = openapi();
        let schemas = document["components"]["schemas"].as_object().unwrap();
        let text = document.to_string();
        for reference in text.split("\"$ref\":\"").skip(1) {
            let name = reference
                .split('"')
                .next()
                .and_then(|target| target.strip_prefix("#/components/schemas/"))
                .unwrap();
            // `Problem` is the platform's (the host's document defines it).
            assert!(name == "Problem" || schemas.contains_key(name), "{name}");
        }
        assert!(
            schemas
                .keys()
                .all(|name| name.starts_with("Recommendation"))
        );
    }
}
