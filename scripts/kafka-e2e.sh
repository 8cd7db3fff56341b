#!/usr/bin/env bash
# Usage: scripts/kafka-e2e.sh [EVENTS]
# The README's Kafka loop against a real broker (tansu, from scripts/kafka-broker.sh): publish
# EVENTS (default 1,000,000) generated events to a 4-partition topic, run lambdaflow on 2 workers,
# `kill -9` it halfway through, restart it to the end of the topic, and check that the lake holds
# every event exactly once (the `deltalake` package reads it back), that the consumer group's
# offsets equal the lake's, and that `lambdaflow verify` accepts it.
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-1000000}
source scripts/venv.sh
scripts/build.sh
lf=$PWD/target/debug/lambdaflow
export LAMBDAFLOW_KAFKA_PORT=${LAMBDAFLOW_KAFKA_PORT:-19092}
scripts/kafka-broker.sh start
trap 'scripts/kafka-broker.sh stop >/dev/null' EXIT
topic=e2e-$$
scripts/kafka-broker.sh topic "$topic" 4
url=kafka://127.0.0.1:$LAMBDAFLOW_KAFKA_PORT/$topic
work=target/kafka-e2e
rm -rf "$work"
mkdir -p "$work"

"$lf" generate --to "$url" --count "$events"

"$lf" run --quiet --workers 2 --source "$url" --data-dir "$work/data" 2>"$work/first.err" &
run=$!
rows() { "$lf" lake info --json --data-dir "$work/data" 2>/dev/null |
    "$py" -c 'import json,sys; print(json.load(sys.stdin)["events"]["rows"])' 2>/dev/null || echo 0; }
half=$((events / 2))
for _ in $(seq 1 3000); do
    [[ $(rows) -ge $half ]] && break
    sleep 0.1
done
kill -9 "$run"
wait "$run" 2>/dev/null || true
echo "kafka-e2e: killed with kill -9 after $(rows) of $events events were committed"

"$lf" run --quiet --workers 2 --until-exhausted --source "$url" --data-dir "$work/data" \
    --views-out "$work/views.json"
"$lf" lake info --data-dir "$work/data"
"$lf" kafka --source "$url" --data-dir "$work/data"
"$lf" verify --data-dir "$work/data"
"$py" - "$work/data" "$events" "$lf" "$url" <<'PY'
import json, subprocess, sys
from deltalake import DeltaTable
data, events, lf, url = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ids = DeltaTable(f"{data}/events").to_pyarrow_table(columns=["event_id"]).column("event_id")
distinct = len(set(ids.to_pylist()))
offsets = json.loads(subprocess.run([lf, "kafka", "--json", "--source", url, "--data-dir", data],
                                    check=True, capture_output=True, text=True).stdout)
same = all(p["group"] == p["lake"] == p["high"] for p in offsets["partitions"])
ok = len(ids) == events and distinct == events and same
print(f"kafka-e2e: {'passed' if ok else 'FAILED'}: {len(ids)} rows, {distinct} distinct event ids "
      f"of {events} published; group offsets = lake offsets = partition ends: {same}")
sys.exit(0 if ok else 1)
PY
