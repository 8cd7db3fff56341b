//! The number of distinct items per group.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasher, Hash};

use differential_dataflow::hashable::Hashable;
use differential_dataflow::lattice::Lattice;
use differential_dataflow::operators::CountTotal;
use differential_dataflow::{AsCollection, ExchangeData, VecCollection};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Operator;
use timely::order::TotalOrder;
use timely::progress::Timestamp;

use crate::open_times::OpenTimes;

type Table<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The pairs' multiplicities, in `2^SHARD_BITS` tables chosen by the top bits of the pair's
/// hash. A hash table doubles all at once when it fills: one table of 115,000 pairs took a
/// worker 3-6 ms to rehash in `lambdaflow bench`, and the epoch being applied waited that long;
/// a shard holds a 64th of the pairs and rehashes in a 64th of the time.
struct Multiplicities<K> {
    shards: Vec<Table<K, isize>>,
    /// Picks the shard; seeded apart from the shards' own hashers, so that the keys of a shard
    /// still differ in the bits its table uses.
    chooser: foldhash::fast::RandomState,
}

/// `2^SHARD_BITS` shards.
const SHARD_BITS: u32 = 6;

impl<K: Hash + Eq> Multiplicities<K> {
    fn new() -> Self {
        Multiplicities {
            shards: (0..1 << SHARD_BITS).map(|_| Table::default()).collect(),
            chooser: Default::default(),
        }
    }

    fn shard(&mut self, key: &K) -> &mut Table<K, isize> {
        let shard = (self.chooser.hash_one(key) >> (64 - SHARD_BITS)) as usize;
        &mut self.shards[shard]
    }
}

/// A time's pair updates, kept until the input frontier passes the time.
type Updates<G, I> = Vec<((G, I), isize)>;

/// Counts distinct items per group: `(group, item)` pairs in, `(group, distinct items)` out.
///
/// Duplicates cost one hash table probe after the first: each worker keeps the pairs its share
/// of the pair hashes sends it, with their multiplicities, and only a pair appearing (its
/// multiplicity turning positive) or disappearing changes its group's count. Retractions are
/// ordinary updates.
pub trait DistinctCount<'scope, T: Timestamp, D> {
    /// As [`DistinctCount::distinct_count_named`], with the name `DistinctCount`.
    ///
    /// ```
    /// use differential_dataflow::input::Input;
    /// use lambdaflow_operators::DistinctCount;
    ///
    /// timely::example(|scope| {
    ///     // (day, user): daily active users
    ///     let visits = [(1, "ann"), (1, "bob"), (1, "ann"), (2, "ann")].map(|(d, u)| (d, u.to_string()));
    ///     let (_input, visits) = scope.new_collection_from(visits);
    ///     visits
    ///         .distinct_count(|(day, user): (u32, String)| Some((day, user)))
    ///         .inspect(|((day, users), _time, _diff)| assert_eq!(*users, if *day == 1 { 2 } else { 1 }));
    /// });
    /// ```
    fn distinct_count<G, I, P, L>(self, logic: L) -> VecCollection<'scope, T, (G, isize), isize>
    where
        G: ExchangeData + Hash,
        I: ExchangeData + Hash,
        P: IntoIterator<Item = (G, I)>,
        L: FnMut(D) -> P + 'static,
        Self: Sized,
    {
        self.distinct_count_named("DistinctCount", logic)
    }

    /// Counts, per group, the distinct items among the `(group, item)` pairs `logic` returns:
    /// for each record none (`None`), one (`Some`), or several (any iterator).
    ///
    /// ```
    /// use differential_dataflow::input::Input;
    /// use lambdaflow_operators::DistinctCount;
    ///
    /// timely::example(|scope| {
    ///     // one pass, two groups per order: buyers per shop and buyers overall
    ///     let orders = [("north", "ann"), ("south", "ann"), ("north", "bob")].map(|(s, u)| (s.to_string(), u.to_string()));
    ///     let (_input, orders) = scope.new_collection_from(orders);
    ///     orders
    ///         .distinct_count_named("Buyers", |(shop, user): (String, String)| {
    ///             [(shop, user.clone()), ("all".to_string(), user)]
    ///         })
    ///         .inspect(|((group, buyers), _time, _diff)| match group.as_str() {
    ///             "south" => assert_eq!(*buyers, 1),
    ///             _ => assert_eq!(*buyers, 2), // north: ann and bob; all: ann counted once
    ///         });
    /// });
    /// ```
    fn distinct_count_named<G, I, P, L>(
        self,
        name: &str,
        logic: L,
    ) -> VecCollection<'scope, T, (G, isize), isize>
    where
        G: ExchangeData + Hash,
        I: ExchangeData + Hash,
        P: IntoIterator<Item = (G, I)>,
        L: FnMut(D) -> P + 'static;
}

