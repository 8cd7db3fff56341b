//! Lake operations: preparing a data directory for a run (recovery), planning a replay, and the
//! `lake` commands (info, compact, vacuum).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use deltalake::kernel::Action;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::protocol::DeltaOperation;
use deltalake::table::config::TablePropertiesExt;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::layout::{DATE_COLUMN, Layout};
use super::table::{self, CommitMeta, Table, TableFile, orphans, table_root};
use super::writer::{FileSettings, TableKind, epochs_of, now_millis, run_tag};
use super::{LakeConfig, LakeError, state_dir, store, view_snapshots};

/// What a run starts from.
#[derive(Debug)]
pub struct Prepared {
    /// The last commit, if the lake has one: where to resume.
    pub last: Option<CommitMeta>,
    /// What to replay into the views.
    pub plan: ReplayPlan,
    /// Uncommitted files removed (left by a crash).
    pub removed: usize,
    /// The lock on the data directory, held for the run.
    pub lock: File,
}

/// Committed files to read back into the views.
#[derive(Clone, Debug, Default)]
pub struct ReplayPlan {
    /// The data directory.
    pub dir: PathBuf,
    /// Events table files.
    pub events: Vec<TableFile>,
    /// Dead-letter table files.
    pub dead: Vec<TableFile>,
    /// Only rows with `_epoch` at most this.
    pub through: Option<u64>,
    /// The epoch the replayed rows enter the dataflow at (the last committed one).
    pub epoch: u64,
}

/// Takes the data directory's lock: one writer at a time. The lock of a lake on an object store
/// is a file of this machine's staging directory for it: it keeps a second writer on the same
/// machine out; on another, the Delta log's own rule (a version is written once) stops it.
pub(crate) fn lock(dir: &Path) -> Result<File, LakeError> {
    let state = state_dir(&store::staging(dir));
    std::fs::create_dir_all(&state).map_err(|e| LakeError::io(&state, e))?;
    let path = state.join("lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| LakeError::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(LakeError::Other(format!(
            "{} is in use by another lambdaflow process",
            dir.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(LakeError::io(&path, e)),
    }
}

