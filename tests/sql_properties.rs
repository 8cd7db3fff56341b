//! Property: for random events, random SQL views drawn from the supported grammar, random epoch
//! splits and worker counts, the incrementally maintained SQL views equal a plain recomputation:
//! the same compiled plan evaluated over all rows at once, group by group, in plain Rust.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use lambdaflow::event::{Decoder, Interner, Schema, Symbols};
use lambdaflow::pipeline::{EpochPolicy, Pipeline, PipelineConfig};
use lambdaflow::source::SourceSpec;
use lambdaflow::views::sql::expr::{Type, compare, text};
use lambdaflow::views::sql::{AggFn, Plan, RowLayout, SqlView, compile};
use lambdaflow::views::{Datum, Float};
use proptest::prelude::*;
use serde_json::{Value, json};

const TYPES: [&str; 4] = ["page_view", "search", "purchase", "login"];
const COUNTRIES: [Option<&str>; 4] = [Some("UK"), Some("FR"), Some("日本"), Some("DE")];
const PRODUCTS: [&str; 4] = ["mug", "lamp", "café", "desk"];

fn event_line() -> impl Strategy<Value = Vec<u8>> {
    (
        0..TYPES.len(),
        0u32..8,
        0i64..(2 * 86_400),
        proptest::option::of(0..PRODUCTS.len()),
        proptest::option::of(0i64..50_000),
        0..COUNTRIES.len(),
        proptest::option::of(prop_oneof![Just("web"), Just("mobile")]),
        0u8..20,
    )
        .prop_map(|(t, user, secs, product, price, country, source, fault)| {
            if fault == 0 {
                return b"{\"event_type\": \"purchase\"".to_vec();
            }
            let at = chrono::DateTime::from_timestamp(1_735_650_000 + secs, 0).unwrap();
            let mut e = json!({
                "event_id": format!("e{secs}"),
                "event_type": TYPES[t],
                "user_id": format!("u{user}"),
                "event_timestamp": at.to_rfc3339(),
                "country": COUNTRIES[country],
            });
            if let Some(p) = product {
                e["product"] = json!(PRODUCTS[p]);
            }
            if let Some(cents) = price {
                e["price"] = json!(format!("{}.{:02}", cents / 100, cents % 100));
            }
            if let Some(s) = source {
                e["source"] = json!(s);
            }
            serde_json::to_vec(&e).unwrap()
        })
}

const KEYS: [&str; 6] = [
    "event_type",
    "country",
    "source",
    "date_trunc('hour', event_timestamp)",
    "CAST(event_timestamp AS DATE)",
    "product",
];
/// `{f}` is where an aggregate's `FILTER` goes.
const AGGS: [&str; 11] = [
    "count(*){f}",
    "count(price){f}",
    "count(DISTINCT user_id){f}",
    "sum(price){f}",
    "avg(price){f}",
    "min(price){f}",
    "max(product){f}",
    "min(event_timestamp){f}",
    "sum(price * 2 - 1){f}",
    "max(price){f} - min(price){f}",
    "CAST(avg(price){f} AS DECIMAL(18, 2))",
];
const CONDITIONS: [&str; 6] = [
    "price > 100",
    "country = 'UK'",
    "source IS NULL",
    "event_type IN ('purchase', 'search')",
    "product LIKE 'm%' OR product LIKE '%é'",
    "NOT (country = 'FR') AND price IS NOT NULL",
];

