//! Many SQL views over `events` in one pass: what the compiler makes of the views it can fuse.
//!
//! Built one by one ([`super::flow`]), every view reads every event, keys it by a vector of
//! values and sums it on its own. Fused, one operator reads each event once for all of them,
//! as the hand-written built-in plan did:
//!
//! - The views that count and sum are put in a few *groups*. An event's *fine key* in a group
//!   is the values of every key expression of the group's views (its *atoms*, packed into
//!   words) and the truth of every condition they test (a bit each); its *measures* are one
//!   row and the non-null counts and sums of the columns they sum. Summed per fine key first,
//!   an event costs one hash-table addition per group instead of one per view; each fine key's
//!   totals then roll up into the views' groups once per epoch.
//! - Views whose keys hold a time finer than a day are grouped apart (with such a key a group's
//!   fine keys multiply), as are views that sum a column (only events with it feed them).
//! - `count(DISTINCT x)` aggregates become (group, value) pairs in the same operator; equal
//!   ones (the same `WHERE`, keys, argument and `FILTER`) in several views are counted once.
//!
//! What does not fit (`min`, `max`, float sums, more than [`ATOMS`] keys, or [`MEASURES`]
//! sums) is built one view at a time, as before; so are views over `dead_letters`.

use std::sync::Arc;

use differential_dataflow::VecCollection;
use lambdaflow_operators::{SumByAndDistinctCount, TopK};
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use super::expr::{Expr, Type, Unit};
use super::fast::Fast;
use super::flow::{additive_value, finish, ranked};
use super::typed::AsRow;
use super::{AggFn, Plan, TableName};
use crate::event::Symbols;
use crate::views::{Datum, Known, ViewRow};

/// The most key expressions a group (and a view) may have to be fused.
pub const ATOMS: usize = 4;
/// The most measures (a fine key's, or a view group's) to be fused.
pub const MEASURES: usize = 4;
/// The most conditions a group tests.
const BITS: usize = 16;
/// The most views in a group.
const GROUP_VIEWS: usize = 8;

mod packed;

use packed::{Dated, Narrow, Packed, PairGroup, Sums, Value, pack_fast, pack_value, unpack};

/// What an event's fine keys and distinct pairs read, each evaluated once: every key
/// expression (packed) and the truth of every condition of the fused views.
#[derive(Default)]
struct Scratch {
    atoms: Vec<(u8, u64)>,
    /// Whether each of [`Fused::predicates`] holds.
    tested: Vec<bool>,
    /// Whether each of [`Fused::conditions`] holds.
    holds: Vec<bool>,
}

/// What an event adds to a fine key.
#[derive(Clone, Debug, PartialEq)]
enum Measure {
    /// One.
    Rows,
    /// One if the expression is not null.
    NonNull(Fast),
    /// The expression's value (an integer or money), if not null.
    Sum(Fast),
}

/// Views fused into one fine key.
#[derive(Clone, Debug, Default)]
struct Group {
    /// The key expressions of its views.
    atoms: Vec<Fast>,
    /// The conditions its views test (`WHERE` and `FILTER`).
    conditions: Vec<Fast>,
    /// Its measures; the first is [`Measure::Rows`].
    measures: Vec<Measure>,
    /// Its views, by index into [`Fused::views`].
    views: Vec<usize>,
    /// The conditions one of which must hold for an event to reach a view (`None`: a view
    /// takes every event).
    wheres: Option<u16>,
    /// Its atoms and conditions in [`Fused::atoms`] and [`Fused::conditions`].
    shared: Shared,
}

/// Where a group's or a distinct count's expressions are in the expressions the fused views
/// share ([`Fused::share`]).
#[derive(Clone, Debug, Default, PartialEq)]
struct Shared {
    atoms: Vec<usize>,
    conditions: Vec<usize>,
}

