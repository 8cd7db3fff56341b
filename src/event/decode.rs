//! Decoding raw JSON records against the schema, without panics and mostly without allocation.
//!
//! A record is validated in one pass: serde_json walks the top-level object, each value is taken
//! as raw JSON text and converted according to its field's type (strings without escapes are
//! borrowed from the input, money is parsed from the exact decimal text), and keys that are not in
//! the schema are copied verbatim into `_doc`. Whatever is wrong with a record becomes a
//! [`DecodeError`] with a [`Reason`] code and a message that names the field.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::money::parse_cents;
use super::same_str;
use super::schema::{FieldType, Schema};
use super::storable::{
    MAX_PARTITION_BYTES, check_partition_value, money_in_range, timestamp_in_range,
};
use super::time::parse_rfc3339;

/// Why a record became a dead letter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Not valid JSON.
    NotJson,
    /// Not valid UTF-8.
    NotUtf8,
    /// A required field is absent or `null`.
    MissingField,
    /// A field, or the record itself, has the wrong JSON type or an invalid value.
    WrongType,
    /// A timestamp field is not RFC 3339.
    BadTimestamp,
    /// Larger than the configured maximum record size.
    TooLarge,
    /// A value the lake cannot store: a timestamp outside the years 0001 to 9999 (UTC), or an
    /// amount too large for `decimal(18, 2)`.
    OutOfRange,
    /// A value of a partition column that cannot be a partition: empty, or too long for a
    /// directory name.
    BadPartitionValue,
}

/// Every reason, in code order.
const REASONS: [Reason; 8] = [
    Reason::NotJson,
    Reason::NotUtf8,
    Reason::MissingField,
    Reason::WrongType,
    Reason::BadTimestamp,
    Reason::TooLarge,
    Reason::OutOfRange,
    Reason::BadPartitionValue,
];

impl Reason {
    /// The reason code: `not_json`, `not_utf8`, `missing_field`, `wrong_type`, `bad_timestamp`,
    /// `too_large`, `out_of_range`, `bad_partition_value`.
    pub fn code(self) -> &'static str {
        match self {
            Reason::NotJson => "not_json",
            Reason::NotUtf8 => "not_utf8",
            Reason::MissingField => "missing_field",
            Reason::WrongType => "wrong_type",
            Reason::BadTimestamp => "bad_timestamp",
            Reason::TooLarge => "too_large",
            Reason::OutOfRange => "out_of_range",
            Reason::BadPartitionValue => "bad_partition_value",
        }
    }

    /// The reason of a code, the inverse of [`Reason::code`].
    pub fn from_code(code: &str) -> Option<Reason> {
        REASONS.into_iter().find(|r| r.code() == code)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// What is wrong with a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// The reason code.
    pub reason: Reason,
    /// A human message naming the field.
    pub message: String,
}

impl DecodeError {
    fn new(reason: Reason, message: impl Into<String>) -> Self {
        DecodeError {
            reason,
            message: message.into(),
        }
    }
}

/// A string value: a span of the input when it had no escapes, else an unescaped copy.
#[derive(Clone, Debug, PartialEq)]
pub enum Text {
    /// Bytes `start..end` of the record.
    Span(u32, u32),
    /// The unescaped string.
    Owned(String),
}

/// A decoded field value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Absent or `null`.
    Absent,
    /// A string.
    Text(Text),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// Money, in cents.
    Money(i64),
    /// A boolean.
    Bool(bool),
    /// A timestamp, in microseconds since the Unix epoch, UTC.
    Timestamp(i64),
}

/// A decoded record: one value per schema field, plus the unknown keys as a JSON object.
#[derive(Debug)]
pub struct Record<'a> {
    raw: &'a str,
    values: &'a [Value],
    doc: &'a str,
}

impl<'a> Record<'a> {
    /// The value of field `index`.
    pub fn value(&self, index: usize) -> &'a Value {
        &self.values[index]
    }

    /// The string of field `index`, if it is a present string.
    #[inline]
    pub fn text(&self, index: usize) -> Option<&'a str> {
        match &self.values[index] {
            Value::Text(Text::Span(s, e)) => Some(&self.raw[*s as usize..*e as usize]),
            Value::Text(Text::Owned(s)) => Some(s),
            _ => None,
        }
    }

    /// The cents of field `index`, if it is present money.
    pub fn money(&self, index: usize) -> Option<i64> {
        match self.values[index] {
            Value::Money(c) => Some(c),
            _ => None,
        }
    }

    /// The instant of field `index`, if it is a present timestamp.
    pub fn timestamp(&self, index: usize) -> Option<i64> {
        match self.values[index] {
            Value::Timestamp(t) => Some(t),
            _ => None,
        }
    }

    /// The keys that are not in the schema, as a JSON object (`""` when there are none).
    pub fn doc(&self) -> &'a str {
        self.doc
    }
}

