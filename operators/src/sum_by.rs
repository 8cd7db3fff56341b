//! Per-key sums and counts, maintained incrementally.

use differential_dataflow::difference::{Multiply, Semigroup};
use differential_dataflow::lattice::Lattice;
use differential_dataflow::operators::CountTotal;
use differential_dataflow::{ExchangeData, VecCollection};
use std::hash::Hash;
use timely::order::TotalOrder;
use timely::progress::Timestamp;

/// Sums an additive amount per key: `(key, amount)` pairs in, `(key, total)` out.
///
/// The amount rides in the difference of each update, so a sum costs no more than a count:
/// updates are summed in a hash table on the worker that produced them (a million `purchase`
/// events of one epoch leave the worker as one update per country), then exchanged by key and
/// accumulated.
/// Amounts are any differential semigroup: `isize` for counts, `(isize, isize)` for a sum and a
/// count at once. A key whose total is zero is absent from the output (zero is no difference):
/// to keep a key while it has records, sum a count beside the amount, as `(amount, 1)`.
pub trait SumBy<'scope, T: Timestamp, D> {
    /// As [`SumBy::sum_by_named`], with the name `SumBy`.
    ///
    /// ```
    /// use differential_dataflow::input::Input;
    /// use lambdaflow_operators::SumBy;
    ///
    /// timely::example(|scope| {
    ///     // (country, price in cents): revenue and orders per country
    ///     let sales = vec![("UK".to_string(), 1999), ("FR".to_string(), 500), ("UK".to_string(), 1)];
    ///     let (_input, sales) = scope.new_collection_from(sales);
    ///     sales
    ///         .sum_by(|(country, cents): (String, isize)| Some((country, (cents, 1isize))))
    ///         .inspect(|((country, (revenue, orders)), _time, _diff)| match country.as_str() {
    ///             "UK" => assert_eq!((*revenue, *orders), (2000, 2)),
    ///             _ => assert_eq!((*revenue, *orders), (500, 1)),
    ///         });
    /// });
    /// ```
    fn sum_by<K, A, P, L>(self, logic: L) -> VecCollection<'scope, T, (K, A), isize>
    where
        K: ExchangeData + Hash,
        A: ExchangeData + Semigroup + Multiply<isize, Output = A>,
        P: IntoIterator<Item = (K, A)>,
        L: FnMut(D) -> P + 'static,
        Self: Sized,
    {
        self.sum_by_named("SumBy", logic)
    }

    /// Sums, per key, the amounts `logic` returns: for each record no `(key, amount)` pair
    /// (`None`), one (`Some`), or several (any iterator; one pass over the records can feed
    /// many sums that way). The output holds one `(key, total)` record per key with a non-zero
    /// total.
    ///
    /// ```
    /// use differential_dataflow::input::Input;
    /// use lambdaflow_operators::SumBy;
    ///
    /// timely::example(|scope| {
    ///     // (country, cents): one pass feeds a sum per country and one for the world
    ///     let sales = [("UK", 1999), ("FR", 500), ("UK", 1)].map(|(c, p)| (c.to_string(), p as isize));
    ///     let (_input, sales) = scope.new_collection_from(sales);
    ///     sales
    ///         .sum_by_named("Revenue", |(country, cents): (String, isize)| {
    ///             [(country, (cents, 1isize)), ("world".to_string(), (cents, 1))]
    ///         })
    ///         .inspect(|((key, (revenue, orders)), _time, _diff)| match key.as_str() {
    ///             "UK" => assert_eq!((*revenue, *orders), (2000, 2)),
    ///             "FR" => assert_eq!((*revenue, *orders), (500, 1)),
    ///             _ => assert_eq!((*revenue, *orders), (2500, 3)),
    ///         });
    /// });
    /// ```
    fn sum_by_named<K, A, P, L>(
        self,
        name: &str,
        logic: L,
    ) -> VecCollection<'scope, T, (K, A), isize>
    where
        K: ExchangeData + Hash,
        A: ExchangeData + Semigroup + Multiply<isize, Output = A>,
        P: IntoIterator<Item = (K, A)>,
        L: FnMut(D) -> P + 'static;

    /// Counts records per key: [`SumBy::sum_by_named`] with an amount of one.
    ///
    /// ```
    /// use differential_dataflow::input::Input;
    /// use lambdaflow_operators::SumBy;
    ///
    /// timely::example(|scope| {
    ///     let (_input, types) = scope.new_collection_from(["view", "buy", "view"].map(String::from));
    ///     types
    ///         .count_by_named("EventsByType", |t: String| Some(t))
    ///         .inspect(|((t, n), _time, _diff)| assert_eq!(*n, if *t == "view" { 2 } else { 1 }));
    /// });
    /// ```
    fn count_by_named<K, L>(
        self,
        name: &str,
        mut logic: L,
    ) -> VecCollection<'scope, T, (K, isize), isize>
    where
        K: ExchangeData + Hash,
        L: FnMut(D) -> Option<K> + 'static,
        Self: Sized,
    {
        self.sum_by_named(name, move |d| logic(d).map(|k| (k, 1isize)))
    }
}

