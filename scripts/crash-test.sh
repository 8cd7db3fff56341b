#!/usr/bin/env bash
# Usage: scripts/crash-test.sh [MIN_KILLS] [SEED]
# SIGKILLs `lambdaflow run` at random moments (at least MIN_KILLS, default 24), restarts it each
# time, and checks that the final views and lake are exactly those of an uninterrupted run (see
# scripts/crash_test.py). Installs deltalake, pyarrow and DuckDB from PyPI into target/venv.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
# The same build as the tests (one feature set, so dependencies compile once).
scripts/build.sh
rm -rf target/crash-test
exec "$py" scripts/crash_test.py target/debug/lambdaflow target/crash-test "$@"
