//! Views written in SQL: compiled once at start ([`compile()`]) into a [`Plan`], then built
//! into the dataflow as incremental operators ([`flow::build`]).
//!
//! A view reads one table, `events` (every valid event, with the schema's columns) or
//! `dead_letters` (`reason`, `message`, `payload`), and groups it: its rows are keyed by the
//! group keys, and the other columns are aggregates and expressions over them.

mod compile;
pub mod expr;
mod fast;
pub mod flow;
pub mod fused;
pub mod planned;
pub mod replay;
pub mod typed;

use serde::{Deserialize, Serialize};

use self::expr::{Expr, Type};
use crate::event::{FieldType, Interner, Record, Schema, Symbols};
use crate::views::{Datum, Float, Row};

pub use flow::build;

/// A column of a table a view can read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its type.
    pub ty: Type,
}

/// The type of a schema field's column.
pub fn column_type(ty: FieldType) -> Type {
    match ty {
        FieldType::String => Type::String,
        FieldType::Int => Type::Int,
        FieldType::Float => Type::Float,
        FieldType::Money => Type::Money,
        FieldType::Bool => Type::Bool,
        FieldType::Timestamp => Type::Timestamp,
    }
}

/// The columns of the `events` table: the schema's fields.
pub fn event_columns(schema: &Schema) -> Vec<Column> {
    schema
        .fields
        .iter()
        .map(|f| Column {
            name: f.name.clone(),
            ty: column_type(f.ty),
        })
        .collect()
}

/// The columns of the `dead_letters` table.
pub fn dead_letter_columns() -> Vec<Column> {
    ["reason", "message", "payload"]
        .map(|name| Column {
            name: name.into(),
            ty: Type::String,
        })
        .to_vec()
}

/// The table a view reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TableName {
    /// `events`.
    Events,
    /// `dead_letters`.
    DeadLetters,
}

/// An aggregate function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AggFn {
    /// `count(*)`
    CountRows,
    /// `count(x)`: non-null values.
    Count,
    /// `count(DISTINCT x)`: distinct non-null values.
    CountDistinct,
    /// `sum(x)`: `NULL` when there is no non-null value.
    Sum,
    /// `avg(x)`, a float.
    Avg,
    /// `min(x)`
    Min,
    /// `max(x)`
    Max,
}

/// One aggregate of a view.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Agg {
    /// The function.
    pub func: AggFn,
    /// Its argument over the input row (`None` for `count(*)`).
    pub arg: Option<Expr>,
    /// The argument's type.
    pub arg_ty: Type,
    /// `FILTER (WHERE ...)`, over the input row.
    pub filter: Option<Expr>,
    /// The result's type.
    pub ty: Type,
}

impl Agg {
    /// Whether the aggregate is a sum of numbers that ride in differential's differences
    /// (counts, and sums and averages of integers and money); the others keep their values.
    pub fn additive(&self) -> bool {
        match self.func {
            AggFn::CountRows | AggFn::Count => true,
            AggFn::Sum | AggFn::Avg => matches!(self.arg_ty, Type::Int | Type::Money | Type::Null),
            AggFn::CountDistinct | AggFn::Min | AggFn::Max => false,
        }
    }

    /// Its value over no rows: 0 for counts, `NULL` for the others.
    pub fn empty(&self) -> Datum {
        match self.func {
            AggFn::CountRows | AggFn::Count | AggFn::CountDistinct => Datum::Int(0),
            _ => Datum::Null,
        }
    }
}

/// A column of a view's rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutColumn {
    /// Its name (the alias, else the expression's text).
    pub name: String,
    /// Its type.
    pub ty: Type,
    /// Whether it is a group key (part of the row's key).
    pub key: bool,
    /// Its value over the group row: the keys, then the aggregates.
    pub expr: Expr,
}

/// An `ORDER BY` item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// Over the group row.
    pub expr: Expr,
    /// `DESC`.
    pub descending: bool,
    /// `NULLS FIRST`.
    pub nulls_first: bool,
}

