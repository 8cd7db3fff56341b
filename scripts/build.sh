#!/usr/bin/env bash
# Usage: scripts/build.sh
# The debug build every check script runs first: the library, binaries, tests and examples (the
# ones nextest runs too, so it builds nothing more). Not the benches: `cargo bench` builds them.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --workspace --lib --bins --tests --examples
