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

/// The generated bindings of the `wishlist` world. The shared interfaces
/// are the SDK's, so requests, responses and errors are `souk_sdk` types.
#[allow(unsafe_code, missing_docs, clippy::all)]
pub(crate) mod bindings {
    wit_bindgen::generate!({
        world: "wishlist",
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

use bindings::exports::souk::platform::{event_handler, handler, manifest};
use souk_sdk::{Error, Request, Response};

/// The component: one type implementing every export.
struct Component;

impl handler::Guest for Component {
    fn handle(req: Request) -> Result<Response, Error> {
        http::router().handle(req)
    }
}

impl event_handler::Guest for Component {
    fn handle(event: event_handler::Event) -> Result<(), Error> {
        events::handle(&event)
    }
}

impl manifest::Guest for Component {
    fn describe() -> manifest::Descriptor {
        manifest::Descriptor {
            name: "wishlist".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            routes: vec!["/api/v1/wishlist".to_owned()],
            migrations: souk_sdk::migrations![manifest::Migration; (
                1,
                "create_wishlist_items",
                include_str!("../../../migrations/wishlist/0001_create_wishlist_items.sql"),
            ), (
                2,
                "index_good_id",
                include_str!("../../../migrations/wishlist/0002_index_good_id.sql"),
            )],
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
    fn manifest_names_the_component_its_prefix_and_its_table() {
        let descriptor = Component::describe();
        assert_eq!(descriptor.name, "wishlist");
        assert_eq!(descriptor.routes, vec!["/api/v1/wishlist"]);
        assert_eq!(descriptor.migrations.len(), 2);
        assert!(
            descriptor.migrations[0]
                .sql
                .contains("CREATE TABLE wishlist_items (")
        );
    }

    #[test]
    fn the_openapi_fragment_matches_the_routes_served() {
        let problems =
            souk_sdk::openapi::fragment_problems(&Component::describe().openapi, &http::router());
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
