#!/usr/bin/env bash
# Usage: scripts/browser-test.sh
# Loads the dashboard of a running pipeline in headless Chromium (Debian's `chromium`, installed
# here if missing), checks that the numbers it shows equal /api/views as of the same epoch, and
# saves a screenshot to target/browser-test/dashboard.png.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null; then
    echo "browser-test: installing Debian's chromium" >&2
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null
fi
source scripts/venv.sh
# The same build as the tests (one feature set, so dependencies compile once).
scripts/build.sh
lf=$PWD/target/debug/lambdaflow
work=$PWD/target/browser-test
rm -rf "$work"
mkdir -p "$work"
"$lf" generate --count 20000 --bad-fraction 0.01 -o "$work/events.jsonl"
# A file source without --until-exhausted keeps serving once the file is read.
"$lf" run --workers 2 --config scripts/browser-views.toml --source "file:$work/events.jsonl" --listen 127.0.0.1:0 \
    --data-dir "$work/data" >"$work/run.out" 2>"$work/run.err" &
run=$!
trap 'kill -INT $run 2>/dev/null; wait $run 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
    grep -q '^dashboard: ' "$work/run.out" 2>/dev/null && break
    sleep 0.1
done
url=$(sed -n 's/^dashboard: \(http:[^ ]*\).*/\1/p' "$work/run.out")
echo "browser-test: dashboard at $url"
"$py" scripts/browser_check.py "$url" "$work" 20000 -- chromium --headless --no-sandbox \
    --disable-gpu --disable-quic --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync "--user-data-dir=$work/profile" \
    --window-size=1400,1200 --virtual-time-budget=8000
