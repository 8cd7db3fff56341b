//! The dataflow: sources feed raw chunks into one timely computation per worker, which decodes
//! them into events and dead letters and maintains the views.
//!
//! Time is an epoch number. Every worker stamps what it reads with the current epoch and moves
//! to the next one on a shared [`EpochPolicy`]: a processing-time interval, or a number of
//! records. Epoch `e` is closed once every worker has moved past it and the dataflow has caught
//! up; the views are then published as of `e`, and each worker records where its sources stood,
//! the positions the batch layer commits with the epoch.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use differential_dataflow::VecCollection;
use differential_dataflow::input::Input;
use hdrhistogram::Histogram;
use timely::dataflow::ProbeHandle;
use timely::dataflow::operators::Probe;
use timely::worker::Worker;

use crate::event::{DeadLetter, Event, Interner, Position, Schema, Symbols};
use crate::lake::dataflow::{self as lake_flow, CommitSetup, Marker, SharedStatus, WorkerLake};
use crate::lake::ops::{ReplayPlan, ReplaySpec};
use crate::lake::{CommitMeta, LakeConfig, LakeError, Layout};
use crate::source::kafka::GroupCommitter;
use crate::source::{Chunk, ChunkPool, Opening, Poll, SourceError, SourceSpec};
use crate::views::custom::{self, Registry};
use crate::views::sql::{RowLayout, SqlView};
use crate::views::{self, Datum, Snapshots, ViewId, ViewStore};

mod decode;

use self::decode::Decoding;

/// Records a source may hand over per poll.
const CHUNK_RECORDS: usize = 4096;
/// How many epochs a worker may run ahead of the slowest view before it stops reading.
const MAX_OPEN_EPOCHS: u64 = 64;

/// When a worker moves to the next epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EpochPolicy {
    /// Every interval of processing time.
    Interval(Duration),
    /// After this many records on a worker, or when its input pauses.
    Records(u64),
}

/// Everything a run needs, validated.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    /// The pipeline's id (the lake's application id).
    pub id: String,
    /// Timely worker threads.
    pub workers: usize,
    /// When epochs advance.
    pub epoch: EpochPolicy,
    /// What to read.
    pub source: SourceSpec,
    /// The event schema.
    pub schema: Schema,
    /// Records over this many bytes are dead letters (`too_large`).
    pub max_record_bytes: usize,
    /// The built-in views to maintain.
    pub views: Vec<ViewId>,
    /// The SQL views to maintain.
    pub sql_views: Vec<SqlView>,
    /// The Rust views to maintain.
    pub custom_views: Registry,
    /// Stop once every source is exhausted, instead of serving until stopped.
    pub until_exhausted: bool,
    /// The lake to write (and to resume from and replay on start).
    pub lake: Option<LakeConfig>,
    /// Without a lake to write: a lake to replay into the views (`batch`, `verify`).
    pub replay: Option<ReplaySpec>,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            id: "lambdaflow".into(),
            workers: 1,
            epoch: EpochPolicy::Interval(Duration::from_millis(100)),
            source: SourceSpec::Generate(Default::default()),
            schema: Schema::ecommerce(),
            max_record_bytes: 1 << 20,
            views: ViewId::all(),
            sql_views: Vec::new(),
            custom_views: Registry::default(),
            until_exhausted: false,
            lake: None,
            replay: None,
        }
    }
}

/// A run that failed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A source could not be read.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Timely could not start its workers.
    #[error("starting the workers: {0}")]
    Start(String),
    /// A worker thread panicked (a bug in lambdaflow).
    #[error("a worker failed: {0}")]
    Worker(String),
    /// The lake could not be opened, written, committed or read.
    #[error("lake: {0}")]
    Lake(#[from] LakeError),
}

/// Counters of a run, updated by the workers and read by anyone.
#[derive(Debug)]
pub struct Stats {
    /// Raw records read.
    pub records_in: AtomicU64,
    /// Raw bytes read.
    pub bytes_in: AtomicU64,
    /// Records decoded into events.
    pub events: AtomicU64,
    /// Records that became dead letters.
    pub dead_letters: AtomicU64,
    /// The highest epoch any worker has reached.
    pub epoch: AtomicU64,
    /// Workers that have finished.
    pub workers_done: AtomicUsize,
    /// Per worker: the last epoch it closed and where its sources stood then.
    pub positions: Mutex<Vec<(u64, Vec<Position>)>>,
    /// Epoch latency in microseconds: from a worker moving past an epoch to every view having
    /// passed it (recorded by worker 0).
    pub epoch_latency: Mutex<Histogram<u64>>,
    /// When the run started.
    pub started: Instant,
    /// Kafka lag per partition.
    pub lag: crate::source::LagBoard,
}

