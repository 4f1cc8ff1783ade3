//! Reading a JSON object body field by field, so that one response names
//! every bad field, not only the first.
//!
//! ```ignore
//! let mut form = ctx.form()?;
//! let username = form.required::<Username>("username");
//! let age = form.optional::<Age>("age");
//! let amount = form.required::<Positive>("amount");
//! let (username, age, amount) = form.finish((username, age, amount))?;
//! // username: Username, age: Option<Age>, amount: Cents
//! ```
//!
//! Each `required`/`optional` call takes the field out of the body, decodes
//! its JSON with [`FromJson`] (the rule's [`Field::Input`] picks it: a
//! `String`, an `i64`, [`Cents`], ...) and runs the rule ([`Field`]); a
//! failure is recorded against the field's name instead of returned. The
//! result is a [`Pending`] value that only [`Form::finish`] can open: it
//! fails with `invalid-input` listing every recorded problem plus every
//! field nobody asked for ("unknown field"), and otherwise returns the
//! plain values. So handlers never unwrap, and never forget a field.
//!
//! Rules are types implementing [`Field`], the same types a route's
//! declaration names for its body, so the limits enforced here are the
//! ones documented. A form made by [`Context::form`](crate::Context::form)
//! notes each field it was asked for, for the router's check that the
//! handler reads the body its route declares.
//! `null` is not the same as an absent field: it is a type error unless the
//! rule's input is an `Option<_>`.
//!
//! A field whose value holds text no database can store (NUL, anywhere in
//! it: see [`crate::text`]) is rejected when the body is read, before any
//! parser sees it, so no handler can forget the check.

use std::any::TypeId;
use std::cell::RefCell;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::error::{Error, Result};
use crate::field::Field;
use crate::money::Cents;
use crate::text;
use crate::wit::types::{FieldError, Role};

/// A JSON object body being validated. Obtain one from
/// [`Context::form`](crate::Context::form).
#[derive(Debug)]
pub struct Form<'a> {
    /// Fields in body order; `taken` marks those a handler asked for.
    entries: Vec<Entry<'a>>,
    /// Problems found so far, reported together by [`Form::finish`].
    errors: Vec<FieldError>,
    /// Where the fields asked for are noted, when the form belongs to a
    /// request (see [`FieldUse`]).
    uses: Option<&'a RefCell<Vec<FieldUse>>>,
}

/// A body field a handler asked for, and how: what the router compares
/// with the route's declared body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldUse {
    /// The field's name.
    pub name: String,
    /// The rule it was read with.
    pub rule: TypeId,
    /// `required` rather than `optional`.
    pub required: bool,
}

#[derive(Debug)]
struct Entry<'a> {
    name: String,
    value: &'a RawValue,
    taken: bool,
    /// Already reported (text no database can store): never decoded.
    rejected: bool,
}

/// A field's value once the form has been checked as a whole; open it with
/// [`Form::finish`].
#[derive(Debug)]
#[must_use = "pass it to Form::finish"]
pub struct Pending<T>(Option<T>);

