//! Events: the schema, decoding, and the compact form the views are computed from.
//!
//! A raw record (bytes from a source) is decoded against the [`Schema`] into a [`Record`]; its
//! view-relevant fields are then projected into an [`Event`], a small `Copy` struct whose string
//! keys are interned [`Sym`]s. A record that cannot be decoded becomes a [`DeadLetter`] carrying
//! its raw bytes, a [`Reason`] and its source [`Position`].

pub mod decode;
pub mod money;
pub mod schema;
pub mod storable;
pub mod symbol;
pub mod time;

use serde::{Deserialize, Serialize};

pub use decode::{DecodeError, Decoder, Reason, Record};
pub use schema::{Field, FieldType, Schema};
pub use symbol::{IdHash, Interner, Sym, Symbols};

/// Where a record came from, precisely enough to resume reading right after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Position {
    /// The generator's sequence number of the record.
    Generator {
        /// Sequence number, from 0.
        seq: u64,
    },
    /// A line of an input file.
    File {
        /// Index of the file in the pipeline's file list.
        file: u32,
        /// Byte offset of the line's first byte.
        offset: u64,
    },
    /// As a source position only: a generator's stream still to produce, the sequence numbers
    /// `next`, `next + stride`, ...
    GeneratorStream {
        /// The next sequence number.
        next: u64,
        /// The step between two.
        stride: u64,
    },
    /// As a source position only: a range of an input file still to read, from `start` (the
    /// first byte of a line, or inside the line the range before it reads) to `end`.
    FileRange {
        /// Index of the file in the pipeline's file list.
        file: u32,
        /// The range's first byte.
        start: u64,
        /// The byte after its last.
        end: u64,
    },
    /// A line of standard input.
    Stdin {
        /// Byte offset of the line's first byte.
        offset: u64,
    },
    /// A Kafka message. As a source position, `offset` is the next offset to read.
    Kafka {
        /// Index of the topic in the source's topic list.
        topic: u32,
        /// The partition.
        partition: u32,
        /// The message's offset.
        offset: u64,
    },
}

// Every record in a chunk carries its position: a range must not make them larger.
const _: () = assert!(std::mem::size_of::<Position>() == 24);

/// The fields of an event that the built-in views read, with strings interned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Event {
    /// `event_type`.
    pub event_type: Sym,
    /// `user_id`, hashed: views count users but never show one.
    pub user: IdHash,
    /// `event_timestamp`, microseconds since the Unix epoch, UTC.
    pub at: i64,
    /// `product`, when present.
    pub product: Option<Sym>,
    /// `price` in cents, when present.
    pub price: Option<i64>,
    /// `country`, when present.
    pub country: Option<Sym>,
    /// `source` (web, mobile), when present.
    pub source: Option<Sym>,
}

/// A record that could not be decoded: nothing is dropped, it is kept with the reason.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The reason code.
    pub reason: Reason,
    /// What is wrong, naming the field.
    pub message: String,
    /// The raw bytes (for `too_large`, the first `max_record_bytes + 1` of them).
    pub raw: Vec<u8>,
    /// Where it came from.
    pub position: Position,
}

/// Where the view fields sit in the schema. Fields the schema lacks, or declares with another
/// type, are simply never set.
#[derive(Clone, Copy, Debug, Default)]
pub struct Roles {
    event_type: Option<usize>,
    user: Option<usize>,
    at: Option<usize>,
    product: Option<usize>,
    price: Option<usize>,
    country: Option<usize>,
    source: Option<usize>,
}

/// A string field whose value the projection interns: the event holds its symbol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interned {
    /// `product`.
    Product,
    /// `country`.
    Country,
    /// `source`.
    Source,
}

impl Interned {
    /// The symbol of the field's value in `event`, if the record had the field.
    pub fn of(self, event: &Event) -> Option<Sym> {
        match self {
            Interned::Product => event.product,
            Interned::Country => event.country,
            Interned::Source => event.source,
        }
    }
}

/// A field of the compact [`Event`], by the schema field it comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `event_type`: a symbol; the empty string's when the record lacks it.
    EventType,
    /// `user_id`: its hash; the empty string's when the record lacks it.
    User,
    /// `event_timestamp`: zero when the record lacks it.
    At,
    /// `product`.
    Product,
    /// `price`.
    Price,
    /// `country`.
    Country,
    /// `source`.
    Source,
}

impl Roles {
    /// Which interned field, if any, schema field `field` is (`event_type` is interned too,
    /// but is not asked about: the lake partitions by it).
    pub fn interned(&self, field: usize) -> Option<Interned> {
        match self.role(field)? {
            Role::Product => Some(Interned::Product),
            Role::Country => Some(Interned::Country),
            Role::Source => Some(Interned::Source),
            _ => None,
        }
    }

