//! The `lambdaflow` command line.

use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

/// jemalloc rather than glibc's malloc: with glibc the resident size kept growing with the
/// number of lake commits (the Delta kernel reads the log on threads of its own, and glibc kept
/// what they freed in arenas of their own); jemalloc returns unused pages within seconds. See
/// docs/robustness.md, "Memory that follows live state".
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// `println!` that returns the error instead of panicking on it: when the reader of a pipe goes
/// away (`lambdaflow views | head -1`), the command ends quietly with exit code 0.
macro_rules! outln {
    ($($arg:tt)*) => { writeln!(std::io::stdout().lock(), $($arg)*) };
}

/// `print!` that returns the error instead of panicking on it, as [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => { write!(std::io::stdout().lock(), $($arg)*) };
}

use lambdaflow::config::{self, ConfigFile, Overrides};
use lambdaflow::event::money::format_cents;
use lambdaflow::lake::ops::{self, ReplaySpec};
use lambdaflow::lake::writer::TableKind;
use lambdaflow::pipeline::{EpochPolicy, Pipeline, PipelineConfig};
use lambdaflow::serve::{Listener, Served, Server};
use lambdaflow::source::SourceSpec;
use lambdaflow::source::kafka::{KafkaSpec, Publisher};
use lambdaflow::views::{Datum, VIEWS, ViewId, ViewStore};

/// A whole Lambda architecture as one timely dataflow: events in, live views out.
#[derive(Parser)]
#[command(name = "lambdaflow", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a pipeline. With no arguments: the demo, generated events at 200/s until Ctrl+C.
    Run(Box<RunArgs>),
    /// Write generated events as JSON lines (the seeds' publisher).
    Generate(GenerateArgs),
    /// Print the default pipeline config (a starting point for `run --config`).
    Config,
    /// List the built-in views and what they mean.
    Views,
    /// Recompute the views from the lake alone, with the same dataflow (the batch job).
    Batch(BatchArgs),
    /// Recompute the views from the lake and compare them with the live views a run recorded
    /// as of a committed epoch; exit 1 if they differ.
    Verify(VerifyArgs),
    /// Look after the lake: info, compact, vacuum.
    #[command(subcommand)]
    Lake(LakeCommand),
    /// Kafka partitions: watermarks, consumer-group offsets and the lake's offsets, with lag.
    Kafka(KafkaArgs),
    /// Measure the whole pipeline (decode, views, lake) on events prepared in memory, and the
    /// decode and Parquet limits it runs against.
    Bench(BenchArgs),
}

#[derive(Args)]
struct BenchArgs {
    /// Timely worker threads (default: one per CPU).
    #[arg(long, short = 'w', value_name = "N")]
    workers: Option<usize>,
    /// Events to generate into memory and run.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    events: u64,
    /// Epoch length, such as `100ms` or `10ms`.
    #[arg(long, value_name = "DURATION", default_value = "100ms")]
    epoch: String,
    /// Open loop: offer this many events per second in all and measure latency under that load
    /// (default: closed loop, as fast as it goes).
    #[arg(long, value_name = "EVENTS_PER_SEC")]
    rate: Option<f64>,
    /// A lake commit at least this often.
    #[arg(long, value_name = "DURATION", default_value = "1s")]
    commit_interval: String,
    /// Compact a partition while running once it holds this many small files (0: never).
    #[arg(long, value_name = "N", default_value_t = lambdaflow::lake::COMPACT_FILES)]
    compact_files: usize,
    /// Fraction of records made malformed (they become dead letters).
    #[arg(long, value_name = "FRACTION", default_value_t = 0.001)]
    bad_fraction: f64,
    /// Generator seed.
    #[arg(long, value_name = "N", default_value_t = 42)]
    seed: u64,
    /// Views to maintain, comma-separated (default: all).
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    views: Option<Vec<String>>,
    /// Keep the lake in this (new or empty) directory instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Skip measuring the decode-only and Parquet-only limits.
    #[arg(long)]
    no_limits: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct KafkaArgs {
    /// The source, as given to `run`: `kafka://HOST:PORT/TOPIC[,TOPIC]`.
    #[arg(long, value_name = "URL")]
    source: String,
    /// The consumer group (default: the one `run` commits to, the pipeline id).
    #[arg(long, value_name = "GROUP")]
    group: Option<String>,
    /// The pipeline id, for the default group.
    #[arg(long, value_name = "ID", default_value = "lambdaflow")]
    id: String,
    /// The lake whose offsets to show beside the group's.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// A librdkafka property, such as `-X security.protocol=SASL_SSL` (repeatable).
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = key_value)]
    kafka: Vec<(String, String)>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct DataDirArg {
    /// The data directory (the lake).
    #[arg(long, value_name = "DIR", default_value = config::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
}

#[derive(Args)]
struct BatchArgs {
    #[command(flatten)]
    dir: DataDirArg,
    /// Pipeline config file (TOML), for the views and workers.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Timely worker threads.
    #[arg(long, short = 'w', value_name = "N")]
    workers: Option<usize>,
    /// Views to compute, comma-separated (default: all).
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    views: Option<Vec<String>>,
    /// Only events of this UTC day or later (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    from: Option<String>,
    /// Only events of this UTC day or earlier (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    to: Option<String>,
    /// Read the table as of this version (time travel).
    #[arg(long, value_name = "N", conflicts_with = "as_of_epoch")]
    as_of_version: Option<u64>,
    /// Read the rows committed up to this epoch (time travel).
    #[arg(long, value_name = "EPOCH")]
    as_of_epoch: Option<u64>,
    /// Write the views to this file as JSON (default: standard output).
    #[arg(long, value_name = "FILE")]
    views_out: Option<PathBuf>,
}

