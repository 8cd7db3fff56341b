//! `lambdaflow lake repair`: a table that an earlier build made unreadable (a commit whose
//! partition values or files no reader accepts) is moved back to its newest readable version,
//! as a new commit, the way Delta's `RESTORE` does it.
//!
//! The new commit removes the files the bad versions added, adds back the files they removed,
//! and carries the restored version's lambdaflow metadata, so the next `run` resumes each source
//! where that version left it: the events of the removed versions are read again from the
//! source, and today's decoder turns the record that poisoned the table into a dead letter.
//! The commit is written by hand, not through `deltalake`, because `deltalake` cannot load the
//! table it has to commit to. Checkpoints of the bad versions are deleted (the log they sum up
//! is still there); dead-letter files and view snapshots past the restored epoch go too, as
//! after a crash.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use deltalake::kernel::{Action, Add, Remove, Transaction};
use serde::Serialize;

use super::LakeError;
use super::ops::{drop_dead_letters_after, drop_view_snapshots_after, lock};
use super::table::{self, COMMIT_KEY, CommitMeta, Table, table_root};
use super::writer::TableKind;

/// What a repair did, or would do.
#[derive(Clone, Debug, Serialize)]
pub struct Repair {
    /// The events table's latest version before the repair.
    pub latest: u64,
    /// The newest version every reader can read; `None` when the latest is one.
    pub restored: Option<u64>,
    /// The version the repair committed (none on a dry run, or when nothing was wrong).
    pub committed: Option<u64>,
    /// Why the latest version is unreadable.
    pub problem: Option<String>,
    /// The last epoch of the restored version: the sources resume after it.
    pub epoch: Option<u64>,
    /// Files the repair removes from the table.
    pub removed_files: usize,
    /// Their rows, as their add actions counted them.
    pub removed_rows: u64,
    /// Files the bad versions had removed that the repair adds back.
    pub restored_files: usize,
    /// Checkpoints of bad versions deleted.
    pub checkpoints_deleted: usize,
    /// Dead-letter files past the restored epoch removed.
    pub dead_files_removed: usize,
    /// Commit files after the restored version that were missing or not valid JSON, replaced
    /// by empty commits (a damaged one is kept beside it as `VERSION.json.damaged`): the files
    /// they added are unknown, so they leave the table with the rest.
    pub replaced_commits: Vec<u64>,
}

/// Repairs the events table under `dir` (only reports what it would do when `dry_run`).
pub fn repair(dir: &Path, dry_run: bool) -> Result<Repair, LakeError> {
    if super::store::is_remote(dir) {
        return Err(LakeError::Other(format!(
            "{}: `lake repair` works on a lake in a local directory; an object store keeps \
             each log entry whole, so a crash cannot leave one torn",
            dir.display()
        )));
    }
    let _lock = lock(dir)?;
    let rt = table::runtime()?;
    let root = table_root(dir, TableKind::Events);
    let log = root.join("_delta_log");
    let versions = commit_versions(&log)?;
    let Some(&latest) = versions.last() else {
        return Err(LakeError::NotALake(root.display().to_string()));
    };
    let mut report = Repair {
        latest,
        restored: None,
        committed: None,
        problem: None,
        epoch: None,
        removed_files: 0,
        removed_rows: 0,
        restored_files: 0,
        checkpoints_deleted: 0,
        dead_files_removed: 0,
        replaced_commits: Vec::new(),
    };
    let problem = match readable(&rt, &root, latest) {
        Ok(_) => return Ok(report),
        Err(why) => why,
    };
    report.problem = Some(problem);
    let (good, table) = versions
        .iter()
        .rev()
        .skip(1)
        .find_map(|&v| readable(&rt, &root, v).ok().map(|t| (v, t)))
        .ok_or_else(|| {
            LakeError::Other(format!(
                "no version of {} is readable; nothing to restore to",
                root.display()
            ))
        })?;
    report.restored = Some(good);
    let meta = meta_at(&log, good);
    report.epoch = meta.as_ref().map(|m| m.epoch);

    // The files of the latest version, replayed from the restored one through the log.
    let kept: BTreeMap<String, table::TableFile> = table
        .files()?
        .into_iter()
        .map(|f| (f.path.clone(), f))
        .collect();
    let active = active_files(&log, &kept, good, latest, &mut report.replaced_commits)?;
    let actions = restoring_actions(&kept, &active, &mut report);
    let bad_checkpoints = checkpoints_after(&log, good)?;
    report.checkpoints_deleted = bad_checkpoints.len();
    if dry_run {
        return Ok(report);
    }

    clean_log(&log, &bad_checkpoints, &report.replaced_commits)?;
    let version = latest + 1;
    write_commit(&log, version, good, meta.as_ref(), &actions)?;
    report.committed = Some(version);
    if let Err(why) = readable(&rt, &root, version) {
        return Err(LakeError::Other(format!(
            "the repair committed version {version} of {}, but it is still not readable: {why}",
            root.display()
        )));
    }
    let epoch = meta.as_ref().map(|m| m.epoch);
    let mut dead = Table::open(&rt, &table_root(dir, TableKind::DeadLetters))?;
    report.dead_files_removed = drop_dead_letters_after(&rt, &mut dead, epoch)?;
    drop_view_snapshots_after(dir, epoch);
    Ok(report)
}

