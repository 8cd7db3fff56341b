//! `ORDER BY ... LIMIT n` (a top-n view) and `row_number() OVER (ORDER BY ...)`, its rank.

use sqlparser::ast::{self, FunctionArguments, LimitClause, OrderByKind, WindowType};

use super::{Compiler, Result, err, function_name};
use crate::views::sql::expr::Expr;
use crate::views::sql::{Order, OutColumn};

/// A select item that is `row_number() OVER (...)`.
pub(super) fn row_number(e: &ast::Expr) -> Option<&ast::Function> {
    match e {
        ast::Expr::Function(f) if f.over.is_some() && function_name(f) == "row_number" => Some(f),
        _ => None,
    }
}

impl Compiler {
    /// The view's `ORDER BY` and `LIMIT`.
    pub(super) fn order_and_limit(
        &mut self,
        query: &ast::Query,
        out: &[OutColumn],
    ) -> Result<(Vec<Order>, Option<usize>)> {
        let limit = match &query.limit_clause {
            None => None,
            Some(LimitClause::LimitOffset {
                limit: None,
                offset: None,
                limit_by,
            }) if limit_by.is_empty() => None,
            Some(LimitClause::LimitOffset {
                limit: Some(l),
                offset: None,
                limit_by,
            }) if limit_by.is_empty() => Some(
                match l {
                    ast::Expr::Value(ast::ValueWithSpan {
                        value: ast::Value::Number(n, _),
                        ..
                    }) => n.parse::<usize>().ok().filter(|n| *n > 0),
                    _ => None,
                }
                .ok_or_else(|| err(l, "LIMIT takes a positive whole number"))?,
            ),
            Some(other) => return Err(err(other, "OFFSET is not supported (LIMIT is)")),
        };
        let order = match &query.order_by {
            Some(o) => {
                let OrderByKind::Expressions(items) = &o.kind else {
                    return Err(err(o, "ORDER BY ALL is not supported"));
                };
                self.order_items(items, out)?
            }
            None => Vec::new(),
        };
        if limit.is_some() && order.is_empty() {
            return Err(err(
                query
                    .limit_clause
                    .as_ref()
                    .unwrap_or_else(|| unreachable!()),
                "LIMIT needs an ORDER BY (which rows would be kept is otherwise arbitrary)",
            ));
        }
        Ok((order, limit))
    }

    /// `ORDER BY` items: output columns by name or position, or expressions over the group.
    fn order_items(&mut self, items: &[ast::OrderByExpr], out: &[OutColumn]) -> Result<Vec<Order>> {
        let mut order = Vec::new();
        for item in items {
            let e = &item.expr;
            let by_name = match e {
                ast::Expr::Identifier(id) => out.iter().find(|c| c.name == id.value.to_lowercase()),
                ast::Expr::Value(v) => match &v.value {
                    ast::Value::Number(n, _) => Some(
                        n.parse::<usize>()
                            .ok()
                            .and_then(|i| out.get(i.wrapping_sub(1)))
                            .ok_or_else(|| {
                                err(
                                    e,
                                    format!(
                                        "ORDER BY {n}: the SELECT list has {} items",
                                        out.len()
                                    ),
                                )
                            })?,
                    ),
                    _ => None,
                },
                _ => None,
            };
            let expr = match by_name {
                Some(c) => c.expr.clone(),
                None => self.post(e, true)?.0,
            };
            order.push(Order {
                expr,
                descending: item.options.asc == Some(false),
                // DuckDB's default: NULLS LAST in both directions.
                nulls_first: item.options.nulls_first.unwrap_or(false),
            });
        }
        Ok(order)
    }

    /// Checks that `f`, a `row_number()` select item, is the rank of a top-n view: over the
    /// view's own `ORDER BY` (so its value is the row's place among the rows kept), with a
    /// `LIMIT`, no arguments, no `PARTITION BY` and no frame.
    pub(super) fn rank(
        &mut self,
        f: &ast::Function,
        out: &[OutColumn],
        order: &[Order],
        limit: Option<usize>,
    ) -> Result<()> {
        const ONLY: &str = "window functions are not supported, except `row_number() OVER (ORDER BY ...)` as the rank of a top-n view (the same ORDER BY as the view's, and a LIMIT)";
        let Some(WindowType::WindowSpec(spec)) = &f.over else {
            return Err(err(f, ONLY));
        };
        let no_args = match &f.args {
            FunctionArguments::None => true,
            FunctionArguments::List(l) => l.args.is_empty() && l.clauses.is_empty(),
            FunctionArguments::Subquery(_) => false,
        };
        let plain = no_args
            && f.filter.is_none()
            && f.null_treatment.is_none()
            && f.within_group.is_empty()
            && spec.window_name.is_none()
            && spec.partition_by.is_empty()
            && spec.window_frame.is_none();
        // Not ordered by itself (a constant in the rows the order is taken from).
        let by_rank = order.iter().any(|o| matches!(o.expr, Expr::Lit(_)));
        if !plain || by_rank || limit.is_none() || self.order_items(&spec.order_by, out)? != order {
            return Err(err(f, ONLY));
        }
        Ok(())
    }
}
