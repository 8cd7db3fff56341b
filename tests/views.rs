//! The views of the dataflow equal an independent, plain recomputation, whatever the number of
//! workers and the epoch size.

#[path = "support/reference.rs"]
mod reference;

use std::time::Duration;

use lambdaflow::pipeline::{EpochPolicy, Pipeline, PipelineConfig};
use lambdaflow::source::generator::BAD_KINDS;
use lambdaflow::source::{GeneratorSpec, SourceSpec};

const EVENTS: u64 = 120_000;

/// `EVENTS` generated events, 1% malformed, written to `dir` as JSON lines: the file, its lines,
/// and how many of each malformed kind the generator made.
fn write_events(
    dir: &std::path::Path,
) -> (
    std::path::PathBuf,
    Vec<Vec<u8>>,
    std::collections::BTreeMap<String, i64>,
) {
    let path = dir.join("events.jsonl");
    // Starting two hours before midnight UTC, the events span two days.
    let spec = GeneratorSpec {
        seed: 7,
        bad_fraction: 0.01,
        start_micros: 1_735_682_400_000_000,
        ..GeneratorSpec::default()
    };
    let mut bytes = Vec::new();
    let mut lines = Vec::new();
    let mut injected = std::collections::BTreeMap::new();
    for seq in 0..EVENTS {
        let mut line = Vec::new();
        if let Some(kind) = spec.render(seq, &mut line) {
            *injected.entry(kind.code().to_owned()).or_insert(0i64) += 1;
        }
        bytes.extend_from_slice(&line);
        bytes.push(b'\n');
        lines.push(line);
    }
    std::fs::write(&path, &bytes).unwrap();
    (path, lines, injected)
}

#[test]
fn views_equal_a_plain_recomputation_for_any_workers_and_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let (path, lines, injected) = write_events(dir.path());
    let expected = reference::views(&lines, 1 << 20);

    // The generator's own account of what it broke, and the reference's, and the engine's agree.
    let dead: std::collections::BTreeMap<String, i64> = expected["dead_letters_by_reason"]
        .iter()
        .map(|(k, v)| {
            let key: serde_json::Value = serde_json::from_str(k).unwrap();
            let reason = key["reason"].as_str().unwrap().to_owned();
            (reason, v["count"].as_i64().unwrap())
        })
        .collect();
    assert_eq!(dead, injected);
    assert_eq!(
        injected.len(),
        BAD_KINDS.len(),
        "every malformed kind occurs"
    );
    assert!(expected["top_products"].len() == 10 && expected["daily_active_users"].len() >= 2);

    for workers in [1, 2, 4] {
        for epoch in [
            EpochPolicy::Records(1_000),
            EpochPolicy::Records(40_000),
            EpochPolicy::Interval(Duration::from_millis(5)),
        ] {
            let config = PipelineConfig {
                workers,
                epoch,
                source: SourceSpec::Files(vec![path.clone()]),
                until_exhausted: true,
                ..PipelineConfig::default()
            };
            let store = Pipeline::run(config).unwrap();
            let got = reference::from_views_json(&store.to_json());
            assert_eq!(got, expected, "{workers} workers, {epoch:?}");
        }
    }
}

/// Views that share an operator when all are on (the counting and summing views, the two
/// distinct user counts) are built differently when only some are: each subset still equals
/// the same views of the recomputation.
#[test]
fn any_subset_of_the_views_equals_the_recomputation() {
    let dir = tempfile::tempdir().unwrap();
    let (path, lines, _) = write_events(dir.path());
    let all = reference::views(&lines, 1 << 20);
    // Each counting or summing view is the only one of its kind in one subset.
    let subsets: [&[&str]; 5] = [
        // Sums and counts without the user views.
        &["events_by_type", "revenue_by_country"],
        &["events_per_minute", "avg_price_by_type"],
        &["events_by_source", "top_products"],
        // With a user view: one operator for both.
        &[
            "events_by_country",
            "revenue_by_product",
            "daily_active_users",
        ],
        // User views without the sums and counts, and the dead letters.
        &[
            "daily_active_users",
            "conversion_rate",
            "dead_letters_by_reason",
        ],
    ];
    for names in subsets {
        let config = PipelineConfig {
            workers: 2,
            epoch: EpochPolicy::Records(7_000),
            source: SourceSpec::Files(vec![path.clone()]),
            until_exhausted: true,
            sql_views: lambdaflow::views::builtin::ecommerce()
                .into_iter()
                .filter(|v| names.contains(&v.name.as_str()))
                .collect(),
            ..PipelineConfig::default()
        };
        let store = Pipeline::run(config).unwrap();
        let got = reference::from_views_json(&store.to_json());
        let expected: std::collections::BTreeMap<_, _> = all
            .iter()
            .filter(|(name, _)| names.contains(&name.as_str()))
            .map(|(name, rows)| (name.clone(), rows.clone()))
            .collect();
        assert_eq!(expected.len(), names.len(), "{names:?}");
        assert_eq!(got, expected, "{names:?}");
    }
}
