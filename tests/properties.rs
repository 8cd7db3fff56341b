//! Property: for random events (valid and malformed), random epoch splits and worker counts, the
//! incrementally maintained views equal a from-scratch plain recomputation.

#[path = "support/reference.rs"]
mod reference;

use chrono::{DateTime, FixedOffset};
use lambdaflow::pipeline::{EpochPolicy, Pipeline, PipelineConfig};
use lambdaflow::source::SourceSpec;
use proptest::prelude::*;
use serde_json::json;

const TYPES: [&str; 5] = ["page_view", "search", "add_to_cart", "purchase", "login"];
const PRODUCTS: [&str; 5] = ["mug", "lamp", "café", "desk", "Blåhaj"];

fn event_line() -> impl Strategy<Value = Vec<u8>> {
    (
        0..TYPES.len(),
        0u32..12,
        0i64..(3 * 86_400),
        -720i32..=840,
        proptest::option::of(0..PRODUCTS.len()),
        proptest::option::of(prop_oneof![Just(0i64), 1i64..100_000, Just(-250i64)]),
        prop_oneof![
            Just(None),
            Just(Some("UK")),
            Just(Some("FR")),
            Just(Some("日本"))
        ],
        proptest::option::of(prop_oneof![Just("web"), Just("mobile")]),
        0u8..12,
    )
        .prop_map(
            |(t, user, secs, offset_minutes, product, price, country, source, fault)| {
                let offset = FixedOffset::east_opt(offset_minutes * 60).unwrap();
                let at = DateTime::from_timestamp(1_735_689_600 + secs, 0)
                    .unwrap()
                    .with_timezone(&offset);
                let mut e = json!({
                    "event_id": format!("e{secs}"),
                    "event_type": TYPES[t],
                    "user_id": format!("u{user}"),
                    "event_timestamp": at.to_rfc3339(),
                    "country": country,
                    "extra": {"nested": [1, 2]},
                });
                if let Some(p) = product {
                    e["product"] = json!(PRODUCTS[p]);
                }
                if let Some(cents) = price {
                    e["price"] = json!(
                        format!("{}.{:02}", cents / 100, (cents % 100).abs())
                            .parse::<f64>()
                            .unwrap()
                    );
                }
                if let Some(s) = source {
                    e["source"] = json!(s);
                }
                // One fault at most per record: the reason is then unambiguous.
                match fault {
                    0 => return b"{\"event_type\": \"purchase\"".to_vec(),
                    1 => e["event_timestamp"] = json!("yesterday"),
                    2 => e["user_id"] = json!(17),
                    3 => e
                        .as_object_mut()
                        .unwrap()
                        .remove("event_type")
                        .map(drop)
                        .unwrap_or(()),
                    4 => e["price"] = json!("1.999"),
                    _ => {}
                }
                serde_json::to_vec(&e).unwrap()
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn incremental_views_equal_a_recomputation(
        lines in proptest::collection::vec(event_line(), 0..300),
        workers in 1usize..=4,
        epoch_records in 1u64..60,
    ) {
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
            ..PipelineConfig::default()
        };
        let store = Pipeline::run(config).unwrap();
        prop_assert_eq!(reference::from_views_json(&store.to_json()), reference::views(&lines, 1 << 20));
    }
}
