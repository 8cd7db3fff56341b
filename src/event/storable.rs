//! What the batch layer can store: the limits that Delta Lake, Parquet readers and file systems
//! put on values. The decoder applies them to every record, so a value the lake cannot hold
//! becomes a dead letter instead of a commit that no reader can open; the committer checks them
//! again before a commit.

use super::time::days_from_civil;

/// The first instant readers accept: `0001-01-01T00:00:00Z`, in microseconds since the Unix
/// epoch. Delta's `date` and `timestamp` types, PyArrow's conversions and Spark all stop at
/// year 1.
pub const MIN_TIMESTAMP: i64 = -62_135_596_800_000_000;
/// The last instant readers accept: `9999-12-31T23:59:59.999999Z`.
pub const MAX_TIMESTAMP: i64 = 253_402_300_799_999_999;

/// The largest amount of money, in cents, that the lake's `decimal(18, 2)` columns hold:
/// `9999999999999999.99`.
pub const MAX_CENTS: i64 = 999_999_999_999_999_999;

/// The most bytes a partition value may take once escaped for its directory name. A file name
/// is at most 255 bytes on Linux, macOS and Windows file systems; `event_type=` and some room
/// for a longer column name come off that.
pub const MAX_PARTITION_BYTES: usize = 200;

/// How much of a value a message shows.
const SHOWN_CHARS: usize = 100;

/// Whether an instant lies in the years 0001 to 9999 (UTC).
pub fn timestamp_in_range(micros: i64) -> bool {
    (MIN_TIMESTAMP..=MAX_TIMESTAMP).contains(&micros)
}

/// Whether an amount in cents fits `decimal(18, 2)`.
pub fn money_in_range(cents: i64) -> bool {
    (-MAX_CENTS..=MAX_CENTS).contains(&cents)
}

/// Checks a string that becomes a partition value: not empty (Delta reads an empty partition
/// value as null) and at most [`MAX_PARTITION_BYTES`] once escaped. The error says what is
/// wrong, showing at most the first 100 characters of the value.
pub fn check_partition_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("is empty; Delta Lake reads an empty partition value as null".to_owned());
    }
    // Escaping at most triples a byte, so short values need no count.
    if value.len() * 3 > MAX_PARTITION_BYTES {
        let escaped = escaped_len(value);
        if escaped > MAX_PARTITION_BYTES {
            return Err(format!(
                "is {} bytes ({escaped} escaped for a directory name), over the limit of \
                 {MAX_PARTITION_BYTES}: {}",
                value.len(),
                shown(value)
            ));
        }
    }
    Ok(())
}

/// At most the first 100 characters of `value`, quoted, with `…` when it was cut.
pub fn shown(value: &str) -> String {
    match value.char_indices().nth(SHOWN_CHARS) {
        Some((cut, _)) => format!("{:?}…", &value[..cut]),
        None => format!("{value:?}"),
    }
}

/// Whether `c` is escaped in a partition directory name (as Hive, Spark and delta-rs escape).
fn escaped(c: char) -> bool {
    c.is_control() || "\"#%'*/:=?\\{[]^".contains(c)
}

/// The length of [`escape_partition_value`]'s result.
fn escaped_len(value: &str) -> usize {
    value
        .chars()
        .map(|c| {
            if escaped(c) {
                3 * c.len_utf8()
            } else {
                c.len_utf8()
            }
        })
        .sum()
}

/// Escapes a partition value for a directory name the way Hive and Spark do: each byte of a
/// reserved or control character as `%XX`.
pub fn escape_partition_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if escaped(c) {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `YYYY-MM-DD` dates that are partition values, checked the same way: a date of year 1 to
/// 9999.
pub fn check_date_value(value: &str) -> Result<(), String> {
    let b = value.as_bytes();
    let ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && [0..4, 5..7, 8..10]
            .iter()
            .all(|r| b[r.clone()].iter().all(u8::is_ascii_digit))
        && {
            let n = |r: std::ops::Range<usize>| value[r].parse::<i64>().unwrap_or(0);
            let (y, m, d) = (n(0..4), n(5..7), n(8..10));
            let day = days_from_civil(y, m, d);
            y >= 1 && (1..=12).contains(&m) && (1..=31).contains(&d) && {
                let (y2, m2, d2) = super::time::civil_from_days(day);
                (y2, i64::from(m2), i64::from(d2)) == (y, m, d)
            }
        };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "is not a date from 0001-01-01 to 9999-12-31: {}",
            shown(value)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::time::{format_rfc3339, parse_rfc3339};

    #[test]
    fn the_range_is_years_1_to_9999_utc() {
        assert_eq!(format_rfc3339(MIN_TIMESTAMP), "0001-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(MAX_TIMESTAMP), "9999-12-31T23:59:59.999999Z");
        assert!(timestamp_in_range(
            parse_rfc3339("0001-01-01T00:00:00Z").unwrap()
        ));
        assert!(!timestamp_in_range(
            parse_rfc3339("0000-06-01T00:00:00Z").unwrap()
        ));
        // A local time in year 1 that is still year 0 in UTC.
        assert!(!timestamp_in_range(
            parse_rfc3339("0001-01-01T00:00:00+14:00").unwrap()
        ));
        // A local time in 9999 that is year 10000 in UTC.
        assert!(!timestamp_in_range(
            parse_rfc3339("9999-12-31T23:00:00-05:00").unwrap()
        ));
        assert!(timestamp_in_range(
            parse_rfc3339("9999-12-31T23:59:59.999999Z").unwrap()
        ));
    }

    #[test]
    fn money_fits_eighteen_digits() {
        assert!(money_in_range(MAX_CENTS));
        assert!(money_in_range(-MAX_CENTS));
        assert!(!money_in_range(MAX_CENTS + 1));
        assert!(!money_in_range(i64::MIN));
    }

    #[test]
    fn partition_values_must_be_non_empty_and_short_once_escaped() {
        assert!(check_partition_value("purchase").is_ok());
        assert!(check_partition_value("").is_err());
        assert!(check_partition_value(&"a".repeat(200)).is_ok());
        assert!(check_partition_value(&"a".repeat(201)).is_err());
        // 70 slashes are 210 bytes escaped.
        assert!(check_partition_value(&"/".repeat(66)).is_ok());
        assert!(check_partition_value(&"/".repeat(70)).is_err());
        let long = "x".repeat(10_000);
        let message = check_partition_value(&long).unwrap_err();
        assert!(message.len() < 200, "{message}");
        assert!(message.contains('…'));
    }

    #[test]
    fn escaping_counts_what_it_writes() {
        for value in ["a/b", "100%", "é:ü", "tab\there", "plain", "{[x]}"] {
            assert_eq!(escaped_len(value), escape_partition_value(value).len());
        }
        assert_eq!(escape_partition_value("a/b=c"), "a%2Fb%3Dc");
    }

    #[test]
    fn dates_are_checked() {
        assert!(check_date_value("2024-02-29").is_ok());
        assert!(check_date_value("0001-01-01").is_ok());
        assert!(check_date_value("9999-12-31").is_ok());
        for bad in [
            "2023-02-29",
            "0000-06-01",
            "-001-12-31",
            "10000-01-01",
            "",
            "2024-1-01",
        ] {
            assert!(check_date_value(bad).is_err(), "{bad}");
        }
    }
}
