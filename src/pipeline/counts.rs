//! In a cluster: every process's counters added up on the first one, and every process's Kafka
//! lag gathered there, which shows and serves them (the live line, `/api/status`, `/metrics`).

use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use differential_dataflow::VecCollection;
use timely::dataflow::ProbeHandle;
use timely::dataflow::operators::{Exchange, Inspect, Probe};

use super::Stats;
use crate::source::{LagBoard, PartitionLag};

/// Records read, bytes read, events and dead letters.
pub(super) type Counts = (u64, u64, u64, u64);

/// What a worker of a cluster's other processes sends the first process.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub(super) enum Report {
    /// What its counts grew by.
    Counts(Counts),
    /// A Kafka partition's lag as its process last saw it: `TOPIC/PARTITION`, the next offset
    /// to read, the high watermark.
    Lag(String, i64, i64),
}

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
/// last did to worker 0, and, if it is its process's first worker, the process's Kafka lag that
/// changed.
pub(super) struct Reporter {
    mine: Mine,
    sent: Counts,
    /// The process's lag board, and the lag last sent from it.
    lag: Option<(LagBoard, BTreeMap<String, PartitionLag>)>,
}

impl Reporter {
    /// The reporter of a worker, if it reports: not on one process, nor on the first of a
    /// cluster, whose counters are the ones shown. `board` is the process's lag board, given to
    /// the process's first worker only.
    pub(super) fn of(leads: bool, mine: &Mine, board: Option<LagBoard>) -> Option<Reporter> {
        (!leads).then(|| Reporter {
            mine: mine.clone(),
            sent: (0, 0, 0, 0),
            lag: board.map(|b| (b, BTreeMap::new())),
        })
    }

    /// What changed since the last call: the counts' growth, the partitions' lag.
    pub(super) fn reports(&mut self, out: &mut Vec<Report>) {
        let now = self.mine.0.get();
        let sent = std::mem::replace(&mut self.sent, now);
        let growth = (
            now.0 - sent.0,
            now.1 - sent.1,
            now.2 - sent.2,
            now.3 - sent.3,
        );
        if growth != (0, 0, 0, 0) {
            out.push(Report::Counts(growth));
        }
        if let Some((board, sent)) = &mut self.lag {
            let board = board.lock().unwrap_or_else(|e| e.into_inner());
            for (label, lag) in board.iter() {
                if sent.get(label) != Some(lag) {
                    sent.insert(label.clone(), *lag);
                    out.push(Report::Lag(label.clone(), lag.next, lag.high));
                }
            }
        }
    }
}

/// Adds the counts the other processes send to this process's counters, and their partitions'
/// lag to its lag board, on worker 0; `probe` waits for them, so that the counters are whole
/// when the run ends.
pub(super) fn gather(
    reports: VecCollection<'_, u64, Report>,
    stats: Arc<Stats>,
    probe: &ProbeHandle<u64>,
) {
    reports
        .inner
        .exchange(|_| 0)
        .inspect(move |(report, _, _)| match report {
            Report::Counts((records, bytes, events, dead)) => {
                stats.records_in.fetch_add(*records, Ordering::Relaxed);
                stats.bytes_in.fetch_add(*bytes, Ordering::Relaxed);
                stats.events.fetch_add(*events, Ordering::Relaxed);
                stats.dead_letters.fetch_add(*dead, Ordering::Relaxed);
            }
            Report::Lag(label, next, high) => {
                let lag = PartitionLag {
                    next: *next,
                    high: *high,
                };
                let mut board = stats.lag.lock().unwrap_or_else(|e| e.into_inner());
                board.insert(label.clone(), lag);
            }
        })
        .probe_with(probe);
}
