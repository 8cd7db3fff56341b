//! `lambdaflow bench`: the whole pipeline (decode, every view, lake files and commits) over
//! events generated into memory beforehand, so that generating them is not measured.
//!
//! A run has four phases: prepare the input (JSON lines rendered by the generator into each
//! worker's chunks), measure the two limits the pipeline cannot beat on this machine with the
//! same number of threads (decode only: JSON to events; Parquet encode only: staged Arrow
//! batches to Parquet), run the pipeline into a fresh lake, and read what it wrote.
//!
//! Closed loop: every worker takes its records as fast as the pipeline accepts them. Open loop
//! (`rate`): records are offered on a schedule and the epoch latency under that load is what
//! counts; the report says if the pipeline fell behind the schedule.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::event::Schema;
use crate::lake::writer::{FileSettings, TableKind};
use crate::lake::{LakeConfig, table};
use crate::pipeline::{EpochPolicy, Pipeline, PipelineConfig, PipelineError};
use crate::source::memory::{MemorySpec, Prepared};
use crate::source::{Chunk, GeneratorSpec, SourceSpec};
use crate::views::custom::Registry;
use crate::views::sql::SqlView;

mod limits;
mod report;

use limits::{Measurement, limits, sample};

/// Records per prepared chunk (as many as a source hands over per poll).
const CHUNK_RECORDS: usize = 4096;
/// The limits are measured on at most this many events, each of them twice.
const LIMIT_SAMPLE: u64 = 2_000_000;

/// What to run.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// Timely worker threads (and threads for the limits).
    pub workers: usize,
    /// Events to prepare and run.
    pub events: u64,
    /// Epoch length.
    pub epoch: Duration,
    /// Open loop: events offered per second; `None`: closed loop.
    pub rate: Option<f64>,
    /// The generator (seed, malformed fraction).
    pub generator: GeneratorSpec,
    /// The SQL views to maintain, over `schema` (by default, the built-in views).
    pub sql_views: Vec<SqlView>,
    /// The Rust views to maintain.
    pub custom_views: Registry,
    /// The events' schema (the generator writes e-commerce events; a schema that reads them
    /// differently sees them differently).
    pub schema: Schema,
    /// Where to write the lake; `None`: a temporary directory, removed afterwards.
    pub data_dir: Option<PathBuf>,
    /// A lake commit every this many epochs.
    pub commit_every: u64,
    /// Compaction while running ([`LakeConfig::compact_files`]).
    pub compact_files: usize,
    /// Whether to measure the decode and Parquet limits (not in a cluster).
    pub limits: bool,
    /// The cluster this process is one of, if it is ([`crate::pipeline::Cluster`]): every
    /// process prepares the same input, reads its workers' share, and the first reports.
    pub cluster: Option<crate::pipeline::Cluster>,
}

/// What a phase has done so far, for a progress bar.
#[derive(Clone, Copy, Debug)]
pub struct Progress<'a> {
    /// The phase.
    pub phase: &'a str,
    /// Units done.
    pub done: u64,
    /// Units in all.
    pub total: u64,
}

/// Latency percentiles in milliseconds.
#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    /// How many were measured.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Maximum.
    pub max_ms: f64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Latency {
        let ms = |micros: u64| micros as f64 / 1000.0;
        Latency {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.5)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

/// One limit: a part of the pipeline alone, on the same input and threads, measured twice on
/// the same events: just before the pipeline runs and just after. A shared machine's speed
/// drifts from one second to the next; the pipeline is compared with both measurements
/// together, which bracket it in time, not with one taken seconds before it.
#[derive(Clone, Debug, Serialize)]
pub struct Limit {
    /// Events each measurement ran on.
    pub events: u64,
    /// Seconds of both measurements (wall time, all threads in parallel).
    pub seconds: f64,
    /// Events per second over both measurements.
    pub events_per_sec: f64,
    /// Events per second of the measurement before the pipeline.
    pub before_per_sec: f64,
    /// Events per second of the measurement after the pipeline.
    pub after_per_sec: f64,
    /// The pipeline's events per second as a fraction of `events_per_sec`.
    pub pipeline_fraction: f64,
}

impl Limit {
    /// The limit of two measurements, before and after the pipeline, for a pipeline that ran at
    /// `pipeline` events per second.
    fn of(before: Measurement, after: Measurement, pipeline: f64) -> Limit {
        let rate = |(events, seconds): Measurement| events as f64 / seconds.max(1e-9);
        let seconds = before.1 + after.1;
        let events_per_sec = (before.0 + after.0) as f64 / seconds.max(1e-9);
        Limit {
            events: before.0,
            seconds,
            events_per_sec,
            before_per_sec: rate(before),
            after_per_sec: rate(after),
            pipeline_fraction: pipeline / events_per_sec,
        }
    }
}

/// The open loop's schedule and how well the pipeline kept to it.
#[derive(Clone, Debug, Serialize)]
pub struct OpenLoop {
    /// Events offered per second.
    pub offered_per_sec: f64,
    /// The most events a worker ever had waiting past their offer time (more than 100 ms' worth
    /// counts); 0 means it kept up.
    pub max_backlog_events: u64,
}

/// The machine a report was made on.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    /// CPU model.
    pub cpu: String,
    /// CPUs available to this process.
    pub cpus: usize,
    /// Memory in bytes.
    pub memory_bytes: u64,
    /// Operating system.
    pub os: String,
    /// lambdaflow's version.
    pub lambdaflow: String,
}

