//! Delta's per-file statistics (the `stats` of an `add` action) from a Parquet file's footer:
//! `numRecords`, and per column `minValues`, `maxValues` and `nullCount`, as Spark's Delta writer
//! and the Delta kernel write them, so that Spark, Trino, DuckDB and delta-rs skip the files a
//! query's predicate rules out.
//!
//! As in Spark: the first [`INDEXED_COLUMNS`] columns of the file (partition columns are not in
//! it), min/max for numbers, dates, timestamps and strings only (`nullCount` for every column);
//! timestamps in milliseconds, truncated down (readers add a millisecond to a max); strings cut
//! to [`STRING_PREFIX`] characters, a max cut so followed by a character greater than any that
//! could come next; decimals as JSON numbers with their scale's digits.

use parquet::basic::{ConvertedType, LogicalType, TimeUnit, Type as PhysicalType};
use parquet::file::metadata::RowGroupMetaData;
use parquet::file::statistics::Statistics;
use parquet::schema::types::ColumnDescriptor;

/// Columns with statistics, counted from the first: Delta's `delta.dataSkippingNumIndexedCols`
/// default.
pub const INDEXED_COLUMNS: usize = 32;

/// Characters of a string kept in `minValues` and `maxValues`: Delta's
/// `delta.dataSkippingStringPrefixLength` default.
pub const STRING_PREFIX: usize = 32;

/// The `stats` JSON of a file with these row groups.
pub fn delta_stats(row_groups: &[RowGroupMetaData]) -> String {
    let rows: i64 = row_groups.iter().map(RowGroupMetaData::num_rows).sum();
    let mut mins = Vec::new();
    let mut maxes = Vec::new();
    let mut nulls = Vec::new();
    let columns = row_groups.first().map_or(0, RowGroupMetaData::num_columns);
    for c in 0..columns.min(INDEXED_COLUMNS) {
        let descr = row_groups[0].column(c).column_descr();
        // Nested columns (none in lambdaflow's files) would need nested objects.
        if descr.path().parts().len() != 1 {
            continue;
        }
        let name = json_string(descr.name());
        let stats: Option<Vec<&Statistics>> = row_groups
            .iter()
            .map(|rg| rg.column(c).statistics())
            .collect();
        let Some(stats) = stats else { continue };
        let null_count: Option<u64> = stats.iter().map(|s| s.null_count_opt()).sum();
        if let Some(n) = null_count {
            nulls.push(format!("{name}:{n}"));
        }
        if let Some((min, max)) = bounds(descr, &stats) {
            mins.push(format!("{name}:{min}"));
            maxes.push(format!("{name}:{max}"));
        }
    }
    format!(
        "{{\"numRecords\":{rows},\"minValues\":{{{}}},\"maxValues\":{{{}}},\"nullCount\":{{{}}}}}",
        mins.join(","),
        maxes.join(","),
        nulls.join(",")
    )
}

/// A column's least and greatest values over the row groups, as JSON, if its type has them in
/// Delta's statistics and every row group has them.
fn bounds(descr: &ColumnDescriptor, stats: &[&Statistics]) -> Option<(String, String)> {
    let logical = descr.logical_type_ref();
    match stats.first()? {
        Statistics::Int32(_) => {
            let (min, max) = fold(stats, |s| match s {
                Statistics::Int32(v) => Some((i64::from(*v.min_opt()?), i64::from(*v.max_opt()?))),
                _ => None,
            })?;
            match (logical, descr.converted_type()) {
                (Some(LogicalType::Date), _) | (_, ConvertedType::DATE) => {
                    Some((date(min)?, date(max)?))
                }
                (Some(LogicalType::Decimal(parquet::basic::DecimalType { scale, .. })), _) => {
                    Some((decimal(min.into(), *scale), decimal(max.into(), *scale)))
                }
                _ => Some((min.to_string(), max.to_string())),
            }
        }
        Statistics::Int64(_) => {
            let (min, max) = fold(stats, |s| match s {
                Statistics::Int64(v) => Some((*v.min_opt()?, *v.max_opt()?)),
                _ => None,
            })?;
            match logical {
                Some(LogicalType::Timestamp(parquet::basic::TimestampType { unit, .. })) => {
                    let micros = |v: i64| match unit {
                        TimeUnit::MILLIS => v.checked_mul(1000),
                        TimeUnit::MICROS => Some(v),
                        TimeUnit::NANOS => Some(v.div_euclid(1000)),
                    };
                    Some((timestamp(micros(min)?)?, timestamp(micros(max)?)?))
                }
                Some(LogicalType::Decimal(parquet::basic::DecimalType { scale, .. })) => {
                    Some((decimal(min.into(), *scale), decimal(max.into(), *scale)))
                }
                _ => Some((min.to_string(), max.to_string())),
            }
        }
        Statistics::Float(_) | Statistics::Double(_) => {
            let (min, max) = fold(stats, |s| match s {
                Statistics::Float(v) => Some((f64::from(*v.min_opt()?), f64::from(*v.max_opt()?))),
                Statistics::Double(v) => Some((*v.min_opt()?, *v.max_opt()?)),
                _ => None,
            })?;
            (min.is_finite() && max.is_finite()).then(|| (json_number(min), json_number(max)))
        }
        Statistics::ByteArray(_) if is_string(descr) => {
            let mut min: Option<&[u8]> = None;
            let mut max: Option<&[u8]> = None;
            for s in stats {
                let Statistics::ByteArray(v) = s else {
                    return None;
                };
                let (lo, hi) = (v.min_bytes_opt()?, v.max_bytes_opt()?);
                min = Some(min.map_or(lo, |m| m.min(lo)));
                max = Some(max.map_or(hi, |m| m.max(hi)));
            }
            let min = std::str::from_utf8(min?).ok()?;
            let max = std::str::from_utf8(max?).ok()?;
            Some((
                json_string(&prefix_min(min)),
                json_string(&prefix_max(max)?),
            ))
        }
        _ => None,
    }
}

