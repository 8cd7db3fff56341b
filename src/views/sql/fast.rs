//! Expressions specialised for the per-event path of fused views.
//!
//! Most of what views test and group by per event is a column, a column compared with a
//! string, a column's nullness, or a time truncated: [`Fast`] does those without building a
//! [`Datum`] for every node of the expression tree, and hands the rest to [`Expr::eval`].
//! The answers are [`Expr::eval`]'s: SQL's three-valued logic included.

use super::expr::{Cmp, Expr, Unit, and, compare, or, truth};
use crate::event::time::utc_day;
use crate::event::{Sym, Symbols};
use crate::views::Datum;

/// An expression over an event row, specialised.
#[derive(Clone, Debug, PartialEq)]
pub enum Fast {
    /// A column's value.
    Slot(usize),
    /// `column IS NULL` (`IS NOT NULL` when the flag is set).
    IsNull(usize, bool),
    /// `column = 'text'` (`<>` when the flag is set); strings are interned, so equal strings
    /// are equal symbols.
    SymEq(usize, Sym, bool),
    /// `CAST(column AS DATE)`.
    Date(usize),
    /// `date_trunc(unit, column)`.
    Trunc(Unit, usize),
    /// `AND`
    And(Box<Fast>, Box<Fast>),
    /// `OR`
    Or(Box<Fast>, Box<Fast>),
    /// `NOT`
    Not(Box<Fast>),
    /// Anything else.
    Other(Expr),
}

impl Fast {
    /// The specialised form of `e`.
    pub fn of(e: &Expr) -> Fast {
        let column = |x: &Expr| match x {
            Expr::Slot(i) => Some(*i),
            _ => None,
        };
        let special = match e {
            Expr::Slot(i) => Some(Fast::Slot(*i)),
            Expr::IsNull(x, negated) => column(x).map(|i| Fast::IsNull(i, *negated)),
            Expr::Cmp(op @ (Cmp::Eq | Cmp::Ne), a, b) => match (&**a, &**b) {
                (Expr::Slot(i), Expr::Lit(Datum::Sym(s)))
                | (Expr::Lit(Datum::Sym(s)), Expr::Slot(i)) => {
                    Some(Fast::SymEq(*i, *s, *op == Cmp::Ne))
                }
                _ => None,
            },
            Expr::ToDate(x) => column(x).map(Fast::Date),
            Expr::Trunc(unit, x) => column(x).map(|i| Fast::Trunc(*unit, i)),
            Expr::And(a, b) => Some(Fast::And(Box::new(Fast::of(a)), Box::new(Fast::of(b)))),
            Expr::Or(a, b) => Some(Fast::Or(Box::new(Fast::of(a)), Box::new(Fast::of(b)))),
            Expr::Not(a) => Some(Fast::Not(Box::new(Fast::of(a)))),
            _ => None,
        };
        special.unwrap_or_else(|| Fast::Other(e.clone()))
    }

    /// The truth of a condition: `None` for `NULL` (and for a value that is not a boolean).
    pub fn truth(&self, row: &[Datum], symbols: &Symbols) -> Option<bool> {
        match self {
            Fast::IsNull(i, negated) => Some(matches!(row[*i], Datum::Null) != *negated),
            Fast::SymEq(i, s, negated) => match &row[*i] {
                Datum::Sym(x) => Some((x == s) != *negated),
                other => compare(other, &Datum::Sym(*s), symbols)
                    .map(|o| (o == std::cmp::Ordering::Equal) != *negated),
            },
            Fast::And(a, b) => and(a.truth(row, symbols), || b.truth(row, symbols)),
            Fast::Or(a, b) => or(a.truth(row, symbols), || b.truth(row, symbols)),
            Fast::Not(a) => a.truth(row, symbols).map(|t| !t),
            _ => truth(&self.eval(row, symbols)),
        }
    }

