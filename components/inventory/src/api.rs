//! The `inventory-api` export: what other services (through the host, in
//! the same request's transaction) may ask of the goods. Stock never goes
//! below zero because taking it is one conditional UPDATE; taking it emits
//! `good.updated` (and `stock.depleted` at 0) in the caller's request. A
//! read that fails is an error for the caller, never "absent".

use souk_sdk::{Error, now_rfc3339};

use crate::bindings::souk::platform::service_types::Good as GoodRecord;
use crate::domain::name_key;
use crate::events;
use crate::http::{insufficient_stock, not_found};
use crate::store::{self, Good};

/// A good by id.
pub fn get(good_id: &str) -> Result<Option<GoodRecord>, Error> {
    Ok(store::find(good_id)?.map(record))
}

/// A good by name, ignoring case (and surrounding spaces, which no stored
/// name has).
pub fn find_by_name(name: &str) -> Result<Option<GoodRecord>, Error> {
    Ok(store::find_by_name_key(&name_key(name))?.map(record))
}

/// The goods with these ids that exist.
pub fn get_many(good_ids: &[String]) -> Result<Vec<GoodRecord>, Error> {
    Ok(records(store::find_many(good_ids)?))
}

/// Goods with stock, by name ignoring case, at most `limit`.
pub fn in_stock(limit: u32) -> Result<Vec<GoodRecord>, Error> {
    Ok(records(store::in_stock(i64::from(limit))?))
}

/// Takes `quantity` units out of stock; the good after.
pub fn take_stock(good_id: &str, quantity: i64) -> Result<GoodRecord, Error> {
    if quantity < 1 {
        return Err(Error::invalid(
            "quantity",
            "must be an integer of 1 or more",
        ));
    }
    match store::take(good_id, quantity, &now_rfc3339())? {
        Some(good) => {
            events::stock_taken(&good, quantity)?;
            Ok(record(good))
        }
        None => {
            let left = store::find(good_id)?.ok_or_else(not_found)?.count;
            Err(insufficient_stock(quantity, left))
        }
    }
}

/// The record other services see.
fn record(good: Good) -> GoodRecord {
    GoodRecord {
        id: good.id,
        name: good.name,
        category: good.category,
        price_cents: good.price.0,
        description: good.description,
        count: good.count,
        created_at: good.created_at,
        updated_at: good.updated_at,
    }
}

fn records(goods: Vec<Good>) -> Vec<GoodRecord> {
    goods.into_iter().map(record).collect()
}
