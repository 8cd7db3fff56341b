//! The last line of defence before a commit: the files a commit would add are checked against
//! the table's schema, so that no commit can make the table unreadable. The decoder already
//! turns every value the lake cannot store into a dead letter; this catches what a bug in the
//! engine would let through, and refuses the commit instead of writing it.
//!
//! A file passes when its partition values fit their columns (present where the column is
//! required, non-empty, dates of years 1 to 9999, short enough for a directory name), its
//! directory is the one its partition values name, and its Parquet footer agrees with the table:
//! every column the table has and the file holds is of the table's type, required where the
//! table says so, and its timestamps, dates and decimals lie within what readers accept.

use std::path::Path;

use deltalake::kernel::{DataType, PrimitiveType};
use parquet::basic::{
    DecimalType, LogicalType, Repetition, TimeUnit, TimestampType, Type as PhysicalType,
};
use parquet::file::metadata::ParquetMetaData;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::statistics::Statistics;
use parquet::schema::types::ColumnDescriptor;

use super::layout::escape_partition_value;
use crate::event::storable::{
    MAX_CENTS, MIN_TIMESTAMP, check_date_value, check_partition_value, shown, timestamp_in_range,
};

/// A column of a table as its Delta schema declares it.
#[derive(Clone, Debug)]
pub struct TableColumn {
    /// Its name.
    pub name: String,
    /// Its Delta type.
    pub ty: DataType,
    /// Whether it may hold nulls.
    pub nullable: bool,
    /// Whether it is a partition column.
    pub partition: bool,
}

/// Checks one file of a commit: `path` relative to `root`, its `size` and `rows` (when known),
/// its partition values. The error names the file and what is wrong with it.
pub fn check_file(
    root: &Path,
    columns: &[TableColumn],
    path: &str,
    size: Option<u64>,
    rows: Option<u64>,
    partition: &[(String, Option<String>)],
) -> Result<(), String> {
    check_partitions(columns, path, partition).map_err(|why| format!("{path}: {why}"))?;
    let full = root.join(path);
    let file = match size {
        Some(size) => super::store::open_ranged(&full, size),
        None => super::store::open(&full),
    }
    .map_err(|e| format!("{path}: {e}"))?;
    let reader = SerializedFileReader::new(file)
        .map_err(|e| format!("{path}: not a readable Parquet file ({e})"))?;
    check_footer(columns, reader.metadata(), rows).map_err(|why| format!("{path}: {why}"))
}

fn check_partitions(
    columns: &[TableColumn],
    path: &str,
    partition: &[(String, Option<String>)],
) -> Result<(), String> {
    let wanted: Vec<&TableColumn> = columns.iter().filter(|c| c.partition).collect();
    if wanted.len() != partition.len()
        || wanted.iter().zip(partition).any(|(c, (k, _))| &c.name != k)
    {
        return Err(format!(
            "partition values for {:?}, the table is partitioned by {:?}",
            partition.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            wanted.iter().map(|c| &c.name).collect::<Vec<_>>()
        ));
    }
    let mut dir = Vec::new();
    for (column, (name, value)) in wanted.iter().zip(partition) {
        match value {
            None if column.nullable => {
                dir.push(format!("{name}=__HIVE_DEFAULT_PARTITION__"));
                continue;
            }
            None => return Err(format!("partition column `{name}` is required but null")),
            Some(v) => {
                let checked = match &column.ty {
                    DataType::Primitive(PrimitiveType::Date) => check_date_value(v),
                    DataType::Primitive(PrimitiveType::String) => check_partition_value(v),
                    DataType::Primitive(PrimitiveType::Long) => v
                        .parse::<i64>()
                        .map(drop)
                        .map_err(|_| format!("is not a whole number: {}", shown(v))),
                    other => Err(format!(
                        "has type {other}, which lambdaflow does not partition by"
                    )),
                };
                checked.map_err(|why| format!("partition value of `{name}` {why}"))?;
                dir.push(format!("{name}={}", escape_partition_value(v)));
            }
        }
    }
    let expected = dir.join("/");
    let parent = path.rsplit_once('/').map_or("", |(d, _)| d);
    if parent != expected {
        return Err(format!(
            "lies in directory `{}`, its partition values make `{}`",
            shown(parent),
            shown(&expected)
        ));
    }
    Ok(())
}

fn check_footer(
    columns: &[TableColumn],
    meta: &ParquetMetaData,
    rows: Option<u64>,
) -> Result<(), String> {
    let file_rows: i64 = meta.row_groups().iter().map(|g| g.num_rows()).sum();
    if let Some(rows) = rows
        && u64::try_from(file_rows).ok() != Some(rows)
    {
        return Err(format!("holds {file_rows} rows, the commit says {rows}"));
    }
    let schema = meta.file_metadata().schema_descr();
    for (i, descr) in schema.columns().iter().enumerate() {
        let name = descr.path().string();
        let Some(column) = columns.iter().find(|c| c.name == name && !c.partition) else {
            return Err(format!("has column `{name}`, which the table does not"));
        };
        check_type(column, descr).map_err(|why| format!("column `{name}` {why}"))?;
        for group in meta.row_groups() {
            let chunk = group.column(i);
            if let Some(stats) = chunk.statistics() {
                check_stats(column, stats).map_err(|why| format!("column `{name}` {why}"))?;
            }
        }
    }
    for column in columns.iter().filter(|c| !c.partition && !c.nullable) {
        if !schema
            .columns()
            .iter()
            .any(|d| d.path().string() == column.name)
        {
            return Err(format!("lacks the required column `{}`", column.name));
        }
    }
    Ok(())
}