/// Decodes records against a schema, reusing its buffers from one record to the next.
pub struct Decoder {
    schema: Schema,
    /// The string field the lake partitions by, whose values must make partition directories.
    partition: Option<usize>,
    max_bytes: usize,
    values: Vec<Value>,
    doc: String,
    /// The top-level key of each field; empty for a nested field (no key is empty... but `""`
    /// can be: [`Decoder::flat`] tells them apart).
    keys: Vec<String>,
    flat: Vec<bool>,
    /// The nested fields, by their top-level key.
    groups: Vec<Group>,
    /// The `kind` field and the fields required for some kinds only.
    kinds: Option<(usize, Vec<usize>)>,
}

/// The nested fields under one top-level key: the keys below it, and the field.
#[derive(Clone, Debug)]
struct Group {
    key: String,
    fields: Vec<(Vec<String>, usize)>,
}

impl Decoder {
    /// A decoder for `schema` that refuses records over `max_bytes`.
    pub fn new(schema: Schema, max_bytes: usize) -> Self {
        let values = vec![Value::Absent; schema.fields.len()];
        let flat: Vec<bool> = schema.fields.iter().map(|f| !f.nested()).collect();
        let keys = schema
            .fields
            .iter()
            .map(|f| f.keys().next().unwrap_or_default().to_owned())
            .collect();
        let mut groups: Vec<Group> = Vec::new();
        for (i, f) in schema.fields.iter().enumerate().filter(|(_, f)| f.nested()) {
            let mut path = f.keys().map(str::to_owned);
            let top = path.next().unwrap_or_default();
            let rest: Vec<String> = path.collect();
            match groups.iter_mut().find(|g| g.key == top) {
                Some(g) => g.fields.push((rest, i)),
                None => groups.push(Group {
                    key: top,
                    fields: vec![(rest, i)],
                }),
            }
        }
        let kinds = schema.kind_field().map(|k| {
            let conditional = (0..schema.fields.len())
                .filter(|&i| !schema.fields[i].required_for.is_empty())
                .collect();
            (k, conditional)
        });
        Decoder {
            partition: schema.partition_field(),
            schema,
            max_bytes,
            values,
            doc: String::new(),
            keys,
            flat,
            groups,
            kinds,
        }
    }

    /// The schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Decodes one record (without its line terminator). A UTF-8 byte order mark before it is
    /// skipped.
    pub fn decode<'a>(&'a mut self, raw: &'a [u8]) -> Result<Record<'a>, DecodeError> {
        if raw.len() > self.max_bytes {
            return Err(DecodeError::new(
                Reason::TooLarge,
                format!(
                    "record is larger than the limit of {} bytes (max_record_bytes)",
                    self.max_bytes
                ),
            ));
        }
        let raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
        let text = std::str::from_utf8(raw).map_err(|e| {
            DecodeError::new(
                Reason::NotUtf8,
                format!(
                    "record is not valid UTF-8 (invalid byte at offset {})",
                    e.valid_up_to()
                ),
            )
        })?;
        for v in &mut self.values {
            *v = Value::Absent;
        }
        self.doc.clear();
        let mut failure = None;
        let mut de = serde_json::Deserializer::from_str(text);
        let visitor = RecordVisitor {
            schema: &self.schema,
            keys: &self.keys,
            flat: &self.flat,
            groups: &self.groups,
            values: &mut self.values,
            doc: &mut self.doc,
            base: text.as_ptr() as usize,
            failure: &mut failure,
        };
        let parsed = de.deserialize_map(visitor).and_then(|()| de.end());
        if let Some(error) = failure {
            return Err(error);
        }
        if let Err(e) = parsed {
            return Err(match e.classify() {
                serde_json::error::Category::Data => {
                    DecodeError::new(Reason::WrongType, "record is not a JSON object")
                }
                _ => DecodeError::new(Reason::NotJson, format!("record is not valid JSON: {e}")),
            });
        }
        if !self.doc.is_empty() {
            self.doc.push('}');
        }
        for (field, value) in self.schema.fields.iter().zip(&self.values) {
            if field.required && *value == Value::Absent {
                return Err(DecodeError::new(
                    Reason::MissingField,
                    format!("required field `{}` is missing or null", field.name),
                ));
            }
        }
        let record = Record {
            raw: text,
            values: &self.values,
            doc: &self.doc,
        };
        if let Some((kind, conditional)) = &self.kinds
            && let Some(kind) = record.text(*kind)
        {
            for &i in conditional {
                let field = &self.schema.fields[i];
                if record.values[i] == Value::Absent && field.required_for.iter().any(|k| k == kind)
                {
                    return Err(DecodeError::new(
                        Reason::MissingField,
                        format!(
                            "field `{}` is required for `{kind}` events and is missing or null",
                            field.name
                        ),
                    ));
                }
            }
        }
        if let Some(i) = self.partition
            && let Some(value) = record.text(i)
            && !partition_value_is_short(value)
        {
            check_long_partition_value(&self.schema.fields[i].name, value)?;
        }
        Ok(record)
    }
}

