#!/usr/bin/env bash
# Usage: scripts/readers-check.sh
# The lake read untouched by deltalake, pandas, PyArrow, DuckDB and PySpark (vectorized and
# parquet-mr readers), before and after compaction, with file skipping by delta-rs and Spark (see
# scripts/readers_check.py). Installs them into target/venv; Spark runs on the machine's Java
# (17 or later; Debian's openjdk-17-jre-headless is installed when none is found).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
"$py" -c "import pyspark, pandas" 2>/dev/null || "$venv/bin/pip" install --quiet pyspark pandas
if ! command -v java >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get install -y -qq openjdk-17-jre-headless >/dev/null
fi
scripts/build.sh
exec "$py" scripts/readers_check.py target/debug/lambdaflow target/readers-check