impl Stats {
    fn new(workers: usize) -> Self {
        Stats {
            records_in: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            events: AtomicU64::new(0),
            dead_letters: AtomicU64::new(0),
            epoch: AtomicU64::new(0),
            workers_done: AtomicUsize::new(0),
            positions: Mutex::new(vec![(0, Vec::new()); workers]),
            epoch_latency: Mutex::new(latency_histogram()),
            started: Instant::now(),
            lag: Default::default(),
        }
    }
}

/// A histogram of durations in microseconds, from 1 µs to an hour, 3 significant digits.
pub(crate) fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// What the workers share.
struct Shared {
    config: PipelineConfig,
    /// The last lake commit this run resumes from.
    resume: Option<CommitMeta>,
    /// What to replay into the views before reading the sources.
    replay: Option<ReplayPlan>,
    /// The first live epoch (after the resumed one).
    base: u64,
    layout: Arc<Layout>,
    lake_status: SharedStatus,
    run_tag: String,
    symbols: Arc<Symbols>,
    store: Arc<ViewStore>,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    /// With [`EpochPolicy::Records`]: the epoch every worker should be at, at least.
    record_epoch: AtomicU64,
    started: Instant,
    /// Commits each lake commit's Kafka offsets to the consumer group.
    group_offsets: Mutex<Option<GroupCommitter>>,
}

/// A running pipeline.
pub struct Pipeline {
    shared: Arc<Shared>,
    guards: timely::communication::initialize::WorkerGuards<Result<(), PipelineError>>,
    _lock: Option<std::fs::File>,
}

impl Pipeline {
    /// Starts the workers.
    pub fn start(mut config: PipelineConfig) -> Result<Pipeline, PipelineError> {
        let symbols = Arc::new(Symbols::default());
        let store = Arc::new(ViewStore::with_views(
            symbols.clone(),
            config.views.clone(),
            config.sql_views.clone(),
            config.custom_views.clone(),
        ));
        let stats = Arc::new(Stats::new(config.workers));
        let workers = config.workers;
        let layout = Arc::new(Layout::new(&config.schema));
        let (mut resume, mut replay, mut lock) = (None, None, None);
        if let Some(lake) = &config.lake {
            let prepared = crate::lake::ops::prepare(
                lake,
                &layout,
                &config.id,
                config.source.resumes_per_worker().then_some(workers),
                &config.source.describe(),
            )?;
            if let (Some(meta), SourceSpec::Generate(spec)) = (&prepared.last, &mut config.source)
                && let Some((seed, start, bad)) = meta.generator
            {
                // The generated stream is the lake's: resume it, not a new one.
                spec.seed = seed;
                spec.start_micros = start;
                spec.bad_fraction = bad;
            }
            store.set_snapshots(Snapshots {
                dir: crate::lake::state_dir(&lake.dir).join("views"),
                every: lake.commit_every,
                keep: 4,
            });
            resume = prepared.last.map(|mut meta| {
                meta.positions = config.source.regroup(&meta.positions, workers);
                meta
            });
            replay = Some(prepared.plan);
            lock = Some(prepared.lock);
        } else if let Some(spec) = &config.replay {
            replay = Some(crate::lake::ops::plan(spec)?.0);
        }
        let base = match (&resume, &replay) {
            (Some(meta), _) => meta.epoch + 1,
            // A replay alone (`batch`): its views are as of the replayed epoch.
            (None, Some(plan)) if config.lake.is_none() => plan.epoch,
            _ => 0,
        };
        let group_offsets = match (&config.source, &config.lake) {
            (SourceSpec::Kafka(spec), Some(_)) => Some(
                GroupCommitter::start(spec, &spec.group_or(&config.id))
                    .map_err(PipelineError::Source)?,
            ),
            _ => None,
        };
        if let (Some(committer), Some(meta)) = (&group_offsets, &resume) {
            // A run killed between a lake commit and the group's left the group behind: the
            // lake's offsets are the truth, and this run may read nothing new to commit again.
            committer.offer(&meta.positions);
        }
        let shared = Arc::new(Shared {
            group_offsets: Mutex::new(group_offsets),
            resume,
            replay,
            base,
            layout,
            lake_status: Default::default(),
            run_tag: crate::lake::writer::run_tag(),
            config,
            symbols,
            store,
            stats,
            stop: Arc::new(AtomicBool::new(false)),
            record_epoch: AtomicU64::new(base),
            started: Instant::now(),
        });
        let for_workers = shared.clone();
        let timely_config = timely::Config::process(workers);
        let guards = timely::execute(timely_config, move |worker| {
            let result = run_worker(worker, &for_workers);
            if result.is_err() {
                for_workers.stop.store(true, Ordering::SeqCst);
            }
            for_workers
                .stats
                .workers_done
                .fetch_add(1, Ordering::SeqCst);
            result
        })
        .map_err(PipelineError::Start)?;
        Ok(Pipeline {
            shared,
            guards,
            _lock: lock,
        })
    }