struct RecordVisitor<'s> {
    schema: &'s Schema,
    keys: &'s [String],
    flat: &'s [bool],
    groups: &'s [Group],
    values: &'s mut [Value],
    doc: &'s mut String,
    base: usize,
    failure: &'s mut Option<DecodeError>,
}

impl<'de> Visitor<'de> for RecordVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    // Inlined into `Decoder::decode`, as the compiler did before that grew the checks of stored
    // values: out of line, the decode-only limit of `lambdaflow bench` was 2% lower.
    #[inline(always)]
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let fields = &self.schema.fields;
        // The field after the last one matched: producers write keys in one order, most often
        // the schema's, so this is usually the next key and one comparison finds it.
        let mut next = 0;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let raw: &'de RawValue = map.next_value()?;
            let index = match self.keys.get(next) {
                Some(k) if self.flat[next] && same_str(k, &key) => Some(next),
                _ => (0..fields.len()).find(|&i| self.flat[i] && same_str(&self.keys[i], &key)),
            };
            match index {
                Some(i) => match typed_value(&fields[i].name, fields[i].ty, raw, self.base) {
                    Ok(v) => {
                        self.values[i] = v;
                        next = i + 1;
                    }
                    Err(e) => {
                        *self.failure = Some(e);
                        return Err(serde::de::Error::custom("invalid field"));
                    }
                },
                None => {
                    if let Some(group) = self.groups.iter().find(|g| same_str(&g.key, &key))
                        && let Err(e) = nested_values(group, raw, fields, self.values, self.base)
                    {
                        *self.failure = Some(e);
                        return Err(serde::de::Error::custom("invalid field"));
                    }
                    // A nested object is kept whole: its undeclared keys are in `_doc`.
                    self.doc.push(if self.doc.is_empty() { '{' } else { ',' });
                    // Keys are re-escaped; values are kept byte for byte.
                    self.doc
                        .push_str(&serde_json::to_string(&*key).unwrap_or_default());
                    self.doc.push(':');
                    self.doc.push_str(raw.get());
                }
            }
        }
        Ok(())
    }
}

/// The values of a group's nested fields, found below its top-level value `raw`. A key that is
/// missing, or a value on the way that is not an object, leaves the field absent.
fn nested_values<'de>(
    group: &Group,
    raw: &'de RawValue,
    fields: &[crate::event::Field],
    values: &mut [Value],
    base: usize,
) -> Result<(), DecodeError> {
    for (path, i) in &group.fields {
        let mut at: Option<&'de RawValue> = Some(raw);
        for key in path {
            at = at.and_then(|v| {
                serde_json::from_str::<std::collections::HashMap<Cow<'de, str>, &'de RawValue>>(
                    v.get(),
                )
                .ok()
                .and_then(|object| object.get(key.as_str()).copied())
            });
        }
        if let Some(v) = at {
            values[*i] = typed_value(&fields[*i].name, fields[*i].ty, v, base)?;
        }
    }
    Ok(())
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

fn json_kind(text: &str) -> &'static str {
    match text.as_bytes().first() {
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        _ => "a number",
    }
}

fn excerpt(text: &str) -> String {
    match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// The contents of a JSON string literal, borrowed when it has no escapes.
fn string_body(text: &str) -> Option<Cow<'_, str>> {
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\\') {
        serde_json::from_str::<String>(text).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(inner))
    }
}

