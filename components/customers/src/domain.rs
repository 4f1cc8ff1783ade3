//! The customer's fields as validated types. Each is a [`Field`] rule: its
//! `parse` checks one API.md rule once, and its schema documents the same
//! limits; handlers and the store only ever see values that passed. The
//! error strings are the messages shown to the client for the field.

use std::fmt;

use souk_sdk::{Describe, Field, Schema, Schemas};

/// Implements [`Field`] for a rule type whose `check` is an inherent
/// function from its input to itself.
macro_rules! field {
    ($name:ident, $input:ty) => {
        impl Field for $name {
            type Input = $input;
            type Output = $name;
            type Error = &'static str;

            fn parse(input: $input) -> Result<$name, &'static str> {
                $name::check(input)
            }
        }
    };
}

/// `^[A-Za-z0-9_]{3,32}$`, kept in the case it was registered with; unique
/// ignoring case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// The shortest and longest username.
    const LENGTH: (usize, usize) = (3, 32);

    /// Checks the username pattern.
    fn check(text: String) -> Result<Username, &'static str> {
        let valid_chars = text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        let (min, max) = Username::LENGTH;
        if valid_chars && (min..=max).contains(&text.len()) {
            Ok(Username(text))
        } else {
            Err("must be 3 to 32 characters: letters, digits or underscores")
        }
    }

    /// The username as registered.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

field!(Username, String);

impl Describe for Username {
    fn describe(_: &mut Schemas) -> Schema {
        let (min, max) = Username::LENGTH;
        Schema::string()
            .pattern(&format!("^[A-Za-z0-9_]{{{min},{max}}}$"))
            .doc("Unique ignoring case; kept in the case it was registered with.")
    }
}

/// 8..=128 characters with at least one letter and one digit. Never
/// printed: `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// The shortest and longest password, in characters.
    const LENGTH: (usize, usize) = (8, 128);

    /// Checks the password rules.
    fn check(text: String) -> Result<Password, &'static str> {
        let length = text.chars().count();
        let has_letter = text.chars().any(char::is_alphabetic);
        let has_digit = text.chars().any(|c| c.is_ascii_digit());
        let (min, max) = Password::LENGTH;
        if (min..=max).contains(&length) && has_letter && has_digit {
            Ok(Password(text))
        } else {
            Err("must be 8 to 128 characters with at least one letter and one digit")
        }
    }

    /// The password, to hand to the host's hasher only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

field!(Password, String);

impl Describe for Password {
    fn describe(_: &mut Schemas) -> Schema {
        let (min, max) = Password::LENGTH;
        Schema::string().length(min, max).write_only().doc(
            "8 to 128 characters with at least one letter and one digit. Stored only as an \
             Argon2id hash.",
        )
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

/// 1..=100 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullName(String);

impl FullName {
    /// The longest full name, in characters.
    const MAX_CHARS: usize = 100;

    /// Trims and checks the full name.
    fn check(text: String) -> Result<FullName, &'static str> {
        let trimmed = text.trim();
        if trimmed.chars().any(char::is_control) {
            return Err("must not contain control characters");
        }
        if (1..=FullName::MAX_CHARS).contains(&trimmed.chars().count()) {
            Ok(FullName(trimmed.to_owned()))
        } else {
            Err("must be 1 to 100 characters")
        }
    }

    /// The trimmed name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

field!(FullName, String);

impl Describe for FullName {
    fn describe(_: &mut Schemas) -> Schema {
        Schema::string()
            .length(1, FullName::MAX_CHARS)
            .doc("1 to 100 characters after trimming; no control characters.")
    }
}

/// 1..=200 characters after trimming; line breaks and tabs are allowed (an
/// address may span lines), other control characters are not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address(String);

impl Address {
    /// The longest address, in characters.
    const MAX_CHARS: usize = 200;

    /// Trims and checks the address.
    fn check(text: String) -> Result<Address, &'static str> {
        let trimmed = text.trim();
        if trimmed
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err("must not contain control characters other than newline and tab");
        }
        if (1..=Address::MAX_CHARS).contains(&trimmed.chars().count()) {
            Ok(Address(trimmed.to_owned()))
        } else {
            Err("must be 1 to 200 characters")
        }
    }

    /// The trimmed address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

field!(Address, String);

impl Describe for Address {
    fn describe(_: &mut Schemas) -> Schema {
        Schema::string().length(1, Address::MAX_CHARS).doc(
            "1 to 200 characters after trimming; newlines and tabs allowed, other control \
             characters not.",
        )
    }
}

/// An integer from 13 to 120. The JSON decoder has already refused `13.5`
/// and `"13"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Age(i64);

impl Age {
    /// The youngest and oldest age.
    const RANGE: (i64, i64) = (13, 120);

    /// Checks the range.
    fn check(years: i64) -> Result<Age, &'static str> {
        let (min, max) = Age::RANGE;
        if (min..=max).contains(&years) {
            Ok(Age(years))
        } else {
            Err("must be an integer from 13 to 120")
        }
    }

    /// The age in years.
    pub fn years(self) -> i64 {
        self.0
    }
}

field!(Age, i64);

impl Describe for Age {
    fn describe(_: &mut Schemas) -> Schema {
        let (min, max) = Age::RANGE;
        Schema::integer()
            .range(min, max)
            .doc("A whole number of years (not `13.5`, not `\"13\"`).")
    }
}

