//! The two Delta tables of a data directory, through the `deltalake` crate: creating them,
//! committing files with a `txn` action and the source positions, reading the last commit back,
//! and cleaning up after a crash.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use arrow_schema::{DataType as ArrowType, Field as ArrowField};
use deltalake::DeltaTable;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Add, DataType, Remove, StructField, Transaction};
use deltalake::protocol::{DeltaOperation, OutputMode, SaveMode};
use deltalake::table::config::TablePropertiesExt;
use serde::{Deserialize, Serialize};

use super::LakeError;
use super::layout::Layout;
use super::store;
use super::writer::{DataFile, TableKind};
use crate::event::Position;

mod cleanup;
mod message;

use cleanup::cleanup_log;
pub use cleanup::orphans;
pub use message::plain_message;

/// The events table's directory under the data directory.
pub const EVENTS_DIR: &str = "events";
/// The dead-letter table's directory under the data directory.
pub const DEAD_DIR: &str = "dead_letters";
/// lambdaflow's own files (view snapshots, the lock) under the data directory.
pub const STATE_DIR: &str = "_lambdaflow";
/// The key of lambdaflow's entry in a commit's `commitInfo`.
pub const COMMIT_KEY: &str = "lambdaflow";

/// What a commit records besides its files: the epochs it closes and where every source stood.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommitMeta {
    /// The pipeline id (the `txn` application id).
    pub pipeline: String,
    /// The first epoch of the range.
    pub first_epoch: u64,
    /// The last epoch of the range (the `txn` version).
    pub epoch: u64,
    /// The source, as given (`generate`, `file:...`, `stdin`).
    pub source: String,
    /// The generator's identity, when the source is the generator: `(seed, start_micros,
    /// bad_fraction)`.
    pub generator: Option<(u64, i64, f64)>,
    /// Per worker: where each of its sources stood at the end of `epoch`.
    pub positions: Vec<Vec<Position>>,
    /// Event rows in this commit.
    pub rows: u64,
    /// Dead-letter rows in this commit.
    pub dead_rows: u64,
    /// Bytes of raw input behind the rows of this commit.
    pub input_bytes: u64,
}

/// A data file of a table version.
#[derive(Clone, Debug)]
pub struct TableFile {
    /// The path relative to the table root.
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// Rows, from the file's statistics.
    pub rows: Option<u64>,
    /// Partition values.
    pub partition: HashMap<String, Option<String>>,
    /// Its Delta statistics (JSON), as its `add` action carries them.
    pub stats: Option<String>,
}

/// A blocking handle on one Delta table.
pub struct Table {
    root: PathBuf,
    table: DeltaTable,
}

/// The runtime the `deltalake` futures run on (a current-thread one: the callers block). A
/// multi-thread runtime with a capped blocking pool was tried to bound the threads the Delta
/// kernel starts at a checkpoint, and was left out: a repair test hung once under load.
pub fn runtime() -> Result<tokio::runtime::Runtime, LakeError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| LakeError::Other(format!("starting the I/O runtime: {e}")))
}

fn delta(root: &Path, e: deltalake::DeltaTableError) -> LakeError {
    LakeError::Delta {
        table: root.display().to_string(),
        message: plain_message(&e.to_string()),
    }
}

/// The Delta type of a lake column.
fn delta_type(ty: &ArrowType) -> DataType {
    match ty {
        ArrowType::Utf8 => DataType::STRING,
        ArrowType::Int64 => DataType::LONG,
        ArrowType::Float64 => DataType::DOUBLE,
        ArrowType::Boolean => DataType::BOOLEAN,
        ArrowType::Binary => DataType::BINARY,
        ArrowType::Date32 => DataType::DATE,
        ArrowType::Timestamp(..) => DataType::TIMESTAMP,
        ArrowType::Decimal128(p, s) => DataType::decimal(*p, *s as u8).unwrap_or(DataType::STRING),
        other => unreachable!("lake columns never have type {other}"),
    }
}

