//! The dataflow: sources feed raw chunks into one timely computation per worker, which decodes
//! them into events and dead letters and maintains the views.
//!
//! Time is an epoch number. Every worker stamps what it reads with the current epoch and moves
//! to the next one on a shared [`EpochPolicy`]: a processing-time interval, or a number of
//! records. Epoch `e` is closed once every worker has moved past it and the dataflow has caught
//! up; the views are then published as of `e`, and each worker records where its sources stood,
//! the positions the batch layer commits with the epoch.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::event::{Position, Schema, Symbols};
use crate::lake::dataflow::SharedStatus;
use crate::lake::ops::{ReplayPlan, ReplaySpec};
use crate::lake::{CommitMeta, LakeConfig, LakeError, Layout};
use crate::source::kafka::GroupCommitter;
use crate::source::{SourceError, SourceSpec};
use crate::views::custom::Registry;
use crate::views::sql::SqlView;
use crate::views::{Snapshots, ViewId, ViewStore};

mod decode;
mod worker;

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
            let result = worker::run(worker, &for_workers);
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
