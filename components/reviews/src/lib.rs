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

souk_sdk::component! {
    world: "reviews",
    router: http::router,
    describe: describe,
}

use bindings::exports::souk::platform::{manifest, reviews_api};
use bindings::souk::platform::service_types::Rating;
use souk_sdk::Error;

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
        routes: http::router().prefixes(),
        // Oldest first; the SQL lives in `migrations/reviews/`.
        migrations: souk_sdk::migrations![manifest::Migration; (
            1,
            "create_reviews",
            include_str!("../../../migrations/reviews/0001_create_reviews.sql"),
        )],
        openapi: http::router().openapi(),
    }
}

#[cfg(test)]
souk_sdk::conformance_tests!(name: "reviews", router: http::router);

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn openapi() -> serde_json::Value {
        serde_json::from_str(&describe().openapi).unwrap()
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