/// The columns of a table created with `fields`, partitioned by `partitions`, as
/// [`Table::columns`] would read them back.
pub fn columns_of(fields: &[ArrowField], partitions: &[&str]) -> Vec<super::check::TableColumn> {
    fields
        .iter()
        .map(|f| super::check::TableColumn {
            name: f.name().clone(),
            ty: delta_type(f.data_type()),
            nullable: f.is_nullable(),
            partition: partitions.contains(&f.name().as_str()),
        })
        .collect()
}

fn struct_fields(fields: &[ArrowField]) -> Vec<StructField> {
    fields
        .iter()
        .map(|f| StructField::new(f.name(), delta_type(f.data_type()), f.is_nullable()))
        .collect()
}

impl Table {
    /// Opens the table at `root`, which must exist.
    pub fn open(rt: &tokio::runtime::Runtime, root: &Path) -> Result<Table, LakeError> {
        Self::open_version(rt, root, None)
    }

    /// Opens the table at `root` as of `version` (the latest when `None`).
    pub fn open_version(
        rt: &tokio::runtime::Runtime,
        root: &Path,
        version: Option<u64>,
    ) -> Result<Table, LakeError> {
        if !has_log(root)? {
            return Err(LakeError::NotALake(root.display().to_string()));
        }
        let mut table = store::table(root)?;
        let table = rt
            .block_on(async {
                match version {
                    Some(v) => table.load_version(v).await?,
                    None => table.load().await?,
                }
                Ok::<_, deltalake::DeltaTableError>(table)
            })
            .map_err(|e| match (delta(root, e), version) {
                (LakeError::Delta { table, message }, None) => LakeError::Delta {
                    table,
                    message: format!(
                        "{message} (if an earlier build committed what readers refuse, \
                         `lambdaflow lake repair` moves the table back to its newest readable \
                         version)"
                    ),
                },
                (e, _) => e,
            })?;
        Ok(Table {
            root: root.to_path_buf(),
            table,
        })
    }

    /// Opens the table at `root`, creating it with `fields` (partitioned by `partitions`) if it
    /// does not exist, and adding the fields it lacks (additive schema evolution: they must be
    /// nullable).
    pub fn open_or_create(
        rt: &tokio::runtime::Runtime,
        root: &Path,
        name: &str,
        fields: &[ArrowField],
        partitions: &[&str],
    ) -> Result<Table, LakeError> {
        if !has_log(root)? {
            if !store::is_remote(root) {
                std::fs::create_dir_all(root).map_err(|e| LakeError::io(root, e))?;
            }
            let table = store::table(root)?;
            let created = rt.block_on(async {
                table
                    .create()
                    .with_table_name(name)
                    .with_columns(struct_fields(fields))
                    .with_partition_columns(partitions.iter().map(|p| p.to_string()))
                    .with_save_mode(SaveMode::Ignore)
                    .await
            });
            created.map_err(|e| delta(root, e))?;
        }
        let mut table = Self::open(rt, root)?;
        table.evolve(rt, fields, partitions)?;
        Ok(table)
    }

    /// Sets `delta.logRetentionDuration` (how long the log keeps versions for time travel;
    /// Delta's default is 30 days) unless the table has it already.
    pub fn set_log_retention(
        &mut self,
        rt: &tokio::runtime::Runtime,
        retention: std::time::Duration,
    ) -> Result<(), LakeError> {
        let snapshot = self.table.snapshot().map_err(|e| delta(&self.root, e))?;
        if snapshot.table_config().log_retention_duration() == retention {
            return Ok(());
        }
        let properties = HashMap::from([(
            "delta.logRetentionDuration".to_string(),
            format!("interval {} seconds", retention.as_secs().max(1)),
        )]);
        let table = self.table.clone();
        self.table = rt
            .block_on(
                table
                    .set_tbl_properties()
                    .with_properties(properties)
                    .into_future(),
            )
            .map_err(|e| delta(&self.root, e))?;
        Ok(())
    }

