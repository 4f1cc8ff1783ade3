//! The guest-side SDK for Souk components: it turns the `souk:platform`
//! imports and the `handler` contract into a small web-service API, so a
//! component reads like routes, validated input and queries rather than
//! binding glue.
//!
//! A component still generates bindings for its own world (that is what
//! gives it exports), through the kit's [`component!`] macro, which maps
//! every shared interface to this crate's bindings, so requests, responses,
//! errors and identities are the SDK's types, and implements the `handler`
//! and `manifest` exports ([`kit`]):
//!
//! ```ignore
//! souk_sdk::component! {
//!     world: "inventory",
//!     router: http::router,
//!     describe: describe,
//! }
//! ```
//!
//! Routes are declared with everything their documentation says, and a
//! handler is a plain function:
//!
//! ```ignore
//! Route::post("/api/v1/customers/{username}/wallet/charge", charge)
//!     .operation("chargeWallet", "Add money to a wallet (self or admin)")
//!     .caller(Caller::SelfOrAdmin)
//!     .body(Body::object("WalletAmount", "").required::<Positive>("amount"))
//!     .ok::<WalletBalance>("The balance after the charge.")
//!     .error(NOT_FOUND)
//!
//! fn charge(ctx: &Context) -> Result<Response> {
//!     let caller = ctx.require_self_or_admin(ctx.param("username")?)?;
//!     let mut form = ctx.form()?;
//!     let amount = form.required::<Positive>("amount");
//!     let amount = form.finish(amount)?;
//!     // ... db::query(...) ...
//!     ok(&body)
//! }
//! ```
//!
//! The component's manifest takes its route prefixes and its OpenAPI
//! fragment from the same router ([`Router::prefixes`], [`Router::openapi`]).
//!
//! # Layout
//!
//! - [`wit`]: the generated bindings of every shared interface (`types`,
//!   `log`, `db`, `credentials`, `tokens`), for `with:` mappings.
//! - [`route`]: a route's declaration: method, path, handler, caller,
//!   parameters, body, answers and errors.
//! - [`router`]: routing to the declared routes, and what a component says
//!   about them (prefixes, OpenAPI fragment).
//! - [`openapi`]: the fragment generated from the declarations.
//! - [`schema`]: JSON Schemas, and [`Describe`] for types that know theirs
//!   (derive it on response types).
//! - [`field`]: [`Field`], the rules request fields are parsed with, which
//!   describe themselves from the same limits.
//! - [`context`]: one request as a handler sees it: path and query
//!   parameters, headers, the caller and paging.
//! - [`form`]: JSON object bodies read field by field, reporting every bad
//!   field at once.
//! - [`money`]: [`Cents`], exact dollars-and-cents parsing and rendering.
//! - [`respond`]: building JSON responses and pages.
//! - [`error`]: constructors for the WIT `error` variant and database error
//!   mapping.
//! - [`db`]: queries with typed parameters and a row accessor.
//! - [`log`], [`credentials`], [`tokens`]: thin wrappers over the imports.
//! - [`clock`], [`id`]: timestamps and identifiers in the platform's formats.
//! - [`text`]: the check that every client string is text the databases
//!   can store, applied by the router, the context and the form.
//!
//! An import a component never calls does not end up in its component:
//! `wit-component` keeps only the imports the core module really uses.
//! Nothing here calls an import from a unit test; on non-wasm targets the
//! log helpers write to standard error instead.

/// The `wit_bindgen` output for the shared `souk:platform` interfaces.
///
/// The world is declared inline (package `souk:sdk`) so the shared WIT needs
/// no SDK-specific world: it imports everything a component may be granted and
/// exports nothing, and unused imports are dropped when the component is made.
#[allow(
    unsafe_code,
    missing_docs,
    clippy::all,
    clippy::unwrap_used,
    clippy::expect_used
)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        inline: "
            package souk:sdk;

            world sdk {
                import souk:platform/types@0.3.0;
                import souk:platform/log@0.3.0;
                import souk:platform/db@0.3.0;
                import souk:platform/credentials@0.3.0;
                import souk:platform/tokens@0.3.0;
                import souk:platform/events@0.3.0;
            }
        ",
        world: "souk:sdk/sdk",
        generate_all,
        // `request`, `response` and `error` are used by no import, but every
        // component's `handler` export needs them through `with:`.
        generate_unused_types: true,
        additional_derives: [PartialEq],
    });
}

/// A manifest's migration list from `(version, name, sql)` triples of
/// portable SQL (no dialect overrides). Each component generates its own
/// `manifest` export bindings, so the macro is given that `Migration` type:
///
/// ```ignore
/// migrations: souk_sdk::migrations![manifest::Migration;
///     (1, "create_customers", include_str!("../../../migrations/customers/0001_create_customers.sql")),
/// ],
/// ```
#[macro_export]
macro_rules! migrations {
    ($migration:ty; $(($version:expr, $name:expr, $sql:expr $(,)?)),* $(,)?) => {{
        // A type alias, because a struct literal cannot start with a `ty`.
        type Migration = $migration;
        ::std::vec![$(Migration {
            version: $version,
            name: ::std::string::String::from($name),
            sql: ::std::string::String::from($sql),
            overrides: ::std::vec::Vec::new(),
        }),*]
    }};
}

pub mod wit {
    //! The generated bindings, one module per `souk:platform` interface.
    //! Components map them with `with:` so that every component shares
    //! these exact types.
    pub use crate::bindings::souk::platform::{credentials, db, events, log, tokens, types};
}

pub mod clock;
pub mod context;
pub mod credentials;
pub mod db;
pub mod error;
pub mod events;
pub mod field;
pub mod form;
pub mod id;
pub mod kit;
pub mod log;
pub mod money;
pub mod openapi;
mod percent;
pub mod respond;
pub mod route;
pub mod router;
pub mod schema;
pub mod text;
pub mod tokens;

pub use clock::now_rfc3339;
pub use context::{Context, PageRequest};
pub use error::{Error, Result};
pub use field::{Field, Positive};
pub use form::Form;
pub use id::new_id;
pub use money::Cents;
pub use respond::{Page, created, json, no_content, ok, page};
pub use route::{Body, Caller, ErrorKind, Route};
pub use router::Router;
pub use schema::{Describe, Schema, Schemas, Timestamp};
/// `#[derive(Describe)]`: see [`schema`].
pub use souk_sdk_derive::Describe;
pub use wit::types::{FieldError, Identity, Request, Response, Role};