/// The least min and greatest max of `stats`, each read by `read`.
fn fold<T: PartialOrd + Copy>(
    stats: &[&Statistics],
    read: impl Fn(&Statistics) -> Option<(T, T)>,
) -> Option<(T, T)> {
    let mut out: Option<(T, T)> = None;
    for s in stats {
        let (lo, hi) = read(s)?;
        out = Some(match out {
            None => (lo, hi),
            Some((a, b)) => (if lo < a { lo } else { a }, if hi > b { hi } else { b }),
        });
    }
    out
}

fn is_string(descr: &ColumnDescriptor) -> bool {
    descr.physical_type() == PhysicalType::BYTE_ARRAY
        && (matches!(descr.logical_type_ref(), Some(LogicalType::String))
            || descr.converted_type() == ConvertedType::UTF8)
}

/// A string's first [`STRING_PREFIX`] characters: a lower bound of every string it begins.
fn prefix_min(value: &str) -> String {
    value.chars().take(STRING_PREFIX).collect()
}

/// An upper bound of `value` at most [`STRING_PREFIX`] characters long plus one, as Spark
/// makes it: `value` itself when short enough, or its prefix followed by U+007F when the
/// character cut off is below it, by U+10FFFF otherwise (a prefix ending on U+10FFFF grows
/// until it can be followed so, up to twice the length; past that there is no bound).
fn prefix_max(value: &str) -> Option<String> {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() <= STRING_PREFIX {
        return Some(value.to_owned());
    }
    for cut in STRING_PREFIX..(2 * STRING_PREFIX).min(chars.len()) {
        let next = chars[cut];
        if chars[cut - 1] == char::MAX {
            continue;
        }
        let mut out: String = chars[..cut].iter().collect();
        out.push(if next < '\u{7f}' { '\u{7f}' } else { char::MAX });
        return Some(out);
    }
    None
}

/// `YYYY-MM-DD` for days since 1970-01-01.
fn date(days: i64) -> Option<String> {
    let day = chrono::DateTime::from_timestamp(days.checked_mul(86_400)?, 0)?;
    Some(format!("\"{}\"", day.format("%Y-%m-%d")))
}

/// An ISO 8601 UTC time in milliseconds, truncated down, for microseconds since the epoch.
fn timestamp(micros: i64) -> Option<String> {
    let millis = micros.div_euclid(1000);
    let at = chrono::DateTime::from_timestamp_millis(millis)?;
    Some(format!("\"{}\"", at.format("%Y-%m-%dT%H:%M:%S%.3fZ")))
}

/// `unscaled` / 10^`scale` written out exactly, with `scale` digits after the point.
fn decimal(unscaled: i128, scale: i32) -> String {
    if scale <= 0 {
        return (unscaled * 10i128.pow(scale.unsigned_abs())).to_string();
    }
    let scale = scale as usize;
    let digits = unscaled.unsigned_abs().to_string();
    let digits = format!("{digits:0>width$}", width = scale + 1);
    let (whole, fraction) = digits.split_at(digits.len() - scale);
    let sign = if unscaled < 0 { "-" } else { "" };
    format!("{sign}{whole}.{fraction}")
}

fn json_number(v: f64) -> String {
    serde_json::Number::from_f64(v).map_or_else(|| "null".to_owned(), |n| n.to_string())
}

fn json_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_keep_their_scale() {
        assert_eq!(decimal(1230, 2), "12.30");
        assert_eq!(decimal(-5, 2), "-0.05");
        assert_eq!(decimal(0, 2), "0.00");
        assert_eq!(decimal(7, 0), "7");
        assert_eq!(decimal(i64::MAX.into(), 2), "92233720368547758.07");
    }

    #[test]
    fn times_are_milliseconds_truncated_down() {
        assert_eq!(
            timestamp(1_735_689_600_123_999).unwrap(),
            "\"2025-01-01T00:00:00.123Z\""
        );
        assert_eq!(timestamp(-1).unwrap(), "\"1969-12-31T23:59:59.999Z\"");
        assert_eq!(date(0).unwrap(), "\"1970-01-01\"");
    }

    #[test]
    fn long_strings_are_cut_to_bounds() {
        let long = "a".repeat(40);
        assert_eq!(prefix_min(&long), "a".repeat(32));
        assert_eq!(
            prefix_max(&long).unwrap(),
            format!("{}\u{7f}", "a".repeat(32))
        );
        let wide = "é".repeat(40);
        assert_eq!(
            prefix_max(&wide).unwrap(),
            format!("{}\u{10ffff}", "é".repeat(32))
        );
        assert_eq!(prefix_max("short").unwrap(), "short");
        // Every string the prefix begins lies between the bounds.
        let (lo, hi) = (prefix_min(&long), prefix_max(&long).unwrap());
        assert!(lo.as_str() <= long.as_str() && long.as_str() <= hi.as_str());
    }
}
