//! The pipeline config: a TOML file and command-line flags, merged (flags win) and validated
//! into a [`PipelineConfig`] before anything runs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::event::Schema;
use crate::pipeline::{EpochPolicy, PipelineConfig};
use crate::source::SourceSpec;
use crate::views::builtin::{self, ViewDefinition};
use crate::views::custom::Registry;
use crate::views::sql::SqlView;

/// The default pipeline config, as a commented TOML file (`lambdaflow config`): the settings,
/// then the built-in views.
pub const DEFAULT_CONFIG: &str = concat!(
    include_str!("default-config.toml"),
    include_str!("views/builtin.toml")
);

/// The most views a pipeline holds (SQL and Rust).
const MAX_VIEWS: usize = 240;

/// The largest record size that can be configured.
const MAX_RECORD_LIMIT: usize = 64 << 20;

mod lake;
mod source;

pub use source::{generator_spec, parse_source, parse_start};

/// A config that cannot be used. Each message is one line that names the problem.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The config file is not valid TOML, or has unknown or mistyped keys.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("{0}")]
    Invalid(String),
}

fn invalid(message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(message.into())
}

/// The `[pipeline]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSection {
    /// The pipeline id.
    pub id: Option<String>,
    /// Worker threads.
    pub workers: Option<usize>,
    /// Processing-time epoch length, such as `100ms`.
    pub epoch: Option<String>,
    /// Or: records per epoch per worker.
    pub epoch_records: Option<u64>,
    /// Maximum record size in bytes.
    pub max_record_bytes: Option<usize>,
    /// `generate`, `stdin`, or `file:PATH[,PATH...]`.
    pub source: Option<String>,
    /// View names to maintain.
    pub views: Option<Vec<String>>,
}

/// The `[generator]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratorSection {
    /// Events per second; 0 for as fast as possible.
    pub rate: Option<f64>,
    /// How many events; absent for endless.
    pub count: Option<u64>,
    /// The seed.
    pub seed: Option<u64>,
    /// Fraction of malformed records.
    pub bad_fraction: Option<f64>,
    /// `now`, or the RFC 3339 timestamp of the first event.
    pub start: Option<String>,
}

/// The `[lake]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LakeSection {
    /// Whether `run` writes the lake at all.
    pub enabled: Option<bool>,
    /// The data directory.
    pub data_dir: Option<PathBuf>,
    /// A commit at least this often (with processing-time epochs), such as `1s`.
    pub commit_interval: Option<String>,
    /// Or: a commit every this many epochs.
    pub commit_epochs: Option<u64>,
    /// A data file is finished at this many rows.
    pub file_max_rows: Option<usize>,
    /// Rows per Parquet row group.
    pub row_group_rows: Option<usize>,
    /// Page compression: `snappy` or `zstd`.
    pub compression: Option<String>,
    /// ZSTD level, 1 to 22 (with `compression = "zstd"`).
    pub zstd_level: Option<i32>,
    /// How long the Delta log keeps versions for time travel, such as `30days`
    /// (`delta.logRetentionDuration`).
    pub log_retention: Option<String>,
    /// Compact a partition while running once it holds this many small files (0: never).
    pub compact_files: Option<usize>,
    /// The partition columns: `event_date` and at most one string field of the schema.
    pub partition_by: Option<Vec<String>>,
}

/// The `[kafka]` table: defaults for a `kafka://` source (its query string wins).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSection {
    /// Where a pipeline with no lake commit starts: earliest, latest, committed, or a time.
    pub start: Option<String>,
    /// The consumer group offsets are committed to.
    pub group: Option<String>,
    /// How often to look for new partitions, such as `10s`.
    pub discovery: Option<String>,
    /// How long to wait for a broker at the start.
    pub connect_timeout: Option<String>,
    /// librdkafka properties (`security.protocol`, `sasl.mechanism`, `ssl.ca.location`, ...).
    #[serde(default)]
    pub properties: std::collections::BTreeMap<String, String>,
}

impl KafkaSection {
    fn options(self) -> Vec<(String, String)> {
        let own = [
            ("start", self.start),
            ("group", self.group),
            ("discovery", self.discovery),
            ("connect_timeout", self.connect_timeout),
        ];
        own.into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
            .chain(self.properties)
            .collect()
    }
}

/// A whole config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// `[pipeline]`.
    #[serde(default)]
    pub pipeline: PipelineSection,
    /// `[generator]`.
    #[serde(default)]
    pub generator: GeneratorSection,
    /// `[schema]`, with its `[[schema.fields]]`.
    pub schema: Option<Schema>,
    /// `[lake]`.
    #[serde(default)]
    pub lake: LakeSection,
    /// `[kafka]`.
    #[serde(default)]
    pub kafka: KafkaSection,
    /// `[[views]]`: views written in SQL.
    #[serde(default)]
    pub views: Vec<ViewDefinition>,
    /// The file's text, as read (recorded in the lake, for `batch` and `verify`).
    #[serde(skip)]
    pub text: Option<String>,
}

