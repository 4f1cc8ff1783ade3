//! The other services this component asks, through the host and inside the
//! same request's transaction: the inventory (does the good exist, what is
//! it called) and sales (has the customer bought it).
//!
//! A failing callee (trap, deadline, not loaded) fails the whole request in
//! the host, and one that cannot read its data answers an error the request
//! returns, so these answers are never a guess.

use souk_sdk::Result;

use crate::bindings::souk::platform::{inventory_api, sales_api};

pub use crate::bindings::souk::platform::service_types::Good;

/// The good with this id, as the inventory knows it now.
pub fn good(id: &str) -> Result<Option<Good>> {
    inventory_api::get(id)
}

/// Whether the customer has bought the good at least once.
pub fn has_purchased(customer_id: &str, good_id: &str) -> Result<bool> {
    sales_api::has_purchased(customer_id, good_id)
}