/// Declares a closed set of lower-case names, parsed ignoring case.
macro_rules! choice {
    ($(#[$doc:meta])* $name:ident, $message:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $(
                #[doc = concat!("`", $text, "`")]
                $variant,
            )+
        }

        impl $name {
            /// Parses a name, ignoring case.
            fn check(text: String) -> Result<$name, &'static str> {
                $(
                    if text.eq_ignore_ascii_case($text) {
                        return Ok($name::$variant);
                    }
                )+
                Err($message)
            }

            /// The lower-case name stored and returned.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        field!($name, String);

        impl Describe for $name {
            fn describe(_: &mut Schemas) -> Schema {
                Schema::one_of(&[$($text),+]).doc("Any case in, lower case out.")
            }
        }
    };
}

choice!(
    /// How the customer describes their gender.
    Gender, "must be one of: female, male, other, undisclosed", {
        Female => "female",
        Male => "male",
        Other => "other",
        Undisclosed => "undisclosed",
    }
);

choice!(
    /// The customer's marital status.
    MaritalStatus, "must be one of: single, married, divorced, widowed, undisclosed", {
        Single => "single",
        Married => "married",
        Divorced => "divorced",
        Widowed => "widowed",
        Undisclosed => "undisclosed",
    }
);

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use souk_sdk::field::disagreements;

    #[test]
    fn every_rule_agrees_with_its_schema() {
        for problems in [
            disagreements::<Username>(),
            disagreements::<Password>(),
            disagreements::<FullName>(),
            disagreements::<Address>(),
            disagreements::<Age>(),
            disagreements::<Gender>(),
            disagreements::<MaritalStatus>(),
        ] {
            assert_eq!(problems, Vec::<String>::new());
        }
    }

    #[test]
    fn usernames_follow_the_pattern() {
        for ok in ["abc", "Alice_01", "___", &"a".repeat(32)] {
            assert!(Username::parse(ok.to_owned()).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "",
            &"a".repeat(33),
            "al ice",
            "alice!",
            "alïce",
            "alice-b",
            "ａｂｃ",
        ] {
            assert!(Username::parse(bad.to_owned()).is_err(), "{bad}");
        }
    }

    #[test]
    fn usernames_keep_their_case() {
        assert_eq!(Username::parse("Alice".into()).unwrap().as_str(), "Alice");
    }

    #[test]
    fn passwords_need_length_a_letter_and_a_digit() {
        for ok in ["secret12", "Pässwört1", &format!("a1{}", "x".repeat(126))] {
            assert!(Password::parse(ok.to_owned()).is_ok(), "{ok}");
        }
        for bad in [
            "secret1",
            "password",
            "12345678",
            "",
            &format!("a1{}", "x".repeat(127)),
        ] {
            assert!(Password::parse(bad.to_owned()).is_err(), "{bad}");
        }
    }

    #[test]
    fn password_length_counts_characters_not_bytes() {
        // 8 characters, 15 bytes.
        assert!(Password::parse("ääääääa1".into()).is_ok());
        // 129 characters of which most are multi-byte.
        assert!(Password::parse(format!("1{}", "é".repeat(128))).is_err());
    }

    #[test]
    fn passwords_never_show_in_debug_output() {
        let password = Password::parse("secret123".into()).unwrap();
        assert!(!format!("{password:?}").contains("secret"));
    }

    #[test]
    fn full_names_are_trimmed_and_counted_in_characters() {
        assert_eq!(
            FullName::parse("  Ada Lovelace \n".into())
                .unwrap()
                .as_str(),
            "Ada Lovelace"
        );
        assert!(FullName::parse("é".repeat(100)).is_ok());
        assert!(FullName::parse("é".repeat(101)).is_err());
        assert!(FullName::parse("   ".into()).is_err());
        assert!(FullName::parse(String::new()).is_err());
        assert!(FullName::parse("Ada\u{0}Lovelace".into()).is_err());
        assert!(FullName::parse("Ada\nLovelace".into()).is_err());
    }

    #[test]
    fn addresses_are_trimmed_and_may_span_lines() {
        assert_eq!(
            Address::parse(" 1 Main St\nTown ".into()).unwrap().as_str(),
            "1 Main St\nTown"
        );
        assert!(Address::parse("x".repeat(200)).is_ok());
        assert!(Address::parse("x".repeat(201)).is_err());
        assert!(Address::parse(" \t ".into()).is_err());
        assert!(Address::parse("1 Main St\u{7}".into()).is_err());
    }

    #[test]
    fn ages_are_from_13_to_120() {
        assert_eq!(Age::parse(13).unwrap().years(), 13);
        assert_eq!(Age::parse(120).unwrap().years(), 120);
        for bad in [12, 121, 0, -13, i64::MAX] {
            assert!(Age::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn choices_are_case_insensitive_in_and_lower_case_out() {
        assert_eq!(Gender::parse("FeMaLe".into()).unwrap().as_str(), "female");
        assert_eq!(
            Gender::parse("undisclosed".into()).unwrap(),
            Gender::Undisclosed
        );
        assert!(Gender::parse("unknown".into()).is_err());
        assert!(Gender::parse(String::new()).is_err());
        assert_eq!(
            MaritalStatus::parse("WIDOWED".into()).unwrap().as_str(),
            "widowed"
        );
        assert!(MaritalStatus::parse("engaged".into()).is_err());
    }
}