impl ConfigFile {
    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses config text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let mut file: ConfigFile = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_owned(),
            message: e.message().lines().next().unwrap_or("invalid").to_owned()
                + &e.span()
                    .map(|s| format!(" (at byte {})", s.start))
                    .unwrap_or_default(),
        })?;
        file.text = Some(text.to_owned());
        Ok(file)
    }
}

/// Values given on the command line; each, when set, wins over the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// Views written in Rust, registered by the binary ([`crate::cli::main`]).
    pub registry: crate::views::custom::Registry,
    /// `--source`.
    pub source: Option<String>,
    /// `--workers`.
    pub workers: Option<usize>,
    /// `--epoch`.
    pub epoch: Option<String>,
    /// `--epoch-records`.
    pub epoch_records: Option<u64>,
    /// `--max-record-bytes`.
    pub max_record_bytes: Option<usize>,
    /// `--views`.
    pub views: Option<Vec<String>>,
    /// `--rate`.
    pub rate: Option<f64>,
    /// `--count`.
    pub count: Option<u64>,
    /// `--seed`.
    pub seed: Option<u64>,
    /// `--bad-fraction`.
    pub bad_fraction: Option<f64>,
    /// `--start`.
    pub start: Option<String>,
    /// `--until-exhausted`.
    pub until_exhausted: bool,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--no-lake`.
    pub no_lake: bool,
    /// `--commit-interval`.
    pub commit_interval: Option<String>,
    /// `--commit-epochs`.
    pub commit_epochs: Option<u64>,
    /// `-X KEY=VALUE`: Kafka options and librdkafka properties.
    pub kafka: Vec<(String, String)>,
}

/// The data directory when none is given.
pub const DEFAULT_DATA_DIR: &str = "lambdaflow-data";

/// The longest epoch accepted.
const MAX_EPOCH: Duration = Duration::from_secs(3_600);

/// The generator's rate when neither the file nor a flag gives one: a moderate live demo.
pub const DEFAULT_DEMO_RATE: f64 = 200.0;

/// Merges `file` and `flags` and validates the result.
pub fn resolve(file: ConfigFile, flags: Overrides) -> Result<PipelineConfig, ConfigError> {
    let p = file.pipeline;
    let g = file.generator;
    let lake_flags = Overrides {
        data_dir: flags.data_dir.clone(),
        no_lake: flags.no_lake,
        commit_interval: flags.commit_interval.clone(),
        commit_epochs: flags.commit_epochs,
        ..Overrides::default()
    };
    let mut config = PipelineConfig {
        until_exhausted: flags.until_exhausted,
        ..PipelineConfig::default()
    };

    if let Some(id) = p.id {
        config.id = pipeline_id(id)?;
    }
    config.workers = flags.workers.or(p.workers).unwrap_or(1);
    if !(1..=256).contains(&config.workers) {
        return Err(invalid(format!(
            "workers must be between 1 and 256, not {}",
            config.workers
        )));
    }
    config.epoch = epoch_policy(flags.epoch, flags.epoch_records, p.epoch, p.epoch_records)?;
    config.max_record_bytes = flags
        .max_record_bytes
        .or(p.max_record_bytes)
        .unwrap_or(1 << 20);
    if !(1..=MAX_RECORD_LIMIT).contains(&config.max_record_bytes) {
        return Err(invalid(format!(
            "max record bytes must be between 1 and {MAX_RECORD_LIMIT}"
        )));
    }

    let generator = generator_spec(
        flags.seed.or(g.seed).unwrap_or(42),
        flags.rate.or(g.rate).unwrap_or(DEFAULT_DEMO_RATE),
        flags.count.or(g.count),
        flags.bad_fraction.or(g.bad_fraction).unwrap_or(0.0),
        flags.start.or(g.start).as_deref().unwrap_or("now"),
    )?;
    let text = flags.source.or(p.source);
    config.source = parse_source(
        text.as_deref().unwrap_or("generate"),
        generator,
        &file.kafka.options(),
    )?;
    if let SourceSpec::Kafka(spec) = &mut config.source {
        for (key, value) in &flags.kafka {
            spec.set(key, value).map_err(invalid)?;
        }
        spec.until_end = config.until_exhausted;
    } else if !flags.kafka.is_empty() {
        return Err(invalid(
            "-X sets Kafka options, but the source is not kafka://",
        ));
    }

    if let Some(schema) = file.schema {
        config.schema = schema
            .validated()
            .map_err(|e| invalid(format!("schema: {e}")))?;
    }
    if let Some(partitions) = file.lake.partition_by.clone() {
        let mut schema = config.schema.clone();
        schema.partition_by = Some(partitions);
        config.schema = schema.validated().map_err(|e| invalid(e.to_string()))?;
    }
    let sql = sql_views(file.views, &config.schema)?;
    let rust = flags.registry.clone();
    for (i, v) in rust.views().iter().enumerate() {
        let name = v.name();
        let taken = sql.iter().any(|s| s.name == name)
            || rust.views()[..i].iter().any(|w| w.name() == name);
        if taken {
            return Err(invalid(format!("view `{name}` is defined twice")));
        }
    }
    choose_views(&mut config, flags.views.or(p.views), sql, rust)?;
    if config.sql_views.len() + config.custom_views.views().len() > MAX_VIEWS {
        return Err(invalid(format!("at most {MAX_VIEWS} views")));
    }
    config.lake = lake::lake_config(file.lake, &lake_flags, config.epoch)?;
    Ok(config)
}

/// A pipeline id: letters, digits, `-` and `_`.
fn pipeline_id(id: String) -> Result<String, ConfigError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if id.is_empty() || !id.chars().all(allowed) {
        return Err(invalid(format!(
            "pipeline id `{id}` must be letters, digits, `-` or `_`"
        )));
    }
    Ok(id)
}

/// The epoch policy from the flags and the file: an interval or a record count (a flag of
/// either kind overrides both of the file's).
fn epoch_policy(
    flag_interval: Option<String>,
    flag_records: Option<u64>,
    file_interval: Option<String>,
    file_records: Option<u64>,
) -> Result<EpochPolicy, ConfigError> {
    let epoch_records = flag_records.or(if flag_interval.is_some() {
        None
    } else {
        file_records
    });
    let epoch = flag_interval.or(if flag_records.is_some() {
        None
    } else {
        file_interval
    });
    Ok(match (epoch, epoch_records) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "give either an epoch interval or epoch records, not both",
            ));
        }
        (_, Some(0)) => return Err(invalid("epoch records must be at least 1")),
        (_, Some(n)) => EpochPolicy::Records(n),
        (Some(text), None) => {
            let d = humantime::parse_duration(&text).map_err(|e| {
                invalid(format!(
                    "epoch `{text}` is not a duration such as 100ms or 1s ({e})"
                ))
            })?;
            if d < Duration::from_millis(1) {
                return Err(invalid(format!("epoch `{text}` is shorter than 1ms")));
            }
            if d > MAX_EPOCH {
                return Err(invalid(format!(
                    "epoch `{text}` is longer than 1h: the views would show nothing new for that \
                     long"
                )));
            }
            EpochPolicy::Interval(d)
        }
        (None, None) => EpochPolicy::Interval(Duration::from_millis(100)),
    })
}

/// Which views a run keeps: the `names` listed (of the config's SQL views, the binary's Rust
/// views and the built-in views), or, with no list, the config's and the binary's own views if
/// it has any, else the built-in views. A config's view named like a built-in one replaces it.
fn choose_views(
    config: &mut PipelineConfig,
    names: Option<Vec<String>>,
    sql: Vec<SqlView>,
    rust: Registry,
) -> Result<(), ConfigError> {
    let schema = config.schema.clone();
    let builtin: Vec<ViewDefinition> = builtin::definitions()
        .into_iter()
        .filter(|b| !sql.iter().any(|v| v.name == b.name))
        .collect();
    let compile = |d: ViewDefinition| {
        d.compile(&schema).map_err(|e| {
            invalid(format!(
                "{e}; it is a built-in view: give the config [[views]] of its own, or list the views to run in [pipeline] views"
            ))
        })
    };
    let Some(names) = names else {
        if sql.is_empty() && rust.is_empty() {
            config.sql_views = builtin.into_iter().map(compile).collect::<Result<_, _>>()?;
        } else {
            (config.sql_views, config.custom_views) = (sql, rust);
        }
        return Ok(());
    };
    let known: Vec<&str> = sql
        .iter()
        .map(|v| v.name.as_str())
        .chain(rust.views().iter().map(|v| v.name()))
        .chain(builtin.iter().map(|b| b.name.as_str()))
        .collect();
    if let Some(name) = names.iter().find(|n| !known.contains(&n.as_str())) {
        return Err(invalid(format!(
            "unknown view `{name}` (views: {})",
            known.join(", ")
        )));
    }
    let listed = |name: &str| names.iter().any(|n| n == name);
    let mut chosen: Vec<SqlView> = sql.into_iter().filter(|v| listed(&v.name)).collect();
    for b in builtin.into_iter().filter(|b| listed(&b.name)) {
        chosen.push(compile(b)?);
    }
    let mut kept = Registry::default();
    for v in rust.views().iter().filter(|v| listed(v.name())) {
        kept = kept.with_shared(v.clone());
    }
    (config.sql_views, config.custom_views) = (chosen, kept);
    Ok(())
}

/// The `[[views]]` of a config, compiled against the schema.
fn sql_views(
    definitions: Vec<ViewDefinition>,
    schema: &Schema,
) -> Result<Vec<SqlView>, ConfigError> {
    let mut views: Vec<SqlView> = Vec::new();
    for mut v in definitions {
        v.name = v.name.trim().to_owned();
        let name = &v.name;
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(invalid(format!(
                "view name `{name}` must be letters, digits or `_`"
            )));
        }
        if views.iter().any(|w| w.name == *name) {
            return Err(invalid(format!("view `{name}` is defined twice")));
        }
        if views.len() >= MAX_VIEWS {
            return Err(invalid(format!("at most {MAX_VIEWS} views")));
        }
        views.push(v.compile(schema).map_err(|e| invalid(e.to_string()))?);
    }
    Ok(views)
}

#[cfg(test)]
mod tests;
