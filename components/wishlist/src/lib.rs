//! The wishlist extension of Souk: each customer keeps a list of goods they
//! want, shown with each good's current name, price and stock.
//!
//! It is written as a third party would write one, and it is the walk-through
//! in `docs/EXTENSIONS.md`. Its world (`wishlist` in `wit/worlds.wit`) gives
//! it its own table, `wishlist_items` (see `migrations/wishlist/`), and
//! read access to goods through `inventory-api`; and, through its grant's
//! `subscribe`, the events `customer.deleted` and `good.deleted`.
//!
//! # Layout
//!
//! - [`http`]: the routes, their handlers and their SQL.
//! - [`events`]: forgetting deleted customers' and goods' rows.
//! - this file: the bindings, the exports and the manifest.

pub mod events;
pub mod http;

souk_sdk::component! {
    world: "wishlist",
    router: http::router,
    describe: describe,
}

use bindings::exports::souk::platform::{event_handler, manifest};
use souk_sdk::Error;

impl event_handler::Guest for Component {
    fn handle(event: event_handler::Event) -> Result<(), Error> {
        events::handle(&event)
    }
}

/// What the host reads once when it loads this component.
fn describe() -> manifest::Descriptor {
    manifest::Descriptor {
        name: "wishlist".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        routes: http::router().prefixes(),
        migrations: souk_sdk::migrations![manifest::Migration; (
            1,
            "create_wishlist_items",
            include_str!("../../../migrations/wishlist/0001_create_wishlist_items.sql"),
        ), (
            2,
            "index_good_id",
            include_str!("../../../migrations/wishlist/0002_index_good_id.sql"),
        )],
        openapi: http::router().openapi(),
    }
}

#[cfg(test)]
souk_sdk::conformance_tests!(name: "wishlist", router: http::router);
