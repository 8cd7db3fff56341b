//! Typed scalar expressions of SQL views, and their evaluation over one row with SQL's
//! three-valued logic.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::event::Symbols;
use crate::event::time::{civil_from_days, days_from_civil, utc_day};
use crate::views::Datum;

/// The type of a column or an expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Type {
    /// `true`, `false`.
    Bool,
    /// A 64-bit integer.
    Int,
    /// A 64-bit float.
    Float,
    /// A decimal with two places (`DECIMAL(18,2)`), held in cents.
    Money,
    /// Text.
    String,
    /// An instant, microseconds since the Unix epoch, UTC.
    Timestamp,
    /// A UTC day.
    Date,
    /// The type of a bare `NULL`: it fits any other.
    Null,
}

impl Type {
    /// The name used in messages and in `/api/views`.
    pub fn name(self) -> &'static str {
        match self {
            Type::Bool => "bool",
            Type::Int => "int",
            Type::Float => "float",
            Type::Money => "money",
            Type::String => "string",
            Type::Timestamp => "timestamp",
            Type::Date => "date",
            Type::Null => "null",
        }
    }

    /// "a string value", "an int value": the type in a message.
    pub fn value(self) -> String {
        let article = if matches!(self, Type::Int) { "an" } else { "a" };
        format!("{article} {} value", self.name())
    }

    /// Whether arithmetic applies.
    pub fn numeric(self) -> bool {
        matches!(self, Type::Int | Type::Float | Type::Money | Type::Null)
    }

    /// Whether values of the two types can be compared.
    pub fn comparable(self, other: Type) -> bool {
        let time = |t: Type| matches!(t, Type::Timestamp | Type::Date);
        self == other
            || self == Type::Null
            || other == Type::Null
            || (self.numeric() && other.numeric())
            || (time(self) && time(other))
    }
}

/// A comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cmp {
    /// `=`
    Eq,
    /// `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// An arithmetic operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Arith {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/` (always a float, as in DuckDB)
    Div,
    /// `%`
    Rem,
}

/// A `date_trunc` unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Unit {
    /// `second`
    Second,
    /// `minute`
    Minute,
    /// `hour`
    Hour,
    /// `day`
    Day,
    /// `week` (ISO: from Monday)
    Week,
    /// `month`
    Month,
}

impl Unit {
    /// The unit called `name`.
    pub fn of(name: &str) -> Option<Unit> {
        Some(match name.to_ascii_lowercase().as_str() {
            "second" => Unit::Second,
            "minute" => Unit::Minute,
            "hour" => Unit::Hour,
            "day" => Unit::Day,
            "week" => Unit::Week,
            "month" => Unit::Month,
            _ => return None,
        })
    }

    /// The start of the unit that holds instant `micros`.
    pub fn trunc(self, micros: i64) -> i64 {
        const SECOND: i64 = 1_000_000;
        const DAY: i64 = 86_400 * SECOND;
        let floor = |step: i64| micros.div_euclid(step) * step;
        match self {
            Unit::Second => floor(SECOND),
            Unit::Minute => floor(60 * SECOND),
            Unit::Hour => floor(3_600 * SECOND),
            Unit::Day => floor(DAY),
            Unit::Week => {
                // 1970-01-01 was a Thursday: Mondays are days 4 mod 7.
                let day = micros.div_euclid(DAY);
                (day - (day - 4).rem_euclid(7)) * DAY
            }
            Unit::Month => {
                let (y, m, _) = civil_from_days(micros.div_euclid(DAY));
                days_from_civil(y, i64::from(m), 1) * DAY
            }
        }
    }
}

/// A `LIKE` pattern: `%` any run of characters, `_` any one character.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Like(Vec<LikePart>);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum LikePart {
    Any,
    One,
    Char(char),
}

