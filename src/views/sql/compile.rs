//! From SQL text to a [`Plan`]: parsed by `sqlparser` (DuckDB's dialect), checked against the
//! table's columns, typed. Anything the engine cannot maintain exactly is refused here, with the
//! construct and its position, before anything starts.

use sqlparser::ast::{
    self, CastKind, DuplicateTreatment, FunctionArg, FunctionArgExpr, FunctionArguments,
    GroupByExpr, SetExpr, Spanned, UnaryOperator,
};

use super::expr::{Cmp, Expr, Like, Type};
use super::{Agg, AggFn, Column, OutColumn, Plan, SqlError, TableName};

mod functions;
mod order;
mod query;
mod scalar;

use order::row_number;
use query::{
    AGGREGATES, contains_aggregate, function_name, one_query, refuse_clauses, select_items,
    table_of,
};
use scalar::{binary, cast, coerce, literal};

type Result<T> = std::result::Result<T, SqlError>;

/// What a leaf of an expression compiles to, or `None` when it is not a leaf.
type Leaf = Result<Option<(Expr, Type)>>;

/// An error at a construct: where it starts.
fn err(node: &impl Spanned, message: impl Into<String>) -> SqlError {
    err_at(node.span(), message)
}

fn err_at(span: sqlparser::tokenizer::Span, message: impl Into<String>) -> SqlError {
    let start = span.start;
    SqlError {
        view: String::new(),
        message: message.into(),
        at: (start.line > 0).then_some((start.line, start.column)),
    }
}

/// Compiles the SQL of a view over the `events` table (whose columns are `events`) or the
/// `dead_letters` table.
pub fn compile(sql: &str, events: &[Column]) -> Result<Plan> {
    let query = one_query(sql)?;
    let select = match query.body.as_ref() {
        SetExpr::Select(select) => select,
        other => {
            return Err(err(
                other,
                "only a plain SELECT is supported (no UNION, INTERSECT, EXCEPT or VALUES)",
            ));
        }
    };
    let table = table_of(select)?;
    let columns = match table {
        TableName::Events => events.to_vec(),
        TableName::DeadLetters => super::dead_letter_columns(),
    };
    let mut c = Compiler {
        columns,
        inputs: Vec::new(),
        keys: Vec::new(),
        key_texts: Vec::new(),
        aggs: Vec::new(),
        agg_texts: Vec::new(),
        aliases: Vec::new(),
        rank: None,
    };
    refuse_clauses(select)?;
    let filter = match &select.selection {
        Some(e) => Some(c.condition(e, "WHERE")?),
        None => None,
    };
    // The select list first by name, for GROUP BY and ORDER BY by alias or position.
    let items = select_items(select)?;
    c.aliases = items
        .iter()
        .map(|(e, n)| (n.clone(), (*e).clone()))
        .collect();
    c.group_keys(select, &items)?;
    let global = c.keys.is_empty();
    if global && !items.iter().any(|(e, _)| contains_aggregate(e)) {
        return Err(err_at(
            select.select_token.0.span,
            "a view aggregates: give it a GROUP BY or aggregate functions (count, sum, avg, min, max)",
        ));
    }
    let out = c.output_columns(select, &items)?;
    let having = match &select.having {
        Some(h) => {
            let (e, ty) = c.post(h, true)?;
            expect_bool(h, ty, "HAVING")?;
            Some(e)
        }
        None => None,
    };
    let (order, limit) = c.order_and_limit(&query, &out)?;
    let rank = match c.rank.take() {
        Some((at, f)) => {
            c.rank(&f, &out, &order, limit)?;
            Some(out[..at].iter().filter(|o| !o.key).count())
        }
        None => None,
    };
    Ok(Plan {
        table,
        inputs: c.inputs.iter().map(|(i, _)| *i).collect(),
        input_types: c.inputs.iter().map(|(_, t)| *t).collect(),
        filter,
        keys: c.keys.into_iter().map(|(e, _)| e).collect(),
        aggs: c.aggs,
        columns: out,
        having,
        order,
        limit,
        rank,
        global,
    })
}

