#!/usr/bin/env bash
# Usage: scripts/poison-check.sh
# Poisonous records among 100,000 good ones: the lake stays readable by the Python deltalake
# package, PyArrow and DuckDB (see scripts/poison_check.py). Installs them into target/venv.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
scripts/build.sh
exec "$py" scripts/poison_check.py target/debug/lambdaflow target/poison-check
