#!/usr/bin/env bash
# SQL views against DuckDB, on three pipelines: the views of scripts/sql-views.toml and the
# built-in views written in SQL (src/views/builtin.toml) over generated e-commerce events,
# and a shop's own schema (nested fields, three kinds of event, scripts/sql-nested.toml) over
# events from scripts/nested_events.py; all with malformed lines, on 1, 2 and 4 workers and two epoch sizes, and as clusters of 2 x 1 and 2 x 2 processes and workers. Every row of every view must equal DuckDB's
# answer to the same SQL over the same file's valid lines (scripts/sql_views_check.py).
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-100000}
out=target/sql-views-check
mkdir -p "$out"
source scripts/venv.sh
scripts/build.sh
bin=target/debug/lambdaflow
"$bin" generate --count "$events" --seed 23 --bad-fraction 0.01 --start 2024-12-31T22:30:00Z -o "$out/shop.jsonl"
"$py" scripts/nested_events.py "$events" 7 "$out/nested.jsonl"
status=0
for pipeline in shop:shop:scripts/sql-views.toml builtins:shop:src/views/builtin.toml nested:nested:scripts/sql-nested.toml; do
  name=${pipeline%%:*}
  rest=${pipeline#*:}
  input=${rest%%:*}
  config=${rest#*:}
  runs=()
  for workers in 1 2 4; do
    for epoch in 1000 25000; do
      views="$out/$name-w$workers-e$epoch.json"
      "$bin" run --quiet --no-serve --no-lake --until-exhausted --config "$config" \
        --workers "$workers" --epoch-records "$epoch" --source "file:$out/$input.jsonl" --views-out "$views"
      runs+=("$views")
    done
  done
  # The same pipeline as clusters of processes (docs/clusters.md).
  for shape in 2x1 2x2; do
    views="$out/$name-cluster$shape.json"
    "$bin" cluster --processes "${shape%x*}" --workers "${shape#*x}" -- run --quiet --no-serve \
      --no-lake --until-exhausted --config "$config" --epoch-records 1000 \
      --source "file:$out/$input.jsonl" --views-out "$views"
    runs+=("$views")
  done
  "$py" scripts/sql_views_check.py "$config" "$out/$input.jsonl" "${runs[@]}" || status=1
done
exit $status