/// A random view from the grammar.
fn view_sql() -> impl Strategy<Value = String> {
    (
        proptest::sample::subsequence(KEYS.to_vec(), 0..=2),
        proptest::collection::vec(
            (0..AGGS.len(), proptest::option::of(0..CONDITIONS.len())),
            1..=3,
        ),
        proptest::option::of(0..CONDITIONS.len()),
        any::<bool>(),
        proptest::option::of((1usize..5, any::<bool>())),
    )
        .prop_map(|(keys, aggs, filter, having, limit)| {
            let mut items: Vec<String> = keys
                .iter()
                .enumerate()
                .map(|(i, k)| format!("{k} AS k{i}"))
                .collect();
            for (i, (a, cond)) in aggs.iter().enumerate() {
                let filter = cond.map_or(String::new(), |c| {
                    format!(" FILTER (WHERE {})", CONDITIONS[c])
                });
                let agg = AGGS[*a].replace("{f}", &filter);
                items.push(format!("{agg} AS a{i}"));
            }
            let mut sql = format!("SELECT {} FROM events", items.join(", "));
            if let Some(c) = filter {
                sql += &format!(" WHERE {}", CONDITIONS[c]);
            }
            if !keys.is_empty() {
                let by: Vec<String> = (0..keys.len()).map(|i| format!("k{i}")).collect();
                sql += &format!(" GROUP BY {}", by.join(", "));
                if having {
                    sql += " HAVING count(*) > 1";
                }
                if let Some((n, descending)) = limit {
                    let dir = if descending { "DESC" } else { "ASC" };
                    sql += &format!(" ORDER BY a0 {dir} LIMIT {n}");
                }
            }
            sql
        })
}

/// The plan evaluated over every row at once.
fn recompute(plan: &Plan, rows: &[Vec<Datum>], symbols: &Symbols) -> BTreeMap<String, Value> {
    let mut groups: BTreeMap<Vec<Datum>, Vec<&Vec<Datum>>> = BTreeMap::new();
    for row in rows {
        if plan.filter.as_ref().is_some_and(|f| !f.holds(row, symbols)) {
            continue;
        }
        let key = plan.keys.iter().map(|k| k.eval(row, symbols)).collect();
        groups.entry(key).or_default().push(row);
    }
    if plan.global && groups.is_empty() {
        groups.insert(Vec::new(), Vec::new());
    }
    let mut out: Vec<(Vec<Datum>, Vec<Datum>, Vec<Datum>)> = Vec::new();
    for (key, rows) in &groups {
        let mut post = key.clone();
        for a in &plan.aggs {
            let kept: Vec<&Vec<Datum>> = rows
                .iter()
                .copied()
                .filter(|r| a.filter.as_ref().is_none_or(|f| f.holds(r, symbols)))
                .collect();
            let values: Vec<Datum> = kept
                .iter()
                .filter_map(|r| a.arg.as_ref().map(|x| x.eval(r, symbols)))
                .filter(|v| *v != Datum::Null)
                .collect();
            post.push(aggregate(a.func, a.arg_ty, kept.len(), &values, symbols));
        }
        if plan
            .having
            .as_ref()
            .is_some_and(|h| !h.holds(&post, symbols))
        {
            continue;
        }
        let (mut k, mut v) = (Vec::new(), Vec::new());
        for c in &plan.columns {
            let d = c.expr.eval(&post, symbols);
            if c.key { k.push(d) } else { v.push(d) }
        }
        let order = plan
            .order
            .iter()
            .map(|o| o.expr.eval(&post, symbols))
            .collect();
        out.push((k, v, order));
    }
    if let Some(limit) = plan.limit {
        out.sort_by(|(ka, _, a), (kb, _, b)| {
            for (o, (x, y)) in plan.order.iter().zip(a.iter().zip(b)) {
                let c = match (x, y) {
                    (Datum::Null, Datum::Null) => std::cmp::Ordering::Equal,
                    (Datum::Null, _) => std::cmp::Ordering::Greater,
                    (_, Datum::Null) => std::cmp::Ordering::Less,
                    _ => {
                        let c = compare(x, y, symbols).unwrap();
                        if o.descending { c.reverse() } else { c }
                    }
                };
                if c.is_ne() {
                    return c;
                }
            }
            let texts = |k: &[Datum]| -> Vec<String> {
                k.iter().map(|d| d.to_json(symbols).to_string()).collect()
            };
            ka.iter()
                .zip(kb)
                .map(|(x, y)| match (x, y) {
                    (Datum::Null, Datum::Null) => std::cmp::Ordering::Equal,
                    (Datum::Null, _) => std::cmp::Ordering::Greater,
                    (_, Datum::Null) => std::cmp::Ordering::Less,
                    _ => compare(x, y, symbols).unwrap(),
                })
                .find(|c| c.is_ne())
                .unwrap_or_else(|| texts(ka).cmp(&texts(kb)))
        });
        out.truncate(limit);
    }
    let names = |key: bool| -> Vec<&str> {
        plan.columns
            .iter()
            .filter(|c| c.key == key)
            .map(|c| c.name.as_str())
            .collect()
    };
    let object = |names: &[&str], data: &[Datum]| -> Value {
        Value::Object(
            names
                .iter()
                .zip(data)
                .map(|(n, d)| (n.to_string(), d.to_json(symbols)))
                .collect(),
        )
    };
    out.iter()
        .map(|(k, v, _)| {
            (
                object(&names(true), k).to_string(),
                object(&names(false), v),
            )
        })
        .collect()
}

