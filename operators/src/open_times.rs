//! What an operator keeps for each time its input frontier has not passed yet.

use timely::dataflow::operators::{Capability, InputCapability};
use timely::order::TotalOrder;
use timely::progress::Timestamp;
use timely::progress::frontier::MutableAntichain;

/// Per open time, oldest first: a capability to send at that time and the state gathered for it.
pub(crate) struct OpenTimes<T: Timestamp, S> {
    open: Vec<(Capability<T>, S)>,
    /// The slot used last: most updates of a batch share one time.
    last: Option<usize>,
}

impl<T: Timestamp + TotalOrder, S: Default> OpenTimes<T, S> {
    pub(crate) fn new() -> Self {
        OpenTimes {
            open: Vec::new(),
            last: None,
        }
    }

    /// The state of `time`, opened if `time` is new, with a capability for output `port`
    /// delayed from `cap` (an update may be at a time later than its capability's).
    pub(crate) fn at(&mut self, cap: &InputCapability<T>, port: usize, time: &T) -> &mut S {
        let open = &mut self.open;
        let cached = self
            .last
            .filter(|&s| open.get(s).is_some_and(|(c, _)| c.time() == time));
        let slot = match cached {
            Some(slot) => slot,
            None => {
                let at = open.partition_point(|(c, _)| c.time() < time);
                if open.get(at).is_none_or(|(c, _)| c.time() != time) {
                    open.insert(at, (cap.delayed(time, port), S::default()));
                }
                at
            }
        };
        self.last = Some(slot);
        &mut open[slot].1
    }

    /// Takes the times `frontier` has passed, oldest first, with their capabilities.
    pub(crate) fn take_complete(
        &mut self,
        frontier: &MutableAntichain<T>,
    ) -> std::vec::Drain<'_, (Capability<T>, S)> {
        let complete = self
            .open
            .iter()
            .take_while(|(c, _)| !frontier.less_equal(c.time()))
            .count();
        self.last = None;
        self.open.drain(..complete)
    }
}
