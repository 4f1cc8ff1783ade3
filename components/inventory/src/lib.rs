//! The inventory service of Souk, as a WebAssembly component: the goods
//! on sale and their stock, browsed by anyone and managed by admins, plus
//! the `inventory-api` interface through which other services look goods up
//! and take stock for a sale.
//!
//! It owns one table, `inventory_goods` (see `migrations/inventory/`).
//!
//! # Layout
//!
//! - [`domain`]: the validated field types (name, category, price, ...).
//! - [`store`]: every SQL statement, and rows to [`store::Good`].
//! - [`http`]: the routes and their handlers.
//! - [`api`]: the `inventory-api` export other services call.
//! - [`events`]: the events it emits (`good.*`, `stock.depleted`).
//! - this file: the bindings, the exports and the manifest.

pub mod api;
pub mod domain;
pub mod events;
pub mod http;
pub mod store;

/// The generated bindings of the `inventory` world. The shared interfaces
/// are the SDK's, so requests, responses and errors are `souk_sdk` types.
#[allow(
    unsafe_code,
    missing_docs,
    clippy::all,
    clippy::unwrap_used,
    clippy::expect_used
)]
pub(crate) mod bindings {
    wit_bindgen::generate!({
        world: "inventory",
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

use bindings::exports::souk::platform::{handler, inventory_api, manifest};
use bindings::souk::platform::service_types::Good;
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

impl inventory_api::Guest for Component {
    fn get(good_id: String) -> Result<Option<Good>, Error> {
        api::get(&good_id)
    }

    fn find_by_name(name: String) -> Result<Option<Good>, Error> {
        api::find_by_name(&name)
    }

    fn get_many(good_ids: Vec<String>) -> Result<Vec<Good>, Error> {
        api::get_many(&good_ids)
    }

    fn in_stock(limit: u32) -> Result<Vec<Good>, Error> {
        api::in_stock(limit)
    }

    fn take_stock(good_id: String, quantity: i64) -> Result<Good, Error> {
        api::take_stock(&good_id, quantity)
    }
}

/// What the host reads once when it loads this component.
fn describe() -> manifest::Descriptor {
    manifest::Descriptor {
        name: "inventory".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        routes: vec!["/api/v1/goods".to_owned()],
        // Oldest first; the SQL lives in `migrations/inventory/`.
        migrations: souk_sdk::migrations![manifest::Migration; (
            1,
            "create_inventory_goods",
            include_str!("../../../migrations/inventory/0001_create_inventory_goods.sql"),
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
        assert_eq!(descriptor.name, "inventory");
        assert_eq!(descriptor.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(descriptor.routes, vec!["/api/v1/goods"]);
    }

    #[test]
    fn every_route_is_under_a_declared_prefix() {
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
        assert!(sql.contains("create table inventory_goods ("));
        assert!(sql.contains(
            "create unique index inventory_goods_name_key on inventory_goods (name_key)"
        ));
        for line in sql.lines().filter(|l| l.starts_with("create")) {
            assert!(line.contains(" inventory_"), "{line}");
        }
    }

    #[test]
    fn the_openapi_fragment_matches_the_routes_served() {
        let problems = souk_sdk::openapi::fragment_problems(&describe().openapi, &http::router());
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[test]
    fn the_good_schema_lists_every_field_the_api_returns() {
        let document = openapi();
        let good = &document["components"]["schemas"]["Good"];
        let mut required: Vec<&str> = good["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        required.sort_unstable();
        let sample = serde_json::to_value(store::Good {
            id: "g".into(),
            name: "n".into(),
            category: "food".into(),
            price: souk_sdk::Cents(1),
            description: String::new(),
            count: 0,
            created_at: "t".into(),
            updated_at: "t".into(),
        })
        .unwrap();
        let mut fields: Vec<&str> = sample
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        fields.sort_unstable();
        assert_eq!(required, fields);
    }
}