/// Everything a run measured.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// `closed` or `open`.
    pub mode: &'static str,
    /// Worker threads, of all processes.
    pub workers: usize,
    /// Processes.
    pub processes: usize,
    /// Epoch length in milliseconds.
    pub epoch_ms: f64,
    /// Records run through the pipeline (events and malformed records).
    pub records: u64,
    /// Of which decoded into events.
    pub events: u64,
    /// Of which dead letters.
    pub dead_letters: u64,
    /// Bytes of JSON in.
    pub input_bytes: u64,
    /// Seconds from starting the pipeline to its last commit and every view being final.
    pub seconds: f64,
    /// Records per second.
    pub events_per_sec: f64,
    /// CPU time the process spent during the pipeline run (every thread: workers, their lake
    /// file threads, the commit thread), divided by its wall time: the cores it kept busy.
    pub cores_busy: f64,
    /// Records per second per worker.
    pub events_per_sec_per_worker: f64,
    /// Megabytes (10^6) of JSON per second.
    pub mb_per_sec: f64,
    /// From a worker closing an epoch to every view having passed it.
    pub epoch_latency: Latency,
    /// How long each lake commit took.
    pub commit_latency: Option<Latency>,
    /// Peak resident memory of the process, minus the prepared input it still held at the time
    /// and the limits' copy of their sample.
    pub peak_rss_bytes: u64,
    /// Peak resident memory of the process including the prepared input.
    pub process_peak_rss_bytes: u64,
    /// Bytes of the two Delta tables (data files and logs).
    pub lake_bytes: u64,
    /// JSON input bytes per lake byte.
    pub compression_ratio: f64,
    /// Decode only, on the same threads.
    pub decode_limit: Option<Limit>,
    /// Parquet encoding only, on the same threads.
    pub parquet_limit: Option<Limit>,
    /// The open loop's schedule.
    pub open_loop: Option<OpenLoop>,
    /// Seconds spent preparing the input (not part of any figure above).
    pub prepare_seconds: f64,
    /// Where this ran.
    pub machine: Machine,
}

/// A benchmark that could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The pipeline failed.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// The data directory could not be made or read.
    #[error("{path}: {source}")]
    Io {
        /// The directory.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A measurement failed.
    #[error("{0}")]
    Measure(String),
}

