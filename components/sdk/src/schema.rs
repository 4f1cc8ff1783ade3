//! JSON Schemas (the OpenAPI 3.1 dialect) for what a component reads and
//! answers, so that its documentation is derived from its types instead of
//! written beside them.
//!
//! - [`Schema`]: one schema, built with small methods
//!   (`Schema::string().length(1, 100)`).
//! - [`Describe`]: a type that knows its schema. Response types derive it
//!   (`#[derive(Serialize, Describe)]`: every serialized field, its doc
//!   comment as its description); field rules ([`crate::field::Field`])
//!   implement it next to their parser, from the same constants.
//! - [`Schemas`]: the named schemas a fragment collects while routes are
//!   described; a type with a [`Describe::NAME`] is defined once under
//!   `components.schemas` and referenced everywhere else.
//!
//! The derive understands `#[serde(skip)]`, `#[serde(flatten)]` and
//! `#[serde(skip_serializing_if = ...)]` (not required), and two attributes
//! of its own: `#[describe(with = Type)]` takes a field's schema from
//! another type (typically the field rule its value passed, so the limits
//! come from one place) and `#[describe(schema = expr)]` from an
//! expression; on the struct, `#[describe(name = "X")]` renames it.
//! A field whose Rust type is an `Option` is nullable but still required,
//! since serde writes `null`.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::money::Cents;
use crate::wit::types::Role;

/// One JSON Schema.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Schema(Map<String, Value>);

impl Schema {
    /// A schema with exactly these keywords (`{"type": ...}` and so on).
    pub fn from_value(value: Value) -> Schema {
        match value {
            Value::Object(map) => Schema(map),
            _ => Schema::default(),
        }
    }

    fn typed(name: &str) -> Schema {
        Schema::from_value(json!({ "type": name }))
    }

    /// `{"type": "string"}`.
    pub fn string() -> Schema {
        Schema::typed("string")
    }

    /// `{"type": "integer"}`.
    pub fn integer() -> Schema {
        Schema::typed("integer")
    }

    /// `{"type": "number"}`.
    pub fn number() -> Schema {
        Schema::typed("number")
    }

    /// `{"type": "boolean"}`.
    pub fn boolean() -> Schema {
        Schema::typed("boolean")
    }

    /// An array of `items`.
    pub fn array(items: Schema) -> Schema {
        Schema::from_value(json!({ "type": "array", "items": items.0 }))
    }

    /// A reference to the schema `name` under `components.schemas`.
    pub fn reference(name: &str) -> Schema {
        Schema::from_value(json!({ "$ref": format!("#/components/schemas/{name}") }))
    }

    /// A string that is one of `values`.
    pub fn one_of(values: &[&str]) -> Schema {
        Schema::string().with("enum", json!(values))
    }

    /// This schema with keyword `key` set to `value`.
    #[must_use]
    pub fn with(mut self, key: &str, value: Value) -> Schema {
        self.0.insert(key.to_owned(), value);
        self
    }

    /// `description`.
    #[must_use]
    pub fn doc(self, text: &str) -> Schema {
        self.with("description", json!(text))
    }

    /// `minLength` and `maxLength`, in characters.
    #[must_use]
    pub fn length(self, min: usize, max: usize) -> Schema {
        self.min_length(min).max_length(max)
    }

    /// `minLength`, in characters.
    #[must_use]
    pub fn min_length(self, min: usize) -> Schema {
        self.with("minLength", json!(min))
    }

    /// `maxLength`, in characters.
    #[must_use]
    pub fn max_length(self, max: usize) -> Schema {
        self.with("maxLength", json!(max))
    }

    /// `pattern` (ECMA-262).
    #[must_use]
    pub fn pattern(self, pattern: &str) -> Schema {
        self.with("pattern", json!(pattern))
    }

    /// `format`, e.g. `date-time`.
    #[must_use]
    pub fn format(self, format: &str) -> Schema {
        self.with("format", json!(format))
    }

    /// `minimum` and `maximum`.
    #[must_use]
    pub fn range(self, min: i64, max: i64) -> Schema {
        self.minimum(min).maximum(max)
    }

    /// `minimum`.
    #[must_use]
    pub fn minimum(self, min: i64) -> Schema {
        self.with("minimum", json!(min))
    }

    /// `maximum`.
    #[must_use]
    pub fn maximum(self, max: i64) -> Schema {
        self.with("maximum", json!(max))
    }

