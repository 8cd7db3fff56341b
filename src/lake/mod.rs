//! The batch layer: every closed epoch goes to Parquet files that a Delta Lake commit makes
//! visible, exactly once, and the committed lake is read back into the views.
//!
//! A data directory holds two Delta tables, `events/` and `dead_letters/`, and lambdaflow's
//! own `_lambdaflow/` (view snapshots and a lock). Commits are cut at deterministic epoch
//! boundaries (every [`LakeConfig::commit_every`] epochs, and at shutdown) so that every worker
//! finishes its files for the same range; worker 0 commits them all as one Delta version with a
//! `txn` action (application id = pipeline id, version = last epoch) and, in the commit info,
//! where every source stood. On start the last commit says where to resume; files no commit
//! references are removed; the committed rows are replayed into the views.

pub mod check;
pub mod dataflow;
pub mod layout;
pub mod ops;
pub mod repair;
pub mod replay;
pub mod stats;
pub mod store;
pub mod table;
pub mod writer;

use std::path::{Path, PathBuf};

pub use layout::Layout;
pub use table::{CommitMeta, Table, TableFile};
pub use writer::{DataFile, FileSettings, TableKind};

/// Something went wrong with the lake.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    /// A file system operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// Writing or reading Parquet failed.
    #[error("{path}: {message}")]
    Parquet {
        /// The file.
        path: String,
        /// What failed.
        message: String,
    },
    /// A Delta table operation failed.
    #[error("Delta table {table}: {message}")]
    Delta {
        /// The table's directory.
        table: String,
        /// What failed.
        message: String,
    },
    /// The directory holds no lake.
    #[error("{0} is not a lambdaflow lake (no Delta log there)")]
    NotALake(String),
    /// The config's schema does not fit the table.
    #[error("{0}")]
    Schema(String),
    /// This run cannot resume the lake's last commit.
    #[error("{0}")]
    Resume(String),
    /// A commit's files failed the check against the table's schema, and were not committed.
    #[error("{0}")]
    Refused(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

impl LakeError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        LakeError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    /// A Parquet error on `path`.
    pub fn parquet(path: &Path, e: parquet::errors::ParquetError) -> Self {
        LakeError::Parquet {
            path: path.display().to_string(),
            message: e.to_string(),
        }
    }
}

/// Where and how a pipeline writes its lake.
#[derive(Clone, Debug)]
pub struct LakeConfig {
    /// The data directory.
    pub dir: PathBuf,
    /// A commit every this many epochs (and at shutdown).
    pub commit_every: u64,
    /// Data file limits and encoding.
    pub files: FileSettings,
    /// How long the Delta log keeps versions (`delta.logRetentionDuration`); Delta's default
    /// of 30 days when `None`.
    pub log_retention: Option<std::time::Duration>,
    /// Compaction while running: a size tier of a partition of the events table is compacted
    /// once it holds this many files smaller than [`COMPACT_TARGET_BYTES`] (0: never; the
    /// default is [`COMPACT_FILES`]).
    pub compact_files: usize,
}

/// Files smaller than this are compacted, by `lake compact` and while running.
pub const COMPACT_TARGET_BYTES: u64 = 64 << 20;

/// The default of [`LakeConfig::compact_files`]. A table compacted while running keeps the
/// files it replaced until `lake vacuum` (time travel reads them), so a reader must take the
/// files the Delta log lists (`lake files`), not a glob over the directory.
pub const COMPACT_FILES: usize = 8;

/// The first commit boundary after epoch `e`.
pub fn next_boundary(e: u64, every: u64) -> u64 {
    let every = every.max(1);
    (e + 1) / every * every + every - 1
}

/// The commit boundary at or after epoch `e`: the last epoch of the commit range holding `e`.
pub fn boundary_at_or_after(e: u64, every: u64) -> u64 {
    let every = every.max(1);
    e / every * every + every - 1
}

/// The directory of lambdaflow's own state under a data directory.
pub fn state_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(table::STATE_DIR)
}

/// The view snapshots kept under a data directory: `views-EPOCH.json`, newest last.
pub fn view_snapshots(data_dir: &Path) -> Vec<(u64, PathBuf)> {
    snapshots_in(&state_dir(data_dir).join("views"))
}

/// The `views-EPOCH.json` files in `dir`, oldest first (none when it cannot be listed).
pub fn snapshots_in(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut out: Vec<(u64, PathBuf)> = store::list(dir)
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let epoch = entry
                .relative
                .strip_prefix("views-")?
                .strip_suffix(".json")?
                .parse()
                .ok()?;
            Some((epoch, entry.location))
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_are_every_nth_epoch() {
        assert_eq!(next_boundary(0, 10), 9);
        assert_eq!(next_boundary(9, 10), 19);
        assert_eq!(next_boundary(12, 10), 19);
        assert_eq!(next_boundary(5, 1), 6);
    }

    #[test]
    fn file_names_carry_their_epochs() {
        let name = writer::file_name(12, 345, 1, "abcd0123", 7, writer::Codec::Snappy);
        assert_eq!(writer::epochs_of(&name), Some((12, 345)));
        assert_eq!(writer::epochs_of("part-00000-uuid.snappy.parquet"), None);
        assert_eq!(
            writer::in_progress_worker(".w012-0badcafe.parquet.inprogress"),
            Some(12)
        );
        assert_eq!(
            writer::in_progress_worker(".dead-w003-0badcafe.parquet.inprogress"),
            Some(3)
        );
        assert_eq!(
            writer::in_progress_worker("part-e0-e1-w001-x-1.snappy.parquet"),
            None
        );
        let compacted = writer::compacted_name(3, 9, "0badcafe-auto", 41, 2, "zstd");
        assert_eq!(writer::epochs_of(&compacted), Some((3, 9)));
        assert_eq!(writer::compacted_for(&compacted), Some(41));
        assert_eq!(
            writer::compacted_for(
                "part-e000000000000-e000000000007-compact-08d5d57d-auto-00000.snappy.parquet"
            ),
            None
        );
    }
}