/// Runs the benchmark, calling `progress` now and then.
pub fn run(
    config: &BenchConfig,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<BenchReport, BenchError> {
    let processes = config.cluster.as_ref().map_or(1, |c| c.addresses.len());
    let workers = config.workers.max(1) * processes;
    let started = Instant::now();
    let mut chunks = prepare(&config.generator, config.events, workers, progress);
    let prepare_seconds = started.elapsed().as_secs_f64();
    let input_bytes: u64 = chunks.iter().flatten().map(|c| c.byte_len() as u64).sum();
    keep_own_share(config, &mut chunks);

    let schema = config.schema.clone();
    // The limits' own copy of their sample, so that they can run again after the pipeline has
    // consumed the prepared input.
    let limit_input = (config.limits && config.cluster.is_none()).then(|| sample(&chunks));
    let limit_bytes: u64 = limit_input
        .iter()
        .flatten()
        .flatten()
        .map(|c| c.heap_bytes() as u64)
        .sum();
    let before = match &limit_input {
        Some(input) => Some(limits(input, &schema, "before", progress)?),
        None => None,
    };

    let prepared = Arc::new(Prepared::new(chunks));
    let (run, lake_bytes) = into_fresh_lake(config, &prepared, limit_bytes, progress)?;
    let after = match &limit_input {
        Some(input) => Some(limits(input, &schema, "after", progress)?),
        None => None,
    };
    drop(limit_input);

    let events_per_sec = run.records as f64 / run.seconds;
    let (decode_limit, parquet_limit) = match before.zip(after) {
        Some(((decode, parquet), (decode_after, parquet_after))) => (
            Some(Limit::of(decode, decode_after, events_per_sec)),
            Some(Limit::of(parquet, parquet_after, events_per_sec)),
        ),
        None => (None, None),
    };
    Ok(BenchReport {
        mode: if config.rate.is_some() {
            "open"
        } else {
            "closed"
        },
        workers,
        processes,
        epoch_ms: config.epoch.as_secs_f64() * 1000.0,
        records: run.records,
        events: run.events,
        dead_letters: run.dead_letters,
        input_bytes,
        seconds: run.seconds,
        events_per_sec,
        events_per_sec_per_worker: events_per_sec / workers as f64,
        mb_per_sec: input_bytes as f64 / 1e6 / run.seconds,
        epoch_latency: run.epoch_latency,
        commit_latency: run.commit_latency,
        cores_busy: run.cpu_seconds / run.seconds.max(1e-9),
        peak_rss_bytes: run.peak_rss,
        process_peak_rss_bytes: run.process_peak_rss,
        lake_bytes,
        compression_ratio: input_bytes as f64 / lake_bytes.max(1) as f64,
        decode_limit,
        parquet_limit,
        open_loop: config.rate.map(|rate| OpenLoop {
            offered_per_sec: rate,
            max_backlog_events: prepared.max_behind(),
        }),
        prepare_seconds,
        machine: machine(),
    })
}

/// In a cluster, every process prepares the same input and keeps its own workers' share: a
/// worker that runs out takes chunks from another of its process, never of another process.
fn keep_own_share(config: &BenchConfig, chunks: &mut [Vec<Chunk>]) {
    if let Some(c) = &config.cluster {
        let own = config.workers.max(1);
        for (w, queue) in chunks.iter_mut().enumerate() {
            if w / own != c.process {
                queue.clear();
            }
        }
    }
}

/// Runs the pipeline over `prepared` into a fresh lake; returns the run and the lake's bytes.
fn into_fresh_lake(
    config: &BenchConfig,
    prepared: &Arc<Prepared>,
    limit_bytes: u64,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<(PipelineRun, u64), BenchError> {
    let (dir, temporary) = fresh_lake(config)?;
    let pipeline_config = pipeline_config(config, prepared, &dir);
    let result = run_pipeline(
        pipeline_config,
        prepared,
        limit_bytes,
        config.events,
        progress,
    );
    let lake_bytes = dir_bytes(&table::table_root(&dir, TableKind::Events))
        + dir_bytes(&table::table_root(&dir, TableKind::DeadLetters));
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok((result?, lake_bytes))
}

/// The benchmark's lake directory, which must be empty or absent, and whether it is a
/// temporary one (no `--data-dir`), to be removed after the run.
fn fresh_lake(config: &BenchConfig) -> Result<(std::path::PathBuf, bool), BenchError> {
    if let (Some(c), Some(dir)) = (&config.cluster, &config.data_dir)
        && c.process != 0
    {
        // The first process makes the lake; the others may find it made.
        return Ok((dir.clone(), false));
    }
    let (dir, temporary) = match &config.data_dir {
        Some(dir) => (dir.clone(), false),
        None => (
            std::env::temp_dir().join(format!("lambdaflow-bench-{}", std::process::id())),
            true,
        ),
    };
    if dir.exists() && std::fs::read_dir(&dir).map_or(true, |mut d| d.next().is_some()) {
        return Err(BenchError::Measure(format!(
            "{} is not empty: the benchmark writes a fresh lake",
            dir.display()
        )));
    }
    Ok((dir, temporary))
}

/// The pipeline the benchmark runs: the prepared input, `config`'s views, a lake in `dir`.
fn pipeline_config(
    config: &BenchConfig,
    prepared: &Arc<Prepared>,
    dir: &std::path::Path,
) -> PipelineConfig {
    PipelineConfig {
        id: "bench".into(),
        workers: config.workers.max(1),
        cluster: config.cluster.clone(),
        epoch: EpochPolicy::Interval(config.epoch),
        source: SourceSpec::Memory(MemorySpec {
            prepared: prepared.clone(),
            rate: config.rate,
        }),
        schema: config.schema.clone(),
        max_record_bytes: 1 << 20,
        sql_views: config.sql_views.clone(),
        custom_views: config.custom_views.clone(),
        until_exhausted: true,
        lake: Some(LakeConfig {
            dir: dir.to_path_buf(),
            commit_every: config.commit_every.max(1),
            files: FileSettings::default(),
            log_retention: None,
            compact_files: config.compact_files,
        }),
        replay: None,
    }
}

/// Renders `events` generated records into each worker's chunks: worker `w` gets sequence
/// numbers `w, w + workers, ...`, as the generator source would hand them out.
pub fn prepare(
    spec: &GeneratorSpec,
    events: u64,
    workers: usize,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Vec<Vec<Chunk>> {
    let workers = workers.max(1);
    progress(Progress {
        phase: "preparing input",
        done: 0,
        total: events,
    });
    let chunks = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                s.spawn(move || {
                    let mut out = Vec::new();
                    let mut chunk = new_chunk();
                    let mut seq = w as u64;
                    while seq < events {
                        chunk.begin_record(crate::event::Position::Generator { seq });
                        spec.render(seq, chunk.buffer());
                        chunk.end_record();
                        if chunk.len() == CHUNK_RECORDS {
                            out.push(std::mem::replace(&mut chunk, new_chunk()));
                        }
                        seq += workers as u64;
                    }
                    if !chunk.is_empty() {
                        out.push(chunk);
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    progress(Progress {
        phase: "preparing input",
        done: events,
        total: events,
    });
    chunks
}

fn new_chunk() -> Chunk {
    // Generated records are 200-260 bytes: room for a chunk's worth without reallocating.
    Chunk::with_capacity(CHUNK_RECORDS, CHUNK_RECORDS * 272)
}

struct PipelineRun {
    records: u64,
    events: u64,
    dead_letters: u64,
    seconds: f64,
    epoch_latency: Latency,
    commit_latency: Option<Latency>,
    peak_rss: u64,
    process_peak_rss: u64,
    cpu_seconds: f64,
}

fn run_pipeline(
    config: PipelineConfig,
    prepared: &Prepared,
    other_input: u64,
    total: u64,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<PipelineRun, BenchError> {
    let phase = "pipeline";
    progress(Progress {
        phase,
        done: 0,
        total,
    });
    let (mut peak_rss, mut process_peak_rss) = (0u64, 0u64);
    let sample = |peak: &mut u64, process_peak: &mut u64| {
        if let Some(rss) = resident_bytes() {
            *process_peak = (*process_peak).max(rss);
            let input = prepared.held_bytes() + other_input;
            *peak = (*peak).max(rss.saturating_sub(input));
        }
    };
    // Timed from when the workers run: not the lake's preparation, nor a cluster's connecting.
    let pipeline = Pipeline::start(config)?;
    let started = Instant::now();
    let cpu_before = cpu_seconds();
    let stats = pipeline.stats().clone();
    let lake = pipeline.lake_status().clone();
    let mut last_progress = Instant::now();
    while !pipeline.is_finished() {
        std::thread::sleep(Duration::from_millis(10));
        sample(&mut peak_rss, &mut process_peak_rss);
        if last_progress.elapsed() >= Duration::from_millis(200) {
            last_progress = Instant::now();
            progress(Progress {
                phase,
                done: stats.records_in.load(Ordering::Relaxed),
                total,
            });
        }
    }
    pipeline.join()?;
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = (cpu_seconds() - cpu_before).max(0.0);
    sample(&mut peak_rss, &mut process_peak_rss);
    progress(Progress {
        phase,
        done: total,
        total,
    });
    let epoch_latency = Latency::of(
        &stats
            .epoch_latency
            .lock()
            .unwrap_or_else(|e| e.into_inner()),
    );
    let commit_latency = lake
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .commit_latency
        .as_ref()
        .map(Latency::of);
    Ok(PipelineRun {
        records: stats.records_in.load(Ordering::Relaxed),
        events: stats.events.load(Ordering::Relaxed),
        dead_letters: stats.dead_letters.load(Ordering::Relaxed),
        seconds,
        epoch_latency,
        commit_latency,
        peak_rss,
        process_peak_rss,
        cpu_seconds,
    })
}

/// User and system CPU seconds of the process so far, every thread (Linux; 0 elsewhere). The
/// kernel counts them in clock ticks of 1/100 s (`USER_HZ`, 100 on every Linux ABI in use).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// The process's resident set in bytes (Linux), if known.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Bytes of every file under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or_else(|| "unknown".to_owned(), |(_, v)| v.trim().to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_bytes = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024);
    let os = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|r| format!("{} {}", std::env::consts::OS, r.trim()))
        .unwrap_or_else(|_| std::env::consts::OS.to_owned());
    Machine {
        cpu,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_bytes,
        os,
        lambdaflow: env!("CARGO_PKG_VERSION").to_owned(),
    }
}

/// `1234567.8` as `1,234,568`.
pub fn thousands(n: f64) -> String {
    let digits = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
