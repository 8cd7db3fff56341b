//! The scalar functions a view may call: `date_trunc` and `round`.

use sqlparser::ast::{self, FunctionArg, FunctionArgExpr, FunctionArguments};

use super::{Compiler, Leaf, Result, err};
use crate::views::sql::expr::{Expr, Type, Unit};

impl Compiler {
    /// `date_trunc('unit', ts)`.
    pub(super) fn date_trunc(
        &mut self,
        f: &ast::Function,
        leaf: &mut dyn FnMut(&mut Self, &ast::Expr) -> Leaf,
    ) -> Result<(Expr, Type)> {
        let FunctionArguments::List(list) = &f.args else {
            return Err(err(f, "date_trunc takes a unit and a timestamp"));
        };
        let [
            FunctionArg::Unnamed(FunctionArgExpr::Expr(unit)),
            FunctionArg::Unnamed(FunctionArgExpr::Expr(ts)),
        ] = list.args.as_slice()
        else {
            return Err(err(f, "date_trunc takes a unit and a timestamp"));
        };
        let unit = match unit {
            ast::Expr::Value(v) => match &v.value {
                ast::Value::SingleQuotedString(s) => Unit::of(s),
                _ => None,
            },
            _ => None,
        }
        .ok_or_else(|| {
            err(
                unit,
                "date_trunc's unit is one of 'second', 'minute', 'hour', 'day', 'week', 'month'",
            )
        })?;
        let (x, ty) = self.expr(ts, leaf)?;
        if !matches!(ty, Type::Timestamp | Type::Null) {
            return Err(err(
                ts,
                format!("date_trunc needs a timestamp, not {}", ty.value()),
            ));
        }
        Ok((Expr::Trunc(unit, Box::new(x)), Type::Timestamp))
    }

    /// `round(x)` and `round(x, digits)`: half away from zero, as DuckDB rounds, to `digits`
    /// decimal places (0 to 15); of a float a float, of money money, of an integer itself.
    pub(super) fn round(
        &mut self,
        f: &ast::Function,
        leaf: &mut dyn FnMut(&mut Self, &ast::Expr) -> Leaf,
    ) -> Result<(Expr, Type)> {
        const USAGE: &str = "round takes a number and, optionally, 0 to 15 decimal places";
        let args = match &f.args {
            FunctionArguments::List(list) if list.clauses.is_empty() => list.args.as_slice(),
            _ => return Err(err(f, USAGE)),
        };
        let (x, digits) = match args {
            [FunctionArg::Unnamed(FunctionArgExpr::Expr(x))] => (x, 0),
            [
                FunctionArg::Unnamed(FunctionArgExpr::Expr(x)),
                FunctionArg::Unnamed(FunctionArgExpr::Expr(d)),
            ] => {
                let digits = match d {
                    ast::Expr::Value(v) => match &v.value {
                        ast::Value::Number(n, _) => n.parse::<u8>().ok().filter(|d| *d <= 15),
                        _ => None,
                    },
                    _ => None,
                };
                (x, digits.ok_or_else(|| err(d, USAGE))?)
            }
            _ => return Err(err(f, USAGE)),
        };
        let (e, ty) = self.expr(x, leaf)?;
        if !ty.numeric() && ty != Type::Null {
            return Err(err(x, format!("round needs a number, not {}", ty.value())));
        }
        Ok((Expr::Round(Box::new(e), digits), ty))
    }
}
