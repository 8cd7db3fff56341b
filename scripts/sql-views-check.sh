#!/usr/bin/env bash
# SQL views against DuckDB: runs the views of scripts/sql-views.toml over generated events (with
# malformed lines) on 1, 2 and 4 workers and two epoch sizes, and compares every row of every
# view with DuckDB's answer to the same SQL over the same file's valid lines
# (scripts/sql_views_check.py).
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-100000}
out=target/sql-views-check
mkdir -p "$out"
source scripts/venv.sh
cargo build --quiet --workspace --all-targets
bin=target/debug/lambdaflow
"$bin" generate --count "$events" --seed 23 --bad-fraction 0.01 --start 2024-12-31T22:30:00Z -o "$out/events.jsonl"
runs=()
for workers in 1 2 4; do
  for epoch in 1000 25000; do
    "$bin" run --quiet --no-serve --no-lake --until-exhausted --config scripts/sql-views.toml \
      --workers "$workers" --epoch-records "$epoch" --source "file:$out/events.jsonl" \
      --views-out "$out/views-w$workers-e$epoch.json"
    runs+=("$out/views-w$workers-e$epoch.json")
  done
done
"$py" scripts/sql_views_check.py scripts/sql-views.toml "$out/events.jsonl" "${runs[@]}"
