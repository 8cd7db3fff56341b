//! A worker's life: its dataflow built (decode, views, lake), the lake replayed into it, then
//! its sources polled into the current epoch until they are exhausted or the run stops.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use differential_dataflow::VecCollection;
use differential_dataflow::input::Input;
use timely::dataflow::ProbeHandle;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::{Concat, Probe};
use timely::worker::Worker;

use crate::event::{DeadLetter, Event, Interner, Position};
use crate::lake::dataflow::{self as lake_flow, CommitSetup, Marker, WorkerLake, Written};
use crate::lake::ops::ReplayPlan;
use crate::lake::{CommitMeta, LakeError};
use crate::source::{Chunk, ChunkPool, Opening, Poll, Source, SourceError, SourceSpec};
use crate::views::custom;
use crate::views::{self, Known, Row};

use super::counts::{self, Mine, Report, Reporter};
use super::decode::Decoding;
use super::{CHUNK_RECORDS, EpochPolicy, MAX_OPEN_EPOCHS, PipelineError, Shared, Stats};

/// The epoch a worker should be at now.
fn target_epoch(shared: &Shared, current: u64) -> u64 {
    match shared.config.epoch {
        EpochPolicy::Interval(interval) => {
            let elapsed = shared.clock().elapsed().as_nanos() / interval.as_nanos().max(1);
            current.max(shared.base + elapsed as u64)
        }
        EpochPolicy::Records(_) => current.max(shared.record_epoch.load(Ordering::SeqCst)),
    }
}

/// A worker's inputs: raw chunks, position markers, and the lake's rows being replayed.
struct Inputs {
    chunks: InputSession<u64, Chunk, isize>,
    markers: InputSession<u64, Marker, isize>,
    replay: InputSession<u64, Event, isize>,
    replay_dead: InputSession<u64, DeadLetter, isize>,
    replay_rows: InputSession<u64, Row, isize>,
    /// In a cluster: the symbols the replay met, with their strings.
    replay_met: InputSession<u64, (u64, String), isize>,
    /// In a cluster: what this process's counters grew by and its Kafka lag, for the first
    /// process.
    counts: InputSession<u64, Report, isize>,
    /// In a cluster, with [`EpochPolicy::Records`]: the epochs this worker moved every worker
    /// to, for the other processes' workers to follow.
    epochs: InputSession<u64, u64, isize>,
    /// This worker's own counts, and (in a cluster's other processes) who sends them on.
    mine: Mine,
    reporter: Option<Reporter>,
}

impl Inputs {
    fn advance_to(&mut self, epoch: u64) {
        self.chunks.advance_to(epoch);
        self.chunks.flush();
        self.markers.advance_to(epoch);
        self.markers.flush();
        self.replay.advance_to(epoch);
        self.replay.flush();
        self.replay_dead.advance_to(epoch);
        self.replay_dead.flush();
        self.replay_rows.advance_to(epoch);
        self.replay_rows.flush();
        self.replay_met.advance_to(epoch);
        self.replay_met.flush();
        self.counts.advance_to(epoch);
        self.counts.flush();
        self.epochs.advance_to(epoch);
        self.epochs.flush();
    }

    fn close(self) {
        self.chunks.close();
        self.markers.close();
        self.replay.close();
        self.replay_dead.close();
        self.replay_rows.close();
        self.replay_met.close();
        self.counts.close();
        self.epochs.close();
    }
}

type InputSession<T, D, R> = differential_dataflow::input::InputSession<T, D, R>;

/// What worker `index` writes to the lake with, if there is a lake.
fn worker_lake(shared: &Shared, index: usize) -> Option<WorkerLake> {
    let config = &shared.config;
    let start_positions: Option<Vec<Position>> = shared
        .resume
        .as_ref()
        .and_then(|m| m.positions.get(index).cloned());
    config.lake.as_ref().map(|lake| WorkerLake {
        config: lake.clone(),
        layout: shared.layout.clone(),
        names: crate::lake::layout::SourceNames::new(config.source.files(), config.source.topics()),
        worker: index,
        run: shared.run_tag.clone(),
        resumed: shared.resume.as_ref().map(|m| m.epoch),
        start_positions: start_positions.unwrap_or_default(),
        status: shared.lake_status.clone(),
    })
}

