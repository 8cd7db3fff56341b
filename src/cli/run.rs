//! `lambdaflow run`: a pipeline, its live line and its HTTP server.

use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;

use super::*;
use crate::config::{self, ConfigFile, Overrides};
use crate::event::money::format_cents;
use crate::pipeline::{EpochPolicy, Pipeline, PipelineConfig};
use crate::serve::{Listener, Served, Server};
use crate::source::SourceSpec;
use crate::views::custom::Registry;
use crate::views::{Datum, ViewStore};

#[derive(Args)]
pub(crate) struct RunArgs {
    /// Pipeline config file (TOML); flags given here win over it.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Where events come from: `generate`, `stdin`, `file:PATH[,PATH...]` (a directory means its
    /// files) or `kafka://HOST:PORT[,HOST:PORT]/TOPIC[,TOPIC][?start=earliest|latest|committed|TIME&group=G]`.
    #[arg(long, value_name = "SOURCE")]
    pub(crate) source: Option<String>,
    /// A Kafka option or librdkafka property, such as `-X security.protocol=SASL_SSL` (repeatable).
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = key_value)]
    pub(crate) kafka: Vec<(String, String)>,
    /// Timely worker threads.
    #[arg(long, short = 'w', value_name = "N")]
    pub(crate) workers: Option<usize>,
    /// Epoch length in processing time, such as `100ms` or `1s`.
    #[arg(long, value_name = "DURATION", conflicts_with = "epoch_records")]
    pub(crate) epoch: Option<String>,
    /// Instead of a time interval: a new epoch every N records per worker (or when input pauses).
    #[arg(long, value_name = "N")]
    pub(crate) epoch_records: Option<u64>,
    /// Records larger than this become `too_large` dead letters.
    #[arg(long, value_name = "BYTES")]
    pub(crate) max_record_bytes: Option<usize>,
    /// Views to maintain, comma-separated (default: all; see `lambdaflow views`).
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    pub(crate) views: Option<Vec<String>>,
    /// Stop once every source is exhausted and the last epoch has closed (Kafka: once the end
    /// offsets seen at the start are read).
    #[arg(long)]
    pub(crate) until_exhausted: bool,
    /// Write the final views to this file as JSON.
    #[arg(long, value_name = "FILE")]
    pub(crate) views_out: Option<PathBuf>,
    /// Print no live summary.
    #[arg(long, short = 'q')]
    pub(crate) quiet: bool,
    /// The data directory: the lake (events and dead-letter Delta tables) and its state.
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Write no lake: views only.
    #[arg(long, conflicts_with = "data_dir")]
    pub(crate) no_lake: bool,
    /// A lake commit at least this often, such as `1s` (with processing-time epochs).
    #[arg(long, value_name = "DURATION", conflicts_with = "commit_epochs")]
    pub(crate) commit_interval: Option<String>,
    /// A lake commit every N epochs.
    #[arg(long, value_name = "N")]
    pub(crate) commit_epochs: Option<u64>,
    /// Serve the views, status, metrics and dashboard here (default 127.0.0.1:8080, or a free
    /// port if that one is taken); `0.0.0.0:PORT` serves other machines too.
    #[arg(long, value_name = "ADDR", conflicts_with = "no_serve")]
    pub(crate) listen: Option<std::net::SocketAddr>,
    /// Every endpoint but the dashboard page wants `Authorization: Bearer TOKEN` (also from
    /// the LAMBDAFLOW_TOKEN environment variable).
    #[arg(long, value_name = "TOKEN")]
    pub(crate) token: Option<String>,
    /// Serve nothing over HTTP.
    #[arg(long)]
    pub(crate) no_serve: bool,
    #[command(flatten)]
    pub(crate) generator: GeneratorArgs,
    #[command(flatten)]
    pub(crate) cluster: ClusterArgs,
}

/// The port `run` serves on unless told otherwise.
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Options of the built-in generator.
#[derive(Args)]
pub(crate) struct GeneratorArgs {
    /// Generated events per second (0: as fast as possible).
    #[arg(long, value_name = "EVENTS_PER_SEC")]
    pub(crate) rate: Option<f64>,
    /// How many events to generate (default: endless for `run`).
    #[arg(long, value_name = "N")]
    pub(crate) count: Option<u64>,
    /// Generator seed: same seed, same events.
    #[arg(long, value_name = "N")]
    pub(crate) seed: Option<u64>,
    /// Fraction of generated records made malformed on purpose, from 0 to 1.
    #[arg(long, value_name = "FRACTION")]
    pub(crate) bad_fraction: Option<f64>,
    /// Timestamp of the first generated event: `now` or RFC 3339.
    #[arg(long, value_name = "TIME")]
    pub(crate) start: Option<String>,
}

