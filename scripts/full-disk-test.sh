#!/usr/bin/env bash
# Usage: scripts/full-disk-test.sh
# Puts the data directory on a 1 MB tmpfs (in a private mount namespace: `unshare -rm`, no root
# needed where user namespaces are allowed) so that the lake fills the disk mid-run. The run must
# stop with one clear error line and exit 1; the table must still read back whole (nothing
# half-committed is visible); after the disk grows, the next run must recover and end with every
# valid input event in the lake exactly once (scripts/lake_check.py).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
# The same build as the tests (one feature set, so dependencies compile once).
scripts/build.sh
work=$(pwd)/target/full-disk-test
rm -rf "$work" && mkdir -p "$work/mnt"
bin=$(pwd)/target/debug/lambdaflow
"$bin" generate --count 150000 --bad-fraction 0.01 --seed 21 -o "$work/events.jsonl"
exec unshare -rm bash -euo pipefail -c '
work=$1; bin=$2; py=$3
mount -t tmpfs -o size=1m tmpfs "$work/mnt"
run() { "$bin" run -q --until-exhausted --workers 2 --epoch-records 1000 --commit-epochs 2 \
          --source "file:$work/events.jsonl" --data-dir "$work/mnt/data" --views-out "$work/views.json"; }
set +e; run 2> "$work/err.txt"; rc=$?; set -e
echo "full disk: exit $rc, stderr: $(cat "$work/err.txt")"
[ "$rc" = 1 ] || { echo "FAIL: expected exit 1"; exit 1; }
# The error is the last line (a warning about a view snapshot may come before it).
[ "$(wc -l < "$work/err.txt")" -le 2 ] || { echo "FAIL: expected at most two lines on stderr"; exit 1; }
tail -n 1 "$work/err.txt" | grep -q "^lambdaflow: lake: .*No space left on device" ||
  { echo "FAIL: the error does not say the disk is full"; exit 1; }
"$py" - "$work/mnt/data" "$work/events.jsonl" <<PY
import json, sys
sys.path.insert(0, "scripts")
from deltalake import DeltaTable
from sql_check import read_lines, valid
data, events = sys.argv[1:]
t = DeltaTable(data + "/events").to_pyarrow_table()
ids = t.column("event_id").to_pylist()
wanted = {json.loads(l)["event_id"] for l in read_lines([events]) if valid(l)}
assert len(ids) == len(set(ids)), "duplicate events in the committed table"
assert set(ids) <= wanted, "events in the table that are not in the input"
print(f"ok   after the failure the table reads back whole: {len(ids)} committed events, all distinct, all from the input")
PY
mount -o remount,size=200m "$work/mnt"
run
echo "ok   the next run, with room on the disk, completed"
"$py" scripts/lake_check.py "$work/mnt/data" "$work/events.jsonl" "$work/views.json" "$bin"
' _ "$work" "$bin" "$py"
