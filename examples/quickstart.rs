//! Quickstart: run the engine from Rust on generated events and print two views.
//!
//! Generates 50,000 events with 1% malformed records, runs them through the dataflow on two
//! workers (a new epoch every 5,000 records), and prints the revenue per country and the dead
//! letters per reason, as of the last closed epoch.
//!
//! Run with `cargo run --release --example quickstart`.

use lambdaflow::pipeline::{EpochPolicy, Pipeline, PipelineConfig};
use lambdaflow::source::{GeneratorSpec, SourceSpec};

fn main() -> anyhow::Result<()> {
    let generator = GeneratorSpec {
        count: Some(50_000),
        bad_fraction: 0.01,
        ..GeneratorSpec::default()
    };
    let config = PipelineConfig {
        workers: 2,
        epoch: EpochPolicy::Records(5_000),
        source: SourceSpec::Generate(generator),
        until_exhausted: true,
        ..PipelineConfig::default()
    };
    let views = Pipeline::run(config)?;
    views.read(|state| {
        println!("as of epoch {:?}", state.as_of);
        for name in ["revenue_by_country", "dead_letters_by_reason"] {
            println!("{name}:");
            let view = views.catalog().index_of(name).expect("a built-in view");
            for row in views.rows_json(state, view) {
                println!("  {} -> {}", row["key"], row["value"]);
            }
        }
    });
    Ok(())
}