    /// How far the lake has got.
    pub fn lake_status(&self) -> &SharedStatus {
        &self.shared.lake_status
    }

    /// The lake commit this run resumed from, if any.
    pub fn resumed(&self) -> Option<&CommitMeta> {
        self.shared.resume.as_ref()
    }

    /// The views.
    pub fn views(&self) -> &Arc<ViewStore> {
        &self.shared.store
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.shared.stats
    }

    /// The flag that stops the run when set (sources stop, the open epoch closes).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.shared.stop.clone()
    }

    /// Whether every worker has finished.
    pub fn is_finished(&self) -> bool {
        self.shared.stats.workers_done.load(Ordering::SeqCst) == self.shared.config.workers
    }

    /// Waits for the workers to finish.
    pub fn join(self) -> Result<(), PipelineError> {
        let mut first_error = None;
        for result in self.guards.join() {
            if let Err(e) = result.map_err(PipelineError::Worker).and_then(|r| r) {
                first_error.get_or_insert(e);
            }
        }
        let group_offsets = self
            .shared
            .group_offsets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(committer) = group_offsets {
            committer.finish(Duration::from_secs(10));
        }
        let (lake_error, committed) = {
            let mut status = self
                .shared
                .lake_status
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            (
                status.error.take(),
                status.committed.map(|(epoch, _)| epoch),
            )
        };
        if let Some(e) = lake_error {
            return Err(PipelineError::Lake(LakeError::Other(e)));
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        // Every epoch is closed now, including the last, even if the workers closed their inputs
        // in the same step as they left it (the view sink then never sees it as a frontier).
        let last = self
            .shared
            .stats
            .epoch
            .load(Ordering::SeqCst)
            .saturating_sub(1);
        // The last commit ends at a boundary, which may lie a few epochs past the last one
        // read: nothing happened in those, and the views are as of that commit, as the lake is.
        let last = last.max(committed.unwrap_or(0));
        self.shared
            .store
            .close_through(last.max(self.shared.base.saturating_sub(1)));
        if self.shared.config.lake.is_some() {
            self.shared.store.write_snapshot(true);
        }
        self.shared.store.finish_snapshots();
        Ok(())
    }

    /// Runs to the end (with `until_exhausted`, or until the stop flag is set) and returns the views.
    pub fn run(config: PipelineConfig) -> Result<Arc<ViewStore>, PipelineError> {
        let pipeline = Pipeline::start(config)?;
        let store = pipeline.views().clone();
        pipeline.join()?;
        Ok(store)
    }
}

