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

souk_sdk::component! {
    world: "recommendations",
    router: http::router,
    describe: describe,
}

use bindings::exports::souk::platform::manifest;

/// What the host reads once when it loads this component.
fn describe() -> manifest::Descriptor {
    manifest::Descriptor {
        name: "recommendations".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        routes: http::router().prefixes(),
        migrations: Vec::new(),
        openapi: http::router().openapi(),
    }
}

#[cfg(test)]
souk_sdk::conformance_tests!(name: "recommendations", router: http::router);

#[cfg(test)]
mod tests {
    #[test]
    fn it_owns_no_tables() {
        assert!(super::describe().migrations.is_empty());
    }
}