fn check_type(column: &TableColumn, descr: &ColumnDescriptor) -> Result<(), String> {
    let info = descr.self_type().get_basic_info();
    if !column.nullable && info.repetition() != Repetition::REQUIRED {
        return Err("may hold nulls, the table's column is required".to_owned());
    }
    let physical = descr.physical_type();
    let logical = descr.logical_type_ref();
    let fits = match &column.ty {
        DataType::Primitive(p) => match p {
            PrimitiveType::String => {
                physical == PhysicalType::BYTE_ARRAY
                    && matches!(logical, Some(LogicalType::String) | None)
            }
            PrimitiveType::Binary => physical == PhysicalType::BYTE_ARRAY,
            PrimitiveType::Long => physical == PhysicalType::INT64,
            PrimitiveType::Integer => physical == PhysicalType::INT32,
            PrimitiveType::Double => physical == PhysicalType::DOUBLE,
            PrimitiveType::Float => physical == PhysicalType::FLOAT,
            PrimitiveType::Boolean => physical == PhysicalType::BOOLEAN,
            PrimitiveType::Date => {
                physical == PhysicalType::INT32 && matches!(logical, Some(LogicalType::Date))
            }
            PrimitiveType::Timestamp => {
                physical == PhysicalType::INT64
                    && matches!(
                        logical,
                        Some(LogicalType::Timestamp(TimestampType {
                            is_adjusted_to_u_t_c: true,
                            unit: TimeUnit::MICROS,
                        }))
                    )
            }
            PrimitiveType::Decimal(d) => match logical {
                Some(LogicalType::Decimal(DecimalType { scale, precision })) => {
                    *precision == i32::from(d.precision()) && *scale == i32::from(d.scale())
                }
                _ => false,
            },
            _ => false,
        },
        _ => false,
    };
    if fits {
        Ok(())
    } else {
        Err(format!(
            "is {physical} ({logical:?}) in the file, {} in the table",
            column.ty
        ))
    }
}

fn check_stats(column: &TableColumn, stats: &Statistics) -> Result<(), String> {
    if !column.nullable && stats.null_count_opt().unwrap_or(0) > 0 {
        return Err("holds nulls, the table's column is required".to_owned());
    }
    let (min, max) = match stats {
        Statistics::Int64(s) => (s.min_opt().copied(), s.max_opt().copied()),
        Statistics::Int32(s) => (
            s.min_opt().map(|&v| i64::from(v)),
            s.max_opt().map(|&v| i64::from(v)),
        ),
        _ => (None, None),
    };
    let in_range = |v: i64| match &column.ty {
        DataType::Primitive(PrimitiveType::Timestamp) => timestamp_in_range(v),
        DataType::Primitive(PrimitiveType::Date) => {
            (MIN_TIMESTAMP.div_euclid(86_400_000_000)..=2_932_896).contains(&v)
        }
        DataType::Primitive(PrimitiveType::Decimal(_)) => (-MAX_CENTS..=MAX_CENTS).contains(&v),
        _ => true,
    };
    for v in [min, max].into_iter().flatten() {
        if !in_range(v) {
            return Err(format!(
                "holds {v}, outside what {} columns can hold for readers",
                column.ty
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns() -> Vec<TableColumn> {
        let c = |name: &str, ty: DataType, nullable, partition| TableColumn {
            name: name.into(),
            ty,
            nullable,
            partition,
        };
        vec![
            c("event_id", DataType::STRING, false, false),
            c("event_date", DataType::DATE, true, true),
            c("event_type", DataType::STRING, false, true),
        ]
    }

    fn values(date: Option<&str>, kind: Option<&str>) -> Vec<(String, Option<String>)> {
        vec![
            ("event_date".into(), date.map(Into::into)),
            ("event_type".into(), kind.map(Into::into)),
        ]
    }

    #[test]
    fn partition_values_must_fit_their_columns() {
        let cols = columns();
        let ok = "event_date=2024-01-01/event_type=purchase/part-0.parquet";
        assert_eq!(
            check_partitions(&cols, ok, &values(Some("2024-01-01"), Some("purchase"))),
            Ok(())
        );
        let bad = [
            values(Some("2024-01-01"), Some("")),
            values(Some("2024-01-01"), None),
            values(Some("10000-01-01"), Some("purchase")),
            values(Some("-001-12-31"), Some("purchase")),
            values(Some("2024-01-01"), Some(&"x".repeat(300))),
        ];
        for partition in bad {
            let dir = partition
                .iter()
                .map(|(k, v)| format!("{k}={}", v.clone().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join("/");
            let path = format!("{dir}/part-0.parquet");
            assert!(
                check_partitions(&cols, &path, &partition).is_err(),
                "{partition:?} passed"
            );
        }
    }

    #[test]
    fn a_file_must_lie_in_its_partition_directory() {
        let cols = columns();
        let why = check_partitions(
            &cols,
            "event_date=2024-01-02/event_type=purchase/part-0.parquet",
            &values(Some("2024-01-01"), Some("purchase")),
        )
        .unwrap_err();
        assert!(why.contains("directory"), "{why}");
        let null_date = "event_date=__HIVE_DEFAULT_PARTITION__/event_type=a%2Fb/part-0.parquet";
        assert_eq!(
            check_partitions(&cols, null_date, &values(None, Some("a/b"))),
            Ok(())
        );
    }
}
