//! A SQL view's plan as differential operators.
//!
//! Rows that pass `WHERE` are keyed by their group. Counts, and sums and averages of integers
//! and money, ride in the differences of one [`SumBy`] (summed on each worker before they are
//! exchanged, as the built-in views' tallies are); `count(DISTINCT)` is a [`DistinctCount`];
//! `min`, `max` and float sums keep their values per group in a `reduce`. One more `reduce`
//! per group puts a group's aggregates together, applies `HAVING` and computes the columns;
//! `ORDER BY ... LIMIT` is a [`TopK`] over the groups.

use std::cmp::Ordering;
use std::sync::Arc;

use differential_dataflow::VecCollection;
use differential_dataflow::input::Input;
use lambdaflow_operators::{DistinctCount, SumBy, TopK};
use serde::{Deserialize, Serialize};

use super::expr::{Type, compare, text};
use super::{Agg, AggFn, Plan};
use crate::event::Symbols;
use crate::views::{Datum, Float, Known, Row, ViewRow};

/// A group: the values of its keys.
type Key = Vec<Datum>;

/// The marker of a group's row count among its aggregates (aggregate slots are below it).
const ROWS: u16 = u16::MAX;
/// The marker that makes the one group of a view without `GROUP BY` exist over no rows.
const SEED: u16 = u16::MAX - 1;

/// Builds view `view` (its index in the catalog) over the event rows or dead-letter rows its
/// plan reads, and returns its rows' changes.
pub fn build<'s>(
    plan: &Plan,
    view: u8,
    input: VecCollection<'s, u64, Row>,
    symbols: &Arc<Symbols>,
    worker: usize,
    known: &Known<'s>,
) -> VecCollection<'s, u64, ViewRow> {
    let plan = Arc::new(plan.clone());
    let scope = input.inner.scope();
    let (p, s) = (plan.clone(), symbols.clone());
    let grouped = input.flat_map(move |row| {
        if p.filter.as_ref().is_some_and(|f| !f.holds(&row, &s)) {
            return None;
        }
        let key: Key = p.keys.iter().map(|k| k.eval(&row, &s)).collect();
        Some((key, row))
    });

    let mut parts = vec![sums(&plan, &grouped, symbols)];
    parts.extend(kept(&plan, &grouped, symbols, known));
    if plan.global {
        let seed = if worker == 0 {
            vec![(Key::new(), (SEED, Datum::Null))]
        } else {
            Vec::new()
        };
        parts.push(scope.new_collection_from(seed).1);
    }

    let (p, s) = (plan.clone(), symbols.clone());
    // A group's row may compare or show strings (`HAVING`, `ORDER BY`): every process must
    // know them.
    let parts = known.hold(differential_dataflow::collection::concatenate(scope, parts));
    let rows = parts.reduce_named(
        "sql_rows",
        move |key: &Key, parts: &[(&(u16, Datum), isize)], out| {
            if let Some(row) = group_row(&p, key, parts, &s) {
                out.push((row, 1));
            }
        },
    );
    match plan.limit {
        None => rows.map(move |(_, (key, value, _))| (view, key, value)),
        Some(limit) => {
            let rank = plan.rank;
            rows.map(|(_, (key, value, place))| ((), (place, key, value)))
                .top_k_named("sql_limit", limit)
                .map(move |((), (place, (_, key, value)))| (view, key, ranked(value, rank, place)))
        }
    }
}

/// A top-n row's values with its place in the order (from 1) as its `row_number()`, if the
/// view has one.
pub(super) fn ranked(mut values: Vec<Datum>, rank: Option<usize>, place: usize) -> Vec<Datum> {
    if let Some(slot) = rank.and_then(|r| values.get_mut(r)) {
        *slot = Datum::Int(place as i64);
    }
    values
}

type Grouped<'s> = VecCollection<'s, u64, (Key, Row)>;
type Parts<'s> = VecCollection<'s, u64, (Key, (u16, Datum))>;

/// The additive aggregates' values per group and slot: counts, and sums of integers and money,
/// kept as (amount, non-null count) sums; and each group's row count in slot [`ROWS`].
fn sums<'s>(plan: &Arc<Plan>, grouped: &Grouped<'s>, symbols: &Arc<Symbols>) -> Parts<'s> {
    let (p, s) = (plan.clone(), symbols.clone());
    let sums = grouped
        .clone()
        .sum_by_named("sql_sums", move |(key, row): (Key, Row)| {
            let mut out: Vec<((Key, u16), (isize, isize))> = Vec::with_capacity(p.aggs.len() + 1);
            for (j, a) in p.aggs.iter().enumerate().filter(|(_, a)| a.additive()) {
                if a.filter.as_ref().is_some_and(|f| !f.holds(&row, &s)) {
                    continue;
                }
                let amount = match (&a.func, a.arg.as_ref().map(|x| x.eval(&row, &s))) {
                    (AggFn::CountRows, _) => 1,
                    (_, None | Some(Datum::Null)) => continue,
                    (AggFn::Count, Some(_)) => 1,
                    (_, Some(Datum::Int(n) | Datum::Money(n))) => n as isize,
                    (_, Some(_)) => continue,
                };
                out.push(((key.clone(), j as u16), (amount, 1)));
            }
            out.push(((key, ROWS), (1, 1)));
            out
        });
    let p = plan.clone();
    sums.map(move |((key, j), (amount, count))| {
        let value = if j == ROWS {
            Datum::Int(count as i64)
        } else {
            additive_value(&p.aggs[j as usize], amount as i64, count as i64)
        };
        (key, (j, value))
    })
}

