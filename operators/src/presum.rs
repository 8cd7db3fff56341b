//! Summing per key in a hash table before anything is sorted or exchanged.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::Hash;

use differential_dataflow::difference::{Multiply, Semigroup};
use differential_dataflow::{AsCollection, VecCollection};
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::Operator;

use crate::open_times::OpenTimes;
use timely::order::TotalOrder;
use timely::progress::Timestamp;

type Sums<K, A> = HashMap<K, A, foldhash::fast::RandomState>;

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
pub(crate) fn presum<'scope, T, D, K, A, P, L>(
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
{
    let sums: StreamVec<'scope, T, (K, T, A)> =
        collection
            .inner
            .unary_frontier(Pipeline, name, move |_initial, _info| {
                let mut open: OpenTimes<T, Sums<K, A>> = OpenTimes::new();
                move |(input, frontier), output| {
                    input.for_each_time(|cap, data| {
                        for batch in data {
                            for (record, time, diff) in batch.drain(..) {
                                let mut pairs = logic(record).into_iter().peekable();
                                if pairs.peek().is_none() {
                                    continue;
                                }
                                let sums = open.at(&cap, output.output_index(), &time);
                                for (key, amount) in pairs {
                                    let amount = amount.multiply(&diff);
                                    match sums.entry(key) {
                                        Entry::Occupied(mut total) => {
                                            total.get_mut().plus_equals(&amount)
                                        }
                                        Entry::Vacant(slot) => {
                                            slot.insert(amount);
                                        }
                                    }
                                }
                            }
                        }
                    });
                    open.take_complete(frontier, |cap, sums| {
                        let time = cap.time().clone();
                        output.session(cap).give_iterator(
                            sums.drain()
                                .filter(|(_, total)| !total.is_zero())
                                .map(|(key, total)| (key, time.clone(), total)),
                        );
                    });
                }
            });
    sums.as_collection()
}

#[cfg(test)]
mod tests {
    use super::presum;
    use differential_dataflow::input::Input;
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
            presum(words, "Test", |(w, n): (&str, isize)| Some((w, n)))
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
}
