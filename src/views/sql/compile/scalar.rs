//! The scalar parts of an expression, typed as DuckDB types them: literals, a string read as a
//! timestamp where one is expected, binary operators, casts.

use sqlparser::ast::{self, BinaryOperator, DataType, Spanned};

use super::{Result, err, expect_bool};
use crate::event::time::parse_rfc3339;
use crate::views::sql::SqlError;
use crate::views::sql::expr::{Arith, Cmp, Expr, Type};
use crate::views::{Datum, Float};

pub(super) fn literal(v: &ast::ValueWithSpan) -> Result<(Expr, Type)> {
    Ok(match &v.value {
        ast::Value::Number(n, _) => match n.parse::<i64>() {
            Ok(i) => (Expr::Lit(Datum::Int(i)), Type::Int),
            // DuckDB reads `1.25` as a DECIMAL: with at most two places, that is money here.
            Err(_) => match crate::event::money::parse_cents(n) {
                Ok(c) if n.split_once('.').is_some_and(|(_, f)| f.len() <= 2) => {
                    (Expr::Lit(Datum::Money(c)), Type::Money)
                }
                _ => match n.parse::<f64>() {
                    Ok(f) => (Expr::Lit(Datum::Float(Float(f))), Type::Float),
                    Err(_) => return Err(err(v, format!("`{n}` is not a number"))),
                },
            },
        },
        ast::Value::SingleQuotedString(s) => (Expr::Lit(Datum::Text(s.clone())), Type::String),
        ast::Value::Boolean(b) => (Expr::Lit(Datum::Bool(*b)), Type::Bool),
        ast::Value::Null => (Expr::Lit(Datum::Null), Type::Null),
        other => return Err(err(v, format!("the literal `{other}` is not supported"))),
    })
}

/// A string literal where a timestamp or date is expected becomes one, as DuckDB casts it.
pub(super) fn coerce(node: &impl Spanned, e: Expr, from: Type, to: Type) -> Result<Expr> {
    match (&e, from, to) {
        (Expr::Lit(Datum::Text(s)), Type::String, Type::Timestamp | Type::Date) => {
            let normal = if s.len() == 10 {
                format!("{s}T00:00:00Z")
            } else {
                let t = s.replacen(' ', "T", 1);
                let zoned = t.ends_with('Z') || t[t.len().saturating_sub(6)..].contains(['+', '-']);
                if zoned { t } else { format!("{t}Z") }
            };
            let micros = parse_rfc3339(&normal)
                .map_err(|why| err(node, format!("`{s}` is not a timestamp ({why})")))?;
            Ok(Expr::Lit(if to == Type::Date {
                Datum::Day(crate::event::time::utc_day(micros))
            } else {
                Datum::Timestamp(micros)
            }))
        }
        _ if from.comparable(to) => Ok(e),
        _ => Err(err(
            node,
            format!("{} cannot be compared with {}", from.value(), to.value()),
        )),
    }
}

