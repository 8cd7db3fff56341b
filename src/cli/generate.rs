//! `lambdaflow generate`: events as JSON lines or to Kafka.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;

use crate::config::{self};
use crate::source::kafka::{KafkaSpec, Publisher};

#[derive(Args)]
pub(crate) struct GenerateArgs {
    /// How many events (a batch; the default is 1000).
    #[arg(long, value_name = "N", conflicts_with_all = ["continuous", "single"])]
    pub(crate) count: Option<u64>,
    /// Keep publishing until Ctrl+C, at `--rate` (default 10 events per second).
    #[arg(long, conflicts_with = "single")]
    pub(crate) continuous: bool,
    /// One event: a test message, also printed.
    #[arg(long)]
    pub(crate) single: bool,
    /// Events per second (default: as fast as possible).
    #[arg(long, value_name = "EVENTS_PER_SEC")]
    pub(crate) rate: Option<f64>,
    /// Same seed, same events.
    #[arg(long, value_name = "N", default_value_t = 42)]
    pub(crate) seed: u64,
    /// Fraction of records made malformed on purpose, from 0 to 1.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.0)]
    pub(crate) bad_fraction: f64,
    /// Timestamp of the first event: `now` or RFC 3339.
    #[arg(long, value_name = "TIME", default_value = "2025-01-01T00:00:00Z")]
    pub(crate) start: String,
    /// Write to this file instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE", conflicts_with = "to")]
    pub(crate) output: Option<PathBuf>,
    /// Publish to Kafka instead, keyed by user id: `kafka://HOST:PORT[,HOST:PORT]/TOPIC`.
    #[arg(long, value_name = "URL")]
    pub(crate) to: Option<String>,
    /// A librdkafka property for the publisher, such as `-X security.protocol=SASL_SSL`.
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = key_value, requires = "to")]
    pub(crate) kafka: Vec<(String, String)>,
}

/// `KEY=VALUE`.
pub(crate) fn key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{text}` is not KEY=VALUE"))
}

pub(crate) fn generate(args: GenerateArgs) -> Result<()> {
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
    let mut sink = Sink::open(&args)?;
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
    sink.finish(started)
}

/// Where `generate` puts events.
pub(crate) enum Sink {
    Lines(BufWriter<Box<dyn Write>>),
    Kafka(Publisher, KafkaSpec),
}

impl Sink {
    /// The Kafka topic of `--to`, else the file of `-o`, else standard output.
    fn open(args: &GenerateArgs) -> Result<Sink> {
        Ok(match &args.to {
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
        })
    }

    /// Flushes the lines, or waits for Kafka's acknowledgements and says how many came (an
    /// error if any event was not delivered).
    fn finish(self, started: Instant) -> Result<()> {
        match self {
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
}
