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
    /// The state of the last completed time, emptied, for the next new time: its allocation is
    /// already the size a time needs, instead of growing (and rehashing) from nothing again.
    spare: Option<S>,
}

/// A time's state: a collection that starts empty and is emptied when its time completes.
pub(crate) trait State: Default {
    /// Whether it holds nothing.
    fn is_empty(&self) -> bool;
}

impl<D> State for Vec<D> {
    fn is_empty(&self) -> bool {
        self.is_empty()
    }
}

impl<T: Timestamp + TotalOrder, S: State> OpenTimes<T, S> {
    pub(crate) fn new() -> Self {
        OpenTimes {
            open: Vec::new(),
            last: None,
            spare: None,
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
                    let state = self.spare.take().unwrap_or_default();
                    open.insert(at, (cap.delayed(time, port), state));
                }
                at
            }
        };
        self.last = Some(slot);
        &mut open[slot].1
    }

    /// Hands the times `frontier` has passed to `emit`, oldest first, with their capabilities.
    /// `emit` should drain the state: an emptied state is reused for a later time.
    pub(crate) fn take_complete(
        &mut self,
        frontier: &MutableAntichain<T>,
        mut emit: impl FnMut(&Capability<T>, &mut S),
    ) {
        let complete = self
            .open
            .iter()
            .take_while(|(c, _)| !frontier.less_equal(c.time()))
            .count();
        self.last = None;
        for (cap, mut state) in self.open.drain(..complete) {
            emit(&cap, &mut state);
            if state.is_empty() {
                self.spare = Some(state);
            }
        }
    }
}