impl<'scope, T, D> DistinctCount<'scope, T, D> for VecCollection<'scope, T, D, isize>
where
    T: Timestamp + Lattice + TotalOrder + ExchangeData,
    D: Clone + 'static,
{
    fn distinct_count_named<G, I, P, L>(
        self,
        name: &str,
        mut logic: L,
    ) -> VecCollection<'scope, T, (G, isize), isize>
    where
        G: ExchangeData + Hash,
        I: ExchangeData + Hash,
        P: IntoIterator<Item = (G, I)>,
        L: FnMut(D) -> P + 'static,
    {
        let pairs = crate::presum::presum::<crate::presum::Hashed<_, _>, _, _, _, _, _, _>(
            self,
            name,
            move |d| logic(d).into_iter().map(|pair| (pair, 1isize)),
        );
        counts(pairs, name)
    }
}

/// The distinct count per group of presummed `((group, item), multiplicity)` updates.
pub(crate) fn counts<'scope, T, G, I>(
    pairs: VecCollection<'scope, T, (G, I), isize>,
    name: &str,
) -> VecCollection<'scope, T, (G, isize), isize>
where
    T: Timestamp + Lattice + TotalOrder + ExchangeData,
    G: ExchangeData + Hash,
    I: ExchangeData + Hash,
{
    presence_changes(pairs, &format!("{name} pairs"))
        .arrange_by_self_named(&format!("Arrange: {name} groups"))
        .count_total()
}

/// For each time, per group, how many pairs appeared (positive) or disappeared (negative).
///
/// The pairs are exchanged by their hash; each worker keeps its pairs' multiplicities in a hash
/// table and applies each time's updates once the input frontier has passed the time, in time
/// order. A pair is present while its multiplicity is positive. The output is the multiset of
/// groups with one copy per present pair, as differences: what `distinct_total` followed by
/// `map(group)` produces, without sorting the pairs into an arrangement.
fn presence_changes<'scope, T, G, I>(
    pairs: VecCollection<'scope, T, (G, I), isize>,
    name: &str,
) -> VecCollection<'scope, T, G, isize>
where
    T: Timestamp + TotalOrder + ExchangeData,
    G: ExchangeData + Hash,
    I: ExchangeData + Hash,
{
    let by_pair = Exchange::new(|(pair, _time, _diff): &((G, I), T, isize)| pair.hashed());
    pairs
        .inner
        .unary_frontier(by_pair, name, move |_initial, _info| {
            let mut multiplicity = Multiplicities::new();
            let mut open: OpenTimes<T, Updates<G, I>> = OpenTimes::new();
            move |(input, frontier), output| {
                input.for_each_time(|cap, data| {
                    for batch in data {
                        for (pair, time, diff) in batch.drain(..) {
                            open.at(&cap, output.output_index(), &time)
                                .push((pair, diff));
                        }
                    }
                });
                open.take_complete(frontier, |cap, updates| {
                    let mut changes: Table<G, isize> = Table::default();
                    for (pair, diff) in updates.drain(..) {
                        if let Some((group, change)) = apply(&mut multiplicity, pair, diff) {
                            *changes.entry(group).or_default() += change;
                        }
                    }
                    let time = cap.time().clone();
                    output.session(cap).give_iterator(
                        changes
                            .into_iter()
                            .filter(|(_, change)| *change != 0)
                            .map(|(group, change)| (group, time.clone(), change)),
                    );
                });
            }
        })
        .as_collection()
}

