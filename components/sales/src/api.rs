//! The `sales-api` export: purchase facts for other services (reviews'
//! verified purchases, recommendations). A read that fails is an error for
//! the caller, never "no" or "nothing".

use souk_sdk::Error;

use crate::bindings::souk::platform::service_types::Purchase;
use crate::store::{self, Sale};

/// Whether the customer has bought the good at least once.
pub fn has_purchased(customer_id: &str, good_id: &str) -> Result<bool, Error> {
    Ok(store::has_purchased(customer_id, good_id)?)
}

/// The customer's purchases, newest first, at most `limit`.
pub fn purchases_of(customer_id: &str, limit: u32) -> Result<Vec<Purchase>, Error> {
    Ok(purchases(store::recent_of(customer_id, i64::from(limit))?))
}

/// Everyone's purchases, newest first, at most `limit`.
pub fn all_purchases(limit: u32) -> Result<Vec<Purchase>, Error> {
    Ok(purchases(store::recent(i64::from(limit))?))
}

fn purchases(sales: Vec<Sale>) -> Vec<Purchase> {
    sales.into_iter().map(purchase).collect()
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
