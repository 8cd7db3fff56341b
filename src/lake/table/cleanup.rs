//! What a table leaves behind and lambdaflow clears: data files no commit can reference (after a
//! crash), and log entries time travel no longer needs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::{LakeError, Table, store};
use crate::lake::writer::{self, epochs_of};

/// Files under a table root that no commit can reference: files still in progress, data files
/// whose last epoch is past `last_epoch` and that the current version does not hold, and
/// compacted files newer than the current version that it does not hold.
pub fn orphans(table: &Table, last_epoch: Option<u64>) -> Result<Vec<PathBuf>, LakeError> {
    let active: BTreeSet<String> = table.files()?.into_iter().map(|f| f.path).collect();
    // A compacted file is written before the commit that adds it: one newer than the latest
    // commit, and not in it, no version holds (a compacted file a later compaction removed is
    // older than the commit that removed it).
    let latest_commit = store::modified(
        &table
            .root()
            .join("_delta_log")
            .join(format!("{:020}.json", table.version())),
    )?;
    Ok(store::list(table.root())?
        .into_iter()
        .filter(|entry| {
            let name = entry.relative.rsplit('/').next().unwrap_or_default();
            if name.ends_with(".inprogress") {
                return true;
            }
            if active.contains(&entry.relative) {
                return false;
            }
            if let Some(version) = writer::compacted_for(name) {
                return version > table.version();
            }
            if name.contains("-compact-") {
                // Named by an earlier build: newer than the latest commit. On an object store
                // whose times are whole seconds, one written in the second of that commit
                // stays until `lake vacuum`.
                return matches!((entry.modified, latest_commit), (Some(m), Some(c)) if m > c);
            }
            match epochs_of(name) {
                Some((_, last)) => last_epoch.is_none_or(|l| last > l),
                None => false,
            }
        })
        .map(|entry| entry.location)
        .collect())
}

/// Deletes the log entries (commits, checkpoints, checksums) that time travel no longer needs,
/// as Delta's metadata cleanup does: those older than `retention` and older than the newest
/// checkpoint that is itself no newer than every entry inside the retention. Best effort: an
/// entry that cannot be deleted stays, and the next checkpoint tries again.
pub(super) fn cleanup_log(root: &Path, retention: std::time::Duration) {
    let log = root.join("_delta_log");
    let Ok(entries) = store::list(&log) else {
        return;
    };
    let cutoff = std::time::SystemTime::now()
        .checked_sub(retention)
        .unwrap_or(std::time::UNIX_EPOCH);
    // (version, is a checkpoint, expired, location)
    let mut found = Vec::new();
    for entry in entries {
        let name = entry.relative.as_str();
        if name.contains('/') {
            continue;
        }
        let Some(version) = name.get(..20).and_then(|v| v.parse::<u64>().ok()) else {
            continue;
        };
        let rest = &name[20..];
        let checkpoint = rest == ".checkpoint.parquet";
        if !(rest == ".json" || rest == ".crc" || checkpoint) {
            continue;
        }
        let expired = entry.modified.is_some_and(|t| t <= cutoff);
        found.push((version, checkpoint, expired, entry.location));
    }
    let kept = found
        .iter()
        .filter(|(_, checkpoint, expired, _)| !checkpoint && !expired)
        .map(|(v, ..)| *v)
        .min()
        .unwrap_or(u64::MAX);
    let Some(safe) = found
        .iter()
        .filter(|(v, checkpoint, ..)| *checkpoint && *v <= kept)
        .map(|(v, ..)| *v)
        .max()
    else {
        return;
    };
    for (version, _, expired, path) in &found {
        if *version < safe && *expired {
            let _ = store::delete(path);
        }
    }
}
