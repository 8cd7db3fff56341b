#!/usr/bin/env bash
# Peer comparison, one command: makes target/peers-venv with Pathway, Bytewax and DuckDB from
# PyPI (pinned, once), builds lambdaflow in release, generates one JSON-lines file with
# `lambdaflow generate`, runs the same three aggregations in each system (scripts/peers.py),
# checks that all answers are equal and prints wall time, events/s and the ratio to lambdaflow.
#
# Usage: scripts/peers.sh [EVENTS] [THREADS] [REPEAT]   (defaults: 1000000 2 3)
# The table is also written to target/peers/results.json.
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-1000000}
threads=${2:-2}
repeat=${3:-3}

venv=target/peers-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c "import pathway, bytewax, duckdb" 2>/dev/null ||
  "$venv/bin/pip" install --quiet pathway==0.33.0 bytewax==0.21.1 duckdb==2.0.0

cargo build --release --quiet
mkdir -p target/peers
file=target/peers/events-$events.jsonl
[ -s "$file" ] || target/release/lambdaflow generate --count "$events" --output "$file"

# Pathway logs every batch at INFO; its answers, not its logs, are what is compared.
export PATHWAY_LOG_LEVEL=WARNING
"$venv/bin/python" scripts/peers.py "$file" --threads "$threads" --repeat "$repeat" \
  --lambdaflow target/release/lambdaflow --json target/peers/results.json
