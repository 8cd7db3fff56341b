//! The pipeline's event schema: typed fields, declared in the TOML config.

use serde::{Deserialize, Serialize};

use super::same_str;

/// The string field the lake partitions by, when the schema declares it (after the UTC day of
/// `event_timestamp`).
pub const PARTITION_FIELD: &str = "event_type";

/// The type of a schema field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    /// A JSON string.
    String,
    /// A JSON number that is a whole number in the `i64` range.
    Int,
    /// A JSON number, as `f64`.
    Float,
    /// Exact decimal money with two places: a JSON number or a numeric string, held as cents.
    Money,
    /// `true` or `false`.
    Bool,
    /// An RFC 3339 timestamp string with any UTC offset, held as microseconds UTC.
    Timestamp,
}

impl FieldType {
    /// The name used in the config and in messages.
    pub fn name(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Int => "int",
            FieldType::Float => "float",
            FieldType::Money => "money",
            FieldType::Bool => "bool",
            FieldType::Timestamp => "timestamp",
        }
    }
}

/// One field of the schema.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// The JSON key.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub ty: FieldType,
    /// Whether a record without it (or with `null`) is a dead letter.
    #[serde(default)]
    pub required: bool,
}

/// An invalid schema.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SchemaError {
    /// No fields at all.
    #[error("the schema has no fields")]
    Empty,
    /// A field name used twice.
    #[error("field `{0}` is declared twice")]
    Duplicate(String),
    /// A name that is empty or reserved.
    #[error("field name `{0}` is reserved or empty (names starting with `_` are lambdaflow's own)")]
    Reserved(String),
}

/// The typed fields of an event. Keys not in the schema are kept, as raw JSON, in `_doc`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schema {
    /// The declared fields, in column order.
    pub fields: Vec<Field>,
}

impl Schema {
    /// Validates a list of fields.
    pub fn new(fields: Vec<Field>) -> Result<Self, SchemaError> {
        if fields.is_empty() {
            return Err(SchemaError::Empty);
        }
        for (i, f) in fields.iter().enumerate() {
            if f.name.is_empty() || f.name.starts_with('_') {
                return Err(SchemaError::Reserved(f.name.clone()));
            }
            if fields[..i].iter().any(|g| g.name == f.name) {
                return Err(SchemaError::Duplicate(f.name.clone()));
            }
        }
        Ok(Schema { fields })
    }

    /// The seeds' e-commerce event: `event_id`, `event_type`, `user_id`, `event_timestamp` and
    /// `country` required; `product` and `price` present where they belong (a `purchase` has
    /// both, a `login` neither); `source` (web/mobile), `session_id` and `page` optional.
    pub fn ecommerce() -> Self {
        let f = |name: &str, ty, required| Field {
            name: name.to_owned(),
            ty,
            required,
        };
        Schema {
            fields: vec![
                f("event_id", FieldType::String, true),
                f("event_type", FieldType::String, true),
                f("user_id", FieldType::String, true),
                f("event_timestamp", FieldType::Timestamp, true),
                f("product", FieldType::String, false),
                f("price", FieldType::Money, false),
                f("country", FieldType::String, true),
                f("source", FieldType::String, false),
                f("session_id", FieldType::String, false),
                f("page", FieldType::String, false),
            ],
        }
    }

    /// The position of the field called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| same_str(&f.name, name))
    }

    /// The string field the lake partitions by ([`PARTITION_FIELD`]), if the schema has it.
    pub fn partition_field(&self) -> Option<usize> {
        self.typed(PARTITION_FIELD, FieldType::String)
    }

    /// The field called `name`, if it has type `ty`.
    pub fn typed(&self, name: &str, ty: FieldType) -> Option<usize> {
        self.index_of(name).filter(|&i| self.fields[i].ty == ty)
    }
}

impl Default for Schema {
    fn default() -> Self {
        Schema::ecommerce()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_schemas_are_refused() {
        let f = |n: &str| Field {
            name: n.into(),
            ty: FieldType::String,
            required: false,
        };
        assert_eq!(Schema::new(vec![]), Err(SchemaError::Empty));
        assert_eq!(
            Schema::new(vec![f("a"), f("a")]),
            Err(SchemaError::Duplicate("a".into()))
        );
        assert_eq!(
            Schema::new(vec![f("_doc")]),
            Err(SchemaError::Reserved("_doc".into()))
        );
        assert!(Schema::new(Schema::ecommerce().fields).is_ok());
    }
}
