//! Summing per key in a hash table before anything is sorted or exchanged.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasher, Hash};

use differential_dataflow::difference::{Multiply, Semigroup};
use differential_dataflow::{AsCollection, VecCollection};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::{InputCapability, Operator};

use crate::open_times::{OpenTimes, State};
use timely::order::TotalOrder;
use timely::progress::Timestamp;

type Table<K, A> = HashMap<K, A, foldhash::fast::RandomState>;

/// What a time's sums per key are kept in.
pub(crate) trait Sums<K, A>: State {
    /// Adds `amount` to the sum of `key`.
    fn add(&mut self, key: K, amount: A);

    /// Every key's sum, zeros included, leaving the sums empty.
    fn drain(&mut self) -> impl Iterator<Item = (K, A)> + '_;
}

/// Sums in a hash table: one probe per addition. For keys that do not recur close together,
/// such as (day, user) pairs.
pub(crate) struct Hashed<K, A>(Table<K, A>);

impl<K, A> Default for Hashed<K, A> {
    fn default() -> Self {
        Hashed(Table::default())
    }
}

impl<K, A> State for Hashed<K, A> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<K: Eq + Hash, A: Semigroup> Sums<K, A> for Hashed<K, A> {
    fn add(&mut self, key: K, amount: A) {
        add_to(&mut self.0, key, amount);
    }

    fn drain(&mut self) -> impl Iterator<Item = (K, A)> + '_ {
        self.0.drain()
    }
}

/// Slots of [`Recent`]'s cache.
const RECENT: usize = 256;

/// Sums in a hash table behind a small direct-mapped cache of the keys added last, each with
/// its running sum. For keys that recur close together: an event-time stream's minute, and the
/// event types, countries and sources seen in it. A key found in the cache costs a hash and a
/// comparison instead of a table probe; a key that takes another's slot moves that one's sum
/// into the table.
pub(crate) struct Recent<K, A> {
    table: Table<K, A>,
    /// `RECENT` slots: a time is opened by its first addition, so every one uses them.
    slots: Vec<Option<(K, A)>>,
}

impl<K, A> Default for Recent<K, A> {
    fn default() -> Self {
        Recent {
            table: Table::default(),
            slots: std::iter::repeat_with(|| None).take(RECENT).collect(),
        }
    }
}

impl<K, A> State for Recent<K, A> {
    fn is_empty(&self) -> bool {
        self.table.is_empty() && self.slots.iter().all(Option::is_none)
    }
}

impl<K: Eq + Hash, A: Semigroup> Sums<K, A> for Recent<K, A> {
    fn add(&mut self, key: K, amount: A) {
        let slot = self.table.hasher().hash_one(&key) as usize % RECENT;
        match &mut self.slots[slot] {
            Some((cached, total)) if *cached == key => total.plus_equals(&amount),
            other => {
                if let Some((evicted, total)) = other.replace((key, amount)) {
                    add_to(&mut self.table, evicted, total);
                }
            }
        }
    }

    fn drain(&mut self) -> impl Iterator<Item = (K, A)> + '_ {
        for slot in &mut self.slots {
            if let Some((key, total)) = slot.take() {
                add_to(&mut self.table, key, total);
            }
        }
        self.table.drain()
    }
}

/// Maps every record to `(key, amount)` pairs with `logic` (none, one as an `Option`, or several
/// as any iterator) and sums the
/// amounts, multiplied by the record's difference, per key and time, on this worker. Each key
/// leaves once per time, as one update whose difference is its total, when the input frontier
/// has passed the time; totals that sum to zero do not leave at all.
///
/// This is `explode(logic).consolidate_stream()` without the sort: views key millions of events
/// by a handful of event types, countries or minutes, and a hash table probe per event is several
/// times cheaper than sorting each batch of updates. It also consolidates a whole time, not one
/// batch, so the arrangement downstream receives one update per key and epoch. Holding a time
/// until it is complete delays nothing: an arrangement does not move past a time either until
/// its input frontier has.
///
/// `S` keeps each time's sums: [`Recent`] for keys that recur close together, [`Hashed`]
/// otherwise.
pub(crate) fn presum<'scope, S, T, D, K, A, P, L>(
    collection: VecCollection<'scope, T, D, isize>,
    name: &str,
    mut logic: L,
) -> VecCollection<'scope, T, K, A>
where
    T: Timestamp + TotalOrder,
    D: Clone + 'static,
    K: Clone + Eq + Hash + 'static,
    A: Semigroup + Multiply<isize, Output = A> + 'static,
    P: IntoIterator<Item = (K, A)>,
    L: FnMut(D) -> P + 'static,
    S: Sums<K, A> + 'static,
{
    let sums: StreamVec<'scope, T, (K, T, A)> =
        collection
            .inner
            .unary_frontier(Pipeline, name, move |_initial, _info| {
                let mut open: OpenTimes<T, S> = OpenTimes::new();
                move |(input, frontier), output| {
                    input.for_each_time(|cap, data| {
                        for batch in data {
                            for (record, time, diff) in batch.drain(..) {
                                let port = output.output_index();
                                add(&mut open, &cap, port, &time, logic(record), diff);
                            }
                        }
                    });
                    open.take_complete(frontier, |cap, sums| {
                        output
                            .session(cap)
                            .give_iterator(totals(cap.time(), sums.drain()));
                    });
                }
            });
    sums.as_collection()
}

