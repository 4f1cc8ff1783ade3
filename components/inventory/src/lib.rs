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

souk_sdk::component! {
    world: "inventory",
    router: http::router,
    describe: describe,
}

use bindings::exports::souk::platform::{inventory_api, manifest};
use bindings::souk::platform::service_types::Good;
use souk_sdk::Error;

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
        routes: http::router().prefixes(),
        // Oldest first; the SQL lives in `migrations/inventory/`.
        migrations: souk_sdk::migrations![manifest::Migration; (
            1,
            "create_inventory_goods",
            include_str!("../../../migrations/inventory/0001_create_inventory_goods.sql"),
        )],
        openapi: http::router().openapi(),
    }
}

#[cfg(test)]
souk_sdk::conformance_tests!(name: "inventory", router: http::router);
