//! The `reviews-api` export: rating facts for other services (the
//! recommendations extension), read in the caller's transaction.

use souk_sdk::log;

use crate::bindings::souk::platform::service_types::Rating;
use crate::store;

/// At most `limit` approved ratings, most recently changed first.
pub fn approved_ratings(limit: u32) -> Vec<Rating> {
    match store::approved_ratings(limit) {
        Ok(ratings) => ratings
            .into_iter()
            .map(|(customer_id, good_id, stars)| Rating {
                customer_id,
                good_id,
                stars,
            })
            .collect(),
        Err(error) => {
            // The interface has no error case: a failed read gives no
            // ratings (callers fall back to other signals); the cause is logged.
            log::error!("reading approved ratings failed: {error:?}");
            Vec::new()
        }
    }
}