impl Like {
    /// The pattern of a literal.
    pub fn new(pattern: &str) -> Self {
        Like(
            pattern
                .chars()
                .map(|c| match c {
                    '%' => LikePart::Any,
                    '_' => LikePart::One,
                    c => LikePart::Char(c),
                })
                .collect(),
        )
    }

    /// Whether `text` matches.
    pub fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        // Greedy matching with one backtrack point: the last `%` seen.
        let (mut p, mut t) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            match self.0.get(p) {
                Some(LikePart::Any) => {
                    star = Some((p, t));
                    p += 1;
                }
                Some(LikePart::One) => {
                    p += 1;
                    t += 1;
                }
                Some(LikePart::Char(c)) if *c == text[t] => {
                    p += 1;
                    t += 1;
                }
                _ => match star {
                    Some((sp, st)) => {
                        p = sp + 1;
                        t = st + 1;
                        star = Some((sp, st + 1));
                    }
                    None => return false,
                },
            }
        }
        self.0[p..].iter().all(|part| *part == LikePart::Any)
    }
}

/// A scalar expression over a row of [`Datum`]s; `Slot(i)` is the row's `i`th value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Expr {
    /// A value of the row.
    Slot(usize),
    /// A constant.
    Lit(Datum),
    /// `NOT`
    Not(Box<Expr>),
    /// `AND`
    And(Box<Expr>, Box<Expr>),
    /// `OR`
    Or(Box<Expr>, Box<Expr>),
    /// A comparison.
    Cmp(Cmp, Box<Expr>, Box<Expr>),
    /// Arithmetic, with the type of its result.
    Arith(Arith, Box<Expr>, Box<Expr>, Type),
    /// Unary minus.
    Neg(Box<Expr>),
    /// `IS NULL` (`IS NOT NULL` when the flag is set).
    IsNull(Box<Expr>, bool),
    /// `IN (...)` (`NOT IN` when the flag is set).
    In(Box<Expr>, Vec<Expr>, bool),
    /// `LIKE` (`NOT LIKE` when the flag is set).
    Like(Box<Expr>, Like, bool),
    /// `date_trunc(unit, ts)`.
    Trunc(Unit, Box<Expr>),
    /// `CAST(ts AS DATE)`.
    ToDate(Box<Expr>),
    /// `CAST(x AS DOUBLE)`.
    ToFloat(Box<Expr>),
    /// `CAST(x AS DECIMAL(p, 2))`: money, `NULL` beyond the largest value of `p` digits.
    ToMoney(Box<Expr>, u8),
    /// `round(x, digits)`, half away from zero; of the type of `x`.
    Round(Box<Expr>, u8),
}

impl Expr {
    /// Replaces every string constant by its symbol, so that comparing it with an interned
    /// column is comparing two numbers.
    pub fn intern(&mut self, symbols: &Symbols) {
        self.for_each_leaf(&mut |leaf| {
            if let Expr::Lit(Datum::Text(s)) = leaf {
                *leaf = Expr::Lit(Datum::Sym(symbols.intern(s)));
            }
        });
    }

    /// Renumbers the row's slots: slot `i` becomes `slots[i]`.
    pub fn remap(&mut self, slots: &[usize]) {
        self.for_each_leaf(&mut |leaf| {
            if let Expr::Slot(i) = leaf {
                *i = slots[*i];
            }
        });
    }

    /// Calls `f` with every slot the expression reads.
    pub fn for_each_slot(&mut self, f: &mut impl FnMut(usize)) {
        self.for_each_leaf(&mut |leaf| {
            if let Expr::Slot(i) = leaf {
                f(*i);
            }
        });
    }