/// A fused view.
#[derive(Clone, Debug)]
struct View {
    /// Its catalog index.
    id: u8,
    plan: Arc<Plan>,
    /// Its `WHERE`, as a condition of its group.
    filter: Option<u16>,
    /// Its keys, as atoms of its group.
    keys: Vec<usize>,
    /// Its measures: (a measure of its group, a condition of its group it needs); the first
    /// counts its rows.
    slots: Vec<(usize, Option<u16>)>,
    /// Each aggregate's source.
    aggs: Vec<Source>,
    /// A distinct count (by index) that is positive exactly when the group has a row: set when
    /// every aggregate counts distinct and one of them, without `FILTER`, counts a column that
    /// is never null. Such a view needs no fine key and no row count.
    exists_by: Option<usize>,
}

impl View {
    /// Whether its rows come straight from its group's sums: it has only sums, a `GROUP BY`
    /// and no `LIMIT`.
    fn direct(&self) -> bool {
        self.plan.limit.is_none()
            && !self.plan.global
            && self
                .aggs
                .iter()
                .all(|a| matches!(a, Source::Additive { .. }))
    }
}

/// Where an aggregate's value comes from.
#[derive(Clone, Copy, Debug)]
enum Source {
    /// Slots of its view: the sum (for `sum` and `avg`) and the count.
    Additive { sum: Option<usize>, count: usize },
    /// A distinct count.
    Distinct(usize),
}

/// A `count(DISTINCT)`: over the events that pass `filter` (a view's `WHERE` and the
/// aggregate's `FILTER`), the distinct non-null values of `arg` per group of `keys`.
#[derive(Clone, Debug, PartialEq)]
struct Distinct {
    filter: Vec<Fast>,
    keys: Vec<Fast>,
    arg: Fast,
    /// Its keys and filter in the shared expressions.
    shared: Shared,
}

/// The fusable views of a pipeline, fused.
#[derive(Clone, Debug, Default)]
pub struct Fused {
    groups: Vec<Group>,
    views: Vec<View>,
    distinct: Vec<Distinct>,
    /// Every key expression of the groups and distinct counts, once.
    atoms: Vec<Fast>,
    /// Every condition of the groups and distinct counts, once.
    conditions: Vec<Fast>,
    /// The conditions' conjuncts (`a AND b` is `a` and `b`), once: an event tests each once.
    predicates: Vec<Fast>,
    /// Each condition's conjuncts in [`Fused::predicates`]: it holds when they all hold.
    conjuncts: Vec<Vec<usize>>,
}

