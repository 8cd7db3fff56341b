//! The compiler's refusals and plans.

use super::compile;
use crate::event::Schema;

fn refusal(sql: &str) -> String {
    match compile("v", sql, &Schema::ecommerce()) {
        Ok(plan) => panic!("`{sql}` compiled: {plan:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn unsupported_constructs_are_refused_with_their_position() {
    for (sql, want) in [
        (
            "SELECT a.event_type, count(*) FROM events a JOIN events b ON a.user_id = b.user_id GROUP BY 1",
            "joins are not supported (line 1, column 50)",
        ),
        (
            "SELECT event_type, count(*) FROM (SELECT * FROM events) GROUP BY event_type",
            "subqueries are not supported",
        ),
        (
            "SELECT event_type, count(*) OVER () FROM events GROUP BY event_type",
            "window functions are not supported",
        ),
        (
            "SELECT nope, count(*) FROM events GROUP BY nope",
            "unknown column `nope` (line 1, column 8)",
        ),
        (
            "SELECT event_type, median(price) FROM events GROUP BY event_type",
            "unknown function `median` (line 1, column 20)",
        ),
        (
            "SELECT event_type, sum(country) FROM events GROUP BY event_type",
            "sum of a string value is not supported",
        ),
        (
            "SELECT event_type, count(*) FROM events WHERE price GROUP BY event_type",
            "WHERE needs a condition, not a money value",
        ),
        (
            "SELECT event_type, count(*) FROM events WHERE price > 'x' GROUP BY event_type",
            "a string value cannot be compared with a money value",
        ),
        (
            "SELECT country, count(*) FROM events GROUP BY event_type",
            "column `country` must be in GROUP BY or inside an aggregate",
        ),
        ("SELECT event_type FROM events", "a view aggregates"),
        (
            "SELECT event_type, count(*) FROM events GROUP BY event_type LIMIT 3",
            "LIMIT needs an ORDER BY",
        ),
        (
            "SELECT event_type, count(*) FROM clicks GROUP BY event_type",
            "unknown table `clicks`",
        ),
        ("SELECT * FROM events", "SELECT * is not supported"),
        (
            "SELECT event_type, count(*) FROM events GROUP BY event_type; SELECT 1",
            "a view is one SELECT statement",
        ),
        ("SELEC event_type", "Expected"),
        // row_number() is a top-n's rank only: over the view's ORDER BY, with a LIMIT.
        (
            "SELECT product, row_number() OVER (ORDER BY product) AS r, sum(price) AS s FROM events GROUP BY product",
            "except `row_number() OVER (ORDER BY ...)` as the rank of a top-n view",
        ),
        (
            "SELECT product, row_number() OVER (ORDER BY product) AS r, sum(price) AS s FROM events \
             GROUP BY product ORDER BY s DESC LIMIT 3",
            "the same ORDER BY as the view's",
        ),
        (
            "SELECT product, row_number() OVER (PARTITION BY product ORDER BY sum(price)) AS r, sum(price) AS s \
             FROM events GROUP BY product ORDER BY s LIMIT 3",
            "(line 1, column 17)",
        ),
        (
            "SELECT product, rank() OVER (ORDER BY sum(price)) AS r FROM events GROUP BY product ORDER BY 2 LIMIT 3",
            "window functions are not supported",
        ),
        (
            "SELECT event_type, round(sum(price), -1) FROM events GROUP BY event_type",
            "round takes a number and, optionally, 0 to 15 decimal places",
        ),
        (
            "SELECT event_type, round(country) FROM events GROUP BY event_type, country",
            "round needs a number, not a string value",
        ),
    ] {
        let got = refusal(sql);
        assert!(got.starts_with("view `v`: "), "{got}");
        assert!(got.contains(want), "`{sql}`: got `{got}`, want `{want}`");
    }
}

#[test]
fn group_keys_are_the_row_key_and_aggregates_are_shared() {
    let plan = compile(
        "v",
        "SELECT event_type AS t, date_trunc('minute', event_timestamp) AS minute, count(*) AS n, \
         sum(price) FILTER (WHERE country = 'DE') AS de, count(*) * 2 AS twice \
         FROM events WHERE price IS NOT NULL GROUP BY t, minute HAVING count(*) > 1 ORDER BY n DESC LIMIT 5",
        &Schema::ecommerce(),
    )
    .expect("compiles");
    let keys: Vec<&str> = plan
        .columns
        .iter()
        .filter(|c| c.key)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(keys, ["t", "minute"]);
    assert_eq!(plan.aggs.len(), 2, "count(*) once, sum once");
    assert_eq!(plan.limit, Some(5));
    assert!(plan.order[0].descending);
    assert!(!plan.global);
}

#[test]
fn row_number_is_the_rank_of_a_top_n() {
    let plan = compile(
        "v",
        "SELECT product, row_number() OVER (ORDER BY sum(price) DESC, product) AS rank, \
         sum(price) AS revenue FROM events GROUP BY product ORDER BY revenue DESC, product LIMIT 10",
        &Schema::ecommerce(),
    )
    .expect("compiles");
    assert_eq!((plan.rank, plan.limit), (Some(0), Some(10)));
    let rank = &plan.columns[1];
    assert_eq!((rank.name.as_str(), rank.key), ("rank", false));
}

#[test]
fn round_is_half_away_from_zero_in_every_type() {
    use crate::views::{Datum, Float};
    let cases = [
        (
            "round(CAST(price AS DOUBLE))",
            250,
            Datum::Float(Float(3.0)),
        ),
        (
            "round(-CAST(price AS DOUBLE))",
            250,
            Datum::Float(Float(-3.0)),
        ),
        (
            "round(CAST(price AS DOUBLE), 1)",
            125,
            Datum::Float(Float(1.3)),
        ),
        ("round(price)", 250, Datum::Money(300)),
        ("round(price)", -250, Datum::Money(-300)),
        ("round(price)", 249, Datum::Money(200)),
        ("round(price, 1)", 125, Datum::Money(130)),
        ("round(price, 2)", 125, Datum::Money(125)),
    ];
    let symbols = crate::event::Symbols::default();
    for (expr, cents, want) in cases {
        let sql = format!("SELECT {expr} AS x, count(*) AS n FROM events GROUP BY x");
        let plan = compile("v", &sql, &Schema::ecommerce()).expect("compiles");
        // The view reads one column, the price: the input row's only slot.
        let got = plan.keys[0].eval(&[Datum::Money(cents)], &symbols);
        assert_eq!(got, want, "{expr} of {cents} cents");
    }
}