/// Opens (or creates) the lake of a run, checks that this run can resume its last commit,
/// undoes what a crash left behind, and lists the files to replay. `workers` is the worker count
/// when positions belong to workers (a restart then needs as many).
pub fn prepare(
    config: &LakeConfig,
    layout: &Layout,
    pipeline: &str,
    workers: Option<usize>,
    source: &str,
) -> Result<Prepared, LakeError> {
    if !store::is_remote(&config.dir) {
        std::fs::create_dir_all(&config.dir).map_err(|e| LakeError::io(&config.dir, e))?;
    }
    let lock = lock(&config.dir)?;
    if store::is_remote(&config.dir) {
        // Files an earlier run on this machine had not finished uploading.
        for kind in [TableKind::Events, TableKind::DeadLetters] {
            let staged = table_root(&store::staging(&config.dir), kind);
            if staged.exists() {
                std::fs::remove_dir_all(&staged).map_err(|e| LakeError::io(&staged, e))?;
            }
        }
    }
    let rt = table::runtime()?;
    let events = Table::open_or_create(
        &rt,
        &table_root(&config.dir, TableKind::Events),
        "events",
        &layout.table_fields(),
        &layout.partition_columns(),
    )?;
    let mut dead = Table::open_or_create(
        &rt,
        &table_root(&config.dir, TableKind::DeadLetters),
        "dead_letters",
        &table::dead_fields(layout),
        &[],
    )?;
    let mut events = events;
    if let Some(retention) = config.log_retention {
        events.set_log_retention(&rt, retention)?;
        dead.set_log_retention(&rt, retention)?;
    }
    let last = events.last_commit(&rt)?;
    if let Some(meta) = &last {
        check_resumable(meta, &config.dir, pipeline, workers, source)?;
    }
    let last_epoch = last.as_ref().map(|m| m.epoch);

    drop_dead_letters_after(&rt, &mut dead, last_epoch)?;

    let mut removed = 0;
    for t in [&events, &dead] {
        for path in orphans(t, last_epoch)? {
            store::delete(&path)?;
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::info!(
            files = removed,
            "removed uncommitted files left by an earlier run"
        );
    }
    drop_view_snapshots_after(&config.dir, last_epoch);
    Ok(Prepared {
        plan: ReplayPlan {
            dir: config.dir.clone(),
            events: events.files()?,
            dead: dead.files()?,
            through: None,
            epoch: last_epoch.unwrap_or(0),
        },
        last,
        removed,
        lock,
    })
}

/// What a process of a cluster other than the first reads of the lake to start: where to
/// resume and what to replay, as [`prepare`] gave the first process, which owns the lake (its
/// lock, its repairs) and has prepared it before any other process connects. On an object
/// store, it also removes the files its `own` workers had staged on this machine and not
/// uploaded before a crash (the first process removes the rest of a lake's leftovers).
pub fn follow(
    config: &LakeConfig,
    pipeline: &str,
    workers: Option<usize>,
    source: &str,
    own: std::ops::Range<usize>,
) -> Result<(Option<CommitMeta>, ReplayPlan), LakeError> {
    if store::is_remote(&config.dir) {
        for kind in [TableKind::Events, TableKind::DeadLetters] {
            let staged = table_root(&store::staging(&config.dir), kind);
            for entry in store::list(&staged)? {
                let name = entry.relative.rsplit('/').next().unwrap_or_default();
                if super::writer::in_progress_worker(name).is_some_and(|w| own.contains(&w)) {
                    store::delete(&entry.location)?;
                }
            }
        }
    }
    let rt = table::runtime()?;
    let events = Table::open(&rt, &table_root(&config.dir, TableKind::Events))?;
    let dead = Table::open(&rt, &table_root(&config.dir, TableKind::DeadLetters))?;
    let last = events.last_commit(&rt)?;
    if let Some(meta) = &last {
        check_resumable(meta, &config.dir, pipeline, workers, source)?;
    }
    let plan = ReplayPlan {
        dir: config.dir.clone(),
        events: events.files()?,
        dead: dead.files()?,
        through: None,
        epoch: last.as_ref().map_or(0, |m| m.epoch),
    };
    Ok((last, plan))
}

/// Removes the dead-letter files past `last_epoch`, the events table's last epoch: dead letters
/// are committed first, so such files belong to a commit that never completed (or that a repair
/// took back). Returns how many files went.
pub(crate) fn drop_dead_letters_after(
    rt: &tokio::runtime::Runtime,
    dead: &mut Table,
    last_epoch: Option<u64>,
) -> Result<usize, LakeError> {
    let stale: Vec<TableFile> = dead
        .files()?
        .into_iter()
        .filter(|f| {
            let name = f.path.rsplit('/').next().unwrap_or_default();
            epochs_of(name).is_some_and(|(_, l)| last_epoch.is_none_or(|e| l > e))
        })
        .collect();
    if !stale.is_empty() {
        tracing::info!(
            files = stale.len(),
            "removing dead-letter files of an incomplete commit"
        );
        dead.commit_actions(
            rt,
            Table::remove_actions(&stale, true),
            CommitProperties::default(),
            DeltaOperation::Delete {
                predicate: Some(format!("_epoch > {}", last_epoch.map_or(-1, |e| e as i64))),
            },
        )?;
    }
    Ok(stale.len())
}

/// Removes the view snapshots past `last_epoch`: they describe rows that were never committed.
pub(crate) fn drop_view_snapshots_after(dir: &Path, last_epoch: Option<u64>) {
    for (epoch, path) in view_snapshots(dir) {
        if last_epoch.is_none_or(|l| epoch > l) {
            let _ = store::delete(&path);
        }
    }
}

fn check_resumable(
    meta: &CommitMeta,
    dir: &Path,
    pipeline: &str,
    workers: Option<usize>,
    source: &str,
) -> Result<(), LakeError> {
    let dir = dir.display();
    if meta.pipeline != pipeline {
        return Err(LakeError::Resume(format!(
            "the lake at {dir} belongs to pipeline `{}`, not `{pipeline}` (set --id or use another --data-dir)",
            meta.pipeline
        )));
    }
    if meta.source != source {
        return Err(LakeError::Resume(format!(
            "the lake at {dir} was written from source `{}`, this run reads `{source}`; use another --data-dir",
            meta.source
        )));
    }
    if workers.is_some_and(|w| w != meta.positions.len()) {
        return Err(LakeError::Resume(format!(
            "the lake at {dir} was written by {} workers and resumes per worker; run with --workers {}",
            meta.positions.len(),
            meta.positions.len()
        )));
    }
    Ok(())
}

/// What `batch` and `verify` read: a version (or the latest), rows up to an epoch, days.
#[derive(Clone, Debug, Default)]
pub struct ReplaySpec {
    /// The data directory.
    pub dir: PathBuf,
    /// The table version of the events table (latest if `None`).
    pub version: Option<u64>,
    /// Only rows with `_epoch` at most this.
    pub through: Option<u64>,
    /// Only events whose UTC day is in this range (inclusive), as `YYYY-MM-DD`.
    pub from: Option<String>,
    /// See `from`.
    pub to: Option<String>,
}

/// Lists the committed files a replay reads.
pub fn plan(spec: &ReplaySpec) -> Result<(ReplayPlan, Option<CommitMeta>), LakeError> {
    let rt = table::runtime()?;
    let events = Table::open_version(&rt, &table_root(&spec.dir, TableKind::Events), spec.version)?;
    let last = events.last_commit(&rt)?;
    let dead = Table::open(&rt, &table_root(&spec.dir, TableKind::DeadLetters))?;
    let in_range = |f: &TableFile| {
        let day = f.partition.get(DATE_COLUMN).cloned().flatten();
        match day {
            Some(day) => {
                spec.from
                    .as_ref()
                    .is_none_or(|from| day.as_str() >= from.as_str())
                    && spec
                        .to
                        .as_ref()
                        .is_none_or(|to| day.as_str() <= to.as_str())
            }
            None => spec.from.is_none() && spec.to.is_none(),
        }
    };
    let events_files: Vec<TableFile> = events.files()?.into_iter().filter(in_range).collect();
    events.check_present(&events_files)?;
    // Dead letters have no event day; they count only for a replay of every day. Those of a
    // version are the ones committed up to its last epoch.
    let through = spec.through.or(last.as_ref().map(|m| m.epoch));
    let dead_files = if spec.from.is_none() && spec.to.is_none() {
        dead.files()?
            .into_iter()
            .filter(|f| {
                let name = f.path.rsplit('/').next().unwrap_or_default();
                epochs_of(name).is_none_or(|(first, _)| through.is_none_or(|t| first <= t))
            })
            .collect()
    } else {
        Vec::new()
    };
    let epoch = spec.through.or(last.as_ref().map(|m| m.epoch)).unwrap_or(0);
    Ok((
        ReplayPlan {
            dir: spec.dir.clone(),
            events: events_files,
            dead: dead_files,
            through,
            epoch,
        },
        last,
    ))
}

/// The version of the events table whose last lambdaflow commit is at most `epoch`.
pub fn version_at_epoch(dir: &Path, epoch: u64) -> Result<Option<u64>, LakeError> {
    let rt = table::runtime()?;
    let events = Table::open(&rt, &table_root(dir, TableKind::Events))?;
    Ok(events
        .history(&rt, None)?
        .into_iter()
        .filter(|(_, meta, _)| meta.as_ref().is_some_and(|m| m.epoch <= epoch))
        .map(|(v, _, _)| v)
        .max())
}

/// The data files of a table as of a version (the latest if `None`): absolute paths, sorted. A
/// plain Parquet reader that reads exactly these reads the table as of that version, where a glob
/// over the directory would also take files compaction replaced (until `lake vacuum`) and files a
/// crash left uncommitted.
pub fn active_files(
    dir: &Path,
    kind: TableKind,
    version: Option<u64>,
) -> Result<Vec<PathBuf>, LakeError> {
    let rt = table::runtime()?;
    let table = Table::open_version(&rt, &table_root(dir, kind), version)?;
    let files = table.files()?;
    table.check_present(&files)?;
    Ok(files
        .iter()
        .map(|f| {
            let path = percent_encoding::percent_decode_str(&f.path).decode_utf8_lossy();
            let joined = table.root().join(path.as_ref());
            if store::is_remote(&joined) {
                joined
            } else {
                std::path::absolute(&joined).unwrap_or(joined)
            }
        })
        .collect())
}

/// A summary of one table.
#[derive(Debug, serde::Serialize)]
pub struct TableInfo {
    /// Its directory.
    pub path: String,
    /// The version read.
    pub version: u64,
    /// Active data files.
    pub files: usize,
    /// Rows.
    pub rows: u64,
    /// Bytes of Parquet.
    pub bytes: u64,
    /// Partitions holding files.
    pub partitions: usize,
}

fn table_info(table: &Table) -> Result<TableInfo, LakeError> {
    let files = table.files()?;
    table.check_present(&files)?;
    let mut partitions: Vec<String> = files
        .iter()
        .map(|f| f.path.rsplit_once('/').map_or("", |(d, _)| d).to_string())
        .collect();
    partitions.sort();
    partitions.dedup();
    Ok(TableInfo {
        path: table.root().display().to_string(),
        version: table.version(),
        files: files.len(),
        rows: files.iter().filter_map(|f| f.rows).sum(),
        bytes: files.iter().map(|f| f.size).sum(),
        partitions: partitions.len(),
    })
}

/// What `lake info` prints.
#[derive(Debug, serde::Serialize)]
pub struct LakeInfo {
    /// The events table.
    pub events: TableInfo,
    /// The dead-letter table.
    pub dead_letters: TableInfo,
    /// The pipeline that wrote it.
    pub pipeline: Option<String>,
    /// Commits carrying lambdaflow metadata, up to the version read.
    pub commits: usize,
    /// The first and last committed epochs.
    pub epochs: Option<(u64, u64)>,
    /// JSON bytes read to produce the committed rows.
    pub input_bytes: u64,
    /// `input_bytes` over the Parquet bytes of both tables.
    pub compression_ratio: Option<f64>,
    /// The newest commits: version, operation, epochs, rows.
    pub history: Vec<serde_json::Value>,
    /// For a Kafka source: the next offset of every partition (`TOPIC/PARTITION`) as of the
    /// newest commit read; a restart reads on from there.
    pub kafka_offsets: BTreeMap<String, u64>,
}

/// `lake info`, as of a version of the events table (the latest if `None`).
pub fn info(dir: &Path, version: Option<u64>) -> Result<LakeInfo, LakeError> {
    let rt = table::runtime()?;
    let events = Table::open_version(&rt, &table_root(dir, TableKind::Events), version)?;
    let dead = Table::open(&rt, &table_root(dir, TableKind::DeadLetters))?;
    let history = events.history(&rt, None)?;
    let ours: Vec<&CommitMeta> = history.iter().filter_map(|(_, m, _)| m.as_ref()).collect();
    let input_bytes: u64 = ours.iter().map(|m| m.input_bytes).sum();
    let events_info = table_info(&events)?;
    let dead_info = table_info(&dead)?;
    let bytes = events_info.bytes + dead_info.bytes;
    Ok(LakeInfo {
        pipeline: ours.first().map(|m| m.pipeline.clone()),
        commits: ours.len(),
        epochs: ours
            .last()
            .zip(ours.first())
            .map(|(first, last)| (first.first_epoch, last.epoch)),
        compression_ratio: (bytes > 0 && input_bytes > 0)
            .then(|| input_bytes as f64 / bytes as f64),
        input_bytes,
        history: history
            .iter()
            .take(10)
            .map(|(v, meta, op)| match meta {
                Some(m) => serde_json::json!({"version": v, "operation": op,
                    "epochs": [m.first_epoch, m.epoch], "rows": m.rows, "dead_rows": m.dead_rows}),
                None => serde_json::json!({"version": v, "operation": op}),
            })
            .collect(),
        kafka_offsets: ours.first().map(|m| kafka_offsets(m)).unwrap_or_default(),
        events: events_info,
        dead_letters: dead_info,
    })
}

/// The Kafka offsets of a commit by `TOPIC/PARTITION`.
pub fn kafka_offsets(meta: &CommitMeta) -> BTreeMap<String, u64> {
    let topics: Vec<&str> = meta
        .source
        .strip_prefix("kafka:")
        .map(|t| t.split(',').collect())
        .unwrap_or_default();
    crate::source::kafka::resume_offsets(&meta.positions)
        .into_iter()
        .map(|((t, p), offset)| {
            let topic = topics.get(t as usize).copied().unwrap_or("?");
            (format!("{topic}/{p}"), offset)
        })
        .collect()
}

/// What `lake compact` did to one table.
#[derive(Debug, serde::Serialize)]
pub struct Compacted {
    /// The table.
    pub table: String,
    /// Files before and after.
    pub files_before: usize,
    /// See `files_before`.
    pub files_after: usize,
    /// The new version, if a commit was made.
    pub version: Option<u64>,
}

/// Merges the files of every partition that has more than one file smaller than
/// `target_bytes` into one file per partition, and commits that as one version
/// (`OPTIMIZE`, `dataChange = false`): the content is unchanged, older versions still read the
/// old files.
pub fn compact(dir: &Path, target_bytes: u64) -> Result<Vec<Compacted>, LakeError> {
    let _lock = lock(dir)?;
    let rt = table::runtime()?;
    let settings = FileSettings::default();
    let run = run_tag();
    let mut out = Vec::new();
    let mut seq = 0;
    for kind in [TableKind::Events, TableKind::DeadLetters] {
        let mut table = Table::open(&rt, &table_root(dir, kind))?;
        out.push(compact_table(
            &rt,
            &mut table,
            target_bytes,
            2,
            false,
            &settings,
            &run,
            &mut seq,
        )?);
    }
    Ok(out)
}

/// Compacts, as one `OPTIMIZE` commit, the files of `table` smaller than `target_bytes`: per
/// partition, or with `tiered` per partition and size tier (sizes within a factor of 8), each
/// group of at least `at_least` files into one file; `seq` numbers the new files of the process
/// run `run`. Tiers keep compaction while running from rewriting the same bytes over and over:
/// a byte is rewritten about once per tier it climbs, as in a log-structured merge tree.
#[allow(clippy::too_many_arguments)]
pub(crate) fn compact_table(
    rt: &tokio::runtime::Runtime,
    table: &mut Table,
    target_bytes: u64,
    at_least: usize,
    tiered: bool,
    settings: &FileSettings,
    run: &str,
    seq: &mut usize,
) -> Result<Compacted, LakeError> {
    let files = table.files()?;
    let before = files.len();
    let mut groups: BTreeMap<(String, u32), Vec<TableFile>> = BTreeMap::new();
    for f in files.into_iter().filter(|f| f.size < target_bytes) {
        let partition = f.path.rsplit_once('/').map_or("", |(d, _)| d).to_string();
        let tier = if tiered { f.size.max(1).ilog(8) } else { 0 };
        groups.entry((partition, tier)).or_default().push(f);
    }
    let mut actions = Vec::new();
    let mut removed = 0;
    for ((partition, _), group) in groups {
        if group.len() < at_least.max(2) {
            continue;
        }
        // The version the commit below makes: a file named for a version the table has not
        // reached was never committed (a crash came first), whatever the clocks say.
        let version = table.version() + 1;
        let add = merge(
            table.root(),
            &partition,
            &group,
            settings,
            (run, version, *seq),
        )?;
        *seq += 1;
        removed += group.len() - 1;
        actions.extend(Table::remove_actions(&group, false));
        actions.push(Action::Add(add));
    }
    let version = if actions.is_empty() {
        None
    } else {
        Some(table.commit_actions(
            rt,
            actions,
            CommitProperties::default(),
            DeltaOperation::Optimize {
                predicate: None,
                target_size: target_bytes as i64,
            },
        )?)
    };
    Ok(Compacted {
        table: table.root().display().to_string(),
        files_before: before,
        files_after: before - removed,
        version,
    })
}

fn merge(
    root: &Path,
    partition: &str,
    group: &[TableFile],
    settings: &FileSettings,
    (run, version, n): (&str, u64, usize),
) -> Result<deltalake::kernel::Add, LakeError> {
    let (mut first, mut last) = (u64::MAX, 0);
    for f in group {
        let name = f.path.rsplit('/').next().unwrap_or_default();
        if let Some((a, b)) = epochs_of(name) {
            first = first.min(a);
            last = last.max(b);
        }
    }
    let first = if first == u64::MAX { 0 } else { first };
    let codec = settings.codec.name();
    let name = super::writer::compacted_name(first, last, run, version, n, codec);
    let relative = if partition.is_empty() {
        name
    } else {
        format!("{partition}/{name}")
    };
    let tmp = store::staging(root).join(format!("{relative}.inprogress"));
    let target = root.join(&relative);
    if let Some(parent) = tmp.parent() {
        std::fs::create_dir_all(parent).map_err(|e| LakeError::io(parent, e))?;
    }
    // Written with the properties the run writes with, so each column keeps its encoding and
    // the compacted file is no bigger than the files it replaces.
    let mut writer: Option<ArrowWriter<File>> = None;
    for f in group {
        let path = root.join(&f.path);
        let reader = ParquetRecordBatchReaderBuilder::try_new(store::open(&path)?)
            .map_err(|e| LakeError::parquet(&path, e))?
            .with_batch_size(64 * 1024)
            .build()
            .map_err(|e| LakeError::parquet(&path, e))?;
        for batch in reader {
            let batch = batch.map_err(|e| LakeError::parquet(&path, e.into()))?;
            if writer.is_none() {
                let file = File::create(&tmp).map_err(|e| LakeError::io(&tmp, e))?;
                writer = Some(
                    settings
                        .writer(file, batch.schema())
                        .map_err(|e| LakeError::parquet(&tmp, e))?,
                );
            }
            writer
                .as_mut()
                .expect("created above")
                .write(&batch)
                .map_err(|e| LakeError::parquet(&tmp, e))?;
        }
    }
    let Some(writer) = writer else {
        return Err(LakeError::Other(format!("{partition}: nothing to compact")));
    };
    let (file, stats) = super::writer::finish(writer).map_err(|e| LakeError::parquet(&tmp, e))?;
    file.sync_all().map_err(|e| LakeError::io(&tmp, e))?;
    drop(file);
    let size = store::put_file(&tmp, &target)?;
    Ok(deltalake::kernel::Add {
        path: relative,
        partition_values: group[0].partition.clone(),
        size: size as i64,
        modification_time: now_millis(),
        data_change: false,
        stats: Some(stats),
        ..Default::default()
    })
}

/// What `lake vacuum` removed.
#[derive(Debug, serde::Serialize)]
pub struct Vacuumed {
    /// Uncommitted files (crash leftovers and files in progress).
    pub uncommitted: Vec<String>,
    /// Files no longer in the latest version and older than the retention period.
    pub expired: Vec<String>,
}

/// Removes files that no commit references, and files removed from the table (by compaction)
/// longer ago than `retain`; with `dry_run`, only lists them.
pub fn vacuum(
    dir: &Path,
    retain: std::time::Duration,
    dry_run: bool,
    force: bool,
) -> Result<Vacuumed, LakeError> {
    let _lock = lock(dir)?;
    let rt = table::runtime()?;
    let events = Table::open(&rt, &table_root(dir, TableKind::Events))?;
    let last_epoch = events.last_commit(&rt)?.map(|m| m.epoch);
    let tables = [TableKind::Events, TableKind::DeadLetters]
        .into_iter()
        .map(|kind| Table::open(&rt, &table_root(dir, kind)))
        .collect::<Result<Vec<_>, _>>()?;
    // Delta's `retentionDurationCheck`: a shorter retention deletes files that versions still
    // inside the table's own retention need.
    for table in &tables {
        let snapshot = table.inner().snapshot().map_err(|e| LakeError::Delta {
            table: table.root().display().to_string(),
            message: e.to_string(),
        })?;
        let minimum = snapshot.table_config().deleted_file_retention_duration();
        if retain < minimum && !force {
            return Err(LakeError::Refused(format!(
                "a retention of {} is under the {} the table {} keeps removed files for \
                 (delta.deletedFileRetentionDuration): time travel to the versions in between \
                 would fail; give --force to vacuum anyway",
                humantime::format_duration(retain),
                humantime::format_duration(minimum),
                table.root().display()
            )));
        }
    }
    let mut uncommitted = Vec::new();
    let mut expired = Vec::new();
    for table in &tables {
        for path in orphans(table, last_epoch)? {
            if !dry_run {
                store::delete(&path)?;
            }
            uncommitted.push(path.display().to_string());
        }
        let retention = chrono::Duration::from_std(retain)
            .map_err(|e| LakeError::Other(format!("retention {retain:?}: {e}")))?;
        let vacuum = |dry_run: bool| {
            let vacuum = table
                .inner()
                .clone()
                .vacuum()
                .with_retention_period(retention)
                .with_enforce_retention_duration(false)
                .with_dry_run(dry_run);
            rt.block_on(vacuum.into_future())
                .map(|(_, metrics)| metrics.files_deleted)
                .map_err(|e| LakeError::Delta {
                    table: table.root().display().to_string(),
                    message: e.to_string(),
                })
        };
        // deltalake lists every expired file the log names, deleted already or not: what this
        // vacuum deletes are those still on the disk.
        let present: Vec<String> = vacuum(true)?
            .into_iter()
            .filter(|path| {
                let path = Path::new(path);
                let location = if path.is_absolute() || store::is_remote(path) {
                    path.to_path_buf()
                } else {
                    table.root().join(path)
                };
                store::exists(&location).unwrap_or(false)
            })
            .collect();
        if !dry_run && !present.is_empty() {
            vacuum(false)?;
        }
        expired.extend(present);
    }
    Ok(Vacuumed {
        uncommitted,
        expired,
    })
}