pub(crate) fn run(args: RunArgs, registry: &Registry) -> Result<()> {
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
        registry: registry.clone(),
    };
    let text = file.text.clone();
    let mut config = config::resolve(file, flags)?;
    config.cluster = args.cluster.cluster()?;
    if !config.leads() {
        // The first process records, serves, prints and writes the views.
        let token = token(args.token);
        return follow(config, (args.no_serve, args.listen, token), args.quiet);
    }
    if let Some(lake) = &config.lake {
        record_config(&lake.dir, text.as_deref())?;
    }
    if let Some(path) = &args.views_out {
        // Fail now, not after the run, if the output cannot be written.
        std::fs::File::create(path)
            .with_context(|| format!("cannot write views to {}", path.display()))?;
    }
    let summary = !args.quiet;
    let listener = bind(args.no_serve, args.listen)?;
    let token = token(args.token);
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
    let shown = Shown::of(&config);
    let pipeline = Pipeline::start(config)?;
    let server = serve(listener, token, &pipeline, shown, true)?;
    if summary && let Some(meta) = pipeline.resumed() {
        outln!(
            "resuming the lake after epoch {}: its committed rows are replayed into the views, \
             then the source continues where it stood",
            meta.epoch
        )?;
    }
    let summary = watch(&pipeline, summary)?;
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
        write_views(path, &store)?;
    }
    Ok(())
}

/// A process of a cluster other than the first: its share of the work, until the cluster
/// stops (Ctrl+C or SIGTERM stop it as they stop `run`). It serves its own `/api/status` and
/// `/metrics`: on `--listen`'s port plus its index (so that the processes of one machine do not
/// collide), else on a free port, which it prints.
fn follow(
    config: PipelineConfig,
    (no_serve, listen, token): (bool, Option<std::net::SocketAddr>, Option<String>),
    quiet: bool,
) -> Result<()> {
    let process = config.cluster.as_ref().map_or(0, |c| c.process);
    let listen = match listen {
        Some(mut addr) => {
            let port = usize::from(addr.port()) + process;
            addr.set_port(
                u16::try_from(port)
                    .context("--listen's port plus the process index is past 65535")?,
            );
            Some(addr)
        }
        None => Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
    };
    let listener = bind(no_serve, listen)?;
    if let (Some(l), false) = (&listener, quiet) {
        outln!("metrics: http://{}/metrics, status: /api/status", l.addr())?;
    }
    let shown = Shown::of(&config);
    let pipeline = Pipeline::start(config)?;
    let server = serve(listener, token, &pipeline, shown, false)?;
    watch(&pipeline, false)?;
    let joined = pipeline.join();
    if let Some(server) = server {
        server.stop();
    }
    joined?;
    Ok(())
}

/// What the server shows of a run's config: its workers, its source, whether it has a lake.
struct Shown {
    workers: usize,
    source: String,
    has_lake: bool,
}

impl Shown {
    fn of(config: &PipelineConfig) -> Self {
        Shown {
            workers: config.workers,
            source: source_label(&config.source),
            has_lake: config.lake.is_some(),
        }
    }
}

/// Serves `pipeline` on `listener`, if there is one: everything (`views`), or, on a cluster's
/// other processes, its own status and metrics.
fn serve(
    listener: Option<Listener>,
    token: Option<String>,
    pipeline: &Pipeline,
    shown: Shown,
    views: bool,
) -> Result<Option<Server>> {
    let Some(listener) = listener else {
        return Ok(None);
    };
    let served = Served {
        store: pipeline.views().clone(),
        stats: pipeline.stats().clone(),
        lake: shown.has_lake.then(|| pipeline.lake_status().clone()),
        workers: shown.workers,
        source: shown.source,
        views,
    };
    Ok(Some(
        Server::start(listener, token, served).map_err(anyhow::Error::msg)?,
    ))
}

/// The bearer token every endpoint but the dashboard wants: `--token`, else `LAMBDAFLOW_TOKEN`.
fn token(flag: Option<String>) -> Option<String> {
    flag.or_else(|| std::env::var("LAMBDAFLOW_TOKEN").ok())
        .filter(|t| !t.is_empty())
}

/// The HTTP listener: none with `--no-serve`, else `--listen`'s address, else the default
/// one, or any free port when another run has it (the banner says which).
fn bind(no_serve: bool, listen: Option<std::net::SocketAddr>) -> Result<Option<Listener>> {
    Ok(if no_serve {
        None
    } else if let Some(addr) = listen {
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
    })
}

/// Waits for `pipeline` to finish, printing the live line each second when `summary`; Ctrl+C
/// or SIGTERM stops it (a second one exits at once). Whether the summary is still read.
fn watch(pipeline: &Pipeline, mut summary: bool) -> Result<bool> {
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
            if outln!("{}", live_line(pipeline, &mut last)).is_err() {
                // Nobody reads the summary any more (`run | head`): stop as on Ctrl+C.
                summary = false;
                stop.store(true, Ordering::SeqCst);
            }
        }
    }
    Ok(summary)
}