/// The files active at `latest`, replayed through the log from the `kept` files of version
/// `good`, with each one's add action (`None` for a kept file); commits that are missing or
/// damaged are skipped and listed in `replaced`.
fn active_files(
    log: &Path,
    kept: &BTreeMap<String, table::TableFile>,
    good: u64,
    latest: u64,
    replaced: &mut Vec<u64>,
) -> Result<BTreeMap<String, Option<Add>>, LakeError> {
    let mut active: BTreeMap<String, Option<Add>> =
        kept.keys().map(|p| (p.clone(), None)).collect();
    for v in good + 1..=latest {
        let path = log.join(commit_name(v));
        let Some(commit) = read_commit(&path)? else {
            replaced.push(v);
            continue;
        };
        for action in commit {
            match action {
                Action::Add(add) => {
                    active.insert(add.path.clone(), Some(add));
                }
                Action::Remove(remove) => {
                    active.remove(&remove.path);
                }
                _ => {}
            }
        }
    }
    Ok(active)
}

/// The actions that take the table from the `active` files back to the `kept` ones: removes
/// and adds, counted in `report`.
fn restoring_actions(
    kept: &BTreeMap<String, table::TableFile>,
    active: &BTreeMap<String, Option<Add>>,
    report: &mut Repair,
) -> Vec<Action> {
    let now = super::writer::now_millis();
    let mut actions = Vec::new();
    for (path, add) in active {
        if kept.contains_key(path) {
            continue;
        }
        report.removed_files += 1;
        report.removed_rows += add
            .as_ref()
            .and_then(|a| a.stats.as_deref())
            .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
            .and_then(|s| s["numRecords"].as_u64())
            .unwrap_or(0);
        actions.push(Action::Remove(Remove {
            path: path.clone(),
            data_change: true,
            deletion_timestamp: Some(now),
            extended_file_metadata: Some(true),
            partition_values: add.as_ref().map(|a| a.partition_values.clone()),
            size: add.as_ref().map(|a| a.size),
            ..Default::default()
        }));
    }
    for (path, f) in kept {
        if active.contains_key(path) {
            continue;
        }
        report.restored_files += 1;
        actions.push(Action::Add(Add {
            path: path.clone(),
            partition_values: f.partition.clone(),
            size: f.size as i64,
            modification_time: now,
            data_change: true,
            stats: f
                .stats
                .clone()
                .or_else(|| f.rows.map(|n| format!("{{\"numRecords\":{n}}}"))),
            ..Default::default()
        }));
    }
    actions
}

/// Deletes the bad versions' checkpoints and puts an empty commit in place of each missing or
/// damaged one (keeping a damaged one beside it).
fn clean_log(log: &Path, bad_checkpoints: &[PathBuf], replaced: &[u64]) -> Result<(), LakeError> {
    for path in bad_checkpoints {
        std::fs::remove_file(path).map_err(|e| LakeError::io(path, e))?;
    }
    if !bad_checkpoints.is_empty() {
        // Readers find the checkpoints that are left by listing the log.
        let last = log.join("_last_checkpoint");
        if last.exists() {
            std::fs::remove_file(&last).map_err(|e| LakeError::io(&last, e))?;
        }
    }
    for &v in replaced {
        let path = log.join(commit_name(v));
        if path.exists() {
            let kept = log.join(format!("{}.damaged", commit_name(v)));
            std::fs::rename(&path, &kept).map_err(|e| LakeError::io(&path, e))?;
        }
        let info = serde_json::json!({ "commitInfo": {
            "timestamp": super::writer::now_millis(),
            "operation": "REPAIR",
            "operationParameters": { "replaced": "a missing or damaged commit file" },
            "clientVersion": concat!("lambdaflow-", env!("CARGO_PKG_VERSION")),
        }});
        put_if_absent(log, v, &format!("{info}\n"))?;
    }
    Ok(())
}