    /// Calls `f` on every leaf (`Slot` and `Lit`) of the expression.
    fn for_each_leaf(&mut self, f: &mut impl FnMut(&mut Expr)) {
        match self {
            Expr::Slot(_) | Expr::Lit(_) => f(self),
            Expr::Not(e)
            | Expr::Neg(e)
            | Expr::IsNull(e, _)
            | Expr::Like(e, _, _)
            | Expr::Trunc(_, e)
            | Expr::ToDate(e)
            | Expr::ToFloat(e)
            | Expr::ToMoney(e, _)
            | Expr::Round(e, _) => e.for_each_leaf(f),
            Expr::And(a, b) | Expr::Or(a, b) | Expr::Cmp(_, a, b) | Expr::Arith(_, a, b, _) => {
                a.for_each_leaf(f);
                b.for_each_leaf(f);
            }
            Expr::In(e, list, _) => {
                e.for_each_leaf(f);
                list.iter_mut().for_each(|x| x.for_each_leaf(f));
            }
        }
    }

    /// The value of the expression over `row`.
    pub fn eval(&self, row: &[Datum], symbols: &Symbols) -> Datum {
        match self {
            Expr::Slot(i) => row[*i].clone(),
            Expr::Lit(d) => d.clone(),
            Expr::Not(e) => match e.eval(row, symbols) {
                Datum::Bool(b) => Datum::Bool(!b),
                _ => Datum::Null,
            },
            Expr::And(a, b) => and(truth(&a.eval(row, symbols)), || {
                truth(&b.eval(row, symbols))
            })
            .map_or(Datum::Null, Datum::Bool),
            Expr::Or(a, b) => or(truth(&a.eval(row, symbols)), || {
                truth(&b.eval(row, symbols))
            })
            .map_or(Datum::Null, Datum::Bool),
            Expr::Cmp(op, a, b) => {
                let (a, b) = (a.eval(row, symbols), b.eval(row, symbols));
                // Equal strings have equal symbols: no need to read them.
                if let (Datum::Sym(x), Datum::Sym(y), Cmp::Eq | Cmp::Ne) = (&a, &b, op) {
                    return Datum::Bool((x == y) == (*op == Cmp::Eq));
                }
                match compare(&a, &b, symbols) {
                    None => Datum::Null,
                    Some(o) => Datum::Bool(match op {
                        Cmp::Eq => o == Ordering::Equal,
                        Cmp::Ne => o != Ordering::Equal,
                        Cmp::Lt => o == Ordering::Less,
                        Cmp::Le => o != Ordering::Greater,
                        Cmp::Gt => o == Ordering::Greater,
                        Cmp::Ge => o != Ordering::Less,
                    }),
                }
            }
            Expr::Arith(op, a, b, ty) => {
                arith(*op, a.eval(row, symbols), b.eval(row, symbols), *ty)
            }
            Expr::Neg(e) => match e.eval(row, symbols) {
                Datum::Int(n) => n.checked_neg().map_or(Datum::Null, Datum::Int),
                Datum::Money(n) => n.checked_neg().map_or(Datum::Null, Datum::Money),
                Datum::Float(f) => Datum::Float(Float(-f.0)),
                _ => Datum::Null,
            },
            Expr::IsNull(e, negated) => {
                Datum::Bool((e.eval(row, symbols) == Datum::Null) != *negated)
            }
            Expr::In(e, list, negated) => {
                let v = e.eval(row, symbols);
                if v == Datum::Null {
                    return Datum::Null;
                }
                let mut unknown = false;
                for x in list {
                    let x = x.eval(row, symbols);
                    if let (Datum::Sym(a), Datum::Sym(b)) = (&v, &x) {
                        if a == b {
                            return Datum::Bool(!negated);
                        }
                        continue;
                    }
                    match compare(&v, &x, symbols) {
                        Some(Ordering::Equal) => return Datum::Bool(!negated),
                        None => unknown = true,
                        Some(_) => {}
                    }
                }
                if unknown {
                    Datum::Null
                } else {
                    Datum::Bool(*negated)
                }
            }
            Expr::Like(e, pattern, negated) => match text(&e.eval(row, symbols), symbols) {
                Some(t) => Datum::Bool(pattern.matches(&t) != *negated),
                None => Datum::Null,
            },
            Expr::Trunc(unit, e) => match e.eval(row, symbols) {
                Datum::Timestamp(t) => Datum::Timestamp(unit.trunc(t)),
                _ => Datum::Null,
            },
            Expr::ToDate(e) => match e.eval(row, symbols) {
                Datum::Timestamp(t) => Datum::Day(utc_day(t)),
                d @ Datum::Day(_) => d,
                _ => Datum::Null,
            },
            Expr::ToFloat(e) => {
                number(&e.eval(row, symbols)).map_or(Datum::Null, |f| Datum::Float(Float(f)))
            }
            Expr::ToMoney(e, digits) => {
                to_cents(&e.eval(row, symbols), *digits).map_or(Datum::Null, Datum::Money)
            }
            Expr::Round(e, digits) => round(e.eval(row, symbols), *digits),
        }
    }

