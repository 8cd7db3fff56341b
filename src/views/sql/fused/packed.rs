//! Values packed into words, as the fused views' keys carry them: fine keys, views' groups and
//! distinct counts' groups ([`Packed`], [`Narrow`], [`Dated`]), the sums of measures riding in
//! differential's differences ([`Sums`]), and the values counted distinct ([`Value`]).

use std::hash::{Hash, Hasher};

use differential_dataflow::difference::{IsZero, Multiply, Semigroup};
use serde::{Deserialize, Serialize};

use super::super::fast::Fast;
use super::{ATOMS, MEASURES};
use crate::event::time::utc_day;
use crate::event::{Sym, Symbols};
use crate::views::{Datum, Float};

/// Values packed into words, with what kind of value each is: a fine key, a view's group, or a
/// distinct count's group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(super) struct Packed {
    /// The group, view or distinct count.
    pub(super) id: u16,
    /// The conditions that hold (fine keys).
    pub(super) bits: u16,
    /// Each word's kind ([`pack`]).
    pub(super) tags: [u8; ATOMS],
    /// The values.
    pub(super) words: [u64; ATOMS],
}

impl Hash for Packed {
    /// One word: the presum tables hash a fine key per event.
    fn hash<H: Hasher>(&self, state: &mut H) {
        const K: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut h = (u64::from(self.id) << 16 | u64::from(self.bits)).wrapping_mul(K);
        for (w, t) in self.words.iter().zip(self.tags) {
            h = (h.rotate_left(23) ^ w ^ u64::from(t) << 56).wrapping_mul(K);
        }
        state.write_u64(h);
    }
}

/// Sums of measures; they ride in differential's differences.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(super) struct Sums(pub(super) [i64; MEASURES]);

impl IsZero for Sums {
    fn is_zero(&self) -> bool {
        self.0 == [0; MEASURES]
    }
}

impl Semigroup for Sums {
    fn plus_equals(&mut self, rhs: &Self) {
        for (a, b) in self.0.iter_mut().zip(rhs.0) {
            *a = a.wrapping_add(b);
        }
    }
}

impl Multiply<isize> for Sums {
    type Output = Sums;
    fn multiply(self, rhs: &isize) -> Sums {
        Sums(self.0.map(|a| a.wrapping_mul(*rhs as i64)))
    }
}

/// A value as (kind, word); strings not interned yet are interned.
pub(super) fn pack(d: &Datum, symbols: &Symbols) -> (u8, u64) {
    match d {
        Datum::Null => (0, 0),
        Datum::Int(n) => (1, *n as u64),
        Datum::Money(n) => (2, *n as u64),
        Datum::Sym(s) => (3, s.get()),
        Datum::Text(t) => (3, symbols.intern(t).get()),
        Datum::Day(d) => (4, *d as u64),
        Datum::Float(f) => (6, f.0.to_bits()),
        Datum::Bool(b) => (7, u64::from(*b)),
        Datum::Timestamp(t) => (8, *t as u64),
        // Row expressions make neither (they are built-in views' values), and hashes are only
        // counted distinct ([`pack_value`]).
        Datum::Ratio(..) | Datum::Average(..) | Datum::Hash(..) => (0, 0),
    }
}

/// A value counted distinct, as two words: a [`Datum::Hash`]'s own, any other value's word and
/// kind. A hash and another value may share words, but never in one distinct count: a column
/// is hashed for every row or for none ([`super::RowLayout`]).
pub(super) type Value = (u64, u64);

/// A value counted distinct, packed; `None` for `NULL`.
pub(super) fn pack_value(d: &Datum, symbols: &Symbols) -> Option<Value> {
    match d {
        Datum::Hash(a, b) => Some((*a, *b)),
        _ => {
            let (tag, word) = pack(d, symbols);
            (tag != 0).then_some((word, u64::from(tag)))
        }
    }
}

/// A distinct count's group as its (group, value) pairs carry it, summed and exchanged per
/// event: [`Dated`] when every distinct count's one key is a date (or it has none), [`Narrow`]
/// when none has more than one key, else [`Packed`].
pub(super) trait PairGroup: differential_dataflow::ExchangeData + Hash + Copy {
    /// The group of distinct count `id` with key values `keys`.
    fn of(id: u16, keys: impl Iterator<Item = (u8, u64)>) -> Self;
    /// The group as the views' rows are put together from it.
    fn packed(self) -> Packed;
}

impl PairGroup for Packed {
    fn of(id: u16, keys: impl Iterator<Item = (u8, u64)>) -> Self {
        let mut key = Packed {
            id,
            ..Packed::default()
        };
        for (k, (tag, word)) in keys.enumerate() {
            (key.tags[k], key.words[k]) = (tag, word);
        }
        key
    }

    fn packed(self) -> Packed {
        self
    }
}

/// The group of a distinct count with at most one key: 16 bytes against [`Packed`]'s 40, so
/// that a (group, value) pair is 32 bytes, and the table of an epoch's pairs (a probe per
/// event, mostly missing the cache) is a third of the size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(super) struct Narrow {
    id: u16,
    tag: u8,
    word: u64,
}

