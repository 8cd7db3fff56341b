//! Exact decimal money: amounts are held as integer cents, never as floats, so sums do not depend
//! on the order of additions or on the number of workers.

/// Parses a decimal amount (`19.99`, `0`, `-5`, `1e2`, `1.5E+1`) into cents.
///
/// The text is a JSON number, or the same grammar inside a JSON string. An amount that is not a
/// whole number of cents (`19.999`, `1e-3`) is rejected rather than rounded: silently rounding
/// money loses it. Trailing zeros are fine (`19.990` is 1999 cents). Negative amounts are
/// accepted (refunds and corrections are money too). The range is that of `i64` cents.
pub fn parse_cents(text: &str) -> Result<i64, &'static str> {
    let b = text.as_bytes();
    let mut i = 0;
    let negative = b.first() == Some(&b'-');
    if negative {
        i += 1;
    }
    if !b.get(i).is_some_and(u8::is_ascii_digit) {
        return Err("not a decimal number");
    }
    let mut mantissa: i128 = 0;
    let mut digits = 0usize;
    let mut fraction_digits = 0i64;
    let mut seen_dot = false;
    while i < b.len() {
        match b[i] {
            c @ b'0'..=b'9' => {
                if mantissa > i128::from(i64::MAX) * 10 {
                    return Err("amount out of range");
                }
                mantissa = mantissa * 10 + i128::from(c - b'0');
                digits += 1;
                if seen_dot {
                    fraction_digits += 1;
                }
            }
            b'.' if !seen_dot => seen_dot = true,
            b'e' | b'E' => break,
            _ => return Err("not a decimal number"),
        }
        i += 1;
    }
    if digits == 0 || (seen_dot && b[i - 1] == b'.') {
        return Err("not a decimal number");
    }
    let mut exponent = 0i64;
    if i < b.len() {
        i += 1; // the 'e'
        let exp_negative = match b.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            exponent = (exponent * 10 + i64::from(b[i] - b'0')).min(1_000);
            i += 1;
        }
        if i == start || i != b.len() {
            return Err("not a decimal number");
        }
        if exp_negative {
            exponent = -exponent;
        }
    }
    // value = mantissa * 10^(exponent - fraction_digits); cents = value * 100
    let mut scale = exponent - fraction_digits + 2;
    let mut cents = mantissa;
    while scale < 0 {
        if cents % 10 != 0 {
            return Err("more than 2 decimal places");
        }
        cents /= 10;
        scale += 1;
    }
    while scale > 0 {
        if cents == 0 {
            break;
        }
        cents *= 10;
        if cents > i128::from(i64::MAX) {
            return Err("amount out of range");
        }
        scale -= 1;
    }
    let cents = if negative { -cents } else { cents };
    i64::try_from(cents).map_err(|_| "amount out of range")
}

/// Formats cents as a decimal string with exactly two places: `1999` -> `"19.99"`.
pub fn format_cents(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// The average of `count` amounts totalling `sum` cents, rounded half away from zero to the
/// cent, as a decimal string with two places.
pub fn format_average(sum: i64, count: i64) -> String {
    if count == 0 {
        return format_cents(0);
    }
    let (s, c) = (i128::from(sum), i128::from(count));
    let rounded = if (s < 0) == (c < 0) {
        (2 * s + c) / (2 * c)
    } else {
        (2 * s - c) / (2 * c)
    };
    format_cents(rounded as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_cases_from_the_spec() {
        assert_eq!(parse_cents("0"), Ok(0));
        assert_eq!(parse_cents("0.5"), Ok(50));
        assert_eq!(parse_cents("19.99"), Ok(1999));
        assert_eq!(parse_cents("1e2"), Ok(10_000));
        assert_eq!(parse_cents("1.5E+1"), Ok(1_500));
        assert_eq!(parse_cents("1999e-2"), Ok(1999));
        assert_eq!(parse_cents("-5"), Ok(-500));
        assert_eq!(parse_cents("-0.01"), Ok(-1));
        assert_eq!(parse_cents("19.990"), Ok(1999));
        assert_eq!(parse_cents("0e999"), Ok(0));
        assert_eq!(parse_cents("19.999"), Err("more than 2 decimal places"));
        assert_eq!(parse_cents("1e-3"), Err("more than 2 decimal places"));
        assert_eq!(
            parse_cents("99999999999999999999"),
            Err("amount out of range")
        );
        assert_eq!(parse_cents("1e30"), Err("amount out of range"));
        for bad in [
            "", "-", ".5", "5.", "1e", "1e+", "abc", "1.2.3", "+1", " 1", "1_000",
        ] {
            assert!(parse_cents(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn formatting() {
        assert_eq!(format_cents(1999), "19.99");
        assert_eq!(format_cents(5), "0.05");
        assert_eq!(format_cents(-150), "-1.50");
        assert_eq!(format_cents(i64::MIN), "-92233720368547758.08");
        assert_eq!(format_average(1000, 3), "3.33");
        assert_eq!(format_average(1001, 2), "5.01"); // 5.005 rounds away from zero
        assert_eq!(format_average(-1001, 2), "-5.01");
    }
}
