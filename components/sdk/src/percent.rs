//! Percent-decoding of path segments and query strings (RFC 3986), kept
//! here rather than pulled in as a dependency because components need only
//! this one strict function.

/// Decodes `%XX` escapes (and `+` as a space when `plus_as_space`, as in
/// `application/x-www-form-urlencoded` query strings).
///
/// Returns `None` for a malformed escape or when the decoded bytes are not
/// UTF-8: such input cannot name anything a component stores, and guessing
/// would make two different spellings mean the same thing.
pub(crate) fn decode(input: &str, plus_as_space: bool) -> Option<String> {
    if !input.contains(['%', '+']) {
        return Some(input.to_owned());
    }
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let high = hex(*bytes.get(i + 1)?)?;
                let low = hex(*bytes.get(i + 2)?)?;
                out.push(high << 4 | low);
                i += 3;
            }
            b'+' if plus_as_space => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn hex(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::decode;

    #[test]
    fn plain_text_is_unchanged() {
        assert_eq!(decode("alice_01", false).as_deref(), Some("alice_01"));
    }

    #[test]
    fn escapes_are_decoded_in_either_case() {
        assert_eq!(decode("a%20b%2fc%2F", false).as_deref(), Some("a b/c/"));
    }

    #[test]
    fn multi_byte_utf8_is_decoded() {
        assert_eq!(decode("caf%C3%A9", false).as_deref(), Some("café"));
    }

    #[test]
    fn plus_is_a_space_only_in_query_strings() {
        assert_eq!(decode("a+b", true).as_deref(), Some("a b"));
        assert_eq!(decode("a+b", false).as_deref(), Some("a+b"));
        assert_eq!(decode("a%2Bb", true).as_deref(), Some("a+b"));
    }

    #[test]
    fn malformed_escapes_and_invalid_utf8_are_rejected() {
        for bad in ["%", "%2", "%zz", "abc%4", "%C3", "%FF"] {
            assert_eq!(decode(bad, false), None, "{bad}");
        }
    }
}