impl<'a> Form<'a> {
    /// Parses `body` as a JSON object. Not valid JSON or not an object is a
    /// `bad-request`; a key given twice is recorded as a field error.
    ///
    /// Checking the content type is [`Context::form`](crate::Context::form)'s job.
    pub fn from_body(body: &'a [u8]) -> Result<Form<'a>> {
        let text = std::str::from_utf8(body)
            .map_err(|_| Error::bad_request("the request body is not UTF-8"))?;
        let raw: &RawValue = serde_json::from_str(text)
            .map_err(|e| Error::bad_request(format!("the request body is not valid JSON: {e}")))?;
        if !raw.get().trim_start().starts_with('{') {
            return Err(Error::bad_request("the request body must be a JSON object"));
        }
        let Entries(pairs) = serde_json::from_str(raw.get())
            .map_err(|e| Error::bad_request(format!("the request body is not valid JSON: {e}")))?;
        let mut form = Form {
            entries: Vec::with_capacity(pairs.len()),
            errors: Vec::new(),
            uses: None,
        };
        for (name, value) in pairs {
            if form.entries.iter().any(|entry| entry.name == name) {
                if !form.errors.iter().any(|error| error.field == name) {
                    form.errors
                        .push(FieldError::new(name, "is given more than once"));
                }
                continue;
            }
            let problem = if !text::is_storable(&name) {
                Some(text::NUL_MESSAGE)
            } else {
                match serde_json::from_str::<serde_json::Value>(value.get()) {
                    Ok(value) if text::is_storable_json(&value) => None,
                    Ok(_) => Some(text::NUL_MESSAGE),
                    // E.g. an escaped lone surrogate (`"\ud800"`): no
                    // Unicode text, so no parser could accept it either.
                    Err(_) => Some("must be valid Unicode text"),
                }
            };
            let storable = problem.is_none();
            if let Some(message) = problem {
                form.errors.push(FieldError::new(name.clone(), message));
            }
            form.entries.push(Entry {
                name,
                value,
                // A rejected field is reported once, not also as unknown.
                taken: !storable,
                rejected: !storable,
            });
        }
        Ok(form)
    }

    /// The same form, noting each field asked for in `uses`.
    pub(crate) fn noting(mut self, uses: &'a RefCell<Vec<FieldUse>>) -> Form<'a> {
        self.uses = Some(uses);
        self
    }

    /// Whether the body has a field called `name` (whatever its value).
    pub fn contains(&self, name: &str) -> bool {
        self.entries.iter().any(|entry| entry.name == name)
    }

    /// Whether the body is `{}`.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The field names in body order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|entry| entry.name.as_str())
    }

    /// A field that must be present, read with rule `T`.
    pub fn required<T: Field>(&mut self, name: &str) -> Pending<T::Output> {
        self.note::<T>(name, true);
        match self.take(name) {
            Some(Ok(raw)) => Pending(self.decode::<T>(name, raw)),
            Some(Err(Rejected)) => Pending(None),
            None => {
                self.error(name, "is required");
                Pending(None)
            }
        }
    }

    /// A field that may be absent (giving `None`), read with rule `T` when
    /// present.
    pub fn optional<T: Field>(&mut self, name: &str) -> Pending<Option<T::Output>> {
        self.note::<T>(name, false);
        match self.take(name) {
            Some(Ok(raw)) => Pending(self.decode::<T>(name, raw).map(Some)),
            Some(Err(Rejected)) => Pending(None),
            None => Pending(Some(None)),
        }
    }

    fn note<T: Field>(&self, name: &str, required: bool) {
        if let Some(uses) = self.uses {
            uses.borrow_mut().push(FieldUse {
                name: name.to_owned(),
                rule: TypeId::of::<T>(),
                required,
            });
        }
    }

    /// Records `message` against `name` if the body has that field, e.g.
    /// `form.reject("username", "cannot be changed")`. Without this, an
    /// unexpected field is reported as "unknown field".
    pub fn reject(&mut self, name: &str, message: &str) {
        if let Some(Ok(_)) = self.take(name) {
            self.error(name, message);
        }
    }

    /// Records a problem found outside a single parser (e.g. two fields that
    /// contradict each other).
    pub fn error(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// Whether any problem has been recorded so far.
    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// Checks the form as a whole: `invalid-input` with every recorded
    /// problem and every field no one asked for, or else the values of
    /// `pending` (one [`Pending`] or a tuple of them) without the wrappers.
    pub fn finish<P: Pendings>(mut self, pending: P) -> Result<P::Output> {
        for entry in &self.entries {
            if !entry.taken {
                self.errors
                    .push(FieldError::new(entry.name.clone(), "unknown field"));
            }
        }
        if !self.errors.is_empty() {
            return Err(Error::invalid_fields(self.errors));
        }
        // Every empty `Pending` recorded an error, so this is only reached
        // with a `Pending` from another form: a bug in the handler.
        pending
            .resolve()
            .ok_or_else(|| Error::internal("form values were read from another form"))
    }

    /// Marks the field `name` as asked for: its raw value, or `Rejected`
    /// when its problem is already recorded.
    fn take(&mut self, name: &str) -> Option<Result<&'a RawValue, Rejected>> {
        let entry = self.entries.iter_mut().find(|entry| entry.name == name)?;
        entry.taken = true;
        Some(if entry.rejected {
            Err(Rejected)
        } else {
            Ok(entry.value)
        })
    }

    fn decode<T: Field>(&mut self, name: &str, raw: &'a RawValue) -> Option<T::Output> {
        let outcome = <T::Input as FromJson<'_>>::from_json(raw)
            .and_then(|input| T::parse(input).map_err(|e| e.to_string()));
        match outcome {
            Ok(value) => Some(value),
            Err(message) => {
                self.error(name, message);
                None
            }
        }
    }
}

/// A field whose problem was recorded when the body was read.
struct Rejected;

/// The field values of a form: a [`Pending`] or a tuple of up to twelve.
pub trait Pendings {
    /// The plain values.
    type Output;

