//! The number of distinct items per group.

use differential_dataflow::lattice::Lattice;
use differential_dataflow::operators::{CountTotal, ThresholdTotal};
use differential_dataflow::{ExchangeData, VecCollection};
use std::hash::Hash;
use timely::order::TotalOrder;
use timely::progress::Timestamp;

/// Counts distinct items per group: `(group, item)` pairs in, `(group, distinct items)` out.
///
/// Duplicates cost nothing after the first: the distinct `(group, item)` pairs are kept in one
/// arrangement, and only the appearance of a new pair changes the count.
///
/// Known open question: when a pair's insertion and its later retractions reach the operator in
/// one batch spanning several epochs, the retraction has been seen not to lower the count (plain
/// differential `distinct_total` behaves the same in that test). lambdaflow's inputs are
/// insert-only, so its views are unaffected; verify before relying on retractions.
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
    fn distinct_count<G, I, L>(self, logic: L) -> VecCollection<'scope, T, (G, isize), isize>
    where
        G: ExchangeData + Hash,
        I: ExchangeData + Hash,
        L: FnMut(D) -> Option<(G, I)> + 'static,
        Self: Sized,
    {
        self.distinct_count_named("DistinctCount", logic)
    }

    /// Counts, per group, the distinct items among the `(group, item)` pairs `logic` returns;
    /// records for which it returns `None` are skipped.
    fn distinct_count_named<G, I, L>(
        self,
        name: &str,
        logic: L,
    ) -> VecCollection<'scope, T, (G, isize), isize>
    where
        G: ExchangeData + Hash,
        I: ExchangeData + Hash,
        L: FnMut(D) -> Option<(G, I)> + 'static;
}

impl<'scope, T, D> DistinctCount<'scope, T, D> for VecCollection<'scope, T, D, isize>
where
    T: Timestamp + Lattice + TotalOrder + ExchangeData,
    D: Clone + 'static,
{
    fn distinct_count_named<G, I, L>(
        self,
        name: &str,
        mut logic: L,
    ) -> VecCollection<'scope, T, (G, isize), isize>
    where
        G: ExchangeData + Hash,
        I: ExchangeData + Hash,
        L: FnMut(D) -> Option<(G, I)> + 'static,
    {
        crate::presum::presum(self, name, move |d| logic(d).map(|pair| (pair, 1isize)))
            .arrange_by_self_named(&format!("Arrange: {name} pairs"))
            .distinct_total()
            .map(|(group, _item)| group)
            .arrange_by_self_named(&format!("Arrange: {name} groups"))
            .count_total()
    }
}

#[cfg(test)]
mod tests {
    use super::DistinctCount;
    use differential_dataflow::input::Input;
    use timely::dataflow::operators::capture::{Capture, Extract};

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
}
