//! The purchase's inputs as validated types, and the money math of a sale.
//! Each is a [`Field`] rule (or, for the header, described the same way):
//! its `parse` checks one API.md rule once, and its schema documents the
//! same limits. The error strings are the messages shown to the client for
//! the field (or header).

use souk_sdk::{Cents, Describe, Field, Schema, Schemas};

/// The header that makes a purchase safe to retry.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// The name of the good to buy: 1..=100 characters after trimming (no good
/// has a longer name). Matched ignoring case by the inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoodRef(String);

impl GoodRef {
    /// The longest name of a good, in characters (the inventory's limit).
    pub const MAX_CHARS: usize = 100;
}

impl Describe for GoodRef {
    fn describe(_: &mut Schemas) -> Schema {
        Schema::string()
            .length(1, GoodRef::MAX_CHARS)
            .doc("The good's name, matched ignoring case.")
    }
}

impl Field for GoodRef {
    type Input = String;
    type Output = GoodRef;
    type Error = &'static str;

    /// Trims and checks the name.
    fn parse(text: String) -> Result<GoodRef, &'static str> {
        let trimmed = text.trim();
        if (1..=GoodRef::MAX_CHARS).contains(&trimmed.chars().count()) {
            Ok(GoodRef(trimmed.to_owned()))
        } else {
            Err("must be the name of a good: 1 to 100 characters")
        }
    }
}

impl GoodRef {
    /// The trimmed name as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How many units to buy: an integer from 1 to 1000, 1 when left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity(i64);

impl Quantity {
    /// The most units one purchase may buy.
    pub const MAX: i64 = 1000;
}

impl Describe for Quantity {
    fn describe(_: &mut Schemas) -> Schema {
        Schema::integer().range(1, Quantity::MAX)
    }
}

impl Field for Quantity {
    type Input = i64;
    type Output = Quantity;
    type Error = &'static str;

    /// Checks the range.
    fn parse(units: i64) -> Result<Quantity, &'static str> {
        if (1..=Quantity::MAX).contains(&units) {
            Ok(Quantity(units))
        } else {
            Err("must be an integer from 1 to 1000")
        }
    }
}

impl Quantity {
    /// The number of units.
    pub fn units(self) -> i64 {
        self.0
    }
}

impl Default for Quantity {
    fn default() -> Self {
        Quantity(1)
    }
}

/// An `Idempotency-Key` header value: 1..=64 visible ASCII characters
/// (`!` to `~`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl Describe for IdempotencyKey {
    fn describe(_: &mut Schemas) -> Schema {
        let max = IdempotencyKey::MAX_CHARS;
        Schema::string()
            .length(1, max)
            .pattern(&format!("^[!-~]{{1,{max}}}$"))
    }
}

impl IdempotencyKey {
    /// The longest key.
    const MAX_CHARS: usize = 64;

    /// Checks the value.
    pub fn parse(text: &str) -> Result<IdempotencyKey, &'static str> {
        let visible = text.bytes().all(|b| b.is_ascii_graphic());
        if visible && (1..=IdempotencyKey::MAX_CHARS).contains(&text.len()) {
            Ok(IdempotencyKey(text.to_owned()))
        } else {
            Err("must be 1 to 64 visible ASCII characters")
        }
    }

    /// The header's values (zero, one or several) as one key: none, the
    /// key, or an error when there are several or the one is malformed.
    pub fn from_values<'a>(
        mut values: impl Iterator<Item = &'a str>,
    ) -> Result<Option<IdempotencyKey>, &'static str> {
        match (values.next(), values.next()) {
            (None, _) => Ok(None),
            (Some(value), None) => IdempotencyKey::parse(value).map(Some),
            (Some(_), Some(_)) => Err("must be given once"),
        }
    }

    /// The key as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a purchase is, for telling a retried purchase from a different one