/// The other aggregates' values per group and slot: `count(DISTINCT)` by a distinct count,
/// `min` and `max` from the values each group keeps.
fn kept<'s>(
    plan: &Arc<Plan>,
    grouped: &Grouped<'s>,
    symbols: &Arc<Symbols>,
    known: &Known<'s>,
) -> Vec<Parts<'s>> {
    // (group and slot, value) pairs.
    let kept = |distinct: bool| {
        let (p, s) = (plan.clone(), symbols.clone());
        grouped.clone().flat_map(move |(key, row): (Key, Row)| {
            let mut out = Vec::new();
            for (j, a) in p.aggs.iter().enumerate() {
                if a.additive() || (a.func == AggFn::CountDistinct) != distinct {
                    continue;
                }
                if a.filter.as_ref().is_some_and(|f| !f.holds(&row, &s)) {
                    continue;
                }
                match a.arg.as_ref().map(|x| x.eval(&row, &s)) {
                    None | Some(Datum::Null) => {}
                    Some(v) => out.push(((key.clone(), j as u16), v)),
                }
            }
            out
        })
    };
    let mut parts = Vec::new();
    if plan.aggs.iter().any(|a| a.func == AggFn::CountDistinct) {
        parts.push(
            kept(true)
                .distinct_count_named("sql_distinct", Some)
                .map(|((key, j), n)| (key, (j, Datum::Int(n as i64)))),
        );
    }
    if plan
        .aggs
        .iter()
        .any(|a| !a.additive() && a.func != AggFn::CountDistinct)
    {
        let (p, s) = (plan.clone(), symbols.clone());
        // `min` and `max` of strings compare their text.
        parts.push(
            known
                .hold(kept(false))
                .reduce_named(
                    "sql_values",
                    move |(_, j), values: &[(&Datum, isize)], out| {
                        let a = &p.aggs[*j as usize];
                        out.push((fold(a.func, values, &s), 1));
                    },
                )
                .map(|((key, j), v)| (key, (j, v))),
        );
    }
    parts
}

/// An aggregate of the values a group kept (sorted, with multiplicities).
fn fold(func: AggFn, values: &[(&Datum, isize)], symbols: &Symbols) -> Datum {
    let pick = |want: Ordering| {
        let mut best: Option<&Datum> = None;
        for (v, _) in values {
            if best.is_none_or(|b| compare(v, b, symbols) == Some(want)) {
                best = Some(v);
            }
        }
        best.cloned().unwrap_or(Datum::Null)
    };
    match func {
        AggFn::Min => pick(Ordering::Less),
        AggFn::Max => pick(Ordering::Greater),
        AggFn::Sum | AggFn::Avg => {
            let (mut sum, mut n) = (0.0, 0isize);
            for (v, m) in values {
                if let Datum::Float(f) = v {
                    sum += f.0 * *m as f64;
                    n += m;
                }
            }
            match (func, n) {
                (_, 0) => Datum::Null,
                (AggFn::Avg, _) => Datum::Float(Float(sum / n as f64)),
                _ => Datum::Float(Float(sum)),
            }
        }
        _ => Datum::Null,
    }
}

/// A group's row as (key columns, value columns, its place in `ORDER BY` order when the view
/// has a `LIMIT`), or `None` if the group has no rows or fails `HAVING`.
fn group_row(
    plan: &Plan,
    key: &Key,
    parts: &[(&(u16, Datum), isize)],
    symbols: &Symbols,
) -> Option<(Vec<Datum>, Vec<Datum>, SortKey)> {
    let rows = parts.iter().any(|((j, _), _)| *j == ROWS);
    let seeded = parts.iter().any(|((j, _), _)| *j == SEED);
    if !rows && !seeded {
        return None;
    }
    let mut row: Vec<Datum> = key.clone();
    row.extend(plan.aggs.iter().map(|a| a.empty()));
    for ((j, v), _) in parts {
        if usize::from(*j) < plan.aggs.len() {
            row[key.len() + usize::from(*j)] = v.clone();
        }
    }
    finish(plan, row, key.len(), symbols)
}