/// A compiled view.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The table read.
    pub table: TableName,
    /// The table columns read, by slot of the input row.
    pub inputs: Vec<usize>,
    /// Their types.
    pub input_types: Vec<Type>,
    /// `WHERE`, over the input row.
    pub filter: Option<Expr>,
    /// `GROUP BY`, over the input row.
    pub keys: Vec<Expr>,
    /// The aggregates.
    pub aggs: Vec<Agg>,
    /// The view's columns, in SELECT order.
    pub columns: Vec<OutColumn>,
    /// `HAVING`, over the group row.
    pub having: Option<Expr>,
    /// `ORDER BY`.
    pub order: Vec<Order>,
    /// `LIMIT`: the view holds the first rows in that order.
    pub limit: Option<usize>,
    /// The value column (by index among the values) that is `row_number() OVER (ORDER BY
    /// ...)`: the row's place in that order, from 1.
    #[serde(default)]
    pub rank: Option<usize>,
    /// No `GROUP BY`: one row, even over no events.
    pub global: bool,
}

/// A view refused at start: which, what and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("view `{view}`: {message}{}", match at { Some((l, c)) => format!(" (line {l}, column {c})"), None => String::new() })]
pub struct SqlError {
    /// The view's name.
    pub view: String,
    /// What is wrong.
    pub message: String,
    /// Line and column, from 1, where the construct starts.
    pub at: Option<(u64, u64)>,
}

/// A SQL view: its name, text and plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SqlView {
    /// The view's name.
    pub name: String,
    /// Its SQL.
    pub sql: String,
    /// What it means, for `/api/views` and `lambdaflow views`.
    pub description: String,
    /// The compiled plan.
    pub plan: Plan,
}

/// Compiles view `name` over a schema.
pub fn compile(name: &str, sql: &str, schema: &Schema) -> Result<Plan, SqlError> {
    compile::compile(sql, &event_columns(schema)).map_err(|mut e| {
        e.view = name.to_owned();
        e
    })
}

/// The fields of the event rows SQL views read: each view's input slots index into it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RowLayout {
    /// Schema field indices, in row order.
    pub fields: Vec<usize>,
    /// Whether a view reads the events at all (`SELECT count(*) FROM events` reads no field,
    /// but needs a row per event).
    pub wanted: bool,
    /// For each field, whether its strings are only ever counted distinct: then the row holds
    /// their 128-bit hash ([`Datum::Hash`]), not the string interned, which would cost a
    /// lookup in a table that grows with every new value (a user id, for instance).
    pub hashed: Vec<bool>,
}

impl RowLayout {
    /// For each slot, whether it is never null: a required field (a record without one is a
    /// dead letter).
    pub fn never_null(&self, schema: &Schema) -> Vec<bool> {
        self.fields
            .iter()
            .map(|&f| schema.fields[f].required)
            .collect()
    }

    /// The union of the views' event columns, and the views with their slots renumbered into
    /// it and their string constants interned.
    pub fn of(views: &[SqlView], symbols: &Symbols) -> (RowLayout, Vec<Plan>) {
        Self::starting_with(RowLayout::default(), views, symbols)
    }

    /// Every field of `schema`, in its order (what Rust views read), then as [`RowLayout::of`].
    pub fn all(schema: &Schema, views: &[SqlView], symbols: &Symbols) -> (RowLayout, Vec<Plan>) {
        let layout = RowLayout {
            fields: (0..schema.fields.len()).collect(),
            wanted: true,
            hashed: Vec::new(),
        };
        let (mut layout, plans) = Self::starting_with(layout, views, symbols);
        // Rust views read every field as it is.
        layout.hashed = vec![false; layout.fields.len()];
        (layout, plans)
    }

    fn starting_with(
        mut layout: RowLayout,
        views: &[SqlView],
        symbols: &Symbols,
    ) -> (RowLayout, Vec<Plan>) {
        let plans: Vec<Plan> = views
            .iter()
            .map(|v| {
                let mut plan = v.plan.clone();
                // Event rows hold the union of the views' columns; dead-letter rows always hold
                // reason, message, payload.
                layout.wanted |= plan.table == TableName::Events;
                let slots: Vec<usize> = match plan.table {
                    TableName::Events => plan
                        .inputs
                        .iter()
                        .map(
                            |field| match layout.fields.iter().position(|f| f == field) {
                                Some(p) => p,
                                None => {
                                    layout.fields.push(*field);
                                    layout.fields.len() - 1
                                }
                            },
                        )
                        .collect(),
                    TableName::DeadLetters => plan.inputs.clone(),
                };
                plan.input_exprs().for_each(|e| e.remap(&slots));
                plan.intern(symbols);
                plan
            })
            .collect();
        layout.hashed = layout.distinct_only(&plans);
        (layout, plans)
    }