fn typed_value(
    name: &str,
    ty: FieldType,
    raw: &RawValue,
    base: usize,
) -> Result<Value, DecodeError> {
    let text = raw.get();
    if text == "null" {
        return Ok(Value::Absent);
    }
    let wrong = |detail: &str| {
        DecodeError::new(
            Reason::WrongType,
            format!(
                "field `{name}` must be {}{detail}: {}",
                ty_phrase(ty),
                excerpt(text)
            ),
        )
    };
    let is_string = text.starts_with('"');
    let is_number = matches!(text.as_bytes().first(), Some(b'-' | b'0'..=b'9'));
    match ty {
        FieldType::String if is_string => {
            let inner = &text[1..text.len() - 1];
            if inner.contains('\\') {
                serde_json::from_str::<String>(text)
                    .map(|s| Value::Text(Text::Owned(s)))
                    .map_err(|e| bad_escape(name, text, &e))
            } else {
                let start = inner.as_ptr() as usize - base;
                Ok(Value::Text(Text::Span(
                    start as u32,
                    (start + inner.len()) as u32,
                )))
            }
        }
        FieldType::Int if is_number => text
            .parse()
            .map(Value::Int)
            .map_err(|_| wrong(" in the 64-bit range")),
        FieldType::Float if is_number => text.parse().map(Value::Float).map_err(|_| wrong("")),
        FieldType::Money if is_number || is_string => {
            let body = if is_string {
                string_body(text).ok_or_else(|| wrong(""))?
            } else {
                Cow::Borrowed(text)
            };
            let cents = parse_cents(&body).map_err(|why| {
                DecodeError::new(
                    Reason::WrongType,
                    format!(
                        "field `{name}` is not valid money ({why}): {}",
                        excerpt(text)
                    ),
                )
            })?;
            if !money_in_range(cents) {
                return Err(out_of_range(
                    name,
                    "is too large for the lake's decimal(18, 2)",
                    text,
                ));
            }
            Ok(Value::Money(cents))
        }
        FieldType::Bool if text == "true" || text == "false" => Ok(Value::Bool(text == "true")),
        FieldType::Timestamp if is_string => {
            let body = string_body(text).ok_or_else(|| wrong(""))?;
            let micros = parse_rfc3339(&body).map_err(|why| {
                DecodeError::new(
                    Reason::BadTimestamp,
                    format!(
                        "field `{name}` is not an RFC 3339 timestamp ({why}): {}",
                        excerpt(text)
                    ),
                )
            })?;
            if !timestamp_in_range(micros) {
                return Err(out_of_range(
                    name,
                    "is outside 0001-01-01 to 9999-12-31 once converted to UTC, the range \
                     Delta Lake and Parquet readers accept",
                    text,
                ));
            }
            Ok(Value::Timestamp(micros))
        }
        _ => Err(wrong(&format!(", found {}", json_kind(text)))),
    }
}

/// Whether a partition value is certainly fine: not empty, and short enough that even fully
/// escaped it fits. The rest go to [`check_long_partition_value`].
#[inline]
fn partition_value_is_short(value: &str) -> bool {
    !value.is_empty() && value.len() * 3 <= MAX_PARTITION_BYTES
}

/// The full check of a partition value that is empty or may be too long.
#[cold]
#[inline(never)]
fn check_long_partition_value(name: &str, value: &str) -> Result<(), DecodeError> {
    check_partition_value(value).map_err(|why| {
        DecodeError::new(
            Reason::BadPartitionValue,
            format!("field `{name}` is a partition column and {why}"),
        )
    })
}

/// A value the lake cannot store.
#[cold]
#[inline(never)]
fn out_of_range(name: &str, why: &str, text: &str) -> DecodeError {
    DecodeError::new(
        Reason::OutOfRange,
        format!("field `{name}` {why}: {}", excerpt(text)),
    )
}

/// A string whose escapes serde_json refused (a lone surrogate, say).
#[cold]
#[inline(never)]
fn bad_escape(name: &str, text: &str, e: &serde_json::Error) -> DecodeError {
    DecodeError::new(
        Reason::WrongType,
        format!(
            "field `{name}` is a string with an invalid escape ({}): {}",
            escape_problem(e),
            excerpt(text)
        ),
    )
}

/// What serde_json found wrong in a string, without its line and column.
fn escape_problem(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.find(" at line ") {
        Some(cut) => text[..cut].to_owned(),
        None => text,
    }
}

fn ty_phrase(ty: FieldType) -> &'static str {
    match ty {
        FieldType::String => "a string",
        FieldType::Int => "an integer",
        FieldType::Float => "a number",
        FieldType::Money => "a decimal amount",
        FieldType::Bool => "true or false",
        FieldType::Timestamp => "an RFC 3339 timestamp string",
    }
}

#[cfg(test)]
mod tests;
