//! The dataflow: sources feed raw chunks into one timely computation per worker, which decodes
//! them into events and dead letters and maintains the views.
//!
//! Time is an epoch number. Every worker stamps what it reads with the current epoch and moves
//! to the next one on a shared [`EpochPolicy`]: a processing-time interval, or a number of
//! records. Epoch `e` is closed once every worker has moved past it and the dataflow has caught
//! up; the views are then published as of `e`, and each worker records where its sources stood,
//! the positions the batch layer commits with the epoch.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
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
use crate::views::sql::planned::Planned;
use crate::views::{Snapshots, ViewStore};

mod connect;
mod counts;
mod decode;
mod learn;
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

/// The processes of a cluster, and which one this is: one timely computation over TCP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    /// This process's index, from 0.
    pub process: usize,
    /// Every process's `host:port`, by index.
    pub addresses: Vec<String>,
}

/// Everything a run needs, validated.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    /// The pipeline's id (the lake's application id).
    pub id: String,
    /// Timely worker threads (of each process, in a cluster).
    pub workers: usize,
    /// The cluster this process is part of, if it is one.
    pub cluster: Option<Cluster>,
    /// When epochs advance.
    pub epoch: EpochPolicy,
    /// What to read.
    pub source: SourceSpec,
    /// The event schema.
    pub schema: Schema,
    /// Records over this many bytes are dead letters (`too_large`).
    pub max_record_bytes: usize,
    /// The SQL views to maintain (by default, the built-in views).
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
            cluster: None,
            epoch: EpochPolicy::Interval(Duration::from_millis(100)),
            source: SourceSpec::Generate(Default::default()),
            schema: Schema::ecommerce(),
            max_record_bytes: 1 << 20,
            sql_views: crate::views::builtin::ecommerce(),
            custom_views: Registry::default(),
            until_exhausted: false,
            lake: None,
            replay: None,
        }
    }
}

impl PipelineConfig {
    /// The workers of the whole computation: of every process.
    pub fn peers(&self) -> usize {
        self.workers * self.cluster.as_ref().map_or(1, |c| c.addresses.len())
    }

    /// Whether this process leads: the only process, or the first of a cluster. It owns the
    /// lake (its lock, its repairs), commits, and holds the views.
    pub fn leads(&self) -> bool {
        self.cluster.as_ref().is_none_or(|c| c.process == 0)
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
    /// Two processes of a cluster gave one symbol to two strings.
    #[error("{0}")]
    Symbols(String),
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
    /// The SQL views, planned.
    sql: Planned,
    store: Arc<ViewStore>,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    /// With [`EpochPolicy::Records`]: the epoch every worker should be at, at least.
    record_epoch: AtomicU64,
    /// When the workers began: the epochs' clock. Set by the first worker, once a cluster's
    /// processes are connected, so that every process's clock starts together.
    started: OnceLock<Instant>,
    /// Commits each lake commit's Kafka offsets to the consumer group.
    group_offsets: Mutex<Option<GroupCommitter>>,
    /// Two strings a cluster could not tell apart ([`learn`]).
    clash: Mutex<Option<String>>,
}

/// What a process has from the start, before it knows the lake (a cluster's other processes
/// read it once connected).
#[derive(Clone)]
struct Handles {
    symbols: Arc<Symbols>,
    store: Arc<ViewStore>,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    lake_status: SharedStatus,
}

/// Where a run starts from: the lake's last commit and what to replay.
struct Start {
    resume: Option<CommitMeta>,
    replay: Option<ReplayPlan>,
    group_offsets: Option<GroupCommitter>,
}

/// The workers' [`Shared`], once known; or why it could not be.
type SharedCell = OnceLock<Result<Arc<Shared>, String>>;

/// A running pipeline.
pub struct Pipeline {
    handles: Handles,
    workers: usize,
    shared: Arc<SharedCell>,
    guards: timely::communication::initialize::WorkerGuards<Result<(), PipelineError>>,
    _lock: Option<std::fs::File>,
}

impl Pipeline {
    /// Starts the workers (in a cluster: once every process has connected).
    pub fn start(mut config: PipelineConfig) -> Result<Pipeline, PipelineError> {
        let symbols = Arc::new(Symbols::default());
        let handles = Handles {
            store: Arc::new(ViewStore::new(
                symbols.clone(),
                config.sql_views.clone(),
                config.custom_views.clone(),
            )),
            symbols,
            stats: Arc::new(Stats::new(config.peers())),
            stop: Arc::new(AtomicBool::new(false)),
            lake_status: Default::default(),
        };
        let cell = Arc::new(SharedCell::new());
        // Listening before the lake is prepared: the other processes connect meanwhile.
        let listener = match &config.cluster {
            Some(c) => Some(connect::listen(c).map_err(PipelineError::Start)?),
            None => None,
        };
        let mut lock = None;
        if config.leads() {
            let (start, held) = lead(&mut config, &handles)?;
            lock = held;
            let _ = cell.set(Ok(Arc::new(Shared::new(config.clone(), start, &handles))));
        }
        let workers = config.workers;
        if config.cluster.is_some() {
            end_on_a_lost_peer();
        }
        let cluster = config.cluster.clone();
        let (for_workers, handles_for_workers) = (cell.clone(), handles.clone());
        let run = move |worker: &mut timely::worker::Worker| {
            // A cluster's other processes read the lake once connected: the first process has
            // prepared it by then.
            let shared = for_workers.get_or_init(|| follow(config.clone(), &handles_for_workers));
            let result = match shared {
                Ok(shared) => worker::run(worker, shared),
                Err(e) => Err(PipelineError::Start(e.clone())),
            };
            if result.is_err() {
                handles_for_workers.stop.store(true, Ordering::SeqCst);
            }
            handles_for_workers
                .stats
                .workers_done
                .fetch_add(1, Ordering::SeqCst);
            result
        };
        let guards = match (cluster, listener) {
            (Some(cluster), Some(listener)) => connect::execute(&cluster, workers, listener, run),
            _ => timely::execute(timely::Config::process(workers), run),
        }
        .map_err(PipelineError::Start)?;
        Ok(Pipeline {
            handles,
            workers,
            shared: cell,
            guards,
            _lock: lock,
        })
    }