    /// Whether the expression holds for `row` (a `WHERE`, `HAVING` or `FILTER` condition:
    /// `NULL` does not).
    pub fn holds(&self, row: &[Datum], symbols: &Symbols) -> bool {
        self.eval(row, symbols) == Datum::Bool(true)
    }
}

/// `round(d, digits)`, half away from zero (as DuckDB rounds floats, decimals and integers).
fn round(d: Datum, digits: u8) -> Datum {
    match d {
        Datum::Float(Float(x)) => {
            let scale = 10f64.powi(i32::from(digits));
            Datum::Float(Float((x * scale).round() / scale))
        }
        Datum::Money(cents) if digits < 2 => {
            let unit = 10i64.pow(u32::from(2 - digits));
            // Half away from zero: the remainder's magnitude against half a unit.
            let (q, r) = (cents / unit, cents % unit);
            let q = if 2 * r.abs() >= unit {
                q + r.signum()
            } else {
                q
            };
            Datum::Money(q * unit)
        }
        d => d,
    }
}

/// SQL's `AND` of `left` and `right` (`None`: unknown); `right` is evaluated only when `left`
/// does not decide (when it is not false).
pub(super) fn and(left: Option<bool>, right: impl FnOnce() -> Option<bool>) -> Option<bool> {
    match left {
        Some(false) => Some(false),
        left => match (left, right()) {
            (_, Some(false)) => Some(false),
            (Some(true), Some(true)) => Some(true),
            _ => None,
        },
    }
}

/// SQL's `OR` of `left` and `right`; `right` is evaluated only when `left` is not true.
pub(super) fn or(left: Option<bool>, right: impl FnOnce() -> Option<bool>) -> Option<bool> {
    match left {
        Some(true) => Some(true),
        left => match (left, right()) {
            (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
            _ => None,
        },
    }
}

/// A condition's value as a truth: `None` for `NULL` (and for what is not a boolean).
pub(super) fn truth(d: &Datum) -> Option<bool> {
    match d {
        Datum::Bool(b) => Some(*b),
        _ => None,
    }
}

/// The text of a string value.
pub fn text<'a>(d: &'a Datum, symbols: &Symbols) -> Option<Cow<'a, str>> {
    match d {
        Datum::Sym(s) => Some(Cow::Owned(symbols.resolve(*s).to_string())),
        Datum::Text(t) => Some(Cow::Borrowed(t)),
        _ => None,
    }
}

/// A number as a float (money in units, not cents).
pub fn number(d: &Datum) -> Option<f64> {
    match d {
        Datum::Int(n) => Some(*n as f64),
        Datum::Money(c) => Some(*c as f64 / 100.0),
        Datum::Float(f) => Some(f.0),
        _ => None,
    }
}

