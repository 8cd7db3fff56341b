//! The values of view rows: [`Datum`], and [`ViewRow`], a change to one row of one view.

use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

use crate::event::money::{format_average, format_cents};
use crate::event::time::{format_day, format_rfc3339};
use crate::event::{Sym, Symbols};

/// One field of a view row.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Datum {
    /// Absent.
    Null,
    /// An integer.
    Int(i64),
    /// Money in cents, shown as a decimal string with two places.
    Money(i64),
    /// An interned string.
    Sym(Sym),
    /// A string.
    Text(String),
    /// A UTC day, shown as `YYYY-MM-DD`.
    Day(i32),
    /// A ratio `numerator / denominator`, shown as a number.
    Ratio(i64, i64),
    /// The average of `count` amounts totalling `sum` cents, shown as money.
    Average(i64, i64),
    /// A float.
    Float(Float),
    /// `true` or `false`.
    Bool(bool),
    /// An instant (microseconds since the Unix epoch), shown as RFC 3339 UTC.
    Timestamp(i64),
    /// A string's 128-bit hash ([`IdHash`](crate::event::IdHash)), standing in for a string
    /// whose only use is to be counted distinct; shown in hexadecimal.
    Hash(u64, u64),
}

/// A float that orders, compares and hashes by its bits' total order, so that it can be part
/// of a key.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Float(pub f64);

impl PartialEq for Float {
    fn eq(&self, other: &Self) -> bool {
        self.0.total_cmp(&other.0).is_eq()
    }
}

impl Eq for Float {}

impl PartialOrd for Float {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Float {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl std::hash::Hash for Float {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state);
    }
}

impl Datum {
    /// The [`Datum::Hash`] of a string.
    pub fn hash_of(s: &str) -> Datum {
        let (a, b) = crate::event::IdHash::of(s).words();
        Datum::Hash(a, b)
    }

    /// The datum as plain JSON.
    pub fn to_json(&self, symbols: &Symbols) -> Json {
        match self {
            Datum::Null => Json::Null,
            Datum::Int(n) => json!(n),
            Datum::Money(c) => json!(format_cents(*c)),
            Datum::Sym(s) => json!(&*symbols.resolve(*s)),
            Datum::Text(t) => json!(t),
            Datum::Day(d) => json!(format_day(*d)),
            Datum::Ratio(n, d) => json!(if *d == 0 { 0.0 } else { *n as f64 / *d as f64 }),
            Datum::Average(s, c) => json!(format_average(*s, *c)),
            Datum::Float(f) => json!(f.0),
            Datum::Bool(b) => json!(b),
            Datum::Timestamp(t) => json!(format_rfc3339(*t)),
            Datum::Hash(a, b) => json!(format!("{a:016x}{b:016x}")),
        }
    }
}

/// An event's row, as the SQL and Rust views read it: the values of the fields they read, in
/// the order of [`RowLayout`](crate::views::sql::RowLayout)'s slots. Up to eight are held
/// inline, so that an event's row costs no allocation of its own.
pub type Row = smallvec::SmallVec<[Datum; 8]>;

/// A change to one row of one view: (view, key, value).
pub type ViewRow = (u8, Vec<Datum>, Vec<Datum>);