/// The value of an additive aggregate over `count` non-null values (rows, for `count(*)`)
/// that sum to `amount`.
pub(super) fn additive_value(a: &Agg, amount: i64, count: i64) -> Datum {
    if count == 0 {
        return a.empty();
    }
    match (a.func, a.arg_ty) {
        (AggFn::CountRows | AggFn::Count, _) => Datum::Int(count),
        // As DuckDB divides: the sum by count times the scale, rounded once.
        (AggFn::Avg, Type::Money) => Datum::Float(Float(amount as f64 / (count as f64 * 100.0))),
        (AggFn::Avg, _) => Datum::Float(Float(amount as f64 / count as f64)),
        (AggFn::Sum, Type::Money) => Datum::Money(amount),
        _ => Datum::Int(amount),
    }
}

/// A group's row from its group row (the `keys` key values, then the aggregates), or `None`
/// if it fails `HAVING`.
pub(super) fn finish(
    plan: &Plan,
    row: Vec<Datum>,
    keys: usize,
    symbols: &Symbols,
) -> Option<(Vec<Datum>, Vec<Datum>, SortKey)> {
    debug_assert_eq!(row.len(), keys + plan.aggs.len());
    if plan
        .having
        .as_ref()
        .is_some_and(|h| !h.holds(&row, symbols))
    {
        return None;
    }
    let (mut keys, mut values) = (Vec::new(), Vec::new());
    for c in &plan.columns {
        let v = c.expr.eval(&row, symbols);
        if c.key { keys.push(v) } else { values.push(v) }
    }
    let place = match plan.limit {
        Some(_) => sort_key(plan, &row, &keys, symbols),
        None => SortKey(Vec::new()),
    };
    Some((keys, values, place))
}

/// A row's place in `ORDER BY` order: its order values (strings by their text), then its key
/// columns by text, so that ties fall the same way on every run.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SortKey(Vec<(Datum, bool, bool)>);

impl Ord for SortKey {
    fn cmp(&self, other: &Self) -> Ordering {
        for ((a, descending, nulls_first), (b, _, _)) in self.0.iter().zip(&other.0) {
            let o = match (a, b) {
                (Datum::Null, Datum::Null) => Ordering::Equal,
                (Datum::Null, _) => {
                    if *nulls_first {
                        Ordering::Less
                    } else {
                        Ordering::Greater
                    }
                }
                (_, Datum::Null) => {
                    if *nulls_first {
                        Ordering::Greater
                    } else {
                        Ordering::Less
                    }
                }
                _ => {
                    let o = order_values(a, b);
                    if *descending { o.reverse() } else { o }
                }
            };
            if o != Ordering::Equal {
                return o;
            }
        }
        self.0.len().cmp(&other.0.len())
    }
}

impl PartialOrd for SortKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Where a row of a view with `ORDER BY ... LIMIT` stands in that order, from its output
/// columns (then its key columns by text): the order in which its rows are listed. `None` for
/// a view without `LIMIT`, or one that orders by a value it does not output.
pub fn listing_place(
    plan: &Plan,
    keys: &[Datum],
    values: &[Datum],
    symbols: &Symbols,
) -> Option<SortKey> {
    plan.limit?;
    let resolve = |d: &Datum| resolved(d.clone(), symbols);
    let (mut k, mut v) = (0, 0);
    let mut output = Vec::new();
    for c in &plan.columns {
        let value = if c.key { keys.get(k) } else { values.get(v) };
        (k, v) = if c.key { (k + 1, v) } else { (k, v + 1) };
        output.push((&c.expr, value?));
    }
    let mut parts = Vec::new();
    for o in &plan.order {
        let (_, value) = output.iter().find(|(e, _)| **e == o.expr)?;
        parts.push((resolve(value), o.descending, o.nulls_first));
    }
    parts.extend(keys.iter().map(|d| (resolve(d), false, false)));
    Some(SortKey(parts))
}

/// A value to order by: a string by its text, not its symbol.
fn resolved(d: Datum, symbols: &Symbols) -> Datum {
    match &d {
        Datum::Sym(_) => text(&d, symbols).map_or(Datum::Null, |t| Datum::Text(t.into_owned())),
        _ => d,
    }
}

/// Two non-null values of one column, in SQL order (strings are resolved already).
fn order_values(a: &Datum, b: &Datum) -> Ordering {
    let symbols = Symbols::default();
    compare(a, b, &symbols).unwrap_or_else(|| a.cmp(b))
}

/// A group row's place: its order values (strings by their text), then its key columns by
/// text.
fn sort_key(plan: &Plan, row: &[Datum], keys: &[Datum], symbols: &Symbols) -> SortKey {
    let resolve = |d: Datum| resolved(d, symbols);
    let mut parts: Vec<(Datum, bool, bool)> = plan
        .order
        .iter()
        .map(|o| {
            (
                resolve(o.expr.eval(row, symbols)),
                o.descending,
                o.nulls_first,
            )
        })
        .collect();
    parts.extend(keys.iter().map(|d| (resolve(d.clone()), false, false)));
    SortKey(parts)
}
