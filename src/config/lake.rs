//! The `[lake]` section and the lake flags, validated into a [`LakeConfig`].

use std::path::PathBuf;
use std::time::Duration;

use super::{ConfigError, DEFAULT_DATA_DIR, LakeSection, Overrides, invalid};
use crate::lake::writer::Codec;
use crate::lake::{FileSettings, LakeConfig};
use crate::pipeline::EpochPolicy;

/// The longest commit interval accepted.
const MAX_COMMIT_INTERVAL: Duration = Duration::from_secs(86_400);

/// Commits per epoch count when epochs are counted in records and nothing else is said.
const DEFAULT_COMMIT_EPOCHS: u64 = 10;

pub(super) fn lake_config(
    section: LakeSection,
    flags: &Overrides,
    epoch: EpochPolicy,
) -> Result<Option<LakeConfig>, ConfigError> {
    if flags.no_lake || (section.enabled == Some(false) && flags.data_dir.is_none()) {
        return Ok(None);
    }
    let dir = flags
        .data_dir
        .clone()
        .or(section.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    crate::lake::store::check_supported(&dir).map_err(invalid)?;
    let files = file_settings(&section)?;
    let interval = flags.commit_interval.clone().or(section.commit_interval);
    let commit_every = commit_every(
        interval,
        flags.commit_epochs.or(section.commit_epochs),
        epoch,
    )?;
    let log_retention = match section.log_retention {
        None => None,
        Some(text) => {
            let d = humantime::parse_duration(&text).map_err(|e| {
                invalid(format!(
                    "lake log_retention `{text}` is not a duration such as 30days ({e})"
                ))
            })?;
            if d < Duration::from_secs(1) {
                return Err(invalid(format!(
                    "lake log_retention `{text}` is shorter than 1s"
                )));
            }
            Some(d)
        }
    };
    Ok(Some(LakeConfig {
        dir,
        commit_every,
        files,
        log_retention,
        compact_files: match section.compact_files {
            Some(1) => {
                return Err(invalid(
                    "lake compact_files must be 0 (never) or at least 2",
                ));
            }
            Some(n) => n,
            None => crate::lake::COMPACT_FILES,
        },
    }))
}

/// Epochs per lake commit, from a commit interval or a number of epochs (one of them), given
/// the epoch policy: 1s by default.
fn commit_every(
    interval: Option<String>,
    epochs: Option<u64>,
    epoch: EpochPolicy,
) -> Result<u64, ConfigError> {
    Ok(match (interval, epochs) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "give either a commit interval or commit epochs, not both",
            ));
        }
        (_, Some(0)) => return Err(invalid("commit epochs must be at least 1")),
        (_, Some(n)) => n,
        (interval, None) => {
            let text = interval.unwrap_or_else(|| "1s".to_string());
            let d = humantime::parse_duration(&text).map_err(|e| {
                invalid(format!(
                    "commit interval `{text}` is not a duration such as 1s or 500ms ({e})"
                ))
            })?;
            if d > MAX_COMMIT_INTERVAL {
                return Err(invalid(format!(
                    "commit interval `{text}` is longer than 1day: nothing would reach the lake \
                     for that long"
                )));
            }
            match epoch {
                EpochPolicy::Interval(e) if d < e => {
                    return Err(invalid(format!(
                        "commit interval `{text}` is shorter than the epoch ({}): a commit closes \
                         whole epochs",
                        humantime::format_duration(e)
                    )));
                }
                EpochPolicy::Interval(e) => (d.as_nanos() / e.as_nanos().max(1)).max(1) as u64,
                EpochPolicy::Records(_) => DEFAULT_COMMIT_EPOCHS,
            }
        }
    })
}

/// The lake's file settings from `[lake]`: rows per file and per row group, compression.
fn file_settings(section: &LakeSection) -> Result<FileSettings, ConfigError> {
    let mut files = FileSettings::default();
    if let Some(rows) = section.file_max_rows {
        if rows == 0 {
            return Err(invalid("lake file_max_rows must be at least 1"));
        }
        files.max_rows = rows;
    }
    if let Some(rows) = section.row_group_rows {
        if rows == 0 {
            return Err(invalid("lake row_group_rows must be at least 1"));
        }
        files.row_group_rows = rows;
    }
    files.codec = match (section.compression.as_deref(), section.zstd_level) {
        (None | Some("snappy"), None) => Codec::Snappy,
        (Some("snappy"), Some(_)) | (None, Some(_)) => {
            return Err(invalid("lake zstd_level needs compression = \"zstd\""));
        }
        (Some("zstd"), level) => {
            let level = level.unwrap_or(3);
            if !(1..=22).contains(&level) {
                return Err(invalid("lake zstd_level must be between 1 and 22"));
            }
            Codec::Zstd(level)
        }
        (Some(other), _) => {
            return Err(invalid(format!(
                "lake compression must be \"snappy\" or \"zstd\", not {other:?}"
            )));
        }
    };
    Ok(files)
}