/// The table as of `version`, if deltalake loads it and every active file passes the check.
fn readable(rt: &tokio::runtime::Runtime, root: &Path, version: u64) -> Result<Table, String> {
    let table = Table::open_version(rt, root, Some(version)).map_err(|e| e.to_string())?;
    table.check_active()?;
    Ok(table)
}

fn commit_name(version: u64) -> String {
    format!("{version:020}.json")
}

/// lambdaflow's metadata of the newest commit at or before `version` that has it, read from
/// the commit files themselves (`deltalake`'s history reads the later, damaged ones too).
fn meta_at(log: &Path, version: u64) -> Option<CommitMeta> {
    (0..=version).rev().find_map(|v| {
        let text = std::fs::read_to_string(log.join(commit_name(v))).ok()?;
        text.lines().find_map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).ok()?;
            serde_json::from_value(value.get("commitInfo")?.get(COMMIT_KEY)?.clone()).ok()
        })
    })
}

/// The versions of the commit files in a `_delta_log`, ascending.
fn commit_versions(log: &Path) -> Result<Vec<u64>, LakeError> {
    let mut out: Vec<u64> = std::fs::read_dir(log)
        .map_err(|e| LakeError::io(log, e))?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".json")?;
            (stem.len() == 20).then(|| stem.parse().ok()).flatten()
        })
        .collect();
    out.sort_unstable();
    Ok(out)
}

/// The checkpoint files of versions after `version`.
fn checkpoints_after(log: &Path, version: u64) -> Result<Vec<PathBuf>, LakeError> {
    Ok(std::fs::read_dir(log)
        .map_err(|e| LakeError::io(log, e))?
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.contains(".checkpoint")
                && name
                    .get(..20)
                    .and_then(|v| v.parse::<u64>().ok())
                    .is_some_and(|v| v > version)
        })
        .map(|e| e.path())
        .collect())
}

/// The add and remove actions of one commit file (other actions are skipped), or `None` when
/// the file is missing or not valid Delta JSON.
fn read_commit(path: &Path) -> Result<Option<Vec<Action>>, LakeError> {
    let text = match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(_) => return Ok(None),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LakeError::io(path, e)),
    };
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
            return Ok(None);
        };
        if value.get("add").is_some() || value.get("remove").is_some() {
            let Ok(action) = serde_json::from_value::<Action>(value) else {
                return Ok(None);
            };
            out.push(action);
        }
    }
    Ok(Some(out))
}

/// Writes commit `version` as Delta requires: the whole file at once, and only if no other
/// writer made that version first.
fn write_commit(
    log: &Path,
    version: u64,
    restored: u64,
    meta: Option<&CommitMeta>,
    actions: &[Action],
) -> Result<(), LakeError> {
    let mut info = serde_json::json!({
        "timestamp": super::writer::now_millis(),
        "operation": "RESTORE",
        "operationParameters": { "version": restored.to_string() },
        "clientVersion": concat!("lambdaflow-", env!("CARGO_PKG_VERSION")),
        "isBlindAppend": false,
    });
    let mut lines = Vec::new();
    if let Some(meta) = meta {
        info[COMMIT_KEY] =
            serde_json::to_value(meta).map_err(|e| LakeError::Other(e.to_string()))?;
        lines.push(Action::Txn(Transaction::new(
            &meta.pipeline,
            meta.epoch as i64,
        )));
    }
    let mut text = serde_json::json!({ "commitInfo": info }).to_string();
    text.push('\n');
    for action in lines.iter().chain(actions) {
        text.push_str(&serde_json::to_string(action).map_err(|e| LakeError::Other(e.to_string()))?);
        text.push('\n');
    }
    put_if_absent(log, version, &text)
}

/// Writes `text` as commit file `version`, whole, unless that version exists.
fn put_if_absent(log: &Path, version: u64, text: &str) -> Result<(), LakeError> {
    let target = log.join(commit_name(version));
    let temp = log.join(format!(".{}.repair.tmp", commit_name(version)));
    let mut file = std::fs::File::create(&temp).map_err(|e| LakeError::io(&temp, e))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| LakeError::io(&temp, e))?;
    let linked = std::fs::hard_link(&temp, &target);
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(LakeError::Other(format!(
                "another writer committed version {version} of the table meanwhile; nothing \
                 was changed, run the repair again"
            )));
        }
        Err(e) => return Err(LakeError::io(&target, e)),
    }
    if let Ok(dir) = std::fs::File::open(log) {
        let _ = dir.sync_all();
    }
    Ok(())
}
