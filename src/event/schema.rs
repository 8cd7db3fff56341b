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
    /// Where it is in the record: keys separated by dots (`shipping.country`) for a field of a
    /// nested object; its name when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The kinds of event (values of the schema's `kind` field) for which it is required.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_for: Vec<String>,
}

impl Field {
    /// A top-level field.
    pub fn new(name: &str, ty: FieldType, required: bool) -> Self {
        Field {
            name: name.to_owned(),
            ty,
            required,
            path: None,
            required_for: Vec::new(),
        }
    }

    /// The keys leading to it in a record, outermost first.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.path.as_deref().unwrap_or(&self.name).split('.')
    }

    /// Whether it is inside a nested object.
    pub fn nested(&self) -> bool {
        self.path.as_deref().is_some_and(|p| p.contains('.'))
    }
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
    /// A name with a dot.
    #[error(
        "field name `{0}` has a dot: name the column plainly and give the nested keys as `path`"
    )]
    Dotted(String),
    /// A path with an empty key.
    #[error("field `{0}`: path `{1}` has an empty key")]
    BadPath(String, String),
    /// Two fields read from the same place.
    #[error("fields `{0}` and `{1}` read the same key")]
    SamePath(String, String),
    /// `event_time` or `kind` names no field of the right type.
    #[error("`{0} = \"{1}\"` must name a {2} field of the schema")]
    Role(&'static str, String, &'static str),
    /// A `partition_by` the lake cannot use.
    #[error("lake partition_by [{0}]: {1}")]
    Partition(String, String),
    /// `required_for` without a `kind` field.
    #[error("field `{0}` has `required_for` but the schema names no `kind` field")]
    NoKind(String),
}

/// The typed fields of an event. Keys not in the schema are kept, as raw JSON, in `_doc`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schema {
    /// The declared fields, in column order.
    pub fields: Vec<Field>,
    /// The timestamp field the lake partitions by day (`event_date`); `event_timestamp` when
    /// `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time: Option<String>,
    /// The string field that tells kinds of event apart (for `required_for`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The lake's partition columns, outermost first (`[lake] partition_by`): `event_date` (the
    /// UTC day of the event time) and at most one string field. `None`: `event_date` and
    /// `event_type` where the schema has them.
    #[serde(skip)]
    pub partition_by: Option<Vec<String>>,
}

/// The partition column of the UTC day of the event time.
pub const DATE_PARTITION: &str = "event_date";

impl Schema {
    /// Validates a list of fields (with the default event time and no kind field).
    pub fn new(fields: Vec<Field>) -> Result<Self, SchemaError> {
        Schema {
            fields,
            event_time: None,
            kind: None,
            partition_by: None,
        }
        .validated()
    }

    /// The schema, if it is valid.
    pub fn validated(self) -> Result<Self, SchemaError> {
        let fields = &self.fields;
        if fields.is_empty() {
            return Err(SchemaError::Empty);
        }
        for (i, f) in fields.iter().enumerate() {
            if f.name.is_empty() || f.name.starts_with('_') {
                return Err(SchemaError::Reserved(f.name.clone()));
            }
            if f.name.contains('.') {
                return Err(SchemaError::Dotted(f.name.clone()));
            }
            if fields[..i].iter().any(|g| g.name == f.name) {
                return Err(SchemaError::Duplicate(f.name.clone()));
            }
            if let Some(path) = &f.path
                && path.split('.').any(str::is_empty)
            {
                return Err(SchemaError::BadPath(f.name.clone(), path.clone()));
            }
            if let Some(g) = fields[..i].iter().find(|g| g.keys().eq(f.keys())) {
                return Err(SchemaError::SamePath(g.name.clone(), f.name.clone()));
            }
            if !f.required_for.is_empty() && self.kind.is_none() {
                return Err(SchemaError::NoKind(f.name.clone()));
            }
        }
        if let Some(t) = &self.event_time
            && self.typed(t, FieldType::Timestamp).is_none()
        {
            return Err(SchemaError::Role("event_time", t.clone(), "timestamp"));
        }
        if let Some(k) = &self.kind
            && self.typed(k, FieldType::String).is_none()
        {
            return Err(SchemaError::Role("kind", k.clone(), "string"));
        }
        if let Some(list) = &self.partition_by {
            let strings: Vec<&String> = list.iter().filter(|p| *p != DATE_PARTITION).collect();
            let bad = |why: &str| Err(SchemaError::Partition(list.join(", "), why.to_owned()));
            if list.iter().any(|p| p == DATE_PARTITION) && self.event_time_field().is_none() {
                return bad("event_date needs the event-time field, a timestamp");
            }
            if strings.len() > 1 {
                return bad("at most one string field besides event_date");
            }
            if list.len() == 2 && list[0] != DATE_PARTITION {
                return bad("event_date comes first");
            }
            if let Some(f) = strings.first()
                && self.typed(f, FieldType::String).is_none()
            {
                return bad(&format!("`{f}` is not a string field of the schema"));
            }
            if list.len() == 2 && list[0] == list[1] {
                return bad("a column is named twice");
            }
        }
        Ok(self)
    }

