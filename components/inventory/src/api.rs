//! The `inventory-api` export: what other services (through the host, in
//! the same request's transaction) may ask of the goods. Stock never goes
//! below zero because taking it is one conditional UPDATE; taking it emits
//! `good.updated` (and `stock.depleted` at 0) in the caller's request.

use souk_sdk::{Error, log, now_rfc3339};

use crate::bindings::souk::platform::service_types::Good as GoodRecord;
use crate::domain::name_key;
use crate::events;
use crate::http::{insufficient_stock, not_found};
use crate::store::{self, Good};

/// A good by id.
pub fn get(good_id: &str) -> Option<GoodRecord> {
    lookup(store::find(good_id), good_id)
}

/// A good by name, ignoring case (and surrounding spaces, which no stored
/// name has).
pub fn find_by_name(name: &str) -> Option<GoodRecord> {
    lookup(store::find_by_name_key(&name_key(name)), name)
}

/// The goods with these ids that exist.
pub fn get_many(good_ids: &[String]) -> Vec<GoodRecord> {
    listing(store::find_many(good_ids), "get-many")
}

/// Goods with stock, by name ignoring case, at most `limit`.
pub fn in_stock(limit: u32) -> Vec<GoodRecord> {
    listing(store::in_stock(i64::from(limit)), "in-stock")
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

fn lookup(found: Result<Option<Good>, souk_sdk::db::DbError>, key: &str) -> Option<GoodRecord> {
    match found {
        Ok(good) => good.map(record),
        Err(error) => {
            // The interface has no error case: a failed lookup reads as
            // "absent" and the caller answers 404; the cause is logged.
            log::error!("good lookup {key:?} failed: {error:?}");
            None
        }
    }
}

fn listing(found: Result<Vec<Good>, souk_sdk::db::DbError>, what: &str) -> Vec<GoodRecord> {
    match found {
        Ok(goods) => goods.into_iter().map(record).collect(),
        Err(error) => {
            log::error!("{what} failed: {error:?}");
            Vec::new()
        }
    }
}
