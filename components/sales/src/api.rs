//! The `sales-api` export: purchase facts for other services (reviews'
//! verified purchases, recommendations). The interface has no error case,
//! so a database failure reads as "nothing" and is logged.

use souk_sdk::db::DbError;
use souk_sdk::log;

use crate::bindings::souk::platform::service_types::Purchase;
use crate::store::{self, Sale};

/// Whether the customer has bought the good at least once.
pub fn has_purchased(customer_id: &str, good_id: &str) -> bool {
    store::has_purchased(customer_id, good_id).unwrap_or_else(|error| {
        log::error!("has-purchased {customer_id} {good_id} failed: {error:?}");
        false
    })
}

/// The customer's purchases, newest first, at most `limit`.
pub fn purchases_of(customer_id: &str, limit: u32) -> Vec<Purchase> {
    purchases(
        store::recent_of(customer_id, i64::from(limit)),
        "purchases-of",
    )
}

/// Everyone's purchases, newest first, at most `limit`.
pub fn all_purchases(limit: u32) -> Vec<Purchase> {
    purchases(store::recent(i64::from(limit)), "all-purchases")
}

fn purchases(found: Result<Vec<Sale>, DbError>, what: &str) -> Vec<Purchase> {
    match found {
        Ok(sales) => sales.into_iter().map(purchase).collect(),
        Err(error) => {
            log::error!("{what} failed: {error:?}");
            Vec::new()
        }
    }
}

/// The record other services see.
fn purchase(sale: Sale) -> Purchase {
    Purchase {
        sale_id: sale.id,
        customer_id: sale.customer_id,
        good_id: sale.good_id,
        quantity: sale.quantity,
        total_cents: sale.total.0,
        created_at: sale.created_at,
    }
}
