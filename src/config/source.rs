//! Where events come from: `--source` and the generator's settings, validated.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{ConfigError, invalid};
use crate::event::time::parse_rfc3339;
use crate::source::{GeneratorSpec, KafkaSpec, SourceSpec, file};

/// The generator's settings, validated: a rate of 0 means as fast as possible.
pub fn generator_spec(
    seed: u64,
    rate: f64,
    count: Option<u64>,
    bad_fraction: f64,
    start: &str,
) -> Result<GeneratorSpec, ConfigError> {
    if !rate.is_finite() || rate < 0.0 {
        return Err(invalid(format!("rate must be a number >= 0, not {rate}")));
    }
    if !(0.0..=1.0).contains(&bad_fraction) {
        return Err(invalid(format!(
            "bad fraction must be between 0 and 1, not {bad_fraction}"
        )));
    }
    Ok(GeneratorSpec {
        seed,
        rate: (rate > 0.0).then_some(rate),
        count,
        bad_fraction,
        start_micros: parse_start(start)?,
    })
}

/// `now`, or an RFC 3339 timestamp, as microseconds since the Unix epoch.
pub fn parse_start(text: &str) -> Result<i64, ConfigError> {
    if text == "now" {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        return Ok(now.as_micros() as i64);
    }
    parse_rfc3339(text).map_err(|why| {
        invalid(format!(
            "start `{text}` is not `now` or an RFC 3339 timestamp ({why})"
        ))
    })
}

/// `generate`, `stdin`, `file:PATH[,PATH...]` (a directory stands for its files) or
/// `kafka://BROKERS/TOPICS[?OPTIONS]` (`kafka` holds the config file's Kafka options).
pub fn parse_source(
    text: &str,
    generator: GeneratorSpec,
    kafka: &[(String, String)],
) -> Result<SourceSpec, ConfigError> {
    match text {
        "generate" => Ok(SourceSpec::Generate(generator)),
        "stdin" | "-" => Ok(SourceSpec::Stdin),
        _ if text.starts_with("kafka://") => Ok(SourceSpec::Kafka(
            KafkaSpec::parse(text, kafka).map_err(invalid)?,
        )),
        _ => {
            let Some(paths) = text.strip_prefix("file:") else {
                return Err(invalid(format!(
                    "source `{text}` is not `generate`, `stdin`, `file:PATH` or `kafka://HOST:PORT/TOPIC`"
                )));
            };
            let mut files: Vec<PathBuf> = Vec::new();
            for path in paths.split(',').filter(|p| !p.is_empty()) {
                let path = Path::new(path);
                check_not_system(path)?;
                let found = file::expand(path)
                    .map_err(|e| invalid(format!("source file {}: {e}", path.display())))?;
                if found.is_empty() {
                    return Err(invalid(format!(
                        "source directory {} has no files",
                        path.display()
                    )));
                }
                files.extend(found);
            }
            if files.is_empty() {
                return Err(invalid("source `file:` names no file"));
            }
            Ok(SourceSpec::Files(files))
        }
    }
}

/// The system directories a `file:` source does not read as directories of events.
const SYSTEM_DIRS: [&str; 3] = ["/proc", "/sys", "/etc"];

/// A directory under `/proc`, `/sys` or `/etc` is refused: its files are the system's, not
/// events (a mistyped path would read every one of them into the lake). A single file there,
/// named in full, is read, with a warning.
fn check_not_system(path: &Path) -> Result<(), ConfigError> {
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let Some(root) = SYSTEM_DIRS.iter().find(|d| real.starts_with(d)) else {
        return Ok(());
    };
    if real.is_dir() {
        return Err(invalid(format!(
            "source directory {} is under {root}, whose files are the system's, not events",
            path.display()
        )));
    }
    tracing::warn!(path = %path.display(), "reading events from a system file under {root}");
    Ok(())
}
