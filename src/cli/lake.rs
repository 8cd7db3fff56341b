//! `lambdaflow lake`: info, files, compact, vacuum, repair.

use std::io::Write;

use anyhow::{Context, Result};
use clap::Subcommand;

use super::*;
use crate::lake::ops::{self};
use crate::lake::writer::TableKind;

#[derive(Subcommand)]
pub(crate) enum LakeCommand {
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

/// The version of the events table as of `epoch`, or a clear error if none is that old.
pub(crate) fn version_at_epoch(data_dir: &std::path::Path, epoch: u64) -> Result<u64> {
    ops::version_at_epoch(data_dir, epoch)?.with_context(|| {
        format!(
            "no commit at or before epoch {epoch} in {}",
            data_dir.display()
        )
    })
}

pub(crate) fn lake(command: LakeCommand) -> Result<()> {
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
            print_info(&dir.data_dir, &info)
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
            let done = crate::lake::repair::repair(&dir.data_dir, dry_run)?;
            if json {
                return write_json(None, &serde_json::to_value(&done)?);
            }
            print_repair(&dir.data_dir, &done, dry_run)
        }
    }
}

/// `lake info`'s text.
fn print_info(dir: &std::path::Path, info: &ops::LakeInfo) -> Result<()> {
    outln!(
        "lake {} (pipeline {})",
        dir.display(),
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

pub(crate) fn print_repair(
    dir: &std::path::Path,
    done: &crate::lake::repair::Repair,
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