    /// `exclusiveMinimum`.
    #[must_use]
    pub fn exclusive_minimum(self, min: i64) -> Schema {
        self.with("exclusiveMinimum", json!(min))
    }

    /// `default`.
    #[must_use]
    pub fn default_value(self, value: Value) -> Schema {
        self.with("default", value)
    }

    /// `writeOnly`: sent by clients, never returned (a password).
    #[must_use]
    pub fn write_only(self) -> Schema {
        self.with("writeOnly", json!(true))
    }

    /// The same schema, also allowing `null`.
    #[must_use]
    pub fn nullable(mut self) -> Schema {
        match self.0.get("type").cloned() {
            Some(Value::String(name)) => {
                self.0.insert("type".into(), json!([name, "null"]));
                if let Some(Value::Array(values)) = self.0.get_mut("enum") {
                    values.push(Value::Null);
                }
                self
            }
            Some(_) => self,
            None => Schema::from_value(json!({ "anyOf": [self.0, { "type": "null" }] })),
        }
    }

    /// The value of keyword `key`, if set.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// The schema as JSON.
    pub fn into_value(self) -> Value {
        Value::Object(self.0)
    }
}

/// An object schema being built property by property (what the derive
/// writes, and what request bodies are made of).
#[derive(Debug, Clone, Default)]
pub struct Object {
    properties: Map<String, Value>,
    required: Vec<String>,
}

impl Object {
    /// An object with no properties yet.
    pub fn new() -> Object {
        Object::default()
    }

    /// Adds property `name`; `required` when it is always present.
    pub fn property(&mut self, name: &str, schema: Schema, required: bool) {
        self.properties.insert(name.to_owned(), schema.into_value());
        if required {
            self.required.push(name.to_owned());
        }
    }