    /// How far the lake has got.
    pub fn lake_status(&self) -> &SharedStatus {
        &self.handles.lake_status
    }

    /// The lake commit this run resumed from, if any (known from the start on the first
    /// process of a cluster only).
    pub fn resumed(&self) -> Option<&CommitMeta> {
        match self.shared.get() {
            Some(Ok(shared)) => shared.resume.as_ref(),
            _ => None,
        }
    }

    /// The views (held by the first process of a cluster).
    pub fn views(&self) -> &Arc<ViewStore> {
        &self.handles.store
    }

    /// The counters (of this process).
    pub fn stats(&self) -> &Arc<Stats> {
        &self.handles.stats
    }

    /// The flag that stops the run when set (sources stop, the open epoch closes).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.handles.stop.clone()
    }

    /// Whether every worker of this process has finished.
    pub fn is_finished(&self) -> bool {
        self.handles.stats.workers_done.load(Ordering::SeqCst) == self.workers
    }

    /// Waits for the workers to finish.
    pub fn join(self) -> Result<(), PipelineError> {
        let mut first_error = None;
        for result in self.guards.join() {
            if let Err(e) = result.map_err(PipelineError::Worker).and_then(|r| r) {
                first_error.get_or_insert(e);
            }
        }
        let shared = match self.shared.get() {
            Some(Ok(shared)) => shared.clone(),
            Some(Err(e)) => return Err(PipelineError::Start(e.clone())),
            None => return Err(first_error.unwrap_or(PipelineError::Start("no worker ran".into()))),
        };
        if let Some(clash) = shared
            .clash
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            return Err(PipelineError::Symbols(clash));
        }
        let group_offsets = shared
            .group_offsets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(committer) = group_offsets {
            committer.finish(Duration::from_secs(10));
        }
        let (lake_error, committed) = {
            let mut status = shared.lake_status.lock().unwrap_or_else(|e| e.into_inner());
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
        let last = shared.stats.epoch.load(Ordering::SeqCst).saturating_sub(1);
        // The last commit ends at a boundary, which may lie a few epochs past the last one
        // read: nothing happened in those, and the views are as of that commit, as the lake is.
        let last = last.max(committed.unwrap_or(0));
        if !shared.config.leads() {
            return Ok(());
        }
        shared
            .store
            .close_through(last.max(shared.base.saturating_sub(1)));
        if shared.config.lake.is_some() {
            shared.store.write_snapshot(true);
        }
        shared.store.finish_snapshots();
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

/// In a cluster, a process whose connection to another one breaks (the other died), or one of
/// whose threads fails, cannot go on: timely's exchange does not survive a lost peer, and the
/// workers would wait for it for ever. The process ends at once with one line, as if killed; the
/// lake is safe from that, and a restart resumes from its last commit.
fn end_on_a_lost_peer() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let what = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| info.payload().downcast_ref::<&str>().copied())
                .unwrap_or("a thread failed");
            let what = what.lines().next().unwrap_or_default();
            let thread = std::thread::current();
            let name = thread.name().unwrap_or("a thread");
            let why = if name.starts_with("timely:send") || name.starts_with("timely:recv") {
                "the connection to another process of the cluster broke"
            } else {
                "a thread failed"
            };
            // A lost peer breaks its send and its receive thread at once: the first to get
            // here says so and ends the process; the others wait for it to.
            static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
            if SAID.swap(true, std::sync::atomic::Ordering::SeqCst) {
                loop {
                    std::thread::park();
                }
            }
            eprintln!("lambdaflow: {why} ({name}: {what}); this process stops");
            std::process::exit(1);
        }));
    });
}