impl<'scope, T, D> SumBy<'scope, T, D> for VecCollection<'scope, T, D, isize>
where
    T: Timestamp + Lattice + TotalOrder + ExchangeData,
    D: Clone + 'static,
{
    fn sum_by_named<K, A, P, L>(
        self,
        name: &str,
        logic: L,
    ) -> VecCollection<'scope, T, (K, A), isize>
    where
        K: ExchangeData + Hash,
        A: ExchangeData + Semigroup + Multiply<isize, Output = A>,
        P: IntoIterator<Item = (K, A)>,
        L: FnMut(D) -> P + 'static,
    {
        totals(
            crate::presum::presum::<crate::presum::Recent<_, _>, _, _, _, _, _, _>(
                self, name, logic,
            ),
            name,
        )
    }
}

/// The running total per key of presummed `(key, amount)` updates.
pub(crate) fn totals<'scope, T, K, A>(
    sums: VecCollection<'scope, T, K, A>,
    name: &str,
) -> VecCollection<'scope, T, (K, A), isize>
where
    T: Timestamp + Lattice + TotalOrder + ExchangeData,
    K: ExchangeData + Hash,
    A: ExchangeData + Semigroup + Multiply<isize, Output = A>,
{
    sums.arrange_by_self_named(&format!("Arrange: {name}"))
        .count_total()
}

#[cfg(test)]
mod tests {
    use super::SumBy;
    use differential_dataflow::input::Input;
    use timely::dataflow::operators::capture::{Capture, Extract};

    #[test]
    fn sums_follow_insertions_and_retractions_across_epochs() {
        let rx = timely::example(|scope| {
            let (mut input, sales) = scope.new_collection::<(u32, isize), isize>();
            input.update_at((1, 10), 0, 1);
            input.update_at((1, 5), 0, 1);
            input.update_at((2, 7), 0, 1);
            input.update_at((1, 10), 1, -1); // a retraction in a later epoch
            input.update_at((2, 7), 2, -1); // key 2 returns to zero and disappears
            sales
                .sum_by_named("Revenue", |(k, cents)| Some((k, (cents, 1isize))))
                .inner
                .capture()
        });
        let mut updates: Vec<_> = rx.extract().into_iter().flat_map(|(_, v)| v).collect();
        updates.sort();
        let mut expected = vec![
            ((1, (15, 2)), 0, 1),
            ((1, (15, 2)), 1, -1),
            ((1, (5, 1)), 1, 1),
            ((2, (7, 1)), 0, 1),
            ((2, (7, 1)), 2, -1),
        ];
        expected.sort();
        assert_eq!(updates, expected);
    }
}
