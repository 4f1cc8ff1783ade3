//! Money as integer cents, parsed from and rendered to JSON numbers in
//! dollars without floating point ever touching the value.
//!
//! Parsing reads the raw JSON number text (see [`crate::form`]), so `12.5`,
//! `12.50` and `1.25e1` are all exactly 1250 cents, while `0.001` or `1e-3`
//! (a fraction of a cent) are rejected rather than rounded. Rendering is
//! integer formatting: 1250 cents is `12.5`, 99 is `0.99`, 0 is `0`.

use std::fmt;

use serde::ser::{Error as _, Serialize, Serializer};
use serde_json::value::RawValue;

/// An amount of money in cents. The platform's only representation of money:
/// stored as `BIGINT`, sent as a JSON number of dollars.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cents(pub i64);

/// Why a JSON value is not an acceptable amount of money. The `Display` text
/// is the message shown to the client for that field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoneyError {
    /// Not a JSON number (a string, `null`, an object, ...).
    NotANumber,
    /// The value has a non-zero digit below the cent.
    TooManyDecimals,
    /// More than [`Cents::MAX_PER_OPERATION`] in absolute value.
    TooLarge,
    /// Zero or negative where a positive amount is required.
    NotPositive,
    /// Negative where zero or more is required.
    Negative,
}

impl fmt::Display for MoneyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MoneyError::NotANumber => "must be a JSON number of dollars, e.g. 12.5",
            MoneyError::TooManyDecimals => "must have at most 2 decimal places",
            MoneyError::TooLarge => "must be at most 1000000 in absolute value",
            MoneyError::NotPositive => "must be greater than 0",
            MoneyError::Negative => "must not be negative",
        })
    }
}

impl std::error::Error for MoneyError {}

impl Cents {
    /// No money.
    pub const ZERO: Cents = Cents(0);

    /// The largest amount one operation may name: 1,000,000 dollars.
    pub const MAX_PER_OPERATION: Cents = Cents(100_000_000);

    /// Parses the text of a JSON number of dollars (as it appeared in the
    /// request, not as a float) into cents.
    ///
    /// Accepts any JSON number spelling whose value is a whole number of
    /// cents within ±[`Cents::MAX_PER_OPERATION`]; anything else is an error.
    /// A JSON string such as `"12.5"` is rejected: money is a number.
    pub fn from_json_number(text: &str) -> Result<Cents, MoneyError> {
        let number = Number::parse(text.trim()).ok_or(MoneyError::NotANumber)?;
        number.to_cents()
    }

    /// Accepts only amounts above zero. Use as a form field parser:
    /// `form.required("amount", Cents::positive)`.
    pub fn positive(self) -> Result<Cents, MoneyError> {
        if self.0 > 0 {
            Ok(self)
        } else {
            Err(MoneyError::NotPositive)
        }
    }

    /// Accepts zero and above.
    pub fn non_negative(self) -> Result<Cents, MoneyError> {
        if self.0 >= 0 {
            Ok(self)
        } else {
            Err(MoneyError::Negative)
        }
    }

    /// Sum, or `None` on overflow.
    pub fn checked_add(self, other: Cents) -> Option<Cents> {
        self.0.checked_add(other.0).map(Cents)
    }

    /// Difference, or `None` on overflow.
    pub fn checked_sub(self, other: Cents) -> Option<Cents> {
        self.0.checked_sub(other.0).map(Cents)
    }

    /// Product with a count (e.g. unit price × quantity), or `None` on overflow.
    pub fn checked_mul(self, count: i64) -> Option<Cents> {
        self.0.checked_mul(count).map(Cents)
    }
}

/// Renders dollars as a JSON-compatible number: no trailing zeros, no
/// exponent, no decimal point for whole dollars.
impl fmt::Display for Cents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let magnitude = self.0.unsigned_abs();
        let (dollars, cents) = (magnitude / 100, magnitude % 100);
        match cents {
            0 => write!(f, "{sign}{dollars}"),
            c if c % 10 == 0 => write!(f, "{sign}{dollars}.{}", c / 10),
            c => write!(f, "{sign}{dollars}.{c:02}"),
        }
    }
}

/// Serializes as a JSON number of dollars with the exact digits of
/// [`Display`](fmt::Display) (a raw JSON token, so no float rounding).
impl Serialize for Cents {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw = RawValue::from_string(self.to_string()).map_err(S::Error::custom)?;
        raw.serialize(serializer)
    }
}

