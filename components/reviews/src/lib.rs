//! The reviews service of Souk, as a WebAssembly component: customers
//! submit, edit and delete reviews of goods; anyone reads approved ones;
//! signed-in users flag them and admins moderate them. It exports
//! `reviews-api` (approved ratings, for recommendations).
//!
//! It owns the tables `reviews` and `reviews_moderation` (see
//! `migrations/reviews/`), and asks the inventory whether a good exists and
//! sales whether its author bought it, through the host.
//!
//! # Layout
//!
//! - [`domain`]: the validated field types (rating, comment, status, ...)
//!   and markup stripping.
//! - [`store`]: every SQL statement, and rows to [`store::Review`].
//! - [`services`]: the calls to the inventory and sales services.
//! - [`http`]: the routes and their handlers.
//! - [`api`]: the `reviews-api` export.
//! - [`events`]: the events it emits (`review.*`).
//! - this file: the bindings, the exports and the manifest.

pub mod api;
pub mod domain;
pub mod events;
pub mod http;
pub mod services;
pub mod store;

/// The generated bindings of the `reviews` world. The shared interfaces are
/// the SDK's, so requests, responses and errors are `souk_sdk` types.
#[allow(
    unsafe_code,
    missing_docs,
    clippy::all,
    clippy::unwrap_used,
    clippy::expect_used
)]
pub(crate) mod bindings {
    wit_bindgen::generate!({
        world: "reviews",
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

use bindings::exports::souk::platform::{handler, manifest, reviews_api};
use bindings::souk::platform::service_types::Rating;
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
        describe()
    }
}

impl reviews_api::Guest for Component {
    fn approved_ratings(limit: u32) -> Result<Vec<Rating>, Error> {
        api::approved_ratings(limit)
    }
}

/// What the host reads once when it loads this component.
fn describe() -> manifest::Descriptor {
    manifest::Descriptor {
        name: "reviews".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        routes: vec!["/api/v1/reviews".to_owned()],
        // Oldest first; the SQL lives in `migrations/reviews/`.
        migrations: souk_sdk::migrations![manifest::Migration; (
            1,
            "create_reviews",
            include_str!("../../../migrations/reviews/0001_create_reviews.sql"),
        )],
        openapi: include_str!("../openapi.json").to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn openapi() -> serde_json::Value {
        serde_json::from_str(&describe().openapi).unwrap()
    }

    #[test]
    fn manifest_names_the_component_and_its_prefix() {
        let descriptor = describe();
        assert_eq!(descriptor.name, "reviews");
        assert_eq!(descriptor.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(descriptor.routes, vec!["/api/v1/reviews"]);
    }

    #[test]
    fn every_route_is_under_the_declared_prefix() {
        let outside = http::router().routes_outside(&describe().routes);
        assert!(outside.is_empty(), "{outside:?}");
    }

    #[test]
    fn migrations_are_numbered_from_one_and_create_only_own_tables() {
        let migrations = describe().migrations;
        for (index, migration) in migrations.iter().enumerate() {
            assert_eq!(migration.version as usize, index + 1);
            assert!(!migration.sql.trim().is_empty());
        }
        let sql = migrations[0].sql.to_lowercase();
        assert!(sql.contains("create table reviews ("));
        assert!(sql.contains("create table reviews_moderation ("));
        assert!(sql.contains(
            "create unique index reviews_good_customer on reviews (good_id, customer_id)"
        ));
        for line in sql.lines().filter(|line| line.starts_with("create")) {
            let name = line
                .split_whitespace()
                .nth(if line.contains("unique") { 3 } else { 2 });
            assert!(
                name.is_some_and(|name| name.starts_with("reviews")),
                "{line}"
            );
        }
    }

    #[test]
    fn the_openapi_fragment_matches_the_routes_served() {
        let problems = souk_sdk::openapi::fragment_problems(&describe().openapi, &http::router());
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[test]
    fn the_review_schema_lists_every_field_the_api_returns() {
        let document = openapi();
        let schema = &document["components"]["schemas"]["Review"];
        let mut properties: Vec<&str> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        properties.sort_unstable();
        assert_eq!(
            properties,
            [
                "comment",
                "created_at",
                "good_id",
                "good_name",
                "id",
                "rating",
                "status",
                "updated_at",
                "username",
                "verified_purchase"
            ]
        );
    }
}
