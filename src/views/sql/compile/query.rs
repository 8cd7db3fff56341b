//! The shape of a view's query: one SELECT over one table, its select list and names, and the
//! clauses no view may have.

use sqlparser::ast::{
    self, FunctionArg, FunctionArgExpr, FunctionArguments, SelectItem, Spanned, Statement,
    TableFactor,
};
use sqlparser::dialect::DuckDbDialect;
use sqlparser::parser::Parser;

use super::{Result, err, err_at};
use crate::views::sql::{SqlError, TableName};

/// The one query of a view's SQL, without the clauses no view may have (`WITH`, `FETCH`,
/// `FOR`, locks).
pub(super) fn one_query(sql: &str) -> Result<Box<ast::Query>> {
    let mut statements = Parser::parse_sql(&DuckDbDialect {}, sql).map_err(|e| SqlError {
        view: String::new(),
        message: e
            .to_string()
            .trim_start_matches("sql parser error: ")
            .to_owned(),
        at: None,
    })?;
    let second = statements.get(1).map(|s| {
        let l = s.span().start;
        (l.line, l.column)
    });
    let query = match (statements.len(), statements.pop()) {
        (1, Some(Statement::Query(query))) => query,
        _ => {
            return Err(SqlError {
                view: String::new(),
                message: "a view is one SELECT statement".into(),
                at: second,
            });
        }
    };
    if let Some(with) = &query.with {
        return Err(err_at(with.with_token.0.span, "WITH is not supported"));
    }
    if query.fetch.is_some() || !query.locks.is_empty() || query.for_clause.is_some() {
        return Err(err(
            query.as_ref(),
            "FETCH, FOR and locking clauses are not supported",
        ));
    }
    Ok(query)
}

/// What a SELECT may not say: `DISTINCT`, `QUALIFY`, named windows.
pub(super) fn refuse_clauses(select: &ast::Select) -> Result<()> {
    if let Some(d) = &select.distinct {
        return Err(err_at(
            select.select_token.0.span,
            format!("SELECT {d} is not supported (GROUP BY the columns instead)"),
        ));
    }
    if let Some(q) = &select.qualify {
        return Err(err(q, "QUALIFY is not supported"));
    }
    if let Some(w) = select.named_window.first() {
        return Err(err_at(w.0.span, "window functions are not supported"));
    }
    Ok(())
}

/// The select list: each expression with its column name (its alias, else its text).
pub(super) fn select_items(select: &ast::Select) -> Result<Vec<(&ast::Expr, String)>> {
    select
        .projection
        .iter()
        .map(|item| match item {
            SelectItem::UnnamedExpr(e) => Ok((e, column_name(e))),
            SelectItem::ExprWithAlias { expr, alias } => Ok((expr, alias.value.to_lowercase())),
            other => Err(err(
                other,
                "SELECT * is not supported: a view lists its group keys and aggregates",
            )),
        })
        .collect()
}

pub(super) fn table_of(select: &ast::Select) -> Result<TableName> {
    let [from] = select.from.as_slice() else {
        return Err(match select.from.get(1) {
            Some(second) => err(second, "a view reads one table: joins are not supported"),
            None => err_at(
                select.select_token.0.span,
                "a view needs FROM events or FROM dead_letters",
            ),
        });
    };
    if let Some(join) = from.joins.first() {
        return Err(err(join, "joins are not supported"));
    }
    match &from.relation {
        TableFactor::Table {
            name, args: None, ..
        } => match name.to_string().to_lowercase().as_str() {
            "events" => Ok(TableName::Events),
            "dead_letters" => Ok(TableName::DeadLetters),
            other => Err(err(
                name,
                format!("unknown table `{other}` (there are `events` and `dead_letters`)"),
            )),
        },
        TableFactor::Derived { .. } => Err(err(&from.relation, "subqueries are not supported")),
        other => Err(err(
            other,
            "only the tables `events` and `dead_letters` can be read",
        )),
    }
}

/// The name DuckDB gives an unaliased column: a column's own name, else the expression's text.
fn column_name(e: &ast::Expr) -> String {
    match e {
        ast::Expr::Identifier(id) => id.value.to_lowercase(),
        ast::Expr::CompoundIdentifier(ids) => {
            ids.last().map_or(String::new(), |i| i.value.to_lowercase())
        }
        other => other.to_string().to_lowercase(),
    }
}

pub(super) const AGGREGATES: [&str; 5] = ["count", "sum", "avg", "min", "max"];

pub(super) fn function_name(f: &ast::Function) -> String {
    f.name.to_string().to_lowercase()
}

/// Whether an expression calls an aggregate function, at any depth the compiler accepts.
pub(super) fn contains_aggregate(e: &ast::Expr) -> bool {
    use ast::Expr as E;
    match e {
        E::Function(f) => {
            AGGREGATES.contains(&function_name(f).as_str())
                || match &f.args {
                    FunctionArguments::List(list) => list.args.iter().any(|a| match a {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => contains_aggregate(x),
                        _ => false,
                    }),
                    _ => false,
                }
        }
        E::BinaryOp { left, right, .. } => contains_aggregate(left) || contains_aggregate(right),
        E::UnaryOp { expr, .. }
        | E::Nested(expr)
        | E::IsNull(expr)
        | E::IsNotNull(expr)
        | E::Cast { expr, .. } => contains_aggregate(expr),
        E::InList { expr, list, .. } => {
            contains_aggregate(expr) || list.iter().any(contains_aggregate)
        }
        E::Between {
            expr, low, high, ..
        } => contains_aggregate(expr) || contains_aggregate(low) || contains_aggregate(high),
        E::Like { expr, pattern, .. } => contains_aggregate(expr) || contains_aggregate(pattern),
        _ => false,
    }
}