/// A number as cents, as DuckDB casts it to `DECIMAL(digits, 2)`: a float times 100, rounded
/// half away from zero; `None` for `NULL`, for what is not a number, and beyond the largest
/// value of `digits` digits (where DuckDB raises an error).
pub fn to_cents(d: &Datum, digits: u8) -> Option<i64> {
    let cents = match d {
        Datum::Int(n) => n.checked_mul(100)?,
        Datum::Money(c) => *c,
        Datum::Float(f) => {
            let c = (f.0 * 100.0).round();
            // Within i64 (a float beyond it casts to the nearest end), then the digits decide.
            if !c.is_finite() || c.abs() >= 9.2e18 {
                return None;
            }
            c as i64
        }
        _ => return None,
    };
    let limit = 10i64.checked_pow(u32::from(digits)).unwrap_or(i64::MAX);
    (cents.unsigned_abs() < limit.unsigned_abs()).then_some(cents)
}

/// SQL's comparison of two values: `None` when either is `NULL` (or they do not compare).
pub fn compare(a: &Datum, b: &Datum, symbols: &Symbols) -> Option<Ordering> {
    use Datum::*;
    const DAY: i64 = 86_400_000_000;
    match (a, b) {
        (Null, _) | (_, Null) => None,
        (Sym(x), Sym(y)) if x == y => Some(Ordering::Equal),
        (Int(x), Int(y)) | (Money(x), Money(y)) | (Timestamp(x), Timestamp(y)) => Some(x.cmp(y)),
        (Money(c), Int(n)) => Some(i128::from(*c).cmp(&(i128::from(*n) * 100))),
        (Int(n), Money(c)) => Some((i128::from(*n) * 100).cmp(&i128::from(*c))),
        (Day(x), Day(y)) => Some(x.cmp(y)),
        (Day(d), Timestamp(t)) => Some((i64::from(*d) * DAY).cmp(t)),
        (Timestamp(t), Day(d)) => Some(t.cmp(&(i64::from(*d) * DAY))),
        (Bool(x), Bool(y)) => Some(x.cmp(y)),
        (Sym(_) | Text(_), Sym(_) | Text(_)) => Some(text(a, symbols)?.cmp(&text(b, symbols)?)),
        _ => Some(number(a)?.total_cmp(&number(b)?)),
    }
}

fn arith(op: Arith, a: Datum, b: Datum, ty: Type) -> Datum {
    use Datum::*;
    if a == Null || b == Null {
        return Null;
    }
    match ty {
        Type::Int => {
            let (Int(x), Int(y)) = (a, b) else {
                return Null;
            };
            let r = match op {
                Arith::Add => x.checked_add(y),
                Arith::Sub => x.checked_sub(y),
                Arith::Mul => x.checked_mul(y),
                Arith::Rem => x.checked_rem(y),
                Arith::Div => None,
            };
            r.map_or(Null, Int)
        }
        Type::Money => {
            let cents = |d: Datum| match d {
                Money(c) => Some(i128::from(c)),
                Int(n) => Some(i128::from(n) * 100),
                _ => None,
            };
            let r = match (op, &a, &b) {
                (Arith::Mul, Money(c), Int(n)) | (Arith::Mul, Int(n), Money(c)) => {
                    Some(i128::from(*c) * i128::from(*n))
                }
                (Arith::Add, _, _) => cents(a).zip(cents(b)).map(|(x, y)| x + y),
                (Arith::Sub, _, _) => cents(a).zip(cents(b)).map(|(x, y)| x - y),
                (Arith::Rem, _, _) => cents(a).zip(cents(b)).and_then(|(x, y)| x.checked_rem(y)),
                _ => None,
            };
            r.and_then(|c| i64::try_from(c).ok()).map_or(Null, Money)
        }
        _ => {
            let (Some(x), Some(y)) = (number(&a), number(&b)) else {
                return Null;
            };
            let r = match op {
                Arith::Add => x + y,
                Arith::Sub => x - y,
                Arith::Mul => x * y,
                // DuckDB: a division by zero is NULL.
                Arith::Div | Arith::Rem if y == 0.0 => return Null,
                Arith::Div => x / y,
                Arith::Rem => x % y,
            };
            Float(crate::views::Float(r))
        }
    }
}

