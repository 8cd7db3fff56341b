#!/usr/bin/env bash
# Usage: scripts/test.sh
# Everything CI checks, in order: formatting, clippy, docs, the DuckDB check of the views and the
# lake, the SQL views against DuckDB (1, 2 and 4 workers, two epoch sizes, clusters of 2 processes), the
# Rust view of examples/custom_operator.rs killed, restarted, served and verified, poisonous records among good ones with the lake read back by deltalake, PyArrow and
# DuckDB, the lake read by deltalake, pandas, PyArrow, DuckDB and PySpark (both Parquet readers)
# before and after compaction with file skipping, a lake on S3 (moto's server: a run killed and
# resumed, batch, verify, compaction, vacuum, a 2-process cluster, credentials from the AWS SDK's
# provider chain, read back by deltalake), the resident size over 900 lake commits (Delta
# checkpoints and log cleanup), the crash tests (SIGKILL at 24+ random moments reading files and
# the generator, on one process, on a 2-process cluster and in random shapes, 20+ reading Kafka), the full-disk test, the dashboard in headless Chromium (screenshot in
# target/browser-test/), the doc tests, then every unit and integration test (with cargo-nextest
# when installed).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
scripts/sql-check.sh
scripts/sql-views-check.sh
scripts/custom-operator-check.sh
scripts/poison-check.sh
scripts/readers-check.sh
scripts/s3-check.sh
scripts/memory-check.sh
scripts/crash-test.sh 24
scripts/kafka-crash-test.sh 20
scripts/full-disk-test.sh
scripts/browser-test.sh
cargo test --workspace --doc
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace
else
  cargo test --workspace --lib --bins --tests --examples
fi