/// [`presum`] twice over one pass of the records: `both` pushes a borrowed record's pairs of
/// each kind into a vector of its own (emptied after each record, its allocation kept), and
/// each kind has its own sums and output. Two operators reading one stream would each need
/// their own copy of every batch of records; this one reads them once. The second kind's keys
/// are counted: each adds the record's difference.
///
/// The first sums are kept by a finer key, `F`, and rolled up into the keys that leave when a
/// time completes: `rollup` maps each fine key's non-zero total to `(key, amount)` pairs,
/// which are summed again. A record that adds to several sums by one key each can add to one
/// fine key instead (one hash table probe per record in place of several), and the several
/// come from the fine totals, far fewer per time than the records. `rollup` must be linear in the amount, as a
/// sum is: the rolled-up totals are then those the records would have given one by one.
pub(crate) fn presum_two<'scope, T, D, F, K1, A1, R, Q, K2, M>(
    collection: VecCollection<'scope, T, D, isize>,
    name: &str,
    mut both: M,
    mut rollup: R,
) -> (
    VecCollection<'scope, T, K1, A1>,
    VecCollection<'scope, T, K2, isize>,
)
where
    T: Timestamp + TotalOrder,
    D: Clone + 'static,
    F: Eq + Hash + 'static,
    K1: Clone + Eq + Hash + 'static,
    A1: Semigroup + Multiply<isize, Output = A1> + 'static,
    R: FnMut(F, A1) -> Q + 'static,
    Q: IntoIterator<Item = (K1, A1)>,
    K2: Clone + Eq + Hash + 'static,
    M: FnMut(&D, &mut Vec<(F, A1)>, &mut Vec<K2>) + 'static,
{
    let mut builder = OperatorBuilder::new(name.to_owned(), collection.inner.scope());
    let mut input = builder.new_input(collection.inner, Pipeline);
    let (out1, stream1) = builder.new_output();
    let (out2, stream2) = builder.new_output();
    let mut out1 = OutputBuilder::<_, CapacityContainerBuilder<Vec<(K1, T, A1)>>>::from(out1);
    let mut out2 = OutputBuilder::<_, CapacityContainerBuilder<Vec<(K2, T, isize)>>>::from(out2);
    builder.build(move |initial| {
        drop(initial);
        // The fine keys recur close together; the second ones, in the views (day, user) pairs,
        // need not.
        let mut open1: OpenTimes<T, Recent<F, A1>> = OpenTimes::new();
        let mut open2: OpenTimes<T, Hashed<K2, isize>> = OpenTimes::new();
        // A record's pairs, pushed by `both`.
        let (mut firsts, mut seconds) = (Vec::new(), Vec::new());
        // The rolled-up sums of the time completing, kept for its allocation.
        let mut rolled: Table<K1, A1> = Table::default();
        move |frontiers| {
            input.for_each_time(|cap, data| {
                for batch in data {
                    for (record, time, diff) in batch.drain(..) {
                        both(&record, &mut firsts, &mut seconds);
                        add(&mut open1, &cap, 0, &time, firsts.drain(..), diff);
                        let counted = seconds.drain(..).map(|key| (key, 1));
                        add(&mut open2, &cap, 1, &time, counted, diff);
                    }
                }
            });
            let mut out1 = out1.activate();
            open1.take_complete(&frontiers[0], |cap, sums| {
                for (fine, total) in sums.drain() {
                    if !total.is_zero() {
                        for (key, amount) in rollup(fine, total) {
                            add_to(&mut rolled, key, amount);
                        }
                    }
                }
                out1.session(cap)
                    .give_iterator(totals(cap.time(), rolled.drain()));
            });
            let mut out2 = out2.activate();
            open2.take_complete(&frontiers[0], |cap, sums| {
                out2.session(cap)
                    .give_iterator(totals(cap.time(), sums.drain()));
            });
        }
    });
    (stream1.as_collection(), stream2.as_collection())
}

