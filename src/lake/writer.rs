//! One worker's Parquet files: closed epochs are appended to an open file per partition, files
//! roll at a size limit, and at a commit boundary every open file is finished and handed over
//! to the commit.
//!
//! A file is written as `.wWORKER-RUN.parquet.inprogress` (hidden, and without the `.parquet`
//! suffix) and renamed to `part-EFIRST-ELAST-wWORKER-RUN-N.CODEC.parquet` once its footer is on
//! disk, so a glob reader never sees half a file: the epochs it holds, the worker, a tag of the
//! process run and a counter. A finished file is part of the table only once a commit references it; a file
//! whose last epoch is past the last commit is an orphan of a crash, removed at the next start.

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, SchemaRef};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use serde::{Deserialize, Serialize};

use super::LakeError;
use super::layout::Partition;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::ArrowWriterOptions;

/// Which table a file belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TableKind {
    /// The events table.
    Events,
    /// The dead-letter table.
    DeadLetters,
}

/// A finished data file, ready to be committed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DataFile {
    /// Its table.
    pub table: TableKind,
    /// Its path relative to the table root, with `/` separators.
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// Rows.
    pub rows: u64,
    /// Partition values, `(column, value)`.
    pub partition: Vec<(String, Option<String>)>,
    /// Milliseconds since the Unix epoch when it was finished.
    pub modified: i64,
    /// Its statistics as the Delta `add` action carries them (`numRecords`, `minValues`,
    /// `maxValues`, `nullCount`).
    pub stats: String,
}

/// Size limits and encoding of data files.
#[derive(Clone, Debug)]
pub struct FileSettings {
    /// A file is finished once it holds this many rows.
    pub max_rows: usize,
    /// Rows per Parquet row group.
    pub row_group_rows: usize,
    /// How pages are compressed.
    pub codec: Codec,
}

/// The compression of Parquet pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    /// Snappy, as Spark and Delta Lake write by default: the fastest to write (the lake about
    /// 13x smaller than the JSON in `lambdaflow bench`).
    Snappy,
    /// ZSTD at a level from 1 to 22: at level 3 about 2.2x smaller than Snappy, and about a
    /// sixth less throughput in `lambdaflow bench`.
    Zstd(i32),
}

impl Codec {
    /// Its name in file names and the config: `snappy`, `zstd`.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Snappy => "snappy",
            Codec::Zstd(_) => "zstd",
        }
    }

    fn parquet(self) -> Compression {
        match self {
            Codec::Snappy => Compression::SNAPPY,
            Codec::Zstd(level) => Compression::ZSTD(ZstdLevel::try_new(level).unwrap_or_default()),
        }
    }
}

impl Default for FileSettings {
    fn default() -> Self {
        FileSettings {
            max_rows: 4_000_000,
            row_group_rows: 1 << 20,
            codec: Codec::Snappy,
        }
    }
}

/// The size a data page is closed at.
const DATA_PAGE_BYTES: usize = 64 << 10;

impl FileSettings {
    /// The Parquet writer properties of data files of `schema`, for the `parquet` crate's
    /// `ArrowWriter`: the codec; dictionary encoding for strings (the crate falls back to plain
    /// pages once a chunk's dictionary passes 1 MiB); front coding (`DELTA_BYTE_ARRAY`) for ids,
    /// the string columns named `id` or `*_id`, whose values share their start with the value
    /// before and seldom repeat; `DELTA_BINARY_PACKED` for integers and times, which grow by small
    /// steps; data pages of at most 64 KiB (the page being encoded and compressed stays in the
    /// CPU's cache); min/max statistics per column chunk (strings cut to 64 bytes), from which
    /// the Delta statistics are made (see [`super::stats`]).
    ///
    /// This replaced lambdaflow's own encoder, measured side by side (README, "The encoder
    /// question"): the crate's files were 18% smaller at 7% less throughput.
    pub fn properties(&self, schema: &arrow_schema::Schema) -> WriterProperties {
        let mut builder = WriterProperties::builder()
            .set_compression(self.codec.parquet())
            .set_max_row_group_row_count(Some(self.row_group_rows.max(1)))
            .set_data_page_size_limit(DATA_PAGE_BYTES)
            .set_dictionary_enabled(true)
            .set_statistics_enabled(EnabledStatistics::Chunk)
            .set_created_by(CREATED_BY.to_owned());
        for field in schema.fields() {
            let column = ColumnPath::from(field.name().as_str());
            let name = field.name().as_str();
            match field.data_type() {
                DataType::Int64 | DataType::Timestamp(..) => {
                    builder = builder
                        .set_column_dictionary_enabled(column.clone(), false)
                        .set_column_encoding(column, Encoding::DELTA_BINARY_PACKED);
                }
                DataType::Utf8 | DataType::Dictionary(..)
                    if name == "id" || name.ends_with("_id") =>
                {
                    builder = builder
                        .set_column_dictionary_enabled(column.clone(), false)
                        .set_column_encoding(column, Encoding::DELTA_BYTE_ARRAY);
                }
                _ => {}
            }
        }
        builder.build()
    }

