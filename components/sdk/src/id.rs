//! Identifiers for stored things: UUIDv7 text, which is opaque to clients,
//! unique without coordination, and ordered by creation time.
//!
//! Lists that are "newest first" break ties of their second-precision
//! `created_at` by id, so ids made one after another must sort in that
//! order. `Uuid::now_v7` keeps them in order only within one instance
//! (its context lives in the instance's memory), and every request runs
//! in a fresh instance: within one millisecond, two requests' ids came out
//! in random order (a customer's purchases made back to back were listed
//! out of order). So the 12 bits after the millisecond hold the time's
//! fraction of a millisecond (about 244 ns steps, from the host's wall
//! clock), which orders ids across instances, and within an instance the
//! context's counter still orders ids made in the same step.

use uuid::{ContextV7, Timestamp, Uuid, timestamp::context::ThreadLocalContext};

thread_local! {
    /// The instance's context: an instance runs on one thread.
    static CONTEXT: ContextV7 = ContextV7::new().with_additional_precision();
}

/// A fresh UUIDv7 as lower-case hyphenated text.
pub fn new_id() -> String {
    Uuid::new_v7(Timestamp::now(ThreadLocalContext::new(&CONTEXT))).to_string()
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

    /// Within an instance, ids made as fast as possible sort in the order
    /// made.
    #[test]
    fn ids_of_one_instance_sort_in_the_order_made() {
        let made: Vec<String> = (0..10_000).map(|_| new_id()).collect();
        let mut sorted = made.clone();
        sorted.sort();
        assert_eq!(sorted, made);
    }

    /// Each thread has a context of its own, as each request's instance
    /// does: ids made a few microseconds apart, each by a new one, still
    /// sort in the order made.
    #[test]
    fn ids_of_one_instance_after_another_sort_in_the_order_made() {
        let mut made = Vec::new();
        for _ in 0..50 {
            made.push(std::thread::spawn(new_id).join().unwrap());
            let started = std::time::Instant::now();
            while started.elapsed() < std::time::Duration::from_micros(5) {}
        }
        let mut sorted = made.clone();
        sorted.sort();
        assert_eq!(sorted, made);
    }
}
