//! RFC 3339 timestamps: parsed with any UTC offset, held as microseconds since the Unix epoch
//! (UTC), and bucketed into UTC days and minutes.

/// Microseconds in one minute.
pub const MICROS_PER_MINUTE: i64 = 60_000_000;
/// Microseconds in one day.
pub const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Parses an RFC 3339 timestamp (`2024-01-01T10:00:00Z`, `2024-01-01t10:00:00.25+05:30`, or with a
/// space instead of the `T`) into microseconds since the Unix epoch, UTC. Fractions finer than a
/// microsecond are truncated. Returns a short reason on failure.
pub fn parse_rfc3339(s: &str) -> Result<i64, &'static str> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return Err("too short for an RFC 3339 timestamp");
    }
    let year = digits(b, 0, 4)?;
    expect(b, 4, b'-')?;
    let month = digits(b, 5, 2)?;
    expect(b, 7, b'-')?;
    let day = digits(b, 8, 2)?;
    if !matches!(b[10], b'T' | b't' | b' ') {
        return Err("expected 'T' between date and time");
    }
    let hour = digits(b, 11, 2)?;
    expect(b, 13, b':')?;
    let minute = digits(b, 14, 2)?;
    expect(b, 16, b':')?;
    let second = digits(b, 17, 2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err("date out of range");
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err("time out of range");
    }
    let mut i = 19;
    let mut micros = 0i64;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 6 {
                micros = micros * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return Err("empty fraction of a second");
        }
        for _ in n..6 {
            micros *= 10;
        }
    }
    let offset_minutes = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() => {
            let h = digits(b, i + 1, 2)?;
            expect(b, i + 3, b':')?;
            let m = digits(b, i + 4, 2)?;
            if h > 23 || m > 59 {
                return Err("UTC offset out of range");
            }
            let off = h * 60 + m;
            if *sign == b'-' { -off } else { off }
        }
        _ => return Err("expected 'Z' or a UTC offset such as +02:00 at the end"),
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Ok(seconds * 1_000_000 + micros)
}

fn digits(b: &[u8], at: usize, n: usize) -> Result<i64, &'static str> {
    let mut v = 0i64;
    for &c in b.get(at..at + n).ok_or("truncated")? {
        if !c.is_ascii_digit() {
            return Err("expected a digit");
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Ok(v)
}

fn expect(b: &[u8], at: usize, c: u8) -> Result<(), &'static str> {
    if b.get(at) == Some(&c) {
        Ok(())
    } else {
        Err("misplaced separator")
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian `(year, month, day)` of a day number since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// The UTC day (days since 1970-01-01) of an instant.
pub fn utc_day(micros: i64) -> i32 {
    micros.div_euclid(MICROS_PER_DAY) as i32
}

/// The UTC minute (minutes since 1970-01-01T00:00Z) of an instant.
pub fn utc_minute(micros: i64) -> i64 {
    micros.div_euclid(MICROS_PER_MINUTE)
}

/// `YYYY-MM-DD` of a UTC day number.
pub fn format_day(day: i32) -> String {
    let (y, m, d) = civil_from_days(i64::from(day));
    format!("{y:04}-{m:02}-{d:02}")
}

/// RFC 3339 (`YYYY-MM-DDTHH:MM:SS.ffffffZ`, or without a fraction when it is zero) of an instant.
pub fn format_rfc3339(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let day = secs.div_euclid(86_400);
    let s = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(day);
    let (hh, mm, ss) = (s / 3_600, s / 60 % 60, s % 60);
    if frac == 0 {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{frac:06}Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_map_to_the_same_utc_instant() {
        let z = parse_rfc3339("2024-01-01T10:00:00Z").unwrap();
        assert_eq!(parse_rfc3339("2024-01-01T12:00:00+02:00"), Ok(z));
        assert_eq!(parse_rfc3339("2024-01-01T04:30:00-05:30"), Ok(z));
        assert_eq!(parse_rfc3339("2024-01-01 10:00:00z"), Ok(z));
        assert_eq!(z, 1_704_103_200_000_000);
    }

    #[test]
    fn an_offset_can_move_an_event_to_another_utc_day_and_minute() {
        let t = parse_rfc3339("2024-03-01T00:30:15.5+01:00").unwrap();
        assert_eq!(format_day(utc_day(t)), "2024-02-29");
        assert_eq!(
            format_rfc3339(utc_minute(t) * 60_000_000),
            "2024-02-29T23:30:00Z"
        );
        assert_eq!(format_rfc3339(t), "2024-02-29T23:30:15.500000Z");
    }

    #[test]
    fn fractions_are_truncated_to_microseconds() {
        let t = parse_rfc3339("1970-01-01T00:00:00.123456789Z").unwrap();
        assert_eq!(t, 123_456);
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59.5Z"), Ok(-500_000));
        assert_eq!(format_day(utc_day(-500_000)), "1969-12-31");
    }

    #[test]
    fn malformed_timestamps_are_rejected() {
        for bad in [
            "2024-01-01",
            "2024-01-01T10:00:00",
            "2024-13-01T10:00:00Z",
            "2023-02-29T10:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T10:00:00+2:00",
            "2024-01-01T10:00:00.Z",
            "2024-01-01T10:00:00Zjunk",
            "yesterday at noon, roughly",
            "2024-01-01T10:00:00+02:00x",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn civil_conversion_round_trips() {
        for day in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, i64::from(m), i64::from(d)), day);
        }
    }
}
