//! In a cluster: every process learns the symbols the others meet ([`crate::views::Known`]).

use std::sync::Arc;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::Operator;
use timely::dataflow::operators::vec::Broadcast;

use crate::views::Known;

use super::Shared;

/// Sends the symbols `met` on each worker, with their strings, to every worker, which learns
/// them into its process's table; what is built on the result waits for every process to have
/// learned the symbols met up to a time. `met` is empty on one process, and then nothing waits.
pub(super) fn learn<'s>(met: StreamVec<'s, u64, (u64, String)>, shared: &Arc<Shared>) -> Known<'s> {
    if shared.config.cluster.is_none() {
        return Known::at_once();
    }
    let shared = shared.clone();
    let learned: StreamVec<'s, u64, ()> = met
        .broadcast()
        .unary::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
            Pipeline,
            "LearnSymbols",
            move |_initial, _info| {
                move |input, _output| {
                    input.for_each(|_, data| {
                        for (sym, text) in data.drain(..) {
                            if let Err(taken) = shared.symbols.learn(sym, &text) {
                                let mut clash =
                                    shared.clash.lock().unwrap_or_else(|e| e.into_inner());
                                clash.get_or_insert_with(|| {
                                    format!(
                                        "two processes gave the strings {taken:?} and {text:?} \
                                         one symbol ({sym}): their hashes collided; run this \
                                         data on one process"
                                    )
                                });
                                shared.stop.store(true, std::sync::atomic::Ordering::SeqCst);
                            }
                        }
                    });
                }
            },
        );
    // Every worker's learning reaches every worker, so that the frontier a worker holds an
    // update against accounts for every process, not only its own.
    Known::after(learned.broadcast())
}