/// Adds `pairs`, each amount multiplied by `diff`, to the sums of `time`.
fn add<T, S, K, A, P>(
    open: &mut OpenTimes<T, S>,
    cap: &InputCapability<T>,
    port: usize,
    time: &T,
    pairs: P,
    diff: isize,
) where
    T: Timestamp + TotalOrder,
    K: Eq + Hash,
    A: Semigroup + Multiply<isize, Output = A>,
    P: IntoIterator<Item = (K, A)>,
    S: Sums<K, A>,
{
    // The time is opened at its first pair: a record without pairs opens nothing. The pairs are
    // iterated in place: a record's pairs are often an array of options, and moving the iterator
    // into a `Peekable` copied that array for every record (5% of a worker in `lambdaflow bench`).
    let mut pairs = pairs.into_iter();
    let Some(first) = pairs.next() else {
        return;
    };
    let sums = open.at(cap, port, time);
    sums.add(first.0, first.1.multiply(&diff));
    for (key, amount) in &mut pairs {
        sums.add(key, amount.multiply(&diff));
    }
}

/// Adds `amount` to the sum of `key`.
fn add_to<K: Eq + Hash, A: Semigroup>(sums: &mut Table<K, A>, key: K, amount: A) {
    match sums.entry(key) {
        Entry::Occupied(mut total) => total.get_mut().plus_equals(&amount),
        Entry::Vacant(slot) => {
            slot.insert(amount);
        }
    }
}

/// A completed time's non-zero totals, from `sums`, as updates at `time`.
fn totals<'a, T: Clone, K, A: Semigroup>(
    time: &'a T,
    sums: impl Iterator<Item = (K, A)> + 'a,
) -> impl Iterator<Item = (K, T, A)> + 'a {
    sums.filter(|(_, total)| !total.is_zero())
        .map(move |(key, total)| (key, time.clone(), total))
}

#[cfg(test)]
mod tests {
    use super::{Hashed, RECENT, Recent, Sums, presum};
    use crate::open_times::State;
    use differential_dataflow::input::Input;
    use std::collections::BTreeMap;
    use timely::dataflow::operators::capture::{Capture, Extract};

    #[test]
    fn one_update_per_key_and_time_with_zero_totals_left_out() {
        let rx = timely::example(|scope| {
            let (mut input, words) = scope.new_collection::<(&'static str, isize), isize>();
            input.update_at(("a", 2), 0, 1);
            input.update_at(("a", 3), 0, 1);
            input.update_at(("b", 1), 0, 1);
            input.update_at(("a", 5), 1, 1);
            input.update_at(("b", 1), 1, 1);
            input.update_at(("b", 1), 1, -1); // sums to zero in time 1: nothing leaves
            input.update_at(("c", 4), 1, -2); // the difference multiplies the amount
            presum::<Hashed<_, _>, _, _, _, _, _, _>(words, "Test", |(w, n): (&str, isize)| {
                Some((w, n))
            })
            .inner
            .capture()
        });
        let mut updates: Vec<_> = rx.extract().into_iter().flat_map(|(_, v)| v).collect();
        updates.sort();
        assert_eq!(
            updates,
            vec![("a", 0, 5), ("a", 1, 5), ("b", 0, 1), ("c", 1, -8)]
        );
    }

    #[test]
    fn sums_of_more_keys_than_the_cache_holds_are_the_plain_sums() {
        // Keys recurring in short stretches and far apart, many more of them than cache slots
        // (so keys share slots and are moved to the table and back), with amounts that cancel.
        let mut sums: Recent<u64, isize> = Recent::default();
        for round in 0..2 {
            let mut expected: BTreeMap<u64, isize> = BTreeMap::new();
            let mut x: u64 = 7 + round;
            for i in 0..50_000u64 {
                x = x
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let key = if i % 3 == 0 {
                    (x >> 33) % (8 * RECENT as u64)
                } else {
                    i / 4
                };
                let amount = (x >> 60) as isize - 8;
                sums.add(key, amount);
                *expected.entry(key).or_default() += amount;
            }
            let mut got: Vec<(u64, isize)> = sums.drain().collect();
            got.sort();
            let expected: Vec<(u64, isize)> = expected.into_iter().collect();
            assert_eq!(got.len(), expected.len(), "round {round}: every key once");
            assert_eq!(got, expected, "round {round}");
            assert!(sums.is_empty(), "round {round}: drained sums are empty");
        }
    }
}