    fn evolve(
        &mut self,
        rt: &tokio::runtime::Runtime,
        fields: &[ArrowField],
        partitions: &[&str],
    ) -> Result<(), LakeError> {
        let snapshot = self.table.snapshot().map_err(|e| delta(&self.root, e))?;
        let existing = snapshot.schema();
        let have: Vec<String> = snapshot.metadata().partition_columns().to_vec();
        if have
            .iter()
            .map(String::as_str)
            .ne(partitions.iter().copied())
        {
            return Err(LakeError::Schema(format!(
                "the table at {} is partitioned by {:?}, the config's schema by {:?}",
                self.root.display(),
                have,
                partitions
            )));
        }
        let mut added = Vec::new();
        for field in struct_fields(fields) {
            match existing.field(field.name()) {
                Some(old) if old.data_type() == field.data_type() => {}
                Some(old) => {
                    return Err(LakeError::Schema(format!(
                        "field `{}` is {} in the table at {} but {} in the config; only new \
                         optional fields can be added",
                        field.name(),
                        old.data_type(),
                        self.root.display(),
                        field.data_type()
                    )));
                }
                None if !field.is_nullable() => {
                    return Err(LakeError::Schema(format!(
                        "new field `{}` is required; a field added to an existing lake must be \
                         optional (old rows have no value for it)",
                        field.name()
                    )));
                }
                None => added.push(StructField::new(
                    field.name(),
                    field.data_type().clone(),
                    true,
                )),
            }
        }
        let wanted: BTreeSet<&str> = fields.iter().map(|f| f.name().as_str()).collect();
        if let Some(missing) = existing
            .fields()
            .find(|f| !wanted.contains(f.name().as_str()))
        {
            return Err(LakeError::Schema(format!(
                "the table at {} has column `{}`, which the config's schema lacks; fields can be \
                 added, not removed",
                self.root.display(),
                missing.name()
            )));
        }
        if !added.is_empty() {
            let table = self.table.clone();
            self.table = rt
                .block_on(table.add_columns().with_fields(added).into_future())
                .map_err(|e| delta(&self.root, e))?;
        }
        Ok(())
    }