fn expect_bool(node: &impl Spanned, ty: Type, clause: &str) -> Result<()> {
    if matches!(ty, Type::Bool | Type::Null) {
        Ok(())
    } else {
        Err(err(
            node,
            format!("{clause} needs a condition, not {}", ty.value()),
        ))
    }
}

struct Compiler {
    columns: Vec<Column>,
    /// The table columns the view reads, by slot, with their types.
    inputs: Vec<(usize, Type)>,
    keys: Vec<(Expr, Type)>,
    key_texts: Vec<String>,
    aggs: Vec<Agg>,
    agg_texts: Vec<String>,
    aliases: Vec<(String, ast::Expr)>,
    /// The select item that is `row_number() OVER (...)`, and where it is.
    rank: Option<(usize, ast::Function)>,
}

impl Compiler {
    /// Compiles `GROUP BY` (by expression, alias or position; `ALL`: every selected
    /// expression without an aggregate) into the view's keys, each once.
    fn group_keys(&mut self, select: &ast::Select, items: &[(&ast::Expr, String)]) -> Result<()> {
        let group = match &select.group_by {
            GroupByExpr::Expressions(exprs, modifiers) => {
                if let Some(m) = modifiers.first() {
                    return Err(err_at(
                        select.select_token.0.span,
                        format!("GROUP BY {m} is not supported"),
                    ));
                }
                exprs.clone()
            }
            GroupByExpr::All(_) => items
                .iter()
                .filter(|(e, _)| !contains_aggregate(e) && row_number(e).is_none())
                .map(|(e, _)| (*e).clone())
                .collect(),
        };
        for g in &group {
            let g = self.group_item(g, items)?;
            let text = g.to_string().to_lowercase();
            if self.key_texts.contains(&text) {
                continue;
            }
            let (expr, ty) = self.scalar(&g, "GROUP BY")?;
            self.keys.push((expr, ty));
            self.key_texts.push(text);
        }
        Ok(())
    }

    /// The view's columns, in SELECT order; every group key must be one of them.
    fn output_columns(
        &mut self,
        select: &ast::Select,
        items: &[(&ast::Expr, String)],
    ) -> Result<Vec<OutColumn>> {
        let mut out = Vec::new();
        for (e, name) in items {
            if out.iter().any(|o: &OutColumn| o.name == *name) {
                return Err(err(
                    *e,
                    format!("two columns are called `{name}`: give one an alias"),
                ));
            }
            if let Some(f) = row_number(e) {
                if self.rank.is_some() {
                    return Err(err(f, "a view has one `row_number()` at most"));
                }
                self.rank = Some((out.len(), f.clone()));
                // Its value is the row's place, given when the top rows are taken.
                out.push(OutColumn {
                    name: name.clone(),
                    ty: Type::Int,
                    key: false,
                    expr: Expr::Lit(crate::views::Datum::Null),
                });
                continue;
            }
            let (expr, ty) = self.post(e, false)?;
            let key = matches!(expr, Expr::Slot(k) if k < self.keys.len());
            out.push(OutColumn {
                name: name.clone(),
                ty,
                key,
                expr,
            });
        }
        for (k, text) in self.key_texts.iter().enumerate() {
            if !out.iter().any(|o| o.expr == Expr::Slot(k)) {
                return Err(err_at(
                    select.select_token.0.span,
                    format!(
                        "GROUP BY `{text}` must also be selected: the group keys are the key of a view's rows"
                    ),
                ));
            }
        }
        Ok(out)
    }

    fn slot(&mut self, id: &ast::Ident) -> Result<(Expr, Type)> {
        let name = id.value.to_lowercase();
        let Some(i) = self
            .columns
            .iter()
            .position(|c| c.name.to_lowercase() == name)
        else {
            return Err(err_at(id.span, format!("unknown column `{}`", id.value)));
        };
        let ty = self.columns[i].ty;
        let slot = match self.inputs.iter().position(|(c, _)| *c == i) {
            Some(s) => s,
            None => {
                self.inputs.push((i, ty));
                self.inputs.len() - 1
            }
        };
        Ok((Expr::Slot(slot), ty))
    }

    fn condition(&mut self, e: &ast::Expr, clause: &str) -> Result<Expr> {
        let (expr, ty) = self.scalar(e, clause)?;
        expect_bool(e, ty, clause)?;
        Ok(expr)
    }