/// A JSON number split into its parts, all still decimal text.
struct Number<'a> {
    negative: bool,
    integer: &'a str,
    fraction: &'a str,
    exponent: i64,
}

impl<'a> Number<'a> {
    /// Parses RFC 8259 number syntax; `None` for anything else.
    fn parse(text: &'a str) -> Option<Number<'a>> {
        let (negative, rest) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (mantissa, exponent) = match rest.find(['e', 'E']) {
            Some(at) => (&rest[..at], Some(&rest[at + 1..])),
            None => (rest, None),
        };
        let (integer, fraction) = match mantissa.split_once('.') {
            Some((integer, fraction)) => (integer, Some(fraction)),
            None => (mantissa, None),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(integer) || (integer.len() > 1 && integer.starts_with('0')) {
            return None;
        }
        if fraction.is_some_and(|f| !digits(f)) {
            return None;
        }
        let exponent = match exponent {
            None => 0,
            Some(e) => {
                let (sign, magnitude) = match e.as_bytes().first() {
                    Some(b'-') => (-1, &e[1..]),
                    Some(b'+') => (1, &e[1..]),
                    _ => (1, e),
                };
                if !digits(magnitude) {
                    return None;
                }
                // Any exponent beyond this makes the value either zero-or-
                // fractional or far above the cap; saturating keeps the
                // arithmetic below free of overflow.
                let magnitude = magnitude.trim_start_matches('0');
                let value: i64 = if magnitude.len() > 6 {
                    1_000_000
                } else {
                    magnitude.parse().unwrap_or(0)
                };
                sign * value
            }
        };
        Some(Number {
            negative,
            integer,
            fraction: fraction.unwrap_or(""),
            exponent,
        })
    }

    fn to_cents(&self) -> Result<Cents, MoneyError> {
        // value = digits × 10^(exponent - fraction.len()); cents = value × 100.
        let digits = format!("{}{}", self.integer, self.fraction);
        let significant = digits.trim_start_matches('0');
        if significant.is_empty() {
            return Ok(Cents::ZERO);
        }
        // The fraction is at most a request body (64 KiB) long, so this fits.
        let fraction_len =
            i64::try_from(self.fraction.len()).map_err(|_| MoneyError::TooManyDecimals)?;
        let shift = self.exponent - fraction_len + 2;
        let whole: String = if shift < 0 {
            let drop = usize::try_from(-shift).map_err(|_| MoneyError::TooManyDecimals)?;
            if drop >= significant.len() {
                return Err(MoneyError::TooManyDecimals);
            }
            let (kept, dropped) = significant.split_at(significant.len() - drop);
            if dropped.bytes().any(|b| b != b'0') {
                return Err(MoneyError::TooManyDecimals);
            }
            kept.to_owned()
        } else {
            let zeros = usize::try_from(shift).map_err(|_| MoneyError::TooLarge)?;
            if significant.len().saturating_add(zeros) > 18 {
                return Err(MoneyError::TooLarge);
            }
            format!("{significant}{}", "0".repeat(zeros))
        };
        if whole.len() > 18 {
            return Err(MoneyError::TooLarge);
        }
        let magnitude: i64 = whole.parse().map_err(|_| MoneyError::TooLarge)?;
        if magnitude > Cents::MAX_PER_OPERATION.0 {
            return Err(MoneyError::TooLarge);
        }
        Ok(Cents(if self.negative { -magnitude } else { magnitude }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<i64, MoneyError> {
        Cents::from_json_number(text).map(|c| c.0)
    }

    #[test]
    fn plain_dollar_amounts_become_cents() {
        let cases = [
            ("0", 0),
            ("1", 100),
            ("12.5", 1250),
            ("12.50", 1250),
            ("0.99", 99),
            ("0.01", 1),
            ("0.1", 10),
            ("1000000", 100_000_000),
            ("1000000.00", 100_000_000),
            ("-3.25", -325),
            ("-0", 0),
            ("0.0", 0),
        ];
        for (text, cents) in cases {
            assert_eq!(parse(text), Ok(cents), "{text}");
        }
    }

    #[test]
    fn exponents_are_exact_when_they_give_whole_cents() {
        let cases = [
            ("1e2", 10_000),
            ("1E2", 10_000),
            ("1.25e1", 1250),
            ("1255e-2", 1255),
            ("125500e-4", 1255),
            ("1e-2", 1),
            ("1e+0", 100),
            ("0e999999999999", 0),
            ("0.000e-50", 0),
            ("1e6", 100_000_000),
        ];
        for (text, cents) in cases {
            assert_eq!(parse(text), Ok(cents), "{text}");
        }
    }

    #[test]
    fn fractions_of_a_cent_are_rejected_not_rounded() {
        for text in [
            "0.001",
            "12.345",
            "1e-3",
            "1.2555e1",
            "0.009",
            "1e-99999999999999999999",
            "0.0000000000000000000000001",
            "99999999.999",
        ] {
            assert_eq!(parse(text), Err(MoneyError::TooManyDecimals), "{text}");
        }
    }

    #[test]
    fn trailing_zero_decimals_are_not_extra_precision() {
        assert_eq!(parse("12.500000"), Ok(1250));
        assert_eq!(parse("5.000e0"), Ok(500));
    }

    #[test]
    fn amounts_above_one_million_dollars_are_rejected() {
        for text in [
            "1000000.01",
            "1000001",
            "-1000000.01",
            "1e7",
            "1e400",
            "1e999999999999",
            "123456789012345678901234567890",
        ] {
            assert_eq!(parse(text), Err(MoneyError::TooLarge), "{text}");
        }
    }

    #[test]
    fn non_numbers_are_rejected() {
        for text in [
            "\"12.5\"", "null", "true", "{}", "[]", "", "NaN", "Infinity", "-", "1.", ".5", "01",
            "1e", "1e+", "+1", "0x10", "1_000", "12,5",
        ] {
            assert_eq!(parse(text), Err(MoneyError::NotANumber), "{text}");
        }
    }

    #[test]
    fn positivity_is_checked_separately() {
        assert_eq!(Cents(1).positive(), Ok(Cents(1)));
        assert_eq!(Cents(0).positive(), Err(MoneyError::NotPositive));
        assert_eq!(Cents(-5).positive(), Err(MoneyError::NotPositive));
        assert_eq!(Cents(0).non_negative(), Ok(Cents(0)));
        assert_eq!(Cents(-1).non_negative(), Err(MoneyError::Negative));
    }

    #[test]
    fn rendering_is_dollars_without_trailing_zeros() {
        let cases = [
            (0, "0"),
            (1, "0.01"),
            (10, "0.1"),
            (99, "0.99"),
            (100, "1"),
            (105, "1.05"),
            (1250, "12.5"),
            (1299, "12.99"),
            (100_000_000, "1000000"),
            (-150, "-1.5"),
            (-5, "-0.05"),
            (i64::MAX, "92233720368547758.07"),
            (i64::MIN, "-92233720368547758.08"),
        ];
        for (cents, text) in cases {
            assert_eq!(Cents(cents).to_string(), text, "{cents}");
        }
    }

    #[test]
    fn serializes_as_an_exact_json_number() {
        #[derive(serde::Serialize)]
        struct Balance {
            wallet_balance: Cents,
        }
        let text = serde_json::to_string(&Balance {
            wallet_balance: Cents(1250),
        })
        .unwrap();
        assert_eq!(text, r#"{"wallet_balance":12.5}"#);
        let value = serde_json::to_value(Cents(99)).unwrap();
        assert_eq!(value, serde_json::json!(0.99));
    }

    #[test]
    fn every_rendering_parses_back_to_the_same_cents() {
        for cents in (-2_000..=2_000).chain([99_999_999, 100_000_000, -100_000_000]) {
            let text = Cents(cents).to_string();
            assert_eq!(parse(&text), Ok(cents), "{text}");
        }
    }

    #[test]
    fn checked_arithmetic_reports_overflow() {
        assert_eq!(Cents(150).checked_add(Cents(50)), Some(Cents(200)));
        assert_eq!(Cents(150).checked_sub(Cents(200)), Some(Cents(-50)));
        assert_eq!(Cents(250).checked_mul(3), Some(Cents(750)));
        assert_eq!(Cents(i64::MAX).checked_add(Cents(1)), None);
        assert_eq!(Cents(i64::MAX).checked_mul(2), None);
    }
}