    /// A Parquet writer of data files into `sink`, for batches of `schema` (strings as strings,
    /// or as dictionaries of strings, which are written as strings). The files carry no Arrow
    /// schema: every reader maps their columns from the Parquet types.
    pub fn writer<W: std::io::Write + Send>(
        &self,
        sink: W,
        schema: SchemaRef,
    ) -> parquet::errors::Result<ArrowWriter<W>> {
        let options = ArrowWriterOptions::new()
            .with_properties(self.properties(&schema))
            .with_skip_arrow_metadata(true);
        ArrowWriter::try_new_with_options(sink, schema, options)
    }
}

/// Writes `writer`'s last row group and footer; returns the sink and the file's Delta
/// statistics ([`super::stats::delta_stats`]).
pub fn finish<W: std::io::Write + Send>(
    mut writer: ArrowWriter<W>,
) -> parquet::errors::Result<(W, String)> {
    writer.flush()?;
    let stats = super::stats::delta_stats(writer.flushed_row_groups());
    Ok((writer.into_inner()?, stats))
}

/// The `created_by` of every Parquet file lambdaflow writes, in the form readers parse
/// (`<app> version <semver> (build <hash>)`): parquet-mr distrusts the `DELTA_BYTE_ARRAY` pages
/// and the statistics of a file whose writer it cannot name.
pub const CREATED_BY: &str = concat!(
    "lambdaflow version ",
    env!("CARGO_PKG_VERSION"),
    " (build ",
    env!("LAMBDAFLOW_BUILD"),
    ")"
);

struct OpenFile {
    writer: ArrowWriter<File>,
    partition: Vec<(String, Option<String>)>,
    dir: String,
    first: u64,
    last: u64,
    rows: usize,
}

/// One table's open files on one worker.
pub struct TableWriter {
    kind: TableKind,
    root: PathBuf,
    worker: usize,
    run: String,
    settings: FileSettings,
    open: HashMap<String, OpenFile>,
    counter: u64,
}

impl TableWriter {
    /// Files of `kind` under `root`, written by `worker` in the process run tagged `run`.
    pub fn new(
        kind: TableKind,
        root: PathBuf,
        worker: usize,
        run: String,
        settings: FileSettings,
    ) -> Self {
        TableWriter {
            kind,
            root,
            worker,
            run,
            settings,
            open: HashMap::new(),
            counter: 0,
        }
    }

    /// Appends the rows of closed `epoch` to the partition's open file; a file that reaches the
    /// row limit is finished into `done`.
    pub fn write(
        &mut self,
        partition: &Partition,
        batch: &RecordBatch,
        epoch: u64,
        done: &mut Vec<DataFile>,
    ) -> Result<(), LakeError> {
        if !self.open.contains_key(&partition.dir) {
            let dir = super::store::staging(&self.root).join(&partition.dir);
            std::fs::create_dir_all(&dir).map_err(|e| LakeError::io(&dir, e))?;
            let path = self.in_progress(&partition.dir);
            let file = File::create(&path).map_err(|e| LakeError::io(&path, e))?;
            let writer = self
                .settings
                .writer(file, batch.schema())
                .map_err(|e| LakeError::parquet(&path, e))?;
            self.open.insert(
                partition.dir.clone(),
                OpenFile {
                    writer,
                    partition: partition.values.clone(),
                    dir: partition.dir.clone(),
                    first: epoch,
                    last: epoch,
                    rows: 0,
                },
            );
        }
        let path = self.in_progress(&partition.dir);
        let open = self.open.get_mut(&partition.dir).expect("opened above");
        open.writer
            .write(batch)
            .map_err(|e| LakeError::parquet(&path, e))?;
        open.last = epoch;
        open.rows += batch.num_rows();
        if open.rows >= self.settings.max_rows {
            let open = self.open.remove(&partition.dir).expect("present");
            done.push(self.finish(open)?);
        }
        Ok(())
    }

