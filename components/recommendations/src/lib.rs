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
            "souk:platform/types@0.3.0": souk_sdk::wit::types,
            "souk:platform/log@0.3.0": souk_sdk::wit::log,
            "souk:platform/db@0.3.0": souk_sdk::wit::db,
            "souk:platform/events@0.3.0": souk_sdk::wit::events,
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

    #[test]
    fn manifest_names_the_component_and_its_prefix_and_has_no_tables() {
        let descriptor = Component::describe();
        assert_eq!(descriptor.name, "recommendations");
        assert_eq!(descriptor.routes, vec!["/api/v1/recommendations"]);
        assert!(descriptor.migrations.is_empty());
    }

    #[test]
    fn the_openapi_fragment_matches_the_routes_served() {
        let problems =
            souk_sdk::openapi::fragment_problems(&Component::describe().openapi, &http::router());
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