/// The epoch a worker should be at now.
fn target_epoch(shared: &Shared, current: u64) -> u64 {
    match shared.config.epoch {
        EpochPolicy::Interval(interval) => {
            let elapsed = shared.started.elapsed().as_nanos() / interval.as_nanos().max(1);
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
    replay_rows: InputSession<u64, Vec<Datum>, isize>,
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
    }

    fn close(self) {
        self.chunks.close();
        self.markers.close();
        self.replay.close();
        self.replay_dead.close();
        self.replay_rows.close();
    }
}

/// The rows the SQL and Rust views read: every schema field when there are Rust views, else
/// the fields the SQL views read; and the SQL views' plans renumbered into them.
fn row_layout(config: &PipelineConfig, symbols: &Symbols) -> (RowLayout, Vec<views::sql::Plan>) {
    if config.custom_views.is_empty() {
        RowLayout::of(&config.sql_views, symbols)
    } else {
        RowLayout::all(&config.schema, &config.sql_views, symbols)
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

/// Every view over the events, dead letters and rows (live and replayed): the built-in views,
/// the SQL views (fused where they can be) and the Rust views; their rows' changes.
fn all_views<'s>(
    shared: &Shared,
    index: usize,
    sql_plans: &[views::sql::Plan],
    non_null: &[bool],
    events: VecCollection<'s, u64, Event>,
    dead: VecCollection<'s, u64, DeadLetter>,
    event_rows: VecCollection<'s, u64, Vec<Datum>>,
) -> VecCollection<'s, u64, views::ViewRow> {
    let config = &shared.config;
    let mut rows = views::build(events, dead.clone(), &config.views, &shared.symbols);
    let plans: Vec<(u8, &views::sql::Plan)> = sql_plans
        .iter()
        .enumerate()
        .map(|(i, plan)| (shared.store.catalog().sql_index(i) as u8, plan))
        .collect();
    let (fused, rest) = views::sql::fused::Fused::of(&plans, non_null);
    if !fused.is_empty() {
        rows = rows.concat(fused.build(event_rows.clone(), &shared.symbols));
    }
    for (view, plan) in rest {
        let input = match plan.table {
            views::sql::TableName::Events => event_rows.clone(),
            views::sql::TableName::DeadLetters => dead.clone().map(|d| views::sql::dead_row(&d)),
        };
        rows = rows.concat(views::sql::build(plan, view, input, &shared.symbols, index));
    }
    let input = custom::Input {
        events: event_rows,
        dead_letters: dead,
        schema: config.schema.clone(),
        symbols: shared.symbols.clone(),
        worker: index,
    };
    for (i, view) in config.custom_views.views().iter().enumerate() {
        let at = shared.store.catalog().custom_index(i) as u8;
        rows = rows.concat(view.build(&input).map(move |(k, v)| (at, k, v)));
    }
    rows
}

fn run_worker(worker: &mut Worker, shared: &Arc<Shared>) -> Result<(), PipelineError> {
    let index = worker.index();
    let peers = worker.peers();
    let config = &shared.config;

    let (row_layout, sql_plans) = row_layout(config, &shared.symbols);
    let non_null = row_layout.never_null(&config.schema);
    // Views and lake progress apart: epoch latency is the views'; the lake commits in ranges.
    let probe = ProbeHandle::new();
    let lake_probe = ProbeHandle::new();
    let stats = shared.stats.clone();
    let worker_lake = worker_lake(shared, index);
    let commit_setup = commit_setup(shared, index, peers);
    // Chunks go round: read into, decoded, given back.
    let pool = ChunkPool::default();
    let mut inputs = worker.dataflow::<u64, _, _>(|scope| {
        let (chunks_in, chunks) = scope.new_collection::<Chunk, isize>();
        let (markers_in, markers) = scope.new_collection::<Marker, isize>();
        let (replay_in, replayed) = scope.new_collection::<Event, isize>();
        let (replay_dead_in, replayed_dead) = scope.new_collection::<DeadLetter, isize>();
        let (replay_rows_in, replayed_rows) = scope.new_collection::<Vec<Datum>, isize>();
        let mut decoding = Decoding::new(
            &config.schema,
            config.max_record_bytes,
            row_layout.clone(),
            !config.views.is_empty(),
            shared.symbols.clone(),
            stats.clone(),
        );
        let (events, dead, event_rows, reports) = lake_flow::stage_and_write(
            chunks,
            markers,
            worker_lake,
            pool.clone(),
            move |epoch, chunk, stamp, events, dead, rows, stage| {
                decoding.chunk(epoch, chunk, stamp, events, dead, rows, stage)
            },
        );
        lake_flow::commit(reports, commit_setup, index).probe_with(&lake_probe);
        let rows = all_views(
            shared,
            index,
            &sql_plans,
            &non_null,
            events.concat(replayed),
            dead.concat(replayed_dead),
            event_rows.concat(replayed_rows),
        );
        let rows =
            differential_dataflow::AsCollection::as_collection(rows.inner.probe_with(&probe));
        views::publish(rows, shared.store.clone(), index);
        Inputs {
            chunks: chunks_in,
            markers: markers_in,
            replay: replay_in,
            replay_dead: replay_dead_in,
            replay_rows: replay_rows_in,
        }
    });

    let base = shared.base;
    if let Some(plan) = &shared.replay {
        inputs.advance_to(plan.epoch);
        if let Err(e) = replay(worker, shared, plan, &mut inputs, &probe) {
            shared.stop.store(true, Ordering::SeqCst);
            return drain(worker, inputs, [&probe, &lake_probe], Err(e.into()), || {});
        }
    }
    inputs.advance_to(base);

    let opened = config.source.open(Opening {
        index,
        peers,
        max_record_bytes: config.max_record_bytes,
        pipeline: &config.id,
        resume: shared.resume.as_ref().map(|m| m.positions.as_slice()),
        lag: shared.stats.lag.clone(),
    });
    let mut sources = match opened {
        Ok(sources) => sources,
        Err(e) => return drain(worker, inputs, [&probe, &lake_probe], Err(e.into()), || {}),
    };
    let mut exhausted = vec![false; sources.len()];
    let mut epoch = base;
    let mut in_epoch = 0u64;
    let mut open_epochs: VecDeque<(u64, Instant)> = VecDeque::new();
    let mut failure = None;

    loop {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let target = target_epoch(shared, epoch);
        if target > epoch {
            advance(
                shared,
                index,
                &mut inputs,
                &sources,
                &mut open_epochs,
                epoch,
                target,
            );
            epoch = target;
            in_epoch = 0;
        }

        // Read, unless the views or the lake are too far behind.
        let lake_allowance = config.lake.as_ref().map_or(0, |l| l.commit_every);
        let lagging = probe.less_than(&epoch.saturating_sub(MAX_OPEN_EPOCHS))
            || lake_probe.less_than(&epoch.saturating_sub(MAX_OPEN_EPOCHS + lake_allowance));
        let mut ready = false;
        let mut wake: Option<Instant> = None;
        if !lagging {
            for (source, done) in sources
                .iter_mut()
                .zip(exhausted.iter_mut())
                .filter(|(_, d)| !**d)
            {
                let mut chunk = pool.take();
                match source.poll(&mut chunk, CHUNK_RECORDS) {
                    Ok(Poll::Ready) => ready = true,
                    Ok(Poll::Idle(at)) => wake = wake.min(at).or(at),
                    Ok(Poll::Exhausted) => *done = true,
                    Err(e) => failure = Some(e),
                }
                if !chunk.is_empty() {
                    in_epoch += chunk.len() as u64;
                    stats_add_chunk(&shared.stats, &chunk);
                    inputs.chunks.insert(chunk);
                    inputs.chunks.flush();
                } else {
                    pool.give(chunk);
                }
            }
        }
        if failure.is_some() {
            shared.stop.store(true, Ordering::SeqCst);
            break;
        }
        if let EpochPolicy::Records(n) = config.epoch
            && in_epoch > 0
            && (in_epoch >= n || !ready)
        {
            shared.record_epoch.fetch_max(epoch + 1, Ordering::SeqCst);
        }
        let all_done = exhausted.iter().all(|d| *d);
        if all_done && config.until_exhausted {
            break;
        }
        note_closed_epochs(shared, index, &probe, &mut open_epochs);
        if lake_failed(shared) {
            shared.stop.store(true, Ordering::SeqCst);
            break;
        }

        if ready || lagging {
            worker.step();
        } else {
            let mut park = Duration::from_millis(20);
            if let EpochPolicy::Interval(interval) = config.epoch {
                let next_tick = interval
                    .mul_f64((epoch + 1 - base) as f64)
                    .saturating_sub(shared.started.elapsed());
                park = park.min(next_tick);
            }
            if let Some(at) = wake {
                park = park.min(at.saturating_duration_since(Instant::now()));
            }
            worker.step_or_park(Some(park));
        }
    }

    // Close the open epoch: everything read so far becomes final, then the input closes.
    advance(
        shared,
        index,
        &mut inputs,
        &sources,
        &mut open_epochs,
        epoch,
        epoch + 1,
    );
    let result = match failure {
        Some(e) => Err(e.into()),
        None => Ok(()),
    };
    // The views' latency is noted while the lake finishes its last files and commits, not
    // after: the views pass the last epochs long before the lake does.
    drain(worker, inputs, [&probe, &lake_probe], result, || {
        note_closed_epochs(shared, index, &probe, &mut open_epochs)
    })
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
    probes: [&ProbeHandle<u64>; 2],
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
    let mut interner = Interner::new(shared.symbols.clone());
    let (layout, _) = row_layout(&shared.config, &shared.symbols);
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
