//! `lambdaflow kafka`: partitions, offsets and lag.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::*;
use crate::lake::ops::{self};
use crate::source::kafka::KafkaSpec;

#[derive(Args)]
pub(crate) struct KafkaArgs {
    /// The source, as given to `run`: `kafka://HOST:PORT/TOPIC[,TOPIC]`.
    #[arg(long, value_name = "URL")]
    pub(crate) source: String,
    /// The consumer group (default: the one `run` commits to, the pipeline id).
    #[arg(long, value_name = "GROUP")]
    pub(crate) group: Option<String>,
    /// The pipeline id, for the default group.
    #[arg(long, value_name = "ID", default_value = "lambdaflow")]
    pub(crate) id: String,
    /// The lake whose offsets to show beside the group's.
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// A librdkafka property, such as `-X security.protocol=SASL_SSL` (repeatable).
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = key_value)]
    pub(crate) kafka: Vec<(String, String)>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) fn kafka_offsets(args: KafkaArgs) -> Result<()> {
    let mut spec = KafkaSpec::parse(&args.source, &[]).map_err(anyhow::Error::msg)?;
    for (k, v) in &args.kafka {
        spec.set(k, v).map_err(anyhow::Error::msg)?;
    }
    let group = match &args.group {
        Some(g) => g.clone(),
        None => spec.group_or(&args.id),
    };
    let partitions = crate::source::kafka::partition_offsets(&spec, &group)?;
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