    /// Which field of the compact event, if any, schema field `field` becomes.
    pub fn role(&self, field: usize) -> Option<Role> {
        let roles = [
            (self.event_type, Role::EventType),
            (self.user, Role::User),
            (self.at, Role::At),
            (self.product, Role::Product),
            (self.price, Role::Price),
            (self.country, Role::Country),
            (self.source, Role::Source),
        ];
        roles
            .into_iter()
            .find(|(at, _)| *at == Some(field))
            .map(|(_, role)| role)
    }

    /// Finds the view fields in `schema`.
    pub fn of(schema: &Schema) -> Self {
        Roles {
            event_type: schema.typed("event_type", FieldType::String),
            user: schema.typed("user_id", FieldType::String),
            at: schema.typed("event_timestamp", FieldType::Timestamp),
            product: schema.typed("product", FieldType::String),
            price: schema.typed("price", FieldType::Money),
            country: schema.typed("country", FieldType::String),
            source: schema.typed("source", FieldType::String),
        }
    }

    /// The compact event of a decoded record.
    pub fn project(&self, record: &Record<'_>, interner: &mut Interner) -> Event {
        self.project_with(record, interner, |_| None)
    }

    /// [`Roles::project`], taking the symbol of field `i` from `known(i)` when it has it (a
    /// row of the same record projected for SQL views): interning a string again costs a hash
    /// and a lookup.
    pub fn project_with(
        &self,
        record: &Record<'_>,
        interner: &mut Interner,
        known: impl Fn(usize) -> Option<Option<Sym>>,
    ) -> Event {
        let mut sym = |role: Option<usize>| {
            let i = role?;
            known(i).unwrap_or_else(|| record.text(i).map(|s| interner.intern(s)))
        };
        let event_type = sym(self.event_type);
        let user = self.user.and_then(|i| record.text(i)).unwrap_or_default();
        let (product, country, source) = (sym(self.product), sym(self.country), sym(self.source));
        // Config validation makes `event_type` and `user_id` required wherever a view reads
        // them; a schema without them keys those fields by the empty string.
        Event {
            event_type: event_type.unwrap_or_else(|| interner.intern("")),
            user: IdHash::of(user),
            product,
            country,
            source,
            at: self.at.and_then(|i| record.timestamp(i)).unwrap_or(0),
            price: self.price.and_then(|i| record.money(i)),
        }
    }
}

/// Whether two short strings are equal: `a == b`, compared in place. Field names and interned
/// keys are short, and the general comparison is a call into the C library for every key of
/// every record (4% of a worker's time in a profile of `lambdaflow bench`, for the field names
/// the decoder looks up).
#[inline]
pub(crate) fn same_str(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    // Two loads, from the start and from the end, that together cover the whole name.
    fn word8(s: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(s[at..at + 8].try_into().expect("8 bytes"))
    }
    fn word4(s: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(s[at..at + 4].try_into().expect("4 bytes"))
    }
    match n {
        0 => true,
        1..=3 => a.iter().zip(b).all(|(x, y)| x == y),
        4..=7 => word4(a, 0) == word4(b, 0) && word4(a, n - 4) == word4(b, n - 4),
        8..=16 => word8(a, 0) == word8(b, 0) && word8(a, n - 8) == word8(b, n - 8),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_strings_compare_as_strings_do() {
        let names = [
            "",
            "a",
            "b",
            "ab",
            "ba",
            "abc",
            "abd",
            "page",
            "pagf",
            "price",
            "pricf",
            "source",
            "user_id",
            "product",
            "country",
            "event_id",
            "event_ie",
            "event_type",
            "session_id",
            "event_timestamp",
            "event_timestampx",
            "event_timestampxy",
            "event_timestampxz",
            "é",
            "éa",
            "日本語",
            "日本誤",
        ];
        for a in names {
            for b in names {
                assert_eq!(same_str(a, b), a == b, "{a:?} vs {b:?}");
            }
        }
        // A difference in any one byte, at every length the comparison treats apart.
        for n in 0..=20 {
            let a: String = ('a'..='z').take(n).collect();
            assert!(same_str(&a, &a.clone()));
            for at in 0..n {
                let mut b = a.clone().into_bytes();
                b[at] = b'_';
                let b = String::from_utf8(b).expect("ASCII");
                assert!(!same_str(&a, &b), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn an_event_has_no_padding_for_a_16_byte_alignment() {
        // Every event is copied into each view operator's input: its size is what moves.
        assert_eq!(std::mem::align_of::<Event>(), 8);
        assert_eq!(std::mem::size_of::<Event>(), 72);
    }
}
