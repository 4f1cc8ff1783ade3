//! The events the reviews service emits (the catalogue in
//! `host/src/events.rs` documents each payload), after the change
//! succeeded and inside the same request. The subject is always the
//! review's id.

use serde_json::json;
use souk_sdk::{Result, events::emit};

use crate::store::Review;

/// `review.submitted`: a new review, or an edited one (pending again).
pub fn submitted(review: &Review) -> Result<()> {
    emit("review.submitted", &review.id, &json!({ "review": review }))
}

/// `review.moderated`: an admin moved `before` to `after`'s status.
pub fn moderated(before: &Review, after: &Review, note: &str) -> Result<()> {
    emit(
        "review.moderated",
        &after.id,
        &json!({
            "good_id": after.good_id,
            "status": { "before": before.status, "after": after.status },
            "note": note,
        }),
    )
}