impl Fused {
    /// Fuses every view of `plans` (with their catalog indices) that can be; returns the
    /// fused views and the others. `non_null[i]` says whether row slot `i` is never null (a
    /// required field).
    pub fn of<'p>(plans: &[(u8, &'p Plan)], non_null: &[bool]) -> (Fused, Vec<(u8, &'p Plan)>) {
        let mut fused = Fused::default();
        let mut rest = Vec::new();
        for &(id, plan) in plans {
            if fused.add_by_distinct(id, plan, non_null) {
                continue;
            }
            if !fused.add(id, plan) {
                rest.push((id, plan));
            }
        }
        fused.share();
        (fused, rest)
    }

    /// Finds the expressions that groups and distinct counts share: an event evaluates each
    /// once ([`Fused::evaluate`]).
    fn share(&mut self) {
        let Fused {
            groups,
            distinct,
            atoms,
            conditions,
            predicates,
            conjuncts,
            ..
        } = self;
        let mut shared = |keys: &[Fast], tests: &[Fast]| Shared {
            atoms: keys.iter().map(|a| index(atoms, a)).collect(),
            conditions: tests.iter().map(|c| index(conditions, c)).collect(),
        };
        for g in groups.iter_mut() {
            g.shared = shared(&g.atoms, &g.conditions);
        }
        for d in distinct.iter_mut() {
            d.shared = shared(&d.keys, &d.filter);
        }
        // A condition holds exactly when each of its conjuncts holds (SQL's `AND` is true only
        // when both sides are), so the conjuncts shared by several conditions are tested once.
        *conjuncts = conditions
            .iter()
            .map(|c| {
                let mut parts = Vec::new();
                c.conjuncts(&mut parts);
                parts.iter().map(|p| index(predicates, p)).collect()
            })
            .collect();
    }

    /// Whether no view was fused.
    pub fn is_empty(&self) -> bool {
        self.views.is_empty()
    }

    /// Adds a view of distinct counts whose rows exist exactly when one of its counts is
    /// positive ([`View::exists_by`]), if it is one.
    fn add_by_distinct(&mut self, id: u8, plan: &Plan, non_null: &[bool]) -> bool {
        let fits = plan.table == TableName::Events
            && !plan.global
            && plan.keys.len() <= ATOMS
            && plan.aggs.iter().all(|a| a.func == AggFn::CountDistinct);
        let never_null = |a: &super::Agg| {
            a.filter.is_none()
                && matches!(a.arg, Some(Expr::Slot(i)) if non_null.get(i) == Some(&true))
        };
        let Some(by) = plan.aggs.iter().position(never_null).filter(|_| fits) else {
            return false;
        };
        let aggs: Vec<Source> = plan
            .aggs
            .iter()
            .map(|a| {
                let d = Distinct {
                    filter: plan.filter.iter().chain(&a.filter).map(Fast::of).collect(),
                    keys: plan.keys.iter().map(Fast::of).collect(),
                    arg: Fast::of(a.arg.as_ref().expect("a distinct count has an argument")),
                    shared: Shared::default(),
                };
                Source::Distinct(index(&mut self.distinct, &d))
            })
            .collect();
        let Source::Distinct(exists_by) = aggs[by] else {
            unreachable!("every aggregate is a distinct count")
        };
        self.views.push(View {
            id,
            plan: Arc::new(plan.clone()),
            filter: None,
            keys: Vec::new(),
            slots: Vec::new(),
            aggs,
            exists_by: Some(exists_by),
        });
        true
    }

    /// Adds a view if it can be fused.
    fn add(&mut self, id: u8, plan: &Plan) -> bool {
        let fits = plan.table == TableName::Events
            && plan.keys.len() <= ATOMS
            && plan
                .aggs
                .iter()
                .all(|a| a.additive() || a.func == AggFn::CountDistinct);
        if !fits || self.views.len() >= usize::from(u16::MAX) {
            return false;
        }
        let sums = plan.aggs.iter().any(|a| a.additive() && a.arg.is_some());
        let fine_time: Vec<&Expr> = plan.keys.iter().filter(|k| sub_day(k, plan)).collect();
        // The first group of the same kind it fits in, else a new one.
        for g in 0..=self.groups.len() {
            if g == self.groups.len() {
                self.groups.push(Group::default());
            }
            let group = &self.groups[g];
            let kind = |v: &View| {
                let p = &v.plan;
                let their_time: Vec<&Expr> = p.keys.iter().filter(|k| sub_day(k, p)).collect();
                p.aggs.iter().any(|a| a.additive() && a.arg.is_some()) == sums
                    && their_time == fine_time
            };
            if group.views.first().is_some_and(|&v| !kind(&self.views[v])) {
                continue;
            }
            if let Some(view) = self.try_add(g, id, plan) {
                self.groups[g].views.push(self.views.len());
                self.views.push(view);
                return true;
            }
            if self.groups[g].views.is_empty() {
                self.groups.pop();
                return false;
            }
        }
        false
    }

    /// The view as a member of group `g`, which grows to take it; `None` (and `g` unchanged)
    /// if it does not fit.
    fn try_add(&mut self, g: usize, id: u8, plan: &Plan) -> Option<View> {
        let mut group = self.groups[g].clone();
        if group.views.len() >= GROUP_VIEWS {
            return None;
        }
        if group.measures.is_empty() {
            group.measures.push(Measure::Rows);
        }
        let keys = plan
            .keys
            .iter()
            .map(|k| index(&mut group.atoms, &Fast::of(k)))
            .collect();
        let condition = |group: &mut Group, e: &Option<Expr>| {
            e.as_ref()
                .map(|e| index(&mut group.conditions, &Fast::of(e)) as u16)
        };
        let filter = condition(&mut group, &plan.filter);
        // The first slot counts the rows that pass `WHERE` (tested before any slot).
        let mut slots = vec![(0, None)];
        let mut distinct = Vec::new();
        let mut aggs = Vec::new();
        for a in &plan.aggs {
            // A distinct count tests its `FILTER` itself ([`Fused::pairs`]).
            let when = match a.func {
                AggFn::CountDistinct => None,
                _ => condition(&mut group, &a.filter),
            };
            let mut slot = |group: &mut Group, m: Measure| {
                let m = index(&mut group.measures, &m);
                index(&mut slots, &(m, when))
            };
            let arg = a.arg.clone();
            aggs.push(match (a.func, arg) {
                (AggFn::CountDistinct, Some(arg)) => {
                    let d = Distinct {
                        filter: plan.filter.iter().chain(&a.filter).map(Fast::of).collect(),
                        keys: plan.keys.iter().map(Fast::of).collect(),
                        arg: Fast::of(&arg),
                        shared: Shared::default(),
                    };
                    let at = self.distinct.iter().position(|x| *x == d);
                    let at = at.unwrap_or_else(|| {
                        distinct.push(d.clone());
                        self.distinct.len() + distinct.len() - 1
                    });
                    Source::Distinct(at)
                }
                (AggFn::CountRows, _) | (_, None) => Source::Additive {
                    sum: None,
                    count: slot(&mut group, Measure::Rows),
                },
                (AggFn::Count, Some(arg)) => Source::Additive {
                    sum: None,
                    count: slot(&mut group, Measure::NonNull(Fast::of(&arg))),
                },
                (_, Some(arg)) => Source::Additive {
                    sum: Some(slot(&mut group, Measure::Sum(Fast::of(&arg)))),
                    count: slot(&mut group, Measure::NonNull(Fast::of(&arg))),
                },
            });
        }
        let fits = group.atoms.len() <= ATOMS
            && group.conditions.len() <= BITS
            && group.measures.len() <= MEASURES
            && slots.len() <= MEASURES;
        if !fits {
            return None;
        }
        group.wheres = match (group.views.is_empty(), group.wheres, filter) {
            (_, _, None) => None,
            (true, _, Some(f)) => Some(1 << f),
            (false, w, Some(f)) => w.map(|w| w | 1 << f),
        };
        self.groups[g] = group;
        self.distinct.extend(distinct);
        Some(View {
            id,
            plan: Arc::new(plan.clone()),
            filter,
            keys,
            slots,
            aggs,
            exists_by: None,
        })
    }

    /// Builds the fused views over the events (rows, or typed events read as rows by
    /// `reader`) and returns their rows' changes.
    pub fn build<'s, D: AsRow>(
        self,
        events: VecCollection<'s, u64, D>,
        reader: D::Reader,
        symbols: &Arc<Symbols>,
        known: &Known<'s>,
    ) -> VecCollection<'s, u64, ViewRow> {
        let dated = |d: &Distinct| matches!(d.keys.as_slice(), [] | [Fast::Date(_)]);
        if self.distinct.iter().all(dated) {
            self.build_with::<Dated, D>(events, reader, symbols, known)
        } else if self.distinct.iter().all(|d| d.keys.len() <= 1) {
            self.build_with::<Narrow, D>(events, reader, symbols, known)
        } else {
            self.build_with::<Packed, D>(events, reader, symbols, known)
        }
    }

    /// [`Fused::build`], with the distinct counts' groups carried as `G`.
    fn build_with<'s, G: PairGroup, D: AsRow>(
        self,
        events: VecCollection<'s, u64, D>,
        reader: D::Reader,
        symbols: &Arc<Symbols>,
        known: &Known<'s>,
    ) -> VecCollection<'s, u64, ViewRow> {
        let this = Arc::new(self);
        let (t, s) = (this.clone(), symbols.clone());
        let r = this.clone();
        let mut scratch = Scratch::default();
        let (sums, counts) = events.sum_by_rollup_and_distinct_count_together_named(
            "sql_fused",
            move |event: &D, fine: &mut Vec<(Packed, Sums)>, pairs: &mut Vec<(G, Value)>| {
                event.read(&reader, |row| {
                    t.evaluate(row, &s, &mut scratch);
                    t.fine(row, &s, &scratch, fine);
                    t.pairs(row, &s, &scratch, pairs);
                })
            },
            move |fine: Packed, sums: Sums| r.rollup(fine, sums),
        );
        // A group's row may compare or show strings (`HAVING`, `ORDER BY`): every process must
        // know them.
        let (sums, counts) = (known.hold(sums), known.hold(counts));
        let counts = counts.map(|(group, n): (G, isize)| (group.packed(), n));
        let scope = sums.inner.scope();
        // Views of sums alone, without LIMIT: each group's row straight from its sums.
        let (f, s) = (this.clone(), symbols.clone());
        let mut outputs = vec![sums.clone().flat_map(move |(key, totals)| {
            let v = &f.views[usize::from(key.id)];
            let row = v
                .direct()
                .then(|| f.finish(v, &key, Some(&totals), &[], &s))?;
            row.map(|(keys, values, _)| (v.id, keys, values))
        })];
        if this.views.iter().any(|v| !v.direct()) {
            outputs.extend(Self::put_together(this, sums, counts, symbols));
        }
        differential_dataflow::collection::concatenate(scope, outputs)
    }

    /// The rows of the views that are not [`View::direct`]: a group's sums and distinct counts
    /// (and the seed of a view without `GROUP BY`) put together, then ranked for a `LIMIT`.
    fn put_together<'s>(
        this: Arc<Fused>,
        sums: VecCollection<'s, u64, (Packed, Sums)>,
        counts: VecCollection<'s, u64, (Packed, isize)>,
        symbols: &Arc<Symbols>,
    ) -> Vec<VecCollection<'s, u64, ViewRow>> {
        let scope = sums.inner.scope();
        let f = this.clone();
        let mut parts = vec![sums.flat_map(move |(key, totals)| {
            (!f.views[usize::from(key.id)].direct()).then_some((key, Part::Sums(totals)))
        })];
        let f = this.clone();
        parts.push(counts.flat_map(move |(key, n)| {
            // Each view with this distinct count; its group has the distinct count's keys.
            let d = usize::from(key.id);
            let views = f.views.iter().enumerate();
            views
                .filter(|(_, v)| {
                    v.aggs
                        .iter()
                        .any(|a| matches!(a, Source::Distinct(x) if *x == d))
                })
                .map(|(i, _)| {
                    let mut group = key;
                    group.id = i as u16;
                    (group, Part::Distinct(key.id, n as i64))
                })
                .collect::<Vec<_>>()
        }));
        // Every worker builds the same dataflow; worker 0 holds the seeds.
        if this.views.iter().any(|v| v.plan.global) {
            use differential_dataflow::input::Input;
            let seeds = this.views.iter().enumerate().filter(|(_, v)| v.plan.global);
            let seeds: Vec<_> = seeds
                .map(|(i, _)| {
                    let key = Packed {
                        id: i as u16,
                        ..Packed::default()
                    };
                    (key, Part::Seed)
                })
                .filter(|_| scope.index() == 0)
                .collect();
            parts.push(scope.new_collection_from(seeds).1);
        }
        let (f, s) = (this.clone(), symbols.clone());
        let rows = differential_dataflow::collection::concatenate(scope, parts).reduce_named(
            "sql_fused_rows",
            move |key: &Packed, parts: &[(&Part, isize)], out| {
                let (mut totals, mut counts, mut seeded) = (None, Vec::new(), false);
                for (p, _) in parts {
                    match p {
                        Part::Sums(t) => totals = Some(*t),
                        Part::Distinct(d, n) => counts.push((usize::from(*d), *n)),
                        Part::Seed => seeded = true,
                    }
                }
                let v = &f.views[usize::from(key.id)];
                let exists = v
                    .exists_by
                    .is_some_and(|d| counts.iter().any(|&(c, n)| c == d && n > 0));
                if totals.is_none() && !seeded && !exists {
                    return;
                }
                if let Some(row) = f.finish(v, key, totals.as_ref(), &counts, &s) {
                    out.push((row, 1));
                }
            },
        );
        let mut outputs = Vec::new();
        for (i, v) in this.views.iter().enumerate().filter(|(_, v)| !v.direct()) {
            let id = v.id;
            let mine = rows
                .clone()
                .flat_map(move |(key, row)| (usize::from(key.id) == i).then_some(row));
            let rank = v.plan.rank;
            outputs.push(match v.plan.limit {
                None => mine.map(move |(keys, values, _)| (id, keys, values)),
                Some(limit) => mine
                    .map(|(keys, values, place)| ((), (place, keys, values)))
                    .top_k_named("sql_limit", limit)
                    .map(move |((), (place, (_, keys, values)))| {
                        (id, keys, ranked(values, rank, place))
                    }),
            });
        }
        outputs
    }

    /// Evaluates the shared expressions over `row` into `scratch`.
    fn evaluate(&self, row: &[Datum], symbols: &Symbols, scratch: &mut Scratch) {
        scratch.atoms.clear();
        let atoms = self.atoms.iter().map(|a| pack_fast(a, row, symbols));
        scratch.atoms.extend(atoms);
        scratch.tested.clear();
        let tested = self.predicates.iter().map(|p| p.holds(row, symbols));
        scratch.tested.extend(tested);
        scratch.holds.clear();
        let tested = &scratch.tested;
        let holds = self.conjuncts.iter().map(|c| c.iter().all(|&p| tested[p]));
        scratch.holds.extend(holds);
    }

    /// Pushes an event's fine keys, one per group it reaches, with its measures; `scratch`
    /// holds its shared expressions' values ([`Fused::evaluate`]).
    fn fine(
        &self,
        row: &[Datum],
        symbols: &Symbols,
        scratch: &Scratch,
        out: &mut Vec<(Packed, Sums)>,
    ) {
        for (g, group) in self.groups.iter().enumerate() {
            let mut bits = 0u16;
            for (i, &c) in group.shared.conditions.iter().enumerate() {
                bits |= u16::from(scratch.holds[c]) << i;
            }
            if group.wheres.is_some_and(|w| bits & w == 0) {
                continue;
            }
            let mut key = Packed {
                id: g as u16,
                bits,
                ..Packed::default()
            };
            for (i, &a) in group.shared.atoms.iter().enumerate() {
                (key.tags[i], key.words[i]) = scratch.atoms[a];
            }
            let measure = |m: &Measure| match m {
                Measure::Rows => 1,
                Measure::NonNull(e) => i64::from(!e.is_null(row, symbols)),
                Measure::Sum(Fast::Slot(i)) => match row[*i] {
                    Datum::Int(n) | Datum::Money(n) => n,
                    _ => 0,
                },
                Measure::Sum(e) => match e.eval(row, symbols) {
                    Datum::Int(n) | Datum::Money(n) => n,
                    _ => 0,
                },
            };
            // Each sum a value of its own, not a store into an array: the array read back
            // whole right after its pieces were stored stalled the pass (store forwarding).
            let sum = |k: usize| group.measures.get(k).map_or(0, measure);
            out.push((key, Sums([sum(0), sum(1), sum(2), sum(3)])));
        }
    }

    /// What a fine key's totals add to its group's views.
    fn rollup(&self, fine: Packed, totals: Sums) -> SmallVec<[(Packed, Sums); GROUP_VIEWS]> {
        let group = &self.groups[usize::from(fine.id)];
        let holds = |c: Option<u16>| c.is_none_or(|c| fine.bits & 1 << c != 0);
        let mut out = SmallVec::new();
        for &i in &group.views {
            let v = &self.views[i];
            if !holds(v.filter) {
                continue;
            }
            let mut key = Packed {
                id: i as u16,
                ..Packed::default()
            };
            for (k, &atom) in v.keys.iter().enumerate() {
                key.tags[k] = fine.tags[atom];
                key.words[k] = fine.words[atom];
            }
            let mut sums = Sums::default();
            for (slot, &(m, condition)) in sums.0.iter_mut().zip(&v.slots) {
                if holds(condition) {
                    *slot = totals.0[m];
                }
            }
            out.push((key, sums));
        }
        out
    }

    /// Pushes an event's (distinct count's group, value) pairs; `scratch` as for
    /// [`Fused::fine`].
    fn pairs<G: PairGroup>(
        &self,
        row: &[Datum],
        symbols: &Symbols,
        scratch: &Scratch,
        out: &mut Vec<(G, Value)>,
    ) {
        for (i, d) in self.distinct.iter().enumerate() {
            if !d.shared.conditions.iter().all(|&c| scratch.holds[c]) {
                continue;
            }
            let value = match &d.arg {
                Fast::Slot(i) => pack_value(&row[*i], symbols),
                e => pack_value(&e.eval(row, symbols), symbols),
            };
            let Some(value) = value else {
                continue;
            };
            let keys = d.shared.atoms.iter().map(|&a| scratch.atoms[a]);
            out.push((G::of(i as u16, keys), value));
        }
    }

    /// A view's row from its group's sums and distinct counts (by distinct count index).
    fn finish(
        &self,
        v: &View,
        key: &Packed,
        totals: Option<&Sums>,
        counts: &[(usize, i64)],
        symbols: &Symbols,
    ) -> Option<(Vec<Datum>, Vec<Datum>, super::flow::SortKey)> {
        let plan = &v.plan;
        let mut row: Vec<Datum> = (0..plan.keys.len())
            .map(|k| unpack(key.tags[k], key.words[k]))
            .collect();
        let slot = |s: usize| totals.map_or(0, |t| t.0[s]);
        for (a, source) in plan.aggs.iter().zip(&v.aggs) {
            row.push(match *source {
                Source::Additive { sum, count } => {
                    additive_value(a, sum.map_or(0, slot), slot(count))
                }
                Source::Distinct(d) => {
                    Datum::Int(counts.iter().find(|(c, _)| *c == d).map_or(0, |(_, n)| *n))
                }
            });
        }
        finish(plan, row, plan.keys.len(), symbols)
    }
}

/// One part of a view's group, put together by `sql_fused_rows`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
enum Part {
    /// The group's sums.
    Sums(Sums),
    /// A distinct count (by index) and its value.
    Distinct(u16, i64),
    /// The one group of a view without `GROUP BY`.
    Seed,
}

/// The index of `x` in `list`, pushed if new.
fn index<T: PartialEq + Clone>(list: &mut Vec<T>, x: &T) -> usize {
    list.iter().position(|y| y == x).unwrap_or_else(|| {
        list.push(x.clone());
        list.len() - 1
    })
}

/// Whether a key expression is a time finer than a day.
fn sub_day(e: &Expr, plan: &Plan) -> bool {
    match e {
        Expr::Trunc(unit, _) => matches!(unit, Unit::Second | Unit::Minute | Unit::Hour),
        Expr::Slot(i) => plan.input_types.get(*i) == Some(&Type::Timestamp),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