/// What the commit operator needs, if there is a lake; worker 0 also offers each commit's
/// positions to the Kafka group.
fn commit_setup(shared: &Arc<Shared>, index: usize, peers: usize) -> Option<CommitSetup> {
    let config = &shared.config;
    config.lake.as_ref().map(|lake| CommitSetup {
        config: lake.clone(),
        pipeline: config.id.clone(),
        source: config.source.describe(),
        generator: match &config.source {
            SourceSpec::Generate(g) => Some((g.seed, g.start_micros, g.bad_fraction)),
            _ => None,
        },
        positions: match &shared.resume {
            Some(meta) => meta.positions.clone(),
            None => vec![Vec::new(); peers],
        },
        resumed: shared.resume.as_ref().map(|m| m.epoch),
        status: shared.lake_status.clone(),
        after_commit: (index == 0).then(|| {
            let shared = shared.clone();
            Box::new(move |meta: &CommitMeta| {
                if let Some(c) = shared
                    .group_offsets
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_ref()
                {
                    c.offer(&meta.positions);
                }
            }) as lake_flow::AfterCommit
        }),
    })
}

/// What the views read: the events, dead letters and rows, live and replayed; and when every
/// process knows the strings in them.
struct ViewInputs<'s> {
    events: VecCollection<'s, u64, Event>,
    dead: VecCollection<'s, u64, DeadLetter>,
    rows: VecCollection<'s, u64, Row>,
    known: Known<'s>,
}

/// Every view over the events, dead letters and rows: the SQL views and the Rust views; their
/// rows' changes.
fn all_views<'s>(
    shared: &Shared,
    index: usize,
    inputs: ViewInputs<'s>,
) -> VecCollection<'s, u64, views::ViewRow> {
    let ViewInputs {
        events,
        dead,
        rows,
        known,
    } = inputs;
    let scope = events.inner.scope();
    let symbols = &shared.symbols;
    let mut out = (shared.sql).build(events, rows.clone(), dead.clone(), symbols, index, &known);
    let input = custom::Input {
        events: rows,
        dead_letters: dead,
        schema: shared.config.schema.clone(),
        symbols: symbols.clone(),
        worker: index,
        known,
    };
    for (i, view) in shared.config.custom_views.views().iter().enumerate() {
        let at = shared.store.catalog().custom_index(i) as u8;
        out.push(view.build(&input).map(move |(k, v)| (at, k, v)));
    }
    differential_dataflow::collection::concatenate(scope, out)
}

/// Runs worker `worker` of the pipeline: builds its dataflow, replays the lake into it if asked,
/// then reads its sources epoch by epoch until they are exhausted (with `--until-exhausted`) or
/// the run stops, and drains the dataflow.
pub(super) fn run(worker: &mut Worker, shared: &Arc<Shared>) -> Result<(), PipelineError> {
    // The epochs' clock starts with the first worker (of a cluster: once connected).
    shared.clock();
    let Built {
        mut inputs,
        probes,
        pool,
    } = build(worker, shared);
    let (index, peers) = (worker.index(), worker.peers());
    let config = &shared.config;
    if let Some(plan) = &shared.replay {
        inputs.advance_to(plan.epoch);
        if let Err(e) = replay(worker, shared, plan, &mut inputs, &probes[0]) {
            shared.stop.store(true, Ordering::SeqCst);
            return drain(worker, inputs, &probes, Err(e.into()), || {});
        }
    }
    inputs.advance_to(shared.base);
    let opened = config.source.open(Opening {
        index,
        peers,
        max_record_bytes: config.max_record_bytes,
        pipeline: &config.id,
        resume: shared.resume.as_ref().map(|m| m.positions.as_slice()),
        lag: shared.stats.lag.clone(),
    });
    let sources = match opened {
        Ok(sources) => sources,
        Err(e) => return drain(worker, inputs, &probes, Err(e.into()), || {}),
    };
    let mut reading = Reading {
        exhausted: vec![false; sources.len()],
        sources,
        epoch: shared.base,
        in_epoch: 0,
        open_epochs: VecDeque::new(),
        failure: None,
    };
    reading.run(worker, shared, &mut inputs, &probes, &pool);
    // Close the open epoch: everything read so far becomes final, then the input closes.
    let epoch = reading.epoch;
    reading.advance(shared, index, &mut inputs, epoch + 1);
    if let Some(reporter) = inputs.reporter.as_mut() {
        // The last records' events and dead letters are counted once decoded.
        while probes[0].less_equal(&epoch) && !lake_failed(shared) {
            worker.step_or_park(Some(Duration::from_millis(1)));
        }
        let mut reports = Vec::new();
        reporter.reports(&mut reports);
        for report in reports {
            inputs.counts.insert(report);
        }
        inputs.counts.flush();
    }
    let result = match reading.failure.take() {
        Some(e) => Err(e.into()),
        None => Ok(()),
    };
    // The views' latency is noted while the lake finishes its last files and commits, not
    // after: the views pass the last epochs long before the lake does.
    drain(worker, inputs, &probes, result, || {
        note_closed_epochs(shared, index, &probes[0], &mut reading.open_epochs)
    })
}

