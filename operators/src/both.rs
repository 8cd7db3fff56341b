//! A sum per key and a distinct count per group from one pass over the records.

use std::hash::Hash;

use differential_dataflow::difference::{Multiply, Semigroup};
use differential_dataflow::lattice::Lattice;
use differential_dataflow::{ExchangeData, VecCollection};
use timely::order::TotalOrder;
use timely::progress::Timestamp;

/// Sums per key and distinct counts per group over the same records, read once.
///
/// [`SumBy`](crate::SumBy) and [`DistinctCount`](crate::DistinctCount) on one collection are two
/// operators reading one stream, and timely gives every reader but the last its own copy of each
/// batch of records. This reads each record once, borrowed, and hands it to both mappings.
pub trait SumByAndDistinctCount<'scope, T: Timestamp, D> {
    /// What [`SumBy::sum_by_named`](crate::SumBy::sum_by_named) with `sum` and
    /// [`DistinctCount::distinct_count_named`](crate::DistinctCount::distinct_count_named) with
    /// `distinct` return, in that order, from one operator reading the records.
    ///
    /// ```
    /// use differential_dataflow::input::Input;
    /// use lambdaflow_operators::SumByAndDistinctCount;
    ///
    /// timely::example(|scope| {
    ///     // (day, user, cents): revenue per day and buyers per day
    ///     let sales = [(1, "ann", 500), (1, "bob", 200), (1, "ann", 100), (2, "ann", 300)];
    ///     let (_input, sales) = scope.new_collection_from(sales.map(|(d, u, c)| (d, u.to_string(), c)));
    ///     let (revenue, buyers) = sales.sum_by_and_distinct_count_named(
    ///         "Sales",
    ///         |(day, _, cents): &(u32, String, isize)| Some((*day, *cents)),
    ///         |(day, user, _): &(u32, String, isize)| Some((*day, user.clone())),
    ///     );
    ///     revenue.inspect(|((day, cents), _, _)| assert_eq!(*cents, if *day == 1 { 800 } else { 300 }));
    ///     buyers.inspect(|((day, n), _, _)| assert_eq!(*n, if *day == 1 { 2 } else { 1 }));
    /// });
    /// ```
    #[allow(clippy::type_complexity)]
    fn sum_by_and_distinct_count_named<K, A, P, L, G, I, Q, M>(
        self,
        name: &str,
        sum: L,
        distinct: M,
    ) -> (
        VecCollection<'scope, T, (K, A), isize>,
        VecCollection<'scope, T, (G, isize), isize>,
    )
    where
        K: ExchangeData + Hash,
        A: ExchangeData + Semigroup + Multiply<isize, Output = A>,
        P: IntoIterator<Item = (K, A)>,
        L: FnMut(&D) -> P + 'static,
        G: ExchangeData + Hash,
        I: ExchangeData + Hash,
        Q: IntoIterator<Item = (G, I)>,
        M: FnMut(&D) -> Q + 'static,
        Self: Sized,
    {
        // The keys are their own fine keys.
        self.sum_by_rollup_and_distinct_count_named(name, sum, |k, a| Some((k, a)), distinct)
    }

    /// As [`SumByAndDistinctCount::sum_by_and_distinct_count_named`], with the sums kept by a
    /// finer key `F` while records arrive: `sum` maps a record to `(fine key, amount)` pairs,
    /// and `rollup` maps each fine key's total, once per worker and time, to the `(key, amount)`
    /// pairs that are summed. A record that adds to several keys can add to one fine key that
    /// determines them all, one hash table probe in place of several. `rollup` must be linear in
    /// the amount (rolling up a sum gives the sum of the rolled-up parts), as any map from a
    /// finer key to coarser ones with the amount passed on or left out is.
    ///
    /// ```
    /// use differential_dataflow::input::Input;
    /// use lambdaflow_operators::SumByAndDistinctCount;
    ///
    /// timely::example(|scope| {
    ///     // (day, country, user): visits per day and per country from one key, users per day
    ///     type Visit = (u32, &'static str, u32);
    ///     let visits: [Visit; 4] = [(1, "UK", 7), (1, "FR", 8), (1, "UK", 8), (2, "UK", 7)];
    ///     let (_input, visits) = scope.new_collection_from(visits);
    ///     let (visits, users) = visits.sum_by_rollup_and_distinct_count_named(
    ///         "Visits",
    ///         |&(day, country, _): &Visit| Some(((day, country), 1isize)),
    ///         |(day, country), n| [(format!("day {day}"), n), (country.to_string(), n)],
    ///         |&(day, _, user): &Visit| Some((day, user)),
    ///     );
    ///     visits.inspect(|((key, n), _, _)| match key.as_str() {
    ///         "day 1" | "UK" => assert_eq!(*n, 3),
    ///         _ => assert_eq!(*n, 1),
    ///     });
    ///     users.inspect(|((day, n), _, _)| assert_eq!(*n, if *day == 1 { 2 } else { 1 }));
    /// });
    /// ```
    #[allow(clippy::type_complexity)]
    fn sum_by_rollup_and_distinct_count_named<F, K, A, P, L, R, S, G, I, Q, M>(
        self,
        name: &str,
        mut sum: L,
        rollup: R,
        mut distinct: M,
    ) -> (
        VecCollection<'scope, T, (K, A), isize>,
        VecCollection<'scope, T, (G, isize), isize>,
    )
    where
        F: Eq + Hash + 'static,
        K: ExchangeData + Hash,
        A: ExchangeData + Semigroup + Multiply<isize, Output = A>,
        P: IntoIterator<Item = (F, A)>,
        L: FnMut(&D) -> P + 'static,
        R: FnMut(F, A) -> S + 'static,
        S: IntoIterator<Item = (K, A)>,
        G: ExchangeData + Hash,
        I: ExchangeData + Hash,
        Q: IntoIterator<Item = (G, I)>,
        M: FnMut(&D) -> Q + 'static,
        Self: Sized,
    {
        self.sum_by_rollup_and_distinct_count_together_named(
            name,
            move |d: &D, sums: &mut Vec<(F, A)>, pairs: &mut Vec<(G, I)>| {
                sums.extend(sum(d));
                pairs.extend(distinct(d));
            },
            rollup,
        )
    }

    /// As [`SumByAndDistinctCount::sum_by_rollup_and_distinct_count_named`], with one mapping,
    /// `both`, pushing a record's `(fine key, amount)` pairs and its `(group, value)` pairs
    /// together: for records whose two sets of pairs share work (the same fields read, the
    /// same conditions tested), done once per record. The two vectors are empty when `both` is
    /// called and are drained after it; they keep their allocation from record to record, so
    /// the pairs of a record are neither allocated nor returned and copied.
    ///
    /// ```
    /// use differential_dataflow::input::Input;
    /// use lambdaflow_operators::SumByAndDistinctCount;
    ///
    /// timely::example(|scope| {
    ///     // (day, country, user): visits per country, users per day; the day is parsed once
    ///     type Visit = (&'static str, &'static str, u32);
    ///     let visits: [Visit; 3] = [("d1", "UK", 7), ("d1", "FR", 8), ("d2", "UK", 7)];
    ///     let (_input, visits) = scope.new_collection_from(visits);
    ///     let (visits, users) = visits.sum_by_rollup_and_distinct_count_together_named(
    ///         "Visits",
    ///         |&(day, country, user): &Visit, sums: &mut Vec<_>, pairs: &mut Vec<_>| {
    ///             let day: u32 = day[1..].parse().unwrap();
    ///             sums.push(((day, country), 1isize));
    ///             pairs.push((day, user));
    ///         },
    ///         |(_day, country), n| Some((country.to_string(), n)),
    ///     );
    ///     visits.inspect(|((c, n), _, _)| assert_eq!(*n, if c == "UK" { 2 } else { 1 }));
    ///     users.inspect(|((day, n), _, _)| assert_eq!(*n, if *day == 1 { 2 } else { 1 }));
    /// });
    /// ```
    #[allow(clippy::type_complexity)]
    fn sum_by_rollup_and_distinct_count_together_named<F, K, A, R, S, G, I, M>(
        self,
        name: &str,
        both: M,
        rollup: R,
    ) -> (
        VecCollection<'scope, T, (K, A), isize>,
        VecCollection<'scope, T, (G, isize), isize>,
    )
    where
        F: Eq + Hash + 'static,
        K: ExchangeData + Hash,
        A: ExchangeData + Semigroup + Multiply<isize, Output = A>,
        R: FnMut(F, A) -> S + 'static,
        S: IntoIterator<Item = (K, A)>,
        G: ExchangeData + Hash,
        I: ExchangeData + Hash,
        M: FnMut(&D, &mut Vec<(F, A)>, &mut Vec<(G, I)>) + 'static;
}

