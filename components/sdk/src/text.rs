//! Text a database can store: the one check every string from a client
//! passes before a handler sees it.
//!
//! Rust strings are valid UTF-8, so lone surrogates and malformed bytes
//! cannot reach here; what remains is the NUL character. PostgreSQL's
//! `text` refuses it outright (`invalid byte sequence for encoding "UTF8":
//! 0x00`, which a handler could only report as a 500) and SQLite silently
//! truncates it in some functions, so the same input would mean different
//! things on the two backends. It is rejected as invalid input, naming the
//! parameter or field, wherever a client's text enters: path parameters
//! ([`crate::router`]), query parameters ([`crate::context`]) and JSON body
//! strings, nested ones and keys included ([`crate::form`]).

use serde_json::Value;

/// The message shown for a value that contains NUL.
pub const NUL_MESSAGE: &str = "must not contain the NUL character (U+0000)";

/// Whether `text` can be stored as it is by every supported backend.
pub fn is_storable(text: &str) -> bool {
    !text.contains('\0')
}

/// Whether every string in `value` (object keys included, at any depth) is
/// storable: a component may keep a nested value as JSON text.
pub fn is_storable_json(value: &Value) -> bool {
    match value {
        Value::String(text) => is_storable(text),
        Value::Array(items) => items.iter().all(is_storable_json),
        Value::Object(members) => members
            .iter()
            .all(|(key, value)| is_storable(key) && is_storable_json(value)),
        Value::Null | Value::Bool(_) | Value::Number(_) => true,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nul_is_the_only_refused_character() {
        assert!(is_storable("plain text, tabs\tand\nnewlines, café, 🙂"));
        assert!(!is_storable("a\0b"));
        assert!(!is_storable("\0"));
    }

    #[test]
    fn nested_strings_and_keys_are_checked() {
        assert!(is_storable_json(&json!({"a": [1, "x", {"b": null}]})));
        assert!(!is_storable_json(&json!({"a": [1, "x\u{0}"]})));
        assert!(!is_storable_json(&json!({"a": {"k\u{0}": 1}})));
        assert!(!is_storable_json(&json!("\u{0}")));
    }
}