impl Shared {
    /// When the workers began ([`Shared::started`]).
    fn clock(&self) -> Instant {
        *self.started.get_or_init(Instant::now)
    }

    fn new(config: PipelineConfig, start: Start, handles: &Handles) -> Self {
        let base = match (&start.resume, &start.replay) {
            (Some(meta), _) => meta.epoch + 1,
            // A replay alone (`batch`): its views are as of the replayed epoch.
            (None, Some(plan)) if config.lake.is_none() => plan.epoch,
            _ => 0,
        };
        Shared {
            group_offsets: Mutex::new(start.group_offsets),
            resume: start.resume,
            replay: start.replay,
            base,
            layout: Arc::new(Layout::new(&config.schema)),
            lake_status: handles.lake_status.clone(),
            run_tag: crate::lake::writer::run_tag(),
            sql: Planned::of(
                &config.sql_views,
                &config.schema,
                !config.custom_views.is_empty(),
                &handles.symbols,
            ),
            config,
            symbols: handles.symbols.clone(),
            store: handles.store.clone(),
            stats: handles.stats.clone(),
            stop: handles.stop.clone(),
            record_epoch: AtomicU64::new(base),
            started: OnceLock::new(),
            clash: Mutex::new(None),
        }
    }
}

/// The start of the only process, or the first of a cluster: it prepares the lake (creating,
/// locking and repairing it), and holds the views' snapshots and the Kafka group's offsets.
fn lead(
    config: &mut PipelineConfig,
    handles: &Handles,
) -> Result<(Start, Option<std::fs::File>), PipelineError> {
    let peers = config.peers();
    let mut start = Start {
        resume: None,
        replay: None,
        group_offsets: None,
    };
    let mut lock = None;
    if let Some(lake) = config.lake.clone() {
        let layout = Layout::new(&config.schema);
        let prepared = crate::lake::ops::prepare(
            &lake,
            &layout,
            &config.id,
            config.source.resumes_per_worker().then_some(peers),
            &config.source.describe(),
        )?;
        resume_generator(config, prepared.last.as_ref());
        handles.store.set_snapshots(Snapshots {
            dir: crate::lake::state_dir(&lake.dir).join("views"),
            every: lake.commit_every,
            keep: 4,
        });
        if let Some(mut meta) = prepared.last {
            meta.positions = config.source.regroup(&meta.positions, peers)?;
            start.resume = Some(meta);
        }
        start.replay = Some(prepared.plan);
        lock = Some(prepared.lock);
    } else if let Some(spec) = &config.replay {
        start.replay = Some(crate::lake::ops::plan(spec)?.0);
    }
    start.group_offsets = match (&config.source, &config.lake) {
        (SourceSpec::Kafka(spec), Some(_)) => Some(
            GroupCommitter::start(spec, &spec.group_or(&config.id))
                .map_err(PipelineError::Source)?,
        ),
        _ => None,
    };
    if let (Some(committer), Some(meta)) = (&start.group_offsets, &start.resume) {
        // A run killed between a lake commit and the group's left the group behind: the
        // lake's offsets are the truth, and this run may read nothing new to commit again.
        committer.offer(&meta.positions);
    }
    Ok((start, lock))
}

/// The start of a cluster's other processes, once connected: the lake as the first process
/// prepared it.
fn follow(mut config: PipelineConfig, handles: &Handles) -> Result<Arc<Shared>, String> {
    let peers = config.peers();
    let mut start = Start {
        resume: None,
        replay: None,
        group_offsets: None,
    };
    if let Some(lake) = &config.lake {
        let process = config.cluster.as_ref().map_or(0, |c| c.process);
        let own = process * config.workers..(process + 1) * config.workers;
        let (last, plan) = crate::lake::ops::follow(
            lake,
            &config.id,
            config.source.resumes_per_worker().then_some(peers),
            &config.source.describe(),
            own,
        )
        .map_err(|e| format!("lake: {e}"))?;
        resume_generator(&mut config, last.as_ref());
        if let Some(mut meta) = last {
            meta.positions = config
                .source
                .regroup(&meta.positions, peers)
                .map_err(|e| e.to_string())?;
            start.resume = Some(meta);
        }
        start.replay = Some(plan);
    } else if let Some(spec) = &config.replay {
        start.replay = Some(
            crate::lake::ops::plan(spec)
                .map_err(|e| format!("lake: {e}"))?
                .0,
        );
    }
    Ok(Arc::new(Shared::new(config, start, handles)))
}

/// The generated stream is the lake's, when it has one: resume it, not a new one.
fn resume_generator(config: &mut PipelineConfig, last: Option<&CommitMeta>) {
    if let (Some(meta), SourceSpec::Generate(spec)) = (last, &mut config.source)
        && let Some((seed, start, bad)) = meta.generator
    {
        spec.seed = seed;
        spec.start_micros = start;
        spec.bad_fraction = bad;
    }
}
