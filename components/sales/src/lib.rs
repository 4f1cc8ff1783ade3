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

souk_sdk::component! {
    world: "sales",
    router: http::router,
    describe: describe,
}

use bindings::exports::souk::platform::{manifest, sales_api};
use bindings::souk::platform::service_types::Purchase;
use souk_sdk::Error;

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
        routes: http::router().prefixes(),
        // Oldest first; the SQL lives in `migrations/sales/`.
        migrations: souk_sdk::migrations![manifest::Migration; (
            1,
            "create_sales",
            include_str!("../../../migrations/sales/0001_create_sales.sql"),
        )],
        openapi: http::router().openapi(),
    }
}

#[cfg(test)]
souk_sdk::conformance_tests!(name: "sales", router: http::router);

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn openapi() -> serde_json::Value {
        serde_json::from_str(&describe().openapi).unwrap()
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