fn aggregate(func: AggFn, ty: Type, rows: usize, values: &[Datum], symbols: &Symbols) -> Datum {
    let best = |want: std::cmp::Ordering| {
        values
            .iter()
            .fold(None::<&Datum>, |b, v| match b {
                Some(b) if compare(v, b, symbols) != Some(want) => Some(b),
                _ => Some(v),
            })
            .cloned()
            .unwrap_or(Datum::Null)
    };
    let cents: i64 = values
        .iter()
        .map(|v| match v {
            Datum::Int(n) | Datum::Money(n) => *n,
            _ => 0,
        })
        .sum();
    match func {
        AggFn::CountRows => Datum::Int(rows as i64),
        AggFn::Count => Datum::Int(values.len() as i64),
        AggFn::CountDistinct => {
            let texts: BTreeSet<String> = values
                .iter()
                .map(|v| text(v, symbols).map_or_else(|| format!("{v:?}"), |t| t.into_owned()))
                .collect();
            Datum::Int(texts.len() as i64)
        }
        _ if values.is_empty() && func != AggFn::Min && func != AggFn::Max => Datum::Null,
        AggFn::Sum if ty == Type::Money => Datum::Money(cents),
        AggFn::Sum => Datum::Int(cents),
        AggFn::Avg if ty == Type::Money => {
            Datum::Float(Float(cents as f64 / values.len() as f64 / 100.0))
        }
        AggFn::Avg => Datum::Float(Float(cents as f64 / values.len() as f64)),
        AggFn::Min => best(std::cmp::Ordering::Less),
        AggFn::Max => best(std::cmp::Ordering::Greater),
    }
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0)
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn incremental_sql_views_equal_a_recomputation(
        lines in proptest::collection::vec(event_line(), 0..250),
        sqls in proptest::collection::vec(view_sql(), 1..4),
        workers in 1usize..=3,
        epoch_records in 1u64..50,
    ) {
        let schema = Schema::ecommerce();
        let views: Vec<SqlView> = sqls
            .iter()
            .enumerate()
            .map(|(i, sql)| SqlView {
                name: format!("v{i}"),
                sql: sql.clone(),
                description: String::new(),
                plan: compile(&format!("v{i}"), sql, &schema)
                    .unwrap_or_else(|e| panic!("{sql}: {e}")),
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let mut bytes = Vec::new();
        for line in &lines {
            bytes.extend_from_slice(line);
            bytes.push(b'\n');
        }
        std::fs::write(&path, &bytes).unwrap();
        let config = PipelineConfig {
            workers,
            epoch: EpochPolicy::Records(epoch_records),
            source: SourceSpec::Files(vec![path]),
            until_exhausted: true,
            sql_views: views.clone(),
            ..PipelineConfig::default()
        };
        let live = Pipeline::run(config).unwrap().to_json();

        let symbols = Arc::new(Symbols::default());
        let (layout, plans) = RowLayout::of(&views, &symbols);
        let mut decoder = Decoder::new(schema, 1 << 20);
        let mut interner = Interner::new(symbols.clone());
        let rows: Vec<Vec<Datum>> = lines
            .iter()
            .filter_map(|l| decoder.decode(l).ok().map(|r| layout.project(&r, &mut interner).into_vec()))
            .collect();
        for (view, plan) in views.iter().zip(&plans) {
            let want = recompute(plan, &rows, &symbols);
            let got: BTreeMap<String, Value> = live["views"][&view.name]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| (r["key"].to_string(), r["value"].clone()))
                .collect();
            let equal = got.len() == want.len()
                && got.iter().all(|(k, v)| want.get(k).is_some_and(|w| same(v, w)));
            prop_assert!(equal, "{}\nlive: {:?}\nrecomputed: {:?}", view.sql, got, want);
        }
    }
}
