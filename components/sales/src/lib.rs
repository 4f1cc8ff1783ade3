//! The sales service of Souk, as a WebAssembly component: the goods for
//! sale, purchases (money, stock and the sale record as one atomic unit,
//! safe to retry with an `Idempotency-Key`), and purchase history, plus the
//! `sales-api` interface through which other services learn who bought what.
//!
//! It owns the tables `sales` and `sales_idempotency_keys` (see
//! `migrations/sales/`) and reaches customers and goods only through the
//! `customers-api`, `wallet` and `inventory-api` imports, which the host runs in the
//! same request transaction.
//!
//! # Layout
//!
//! - [`domain`]: the validated inputs (good, quantity, idempotency key) and
//!   the money math.
//! - [`store`]: every SQL statement, and rows to [`store::Sale`].
//! - [`http`]: the routes and their handlers, including the purchase.
//! - [`api`]: the `sales-api` export other services call.
//! - this file: the bindings, the exports and the manifest.

pub mod api;
pub mod domain;
pub mod http;
pub mod store;

/// The generated bindings of the `sales` world. The shared interfaces are
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
        world: "sales",
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

use bindings::exports::souk::platform::{handler, manifest, sales_api};
use bindings::souk::platform::service_types::Purchase;
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

impl sales_api::Guest for Component {
    fn has_purchased(customer_id: String, good_id: String) -> Result<bool, Error> {
        api::has_purchased(&customer_id, &good_id)
    }

    fn purchases_of(customer_id: String, limit: u32) -> Result<Vec<Purchase>, Error> {
        api::purchases_of(&customer_id, limit)
    }

    fn all_purchases(limit: u32) -> Result<Vec<Purchase>, Error> {
        api::all_purchases(limit)
    }
}

/// What the host reads once when it loads this component.
fn describe() -> manifest::Descriptor {
    manifest::Descriptor {
        name: "sales".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        routes: vec!["/api/v1/sales".to_owned()],
        // Oldest first; the SQL lives in `migrations/sales/`.
        migrations: souk_sdk::migrations![manifest::Migration; (
            1,
            "create_sales",
            include_str!("../../../migrations/sales/0001_create_sales.sql"),
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
        assert_eq!(descriptor.name, "sales");
        assert_eq!(descriptor.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(descriptor.routes, vec!["/api/v1/sales"]);
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
        assert!(sql.contains("create table sales ("));
        assert!(sql.contains("create table sales_idempotency_keys ("));
        assert!(sql.contains("primary key (customer_id, idempotency_key)"));
        for line in sql.lines().filter(|l| l.starts_with("create")) {
            assert!(line.contains(" sales"), "{line}");
        }
    }

    #[test]
    fn the_openapi_fragment_matches_the_routes_served() {
        let problems = souk_sdk::openapi::fragment_problems(&describe().openapi, &http::router());
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[test]
    fn the_sale_schema_lists_every_field_the_api_returns() {
        let document = openapi();
        let schema = &document["components"]["schemas"]["Sale"];
        let mut required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        required.sort_unstable();
        let sample = serde_json::to_value(store::Sale {
            id: "s".into(),
            customer_id: "c".into(),
            username: "u".into(),
            good_id: "g".into(),
            good_name: "n".into(),
            quantity: 1,
            unit_price: souk_sdk::Cents(1),
            total: souk_sdk::Cents(1),
            created_at: "t".into(),
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
        assert!(!fields.contains(&"customer_id"));
    }

    #[test]
    fn the_idempotency_conflict_is_documented() {
        let document = openapi();
        let conflict =
            document["paths"]["/api/v1/sales"]["post"]["responses"]["409"]["description"]
                .as_str()
                .unwrap();
        for code in [
            "insufficient-stock",
            "insufficient-funds",
            "idempotency-key-reused",
        ] {
            assert!(conflict.contains(code), "{code}");
        }
    }
}
