#!/usr/bin/env bash
# Usage: scripts/sql-check.sh [EVENTS] [WORKERS]
# Generates EVENTS events (default 200000, 1% malformed), runs lambdaflow on the file with WORKERS
# workers (default 2), and checks every view against DuckDB SQL over the file's valid lines, and
# the dead letters against the invalid ones; then reads the lake the run wrote with the Python
# `deltalake` package and DuckDB and checks it against the input and the views (lake_check.py).
# Installs DuckDB, deltalake and pyarrow from PyPI into target/venv on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-200000}
workers=${2:-2}
out=target/sql-check
mkdir -p "$out"
source scripts/venv.sh
# The same build as the tests (one feature set, so dependencies compile once).
scripts/build.sh
bin=target/debug/lambdaflow
"$bin" generate --count "$events" --seed 11 --bad-fraction 0.01 --start 2024-12-31T20:00:00Z -o "$out/events.jsonl"
rm -rf "$out/data"
"$bin" run --quiet --until-exhausted --workers "$workers" --source "file:$out/events.jsonl" --data-dir "$out/data" --views-out "$out/views.json"
"$py" scripts/sql_check.py "$out/events.jsonl" "$out/views.json"
# The lake, read back from outside (deltalake and DuckDB), against the same input and views.
"$py" scripts/lake_check.py "$out/data" "$out/events.jsonl" "$out/views.json" "$bin"
