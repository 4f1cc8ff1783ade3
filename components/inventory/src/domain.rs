//! A good's fields as validated types. Each `parse` checks one API.md rule
//! once; handlers and the store only ever see values that passed. The error
//! strings are the messages shown to the client for the field.

use souk_sdk::Cents;
use souk_sdk::money::MoneyError;

/// The most units of one good the inventory holds (API.md: `count`
/// 0..1,000,000).
pub const MAX_STOCK: i64 = 1_000_000;

/// The key a name is unique under and looked up by: the trimmed name in
/// lower case (Unicode-aware, so `CAFÉ` and `café` collide on every backend).
pub fn name_key(name: &str) -> String {
    name.trim().to_lowercase()
}

/// 1..=100 characters after trimming, no control characters; unique
/// ignoring case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoodName(String);

impl GoodName {
    /// Trims and checks the name.
    pub fn parse(text: String) -> Result<GoodName, &'static str> {
        let trimmed = text.trim();
        if trimmed.chars().any(char::is_control) {
            return Err("must not contain control characters");
        }
        if (1..=100).contains(&trimmed.chars().count()) {
            Ok(GoodName(trimmed.to_owned()))
        } else {
            Err("must be 1 to 100 characters")
        }
    }

    /// The trimmed name, in the case it was given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name's uniqueness key (see [`name_key`]).
    pub fn key(&self) -> String {
        name_key(&self.0)
    }
}

/// 0..=2000 characters after trimming; newlines, carriage returns and tabs
/// are allowed (a description has paragraphs), other control characters
/// are not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    /// Trims and checks the description.
    pub fn parse(text: String) -> Result<Description, &'static str> {
        let trimmed = text.trim();
        if trimmed
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err("must not contain control characters other than newline and tab");
        }
        if trimmed.chars().count() <= 2000 {
            Ok(Description(trimmed.to_owned()))
        } else {
            Err("must be at most 2000 characters")
        }
    }

    /// The trimmed description.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The description in lower case, for `?q=` search.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

/// One of the four categories; case-insensitive in, lower case out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// `food`
    Food,
    /// `clothes`
    Clothes,
    /// `accessories`
    Accessories,
    /// `electronics`
    Electronics,
}

impl Category {
    /// Every category, in the order the API lists them.
    pub const ALL: [Category; 4] = [
        Category::Food,
        Category::Clothes,
        Category::Accessories,
        Category::Electronics,
    ];

    /// The message for a name outside the list.
    pub const MESSAGE: &'static str = "must be one of: food, clothes, accessories, electronics";

    /// Parses a category name, ignoring case.
    pub fn parse(text: String) -> Result<Category, &'static str> {
        Category::ALL
            .into_iter()
            .find(|category| text.eq_ignore_ascii_case(category.as_str()))
            .ok_or(Category::MESSAGE)
    }

    /// The lower-case name stored and returned.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Food => "food",
            Category::Clothes => "clothes",
            Category::Accessories => "accessories",
            Category::Electronics => "electronics",
        }
    }
}

/// A unit price: more than 0 and, like every amount, at most 1,000,000
/// dollars with at most 2 decimals (the JSON decoder of [`Cents`] has
/// already checked those two).
pub fn price(amount: Cents) -> Result<Cents, MoneyError> {
    amount.positive()
}

/// How many units are in stock: an integer from 0 to [`MAX_STOCK`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stock(i64);

impl Stock {
    /// Checks the range.
    pub fn parse(units: i64) -> Result<Stock, &'static str> {
        if (0..=MAX_STOCK).contains(&units) {
            Ok(Stock(units))
        } else {
            Err("must be an integer from 0 to 1000000")
        }
    }

    /// The number of units.
    pub fn units(self) -> i64 {
        self.0
    }
}

/// How many units to take out of stock: an integer of 1 or more. There is
/// no upper bound: more than is in stock is a conflict, not bad input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Removal(i64);

impl Removal {
    /// Checks that at least one unit is removed.
    pub fn parse(units: i64) -> Result<Removal, &'static str> {
        if units >= 1 {
            Ok(Removal(units))
        } else {
            Err("must be an integer of 1 or more")
        }
    }

    /// The number of units.
    pub fn units(self) -> i64 {
        self.0
    }
}

