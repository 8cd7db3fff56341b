//! In a cluster: every process's counters added up on the first one, which shows and serves
//! them (the live line, `/api/status`, `/metrics`).

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use differential_dataflow::VecCollection;
use timely::dataflow::ProbeHandle;
use timely::dataflow::operators::{Exchange, Inspect, Probe};

use super::Stats;

/// Records read, bytes read, events and dead letters.
pub(super) type Counts = (u64, u64, u64, u64);

/// One worker's own counts, kept by its read loop (records, bytes) and its decoding (events,
/// dead letters), which run on its thread.
#[derive(Clone, Default)]
pub(super) struct Mine(Rc<Cell<Counts>>);

impl Mine {
    /// Adds `(records, bytes, events, dead letters)`.
    pub(super) fn add(&self, (r, b, e, d): Counts) {
        let (r0, b0, e0, d0) = self.0.get();
        self.0.set((r0 + r, b0 + b, e0 + e, d0 + d));
    }
}

/// A worker of a cluster's other processes: it sends what its own counts have grown by since it
/// last did to worker 0.
pub(super) struct Reporter {
    mine: Mine,
    sent: Counts,
}

impl Reporter {
    /// The reporter of worker `index` of the whole cluster, if it reports: not on one process,
    /// nor on the first of a cluster, whose counters are the ones shown.
    pub(super) fn of(leads: bool, mine: &Mine) -> Option<Reporter> {
        (!leads).then(|| Reporter {
            mine: mine.clone(),
            sent: (0, 0, 0, 0),
        })
    }

    /// What the counts have grown by since the last call, if anything.
    pub(super) fn growth(&mut self) -> Option<Counts> {
        let now = self.mine.0.get();
        let sent = std::mem::replace(&mut self.sent, now);
        let growth = (
            now.0 - sent.0,
            now.1 - sent.1,
            now.2 - sent.2,
            now.3 - sent.3,
        );
        (growth != (0, 0, 0, 0)).then_some(growth)
    }
}

/// Adds the counts the other processes send to this process's counters, on worker 0; `probe`
/// waits for them, so that the counters are whole when the run ends.
pub(super) fn gather(
    counts: VecCollection<'_, u64, Counts>,
    stats: Arc<Stats>,
    probe: &ProbeHandle<u64>,
) {
    counts
        .inner
        .exchange(|_| 0)
        .inspect(move |((records, bytes, events, dead), _, _)| {
            stats.records_in.fetch_add(*records, Ordering::Relaxed);
            stats.bytes_in.fetch_add(*bytes, Ordering::Relaxed);
            stats.events.fetch_add(*events, Ordering::Relaxed);
            stats.dead_letters.fetch_add(*dead, Ordering::Relaxed);
        })
        .probe_with(probe);
}
