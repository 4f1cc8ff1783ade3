//! Canonical request methods and paths: one spelling per request.
//!
//! Without one, `POST /api/v1/auth/%6cogin` and `post /api/v1/auth/login`
//! reach the same handler as `POST /api/v1/auth/login` while any check that
//! compares strings sees three different requests. The edge rewrites every
//! request to its canonical form before anything routes on it
//! ([`crate::http::canonical`]), and a component's route prefixes must be
//! canonical to be loaded.
//!
//! The canonical path decodes every percent-escape and re-encodes exactly
//! the bytes that cannot stand for themselves in a segment (see
//! [`needs_escape`]), so two spellings that a decoder treats alike become
//! byte-identical. `%2F` stays encoded: it is data inside a segment, never
//! a separator. Empty segments (`//`) collapse. Dot segments (`.`, `..`,
//! in any spelling) and escapes that do not decode to UTF-8 are refused: no
//! honest client sends them. Control characters are data like any other
//! here (escaped); the component's router names the parameter holding one.

use axum::http::Method;

/// Why a path has no canonical form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadPath {
    /// Does not start with `/`.
    NotAbsolute,
    /// A `%` not followed by two hex digits, or escapes that are not UTF-8.
    BadEscape,
    /// A `.` or `..` segment.
    DotSegment,
}

impl BadPath {
    /// What to tell the client.
    pub fn detail(self) -> &'static str {
        match self {
            Self::NotAbsolute => "the path must start with `/`",
            Self::BadEscape => "the path has a malformed percent-escape or is not UTF-8",
            Self::DotSegment => "the path must not contain `.` or `..` segments",
        }
    }
}

/// The canonical spelling of `path` (see the module docs).
pub fn canonical_path(path: &str) -> Result<String, BadPath> {
    let rest = path.strip_prefix('/').ok_or(BadPath::NotAbsolute)?;
    let mut canonical = String::with_capacity(path.len());
    let segments: Vec<&str> = rest.split('/').collect();
    let last = segments.len() - 1;
    for (index, raw) in segments.iter().enumerate() {
        let decoded = decode(raw)?;
        if decoded.is_empty() && index != last {
            continue;
        }
        if decoded == "." || decoded == ".." {
            return Err(BadPath::DotSegment);
        }
        canonical.push('/');
        for byte in decoded.bytes() {
            if needs_escape(byte) {
                canonical.push_str(&format!("%{byte:02X}"));
            } else {
                canonical.push(char::from(byte));
            }
        }
    }
    if canonical.is_empty() {
        canonical.push('/');
    }
    Ok(canonical)
}

/// The canonical method: the standard methods in upper case, whatever case
/// they were sent in; any other method as sent (components answer 405).
pub fn canonical_method(method: &Method) -> Method {
    let upper = method.as_str().to_ascii_uppercase();
    [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
    ]
    .into_iter()
    .find(|standard| standard.as_str() == upper)
    .unwrap_or_else(|| method.clone())
}

/// Bytes written as themselves in a canonical segment: RFC 3986's
/// unreserved characters and the sub-delimiters, `:` and `@` that a segment
/// may hold. Everything else (including `%`, `/`, `?`, `#` and non-ASCII
/// bytes) is escaped.
fn needs_escape(byte: u8) -> bool {
    !(byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&byte))
}

fn decode(segment: &str) -> Result<String, BadPath> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(BadPath::BadEscape)?;
            let hex = std::str::from_utf8(hex).map_err(|_| BadPath::BadEscape)?;
            // Two hex digits exactly: `from_str_radix` alone would take a
            // sign (`%+1`).
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(BadPath::BadEscape);
            }
            let byte = u8::from_str_radix(hex, 16).map_err(|_| BadPath::BadEscape)?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| BadPath::BadEscape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_a_path_has_one_canonical_form() {
        for spelling in [
            "/api/v1/auth/login",
            "/api/v1/auth/%6cogin",
            "/api/v1/auth/%6Cogin",
            "/%61pi/v1/auth/login",
            "/api/v1//auth/login",
            "//api/v1/auth///login",
            "/api/%76%31/auth/login",
        ] {
            assert_eq!(
                canonical_path(spelling).as_deref(),
                Ok("/api/v1/auth/login"),
                "{spelling}"
            );
        }
    }

    #[test]
    fn data_inside_a_segment_stays_data() {
        assert_eq!(
            canonical_path("/api/v1/sales/goods/Blue%20Shirt").as_deref(),
            Ok("/api/v1/sales/goods/Blue%20Shirt")
        );
        assert_eq!(
            canonical_path("/api/v1/sales/goods/a%2Fb").as_deref(),
            Ok("/api/v1/sales/goods/a%2Fb")
        );
        assert_eq!(
            canonical_path("/api/v1/sales/goods/a%2fb").as_deref(),
            Ok("/api/v1/sales/goods/a%2Fb")
        );
        assert_eq!(
            canonical_path("/api/v1/sales/goods/%C3%A9t%c3%a9").as_deref(),
            Ok("/api/v1/sales/goods/%C3%A9t%C3%A9")
        );
        assert_eq!(
            canonical_path("/api/v1/sales/goods/50%25").as_deref(),
            Ok("/api/v1/sales/goods/50%25")
        );
        assert_eq!(canonical_path("/x/").as_deref(), Ok("/x/"));
        assert_eq!(canonical_path("/").as_deref(), Ok("/"));
    }

    #[test]
    fn control_characters_stay_escaped_data() {
        assert_eq!(
            canonical_path("/api/v1/goods/a%00b%0a").as_deref(),
            Ok("/api/v1/goods/a%00b%0A")
        );
    }

    #[test]
    fn dot_segments_and_bad_escapes_are_refused() {
        for (path, why) in [
            ("/api/v1/x/../auth/login", BadPath::DotSegment),
            ("/api/v1/./auth/login", BadPath::DotSegment),
            ("/api/v1/%2e%2e/auth", BadPath::DotSegment),
            ("/api/v1/%2E/auth", BadPath::DotSegment),
            ("/api/v1/goods/%zz", BadPath::BadEscape),
            ("/api/v1/goods/%+1", BadPath::BadEscape),
            ("/api/v1/goods/%4", BadPath::BadEscape),
            ("/api/v1/goods/%ff", BadPath::BadEscape),
            ("api/v1", BadPath::NotAbsolute),
        ] {
            assert_eq!(canonical_path(path), Err(why), "{path}");
        }
    }

    #[test]
    fn standard_methods_are_upper_case_whatever_their_spelling() {
        for spelling in ["post", "Post", "pOsT", "POST"] {
            let method = Method::from_bytes(spelling.as_bytes()).unwrap_or(Method::GET);
            assert_eq!(canonical_method(&method), Method::POST, "{spelling}");
        }
        let odd = Method::from_bytes(b"BREW").unwrap_or(Method::GET);
        assert_eq!(canonical_method(&odd), odd);
    }
}