#[derive(Args)]
struct VerifyArgs {
    #[command(flatten)]
    dir: DataDirArg,
    /// Timely worker threads for the recomputation.
    #[arg(long, short = 'w', value_name = "N", default_value_t = 1)]
    workers: usize,
}

#[derive(Subcommand)]
enum LakeCommand {
    /// Versions, epochs, files, rows, bytes and the compression ratio against the JSON input.
    Info {
        #[command(flatten)]
        dir: DataDirArg,
        /// As of this version of the events table (time travel).
        #[arg(long, value_name = "N", conflicts_with = "as_of_epoch")]
        as_of_version: Option<u64>,
        /// As of the last commit at or before this epoch (time travel).
        #[arg(long, value_name = "EPOCH")]
        as_of_epoch: Option<u64>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The table's data files as of a version, one absolute path per line: what a plain Parquet
    /// reader should read (a glob also takes files compaction replaced, until `lake vacuum`).
    Files {
        #[command(flatten)]
        dir: DataDirArg,
        /// The dead-letter table rather than the events table.
        #[arg(long)]
        dead_letters: bool,
        /// As of this version of the table (time travel).
        #[arg(long, value_name = "N", conflicts_with = "as_of_epoch")]
        as_of_version: Option<u64>,
        /// As of the last commit at or before this epoch (events table only).
        #[arg(long, value_name = "EPOCH", conflicts_with = "dead_letters")]
        as_of_epoch: Option<u64>,
    },
    /// Merge small files into large ones, as one commit that changes no content.
    Compact {
        #[command(flatten)]
        dir: DataDirArg,
        /// Files smaller than this are merged (bytes).
        #[arg(long, value_name = "BYTES", default_value_t = 128 << 20)]
        target_size: u64,
    },
    /// Delete files no commit references, and files compacted away longer ago than --retain.
    Vacuum {
        #[command(flatten)]
        dir: DataDirArg,
        /// Keep files removed from the table for this long (time travel needs them).
        #[arg(long, value_name = "DURATION", default_value = "7days")]
        retain: String,
        /// Only list what would be deleted.
        #[arg(long)]
        dry_run: bool,
        /// Vacuum with a retention under the table's `delta.deletedFileRetentionDuration` (7
        /// days by default), which makes the versions in between unreadable.
        #[arg(long)]
        force: bool,
    },
    /// Move an events table that no reader can read (a commit an earlier build let a poisonous
    /// record into) back to its newest readable version, as a new commit; the next run reads the
    /// removed versions' events again from the source.
    Repair {
        #[command(flatten)]
        dir: DataDirArg,
        /// Only say what would be done.
        #[arg(long)]
        dry_run: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct RunArgs {
    /// Pipeline config file (TOML); flags given here win over it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where events come from: `generate`, `stdin`, `file:PATH[,PATH...]` (a directory means its
    /// files) or `kafka://HOST:PORT[,HOST:PORT]/TOPIC[,TOPIC][?start=earliest|latest|committed|TIME&group=G]`.
    #[arg(long, value_name = "SOURCE")]
    source: Option<String>,
    /// A Kafka option or librdkafka property, such as `-X security.protocol=SASL_SSL` (repeatable).
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = key_value)]
    kafka: Vec<(String, String)>,
    /// Timely worker threads.
    #[arg(long, short = 'w', value_name = "N")]
    workers: Option<usize>,
    /// Epoch length in processing time, such as `100ms` or `1s`.
    #[arg(long, value_name = "DURATION", conflicts_with = "epoch_records")]
    epoch: Option<String>,
    /// Instead of a time interval: a new epoch every N records per worker (or when input pauses).
    #[arg(long, value_name = "N")]
    epoch_records: Option<u64>,
    /// Records larger than this become `too_large` dead letters.
    #[arg(long, value_name = "BYTES")]
    max_record_bytes: Option<usize>,
    /// Views to maintain, comma-separated (default: all; see `lambdaflow views`).
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    views: Option<Vec<String>>,
    /// Stop once every source is exhausted and the last epoch has closed (Kafka: once the end
    /// offsets seen at the start are read).
    #[arg(long)]
    until_exhausted: bool,
    /// Write the final views to this file as JSON.
    #[arg(long, value_name = "FILE")]
    views_out: Option<PathBuf>,
    /// Print no live summary.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// The data directory: the lake (events and dead-letter Delta tables) and its state.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Write no lake: views only.
    #[arg(long, conflicts_with = "data_dir")]
    no_lake: bool,
    /// A lake commit at least this often, such as `1s` (with processing-time epochs).
    #[arg(long, value_name = "DURATION", conflicts_with = "commit_epochs")]
    commit_interval: Option<String>,
    /// A lake commit every N epochs.
    #[arg(long, value_name = "N")]
    commit_epochs: Option<u64>,
    /// Serve the views, status, metrics and dashboard here (default 127.0.0.1:8080, or a free
    /// port if that one is taken); `0.0.0.0:PORT` serves other machines too.
    #[arg(long, value_name = "ADDR", conflicts_with = "no_serve")]
    listen: Option<std::net::SocketAddr>,
    /// Every endpoint but the dashboard page wants `Authorization: Bearer TOKEN` (also from
    /// the LAMBDAFLOW_TOKEN environment variable).
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
    /// Serve nothing over HTTP.
    #[arg(long)]
    no_serve: bool,
    #[command(flatten)]
    generator: GeneratorArgs,
}

/// The port `run` serves on unless told otherwise.
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Options of the built-in generator.
#[derive(Args)]
struct GeneratorArgs {
    /// Generated events per second (0: as fast as possible).
    #[arg(long, value_name = "EVENTS_PER_SEC")]
    rate: Option<f64>,
    /// How many events to generate (default: endless for `run`).
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Generator seed: same seed, same events.
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Fraction of generated records made malformed on purpose, from 0 to 1.
    #[arg(long, value_name = "FRACTION")]
    bad_fraction: Option<f64>,
    /// Timestamp of the first generated event: `now` or RFC 3339.
    #[arg(long, value_name = "TIME")]
    start: Option<String>,
}

#[derive(Args)]
struct GenerateArgs {
    /// How many events (a batch; the default is 1000).
    #[arg(long, value_name = "N", conflicts_with_all = ["continuous", "single"])]
    count: Option<u64>,
    /// Keep publishing until Ctrl+C, at `--rate` (default 10 events per second).
    #[arg(long, conflicts_with = "single")]
    continuous: bool,
    /// One event: a test message, also printed.
    #[arg(long)]
    single: bool,
    /// Events per second (default: as fast as possible).
    #[arg(long, value_name = "EVENTS_PER_SEC")]
    rate: Option<f64>,
    /// Same seed, same events.
    #[arg(long, value_name = "N", default_value_t = 42)]
    seed: u64,
    /// Fraction of records made malformed on purpose, from 0 to 1.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.0)]
    bad_fraction: f64,
    /// Timestamp of the first event: `now` or RFC 3339.
    #[arg(long, value_name = "TIME", default_value = "2025-01-01T00:00:00Z")]
    start: String,
    /// Write to this file instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE", conflicts_with = "to")]
    output: Option<PathBuf>,
    /// Publish to Kafka instead, keyed by user id: `kafka://HOST:PORT[,HOST:PORT]/TOPIC`.
    #[arg(long, value_name = "URL")]
    to: Option<String>,
    /// A librdkafka property for the publisher, such as `-X security.protocol=SASL_SSL`.
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = key_value, requires = "to")]
    kafka: Vec<(String, String)>,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors.
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LAMBDAFLOW_LOG")
                .unwrap_or_else(|_| "lambdaflow=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let result = match cli.command {
        Command::Run(args) => run(*args),
        Command::Generate(args) => generate(args),
        Command::Kafka(args) => kafka_offsets(args),
        Command::Bench(args) => bench(args),
        Command::Config => out!("{}", config::DEFAULT_CONFIG).map_err(Into::into),
        Command::Views => VIEWS
            .iter()
            .try_for_each(|v| outln!("{:<24} {}", v.name, v.description))
            .map_err(Into::into),
        Command::Batch(args) => batch(args),
        Command::Verify(args) => verify(args),
        Command::Lake(command) => lake(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lambdaflow: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, on one line.
fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    let line = parts.join(": ").replace('\n', " ");
    // A value quoted in an error can be anything a producer sent.
    match line.char_indices().nth(MAX_ERROR_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

/// The longest error line printed, in characters.
const MAX_ERROR_CHARS: usize = 1_000;

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn run(args: RunArgs) -> Result<()> {
    let file = match &args.config {
        Some(path) => ConfigFile::load(path)?,
        None => ConfigFile::default(),
    };
    let flags = Overrides {
        source: args.source,
        workers: args.workers,
        epoch: args.epoch,
        epoch_records: args.epoch_records,
        max_record_bytes: args.max_record_bytes,
        views: args.views,
        rate: args.generator.rate,
        count: args.generator.count,
        seed: args.generator.seed,
        bad_fraction: args.generator.bad_fraction,
        start: args.generator.start,
        until_exhausted: args.until_exhausted,
        data_dir: args.data_dir,
        no_lake: args.no_lake,
        commit_interval: args.commit_interval,
        commit_epochs: args.commit_epochs,
        kafka: args.kafka,
    };
    let text = file.text.clone();
    let config = config::resolve(file, flags)?;
    if let Some(lake) = &config.lake {
        record_config(&lake.dir, text.as_deref())?;
    }
    if let Some(path) = &args.views_out {
        // Fail now, not after the run, if the output cannot be written.
        std::fs::File::create(path)
            .with_context(|| format!("cannot write views to {}", path.display()))?;
    }
    let mut summary = !args.quiet;
    let listener = if args.no_serve {
        None
    } else if let Some(addr) = args.listen {
        Some(Listener::bind(addr).map_err(anyhow::Error::msg)?)
    } else {
        let default = DEFAULT_LISTEN.parse().expect("a valid address");
        match Listener::bind(default) {
            Ok(l) => Some(l),
            // Another run has it: any free port, said in the banner.
            Err(_) => Some(
                Listener::bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
                    .map_err(anyhow::Error::msg)?,
            ),
        }
    };
    let token = args
        .token
        .or_else(|| std::env::var("LAMBDAFLOW_TOKEN").ok())
        .filter(|t| !t.is_empty());
    if summary {
        outln!("{}", banner(&config))?;
        if let Some(l) = &listener {
            outln!(
                "dashboard: http://{}/ (API: /api/views, /api/status, /metrics{})",
                l.addr(),
                if token.is_some() {
                    "; bearer token required"
                } else {
                    ""
                }
            )?;
        }
    }
    let (workers, source, has_lake) = (
        config.workers,
        source_label(&config.source),
        config.lake.is_some(),
    );
    let pipeline = Pipeline::start(config)?;
    let server = match listener {
        Some(l) => {
            let served = Served {
                store: pipeline.views().clone(),
                stats: pipeline.stats().clone(),
                lake: has_lake.then(|| pipeline.lake_status().clone()),
                workers,
                source,
            };
            Some(Server::start(l, token, served).map_err(anyhow::Error::msg)?)
        }
        None => None,
    };
    if summary && let Some(meta) = pipeline.resumed() {
        outln!(
            "resuming the lake after epoch {}: its committed rows are replayed into the views, \
             then the source continues where it stood",
            meta.epoch
        )?;
    }
    let stop = pipeline.stop_flag();
    let signalled = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second Ctrl+C exits at once.
        signal_hook::flag::register_conditional_shutdown(signal, 130, signalled.clone())?;
        signal_hook::flag::register(signal, signalled.clone())?;
        signal_hook::flag::register(signal, stop.clone())?;
    }
    let mut last = (Instant::now(), 0u64);
    let mut next_print = Instant::now() + Duration::from_secs(1);
    while !pipeline.is_finished() {
        std::thread::sleep(Duration::from_millis(50));
        if summary && Instant::now() >= next_print {
            next_print += Duration::from_secs(1);
            if outln!("{}", live_line(&pipeline, &mut last)).is_err() {
                // Nobody reads the summary any more (`run | head`): stop as on Ctrl+C.
                summary = false;
                stop.store(true, Ordering::SeqCst);
            }
        }
    }
    let store = pipeline.views().clone();
    let stats = pipeline.stats().clone();
    let joined = pipeline.join();
    if let Some(server) = server {
        server.stop();
    }
    joined?;
    if summary {
        let _ = outln!("{}", live_line_final(&store, &stats));
    }
    if let Some(path) = &args.views_out {
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot write views to {}", path.display()))?;
        let mut out = BufWriter::new(file);
        serde_json::to_writer_pretty(&mut out, &store.to_json())?;
        writeln!(out)?;
        out.flush()
            .with_context(|| format!("cannot write views to {}", path.display()))?;
    }
    Ok(())
}

fn source_label(source: &SourceSpec) -> String {
    match source {
        SourceSpec::Generate(g) => match g.rate {
            Some(r) => format!("generated events at {r}/s"),
            None => "generated events as fast as possible".to_owned(),
        },
        SourceSpec::Files(f) if f.len() == 1 => format!("file {}", f[0].display()),
        SourceSpec::Files(f) => format!("{} files", f.len()),
        SourceSpec::Stdin => "standard input".to_owned(),
        SourceSpec::Kafka(k) => k.display(),
        SourceSpec::Memory(_) => "records prepared in memory".to_owned(),
    }
}

fn banner(config: &PipelineConfig) -> String {
    let source = source_label(&config.source);
    let epoch = match config.epoch {
        EpochPolicy::Interval(d) => format!("{}ms epochs", d.as_millis()),
        EpochPolicy::Records(n) => format!("epochs of {n} records"),
    };
    let stop = if config.until_exhausted {
        "until the input ends"
    } else {
        "Ctrl+C to stop"
    };
    format!(
        "lambdaflow: {source}, {} worker(s), {epoch}, {} views; {stop}",
        config.workers,
        config.views.len()
    )
}

/// Total of a count view as of its epoch, and its top entries.
fn counts(store: &ViewStore, view: ViewId) -> (i64, Vec<(String, i64)>) {
    store.read(|state| {
        let mut rows: Vec<(String, i64)> = state.tables[view as usize]
            .iter()
            .map(|(k, v)| {
                let key = k
                    .first()
                    .map(|d| d.to_json(store.symbols()))
                    .unwrap_or_default();
                let n = match v.first() {
                    Some(Datum::Int(n)) => *n,
                    _ => 0,
                };
                (key.as_str().unwrap_or("null").to_owned(), n)
            })
            .collect();
        rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        (rows.iter().map(|r| r.1).sum(), rows)
    })
}

fn revenue(store: &ViewStore) -> (i64, i64) {
    store.read(|state| {
        state.tables[ViewId::RevenueByCountry as usize]
            .values()
            .fold((0, 0), |(r, o), v| match v.as_slice() {
                [Datum::Money(c), Datum::Int(n)] => (r + c, o + n),
                _ => (r, o),
            })
    })
}

fn top_product(store: &ViewStore) -> Option<String> {
    store.read(|state| {
        state.tables[ViewId::TopProducts as usize]
            .iter()
            .find(|(_, v)| v.first() == Some(&Datum::Int(1)))
            .and_then(|(k, _)| {
                k.first()
                    .map(|d| d.to_json(store.symbols()).as_str().unwrap_or("").to_owned())
            })
    })
}

fn live_line(pipeline: &Pipeline, last: &mut (Instant, u64)) -> String {
    let stats = pipeline.stats();
    let store = pipeline.views();
    let records = stats.records_in.load(Ordering::Relaxed);
    let now = Instant::now();
    let rate = (records - last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(1e-3);
    *last = (now, records);
    let p99 = stats
        .epoch_latency
        .lock()
        .map(|h| h.value_at_quantile(0.99))
        .unwrap_or(0);
    let (events, by_type) = counts(store, ViewId::EventsByType);
    let (dead, _) = counts(store, ViewId::DeadLettersByReason);
    let (rev, orders) = revenue(store);
    let types: Vec<String> = by_type
        .iter()
        .take(5)
        .map(|(t, n)| format!("{t} {n}"))
        .collect();
    let as_of = store
        .read(|s| s.as_of)
        .map_or("-".to_owned(), |e| e.to_string());
    let mut line = format!(
        "{:>5.0}s  epoch {as_of:<6} events {events:<9} {rate:>8.0}/s  dead {dead:<5} p99 {:.1}ms | {} | revenue {} ({orders} orders)",
        stats.started.elapsed().as_secs_f64(),
        p99 as f64 / 1000.0,
        types.join(" "),
        format_cents(rev),
    );
    if let Some(top) = top_product(store) {
        line.push_str(&format!(" | top {top}"));
    }
    let committed = pipeline
        .lake_status()
        .lock()
        .map(|s| s.committed)
        .unwrap_or(None);
    if let Some((epoch, version)) = committed {
        line.push_str(&format!(" | lake v{version} epoch {epoch}"));
    }
    let lag = stats.lag.lock().map(|l| l.clone()).unwrap_or_default();
    if !lag.is_empty() {
        let total: i64 = lag.values().map(|l| l.lag()).sum();
        line.push_str(&format!(" | kafka lag {total}"));
    }
    if !std::io::stdout().is_terminal() {
        line = line.split_whitespace().collect::<Vec<_>>().join(" ");
    }
    line
}

fn live_line_final(store: &ViewStore, stats: &lambdaflow::pipeline::Stats) -> String {
    let (events, _) = counts(store, ViewId::EventsByType);
    let (dead, _) = counts(store, ViewId::DeadLettersByReason);
    let as_of = store
        .read(|s| s.as_of)
        .map_or("-".to_owned(), |e| e.to_string());
    let mut line = format!(
        "done: {} records read in {:.1}s, {events} events and {dead} dead letters in the views as of epoch {as_of}",
        stats.records_in.load(Ordering::Relaxed),
        stats.started.elapsed().as_secs_f64()
    );
    let lag = stats.lag.lock().map(|l| l.clone()).unwrap_or_default();
    if !lag.is_empty() {
        let parts: Vec<String> = lag
            .iter()
            .map(|(p, l)| format!("{p} {}", l.lag()))
            .collect();
        line.push_str(&format!(
            "\nkafka lag by partition (last asked): {}",
            parts.join(", ")
        ));
    }
    line
}

fn bench(args: BenchArgs) -> Result<()> {
    let duration = |what: &str, text: &str| {
        humantime::parse_duration(text)
            .ok()
            .filter(|d| !d.is_zero())
            .with_context(|| format!("{what} `{text}` is not a duration such as 100ms or 1s"))
    };
    let epoch = duration("epoch", &args.epoch)?;
    let commit = duration("commit interval", &args.commit_interval)?;
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    anyhow::ensure!(
        (1..=256).contains(&workers),
        "workers must be between 1 and 256, not {workers}"
    );
    anyhow::ensure!(args.events > 0, "events must be at least 1");
    if let Some(rate) = args.rate {
        anyhow::ensure!(
            rate.is_finite() && rate > 0.0,
            "rate must be a positive number of events per second, not {rate}"
        );
    }
    let generator = config::generator_spec(
        args.seed,
        0.0,
        None,
        args.bad_fraction,
        "2025-01-01T00:00:00Z",
    )?;
    let views = match args.views {
        Some(names) => config::parse_views(names, &[])?,
        None => ViewId::all(),
    };
    let bench = lambdaflow::bench::BenchConfig {
        workers,
        events: args.events,
        epoch,
        rate: args.rate,
        generator,
        views,
        data_dir: args.data_dir,
        commit_every: (commit.as_nanos() / epoch.as_nanos()).max(1) as u64,
        compact_files: args.compact_files,
        limits: !args.no_limits,
    };
    let mut bar = ProgressBar::new(std::io::stderr().is_terminal());
    let report = lambdaflow::bench::run(&bench, &mut |p| bar.show(p))?;
    bar.finish();
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        out!("{}", report.table())?;
    }
    Ok(())
}

/// A one-line progress bar on a terminal; nothing otherwise.
struct ProgressBar {
    on: bool,
    phase: String,
    drawn: Option<Instant>,
}

impl ProgressBar {
    fn new(on: bool) -> Self {
        ProgressBar {
            on,
            phase: String::new(),
            drawn: None,
        }
    }

    fn show(&mut self, p: lambdaflow::bench::Progress<'_>) {
        if !self.on {
            return;
        }
        if p.phase != self.phase {
            if !self.phase.is_empty() {
                eprintln!();
            }
            self.phase = p.phase.to_owned();
            self.drawn = Some(Instant::now());
        }
        let fraction = p.done as f64 / p.total.max(1) as f64;
        let width = 30;
        let filled = ((fraction * width as f64) as usize).min(width);
        let seconds = self.drawn.map_or(0.0, |t| t.elapsed().as_secs_f64());
        eprint!(
            "\r{:<16} [{}{}] {:>3.0}% {} of {} ({seconds:.1} s)",
            p.phase,
            "#".repeat(filled),
            " ".repeat(width - filled),
            fraction * 100.0,
            lambdaflow::bench::thousands(p.done as f64),
            lambdaflow::bench::thousands(p.total as f64),
        );
    }

    fn finish(&mut self) {
        if self.on && !self.phase.is_empty() {
            eprintln!();
        }
    }
}

/// `KEY=VALUE`.
fn key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{text}` is not KEY=VALUE"))
}

fn generate(args: GenerateArgs) -> Result<()> {
    let count = match (args.single, args.continuous, args.count) {
        (true, _, _) => Some(1),
        (_, true, _) => None,
        (_, _, n) => Some(n.unwrap_or(1000)),
    };
    let rate = match (args.rate, args.continuous) {
        (Some(r), _) => r,
        (None, true) => 10.0,
        (None, false) => 0.0,
    };
    let spec = config::generator_spec(args.seed, rate, count, args.bad_fraction, &args.start)?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 130, stop.clone())?;
        signal_hook::flag::register(signal, stop.clone())?;
    }
    let mut sink = match &args.to {
        Some(url) => {
            let mut kafka = KafkaSpec::parse(url, &[]).map_err(anyhow::Error::msg)?;
            for (k, v) in &args.kafka {
                kafka.set(k, v).map_err(anyhow::Error::msg)?;
            }
            Sink::Kafka(Publisher::connect(&kafka)?, kafka)
        }
        None => {
            let out: Box<dyn Write> = match &args.output {
                Some(path) => Box::new(
                    std::fs::File::create(path)
                        .with_context(|| format!("cannot create {}", path.display()))?,
                ),
                None => Box::new(std::io::stdout().lock()),
            };
            Sink::Lines(BufWriter::with_capacity(1 << 20, out))
        }
    };
    let started = Instant::now();
    let mut line = Vec::with_capacity(512);
    let mut key = String::new();
    let mut seq = 0u64;
    while count.is_none_or(|n| seq < n) && !stop.load(Ordering::Relaxed) {
        if let Some(rate) = spec.rate {
            let due = Duration::from_secs_f64(seq as f64 / rate);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                if let Sink::Lines(out) = &mut sink {
                    out.flush()?;
                }
                std::thread::sleep(wait);
            }
        }
        line.clear();
        spec.render(seq, &mut line);
        match &mut sink {
            Sink::Lines(out) => {
                line.push(b'\n');
                out.write_all(&line)?;
            }
            Sink::Kafka(publisher, _) => {
                key.clear();
                key.push_str("user_");
                key.push_str(&spec.user(seq).to_string());
                publisher.send(key.as_bytes(), &line)?;
                if args.single {
                    outln!("{}", String::from_utf8_lossy(&line))?;
                }
            }
        }
        seq += 1;
    }
    match sink {
        Sink::Lines(mut out) => out.flush()?,
        Sink::Kafka(publisher, kafka) => {
            let done = publisher.finish(Duration::from_secs(60));
            let secs = started.elapsed().as_secs_f64();
            outln!(
                "sent {} event{} to {} ({} partitions) in {secs:.1}s ({:.0}/s): {} delivered, {} failed",
                done.sent,
                if done.sent == 1 { "" } else { "s" },
                kafka.display(),
                done.partitions,
                done.sent as f64 / secs.max(1e-9),
                done.delivered,
                done.failed
            )?;
            if let Some(e) = done.error {
                anyhow::bail!(
                    "{} of {} events were not delivered: {e}",
                    done.sent - done.delivered,
                    done.sent
                );
            }
            if done.delivered != done.sent {
                anyhow::bail!(
                    "{} of {} events were not confirmed",
                    done.sent - done.delivered,
                    done.sent
                );
            }
        }
    }
    Ok(())
}

fn kafka_offsets(args: KafkaArgs) -> Result<()> {
    let mut spec = KafkaSpec::parse(&args.source, &[]).map_err(anyhow::Error::msg)?;
    for (k, v) in &args.kafka {
        spec.set(k, v).map_err(anyhow::Error::msg)?;
    }
    let group = match &args.group {
        Some(g) => g.clone(),
        None => spec.group_or(&args.id),
    };
    let partitions = lambdaflow::source::kafka::partition_offsets(&spec, &group)?;
    let lake = match &args.data_dir {
        Some(dir) => ops::info(dir, None)?.kafka_offsets,
        None => Default::default(),
    };
    if args.json {
        let rows: Vec<serde_json::Value> = partitions
            .iter()
            .map(|p| {
                serde_json::json!({"partition": p.partition, "low": p.low, "high": p.high,
                    "group": p.committed, "lake": lake.get(&p.partition)})
            })
            .collect();
        return write_json(
            None,
            &serde_json::json!({"group": group, "partitions": rows}),
        );
    }
    outln!(
        "{:<24} {:>12} {:>12} {:>12} {:>12} {:>10}",
        "partition",
        "low",
        "high",
        "group",
        "lake",
        "lag"
    )?;
    let dash = || "-".to_owned();
    for p in &partitions {
        let lake_at = lake.get(&p.partition).map(|&o| o as i64);
        let read = lake_at.or(p.committed);
        outln!(
            "{:<24} {:>12} {:>12} {:>12} {:>12} {:>10}",
            p.partition,
            p.low,
            p.high,
            p.committed.map_or_else(dash, |o| o.to_string()),
            lake_at.map_or_else(dash, |o| o.to_string()),
            read.map_or_else(dash, |o| (p.high - o).max(0).to_string()),
        )?;
    }
    outln!("group {group}; lag = high - (lake, else group)")?;
    Ok(())
}

/// Where `generate` puts events.
enum Sink {
    Lines(BufWriter<Box<dyn Write>>),
    Kafka(Publisher, KafkaSpec),
}

/// Where a run keeps the config it was started with, for `batch` and `verify`.
fn recorded_config_path(data_dir: &std::path::Path) -> PathBuf {
    lambdaflow::lake::state_dir(data_dir).join("config.toml")
}

/// Keeps the config a run was started with (none: the default) in the lake's state.
fn record_config(data_dir: &std::path::Path, text: Option<&str>) -> Result<()> {
    let path = recorded_config_path(data_dir);
    match text {
        Some(text) => {
            std::fs::create_dir_all(path.parent().unwrap_or(data_dir))
                .and_then(|()| std::fs::write(&path, text))
                .with_context(|| format!("cannot record the config in {}", path.display()))?;
        }
        None => {
            if path.exists() {
                std::fs::remove_file(&path)
                    .with_context(|| format!("cannot remove {}", path.display()))?;
            }
        }
    }
    Ok(())
}

/// The config the lake's last run was started with: its schema and views are what the lake
/// holds and what the live views were.
fn recorded_config(data_dir: &std::path::Path) -> Result<ConfigFile> {
    let path = recorded_config_path(data_dir);
    Ok(match std::fs::read_to_string(&path) {
        Ok(text) => ConfigFile::parse(&text, &path.display().to_string())?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => ConfigFile::default(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    })
}

/// The views recomputed from the lake by the same dataflow as `run`.
fn recompute(
    file: ConfigFile,
    workers: Option<usize>,
    views: Option<Vec<String>>,
    spec: ReplaySpec,
) -> Result<Arc<ViewStore>> {
    let flags = Overrides {
        workers,
        views,
        epoch_records: Some(100_000),
        until_exhausted: true,
        no_lake: true,
        ..Overrides::default()
    };
    let mut config = config::resolve(file, flags)?;
    config.source = SourceSpec::Files(Vec::new());
    config.replay = Some(spec);
    Ok(Pipeline::run(config)?)
}

fn write_json(path: Option<&PathBuf>, json: &serde_json::Value) -> Result<()> {
    let out: Box<dyn Write> = match path {
        Some(path) => Box::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot write views to {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = BufWriter::new(out);
    serde_json::to_writer_pretty(&mut out, json)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

fn check_date(date: &Option<String>) -> Result<()> {
    if let Some(d) = date {
        let valid = d.len() == 10
            && lambdaflow::event::time::parse_rfc3339(&format!("{d}T00:00:00Z")).is_ok();
        if !valid {
            anyhow::bail!("date `{d}` is not YYYY-MM-DD");
        }
    }
    Ok(())
}

fn batch(args: BatchArgs) -> Result<()> {
    check_date(&args.from)?;
    check_date(&args.to)?;
    let file = match &args.config {
        Some(path) => ConfigFile::load(path)?,
        None => recorded_config(&args.dir.data_dir)?,
    };
    let spec = ReplaySpec {
        dir: args.dir.data_dir,
        version: args.as_of_version,
        through: args.as_of_epoch,
        from: args.from,
        to: args.to,
    };
    let store = recompute(file, args.workers, args.views, spec)?;
    write_json(args.views_out.as_ref(), &store.to_json())
}

fn verify(args: VerifyArgs) -> Result<()> {
    let dir = args.dir.data_dir;
    let (_, last) = ops::plan(&ReplaySpec {
        dir: dir.clone(),
        ..ReplaySpec::default()
    })?;
    let Some(last) = last else {
        anyhow::bail!("{} has no lambdaflow commit to verify", dir.display());
    };
    let snapshots = lambdaflow::lake::view_snapshots(&dir);
    let Some((epoch, path)) = snapshots.into_iter().rev().find(|(e, _)| *e <= last.epoch) else {
        anyhow::bail!(
            "{} has no live views recorded at or before its last committed epoch {} (a run records them at commits, at most every 10 s, and when it stops)",
            dir.display(),
            last.epoch
        );
    };
    let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let live: serde_json::Value =
        serde_json::from_slice(&text).with_context(|| format!("reading {}", path.display()))?;
    let names: Vec<String> = live["views"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let spec = ReplaySpec {
        dir: dir.clone(),
        through: Some(epoch),
        ..ReplaySpec::default()
    };
    let lake = recompute(
        recorded_config(&dir)?,
        Some(args.workers),
        Some(names.clone()),
        spec,
    )?;
    let lake = lake.to_json();
    let mut differences = 0;
    for name in &names {
        let rows = |v: &serde_json::Value| -> std::collections::BTreeMap<String, String> {
            v["views"][name]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| (r["key"].to_string(), r["value"].to_string()))
                .collect()
        };
        let (a, b) = (rows(&live), rows(&lake));
        for (key, value) in &a {
            match b.get(key) {
                None => {
                    differences += 1;
                    outln!("{name} {key}: live {value}, missing from the lake")?;
                }
                Some(other) if other != value => {
                    differences += 1;
                    outln!("{name} {key}: live {value}, lake {other}")?;
                }
                Some(_) => {}
            }
        }
        for (key, value) in b.iter().filter(|(k, _)| !a.contains_key(*k)) {
            differences += 1;
            outln!("{name} {key}: lake {value}, missing from the live views")?;
        }
    }
    if differences > 0 {
        anyhow::bail!(
            "{differences} difference(s) between the live views and the lake as of epoch {epoch}"
        );
    }
    outln!(
        "ok: {} views equal as of epoch {epoch} (lake version {}, last committed epoch {})",
        names.len(),
        ops::info(&dir, None)?.events.version,
        last.epoch
    )?;
    Ok(())
}

/// The version of the events table as of `epoch`, or a clear error if none is that old.
fn version_at_epoch(data_dir: &std::path::Path, epoch: u64) -> Result<u64> {
    ops::version_at_epoch(data_dir, epoch)?.with_context(|| {
        format!(
            "no commit at or before epoch {epoch} in {}",
            data_dir.display()
        )
    })
}

fn lake(command: LakeCommand) -> Result<()> {
    match command {
        LakeCommand::Info {
            dir,
            as_of_version: version,
            as_of_epoch: epoch,
            json,
        } => {
            let version = match epoch {
                Some(e) => Some(version_at_epoch(&dir.data_dir, e)?),
                None => version,
            };
            let info = ops::info(&dir.data_dir, version)?;
            if json {
                return write_json(None, &serde_json::to_value(&info)?);
            }
            outln!(
                "lake {} (pipeline {})",
                dir.data_dir.display(),
                info.pipeline.as_deref().unwrap_or("-")
            )?;
            for t in [&info.events, &info.dead_letters] {
                outln!(
                    "  {}: version {}, {} files in {} partitions, {} rows, {} bytes",
                    t.path,
                    t.version,
                    t.files,
                    t.partitions,
                    t.rows,
                    t.bytes
                )?;
            }
            match info.epochs {
                Some((first, last)) => outln!(
                    "  {} commits, epochs {first} to {last}, {} bytes of JSON input",
                    info.commits,
                    info.input_bytes
                )?,
                None => outln!("  no commits yet")?,
            }
            if let Some(ratio) = info.compression_ratio {
                outln!("  compression: {ratio:.1}x smaller than the JSON input")?;
            }
            if !info.kafka_offsets.is_empty() {
                let offsets: Vec<String> = info
                    .kafka_offsets
                    .iter()
                    .map(|(p, o)| format!("{p} {o}"))
                    .collect();
                outln!("  kafka: next offsets {}", offsets.join(", "))?;
            }
            outln!("  newest commits:")?;
            for h in &info.history {
                outln!("    {h}")?;
            }
            Ok(())
        }
        LakeCommand::Files {
            dir,
            dead_letters,
            as_of_version,
            as_of_epoch,
        } => {
            let version = match as_of_epoch {
                Some(e) => Some(version_at_epoch(&dir.data_dir, e)?),
                None => as_of_version,
            };
            let kind = if dead_letters {
                TableKind::DeadLetters
            } else {
                TableKind::Events
            };
            for path in ops::active_files(&dir.data_dir, kind, version)? {
                outln!("{}", path.display())?;
            }
            Ok(())
        }
        LakeCommand::Compact { dir, target_size } => {
            for c in ops::compact(&dir.data_dir, target_size)? {
                match c.version {
                    Some(v) => outln!(
                        "{}: {} files -> {} (version {v})",
                        c.table,
                        c.files_before,
                        c.files_after
                    )?,
                    None => outln!("{}: {} files, nothing to compact", c.table, c.files_before)?,
                }
            }
            Ok(())
        }
        LakeCommand::Vacuum {
            dir,
            retain,
            dry_run,
            force,
        } => {
            let retain = humantime::parse_duration(&retain)
                .with_context(|| format!("retention `{retain}` is not a duration such as 7days"))?;
            let done = ops::vacuum(&dir.data_dir, retain, dry_run, force)?;
            let verb = if dry_run { "would delete" } else { "deleted" };
            for f in &done.uncommitted {
                outln!("{verb} uncommitted {f}")?;
            }
            for f in &done.expired {
                outln!("{verb} expired {f}")?;
            }
            outln!(
                "{verb} {} uncommitted and {} expired files",
                done.uncommitted.len(),
                done.expired.len()
            )?;
            Ok(())
        }
        LakeCommand::Repair { dir, dry_run, json } => {
            let done = lambdaflow::lake::repair::repair(&dir.data_dir, dry_run)?;
            if json {
                return write_json(None, &serde_json::to_value(&done)?);
            }
            print_repair(&dir.data_dir, &done, dry_run)
        }
    }
}

fn print_repair(
    dir: &std::path::Path,
    done: &lambdaflow::lake::repair::Repair,
    dry_run: bool,
) -> Result<()> {
    let Some(good) = done.restored else {
        outln!(
            "{}: version {} is readable, nothing to repair",
            dir.display(),
            done.latest
        )?;
        return Ok(());
    };
    outln!(
        "{}: version {} is unreadable: {}",
        dir.display(),
        done.latest,
        done.problem.as_deref().unwrap_or("?")
    )?;
    let verb = if dry_run { "would restore" } else { "restored" };
    let epoch = done
        .epoch
        .map_or("no epoch".to_owned(), |e| format!("epoch {e}"));
    match done.committed {
        Some(v) => outln!("{verb} version {good} ({epoch}) as version {v}")?,
        None => outln!("{verb} version {good} ({epoch})")?,
    }
    outln!(
        "  {} files ({} rows) removed, {} files added back, {} checkpoints of bad versions \
         deleted, {} dead-letter files past the epoch removed",
        done.removed_files,
        done.removed_rows,
        done.restored_files,
        done.checkpoints_deleted,
        done.dead_files_removed
    )?;
    if !done.replaced_commits.is_empty() {
        outln!(
            "  {} missing or damaged commit files replaced by empty commits (a damaged one is \
             kept as VERSION.json.damaged)",
            done.replaced_commits.len()
        )?;
    }
    if !dry_run {
        let from = done
            .epoch
            .map_or("from the start of the source".to_owned(), |e| {
                format!("after epoch {e}")
            });
        outln!(
            "  run the pipeline again with the same source: it resumes {from} and reads the \
             removed rows' events again (records from stdin cannot be read again)"
        )?;
    }
    Ok(())
}