    /// A GROUP BY item: a select alias or position stands for that item's expression.
    fn group_item(&self, g: &ast::Expr, items: &[(&ast::Expr, String)]) -> Result<ast::Expr> {
        if let ast::Expr::Value(v) = g
            && let ast::Value::Number(n, _) = &v.value
        {
            let at: usize = n
                .parse()
                .map_err(|_| err(g, "GROUP BY position must be a whole number"))?;
            return match items.get(at.wrapping_sub(1)) {
                Some((e, _)) if !contains_aggregate(e) => Ok((*e).clone()),
                Some(_) => Err(err(g, "GROUP BY cannot name an aggregate")),
                None => Err(err(
                    g,
                    format!("GROUP BY {at}: the SELECT list has {} items", items.len()),
                )),
            };
        }
        if let ast::Expr::Identifier(id) = g {
            let name = id.value.to_lowercase();
            let is_column = self.columns.iter().any(|c| c.name.to_lowercase() == name);
            if !is_column && let Some((e, _)) = items.iter().find(|(_, n)| *n == name) {
                if contains_aggregate(e) {
                    return Err(err(g, "GROUP BY cannot name an aggregate"));
                }
                return Ok((*e).clone());
            }
        }
        Ok(g.clone())
    }

    /// An expression over the input row (WHERE, GROUP BY, aggregate arguments and filters).
    fn scalar(&mut self, e: &ast::Expr, clause: &str) -> Result<(Expr, Type)> {
        self.expr(e, &mut |c, e| c.scalar_leaf(e, clause))
    }

    fn scalar_leaf(&mut self, e: &ast::Expr, clause: &str) -> Result<Option<(Expr, Type)>> {
        match e {
            ast::Expr::Identifier(id) => self.slot(id).map(Some),
            ast::Expr::CompoundIdentifier(ids) => match ids.as_slice() {
                [table, column]
                    if ["events", "dead_letters"]
                        .contains(&table.value.to_lowercase().as_str()) =>
                {
                    self.slot(column).map(Some)
                }
                _ => Err(err(e, format!("unknown column `{e}`"))),
            },
            ast::Expr::Function(f) if AGGREGATES.contains(&function_name(f).as_str()) => Err(err(
                e,
                format!("aggregate functions are not allowed in {clause}"),
            )),
            _ => Ok(None),
        }
    }

    /// An expression over a group: its keys and aggregates (the SELECT list, HAVING, ORDER BY).
    fn post(&mut self, e: &ast::Expr, aliases: bool) -> Result<(Expr, Type)> {
        self.expr(e, &mut |c, e| c.post_leaf(e, aliases))
    }

    fn post_leaf(&mut self, e: &ast::Expr, aliases: bool) -> Result<Option<(Expr, Type)>> {
        let text = e.to_string().to_lowercase();
        if let Some(k) = self.key_texts.iter().position(|t| *t == text) {
            return Ok(Some((Expr::Slot(k), self.keys[k].1)));
        }
        match e {
            ast::Expr::Function(f) if AGGREGATES.contains(&function_name(f).as_str()) => {
                self.aggregate(f, &text).map(Some)
            }
            ast::Expr::Identifier(id) => {
                let name = id.value.to_lowercase();
                if aliases
                    && let Some((_, a)) = self.aliases.iter().find(|(n, _)| *n == name).cloned()
                {
                    return self.post(&a, false).map(Some);
                }
                if self.columns.iter().any(|c| c.name.to_lowercase() == name) {
                    Err(err(
                        e,
                        format!(
                            "column `{}` must be in GROUP BY or inside an aggregate",
                            id.value
                        ),
                    ))
                } else {
                    Err(err(e, format!("unknown column `{}`", id.value)))
                }
            }
            ast::Expr::CompoundIdentifier(_) => Err(err(
                e,
                format!("`{e}` must be in GROUP BY or inside an aggregate"),
            )),
            _ => Ok(None),
        }
    }