/// Adds `diff` to the multiplicity of `pair`; returns its group and +1 if the pair appeared, -1
/// if it disappeared.
fn apply<G: Clone + Eq + Hash, I: Eq + Hash>(
    multiplicity: &mut Multiplicities<(G, I)>,
    pair: (G, I),
    diff: isize,
) -> Option<(G, isize)> {
    match multiplicity.shard(&pair).entry(pair) {
        Entry::Occupied(mut entry) => {
            let was = *entry.get() > 0;
            *entry.get_mut() += diff;
            let now = *entry.get() > 0;
            let change = (was != now).then(|| (entry.key().0.clone(), if now { 1 } else { -1 }));
            if *entry.get() == 0 {
                entry.remove();
            }
            change
        }
        Entry::Vacant(entry) => {
            let change = (diff > 0).then(|| (entry.key().0.clone(), 1));
            if diff != 0 {
                entry.insert(diff);
            }
            change
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{DistinctCount, Multiplicities, SHARD_BITS};
    use differential_dataflow::input::Input;
    use timely::dataflow::operators::Inspect;
    use timely::dataflow::operators::capture::{Capture, Extract};

    #[test]
    fn pairs_spread_over_every_shard() {
        let mut table = Multiplicities::new();
        for user in 0..64_000u64 {
            *table.shard(&(1u32, user)).entry((1, user)).or_default() += 1;
        }
        let sizes: Vec<usize> = table.shards.iter().map(|s| s.len()).collect();
        assert_eq!(sizes.len(), 1 << SHARD_BITS);
        assert_eq!(sizes.iter().sum::<usize>(), 64_000);
        // 1,000 each on average: none empty, none with more than twice its share.
        assert!(sizes.iter().all(|&n| n > 500 && n < 2_000), "{sizes:?}");
    }

    #[test]
    fn a_duplicate_pair_counts_once_and_a_new_pair_updates_the_count() {
        let rx = timely::example(|scope| {
            let (mut input, visits) = scope.new_collection::<(u32, u32), isize>();
            input.update_at((1, 7), 0, 1);
            input.update_at((1, 7), 0, 1);
            input.update_at((1, 8), 1, 1);
            visits.distinct_count_named("Users", Some).inner.capture()
        });
        let mut updates: Vec<_> = rx.extract().into_iter().flat_map(|(_, v)| v).collect();
        updates.sort();
        let mut expected = vec![((1, 1), 0, 1), ((1, 1), 1, -1), ((1, 2), 1, 1)];
        expected.sort();
        assert_eq!(updates, expected);
    }

    #[test]
    fn counts_equal_a_recount_at_every_time_on_two_workers_with_retractions_out_of_order() {
        use std::collections::BTreeMap;
        use std::sync::{Arc, Mutex};

        // (group, item) pairs, at times 0..8 fed in shuffled order, with retractions.
        let mut seed = 0x2545_f491_u64;
        let mut next = move |n: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % n
        };
        let updates: Vec<((u32, u32), u64, isize)> = (0..600)
            .map(|_| {
                let diff = [1, 1, 2, -1][next(4) as usize];
                ((next(3) as u32, next(12) as u32), next(8), diff)
            })
            .collect();

        let out = Arc::new(Mutex::new(Vec::new()));
        let (feed, sink) = (updates.clone(), out.clone());
        timely::execute(timely::Config::process(2), move |worker| {
            let (index, peers) = (worker.index(), worker.peers());
            let sink = sink.clone();
            let mut input = worker.dataflow::<u64, _, _>(|scope| {
                let (input, pairs) = scope.new_collection::<(u32, u32), isize>();
                pairs
                    .distinct_count_named("Users", Some)
                    .inner
                    .inspect(move |update| sink.lock().expect("sink").push(*update));
                input
            });
            for (i, (pair, time, diff)) in feed.iter().enumerate() {
                if i % peers == index {
                    input.update_at(*pair, *time, *diff);
                }
            }
        })
        .expect("timely runs");

        let out = out.lock().expect("sink").clone();
        for t in 0..8u64 {
            let mut multiplicity: BTreeMap<(u32, u32), isize> = BTreeMap::new();
            for (pair, time, diff) in &updates {
                if *time <= t {
                    *multiplicity.entry(*pair).or_default() += diff;
                }
            }
            let mut expected: BTreeMap<(u32, isize), isize> = BTreeMap::new();
            for g in 0..3u32 {
                let n = multiplicity
                    .iter()
                    .filter(|((pg, _), m)| *pg == g && **m > 0)
                    .count();
                if n > 0 {
                    expected.insert((g, n as isize), 1);
                }
            }
            let mut got: BTreeMap<(u32, isize), isize> = BTreeMap::new();
            for (row, time, diff) in &out {
                if *time <= t {
                    *got.entry(*row).or_default() += diff;
                }
            }
            got.retain(|_, d| *d != 0);
            assert_eq!(got, expected, "at time {t}");
        }
    }
}