impl<'scope, T, D> SumByAndDistinctCount<'scope, T, D> for VecCollection<'scope, T, D, isize>
where
    T: Timestamp + Lattice + TotalOrder + ExchangeData,
    D: Clone + 'static,
{
    fn sum_by_rollup_and_distinct_count_together_named<F, K, A, R, S, G, I, M>(
        self,
        name: &str,
        both: M,
        rollup: R,
    ) -> (
        VecCollection<'scope, T, (K, A), isize>,
        VecCollection<'scope, T, (G, isize), isize>,
    )
    where
        F: Eq + Hash + 'static,
        K: ExchangeData + Hash,
        A: ExchangeData + Semigroup + Multiply<isize, Output = A>,
        R: FnMut(F, A) -> S + 'static,
        S: IntoIterator<Item = (K, A)>,
        G: ExchangeData + Hash,
        I: ExchangeData + Hash,
        M: FnMut(&D, &mut Vec<(F, A)>, &mut Vec<(G, I)>) + 'static,
    {
        let (sums, pairs) = crate::presum::presum_two(self, name, both, rollup);
        (
            crate::sum_by::totals(sums, &format!("{name} sums")),
            crate::distinct_count::counts(pairs, &format!("{name} distinct")),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::SumByAndDistinctCount;
    use crate::{DistinctCount, SumBy};
    use differential_dataflow::input::Input;
    use timely::dataflow::operators::capture::{Capture, Extract};

    /// (day, user, amount)
    type Visit = (u32, u32, isize);
    const ANN: u32 = 10;
    const BOB: u32 = 11;
    const CAT: u32 = 12;

    #[test]
    fn equals_sum_by_and_distinct_count_apart() {
        let updates: [(Visit, u64, isize); 8] = [
            ((1, ANN, 5), 0, 1),
            ((1, BOB, 2), 0, 1),
            ((1, ANN, 1), 0, 1),
            ((2, ANN, 3), 0, 1),
            ((1, BOB, 2), 1, -1), // bob leaves day 1
            ((2, CAT, 4), 1, 2),  // twice
            ((2, ANN, 3), 2, -1), // ann leaves day 2
            ((1, ANN, 5), 2, -1), // ann stays on day 1 with her other visit
        ];
        let sum = |(day, _, n): &Visit| Some((*day, *n));
        let distinct = |(day, user, _): &Visit| Some((*day, *user));
        let (together, apart) = timely::example(move |scope| {
            let (mut input, visits) = scope.new_collection::<Visit, isize>();
            for (visit, time, diff) in updates {
                input.update_at(visit, time, diff);
            }
            let (sums, counts) = visits
                .clone()
                .sum_by_and_distinct_count_named("Both", sum, distinct);
            let together = (sums.inner.capture(), counts.inner.capture());
            let apart = (
                visits
                    .clone()
                    .sum_by(move |v: Visit| sum(&v))
                    .inner
                    .capture(),
                visits
                    .distinct_count(move |v: Visit| distinct(&v))
                    .inner
                    .capture(),
            );
            (together, apart)
        });
        let sorted = |rx: std::sync::mpsc::Receiver<_>| {
            let mut v: Vec<_> = rx.extract().into_iter().flat_map(|(_, v)| v).collect();
            v.sort();
            v
        };
        let (sums, counts) = (sorted(together.0), sorted(together.1));
        assert_eq!(sums, sorted(apart.0));
        assert_eq!(counts, sorted(apart.1));
        assert_eq!(
            counts,
            vec![
                ((1, 1), 1, 1),
                ((1, 2), 0, 1),
                ((1, 2), 1, -1),
                ((2, 1), 0, 1),
                ((2, 1), 1, -1),
                ((2, 1), 2, 1),
                ((2, 2), 1, 1),
                ((2, 2), 2, -1),
            ]
        );
        assert!(sums.contains(&((2, 11), 1, 1)), "{sums:?}");
    }

    #[test]
    fn rolled_up_sums_equal_sums_by_the_coarse_keys() {
        // (day, user, amount): the fine key is (day, user); it rolls up into a per-day sum
        // and a per-user sum, and retractions in later times cancel fine totals to zero.
        let updates: [(Visit, u64, isize); 8] = [
            ((1, ANN, 5), 0, 1),
            ((1, BOB, 2), 0, 1),
            ((1, ANN, 1), 0, 1),
            ((2, ANN, 3), 0, 1),
            ((1, BOB, 2), 1, -1),
            ((2, CAT, 4), 1, 2),
            ((2, ANN, 3), 2, -1),
            ((1, ANN, 5), 2, -1),
        ];
        let coarse = |(day, user, n): &Visit| [((0, *day), *n), ((1, *user), *n)];
        let (rolled, direct) = timely::example(move |scope| {
            let (mut input, visits) = scope.new_collection::<Visit, isize>();
            for (visit, time, diff) in updates {
                input.update_at(visit, time, diff);
            }
            let (sums, _) = visits.clone().sum_by_rollup_and_distinct_count_named(
                "Rolled",
                |(day, user, n): &Visit| Some(((*day, *user), *n)),
                |(day, user), n| [((0, day), n), ((1, user), n)],
                |(day, user, _): &Visit| Some((*day, *user)),
            );
            let direct = visits.sum_by(move |v: Visit| coarse(&v));
            (sums.inner.capture(), direct.inner.capture())
        });
        let sorted = |rx: std::sync::mpsc::Receiver<_>| {
            let mut v: Vec<_> = rx.extract().into_iter().flat_map(|(_, v)| v).collect();
            v.sort();
            v
        };
        let (rolled, direct) = (sorted(rolled), sorted(direct));
        assert_eq!(rolled, direct);
        // Day 1 holds 8 at time 0, 6 at time 1 and 1 at time 2.
        let day_one: Vec<_> = rolled
            .into_iter()
            .filter(|((k, _), _, _)| *k == (0, 1))
            .collect();
        let total = |n, time, diff| (((0, 1), n), time, diff);
        assert_eq!(
            day_one,
            [
                total(1, 2, 1),
                total(6, 1, 1),
                total(6, 2, -1),
                total(8, 0, 1),
                total(8, 1, -1)
            ]
        );
    }
}
