//! The `lambdaflow` command line, as a library: [`main`] runs it with the Rust views a binary
//! registers (`src/main.rs` registers none; `examples/custom_operator.rs` registers its own).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{self};
use crate::views::custom::Registry;

/// `println!` that returns the error instead of panicking on it: when the reader of a pipe goes
/// away (`lambdaflow views | head -1`), the command ends quietly with exit code 0.
macro_rules! outln {
    ($($arg:tt)*) => { writeln!(std::io::stdout().lock(), $($arg)*) };
}

/// `print!` that returns the error instead of panicking on it, as [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => { write!(std::io::stdout().lock(), $($arg)*) };
}

mod bench;
mod cluster;
mod generate;
mod kafka;
mod lake;
mod replay;
mod run;

use self::bench::*;
use self::cluster::*;
use self::generate::*;
use self::kafka::*;
use self::lake::*;
use self::replay::*;
use self::run::*;

/// A whole Lambda architecture as one timely dataflow: events in, live views out.
#[derive(Parser)]
#[command(name = "lambdaflow", version, about, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
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
    /// Run a command as a cluster of processes on this machine, one timely computation:
    /// `lambdaflow cluster --processes 2 --workers 2 -- run --source ...`.
    Cluster(ClusterLaunchArgs),
}

#[derive(Args)]
pub(crate) struct DataDirArg {
    /// The data directory (the lake).
    #[arg(long, value_name = "DIR", default_value = config::DEFAULT_DATA_DIR)]
    pub(crate) data_dir: PathBuf,
}

/// Runs the command line with the built-in views, the config's SQL views and the Rust views of
/// `registry`, and returns the exit code: 0, 1 for an error (one line on stderr), 2 for a bad
/// flag.
///
/// A binary of your own with views of your own is this, with your views registered (see
/// `examples/custom_operator.rs`):
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     lambdaflow::cli::main(lambdaflow::Registry::default())
/// }
/// ```
pub fn main(registry: Registry) -> ExitCode {
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
        Command::Cluster(args) => match launch(args) {
            Ok(code) => return ExitCode::from(code),
            Err(e) => Err(e),
        },
        Command::Run(args) => run(*args, &registry),
        Command::Generate(args) => generate(args),
        Command::Kafka(args) => kafka_offsets(args),
        Command::Bench(args) => bench(args, &registry),
        Command::Config => out!("{}", config::DEFAULT_CONFIG).map_err(Into::into),
        Command::Views => crate::views::builtin::definitions()
            .into_iter()
            .map(|v| (v.name, v.description.unwrap_or(v.sql)))
            .chain(
                (registry.views().iter())
                    .map(|v| (v.name().to_owned(), v.description().to_owned())),
            )
            .try_for_each(|(name, description)| outln!("{name:<24} {description}"))
            .map_err(Into::into),
        Command::Batch(args) => batch(args, &registry),
        Command::Verify(args) => verify(args, &registry),
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