impl Hash for Narrow {
    /// One word.
    fn hash<H: Hasher>(&self, state: &mut H) {
        const K: u64 = 0x9e37_79b9_7f4a_7c15;
        let head = u64::from(self.id) << 8 | u64::from(self.tag);
        state.write_u64(self.word.wrapping_mul(K) ^ head);
    }
}

impl PairGroup for Narrow {
    fn of(id: u16, mut keys: impl Iterator<Item = (u8, u64)>) -> Self {
        let (tag, word) = keys.next().unwrap_or_default();
        Narrow { id, tag, word }
    }

    fn packed(self) -> Packed {
        Packed::of(self.id, std::iter::once((self.tag, self.word)))
    }
}

/// The group of a distinct count with no key or a date (`CAST(x AS DATE)`) for its one key:
/// one word (the count, the key's kind, the day), so that a (group, value) pair is 24 bytes,
/// as (day, user) pairs are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(super) struct Dated(u64);

impl Hash for Dated {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0);
    }
}

impl PairGroup for Dated {
    fn of(id: u16, mut keys: impl Iterator<Item = (u8, u64)>) -> Self {
        let (tag, word) = keys.next().unwrap_or_default();
        debug_assert_eq!(word, low_half(word), "a day or NULL");
        Dated(u64::from(id) << 48 | u64::from(tag) << 32 | u64::from(word as u32))
    }

    fn packed(self) -> Packed {
        let (id, tag) = ((self.0 >> 48) as u16, (self.0 >> 32) as u8);
        Packed::of(id, std::iter::once((tag, low_half(self.0))))
    }
}

/// The low 32 bits of `word` sign-extended: a day as [`pack`] packs it.
fn low_half(word: u64) -> u64 {
    i64::from(word as u32 as i32) as u64
}

/// An expression's value over `row`, packed; a column's without copying it.
pub(super) fn pack_fast(e: &Fast, row: &[Datum], symbols: &Symbols) -> (u8, u64) {
    // The kinds and words are [`pack`]'s.
    match (e, e.slot().map(|i| &row[i])) {
        (Fast::Slot(_), Some(d)) => pack(d, symbols),
        (Fast::Date(_), Some(Datum::Timestamp(t))) => (4, utc_day(*t) as u64),
        (Fast::Trunc(unit, _), Some(Datum::Timestamp(t))) => (8, unit.trunc(*t) as u64),
        _ => pack(&e.eval(row, symbols), symbols),
    }
}

/// The value [`pack`] packed.
pub(super) fn unpack(tag: u8, word: u64) -> Datum {
    match tag {
        1 => Datum::Int(word as i64),
        2 => Datum::Money(word as i64),
        3 => Sym::from_word(word).map_or(Datum::Null, Datum::Sym),
        4 => Datum::Day(word as i32),
        6 => Datum::Float(Float(f64::from_bits(word))),
        7 => Datum::Bool(word != 0),
        8 => Datum::Timestamp(word as i64),
        _ => Datum::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The columns, dates and truncated times packed where they lie are their values packed.
    #[test]
    fn fast_packing_is_packing_the_value() {
        use crate::views::sql::expr::Unit;
        let symbols = Symbols::default();
        let rows = [
            vec![Datum::Timestamp(90_061_000_001), Datum::Day(3)],
            vec![Datum::Timestamp(-1), Datum::Null],
            vec![Datum::Null, Datum::Int(2)],
        ];
        let exprs = [
            Fast::Slot(0),
            Fast::Slot(1),
            Fast::Date(0),
            Fast::Date(1),
            Fast::Trunc(Unit::Minute, 0),
            Fast::Trunc(Unit::Month, 0),
            Fast::Trunc(Unit::Hour, 1),
        ];
        for row in &rows {
            for e in &exprs {
                let value = pack(&e.eval(row, &symbols), &symbols);
                assert_eq!(pack_fast(e, row, &symbols), value, "{e:?} over {row:?}");
            }
        }
    }

    /// A date-keyed group is the group [`Narrow`] and [`Packed`] carry, in one word.
    #[test]
    fn dated_groups_are_the_packed_groups() {
        let days = [
            Datum::Day(-719_528),
            Datum::Day(-1),
            Datum::Day(0),
            Datum::Day(20_000),
        ];
        let symbols = Symbols::default();
        for id in [0, 1, u16::MAX] {
            let keys = days.iter().map(|d| vec![pack(d, &symbols)]);
            for key in keys.chain([vec![(0, 0)], vec![]]) {
                let dated = Dated::of(id, key.iter().copied());
                assert_eq!(
                    dated.packed(),
                    Packed::of(id, key.iter().copied()),
                    "{key:?}"
                );
                assert_eq!(dated.packed(), Narrow::of(id, key.iter().copied()).packed());
            }
        }
    }

    #[test]
    fn packed_values_unpack_to_themselves() {
        let symbols = Symbols::default();
        let values = [
            Datum::Null,
            Datum::Int(-3),
            Datum::Money(1999),
            Datum::Sym(symbols.intern("x")),
            Datum::Day(-2),
            Datum::Float(Float(-0.5)),
            Datum::Bool(true),
            Datum::Timestamp(-1),
        ];
        for v in values {
            let (tag, word) = pack(&v, &symbols);
            assert_eq!(unpack(tag, word), v);
        }
    }
}
