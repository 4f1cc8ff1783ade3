//! Identifiers for stored things: UUIDv7 text, which is opaque to clients,
//! unique without coordination, and roughly ordered by creation time.

/// A fresh UUIDv7 as lower-case hyphenated text.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
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
}