/// `?in_stock=`: `true` or `false`, ignoring case.
pub fn in_stock_filter(text: &str) -> Result<bool, &'static str> {
    if text.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if text.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err("must be true or false")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_counted_in_characters() {
        assert_eq!(
            GoodName::parse("  Green Tea \n".into()).unwrap().as_str(),
            "Green Tea"
        );
        assert!(GoodName::parse("é".repeat(100)).is_ok());
        assert!(GoodName::parse("é".repeat(101)).is_err());
        assert!(GoodName::parse("x".into()).is_ok());
        assert!(GoodName::parse("   ".into()).is_err());
        assert!(GoodName::parse(String::new()).is_err());
        assert!(GoodName::parse("Tea\u{0}Pot".into()).is_err());
        assert!(GoodName::parse("Tea\nPot".into()).is_err());
    }

    #[test]
    fn name_keys_ignore_case_including_non_ascii_letters() {
        let upper = GoodName::parse("CAFÉ Crème".into()).unwrap();
        let lower = GoodName::parse("café crème".into()).unwrap();
        assert_eq!(upper.key(), lower.key());
        assert_eq!(upper.as_str(), "CAFÉ Crème");
        assert_eq!(name_key("  Green TEA "), "green tea");
    }

    #[test]
    fn descriptions_may_be_empty_or_span_lines() {
        assert_eq!(Description::parse(String::new()).unwrap().as_str(), "");
        assert_eq!(Description::parse("  \n ".into()).unwrap().as_str(), "");
        assert_eq!(
            Description::parse(" One.\r\n\tTwo. ".into())
                .unwrap()
                .as_str(),
            "One.\r\n\tTwo."
        );
        assert!(Description::parse("ü".repeat(2000)).is_ok());
        assert!(Description::parse("ü".repeat(2001)).is_err());
        assert!(Description::parse("bell\u{7}".into()).is_err());
        assert_eq!(
            Description::parse("Ünïcode TEXT".into()).unwrap().key(),
            "ünïcode text"
        );
    }

    #[test]
    fn categories_are_case_insensitive_in_and_lower_case_out() {
        for category in Category::ALL {
            let shouted = category.as_str().to_uppercase();
            assert_eq!(Category::parse(shouted).unwrap(), category);
        }
        assert_eq!(
            Category::parse("Electronics".into()).unwrap().as_str(),
            "electronics"
        );
        for bad in ["", "toys", "food ", "foods"] {
            assert_eq!(Category::parse(bad.into()), Err(Category::MESSAGE), "{bad}");
        }
    }

    #[test]
    fn prices_must_be_positive() {
        assert_eq!(price(Cents(1)), Ok(Cents(1)));
        assert_eq!(price(Cents(100_000_000)), Ok(Cents(100_000_000)));
        assert_eq!(price(Cents(0)), Err(MoneyError::NotPositive));
        assert_eq!(price(Cents(-100)), Err(MoneyError::NotPositive));
    }

    #[test]
    fn stock_is_from_zero_to_a_million() {
        assert_eq!(Stock::parse(0).unwrap().units(), 0);
        assert_eq!(Stock::parse(MAX_STOCK).unwrap().units(), MAX_STOCK);
        for bad in [-1, MAX_STOCK + 1, i64::MIN, i64::MAX] {
            assert!(Stock::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn removals_take_at_least_one_unit() {
        assert_eq!(Removal::parse(1).unwrap().units(), 1);
        assert_eq!(Removal::parse(i64::MAX).unwrap().units(), i64::MAX);
        for bad in [0, -1, i64::MIN] {
            assert!(Removal::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_in_stock_filter_is_a_boolean() {
        assert_eq!(in_stock_filter("true"), Ok(true));
        assert_eq!(in_stock_filter("FALSE"), Ok(false));
        for bad in ["", "1", "yes", "truee"] {
            assert!(in_stock_filter(bad).is_err(), "{bad}");
        }
    }
}
