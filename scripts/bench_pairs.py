#!/usr/bin/env python3
"""Two lambdaflow binaries side by side: `lambdaflow bench` run alternately (A B, then B A, ...),
each pair's throughput ratio B/A printed, then the medians. The machine's noise moves single runs
by 10% or more; pairs run back to back see the same machine.

Usage: scripts/bench_pairs.py A B [PAIRS] [-- BENCH ARGS...]
  default PAIRS 9, default bench args: --workers 2 --events 3000000 --no-limits

To compare a commit with an earlier one, build each (`git worktree add /tmp/base COMMIT`, then
`cargo build --release` there with CARGO_TARGET_DIR pointing at this tree's target, so the
dependencies are shared) and copy each binary aside.
"""
import json
import statistics
import subprocess
import sys
import tempfile


def bench(binary, args):
    with tempfile.TemporaryDirectory() as lake:
        run = subprocess.run([binary, "bench", "--json", *args], cwd=lake,
                             capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"{binary} bench failed: {run.stderr.strip()[-300:]}")
    return json.loads(run.stdout)["events_per_sec"]


def main():
    argv = sys.argv[1:]
    args = ["--workers", "2", "--events", "3000000", "--no-limits"]
    if "--" in argv:
        at = argv.index("--")
        argv, args = argv[:at], argv[at + 1:]
    if len(argv) not in (2, 3):
        sys.exit(next(l for l in __doc__.splitlines() if l.startswith("Usage")))
    a, b = argv[:2]
    pairs = int(argv[2]) if len(argv) == 3 else 9
    ra, rb = [], []
    for i in range(pairs):
        if i % 2 == 0:
            x = bench(a, args)
            y = bench(b, args)
        else:
            y = bench(b, args)
            x = bench(a, args)
        ra.append(x)
        rb.append(y)
        print(f"pair {i + 1}: A {x:,.0f}  B {y:,.0f}  B/A {y / x:.3f}", flush=True)
    ratios = [y / x for x, y in zip(ra, rb)]
    print(f"median A {statistics.median(ra):,.0f}  B {statistics.median(rb):,.0f} events/s; "
          f"median pair ratio B/A {statistics.median(ratios):.3f} "
          f"({min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    main()
