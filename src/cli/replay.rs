//! `lambdaflow batch` and `lambdaflow verify`: the views recomputed from the lake.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;

use super::*;
use crate::config::{self, ConfigFile, Overrides};
use crate::lake::ops::{self, ReplaySpec};
use crate::lake::store;
use crate::pipeline::Pipeline;
use crate::source::SourceSpec;
use crate::views::ViewStore;
use crate::views::custom::Registry;

#[derive(Args)]
pub(crate) struct BatchArgs {
    #[command(flatten)]
    pub(crate) dir: DataDirArg,
    /// Pipeline config file (TOML), for the views and workers.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Timely worker threads.
    #[arg(long, short = 'w', value_name = "N")]
    pub(crate) workers: Option<usize>,
    /// Views to compute, comma-separated (default: all).
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    pub(crate) views: Option<Vec<String>>,
    /// Only events of this UTC day or later (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub(crate) from: Option<String>,
    /// Only events of this UTC day or earlier (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub(crate) to: Option<String>,
    /// Read the table as of this version (time travel).
    #[arg(long, value_name = "N", conflicts_with = "as_of_epoch")]
    pub(crate) as_of_version: Option<u64>,
    /// Read the rows committed up to this epoch (time travel).
    #[arg(long, value_name = "EPOCH")]
    pub(crate) as_of_epoch: Option<u64>,
    /// Write the views to this file as JSON (default: standard output).
    #[arg(long, value_name = "FILE")]
    pub(crate) views_out: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) cluster: ClusterArgs,
}

#[derive(Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    pub(crate) dir: DataDirArg,
    /// Timely worker threads for the recomputation.
    #[arg(long, short = 'w', value_name = "N", default_value_t = 1)]
    pub(crate) workers: usize,
    #[command(flatten)]
    pub(crate) cluster: ClusterArgs,
}

/// Where a run keeps the config it was started with, for `batch` and `verify`.
pub(crate) fn recorded_config_path(data_dir: &std::path::Path) -> PathBuf {
    crate::lake::state_dir(data_dir).join("config.toml")
}

/// Keeps the config a run was started with (none: the default) in the lake's state.
pub(crate) fn record_config(data_dir: &std::path::Path, text: Option<&str>) -> Result<()> {
    let path = recorded_config_path(data_dir);
    match text {
        Some(text) => store::write(&path, text.as_bytes().to_vec())
            .with_context(|| format!("cannot record the config in {}", path.display())),
        None => store::delete(&path).with_context(|| format!("cannot remove {}", path.display())),
    }
}

/// The config the lake's last run was started with: its schema and views are what the lake
/// holds and what the live views were.
pub(crate) fn recorded_config(data_dir: &std::path::Path) -> Result<ConfigFile> {
    let path = recorded_config_path(data_dir);
    let text = store::read_text(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(match text {
        Some(text) => ConfigFile::parse(&text, &path.display().to_string())?,
        None => ConfigFile::default(),
    })
}

/// The views recomputed from the lake by the same dataflow as `run` (on this process and the
/// others of `cluster`, if it is one: the views are then the first process's).
pub(crate) fn recompute(
    registry: &Registry,
    file: ConfigFile,
    (workers, cluster): (Option<usize>, &ClusterArgs),
    views: Option<Vec<String>>,
    spec: ReplaySpec,
) -> Result<Arc<ViewStore>> {
    let flags = Overrides {
        workers,
        views,
        epoch_records: Some(100_000),
        until_exhausted: true,
        no_lake: true,
        registry: registry.clone(),
        ..Overrides::default()
    };
    let mut config = config::resolve(file, flags)?;
    config.cluster = cluster.cluster()?;
    config.source = SourceSpec::Files(Vec::new());
    config.replay = Some(spec);
    Ok(Pipeline::run(config)?)
}

pub(crate) fn write_json(path: Option<&PathBuf>, json: &serde_json::Value) -> Result<()> {
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

pub(crate) fn check_date(date: &Option<String>) -> Result<()> {
    if let Some(d) = date {
        let valid =
            d.len() == 10 && crate::event::time::parse_rfc3339(&format!("{d}T00:00:00Z")).is_ok();
        if !valid {
            anyhow::bail!("date `{d}` is not YYYY-MM-DD");
        }
    }
    Ok(())
}

pub(crate) fn batch(args: BatchArgs, registry: &Registry) -> Result<()> {
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
    let store = recompute(
        registry,
        file,
        (args.workers, &args.cluster),
        args.views,
        spec,
    )?;
    if args.cluster.cluster()?.is_some_and(|c| c.process != 0) {
        return Ok(());
    }
    write_json(args.views_out.as_ref(), &store.to_json())
}

pub(crate) fn verify(args: VerifyArgs, registry: &Registry) -> Result<()> {
    let dir = args.dir.data_dir;
    let (_, last) = ops::plan(&ReplaySpec {
        dir: dir.clone(),
        ..ReplaySpec::default()
    })?;
    let Some(last) = last else {
        anyhow::bail!("{} has no lambdaflow commit to verify", dir.display());
    };
    let snapshots = crate::lake::view_snapshots(&dir);
    let Some((epoch, path)) = snapshots.into_iter().rev().find(|(e, _)| *e <= last.epoch) else {
        anyhow::bail!(
            "{} has no live views recorded at or before its last committed epoch {} (a run records them at commits, at most every 10 s, and when it stops)",
            dir.display(),
            last.epoch
        );
    };
    let text = store::read(&path).with_context(|| format!("reading {}", path.display()))?;
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
        registry,
        recorded_config(&dir)?,
        (Some(args.workers), &args.cluster),
        Some(names.clone()),
        spec,
    )?;
    if args.cluster.cluster()?.is_some_and(|c| c.process != 0) {
        return Ok(());
    }
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
