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

souk_sdk::component! {
    world: "customers",
    router: http::router,
    describe: describe,
    with: {
        "souk:platform/credentials@0.3.0": souk_sdk::wit::credentials,
        "souk:platform/tokens@0.3.0": souk_sdk::wit::tokens,
    },
}

use bindings::exports::souk::platform::{
    accounts as accounts_export, customers_api, manifest, wallet,
};
use bindings::souk::platform::service_types::CustomerSummary;
use souk_sdk::{Error, Identity};

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
        routes: http::router().prefixes(),
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
        openapi: http::router().openapi(),
    }
}

#[cfg(test)]
souk_sdk::conformance_tests!(name: "customers", router: http::router);