    fn aggregate(&mut self, f: &ast::Function, text: &str) -> Result<(Expr, Type)> {
        let base = self.keys.len();
        if let Some(j) = self.agg_texts.iter().position(|t| t == text) {
            return Ok((Expr::Slot(base + j), self.aggs[j].ty));
        }
        if f.over.is_some() {
            return Err(err(f, "window functions are not supported"));
        }
        if !f.within_group.is_empty() || f.null_treatment.is_some() {
            return Err(err(
                f,
                "WITHIN GROUP and IGNORE/RESPECT NULLS are not supported",
            ));
        }
        let name = function_name(f);
        let FunctionArguments::List(list) = &f.args else {
            return Err(err(f, format!("{name} needs an argument")));
        };
        if let Some(clause) = list.clauses.first() {
            return Err(err(
                f,
                format!("`{clause}` in an aggregate is not supported"),
            ));
        }
        let distinct = match list.duplicate_treatment {
            Some(DuplicateTreatment::Distinct) => true,
            Some(DuplicateTreatment::All) | None => false,
        };
        let arg = match list.args.as_slice() {
            [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)] if name == "count" && !distinct => {
                None
            }
            [FunctionArg::Unnamed(FunctionArgExpr::Expr(a))] => {
                if contains_aggregate(a) {
                    return Err(err(a, "aggregates cannot be nested"));
                }
                Some(self.scalar(a, "an aggregate's argument")?)
            }
            _ => return Err(err(f, format!("{name} takes one argument"))),
        };
        let filter = match &f.filter {
            Some(cond) => Some(self.condition(cond, "FILTER")?),
            None => None,
        };
        let arg_ty = arg.as_ref().map_or(Type::Int, |(_, t)| *t);
        let (func, ty) = match (name.as_str(), distinct, arg_ty) {
            ("count", false, _) if arg.is_none() => (AggFn::CountRows, Type::Int),
            ("count", false, _) => (AggFn::Count, Type::Int),
            ("count", true, _) => (AggFn::CountDistinct, Type::Int),
            (_, true, _) => {
                return Err(err(
                    f,
                    format!("{name}(DISTINCT ...) is not supported (count(DISTINCT ...) is)"),
                ));
            }
            ("sum", _, Type::Int | Type::Null) => (AggFn::Sum, Type::Int),
            ("sum", _, Type::Money) => (AggFn::Sum, Type::Money),
            ("sum", _, Type::Float) => (AggFn::Sum, Type::Float),
            ("avg", _, t) if t.numeric() => (AggFn::Avg, Type::Float),
            ("min", _, t) => (AggFn::Min, t),
            ("max", _, t) => (AggFn::Max, t),
            (_, _, t) => {
                return Err(err(f, format!("{name} of {} is not supported", t.value())));
            }
        };
        self.aggs.push(Agg {
            func,
            arg: arg.map(|(e, _)| e),
            arg_ty,
            filter,
            ty,
        });
        self.agg_texts.push(text.to_owned());
        Ok((Expr::Slot(base + self.aggs.len() - 1), ty))
    }

    /// The structure shared by both kinds of expression; `leaf` handles columns and aggregates
    /// (returning `None` for anything else).
    fn expr(
        &mut self,
        e: &ast::Expr,
        leaf: &mut dyn FnMut(&mut Self, &ast::Expr) -> Leaf,
    ) -> Result<(Expr, Type)> {
        if let Some(done) = leaf(self, e)? {
            return Ok(done);
        }
        let b = Box::new;
        Ok(match e {
            ast::Expr::Nested(inner) => self.expr(inner, leaf)?,
            ast::Expr::Value(v) => literal(v)?,
            ast::Expr::UnaryOp { op, expr } => {
                let (x, ty) = self.expr(expr, leaf)?;
                match op {
                    UnaryOperator::Not => {
                        expect_bool(expr.as_ref(), ty, "NOT")?;
                        (Expr::Not(b(x)), Type::Bool)
                    }
                    UnaryOperator::Minus if ty.numeric() => (Expr::Neg(b(x)), ty),
                    UnaryOperator::Plus if ty.numeric() => (x, ty),
                    _ => {
                        return Err(err(e, format!("`{op}` does not apply to {}", ty.value())));
                    }
                }
            }
            ast::Expr::BinaryOp { left, op, right } => {
                let (l, lt) = self.expr(left, leaf)?;
                let (r, rt) = self.expr(right, leaf)?;
                binary(e, op, (l, lt), (r, rt))?
            }
            ast::Expr::IsNull(x) | ast::Expr::IsNotNull(x) => {
                let (x, _) = self.expr(x, leaf)?;
                (
                    Expr::IsNull(b(x), matches!(e, ast::Expr::IsNotNull(_))),
                    Type::Bool,
                )
            }
            ast::Expr::InList {
                expr,
                list,
                negated,
            } => {
                let (x, ty) = self.expr(expr, leaf)?;
                let mut items = Vec::new();
                for item in list {
                    let (i, it) = self.expr(item, leaf)?;
                    items.push(coerce(item, i, it, ty)?);
                }
                (Expr::In(b(x), items, *negated), Type::Bool)
            }
            ast::Expr::Between {
                expr,
                negated,
                low,
                high,
            } => self.between(expr, low, high, *negated, leaf)?,
            ast::Expr::Like {
                negated,
                any: false,
                expr,
                pattern,
                escape_char: None,
            } => self.like(expr, pattern, *negated, leaf)?,
            ast::Expr::Cast {
                kind: CastKind::Cast | CastKind::DoubleColon,
                expr,
                data_type,
                format: None,
                array: false,
            } => {
                let (x, ty) = self.expr(expr, leaf)?;
                cast(e, x, ty, data_type)?
            }
            ast::Expr::Function(f) if function_name(f) == "date_trunc" => {
                self.date_trunc(f, leaf)?
            }
            ast::Expr::Function(f) if function_name(f) == "round" && f.over.is_none() => {
                self.round(f, leaf)?
            }
            ast::Expr::Function(f) if f.over.is_some() => {
                return Err(err(f, "window functions are not supported"));
            }
            ast::Expr::Function(f) => {
                return Err(err(&f.name, format!("unknown function `{}`", f.name)));
            }
            ast::Expr::Subquery(_) | ast::Expr::Exists { .. } | ast::Expr::InSubquery { .. } => {
                return Err(err(e, "subqueries are not supported"));
            }
            ast::Expr::Identifier(_) | ast::Expr::CompoundIdentifier(_) => {
                return Err(err(e, format!("unknown column `{e}`")));
            }
            other => return Err(err(other, format!("`{other}` is not supported"))),
        })
    }

    /// `x [NOT] BETWEEN low AND high`, as `x >= low AND x <= high`.
    fn between(
        &mut self,
        expr: &ast::Expr,
        low: &ast::Expr,
        high: &ast::Expr,
        negated: bool,
        leaf: &mut dyn FnMut(&mut Self, &ast::Expr) -> Leaf,
    ) -> Result<(Expr, Type)> {
        let b = Box::new;
        let (x, ty) = self.expr(expr, leaf)?;
        let (lo, lt) = self.expr(low, leaf)?;
        let (hi, ht) = self.expr(high, leaf)?;
        let lo = coerce(low, lo, lt, ty)?;
        let hi = coerce(high, hi, ht, ty)?;
        let within = Expr::And(
            b(Expr::Cmp(Cmp::Ge, b(x.clone()), b(lo))),
            b(Expr::Cmp(Cmp::Le, b(x), b(hi))),
        );
        let within = if negated {
            Expr::Not(b(within))
        } else {
            within
        };
        Ok((within, Type::Bool))
    }

    /// `x [NOT] LIKE 'pattern'`: a string and a literal pattern.
    fn like(
        &mut self,
        expr: &ast::Expr,
        pattern: &ast::Expr,
        negated: bool,
        leaf: &mut dyn FnMut(&mut Self, &ast::Expr) -> Leaf,
    ) -> Result<(Expr, Type)> {
        let (x, ty) = self.expr(expr, leaf)?;
        if !matches!(ty, Type::String | Type::Null) {
            return Err(err(
                expr,
                format!("LIKE needs a string, not {}", ty.value()),
            ));
        }
        let literal = match pattern {
            ast::Expr::Value(v) => match &v.value {
                ast::Value::SingleQuotedString(p) => Some(p),
                _ => None,
            },
            _ => None,
        };
        let Some(p) = literal else {
            return Err(err(pattern, "a LIKE pattern must be a string literal"));
        };
        Ok((Expr::Like(Box::new(x), Like::new(p), negated), Type::Bool))
    }
}
