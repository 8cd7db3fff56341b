//! Split a collection into results and errors without dropping anything.

use differential_dataflow::difference::Semigroup;
use differential_dataflow::{AsCollection, VecCollection};
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::progress::Timestamp;

/// Maps each record to any number of results and errors, returned as two collections.
///
/// This is how decoding enters the dataflow: a chunk of raw bytes becomes typed events (`oks`)
/// and dead letters (`errs`), both ordinary collections that carry the time and multiplicity of
/// the record they came from.
pub trait FlatMapFallible<'scope, T: Timestamp, D, R> {
    /// As [`FlatMapFallible::flat_map_fallible_named`], with the name `FlatMapFallible`.
    ///
    /// ```
    /// use differential_dataflow::input::Input;
    /// use lambdaflow_operators::FlatMapFallible;
    ///
    /// timely::example(|scope| {
    ///     let (_input, lines) = scope.new_collection_from(vec!["1", "x", "3"]);
    ///     let (numbers, errors) = lines.flat_map_fallible(|line: &str, oks: &mut Vec<u32>, errs: &mut Vec<String>| {
    ///         match line.parse() {
    ///             Ok(n) => oks.push(n),
    ///             Err(_) => errs.push(format!("not a number: {line}")),
    ///         }
    ///     });
    ///     numbers.inspect(|(n, _t, _r)| assert!(*n == 1 || *n == 3));
    ///     errors.inspect(|(e, _t, _r)| assert_eq!(e, "not a number: x"));
    /// });
    /// ```
    fn flat_map_fallible<O, E, L>(
        self,
        logic: L,
    ) -> (
        VecCollection<'scope, T, O, R>,
        VecCollection<'scope, T, E, R>,
    )
    where
        O: Clone + 'static,
        E: Clone + 'static,
        L: FnMut(D, &mut Vec<O>, &mut Vec<E>) + 'static,
        Self: Sized,
    {
        self.flat_map_fallible_named("FlatMapFallible", logic)
    }

    /// Applies `logic` to every record; what it pushes into its first vector becomes the first
    /// collection, what it pushes into its second vector the second one.
    ///
    /// ```
    /// use differential_dataflow::input::Input;
    /// use lambdaflow_operators::FlatMapFallible;
    ///
    /// timely::example(|scope| {
    ///     let (_input, lines) = scope.new_collection_from(["4,5", "x", "6"].map(String::from));
    ///     let (numbers, errors) = lines.flat_map_fallible_named("Parse", |line: String, ok, err| {
    ///         for part in line.split(',') {
    ///             match part.parse::<u32>() {
    ///                 Ok(n) => ok.push(n),
    ///                 Err(_) => err.push(format!("not a number: {part}")),
    ///             }
    ///         }
    ///     });
    ///     numbers.inspect(|(n, _time, _diff)| assert!([4, 5, 6].contains(n)));
    ///     errors.inspect(|(e, _time, _diff)| assert_eq!(e, "not a number: x"));
    /// });
    /// ```
    fn flat_map_fallible_named<O, E, L>(
        self,
        name: &str,
        logic: L,
    ) -> (
        VecCollection<'scope, T, O, R>,
        VecCollection<'scope, T, E, R>,
    )
    where
        O: Clone + 'static,
        E: Clone + 'static,
        L: FnMut(D, &mut Vec<O>, &mut Vec<E>) + 'static;
}

impl<'scope, T, D, R> FlatMapFallible<'scope, T, D, R> for VecCollection<'scope, T, D, R>
where
    T: Timestamp,
    D: Clone + 'static,
    R: Semigroup + 'static,
{
    fn flat_map_fallible_named<O, E, L>(
        self,
        name: &str,
        mut logic: L,
    ) -> (
        VecCollection<'scope, T, O, R>,
        VecCollection<'scope, T, E, R>,
    )
    where
        O: Clone + 'static,
        E: Clone + 'static,
        L: FnMut(D, &mut Vec<O>, &mut Vec<E>) + 'static,
    {
        let mut builder = OperatorBuilder::new(name.to_owned(), self.inner.scope());
        let mut input = builder.new_input(self.inner, Pipeline);
        let (oks, oks_stream) = builder.new_output();
        let (errs, errs_stream) = builder.new_output();
        let mut oks = OutputBuilder::from(oks);
        let mut errs = OutputBuilder::from(errs);

        builder.build(move |_capabilities| {
            let mut ok_buffer = Vec::new();
            let mut err_buffer = Vec::new();
            move |_frontiers| {
                let mut oks = oks.activate();
                let mut errs = errs.activate();
                input.for_each_time(|time, data| {
                    let mut oks = oks.session(&time);
                    let mut errs = errs.session(&time);
                    for (datum, t, r) in data.flat_map(|batch| batch.drain(..)) {
                        logic(datum, &mut ok_buffer, &mut err_buffer);
                        for ok in ok_buffer.drain(..) {
                            oks.give((ok, t.clone(), r.clone()));
                        }
                        for err in err_buffer.drain(..) {
                            errs.give((err, t.clone(), r.clone()));
                        }
                    }
                });
            }
        });

        (oks_stream.as_collection(), errs_stream.as_collection())
    }
}

#[cfg(test)]
mod tests {
    use super::FlatMapFallible;
    use differential_dataflow::input::Input;
    use timely::dataflow::operators::capture::{Capture, Extract};

    #[test]
    fn splits_results_and_errors_keeping_times_and_multiplicities() {
        let (ok_rx, err_rx) = timely::example(|scope| {
            let (mut input, words) = scope.new_collection::<String, isize>();
            input.update_at("a,b".to_string(), 0, 1);
            input.update_at("".to_string(), 1, 2);
            input.update_at("c".to_string(), 1, -1);
            let (oks, errs) =
                words.flat_map_fallible_named("Split", |s: String, oks: &mut Vec<String>, errs| {
                    if s.is_empty() {
                        errs.push("empty");
                    }
                    oks.extend(s.split(',').filter(|p| !p.is_empty()).map(str::to_owned));
                });
            (oks.inner.capture(), errs.inner.capture())
        });
        let mut oks: Vec<_> = ok_rx.extract().into_iter().flat_map(|(_, v)| v).collect();
        oks.sort();
        assert_eq!(
            oks,
            vec![
                ("a".to_string(), 0, 1),
                ("b".to_string(), 0, 1),
                ("c".to_string(), 1, -1)
            ]
        );
        let errs: Vec<_> = err_rx.extract().into_iter().flat_map(|(_, v)| v).collect();
        assert_eq!(errs, vec![("empty", 1, 2)]);
    }
}
