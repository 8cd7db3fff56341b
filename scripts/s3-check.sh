#!/usr/bin/env bash
# Usage: scripts/s3-check.sh [SEED]
# A lake on S3: moto's S3-compatible server (PyPI's moto[server], installed into target/venv)
# holds the bucket; a run, a run killed and resumed, batch, verify, compaction, vacuum, a
# 2-process cluster and two hosts made of network namespaces (as root; scripts/two_hosts.py)
# write and read it, and the Python deltalake package reads it back from the same server (see
# scripts/s3_check.py).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
"$py" -c "import moto.server" 2>/dev/null || "$venv/bin/pip" install --quiet 'moto[server]'
scripts/build.sh
exec "$py" scripts/s3_check.py target/debug/lambdaflow target/s3-check "$@"
