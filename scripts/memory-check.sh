#!/usr/bin/env bash
# Usage: scripts/memory-check.sh [SECONDS] [RATE] [COMMIT_INTERVAL] [BINARY]
# Memory follows live state, not the number of commits (see scripts/memory_check.py): a run of
# the generator with frequent lake commits whose RSS must not grow by more than 20% from its
# second fifth to its last, with Delta checkpoints written and the old log cleaned up. CI runs
# the defaults (90 s at 5,000 events/s, a commit every 100 ms: about 900 versions) on the debug
# build; the README's figures are `scripts/memory-check.sh 600 100000 1s target/release/lambdaflow`.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-90}
rate=${2:-5000}
interval=${3:-100ms}
binary=${4:-target/debug/lambdaflow}
[ "$binary" != target/debug/lambdaflow ] || scripts/build.sh
exec python3 scripts/memory_check.py "$binary" target/memory-check "$seconds" "$rate" "$interval"