/// Writes the views' rows to `path` (`--views-out`).
fn write_views(path: &std::path::Path, store: &ViewStore) -> Result<()> {
    let file = std::fs::File::create(path)
        .with_context(|| format!("cannot write views to {}", path.display()))?;
    let mut out = BufWriter::new(file);
    serde_json::to_writer_pretty(&mut out, &store.to_json())?;
    writeln!(out)?;
    out.flush()
        .with_context(|| format!("cannot write views to {}", path.display()))?;
    Ok(())
}

pub(crate) fn source_label(source: &SourceSpec) -> String {
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

pub(crate) fn banner(config: &PipelineConfig) -> String {
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
    let workers = match &config.cluster {
        Some(c) => format!(
            "{} processes x {} worker(s)",
            c.addresses.len(),
            config.workers
        ),
        None => format!("{} worker(s)", config.workers),
    };
    format!(
        "lambdaflow: {source}, {workers}, {epoch}, {} views; {stop}",
        config.sql_views.len() + config.custom_views.views().len()
    )
}

/// The view called `name`, if it runs.
fn view(store: &ViewStore, name: &str) -> Option<usize> {
    store.catalog().index_of(name)
}

/// Total of a count view (its first value column) as of its epoch, and its top entries.
pub(crate) fn counts(store: &ViewStore, view: usize) -> (i64, Vec<(String, i64)>) {
    store.read(|state| {
        let mut rows: Vec<(String, i64)> = state.tables[view]
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

/// Events and dead letters: as the built-in views count them (with what a resumed run replayed
/// from the lake) when they run, else as this run decoded them.
fn event_counts(store: &ViewStore, stats: &crate::pipeline::Stats) -> (i64, i64) {
    let decoded = |n: &std::sync::atomic::AtomicU64| n.load(Ordering::Relaxed) as i64;
    let events = match view(store, "events_by_type") {
        Some(v) => counts(store, v).0,
        None => decoded(&stats.events),
    };
    let dead = match view(store, "dead_letters_by_reason") {
        Some(v) => counts(store, v).0,
        None => decoded(&stats.dead_letters),
    };
    (events, dead)
}

/// Revenue and orders in all countries, from the built-in `revenue_by_country`.
pub(crate) fn revenue(store: &ViewStore, view: usize) -> (i64, i64) {
    store.read(|state| {
        state.tables[view]
            .values()
            .fold((0, 0), |(r, o), v| match v.as_slice() {
                [Datum::Money(c), Datum::Int(n)] => (r + c, o + n),
                _ => (r, o),
            })
    })
}

/// The first product of the built-in `top_products` (ranked first).
pub(crate) fn top_product(store: &ViewStore) -> Option<String> {
    let view = view(store, "top_products")?;
    store.read(|state| {
        state.tables[view]
            .iter()
            .find(|(_, v)| v.first() == Some(&Datum::Int(1)))
            .and_then(|(k, _)| {
                k.first()
                    .map(|d| d.to_json(store.symbols()).as_str().unwrap_or("").to_owned())
            })
    })
}

pub(crate) fn live_line(pipeline: &Pipeline, last: &mut (Instant, u64)) -> String {
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
    let (events, dead) = event_counts(store, stats);
    let as_of = store
        .read(|s| s.as_of)
        .map_or("-".to_owned(), |e| e.to_string());
    let mut line = format!(
        "{:>5.0}s  epoch {as_of:<6} events {events:<9} {rate:>8.0}/s  dead {dead:<5} p99 {:.1}ms",
        stats.started.elapsed().as_secs_f64(),
        p99 as f64 / 1000.0,
    );
    // The built-in views' headlines, when they run.
    if let Some(v) = view(store, "events_by_type") {
        let (_, by_type) = counts(store, v);
        let types: Vec<String> = by_type
            .iter()
            .take(5)
            .map(|(t, n)| format!("{t} {n}"))
            .collect();
        line.push_str(&format!(" | {}", types.join(" ")));
    }
    if let Some(v) = view(store, "revenue_by_country") {
        let (rev, orders) = revenue(store, v);
        line.push_str(&format!(
            " | revenue {} ({orders} orders)",
            format_cents(rev)
        ));
    }
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

pub(crate) fn live_line_final(store: &ViewStore, stats: &crate::pipeline::Stats) -> String {
    let (events, dead) = event_counts(store, stats);
    let as_of = store
        .read(|s| s.as_of)
        .map_or("-".to_owned(), |e| e.to_string());
    let counted = if view(store, "events_by_type").is_some() {
        "in the views"
    } else {
        "decoded, the views"
    };
    let mut line = format!(
        "done: {} records read in {:.1}s, {events} events and {dead} dead letters {counted} as of epoch {as_of}",
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
