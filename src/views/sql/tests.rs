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
