//! Symbols every process knows: in a cluster, a string met by one process reaches the others
//! through the dataflow, and what turns symbols back into strings waits for it.
//!
//! A [`Sym`](crate::event::Sym) is the hash of its string, so every process keys the same string
//! alike; but only the process that decoded a string holds it in its table. Each worker sends
//! the symbols it meets, with their strings, to every worker at the time of the update that
//! carried them; every process learns them into its table. Whatever compares or shows strings
//! (a top-n's ties, `min` of a string, the served views) first passes through
//! [`Known::hold`], which keeps an update back until every process has learned the symbols met
//! up to its time. On one process there is nothing to wait for: the workers share one table and
//! [`Known::hold`] is the identity.

use std::collections::BTreeMap;

use differential_dataflow::{AsCollection, VecCollection};
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::{Capability, Operator};

/// Updates held back, by time, with a capability to send them at that time.
type Held<D> = BTreeMap<u64, (Capability<u64>, Vec<(D, u64, isize)>)>;

/// When every process knows the strings of the symbols met up to a time: the frontier of a
/// stream that passes a time once they do. Cheap to clone.
#[derive(Clone, Default)]
pub struct Known<'s> {
    learned: Option<StreamVec<'s, u64, ()>>,
}

impl<'s> Known<'s> {
    /// On one process: known as soon as met.
    pub fn at_once() -> Self {
        Known { learned: None }
    }

    /// Known once `learned`, a stream that sends nothing, passes a time on this worker (its
    /// frontier must account for every process's learning, as [`crate::pipeline`] builds it).
    pub fn after(learned: StreamVec<'s, u64, ()>) -> Self {
        Known {
            learned: Some(learned),
        }
    }

    /// `updates`, each held back until every process knows the strings of the symbols met up
    /// to its time.
    pub fn hold<D>(&self, updates: VecCollection<'s, u64, D>) -> VecCollection<'s, u64, D>
    where
        D: Clone + 'static,
    {
        let Some(learned) = &self.learned else {
            return updates;
        };
        updates
            .inner
            .binary_frontier(
                learned.clone(),
                Pipeline,
                Pipeline,
                "HoldForSymbols",
                |_initial, _info| {
                    let mut held: Held<D> = BTreeMap::new();
                    move |(input, _), (signal, learned), output| {
                        signal.for_each(|_, data| data.clear());
                        input.for_each_time(|cap, data| {
                            for (d, time, diff) in data.flat_map(|batch| batch.drain(..)) {
                                if learned.less_equal(&time) {
                                    held.entry(time)
                                        .or_insert_with(|| {
                                            (cap.delayed(&time, output.output_index()), Vec::new())
                                        })
                                        .1
                                        .push((d, time, diff));
                                } else {
                                    output.session(&cap).give((d, time, diff));
                                }
                            }
                        });
                        while let Some(entry) = held.first_entry() {
                            if learned.less_equal(entry.key()) {
                                break;
                            }
                            let (cap, mut updates) = entry.remove();
                            output.session(&cap).give_container(&mut updates);
                        }
                    }
                },
            )
            .as_collection()
    }
}
