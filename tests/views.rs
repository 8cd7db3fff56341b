//! The views of the dataflow equal an independent, plain recomputation, whatever the number of
//! workers and the epoch size.

#[path = "support/reference.rs"]
mod reference;

use std::time::Duration;

use lambdaflow::pipeline::{EpochPolicy, Pipeline, PipelineConfig};
use lambdaflow::source::generator::BAD_KINDS;
use lambdaflow::source::{GeneratorSpec, SourceSpec};

const EVENTS: u64 = 120_000;

#[test]
fn views_equal_a_plain_recomputation_for_any_workers_and_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
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
    let expected = reference::views(&lines, 1 << 20);

    // The generator's own account of what it broke, and the reference's, and the engine's agree.
    let dead: std::collections::BTreeMap<String, i64> = expected["dead_letters_by_reason"]
        .iter()
        .map(|(k, v)| (k.trim_matches('"').to_owned(), v.as_i64().unwrap()))
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