/// A worker's dataflow, built.
struct Built {
    inputs: Inputs,
    /// The views' progress, then the lake's: apart, since epoch latency is the views' and the
    /// lake commits in ranges.
    probes: [ProbeHandle<u64>; 2],
    /// Chunks go round: read into, decoded, given back.
    pool: ChunkPool,
}

/// Builds a worker's dataflow: decoding and staging for the lake, the lake's commits, and every
/// view over the live and replayed events, published to the view store.
fn build(worker: &mut Worker, shared: &Arc<Shared>) -> Built {
    let (index, peers) = (worker.index(), worker.peers());
    let config = &shared.config;
    let probes = [ProbeHandle::new(), ProbeHandle::new()];
    let worker_lake = worker_lake(shared, index);
    let commit_setup = commit_setup(shared, index, peers);
    let pool = ChunkPool::default();
    let mine = Mine::default();
    let inputs = worker.dataflow::<u64, _, _>(|scope| {
        let (chunks_in, chunks) = scope.new_collection::<Chunk, isize>();
        let (markers_in, markers) = scope.new_collection::<Marker, isize>();
        let (replay_in, replayed) = scope.new_collection::<Event, isize>();
        let (replay_dead_in, replayed_dead) = scope.new_collection::<DeadLetter, isize>();
        let (replay_rows_in, replayed_rows) = scope.new_collection::<Row, isize>();
        let (replay_met_in, replayed_met) = scope.new_collection::<(u64, String), isize>();
        let (counts_in, counts) = scope.new_collection::<Report, isize>();
        counts::gather(counts, shared.stats.clone(), &probes[0]);
        let (epochs_in, epochs) = scope.new_collection::<u64, isize>();
        follow_epochs(epochs, shared.clone());
        let mut decoding = Decoding::new(
            &config.schema,
            config.max_record_bytes,
            shared.sql.decoded(),
            shared.sql.typed(),
            interner(shared),
            shared.stats.clone(),
            mine.clone(),
        );
        let written: Written<'_, Row> = lake_flow::stage_and_write(
            chunks,
            markers,
            worker_lake,
            pool.clone(),
            move |epoch, chunk, stamp, out, stage| decoding.chunk(epoch, chunk, stamp, out, stage),
        );
        lake_flow::commit(written.reports, commit_setup, index).probe_with(&probes[1]);
        let met = written.met.concat(replayed_met.inner.map(|(m, _, _)| m));
        let known = super::learn::learn(met, shared);
        let inputs = ViewInputs {
            events: written.events.concat(replayed),
            dead: written.dead.concat(replayed_dead),
            rows: written.rows.concat(replayed_rows),
            known: known.clone(),
        };
        let rows = all_views(shared, index, inputs);
        let rows =
            differential_dataflow::AsCollection::as_collection(rows.inner.probe_with(&probes[0]));
        // The views' rows are shown as strings: every process must know them.
        views::publish(known.hold(rows), shared.store.clone(), index);
        Inputs {
            chunks: chunks_in,
            markers: markers_in,
            replay: replay_in,
            replay_dead: replay_dead_in,
            replay_rows: replay_rows_in,
            replay_met: replay_met_in,
            counts: counts_in,
            epochs: epochs_in,
            reporter: Reporter::of(
                config.leads(),
                &mine,
                // The first worker of its process sends the process's lag.
                index
                    .is_multiple_of(config.workers)
                    .then(|| shared.stats.lag.clone()),
            ),
            mine,
        }
    });
    Built {
        inputs,
        probes,
        pool,
    }
}

/// A worker reading its sources.
struct Reading {
    sources: Vec<Box<dyn Source>>,
    exhausted: Vec<bool>,
    /// The epoch what is read now is stamped with, and how many records it has so far.
    epoch: u64,
    in_epoch: u64,
    /// The epochs moved past and not yet passed by the views, with when they were left.
    open_epochs: VecDeque<(u64, Instant)>,
    failure: Option<SourceError>,
}

