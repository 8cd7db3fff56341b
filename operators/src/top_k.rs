//! The `k` smallest values per group, ranked.

use differential_dataflow::lattice::Lattice;
use differential_dataflow::{ExchangeData, VecCollection};
use std::hash::Hash;
use timely::order::TotalOrder;
use timely::progress::Timestamp;

/// Keeps the `k` smallest values of each group, with their rank (1 for the smallest).
///
/// "Smallest" is the value's `Ord`, so the caller encodes the ranking in the value: to rank
/// products by revenue, highest first, ties by name, use `(Reverse(revenue), name)`. A value
/// present with multiplicity `m` takes `m` consecutive ranks.
pub trait TopK<'scope, T: Timestamp, G, V> {
    /// As [`TopK::top_k_named`], with the name `TopK`.
    ///
    /// ```
    /// use std::cmp::Reverse;
    /// use differential_dataflow::input::Input;
    /// use lambdaflow_operators::TopK;
    ///
    /// timely::example(|scope| {
    ///     let revenue = [(50, "mug"), (90, "lamp"), (50, "cup")].map(|(r, n)| ((), (Reverse(r), n.to_string())));
    ///     let (_input, revenue) = scope.new_collection_from(revenue);
    ///     revenue.top_k(2).inspect(|(((), (rank, (_, name))), _time, _diff)| match *rank {
    ///         1 => assert_eq!(name, "lamp"),
    ///         _ => assert_eq!(name, "cup"), // ties broken by name
    ///     });
    /// });
    /// ```
    fn top_k(self, k: usize) -> VecCollection<'scope, T, (G, (usize, V)), isize>
    where
        Self: Sized,
    {
        self.top_k_named("TopK", k)
    }

    /// Keeps, per group, the `k` smallest values as `(group, (rank, value))`.
    ///
    /// ```
    /// use differential_dataflow::input::Input;
    /// use lambdaflow_operators::TopK;
    ///
    /// timely::example(|scope| {
    ///     // the fastest lap per driver: a group each, k = 1
    ///     let laps = [("ann", 71), ("bob", 69), ("ann", 68)].map(|(d, s)| (d.to_string(), s));
    ///     let (_input, laps) = scope.new_collection_from(laps);
    ///     laps.top_k_named("FastestLap", 1)
    ///         .inspect(|((driver, (rank, secs)), _time, _diff)| {
    ///             assert_eq!(*rank, 1);
    ///             assert_eq!(*secs, if driver == "ann" { 68 } else { 69 });
    ///         });
    /// });
    /// ```
    fn top_k_named(self, name: &str, k: usize) -> VecCollection<'scope, T, (G, (usize, V)), isize>;
}

impl<'scope, T, G, V> TopK<'scope, T, G, V> for VecCollection<'scope, T, (G, V), isize>
where
    T: Timestamp + Lattice + TotalOrder + ExchangeData,
    G: ExchangeData + Hash,
    V: ExchangeData,
{
    fn top_k_named(self, name: &str, k: usize) -> VecCollection<'scope, T, (G, (usize, V)), isize> {
        self.reduce_named(name, move |_group, values: &[(&V, isize)], output| {
            // `values` arrive sorted and consolidated; ranks follow that order.
            let mut rank = 0;
            for (value, count) in values {
                for _ in 0..(*count).max(0) {
                    if rank == k {
                        return;
                    }
                    rank += 1;
                    output.push(((rank, (*value).clone()), 1));
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::TopK;
    use differential_dataflow::input::Input;
    use timely::dataflow::operators::capture::{Capture, Extract};

    #[test]
    fn ranks_change_when_a_new_value_enters_the_top() {
        let rx = timely::example(|scope| {
            let (mut input, values) = scope.new_collection::<(u8, u32), isize>();
            input.update_at((0, 5), 0, 1);
            input.update_at((0, 9), 0, 1);
            input.update_at((0, 7), 0, 1);
            input.update_at((0, 1), 1, 1); // enters at rank 1 and pushes 7 out
            values.top_k_named("Smallest", 2).inner.capture()
        });
        let mut updates: Vec<_> = rx.extract().into_iter().flat_map(|(_, v)| v).collect();
        updates.sort();
        let mut expected = vec![
            ((0, (1, 5)), 0, 1),
            ((0, (2, 7)), 0, 1),
            ((0, (1, 1)), 1, 1),
            ((0, (1, 5)), 1, -1),
            ((0, (2, 5)), 1, 1),
            ((0, (2, 7)), 1, -1),
        ];
        expected.sort();
        assert_eq!(updates, expected);
    }
}
