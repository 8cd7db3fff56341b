//! The fuzz corpus (`fuzz/corpus/TARGET/`) and every crash the fuzzers found
//! (`fuzz/regressions/TARGET/`), replayed through the fuzz targets' bodies on the stable
//! toolchain: what once broke an invariant stays fixed. The fuzzers themselves run with
//! `cargo +nightly fuzz run TARGET` (see fuzz/README.md), not in CI.

use std::path::Path;

fn replay(target: &str, body: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut inputs = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let result = std::panic::catch_unwind(|| body(&data));
            assert!(
                result.is_ok(),
                "{target}: {} breaks an invariant",
                path.display()
            );
            inputs += 1;
        }
    }
    assert!(inputs >= 5, "{target}: only {inputs} inputs in the corpus");
}

#[test]
fn decode_corpus() {
    replay("decode", lambdaflow::fuzzing::decode);
}

#[test]
fn lake_corpus() {
    replay("lake", lambdaflow::fuzzing::lake);
}

#[test]
fn config_corpus() {
    replay("config", lambdaflow::fuzzing::config);
}

#[test]
fn http_corpus() {
    replay("http", lambdaflow::fuzzing::http);
}