/// sent with the same `Idempotency-Key`: the buyer, the good (ignoring case,
/// as the inventory matches it) and the quantity.
pub fn fingerprint(buyer_id: &str, good: &GoodRef, quantity: Quantity) -> String {
    format!(
        "{buyer_id}\n{}\n{}",
        quantity.units(),
        good.as_str().to_lowercase()
    )
}

/// `unit_price` × `quantity` in integer cents; `None` if it overflows
/// (which a price of at most 1,000,000 dollars and 1000 units cannot).
pub fn total(unit_price: Cents, quantity: Quantity) -> Option<Cents> {
    unit_price.checked_mul(quantity.units())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use souk_sdk::field::disagreements;

    #[test]
    fn every_rule_agrees_with_its_schema() {
        assert_eq!(disagreements::<GoodRef>(), Vec::<String>::new());
        assert_eq!(disagreements::<Quantity>(), Vec::<String>::new());
    }

    #[test]
    fn good_references_are_trimmed_names() {
        assert_eq!(
            GoodRef::parse("  Green Tea ".into()).unwrap().as_str(),
            "Green Tea"
        );
        assert!(GoodRef::parse("é".repeat(100)).is_ok());
        assert!(GoodRef::parse("é".repeat(101)).is_err());
        assert!(GoodRef::parse(String::new()).is_err());
        assert!(GoodRef::parse(" \t ".into()).is_err());
    }

    #[test]
    fn quantities_are_from_1_to_1000_and_default_to_1() {
        assert_eq!(Quantity::default().units(), 1);
        assert_eq!(Quantity::parse(1).unwrap().units(), 1);
        assert_eq!(Quantity::parse(1000).unwrap().units(), 1000);
        for bad in [0, -1, 1001, i64::MAX, i64::MIN] {
            assert!(Quantity::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn idempotency_keys_are_1_to_64_visible_ascii_characters() {
        for ok in ["a", "retry-1", "~!#$%&'*+-.^_`|", &"k".repeat(64)] {
            assert_eq!(IdempotencyKey::parse(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            " ",
            "a b",
            "tab\there",
            "ключ",
            "new\nline",
            &"k".repeat(65),
        ] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_idempotency_header_may_be_absent_or_given_once() {
        assert_eq!(IdempotencyKey::from_values([].into_iter()), Ok(None));
        assert_eq!(
            IdempotencyKey::from_values(["k1"].into_iter()),
            Ok(Some(IdempotencyKey("k1".into())))
        );
        assert!(IdempotencyKey::from_values(["k1", "k1"].into_iter()).is_err());
        assert!(IdempotencyKey::from_values([""].into_iter()).is_err());
    }

    #[test]
    fn fingerprints_ignore_the_case_of_the_good_but_not_the_rest() {
        let tea = GoodRef::parse("Green Tea".into()).unwrap();
        let shouted = GoodRef::parse("GREEN TEA".into()).unwrap();
        let one = Quantity::default();
        let two = Quantity::parse(2).unwrap();
        assert_eq!(
            fingerprint("c1", &tea, one),
            fingerprint("c1", &shouted, one)
        );
        assert_ne!(fingerprint("c1", &tea, one), fingerprint("c1", &tea, two));
        assert_ne!(fingerprint("c1", &tea, one), fingerprint("c2", &tea, one));
        let other = GoodRef::parse("Black Tea".into()).unwrap();
        assert_ne!(fingerprint("c1", &tea, one), fingerprint("c1", &other, one));
    }

    #[test]
    fn totals_are_exact_integer_cents() {
        let three = Quantity::parse(3).unwrap();
        assert_eq!(total(Cents(1999), three), Some(Cents(5997)));
        assert_eq!(total(Cents(1), Quantity::default()), Some(Cents(1)));
        let most = Quantity::parse(Quantity::MAX).unwrap();
        assert_eq!(
            total(Cents::MAX_PER_OPERATION, most),
            Some(Cents(100_000_000_000))
        );
        assert_eq!(total(Cents(i64::MAX), three), None);
    }
}