impl Reading {
    /// Reads until the sources are exhausted (with `--until-exhausted`), one fails, the lake
    /// fails, or the run is stopped, stepping the dataflow as it goes.
    fn run(
        &mut self,
        worker: &mut Worker,
        shared: &Shared,
        inputs: &mut Inputs,
        probes: &[ProbeHandle<u64>; 2],
        pool: &ChunkPool,
    ) {
        let (index, config) = (worker.index(), &shared.config);
        while !shared.stop.load(Ordering::SeqCst) {
            let target = target_epoch(shared, self.epoch);
            if target > self.epoch {
                self.advance(shared, index, inputs, target);
            }
            // Read, unless the views or the lake are too far behind.
            let lake_allowance = config.lake.as_ref().map_or(0, |l| l.commit_every);
            let lagging = probes[0].less_than(&self.epoch.saturating_sub(MAX_OPEN_EPOCHS))
                || probes[1]
                    .less_than(&self.epoch.saturating_sub(MAX_OPEN_EPOCHS + lake_allowance));
            let (ready, wake) = if lagging {
                (false, None)
            } else {
                self.poll(shared, inputs, pool)
            };
            if self.failure.is_some() {
                shared.stop.store(true, Ordering::SeqCst);
                break;
            }
            if let EpochPolicy::Records(n) = config.epoch
                && self.in_epoch > 0
                && (self.in_epoch >= n || !ready)
            {
                shared
                    .record_epoch
                    .fetch_max(self.epoch + 1, Ordering::SeqCst);
                if config.cluster.is_some() {
                    // A process with no input of its own follows the others' epochs.
                    inputs.epochs.insert(self.epoch + 1);
                }
            }
            if config.until_exhausted && self.exhausted.iter().all(|d| *d) {
                break;
            }
            note_closed_epochs(shared, index, &probes[0], &mut self.open_epochs);
            if lake_failed(shared) {
                shared.stop.store(true, Ordering::SeqCst);
                break;
            }
            if ready || lagging {
                worker.step();
            } else {
                worker.step_or_park(Some(self.park(shared, wake)));
            }
        }
    }

    /// Polls each source not yet exhausted once, inserting what it read into the current
    /// epoch; whether any had records ready, and the earliest moment an idle one wants to be
    /// polled again. A source's error is kept in `failure`.
    fn poll(
        &mut self,
        shared: &Shared,
        inputs: &mut Inputs,
        pool: &ChunkPool,
    ) -> (bool, Option<Instant>) {
        let (mut ready, mut wake) = (false, None::<Instant>);
        let sources = self.sources.iter_mut().zip(self.exhausted.iter_mut());
        for (source, done) in sources.filter(|(_, d)| !**d) {
            let mut chunk = pool.take();
            match source.poll(&mut chunk, CHUNK_RECORDS) {
                Ok(Poll::Ready) => ready = true,
                Ok(Poll::Idle(at)) => wake = wake.min(at).or(at),
                Ok(Poll::Exhausted) => *done = true,
                Err(e) => self.failure = Some(e),
            }
            if !chunk.is_empty() {
                self.in_epoch += chunk.len() as u64;
                stats_add_chunk(&shared.stats, &chunk);
                inputs
                    .mine
                    .add((chunk.len() as u64, chunk.byte_len() as u64, 0, 0));
                inputs.chunks.insert(chunk);
                inputs.chunks.flush();
            } else {
                pool.give(chunk);
            }
        }
        (ready, wake)
    }

    /// How long to park when no source is ready: until the next epoch tick or the moment an
    /// idle source asked for, at most 20 ms.
    fn park(&self, shared: &Shared, wake: Option<Instant>) -> Duration {
        let mut park = Duration::from_millis(20);
        if let EpochPolicy::Interval(interval) = shared.config.epoch {
            let next_tick = interval
                .mul_f64((self.epoch + 1 - shared.base) as f64)
                .saturating_sub(shared.clock().elapsed());
            park = park.min(next_tick);
        }
        if let Some(at) = wake {
            park = park.min(at.saturating_duration_since(Instant::now()));
        }
        park
    }

    /// Moves the inputs to epoch `to` ([`advance`]).
    fn advance(&mut self, shared: &Shared, index: usize, inputs: &mut Inputs, to: u64) {
        let from = self.epoch;
        advance(
            shared,
            index,
            inputs,
            &self.sources,
            &mut self.open_epochs,
            from,
            to,
        );
        self.epoch = to;
        self.in_epoch = 0;
    }
}

fn lake_failed(shared: &Shared) -> bool {
    shared
        .lake_status
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .error
        .is_some()
}

/// Closes the inputs and runs the dataflow to completion, calling `stepped` after each step,
/// then returns `result`.
fn drain(
    worker: &mut Worker,
    inputs: Inputs,
    probes: &[ProbeHandle<u64>; 2],
    result: Result<(), PipelineError>,
    mut stepped: impl FnMut(),
) -> Result<(), PipelineError> {
    inputs.close();
    while probes.iter().any(|p| !p.done()) {
        worker.step_or_park(Some(Duration::from_millis(1)));
        stepped();
    }
    stepped();
    result
}

