//! The `reviews-api` export: rating facts for other services (the
//! recommendations extension), read in the caller's transaction. A read
//! that fails is an error for the caller, never "no ratings".

use souk_sdk::Error;

use crate::bindings::souk::platform::service_types::Rating;
use crate::store;

/// At most `limit` approved ratings, most recently changed first.
pub fn approved_ratings(limit: u32) -> Result<Vec<Rating>, Error> {
    let ratings = store::approved_ratings(limit)?;
    Ok(ratings
        .into_iter()
        .map(|(customer_id, good_id, stars)| Rating {
            customer_id,
            good_id,
            stars,
        })
        .collect())
}
