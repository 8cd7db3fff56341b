#!/usr/bin/env bash
# The performance figures of the README, from scratch: `lambdaflow bench` (release build) in
# closed loop on 2 workers and on 1 (also with the whole process confined to one CPU, and as two
# independent one-worker processes at once, one confined to each CPU), in open loop at 200,000
# events/s with 10 ms epochs, and on 10,000,000 events; each repeated and reported as the median,
# next to the targets. Reports go to target/bench/*.json. Takes about 9 minutes on 2 cores (plus
# the release build).
#
# Usage: scripts/bench-report.sh [REPEAT]   (default 5; the 10M run is made once)
set -euo pipefail
cd "$(dirname "$0")/.."
repeat=${1:-5}
cargo build --release --quiet
bin=target/release/lambdaflow
out=target/bench
mkdir -p "$out"
rm -f "$out"/*.json

one() { # NAME I COUNT ARGS...   ($launch, if set, runs the command: `taskset -c 0`)
  local name=$1 i=$2 count=$3
  shift 3
  echo "$name $i/$count: ${launch:+$launch }lambdaflow bench $*" >&2
  ${launch:-} "$bin" bench "$@" --json >"$out/$name-$i.json"
}

run() { # NAME COUNT ARGS...
  local name=$1 count=$2
  shift 2
  for i in $(seq 1 "$count"); do
    one "$name" "$i" "$count" "$@"
  done
}

# 2 workers and 1 in turn, so that both see the same phases of a shared machine. One worker
# also runs with the process confined to CPU 0: its Parquet file thread otherwise uses part of
# the second core, so that run compares 2 workers with 1 core for core. Then two such processes
# at once, sharing nothing but the machine: what this machine's second CPU gives this work with
# no engine in between, the yardstick for what 2 workers in one process get.
command -v taskset >/dev/null || { echo "bench-report: taskset (util-linux) is needed" >&2; exit 1; }
for i in $(seq 1 "$repeat"); do
  one closed-2 "$i" "$repeat" --workers 2 --events 5000000
  one closed-1 "$i" "$repeat" --workers 1 --events 5000000
  launch="taskset -c 0" one closed-1core "$i" "$repeat" --workers 1 --events 5000000
  launch="taskset -c 0" one closed-pair0 "$i" "$repeat" --workers 1 --events 5000000 --no-limits &
  first=$!
  launch="taskset -c 1" one closed-pair1 "$i" "$repeat" --workers 1 --events 5000000 --no-limits
  wait "$first"
done
run open-200k 3 --workers 2 --events 4000000 --rate 200000 --epoch 10ms --no-limits
run closed-10m 1 --workers 2 --events 10000000 --no-limits

python3 scripts/bench_summary.py "$out"
