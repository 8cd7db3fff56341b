use super::*;
use crate::config::ConfigFile;
use crate::event::Schema;
use crate::views::sql::{RowLayout, SqlView, compile};

/// The plans of a config's views, and which of their row slots are never null.
fn plans(toml: &str) -> (Vec<Plan>, Vec<bool>) {
    let file = ConfigFile::parse(toml, "test").unwrap();
    let schema = Schema::ecommerce();
    let views: Vec<SqlView> = file
        .views
        .iter()
        .map(|v| SqlView {
            name: v.name.clone(),
            sql: v.sql.clone(),
            description: String::new(),
            plan: compile(&v.name, &v.sql, &schema).unwrap(),
        })
        .collect();
    let (layout, plans) = RowLayout::of(&views, &Symbols::default());
    (plans, layout.never_null(&schema))
}

/// The built-in views in SQL fuse into the three groups the hand-written plan had: counts,
/// counts per minute, and price sums; the user views need no group (`user_id` is never
/// null, so a day has a row exactly when it has users) and their distinct user counts share
/// one count; the dead-letter view is left to be built alone.
#[test]
fn the_builtin_views_in_sql_fuse_as_the_hand_written_plan() {
    let (plans, non_null) = plans(include_str!("../../builtin.toml"));
    let indexed: Vec<(u8, &Plan)> = plans
        .iter()
        .enumerate()
        .map(|(i, p)| (i as u8, p))
        .collect();
    let (fused, rest) = Fused::of(&indexed, &non_null);
    assert_eq!(fused.views.len(), 10);
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].1.table, TableName::DeadLetters);
    let sizes: Vec<(usize, usize, usize)> = fused
        .groups
        .iter()
        .map(|g| (g.views.len(), g.atoms.len(), g.measures.len()))
        .collect();
    // events_by_type, events_by_source, events_by_country | events_per_minute |
    // revenue_by_country, avg_price_by_type, top_products, revenue_by_product.
    assert_eq!(sizes, [(3, 3, 1), (1, 2, 1), (4, 3, 3)]);
    let by_distinct = fused.views.iter().filter(|v| v.exists_by.is_some());
    assert_eq!(by_distinct.count(), 2);
    // Active users per day (two views) and purchasing users per day.
    assert_eq!(fused.distinct.len(), 2);
}

/// Views that keep values (`min`, `max`, float sums) or read dead letters are not fused.
#[test]
fn views_that_keep_values_are_built_alone() {
    let (plans, non_null) = plans(
        r#"
        [[views]]
        name = "a"
        sql = "SELECT country, max(price) AS top FROM events GROUP BY country"
        [[views]]
        name = "b"
        sql = "SELECT country, count(*) AS n FROM events GROUP BY country"
        [[views]]
        name = "c"
        sql = "SELECT reason, count(*) AS n FROM dead_letters GROUP BY reason"
        "#,
    );
    let indexed: Vec<(u8, &Plan)> = plans
        .iter()
        .enumerate()
        .map(|(i, p)| (i as u8, p))
        .collect();
    let (fused, rest) = Fused::of(&indexed, &non_null);
    assert_eq!(fused.views.iter().map(|v| v.id).collect::<Vec<_>>(), [1]);
    assert_eq!(rest.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [0, 2]);
}