    /// The plain values, if every one is present.
    fn resolve(self) -> Option<Self::Output>;
}

impl<T> Pendings for Pending<T> {
    type Output = T;

    fn resolve(self) -> Option<T> {
        self.0
    }
}

impl Pendings for () {
    type Output = ();

    fn resolve(self) -> Option<()> {
        Some(())
    }
}

macro_rules! tuple_pendings {
    ($($name:ident)+) => {
        impl<$($name),+> Pendings for ($(Pending<$name>,)+) {
            type Output = ($($name,)+);

            #[allow(non_snake_case)]
            fn resolve(self) -> Option<Self::Output> {
                let ($($name,)+) = self;
                Some(($($name.0?,)+))
            }
        }
    };
}

tuple_pendings!(A);
tuple_pendings!(A B);
tuple_pendings!(A B C);
tuple_pendings!(A B C D);
tuple_pendings!(A B C D E);
tuple_pendings!(A B C D E F);
tuple_pendings!(A B C D E F G);
tuple_pendings!(A B C D E F G H);
tuple_pendings!(A B C D E F G H I);
tuple_pendings!(A B C D E F G H I J);
tuple_pendings!(A B C D E F G H I J K);
tuple_pendings!(A B C D E F G H I J K L);

/// Decoding one JSON field value into a Rust value, strictly: a number is
/// not a string, `13.5` and `"13"` are not integers. The error is the message
/// shown for the field.
pub trait FromJson<'a>: Sized {
    /// Decodes the raw JSON text of one field.
    fn from_json(raw: &'a RawValue) -> Result<Self, String>;
}

fn strict<'a, T: Deserialize<'a>>(raw: &'a RawValue, message: &str) -> Result<T, String> {
    serde_json::from_str(raw.get()).map_err(|_| message.to_owned())
}

impl<'a> FromJson<'a> for String {
    fn from_json(raw: &'a RawValue) -> Result<Self, String> {
        strict(raw, "must be a string")
    }
}

impl<'a> FromJson<'a> for i64 {
    fn from_json(raw: &'a RawValue) -> Result<Self, String> {
        strict(raw, "must be an integer")
    }
}

impl<'a> FromJson<'a> for i32 {
    fn from_json(raw: &'a RawValue) -> Result<Self, String> {
        let value = i64::from_json(raw)?;
        i32::try_from(value).map_err(|_| "is out of range".to_owned())
    }
}

impl<'a> FromJson<'a> for u32 {
    fn from_json(raw: &'a RawValue) -> Result<Self, String> {
        let value = i64::from_json(raw)?;
        u32::try_from(value).map_err(|_| "must be a non-negative integer".to_owned())
    }
}

impl<'a> FromJson<'a> for bool {
    fn from_json(raw: &'a RawValue) -> Result<Self, String> {
        strict(raw, "must be true or false")
    }
}

/// Money: exactly the digits the client sent (see [`Cents::from_json_number`]).
impl<'a> FromJson<'a> for Cents {
    fn from_json(raw: &'a RawValue) -> Result<Self, String> {
        Cents::from_json_number(raw.get()).map_err(|e| e.to_string())
    }
}

/// A role name, ignoring case.
impl<'a> FromJson<'a> for Role {
    fn from_json(raw: &'a RawValue) -> Result<Self, String> {
        const MESSAGE: &str = "must be one of: customer, admin";
        let name: String = strict(raw, MESSAGE)?;
        Role::from_name(&name).ok_or_else(|| MESSAGE.to_owned())
    }
}

/// `null` becomes `None`; anything else decodes as `T`.
impl<'a, T: FromJson<'a>> FromJson<'a> for Option<T> {
    fn from_json(raw: &'a RawValue) -> Result<Self, String> {
        if raw.get().trim() == "null" {
            Ok(None)
        } else {
            T::from_json(raw).map(Some)
        }
    }
}