    /// The table version.
    pub fn version(&self) -> u64 {
        self.table.version().unwrap_or(0)
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The table's columns, as its schema declares them.
    pub fn columns(&self) -> Result<Vec<super::check::TableColumn>, LakeError> {
        let snapshot = self.table.snapshot().map_err(|e| delta(&self.root, e))?;
        let partitions = snapshot.metadata().partition_columns().to_vec();
        Ok(snapshot
            .schema()
            .fields()
            .map(|f| super::check::TableColumn {
                name: f.name().to_string(),
                ty: f.data_type().clone(),
                nullable: f.is_nullable(),
                partition: partitions.contains(f.name()),
            })
            .collect())
    }

    /// Checks `files` against the table's schema ([`super::check`]): a commit of them cannot
    /// make the table unreadable.
    pub fn check(&self, files: &[DataFile]) -> Result<(), LakeError> {
        let columns = self.columns()?;
        for f in files {
            super::check::check_file(
                &self.root,
                &columns,
                &f.path,
                Some(f.size),
                Some(f.rows),
                &f.partition,
            )
            .map_err(|why| {
                LakeError::Refused(format!(
                    "commit refused, nothing was committed: Delta table {}: {why}",
                    self.root.display()
                ))
            })?;
        }
        Ok(())
    }

    /// Checks every active file of this version as [`Table::check`] checks a commit's: whether
    /// every reader can read the table as of this version. The error names the first file
    /// that fails, and why.
    pub fn check_active(&self) -> Result<(), String> {
        let columns = self.columns().map_err(|e| e.to_string())?;
        let partitions: Vec<&str> = columns
            .iter()
            .filter(|c| c.partition)
            .map(|c| c.name.as_str())
            .collect();
        for f in self.files().map_err(|e| e.to_string())? {
            let values: Vec<(String, Option<String>)> = partitions
                .iter()
                .map(|&p| (p.to_string(), f.partition.get(p).cloned().flatten()))
                .collect();
            super::check::check_file(&self.root, &columns, &f.path, Some(f.size), f.rows, &values)?;
        }
        Ok(())
    }

    /// Fails, naming one of them, if any of `files` (this version's) is gone from the disk: a
    /// vacuum with a short retention deletes what only older versions hold.
    pub fn check_present(&self, files: &[TableFile]) -> Result<(), LakeError> {
        let gone: Vec<&TableFile> = files
            .iter()
            .filter(|f| !store::exists(&self.root.join(&f.path)).unwrap_or(false))
            .collect();
        match gone.first() {
            None => Ok(()),
            Some(first) => Err(LakeError::Other(format!(
                "version {} of {} cannot be read: {} of its {} data files are gone, {} among them \
                 (`lake vacuum` deletes the files only older versions hold once they are older \
                 than its retention)",
                self.version(),
                self.root.display(),
                gone.len(),
                files.len(),
                first.path
            ))),
        }
    }

    /// The table's active files.
    pub fn files(&self) -> Result<Vec<TableFile>, LakeError> {
        let snapshot = self.table.snapshot().map_err(|e| delta(&self.root, e))?;
        let mut out: Vec<TableFile> = snapshot
            .log_data()
            .into_iter()
            .map(|f| TableFile {
                path: f.path().into_owned(),
                size: f.size() as u64,
                rows: f.num_records().map(|n| n as u64),
                partition: f.partition_values_map(),
                stats: f.stats(),
            })
            .collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// lambdaflow's entries of the commits, newest first from the version loaded (not the
    /// table's latest), with their versions and operations; at most `limit` of them, and none
    /// older than the log's cleanup left.
    pub fn history(
        &self,
        rt: &tokio::runtime::Runtime,
        limit: Option<usize>,
    ) -> Result<Vec<(u64, Option<CommitMeta>, String)>, LakeError> {
        let store = self.table.log_store();
        let mut out = Vec::new();
        for version in (0..=self.version()).rev() {
            if limit.is_some_and(|l| out.len() >= l) {
                break;
            }
            let entry = rt
                .block_on(store.read_commit_entry(version))
                .map_err(|e| delta(&self.root, e))?;
            // Cleaned up, and every older one with it.
            let Some(bytes) = entry else { break };
            let (meta, operation) = commit_entry(&bytes);
            out.push((version, meta, operation));
        }
        Ok(out)
    }

    /// The newest commit that carries lambdaflow's metadata.
    pub fn last_commit(
        &self,
        rt: &tokio::runtime::Runtime,
    ) -> Result<Option<CommitMeta>, LakeError> {
        for limit in [Some(64), None] {
            let history = self.history(rt, limit)?;
            if let Some(meta) = history.iter().find_map(|(_, m, _)| m.clone()) {
                return Ok(Some(meta));
            }
            if limit.is_some_and(|l| history.len() < l) {
                break;
            }
        }
        Ok(None)
    }

    /// Commits `files` as one version with a `txn` action `(app_id, epoch)` and `meta` in the
    /// commit info. Returns the new version.
    pub fn commit(
        &mut self,
        rt: &tokio::runtime::Runtime,
        files: &[DataFile],
        meta: &CommitMeta,
    ) -> Result<u64, LakeError> {
        let actions = files
            .iter()
            .map(|f| {
                Action::Add(Add {
                    path: f.path.clone(),
                    partition_values: f.partition.iter().cloned().collect(),
                    size: f.size as i64,
                    modification_time: f.modified,
                    data_change: true,
                    stats: Some(f.stats.clone()),
                    ..Default::default()
                })
            })
            .collect();
        let properties = CommitProperties::default()
            .with_application_transaction(Transaction::new(&meta.pipeline, meta.epoch as i64))
            .with_metadata([(
                COMMIT_KEY.to_string(),
                serde_json::to_value(meta).expect("commit metadata serializes"),
            )]);
        let operation = DeltaOperation::StreamingUpdate {
            output_mode: OutputMode::Append,
            query_id: meta.pipeline.clone(),
            epoch_id: meta.epoch as i64,
        };
        self.commit_actions(rt, actions, properties, operation)
    }

    /// Commits `actions` as one version.
    pub fn commit_actions(
        &mut self,
        rt: &tokio::runtime::Runtime,
        actions: Vec<Action>,
        properties: CommitProperties,
        operation: DeltaOperation,
    ) -> Result<u64, LakeError> {
        let root = self.root.clone();
        let table = &mut self.table;
        // Expired log files are looked for at checkpoints, below, not after every commit:
        // deltalake lists the whole log each time it looks.
        let properties = properties.with_cleanup_expired_logs(Some(false));
        let (version, reload) = rt
            .block_on(async {
                let snapshot = table.snapshot()?;
                let interval = snapshot.table_config().checkpoint_interval().get();
                let done = CommitBuilder::from(properties)
                    .with_actions(actions)
                    .build(Some(snapshot), table.log_store(), operation)
                    .await?;
                let version = done.version();
                if (version + 1).is_multiple_of(interval) {
                    // deltalake has just written a checkpoint of this version. The log before
                    // it goes once older than `delta.logRetentionDuration`, and the table is
                    // loaded from the checkpoint: the state read commit by commit since the
                    // last one is let go. The log is cleaned here, not by deltalake's
                    // `cleanup_metadata`: with that, the resident size grew by about 1 MB a
                    // second at 10 commits a second (docs/robustness.md).
                    let retention = table.snapshot()?.table_config().log_retention_duration();
                    cleanup_log(&root, retention);
                    return Ok((version, true));
                }
                // The commit's own new state: loading it again would read the log twice.
                table.state = Some(done.snapshot());
                Ok::<_, deltalake::DeltaTableError>((version, false))
            })
            .map_err(|e| delta(&root, e))?;
        if reload {
            let mut fresh = store::table(&root)?;
            rt.block_on(fresh.load_version(version))
                .map_err(|e| delta(&root, e))?;
            self.table = fresh;
        }
        Ok(version)
    }

    /// Removes `paths` from the table as one version (`data_change` says whether rows go away).
    pub fn remove_actions(paths: &[TableFile], data_change: bool) -> Vec<Action> {
        let now = super::writer::now_millis();
        paths
            .iter()
            .map(|f| {
                Action::Remove(Remove {
                    path: f.path.clone(),
                    data_change,
                    deletion_timestamp: Some(now),
                    extended_file_metadata: Some(true),
                    partition_values: Some(f.partition.clone()),
                    size: Some(f.size as i64),
                    ..Default::default()
                })
            })
            .collect()
    }

    /// The inner `deltalake` table.
    pub fn inner(&self) -> &DeltaTable {
        &self.table
    }
}

/// The table of `kind` under `data_dir`.
pub fn table_root(data_dir: &Path, kind: TableKind) -> PathBuf {
    data_dir.join(match kind {
        TableKind::Events => EVENTS_DIR,
        TableKind::DeadLetters => DEAD_DIR,
    })
}

/// The Arrow fields of the dead-letter table.
pub fn dead_fields(layout: &Layout) -> Vec<ArrowField> {
    layout
        .dead_schema()
        .fields()
        .iter()
        .map(|f| (**f).clone())
        .collect()
}

/// Whether a Delta log is at `root`: its `_delta_log` directory on a local disk, any object
/// under that prefix on an object store.
fn has_log(root: &Path) -> Result<bool, LakeError> {
    if store::is_remote(root) {
        store::holds_any(&root.join("_delta_log"))
    } else {
        Ok(root.join("_delta_log").is_dir())
    }
}

/// The lambdaflow metadata and the operation in a commit file's `commitInfo`.
fn commit_entry(bytes: &[u8]) -> (Option<CommitMeta>, String) {
    let text = String::from_utf8_lossy(bytes);
    for line in text.lines() {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if let Some(info) = value.get("commitInfo") {
            let meta = info
                .get(COMMIT_KEY)
                .and_then(|m| serde_json::from_value(m.clone()).ok());
            let operation = info
                .get("operation")
                .and_then(|o| o.as_str())
                .unwrap_or_default()
                .to_owned();
            return (meta, operation);
        }
    }
    (None, String::new())
}
