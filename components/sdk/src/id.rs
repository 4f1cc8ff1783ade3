//! Identifiers for stored things: UUIDv7 text, which is opaque to clients,
//! unique without coordination, and ordered by creation time.
//!
//! Lists that are "newest first" break ties of their second-precision
//! `created_at` by id, so ids made one after another must sort in that
//! order. `Uuid::now_v7` guarantees this only within one process's
//! context, and every request runs in a fresh instance with a fresh
//! context: within one millisecond, two requests' ids came out in random
//! order (a customer's purchases made back to back were listed out of
//! order). The 12 bits after the millisecond therefore hold the time's
//! fraction of a millisecond (about 244 ns steps, from the host's wall
//! clock), and only the bits after them are random.

use uuid::{ContextV7, Timestamp, Uuid};

/// A fresh UUIDv7 as lower-case hyphenated text.
pub fn new_id() -> String {
    let context = ContextV7::new().with_additional_precision();
    Uuid::new_v7(Timestamp::now(&context)).to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::new_id;

    #[test]
    fn ids_are_distinct_version_7_uuids() {
        let (a, b) = (new_id(), new_id());
        assert_ne!(a, b);
        let parsed = uuid::Uuid::parse_str(&a).unwrap();
        assert_eq!(parsed.get_version_num(), 7);
        assert_eq!(a.len(), 36);
    }

    /// Each id has a context of its own, as each request's instance does:
    /// ids made a few microseconds apart still sort in the order made.
    #[test]
    fn ids_made_one_after_another_sort_in_that_order() {
        let mut made = Vec::new();
        for _ in 0..50 {
            made.push(new_id());
            let started = std::time::Instant::now();
            while started.elapsed() < std::time::Duration::from_micros(5) {}
        }
        let mut sorted = made.clone();
        sorted.sort();
        assert_eq!(sorted, made);
    }
}