    /// Adds every property of `inner`, an object schema (serde's `flatten`).
    pub fn flatten(&mut self, inner: Schema) {
        if let Some(Value::Object(properties)) = inner.get("properties") {
            self.properties
                .extend(properties.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        if let Some(Value::Array(required)) = inner.get("required") {
            self.required
                .extend(required.iter().filter_map(Value::as_str).map(str::to_owned));
        }
    }

    /// The finished schema.
    pub fn into_schema(self) -> Schema {
        let mut schema = Schema::typed("object");
        if !self.required.is_empty() {
            schema = schema.with("required", json!(self.required));
        }
        schema.with("properties", Value::Object(self.properties))
    }
}

/// A type that knows its JSON Schema.
pub trait Describe {
    /// The name it is defined under in `components.schemas` and referenced
    /// by; `None` to inline it wherever it is used.
    const NAME: Option<&'static str> = None;

    /// The schema; named types it mentions are collected into `schemas`.
    fn describe(schemas: &mut Schemas) -> Schema;
}

/// The named schemas met while describing a component's routes.
#[derive(Debug, Clone, Default)]
pub struct Schemas {
    named: BTreeMap<String, Value>,
}

impl Schemas {
    /// No schemas yet.
    pub fn new() -> Schemas {
        Schemas::default()
    }

    /// The schema to use for `T` where it appears: a reference when `T`
    /// is named (defined here the first time), else `T`'s schema inline.
    pub fn of<T: Describe + ?Sized>(&mut self) -> Schema {
        match T::NAME {
            Some(name) => {
                if !self.named.contains_key(name) {
                    // A placeholder first, so a type that mentions itself
                    // refers to itself instead of recursing forever.
                    self.named.insert(name.to_owned(), Value::Null);
                    let schema = T::describe(self).into_value();
                    self.named.insert(name.to_owned(), schema);
                }
                Schema::reference(name)
            }
            None => T::describe(self),
        }
    }

    /// Defines `name` as `schema` (a request body, a page of a list) and
    /// returns a reference to it.
    pub fn define(&mut self, name: &str, schema: Schema) -> Schema {
        self.named.insert(name.to_owned(), schema.into_value());
        Schema::reference(name)
    }

    /// Every named schema, by name.
    pub fn into_map(self) -> Map<String, Value> {
        self.named.into_iter().collect()
    }
}

/// The schema of `T`: a function pointer for declarations that keep a
/// type's schema without keeping the type.
pub fn schema_of<T: Describe + ?Sized>(schemas: &mut Schemas) -> Schema {
    schemas.of::<T>()
}

impl Describe for String {
    fn describe(_: &mut Schemas) -> Schema {
        Schema::string()
    }
}

impl Describe for str {
    fn describe(_: &mut Schemas) -> Schema {
        Schema::string()
    }
}

impl Describe for bool {
    fn describe(_: &mut Schemas) -> Schema {
        Schema::boolean()
    }
}

impl Describe for f64 {
    fn describe(_: &mut Schemas) -> Schema {
        Schema::number()
    }
}

macro_rules! describe_integers {
    ($($signed:ty),* ; $($unsigned:ty),*) => {
        $(impl Describe for $signed {
            fn describe(_: &mut Schemas) -> Schema {
                Schema::integer()
            }
        })*
        $(impl Describe for $unsigned {
            fn describe(_: &mut Schemas) -> Schema {
                Schema::integer().minimum(0)
            }
        })*
    };
}

describe_integers!(i64, i32; u8, u32, u64);

/// `null` or `T`.
impl<T: Describe> Describe for Option<T> {
    fn describe(schemas: &mut Schemas) -> Schema {
        schemas.of::<T>().nullable()
    }
}

impl<T: Describe> Describe for Vec<T> {
    fn describe(schemas: &mut Schemas) -> Schema {
        Schema::array(schemas.of::<T>())
    }
}

impl<T: Describe> Describe for [T] {
    fn describe(schemas: &mut Schemas) -> Schema {
        Schema::array(schemas.of::<T>())
    }
}

impl<T: Describe + ?Sized> Describe for &T {
    const NAME: Option<&'static str> = T::NAME;

    fn describe(schemas: &mut Schemas) -> Schema {
        T::describe(schemas)
    }
}

impl Cents {
    /// An amount of money as the API writes it; callers add the bounds
    /// that apply (`.minimum(0)` for a balance).
    pub fn schema() -> Schema {
        Schema::number()
            .with("multipleOf", json!(0.01))
            .doc("Dollars as a JSON number with at most 2 decimal places.")
    }
}

impl Describe for Cents {
    fn describe(_: &mut Schemas) -> Schema {
        Cents::schema()
    }
}

impl Describe for Role {
    fn describe(_: &mut Schemas) -> Schema {
        Schema::one_of(&[Role::Customer.as_str(), Role::Admin.as_str()])
    }
}

/// An RFC 3339 UTC timestamp, as [`crate::now_rfc3339`] writes them:
/// `#[describe(with = Timestamp)]` on a `String` field.
#[derive(Debug)]
pub struct Timestamp;

impl Describe for Timestamp {
    fn describe(_: &mut Schemas) -> Schema {
        Schema::string().format("date-time")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    struct Node;

    impl Describe for Node {
        const NAME: Option<&'static str> = Some("Node");

        fn describe(schemas: &mut Schemas) -> Schema {
            let mut object = Object::new();
            object.property("next", schemas.of::<Option<Node>>(), true);
            object.property("label", schemas.of::<String>(), false);
            object.into_schema()
        }
    }

    #[test]
    fn named_types_are_defined_once_and_referenced() {
        let mut schemas = Schemas::new();
        let reference = schemas.of::<Vec<Node>>();
        assert_eq!(
            reference.into_value(),
            json!({"type": "array", "items": {"$ref": "#/components/schemas/Node"}})
        );
        let named = schemas.into_map();
        assert_eq!(
            named["Node"],
            json!({"type": "object", "required": ["next"], "properties": {
                "next": {"anyOf": [{"$ref": "#/components/schemas/Node"}, {"type": "null"}]},
                "label": {"type": "string"}}})
        );
    }

    #[test]
    fn nullable_keeps_the_type_and_the_enum() {
        let schema = Schema::one_of(&["a", "b"]).nullable().into_value();
        assert_eq!(
            schema,
            json!({"type": ["string", "null"], "enum": ["a", "b", null]})
        );
        let schema = Schema::integer().range(13, 120).nullable().into_value();
        assert_eq!(
            schema,
            json!({"type": ["integer", "null"], "minimum": 13, "maximum": 120})
        );
    }

    #[test]
    fn flattening_merges_properties_and_required() {
        let mut inner = Object::new();
        inner.property("a", Schema::integer(), true);
        let mut outer = Object::new();
        outer.flatten(inner.into_schema());
        outer.property("b", Schema::string().nullable(), true);
        assert_eq!(
            outer.into_schema().into_value(),
            json!({"type": "object", "required": ["a", "b"], "properties": {
                "a": {"type": "integer"}, "b": {"type": ["string", "null"]}}})
        );
    }
}
