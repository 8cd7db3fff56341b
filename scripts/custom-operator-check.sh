#!/usr/bin/env bash
# The Rust view of examples/custom_operator.rs end to end: killed and restarted, served over HTTP,
# written by --views-out, equal to a plain Python computation, and verified from the lake
# (scripts/custom_operator_check.py).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
scripts/build.sh
"$py" scripts/custom_operator_check.py target/debug/examples/custom_operator target/custom-operator-check