/// An array; the message names the first bad item.
impl<'a, T: FromJson<'a>> FromJson<'a> for Vec<T> {
    fn from_json(raw: &'a RawValue) -> Result<Self, String> {
        let items: Vec<&'a RawValue> = strict(raw, "must be an array")?;
        items
            .into_iter()
            .enumerate()
            .map(|(index, item)| T::from_json(item).map_err(|e| format!("item {index} {e}")))
            .collect()
    }
}

/// Any JSON value, for fields the component interprets itself.
impl<'a> FromJson<'a> for serde_json::Value {
    fn from_json(raw: &'a RawValue) -> Result<Self, String> {
        strict(raw, "must be JSON")
    }
}

/// The raw JSON text, untouched.
impl<'a> FromJson<'a> for &'a RawValue {
    fn from_json(raw: &'a RawValue) -> Result<Self, String> {
        Ok(raw)
    }
}

/// The members of a JSON object in body order, duplicates kept (serde's
/// maps would silently keep only the last one).
struct Entries<'a>(Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for Entries<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;

        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = Entries<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = map.next_entry::<String, &'de RawValue>()? {
                    pairs.push(pair);
                }
                Ok(Entries(pairs))
            }
        }

        deserializer.deserialize_map(EntriesVisitor)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::field::Positive;
    use crate::schema::{Describe, Schema, Schemas};

    fn form(body: &str) -> Form<'_> {
        Form::from_body(body.as_bytes()).unwrap()
    }

    fn fields(error: Error) -> Vec<(String, String)> {
        match error {
            Error::InvalidInput(errors) => {
                errors.into_iter().map(|e| (e.field, e.message)).collect()
            }
            other => panic!("expected invalid-input, got {other:?}"),
        }
    }

    /// A field taken as decoded, for these tests.
    struct Any<T>(std::marker::PhantomData<T>);

    impl<T> Describe for Any<T> {
        fn describe(_: &mut Schemas) -> Schema {
            Schema::default()
        }
    }

    impl<T: for<'a> FromJson<'a> + 'static> Field for Any<T> {
        type Input = T;
        type Output = T;
        type Error = std::convert::Infallible;

        fn parse(value: T) -> Result<T, Self::Error> {
            Ok(value)
        }
    }

    struct Age;

    impl Describe for Age {
        fn describe(_: &mut Schemas) -> Schema {
            Schema::integer().range(13, 120)
        }
    }

    impl Field for Age {
        type Input = i64;
        type Output = i64;
        type Error = String;

        fn parse(value: i64) -> Result<i64, String> {
            if (13..=120).contains(&value) {
                Ok(value)
            } else {
                Err("must be from 13 to 120".into())
            }
        }
    }

    struct Name;

    impl Describe for Name {
        fn describe(_: &mut Schemas) -> Schema {
            Schema::string().min_length(1)
        }
    }

    impl Field for Name {
        type Input = String;
        type Output = String;
        type Error = &'static str;

        fn parse(value: String) -> Result<String, &'static str> {
            if value.trim().is_empty() {
                Err("must not be empty")
            } else {
                Ok(value.trim().to_owned())
            }
        }
    }

    #[test]
    fn valid_fields_come_out_as_plain_values() {
        let mut form = form(r#"{"name": " Ada ", "age": 36, "amount": 12.5}"#);
        let n = form.required::<Name>("name");
        let a = form.optional::<Age>("age");
        let m = form.required::<Positive>("amount");
        let nick = form.optional::<Any<String>>("nick");
        let (n, a, m, nick) = form.finish((n, a, m, nick)).unwrap();
        assert_eq!(n, "Ada");
        assert_eq!(a, Some(36));
        assert_eq!(m, Cents(1250));
        assert_eq!(nick, None);
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let mut form = form(r#"{"age": 13.5, "amount": "12.5", "colour": "red", "name": "  "}"#);
        let n = form.required::<Name>("name");
        let a = form.required::<Age>("age");
        let m = form.required::<Positive>("amount");
        let missing = form.required::<Any<String>>("password");
        let error = form.finish((n, a, m, missing)).unwrap_err();
        assert_eq!(
            fields(error),
            vec![
                ("name".into(), "must not be empty".into()),
                ("age".into(), "must be an integer".into()),
                (
                    "amount".into(),
                    "must be a JSON number of dollars, e.g. 12.5".into()
                ),
                ("password".into(), "is required".into()),
                ("colour".into(), "unknown field".into()),
            ]
        );
    }

    #[test]
    fn integers_are_strict() {
        for (body, ok) in [
            (r#"{"n": 13}"#, true),
            (r#"{"n": -4}"#, true),
            (r#"{"n": 13.0}"#, false),
            (r#"{"n": 1.3e1}"#, false),
            (r#"{"n": "13"}"#, false),
            (r#"{"n": null}"#, false),
            (r#"{"n": true}"#, false),
            (r#"{"n": 99999999999999999999}"#, false),
        ] {
            let mut form = form(body);
            let n = form.required::<Any<i64>>("n");
            assert_eq!(form.finish(n).is_ok(), ok, "{body}");
        }
    }

    #[test]
    fn strings_are_not_numbers_and_numbers_are_not_strings() {
        let mut f = form(r#"{"s": 5, "t": "x"}"#);
        let s = f.required::<Any<String>>("s");
        let t = f.required::<Any<i64>>("t");
        assert_eq!(
            fields(f.finish((s, t)).unwrap_err()),
            vec![
                ("s".into(), "must be a string".into()),
                ("t".into(), "must be an integer".into())
            ]
        );
    }

    #[test]
    fn null_is_a_type_error_unless_the_input_is_an_option() {
        let mut f = form(r#"{"a": null, "b": null, "c": 3}"#);
        let a = f.optional::<Any<i64>>("a");
        let b = f.optional::<Any<Option<i64>>>("b");
        let c = f.optional::<Any<Option<i64>>>("c");
        assert_eq!(
            fields(f.finish((a, b, c)).unwrap_err()),
            vec![("a".into(), "must be an integer".into())]
        );

        let mut f = form(r#"{"b": null, "c": 3}"#);
        let b = f.optional::<Any<Option<i64>>>("b");
        let c = f.optional::<Any<Option<i64>>>("c");
        assert_eq!(f.finish((b, c)).unwrap(), (Some(None), Some(Some(3))));
    }

    #[test]
    fn rejected_fields_get_their_own_message() {
        let mut f = form(r#"{"username": "bob", "age": 20}"#);
        f.reject("username", "cannot be changed");
        f.reject("role", "never reported when absent");
        let a = f.optional::<Age>("age");
        assert_eq!(
            fields(f.finish(a).unwrap_err()),
            vec![("username".into(), "cannot be changed".into())]
        );
    }

    #[test]
    fn duplicate_keys_are_reported_once() {
        let mut f = form(r#"{"a": 1, "a": 2, "a": 3}"#);
        let a = f.required::<Any<i64>>("a");
        assert_eq!(
            fields(f.finish(a).unwrap_err()),
            vec![("a".into(), "is given more than once".into())]
        );
    }

    #[test]
    fn an_empty_object_is_empty_and_unknown_fields_are_errors() {
        let f = form("{}");
        assert!(f.is_empty());
        assert_eq!(f.finish(()).unwrap(), ());

        let f = form(r#"{"x": 1}"#);
        assert!(!f.is_empty());
        assert!(f.contains("x"));
        assert_eq!(f.names().collect::<Vec<_>>(), vec!["x"]);
        assert_eq!(
            fields(f.finish(()).unwrap_err()),
            vec![("x".into(), "unknown field".into())]
        );
    }

    #[test]
    fn bodies_that_are_not_json_objects_are_bad_requests() {
        for body in [
            "",
            "{",
            "[1, 2]",
            "\"text\"",
            "12",
            "null",
            "{\"a\": 1} trailing",
            "{'a': 1}",
        ] {
            let error = Form::from_body(body.as_bytes()).unwrap_err();
            assert!(matches!(error, Error::BadRequest(_)), "{body}: {error:?}");
        }
        let error = Form::from_body(&[0xff, 0xfe]).unwrap_err();
        assert!(matches!(error, Error::BadRequest(_)));
    }

    #[test]
    fn escaped_keys_and_nested_values_are_handled() {
        let mut f = form(r#"{"a\u0062": {"x": [1, 2]}, "tags": ["a", "b"]}"#);
        let ab = f.required::<Any<serde_json::Value>>("ab");
        let tags = f.required::<Any<Vec<String>>>("tags");
        let (ab, tags) = f.finish((ab, tags)).unwrap();
        assert_eq!(ab, serde_json::json!({"x": [1, 2]}));
        assert_eq!(tags, vec!["a", "b"]);
    }

    #[test]
    fn money_is_validated_from_the_raw_text() {
        for (body, expected) in [
            (r#"{"m": 0.99}"#, Ok(Cents(99))),
            (r#"{"m": 1e2}"#, Ok(Cents(10_000))),
            (
                r#"{"m": 12.345}"#,
                Err("must have at most 2 decimal places"),
            ),
            (r#"{"m": 0}"#, Err("must be greater than 0")),
            (r#"{"m": -1}"#, Err("must be greater than 0")),
            (
                r#"{"m": 1000000.01}"#,
                Err("must be at most 1000000 in absolute value"),
            ),
            (
                r#"{"m": "5"}"#,
                Err("must be a JSON number of dollars, e.g. 12.5"),
            ),
        ] {
            let mut f = form(body);
            let m = f.required::<Positive>("m");
            let outcome = f.finish(m).map_err(|e| fields(e).remove(0).1);
            assert_eq!(outcome, expected.map_err(String::from), "{body}");
        }
    }

    #[test]
    fn roles_are_read_ignoring_case() {
        let mut f = form(r#"{"a": "Admin", "b": "customer", "c": "root"}"#);
        let a = f.required::<Any<Role>>("a");
        let b = f.required::<Any<Role>>("b");
        let c = f.required::<Any<Role>>("c");
        assert_eq!(
            fields(f.finish((a, b, c)).unwrap_err()),
            vec![("c".into(), "must be one of: customer, admin".into())]
        );
    }

    #[test]
    fn text_no_database_can_store_is_rejected_once_per_field() {
        let mut f = form(
            r#"{"name": "a\u0000b", "tags": ["ok", "\u0000"], "meta": {"k\u0000": 1}, "ok": "fine", "x\u0000": 1}"#,
        );
        let name = f.required::<Name>("name");
        let tags = f.optional::<Any<Vec<String>>>("tags");
        let meta = f.optional::<Any<serde_json::Value>>("meta");
        let ok = f.required::<Any<String>>("ok");
        f.reject("name", "never reported twice");
        let error = f.finish((name, tags, meta, ok)).unwrap_err();
        let nul = text::NUL_MESSAGE.to_owned();
        assert_eq!(
            fields(error),
            vec![
                ("name".into(), nul.clone()),
                ("tags".into(), nul.clone()),
                ("meta".into(), nul.clone()),
                ("x\0".into(), nul),
            ]
        );
    }

    #[test]
    fn an_escaped_backslash_before_u0000_is_not_nul() {
        let mut f = form(r#"{"s": "\\u0000"}"#);
        let s = f.required::<Any<String>>("s");
        assert_eq!(f.finish(s).unwrap(), "\\u0000");
    }

    #[test]
    fn lone_surrogates_are_not_text() {
        let mut f = form(r#"{"s": "\ud800"}"#);
        let s = f.required::<Any<String>>("s");
        assert_eq!(
            fields(f.finish(s).unwrap_err()),
            vec![("s".into(), "must be valid Unicode text".into())]
        );
    }

    #[test]
    fn pending_values_from_another_form_are_an_internal_error() {
        let mut other = form("{}");
        let stray = other.required::<Any<i64>>("x");
        let f = form("{}");
        assert!(matches!(f.finish(stray), Err(Error::Internal(_))));
    }
}
