//! `lambdaflow bench`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;

use super::cluster::{ClusterArgs, ClusterLaunchArgs, launch};
use crate::config::{self, ConfigFile, Overrides};
use crate::views::custom::Registry;

#[derive(Args)]
pub(crate) struct BenchArgs {
    /// Timely worker threads (default: one per CPU).
    #[arg(long, short = 'w', value_name = "N")]
    pub(crate) workers: Option<usize>,
    /// Events to generate into memory and run.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub(crate) events: u64,
    /// Epoch length, such as `100ms` or `10ms`.
    #[arg(long, value_name = "DURATION", default_value = "100ms")]
    pub(crate) epoch: String,
    /// Open loop: offer this many events per second in all and measure latency under that load
    /// (default: closed loop, as fast as it goes).
    #[arg(long, value_name = "EVENTS_PER_SEC")]
    pub(crate) rate: Option<f64>,
    /// A lake commit at least this often.
    #[arg(long, value_name = "DURATION", default_value = "1s")]
    pub(crate) commit_interval: String,
    /// Compact a partition while running once it holds this many small files (0: never).
    #[arg(long, value_name = "N", default_value_t = crate::lake::COMPACT_FILES)]
    pub(crate) compact_files: usize,
    /// Fraction of records made malformed (they become dead letters).
    #[arg(long, value_name = "FRACTION", default_value_t = 0.001)]
    pub(crate) bad_fraction: f64,
    /// Generator seed.
    #[arg(long, value_name = "N", default_value_t = 42)]
    pub(crate) seed: u64,
    /// Views to maintain, comma-separated (default: all built-in views, or the config's own).
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    pub(crate) views: Option<Vec<String>>,
    /// Maintain this config's schema and views (`[schema]`, `[[views]]`, `[pipeline] views`)
    /// over the generated e-commerce events.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Keep the lake in this (new or empty) directory instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Skip measuring the decode-only and Parquet-only limits.
    #[arg(long)]
    pub(crate) no_limits: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// Run as a cluster of this many processes on this machine, each with `--workers` threads
    /// (default 1); or, with `--process` and `--hostfile`, as one process of a cluster.
    #[command(flatten)]
    pub(crate) cluster: ClusterArgs,
}

pub(crate) fn bench(args: BenchArgs, registry: &Registry) -> Result<()> {
    if let (Some(processes), None, None) = (
        args.cluster.processes,
        args.cluster.process,
        &args.cluster.hostfile,
    ) && processes > 1
    {
        return bench_cluster(
            processes,
            args.workers.unwrap_or(1),
            args.data_dir.is_some(),
        );
    }
    let cluster = args.cluster.cluster()?;
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
    // The config decides the schema and the views; the generator and the lake are the bench's.
    let file = match &args.config {
        Some(path) => ConfigFile::load(path)?,
        None => ConfigFile::default(),
    };
    let pipeline = config::resolve(
        file,
        Overrides {
            views: args.views,
            registry: registry.clone(),
            no_lake: true,
            ..Overrides::default()
        },
    )?;
    let bench = crate::bench::BenchConfig {
        workers,
        events: args.events,
        epoch,
        rate: args.rate,
        generator,
        sql_views: pipeline.sql_views,
        custom_views: pipeline.custom_views,
        schema: pipeline.schema,
        data_dir: args.data_dir,
        commit_every: (commit.as_nanos() / epoch.as_nanos()).max(1) as u64,
        compact_files: args.compact_files,
        limits: !args.no_limits && cluster.is_none(),
        cluster: cluster.clone(),
    };
    let leads = cluster.as_ref().is_none_or(|c| c.process == 0);
    let mut bar = ProgressBar::new(leads && std::io::stderr().is_terminal());
    let report = crate::bench::run(&bench, &mut |p| bar.show(p))?;
    bar.finish();
    if !leads {
        // The first process reports for the cluster.
        return Ok(());
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        out!("{}", report.table())?;
    }
    Ok(())
}

/// `bench --processes N`: the same benchmark as a cluster of `N` processes of `workers` threads
/// on this machine, started as `lambdaflow cluster` starts `run`, over a lake of its own.
fn bench_cluster(processes: usize, workers: usize, has_lake: bool) -> Result<()> {
    // This command line again, for each process, without what the launcher sets.
    let mut command = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--processes" | "--workers" | "-w" => {
                args.next();
            }
            a if a.starts_with("--processes=") || a.starts_with("--workers=") => {}
            _ => command.push(arg),
        }
    }
    let scratch = tempfile::tempdir().context("cannot create the benchmark's lake")?;
    if !has_lake {
        command.push("--data-dir".into());
        command.push(scratch.path().join("lake").display().to_string());
    }
    let code = launch(ClusterLaunchArgs {
        processes,
        workers,
        restart: 0,
        command,
    })?;
    anyhow::ensure!(
        code == 0,
        "a process of the benchmark's cluster failed (exit code {code})"
    );
    Ok(())
}

/// A one-line progress bar on a terminal; nothing otherwise.
pub(crate) struct ProgressBar {
    pub(crate) on: bool,
    pub(crate) phase: String,
    pub(crate) drawn: Option<Instant>,
}

impl ProgressBar {
    fn new(on: bool) -> Self {
        ProgressBar {
            on,
            phase: String::new(),
            drawn: None,
        }
    }

    fn show(&mut self, p: crate::bench::Progress<'_>) {
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
            crate::bench::thousands(p.done as f64),
            crate::bench::thousands(p.total as f64),
        );
    }

    fn finish(&mut self) {
        if self.on && !self.phase.is_empty() {
            eprintln!();
        }
    }
}