    /// The timestamp field of event time, if the schema has it.
    pub fn event_time_field(&self) -> Option<usize> {
        self.typed(
            self.event_time.as_deref().unwrap_or("event_timestamp"),
            FieldType::Timestamp,
        )
    }

    /// The string field that tells kinds of event apart, if the schema names one.
    pub fn kind_field(&self) -> Option<usize> {
        self.kind
            .as_deref()
            .and_then(|k| self.typed(k, FieldType::String))
    }

    /// The seeds' e-commerce event: `event_id`, `event_type`, `user_id`, `event_timestamp` and
    /// `country` required; `product` and `price` present where they belong (a `purchase` has
    /// both, a `login` neither); `source` (web/mobile), `session_id` and `page` optional.
    pub fn ecommerce() -> Self {
        let f = Field::new;
        Schema {
            event_time: None,
            kind: None,
            partition_by: None,
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

    /// The string field the lake partitions by (`partition_by`'s, else [`PARTITION_FIELD`]),
    /// if the schema has it.
    pub fn partition_field(&self) -> Option<usize> {
        match &self.partition_by {
            Some(list) => list
                .iter()
                .find(|p| *p != DATE_PARTITION)
                .and_then(|p| self.typed(p, FieldType::String)),
            None => self.typed(PARTITION_FIELD, FieldType::String),
        }
    }

    /// The timestamp field the lake partitions by day, if it does.
    pub fn date_partition_field(&self) -> Option<usize> {
        let by_date = self
            .partition_by
            .as_ref()
            .is_none_or(|list| list.iter().any(|p| p == DATE_PARTITION));
        self.event_time_field().filter(|_| by_date)
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
        let f = |n: &str| Field::new(n, FieldType::String, false);
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
        assert_eq!(
            Schema::new(vec![f("a.b")]),
            Err(SchemaError::Dotted("a.b".into()))
        );
        let mut nested = f("city");
        nested.path = Some("shipping..city".into());
        assert!(matches!(
            Schema::new(vec![nested.clone()]),
            Err(SchemaError::BadPath(..))
        ));
        nested.path = Some("a".into());
        assert!(matches!(
            Schema::new(vec![f("a"), nested]),
            Err(SchemaError::SamePath(..))
        ));
        let mut conditional = f("amount");
        conditional.required_for = vec!["order".into()];
        assert!(matches!(
            Schema::new(vec![f("kind"), conditional.clone()]),
            Err(SchemaError::NoKind(_))
        ));
        let with_kind = Schema {
            fields: vec![f("kind"), conditional],
            event_time: Some("kind".into()),
            kind: Some("kind".into()),
            partition_by: None,
        };
        assert_eq!(
            with_kind.validated().unwrap_err().to_string(),
            "`event_time = \"kind\"` must name a timestamp field of the schema"
        );
    }
}
