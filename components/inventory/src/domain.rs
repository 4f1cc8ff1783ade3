//! A good's fields as validated types. Each is a [`Field`] rule: its
//! `parse` checks one API.md rule once, and its schema documents the same
//! limits, so handlers, the store and the documentation agree. The error
//! strings are the messages shown to the client for the field.

use souk_sdk::{Describe, Field, Schema, Schemas};

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
    /// The longest name, in characters.
    pub const MAX_CHARS: usize = 100;
}

impl Describe for GoodName {
    fn describe(_: &mut Schemas) -> Schema {
        Schema::string()
            .length(1, GoodName::MAX_CHARS)
            .doc("1 to 100 characters after trimming, no control characters; unique ignoring case.")
    }
}

impl Field for GoodName {
    type Input = String;
    type Output = GoodName;
    type Error = &'static str;

    /// Trims and checks the name.
    fn parse(text: String) -> Result<GoodName, &'static str> {
        let trimmed = text.trim();
        if trimmed.chars().any(char::is_control) {
            return Err("must not contain control characters");
        }
        if (1..=GoodName::MAX_CHARS).contains(&trimmed.chars().count()) {
            Ok(GoodName(trimmed.to_owned()))
        } else {
            Err("must be 1 to 100 characters")
        }
    }
}

impl GoodName {
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
    /// The longest description, in characters.
    pub const MAX_CHARS: usize = 2000;
}

impl Describe for Description {
    fn describe(_: &mut Schemas) -> Schema {
        Schema::string().max_length(Description::MAX_CHARS).doc(
            "0 to 2000 characters after trimming; newlines and tabs allowed, other control characters not.",
        )
    }
}

impl Field for Description {
    type Input = String;
    type Output = Description;
    type Error = &'static str;

    /// Trims and checks the description.
    fn parse(text: String) -> Result<Description, &'static str> {
        let trimmed = text.trim();
        if trimmed
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err("must not contain control characters other than newline and tab");
        }
        if trimmed.chars().count() <= Description::MAX_CHARS {
            Ok(Description(trimmed.to_owned()))
        } else {
            Err("must be at most 2000 characters")
        }
    }
}

impl Description {
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

impl Describe for Category {
    fn describe(_: &mut Schemas) -> Schema {
        Schema::one_of(&Category::ALL.map(Category::as_str))
            .doc("Case-insensitive in, lower case out.")
    }
}

impl Field for Category {
    type Input = String;
    type Output = Category;
    type Error = &'static str;

    /// Parses a category name, ignoring case.
    fn parse(text: String) -> Result<Category, &'static str> {
        Category::ALL
            .into_iter()
            .find(|category| text.eq_ignore_ascii_case(category.as_str()))
            .ok_or(Category::MESSAGE)
    }
}

/// How many units are in stock: an integer from 0 to [`MAX_STOCK`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stock(i64);

impl Describe for Stock {
    fn describe(_: &mut Schemas) -> Schema {
        Schema::integer().range(0, MAX_STOCK).doc("Units in stock.")
    }
}

impl Field for Stock {
    type Input = i64;
    type Output = Stock;
    type Error = &'static str;

    /// Checks the range.
    fn parse(units: i64) -> Result<Stock, &'static str> {
        if (0..=MAX_STOCK).contains(&units) {
            Ok(Stock(units))
        } else {
            Err("must be an integer from 0 to 1000000")
        }
    }
}

impl Stock {
    /// The number of units.
    pub fn units(self) -> i64 {
        self.0
    }
}

/// How many units to take out of stock: an integer of 1 or more. There is
/// no upper bound: more than is in stock is a conflict, not bad input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Removal(i64);

impl Describe for Removal {
    fn describe(_: &mut Schemas) -> Schema {
        Schema::integer()
            .minimum(1)
            .doc("Units to remove from stock.")
    }
}

impl Field for Removal {
    type Input = i64;
    type Output = Removal;
    type Error = &'static str;

    /// Checks that at least one unit is removed.
    fn parse(units: i64) -> Result<Removal, &'static str> {
        if units >= 1 {
            Ok(Removal(units))
        } else {
            Err("must be an integer of 1 or more")
        }
    }
}

impl Removal {
    /// The number of units.
    pub fn units(self) -> i64 {
        self.0
    }
}

/// `?in_stock=`: `true` or `false`, ignoring case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InStock;

impl Describe for InStock {
    fn describe(_: &mut Schemas) -> Schema {
        Schema::boolean()
    }
}

impl Field for InStock {
    type Input = String;
    type Output = bool;
    type Error = &'static str;

    fn parse(text: String) -> Result<bool, &'static str> {
        if text.eq_ignore_ascii_case("true") {
            Ok(true)
        } else if text.eq_ignore_ascii_case("false") {
            Ok(false)
        } else {
            Err("must be true or false")
        }
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
        assert_eq!(InStock::parse("true".into()), Ok(true));
        assert_eq!(InStock::parse("FALSE".into()), Ok(false));
        for bad in ["", "1", "yes", "truee"] {
            assert!(InStock::parse(bad.into()).is_err(), "{bad}");
        }
    }
}
