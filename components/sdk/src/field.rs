//! Field rules: a type that parses one request field (or parameter) and
//! describes the same rules as a schema, so the limits a handler enforces
//! and the limits the documentation states come from one place.
//!
//! ```ignore
//! pub struct GoodName(String);
//!
//! impl GoodName {
//!     const MAX_CHARS: usize = 100;
//! }
//!
//! impl Describe for GoodName {
//!     fn describe(_: &mut Schemas) -> Schema {
//!         Schema::string().length(1, GoodName::MAX_CHARS).doc("...")
//!     }
//! }
//!
//! impl Field for GoodName {
//!     type Input = String;
//!     type Output = GoodName;
//!     type Error = &'static str;
//!     fn parse(text: String) -> Result<GoodName, &'static str> { ... }
//! }
//! ```
//!
//! A handler reads the field with `form.required::<GoodName>("name")`, and
//! the route declares it with `.required::<GoodName>("name")` (see
//! [`crate::route`]); the router checks, in debug builds, that the two
//! agree. [`disagreements`] probes a rule's parser at the edges its schema
//! states (each length, bound and choice), which every component's
//! conformance tests run for every field its routes declare.

use std::convert::Infallible;
use std::fmt::Display;

use serde_json::Value;
use serde_json::value::RawValue;

use crate::form::FromJson;
use crate::money::{Cents, MoneyError};
use crate::schema::{Describe, Schema, Schemas};
use crate::wit::types::Role;

/// A request field's rule: how it is parsed, and (through [`Describe`])
/// how it is documented.
pub trait Field: Describe + 'static {
    /// What the JSON value is decoded into before the rule runs (`String`,
    /// `i64`, [`Cents`], ...).
    type Input: for<'a> FromJson<'a>;
    /// The value a handler gets.
    type Output;
    /// Why a value was refused; its text is the message for the field.
    type Error: Display;

    /// Applies the rule.
    fn parse(input: Self::Input) -> Result<Self::Output, Self::Error>;
}

/// Any string, as it was sent.
impl Field for String {
    type Input = String;
    type Output = String;
    type Error = Infallible;

    fn parse(input: String) -> Result<String, Infallible> {
        Ok(input)
    }
}

/// A role name, ignoring case (decoded by [`FromJson`]).
impl Field for Role {
    type Input = Role;
    type Output = Role;
    type Error = Infallible;

    fn parse(input: Role) -> Result<Role, Infallible> {
        Ok(input)
    }
}

/// An amount of money above zero: at most 1,000,000 dollars with at most 2
/// decimals (the decoder of [`Cents`] checks those) and more than 0.
#[derive(Debug)]
pub struct Positive;

impl Describe for Positive {
    fn describe(_: &mut Schemas) -> Schema {
        Cents::schema()
            .exclusive_minimum(0)
            .maximum(Cents::MAX_PER_OPERATION.0 / 100)
            .doc("Dollars: greater than 0, at most 1000000, at most 2 decimal places, a JSON number (not a string).")
    }
}

impl Field for Positive {
    type Input = Cents;
    type Output = Cents;
    type Error = MoneyError;

    fn parse(amount: Cents) -> Result<Cents, MoneyError> {
        amount.positive()
    }
}

/// Every way `T`'s parser disagrees with `T`'s schema at the edges the
/// schema states: a documented length, bound or choice that is refused, or
/// one step past it that is accepted. Empty when they agree.
///
/// Probing values are made from the schema alone: strings of `a1a1...`
/// (a letter and a digit, so common text rules pass), the integers at and
/// beyond each bound, and each listed choice. A rule stricter than its
/// schema in ways the schema does not state (a pattern, a trimmed length)
/// is not probed there.
pub fn disagreements<T: Field>() -> Vec<String> {
    let schema = T::describe(&mut Schemas::new()).into_value();
    let mut problems = Vec::new();
    let mut expect = |json: String, accepted: bool, why: &str| {
        let outcome = match RawValue::from_string(json.clone()) {
            Ok(raw) => <T::Input as FromJson<'_>>::from_json(&raw)
                .and_then(|input| T::parse(input).map(|_| ()).map_err(|e| e.to_string())),
            Err(error) => Err(error.to_string()),
        };
        if outcome.is_ok() != accepted {
            let shown: String = json.chars().take(40).collect();
            problems.push(format!(
                "{}: {shown} ({why}) is {}",
                std::any::type_name::<T>(),
                if accepted { "refused" } else { "accepted" }
            ));
        }
    };
    let number = |key: &str| schema.get(key).and_then(Value::as_i64);
    let text = |chars: i64| {
        let chars = usize::try_from(chars).unwrap_or_default();
        Value::String("a1".repeat(chars.div_ceil(2)).chars().take(chars).collect()).to_string()
    };
    if let Some(choices) = schema.get("enum").and_then(Value::as_array) {
        for choice in choices.iter().filter(|choice| !choice.is_null()) {
            expect(choice.to_string(), true, "a listed choice");
        }
        expect("\"not-one-of-them\"".into(), false, "not a listed choice");
    }
    let is_type = |name: &str| schema.get("type").and_then(Value::as_str) == Some(name);
    if is_type("string") && schema.get("pattern").is_none() {
        let min = number("minLength").unwrap_or(0);
        if let Some(max) = number("maxLength") {
            expect(text(max), true, "maxLength");
            expect(text(max + 1), false, "past maxLength");
        }
        if min > 0 {
            expect(text(min), true, "minLength");
            expect(text(min - 1), false, "short of minLength");
        }
    }
    if is_type("integer") {
        if let Some(min) = number("minimum") {
            expect(min.to_string(), true, "minimum");
            expect((min - 1).to_string(), false, "below minimum");
        }
        if let Some(max) = number("maximum") {
            expect(max.to_string(), true, "maximum");
            expect((max + 1).to_string(), false, "above maximum");
        }
    }
    if is_type("number") {
        if number("exclusiveMinimum") == Some(0) {
            expect("0.01".into(), true, "just above exclusiveMinimum");
            expect("0".into(), false, "exclusiveMinimum");
        }
        if let Some(max) = number("maximum") {
            expect(max.to_string(), true, "maximum");
            expect(format!("{max}.01"), false, "above maximum");
        }
    }
    problems
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Says 1..=3 characters, checks 1..=4.
    struct Loose;

    impl Describe for Loose {
        fn describe(_: &mut Schemas) -> Schema {
            Schema::string().length(1, 3)
        }
    }

    impl Field for Loose {
        type Input = String;
        type Output = String;
        type Error = &'static str;

        fn parse(text: String) -> Result<String, &'static str> {
            match text.chars().count() {
                1..=4 => Ok(text),
                _ => Err("must be 1 to 3 characters"),
            }
        }
    }

    #[test]
    fn agreeing_rules_have_no_disagreements() {
        assert_eq!(disagreements::<Positive>(), Vec::<String>::new());
        assert_eq!(disagreements::<Role>(), Vec::<String>::new());
        assert_eq!(disagreements::<String>(), Vec::<String>::new());
    }

    #[test]
    fn a_parser_looser_than_its_schema_is_caught() {
        let problems = disagreements::<Loose>();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("past maxLength"), "{problems:?}");
    }
}