/// A float that orders and hashes by its bits' total order, so that it can be a key.
pub use crate::views::Float;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_matches_as_sql_does() {
        for (pattern, text, want) in [
            ("a%", "abc", true),
            ("a%", "ba", false),
            ("%b%", "abc", true),
            ("a_c", "abc", true),
            ("a_c", "ac", false),
            ("%", "", true),
            ("_", "", false),
            ("%c", "abcabc", true),
            ("a%b%c", "aXbYc", true),
            ("a%b%c", "aXcYb", false),
            ("日%", "日本", true),
        ] {
            assert_eq!(
                Like::new(pattern).matches(text),
                want,
                "{text} LIKE {pattern}"
            );
        }
    }

    #[test]
    fn casts_to_decimal_round_half_away_from_zero_as_duckdb_does() {
        // DuckDB 2.0: CAST(0.125::DOUBLE AS DECIMAL(18,2)) is 0.13, 2.675 is 2.68 (2.675 * 100 is
        // 267.5 in floats), 1.005 is 1.00 (100.49999999999999).
        let float = |f: f64| Datum::Float(Float(f));
        assert_eq!(to_cents(&float(0.125), 18), Some(13));
        assert_eq!(to_cents(&float(-0.125), 18), Some(-13));
        assert_eq!(to_cents(&float(2.675), 18), Some(268));
        assert_eq!(to_cents(&float(1.005), 18), Some(100));
        assert_eq!(to_cents(&Datum::Int(7), 18), Some(700));
        assert_eq!(to_cents(&Datum::Money(-1234), 18), Some(-1234));
        // Beyond DECIMAL(5,2), beyond i64, not a number: NULL.
        assert_eq!(to_cents(&float(999.99), 5), Some(99_999));
        assert_eq!(to_cents(&float(1000.0), 5), None);
        assert_eq!(to_cents(&Datum::Int(i64::MAX / 10), 18), None);
        assert_eq!(to_cents(&float(f64::NAN), 18), None);
        assert_eq!(to_cents(&Datum::Null, 18), None);
    }

    #[test]
    fn truncation_to_weeks_starts_on_monday_and_to_months_on_the_first() {
        let at = crate::event::time::parse_rfc3339("2024-12-31T20:15:42.5Z").unwrap();
        let show = |u: Unit| crate::event::time::format_rfc3339(u.trunc(at));
        assert_eq!(show(Unit::Second), "2024-12-31T20:15:42Z");
        assert_eq!(show(Unit::Minute), "2024-12-31T20:15:00Z");
        assert_eq!(show(Unit::Hour), "2024-12-31T20:00:00Z");
        assert_eq!(show(Unit::Day), "2024-12-31T00:00:00Z");
        assert_eq!(show(Unit::Week), "2024-12-30T00:00:00Z");
        assert_eq!(show(Unit::Month), "2024-12-01T00:00:00Z");
    }

    #[test]
    fn null_is_unknown_in_comparisons_and_logic() {
        let symbols = Symbols::default();
        let lit = |d: Datum| Box::new(Expr::Lit(d));
        let eq = Expr::Cmp(Cmp::Eq, lit(Datum::Null), lit(Datum::Int(1)));
        assert_eq!(eq.eval(&[], &symbols), Datum::Null);
        let or = Expr::Or(Box::new(eq.clone()), lit(Datum::Bool(true)));
        assert_eq!(or.eval(&[], &symbols), Datum::Bool(true));
        let and = Expr::And(Box::new(eq), lit(Datum::Bool(true)));
        assert_eq!(and.eval(&[], &symbols), Datum::Null);
        let money = Expr::Cmp(Cmp::Eq, lit(Datum::Money(200)), lit(Datum::Int(2)));
        assert_eq!(money.eval(&[], &symbols), Datum::Bool(true));
    }
}