pub(super) fn binary(
    node: &ast::Expr,
    op: &BinaryOperator,
    (l, lt): (Expr, Type),
    (r, rt): (Expr, Type),
) -> Result<(Expr, Type)> {
    let b = Box::new;
    let cmp = |c| -> Result<(Expr, Type)> {
        // A string literal on either side takes the other side's time type.
        let (l, lt2) = match (lt, rt) {
            (Type::String, Type::Timestamp | Type::Date) => (coerce(node, l.clone(), lt, rt)?, rt),
            _ => (l.clone(), lt),
        };
        let r = match (rt, lt) {
            (Type::String, Type::Timestamp | Type::Date) => coerce(node, r.clone(), rt, lt)?,
            _ => coerce(node, r.clone(), rt, lt2)?,
        };
        Ok((Expr::Cmp(c, b(l), b(r)), Type::Bool))
    };
    let logic = |and: bool| -> Result<(Expr, Type)> {
        expect_bool(node, lt, if and { "AND" } else { "OR" })?;
        expect_bool(node, rt, if and { "AND" } else { "OR" })?;
        let (l, r) = (b(l.clone()), b(r.clone()));
        Ok((
            if and { Expr::And(l, r) } else { Expr::Or(l, r) },
            Type::Bool,
        ))
    };
    let arith = |a: Arith| -> Result<(Expr, Type)> {
        if !lt.numeric() || !rt.numeric() {
            return Err(err(
                node,
                format!("`{op}` needs numbers, not {} and {}", lt.name(), rt.name()),
            ));
        }
        use Type::*;
        let ty = match (a, lt, rt) {
            (Arith::Div, _, _) => Float,
            (_, Float, _) | (_, _, Float) => Float,
            (Arith::Mul, Money, Money) => {
                return Err(err(
                    node,
                    "multiplying two money values is not supported (cast one to DOUBLE)",
                ));
            }
            (_, Money, _) | (_, _, Money) => Money,
            _ => Int,
        };
        Ok((Expr::Arith(a, b(l.clone()), b(r.clone()), ty), ty))
    };
    match op {
        BinaryOperator::Eq => cmp(Cmp::Eq),
        BinaryOperator::NotEq => cmp(Cmp::Ne),
        BinaryOperator::Lt => cmp(Cmp::Lt),
        BinaryOperator::LtEq => cmp(Cmp::Le),
        BinaryOperator::Gt => cmp(Cmp::Gt),
        BinaryOperator::GtEq => cmp(Cmp::Ge),
        BinaryOperator::And => logic(true),
        BinaryOperator::Or => logic(false),
        BinaryOperator::Plus => arith(Arith::Add),
        BinaryOperator::Minus => arith(Arith::Sub),
        BinaryOperator::Multiply => arith(Arith::Mul),
        BinaryOperator::Divide => arith(Arith::Div),
        BinaryOperator::Modulo => arith(Arith::Rem),
        other => Err(err(
            node,
            format!("the operator `{other}` is not supported"),
        )),
    }
}

pub(super) fn cast(node: &ast::Expr, x: Expr, ty: Type, to: &DataType) -> Result<(Expr, Type)> {
    let name = to.to_string().to_uppercase();
    match (name.as_str(), ty) {
        ("DATE", Type::Timestamp | Type::Date | Type::Null) => {
            Ok((Expr::ToDate(Box::new(x)), Type::Date))
        }
        ("DOUBLE" | "FLOAT8" | "DOUBLE PRECISION", t) if t.numeric() => {
            Ok((Expr::ToFloat(Box::new(x)), Type::Float))
        }
        (_, t) if t.numeric() || t == Type::Null => match decimal(to) {
            Some((digits @ 3..=18, 2)) => {
                Ok((Expr::ToMoney(Box::new(x), digits as u8), Type::Money))
            }
            Some(_) => Err(err(
                node,
                format!(
                    "CAST to {name} is not supported: a decimal is DECIMAL(p, 2), p from 3 to 18"
                ),
            )),
            None => Err(unsupported_cast(node, ty, &name)),
        },
        _ => Err(unsupported_cast(node, ty, &name)),
    }
}

fn unsupported_cast(node: &ast::Expr, ty: Type, name: &str) -> SqlError {
    err(
        node,
        format!(
            "CAST of {} to {name} is not supported (CAST(ts AS DATE), CAST(x AS DOUBLE) and \
             CAST(x AS DECIMAL(p, 2)) are)",
            ty.value()
        ),
    )
}

/// The precision and scale of a `DECIMAL` or `NUMERIC` type; DuckDB's `DECIMAL` alone is
/// `DECIMAL(18, 3)`.
fn decimal(to: &DataType) -> Option<(u64, u64)> {
    use ast::ExactNumberInfo as N;
    match to {
        DataType::Decimal(info) | DataType::Numeric(info) | DataType::Dec(info) => match info {
            N::None => Some((18, 3)),
            N::Precision(p) => Some((*p, 0)),
            N::PrecisionAndScale(p, s) => Some((*p, u64::try_from(*s).ok()?)),
        },
        _ => None,
    }
}