    /// For each slot, whether it is a string that the event plans only count distinct.
    fn distinct_only(&self, plans: &[Plan]) -> Vec<bool> {
        let mut distinct = vec![false; self.fields.len()];
        let mut other = vec![false; self.fields.len()];
        for plan in plans.iter().filter(|p| p.table == TableName::Events) {
            for a in &plan.aggs {
                if let (AggFn::CountDistinct, Some(Expr::Slot(i)), Type::String) =
                    (a.func, &a.arg, a.arg_ty)
                {
                    distinct[*i] = true;
                }
            }
            let mut plan = plan.clone();
            let counted = plan
                .aggs
                .iter_mut()
                .filter(|a| a.func == AggFn::CountDistinct);
            counted.for_each(|a| {
                if matches!(a.arg, Some(Expr::Slot(_))) {
                    a.arg = None;
                }
            });
            for e in plan.input_exprs() {
                e.for_each_slot(&mut |i| other[i] = true);
            }
        }
        distinct.iter().zip(&other).map(|(d, o)| *d && !o).collect()
    }

    /// Whether no view reads the events.
    pub fn is_empty(&self) -> bool {
        !self.wanted
    }

    /// For each schema field, its slot in the rows, if they hold it.
    pub fn slots(&self, fields: usize) -> Vec<Option<usize>> {
        (0..fields)
            .map(|f| self.fields.iter().position(|&g| g == f))
            .collect()
    }

    /// The row of a decoded record.
    pub fn project(&self, record: &Record<'_>, interner: &mut Interner) -> Row {
        use crate::event::decode::Value;
        self.fields
            .iter()
            .enumerate()
            .map(|(slot, &i)| match record.value(i) {
                Value::Absent => Datum::Null,
                Value::Text(_) => record.text(i).map_or(Datum::Null, |s| {
                    if self.hashed.get(slot) == Some(&true) {
                        Datum::hash_of(s)
                    } else {
                        Datum::Sym(interner.intern(s))
                    }
                }),
                Value::Int(n) => Datum::Int(*n),
                Value::Float(f) => Datum::Float(Float(*f)),
                Value::Money(c) => Datum::Money(*c),
                Value::Bool(b) => Datum::Bool(*b),
                Value::Timestamp(t) => Datum::Timestamp(*t),
            })
            .collect()
    }
}

impl Plan {
    /// The expressions over the input row: `WHERE`, `GROUP BY`, aggregate arguments and filters.
    fn input_exprs(&mut self) -> impl Iterator<Item = &mut Expr> {
        let aggs = self
            .aggs
            .iter_mut()
            .flat_map(|a| a.arg.iter_mut().chain(a.filter.iter_mut()));
        self.filter
            .iter_mut()
            .chain(self.keys.iter_mut())
            .chain(aggs)
    }

    fn intern(&mut self, symbols: &Symbols) {
        if self.table == TableName::DeadLetters {
            return;
        }
        self.input_exprs().for_each(|e| e.intern(symbols));
        for c in &mut self.columns {
            c.expr.intern(symbols);
        }
        self.having.iter_mut().for_each(|e| e.intern(symbols));
        for o in &mut self.order {
            o.expr.intern(symbols);
        }
    }
}

/// The row of a dead letter: its reason code, message and payload (as text, invalid UTF-8
/// replaced).
pub fn dead_row(d: &crate::event::DeadLetter) -> Row {
    smallvec::smallvec![
        Datum::Text(d.reason.code().to_owned()),
        Datum::Text(d.message.clone()),
        Datum::Text(String::from_utf8_lossy(&d.raw).into_owned()),
    ]
}

#[cfg(test)]
mod tests;