    /// Finishes every open file into `done`.
    pub fn finish_all(&mut self, done: &mut Vec<DataFile>) -> Result<(), LakeError> {
        let mut open: Vec<OpenFile> = self.open.drain().map(|(_, f)| f).collect();
        open.sort_by(|a, b| a.dir.cmp(&b.dir));
        for file in open {
            done.push(self.finish(file)?);
        }
        Ok(())
    }

    /// Where the open file of partition directory `dir` is written (named as
    /// [`in_progress_worker`] reads).
    fn in_progress(&self, dir: &str) -> PathBuf {
        let tag = match self.kind {
            TableKind::Events => "",
            TableKind::DeadLetters => "dead-",
        };
        super::store::staging(&self.root).join(dir).join(format!(
            ".{tag}w{:03}-{}.parquet.inprogress",
            self.worker, self.run
        ))
    }

    fn finish(&mut self, open: OpenFile) -> Result<DataFile, LakeError> {
        let from = self.in_progress(&open.dir);
        let (file, stats) = finish(open.writer).map_err(|e| LakeError::parquet(&from, e))?;
        // Not synced here: the commit thread syncs every file (and its directory) before the
        // commit that references it, off the workers' path. On an object store, the file is
        // uploaded here, whole.
        drop(file);
        self.counter += 1;
        let name = file_name(
            open.first,
            open.last,
            self.worker,
            &self.run,
            self.counter,
            self.settings.codec,
        );
        let relative = if open.dir.is_empty() {
            name
        } else {
            format!("{}/{name}", open.dir)
        };
        let to = self.root.join(&relative);
        let size = super::store::put_file(&from, &to)?;
        Ok(DataFile {
            table: self.kind,
            path: relative,
            size,
            rows: open.rows as u64,
            partition: open.partition,
            modified: now_millis(),
            stats,
        })
    }
}

/// The worker that writes a file in progress, from its name: `.wWORKER-RUN.parquet.inprogress`
/// or `.dead-wWORKER-...`.
pub fn in_progress_worker(name: &str) -> Option<usize> {
    let rest = name.strip_suffix(".inprogress")?.strip_prefix('.')?;
    let rest = rest
        .strip_prefix("dead-")
        .unwrap_or(rest)
        .strip_prefix('w')?;
    rest.split('-').next()?.parse().ok()
}

/// A compacted file: `part-EFIRST-ELAST-compact-RUN-vVERSION-N.CODEC.parquet`, where VERSION is
/// the table version whose commit adds it.
pub fn compacted_name(
    first: u64,
    last: u64,
    run: &str,
    version: u64,
    n: usize,
    codec: &str,
) -> String {
    format!("part-e{first:012}-e{last:012}-compact-{run}-v{version}-{n:05}.{codec}.parquet")
}

/// The table version a compacted file was written for, if its name says (files of earlier
/// builds do not).
pub fn compacted_for(name: &str) -> Option<u64> {
    let (_, rest) = name.split_once("-compact-")?;
    rest.split(['-', '.'])
        .find_map(|part| part.strip_prefix('v')?.parse().ok())
}

/// `part-EFIRST-ELAST-wWORKER-RUN-N.CODEC.parquet`.
pub fn file_name(first: u64, last: u64, worker: usize, run: &str, n: u64, codec: Codec) -> String {
    let codec = codec.name();
    format!("part-e{first:012}-e{last:012}-w{worker:03}-{run}-{n:05}.{codec}.parquet")
}

/// The epochs a data file's name says it holds.
pub fn epochs_of(name: &str) -> Option<(u64, u64)> {
    let rest = name.strip_prefix("part-e")?;
    let (first, rest) = rest.split_once("-e")?;
    let last = rest.get(..12)?;
    Some((first.parse().ok()?, last.parse().ok()?))
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A tag telling the files of one process run apart from another's.
pub fn run_tag() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let h = xxhash_rust::xxh3::xxh3_64(format!("{nanos}-{}", std::process::id()).as_bytes());
    format!("{:08x}", h as u32)
}