    /// Whether a condition holds (`NULL` does not). The usual tests, a column's nullness and
    /// a column that is a symbol compared with a string, are answered here, inline, without
    /// the call to [`Fast::truth`] a condition costs otherwise: the fused views test a few
    /// such conditions per event.
    #[inline]
    pub fn holds(&self, row: &[Datum], symbols: &Symbols) -> bool {
        match (self, self.slot().map(|i| &row[i])) {
            (Fast::IsNull(_, negated), Some(d)) => matches!(d, Datum::Null) != *negated,
            (Fast::SymEq(_, s, negated), Some(Datum::Sym(x))) => (x == s) != *negated,
            _ => self.truth(row, symbols) == Some(true),
        }
    }

    /// The value.
    pub fn eval(&self, row: &[Datum], symbols: &Symbols) -> Datum {
        match self {
            Fast::Slot(i) => row[*i].clone(),
            Fast::Date(i) => match &row[*i] {
                Datum::Timestamp(t) => Datum::Day(utc_day(*t)),
                d @ Datum::Day(_) => d.clone(),
                _ => Datum::Null,
            },
            Fast::Trunc(unit, i) => match &row[*i] {
                Datum::Timestamp(t) => Datum::Timestamp(unit.trunc(*t)),
                _ => Datum::Null,
            },
            Fast::Other(e) => e.eval(row, symbols),
            _ => self.truth(row, symbols).map_or(Datum::Null, Datum::Bool),
        }
    }

    /// The column a column, a date, a truncated time, a nullness test or a comparison with a
    /// string reads.
    pub fn slot(&self) -> Option<usize> {
        match self {
            Fast::Slot(i) | Fast::Date(i) | Fast::Trunc(_, i) => Some(*i),
            Fast::IsNull(i, _) | Fast::SymEq(i, _, _) => Some(*i),
            _ => None,
        }
    }

    /// Pushes the conjuncts of a condition (itself, unless it is an `AND`).
    pub fn conjuncts(&self, out: &mut Vec<Fast>) {
        match self {
            Fast::And(a, b) => {
                a.conjuncts(out);
                b.conjuncts(out);
            }
            other => out.push(other.clone()),
        }
    }

    /// Whether the value is `NULL`.
    pub fn is_null(&self, row: &[Datum], symbols: &Symbols) -> bool {
        match self {
            Fast::Slot(i) => matches!(row[*i], Datum::Null),
            _ => matches!(self.eval(row, symbols), Datum::Null),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::sql::expr::Cmp;

    /// Every specialised form answers as [`Expr::eval`], NULLs included.
    #[test]
    fn fast_forms_answer_as_the_expressions_do() {
        let symbols = Symbols::default();
        let (a, b) = (symbols.intern("a"), symbols.intern("b"));
        let slot = |i| Box::new(Expr::Slot(i));
        let lit = |s| Box::new(Expr::Lit(Datum::Sym(s)));
        let eq = Expr::Cmp(Cmp::Eq, slot(0), lit(a));
        let ne = Expr::Cmp(Cmp::Ne, lit(b), slot(0));
        let null = Expr::IsNull(slot(1), false);
        let exprs = [
            eq.clone(),
            ne.clone(),
            null.clone(),
            Expr::IsNull(slot(0), true),
            Expr::And(Box::new(eq.clone()), Box::new(null.clone())),
            Expr::Or(
                Box::new(ne.clone()),
                Box::new(Expr::Not(Box::new(eq.clone()))),
            ),
            Expr::Not(Box::new(Expr::And(Box::new(eq), Box::new(ne)))),
            Expr::ToDate(slot(2)),
            Expr::Trunc(Unit::Hour, slot(2)),
            Expr::Slot(1),
        ];
        let rows = [
            vec![
                Datum::Sym(a),
                Datum::Int(1),
                Datum::Timestamp(90_000_000_000),
            ],
            vec![Datum::Sym(b), Datum::Null, Datum::Timestamp(-1)],
            vec![Datum::Null, Datum::Int(2), Datum::Null],
        ];
        for e in &exprs {
            let fast = Fast::of(e);
            for row in &rows {
                assert_eq!(fast.eval(row, &symbols), e.eval(row, &symbols), "{e:?}");
                assert_eq!(fast.holds(row, &symbols), e.holds(row, &symbols), "{e:?}");
            }
        }
    }
}
