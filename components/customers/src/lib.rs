//! The customers service of Souk, as a WebAssembly component: registration,
//! profiles, wallets and login, plus the `accounts` interface through which
//! the host resolves token subjects and creates the first admin.
//!
//! It owns one table, `customers` (see `migrations/customers/`), which is the
//! single source of truth for who exists and with which role.
//!
//! # Layout
//!
//! - [`domain`]: the validated field types (username, password, age, ...).
//! - [`store`]: every SQL statement, and rows to [`store::Customer`].
//! - [`http`]: the routes and their handlers.
//! - [`accounts`]: the host-facing `accounts` export.
//! - [`api`]: the `customers-api` and `wallet` exports other services call.
//! - [`events`]: the events it emits (`customer.*`, `wallet.*`).
//! - this file: the bindings, the exports and the manifest.

pub mod accounts;
pub mod api;
pub mod domain;
pub mod events;
pub mod http;
pub mod store;

/// The generated bindings of the `customers` world. The shared interfaces
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
        world: "customers",
        path: "../../wit",
        with: {
            "souk:platform/types@0.3.0": souk_sdk::wit::types,
            "souk:platform/log@0.3.0": souk_sdk::wit::log,
            "souk:platform/db@0.3.0": souk_sdk::wit::db,
            "souk:platform/events@0.3.0": souk_sdk::wit::events,
            "souk:platform/credentials@0.3.0": souk_sdk::wit::credentials,
            "souk:platform/tokens@0.3.0": souk_sdk::wit::tokens,
        },
    });

    use super::Component;
    export!(Component);
}

use bindings::exports::souk::platform::{
    accounts as accounts_export, customers_api, handler, manifest, wallet,
};
use bindings::souk::platform::service_types::CustomerSummary;
use souk_sdk::{Error, Identity, Request, Response};

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

impl accounts_export::Guest for Component {
    fn resolve(customer_id: String) -> Result<Option<accounts_export::Account>, Error> {
        Ok(
            accounts::resolve(&customer_id)?.map(|account| accounts_export::Account {
                identity: account.identity,
                token_epoch: account.token_epoch,
            }),
        )
    }

    fn ensure_admin(username: String, password: String, promote: bool) -> Result<Identity, Error> {
        accounts::ensure_admin(username, password, promote)
    }
}

impl customers_api::Guest for Component {
    fn get(customer_id: String) -> Result<Option<CustomerSummary>, Error> {
        api::get(&customer_id)
    }

    fn find_by_username(username: String) -> Result<Option<CustomerSummary>, Error> {
        api::find_by_username(&username)
    }
}

impl wallet::Guest for Component {
    fn debit(customer_id: String, cents: i64) -> Result<i64, Error> {
        api::debit(&customer_id, cents)
    }

    fn credit(customer_id: String, cents: i64) -> Result<i64, Error> {
        api::credit(&customer_id, cents)
    }
}

/// What the host reads once when it loads this component.
fn describe() -> manifest::Descriptor {
    manifest::Descriptor {
        name: "customers".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        routes: vec!["/api/v1/customers".to_owned(), "/api/v1/auth".to_owned()],
        // Oldest first; the SQL lives in `migrations/customers/`.
        migrations: souk_sdk::migrations![manifest::Migration; (
            1,
            "create_customers",
            include_str!("../../../migrations/customers/0001_create_customers.sql"),
        ), (
            2,
            "token_epoch",
            include_str!("../../../migrations/customers/0002_token_epoch.sql"),
        )],
        openapi: include_str!("../openapi.json").to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn manifest_names_the_component_and_its_prefixes() {
        let descriptor = describe();
        assert_eq!(descriptor.name, "customers");
        assert_eq!(descriptor.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(descriptor.routes, vec!["/api/v1/customers", "/api/v1/auth"]);
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
        assert!(sql.contains("create table customers ("));
        assert!(sql.contains(
            "create unique index customers_username_lower on customers (lower(username))"
        ));
    }

    #[test]
    fn the_openapi_fragment_matches_the_routes_served() {
        let problems = souk_sdk::openapi::fragment_problems(&describe().openapi, &http::router());
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