/// Feeds this worker's share of the lake's committed files into the views.
fn replay(
    worker: &mut Worker,
    shared: &Shared,
    plan: &ReplayPlan,
    inputs: &mut Inputs,
    probe: &ProbeHandle<u64>,
) -> Result<(), LakeError> {
    let (index, peers) = (worker.index(), worker.peers());
    let mut interner = interner(shared);
    let layout = shared.sql.decoded();
    let events_root = crate::lake::table::table_root(&plan.dir, crate::lake::TableKind::Events);
    let dead_root = crate::lake::table::table_root(&plan.dir, crate::lake::TableKind::DeadLetters);
    let mut rows = 0u64;
    for file in plan.events.iter().skip(index).step_by(peers) {
        rows += crate::lake::replay::read_events(
            &events_root,
            file,
            plan.through,
            &mut interner,
            |e| inputs.replay.insert(e),
        )?;
        inputs.replay.flush();
        if !layout.is_empty() {
            crate::views::sql::replay::read_rows(
                &events_root,
                file,
                plan.through,
                &shared.config.schema,
                &layout,
                &mut interner,
                |r| inputs.replay_rows.insert(r),
            )?;
            inputs.replay_rows.flush();
        }
        for met in interner.take_met() {
            inputs.replay_met.insert(met);
        }
        inputs.replay_met.flush();
        worker.step_while(|| probe.less_than(&0));
        worker.step();
    }
    for file in plan.dead.iter().skip(index).step_by(peers) {
        rows += crate::lake::replay::read_dead(&dead_root, file, plan.through, |d| {
            inputs.replay_dead.insert(d)
        })?;
        inputs.replay_dead.flush();
        worker.step();
    }
    tracing::debug!(worker = index, rows, "replayed the lake");
    Ok(())
}

/// Moves this process's workers to every epoch another process's worker moved its workers to
/// ([`EpochPolicy::Records`] in a cluster): the epochs of records advance on one clock.
fn follow_epochs(epochs: VecCollection<'_, u64, u64>, shared: Arc<Shared>) {
    use timely::dataflow::operators::Inspect;
    use timely::dataflow::operators::vec::Broadcast;
    epochs.inner.broadcast().inspect(move |(epoch, _, _)| {
        shared.record_epoch.fetch_max(*epoch, Ordering::SeqCst);
    });
}

/// A worker's interner; in a cluster it notes the symbols it meets, for the other processes to
/// learn.
fn interner(shared: &Shared) -> Interner {
    match shared.config.cluster {
        Some(_) => Interner::noting(shared.symbols.clone()),
        None => Interner::new(shared.symbols.clone()),
    }
}

fn stats_add_chunk(stats: &Stats, chunk: &Chunk) {
    stats
        .records_in
        .fetch_add(chunk.len() as u64, Ordering::Relaxed);
    stats
        .bytes_in
        .fetch_add(chunk.byte_len() as u64, Ordering::Relaxed);
}

/// Moves the inputs from `from` to `to`, recording (and sending to the lake writer) where the
/// sources stood at the end of `from`.
fn advance(
    shared: &Shared,
    index: usize,
    inputs: &mut Inputs,
    sources: &[Box<dyn crate::source::Source>],
    open_epochs: &mut VecDeque<(u64, Instant)>,
    from: u64,
    to: u64,
) {
    let mut positions: Vec<Position> = Vec::new();
    for source in sources {
        source.positions(&mut positions);
    }
    inputs.markers.insert((index, positions.clone()));
    if let Some(reporter) = inputs.reporter.as_mut() {
        let mut reports = Vec::new();
        reporter.reports(&mut reports);
        for report in reports {
            inputs.counts.insert(report);
        }
    }
    inputs.advance_to(to);
    shared
        .stats
        .positions
        .lock()
        .unwrap_or_else(|e| e.into_inner())[index] = (from, positions);
    shared.stats.epoch.fetch_max(to, Ordering::Relaxed);
    open_epochs.push_back((from, Instant::now()));
}

/// Records the latency of epochs the views have passed.
fn note_closed_epochs(
    shared: &Shared,
    index: usize,
    probe: &ProbeHandle<u64>,
    open: &mut VecDeque<(u64, Instant)>,
) {
    while let Some(&(epoch, since)) = open.front() {
        if probe.less_equal(&epoch) {
            break;
        }
        open.pop_front();
        if index == 0 {
            let micros = since.elapsed().as_micros().max(1) as u64;
            let _ = shared
                .stats
                .epoch_latency
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .record(micros);
        }
    }
}
