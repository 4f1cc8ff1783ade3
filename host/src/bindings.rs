//! The one place the host generates bindings from `wit/`.
//!
//! The `host` world imports every host capability and exports every
//! interface the host may call, so all WIT types are generated exactly once;
//! the runtime then uses the per-interface pieces (`add_to_linker`,
//! `GuestIndices`) so each component is checked only against what it uses.

#![allow(missing_docs, unsafe_code, clippy::all)]

wasmtime::component::bindgen!({
    world: "host",
    path: "../wit",
    imports: { default: async | trappable },
    exports: { default: async },
    additional_derives: [PartialEq],
});

pub use exports::souk::platform::{accounts, event_handler, handler, manifest};
pub use souk::platform::{
    credentials, customers_api, db, events, inventory_api, log, reviews_api, sales_api,
    service_types, tokens, types, wallet,
};

/// The service interfaces as the host calls them on their owners.
pub mod service_exports {
    pub use super::exports::souk::platform::{
        customers_api, inventory_api, reviews_api, sales_api, wallet,
    };
}
