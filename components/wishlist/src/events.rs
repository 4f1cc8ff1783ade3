//! What the wishlist does with the events it is granted
//! (`host/default-grants.json`: `customer.deleted` and `good.deleted`): it
//! forgets the rows of a customer who left and of a good that is gone, so
//! it keeps nothing about people or goods that no longer exist.
//!
//! The host delivers each event at least once, in order, in a unit of work
//! of its own that commits together with the wishlist's cursor. Forgetting
//! is a DELETE, so a repeated delivery changes nothing, and an event of
//! another type (a grant may add some) is acknowledged and ignored.

use souk_sdk::db::{self, params};
use souk_sdk::{Error, log};

use souk_sdk::wit::events::Event;

/// Handle one event.
pub fn handle(event: &Event) -> Result<(), Error> {
    let (column, what) = match event.event_type.as_str() {
        "customer.deleted" => ("customer_id", "customer"),
        "good.deleted" => ("good_id", "good"),
        _ => return Ok(()),
    };
    // The subject is the deleted customer's or good's id, the key this
    // table stores them under.
    let forgotten = db::execute(
        &format!("DELETE FROM wishlist_items WHERE {column} = $1"),
        params![&event.subject],
    )?;
    if forgotten > 0 {
        log::info!(
            "forgot {forgotten} wishlist rows of deleted {what} {} (event {})",
            event.subject,
            event.sequence
        );
    }
    Ok(())
}
