"""Medians of the reports scripts/bench-report.sh wrote, next to the targets of issue 6."""

import glob
import json
import os
import statistics
import sys

out = sys.argv[1]


def reports(name):
    return [json.load(open(p)) for p in sorted(glob.glob(os.path.join(out, f"{name}-*.json")))]


def median(rs, *path):
    values = []
    for r in rs:
        for p in path:
            r = r[p]
        values.append(r)
    return statistics.median(values)


closed2, closed1, core1, pair0, pair1, open_, big = (
    reports(n)
    for n in ("closed-2", "closed-1", "closed-1core", "closed-pair0", "closed-pair1", "open-200k", "closed-10m")
)
# Two one-worker processes run at once, one per CPU: their events/s added, round by round.
pairs = [a["events_per_sec"] + b["events_per_sec"] for a, b in zip(pair0, pair1)]
m = closed2[0]["machine"]
print(f"machine: {m['cpu']}, {m['cpus']} CPUs, {m['memory_bytes'] / 2**30:.1f} GiB, {m['os']}, lambdaflow {m['lambdaflow']}")
print(
    f"runs: {len(closed2)} closed loop on 2 workers, {len(closed1)} on 1, {len(core1)} on 1 confined to one CPU, "
    f"{len(pairs)} of two such processes at once, {len(open_)} open loop, {len(big)} of 10M events; medians\n"
)

eps2 = median(closed2, "events_per_sec")
eps1 = median(closed1, "events_per_sec")
eps1core = median(core1, "events_per_sec") if core1 else float("nan")
eps_pair = statistics.median(pairs) if pairs else float("nan")
busy1 = median(closed1, "cores_busy")
decode = median(closed2, "decode_limit", "events_per_sec")
fraction = median(closed2, "decode_limit", "pipeline_fraction")
parquet = median(closed2, "parquet_limit", "events_per_sec")
p99_open = median(open_, "epoch_latency", "p99_ms")
rss = big[0]["peak_rss_bytes"] / 1e6 if big else float("nan")
ratio = big[0]["compression_ratio"] if big else float("nan")

rows = [
    ("closed loop, 2 workers, 5M events", f"{eps2:,.0f} events/s", ">= 1,000,000 events/s", eps2 >= 1e6),
    ("  all runs", ", ".join(f"{r['events_per_sec']:,.0f}" for r in closed2), "", None),
    ("  epoch latency p99", f"{median(closed2, 'epoch_latency', 'p99_ms'):.1f} ms", "", None),
    ("decode only, 2 threads", f"{decode:,.0f} events/s", "", None),
    ("  pipeline / decode only", f"{fraction:.1%}", ">= 50%", fraction >= 0.5),
    ("  all runs", ", ".join(f"{r['decode_limit']['pipeline_fraction']:.1%}" for r in closed2), "", None),
    ("  decode only before / after", ", ".join(f"{r['decode_limit']['before_per_sec'] / 1e6:.2f}/{r['decode_limit']['after_per_sec'] / 1e6:.2f}M" for r in closed2), "", None),
    ("parquet encode only, 2 threads", f"{parquet:,.0f} events/s", "", None),
    ("  cores busy", f"{median(closed2, 'cores_busy'):.2f}", "", None),
    ("closed loop, 1 worker, 5M events", f"{eps1:,.0f} events/s", "", None),
    ("  all runs", ", ".join(f"{r['events_per_sec']:,.0f}" for r in closed1), "", None),
    ("  cores busy", f"{busy1:.2f}", "", None),
    ("  2 workers / 1 worker", f"{eps2 / eps1:.2f}x", ">= 1.8x", eps2 / eps1 >= 1.8),
    ("  ceiling on 2 CPUs: 2 / cores busy", f"{2 / busy1:.2f}x", "", None),
    ("  each round's ratio", ", ".join(f"{a['events_per_sec'] / b['events_per_sec']:.2f}x" for a, b in zip(closed2, closed1)), "", None),
    ("closed loop, 1 worker on CPU 0 only", f"{eps1core:,.0f} events/s", "", None),
    ("  all runs", ", ".join(f"{r['events_per_sec']:,.0f}" for r in core1), "", None),
    ("  2 workers / 1 worker on 1 CPU", f"{eps2 / eps1core:.2f}x", "(per core; not the target)", None),
    ("  each round's ratio", ", ".join(f"{a['events_per_sec'] / b['events_per_sec']:.2f}x" for a, b in zip(closed2, core1)), "", None),
    ("two 1-worker processes, one per CPU", f"{eps_pair:,.0f} events/s", "(both added)", None),
    ("  all runs", ", ".join(f"{p:,.0f}" for p in pairs), "", None),
    ("  the two / 1 worker on 1 CPU", f"{eps_pair / eps1core:.2f}x", "(the machine's scaling)", None),
    ("  each round's ratio", ", ".join(f"{p / b['events_per_sec']:.2f}x" for p, b in zip(pairs, core1)), "", None),
    ("  2 workers / the two processes", f"{eps2 / eps_pair:.2f}x", "(the engine's cost)", None),
    ("  each round's ratio", ", ".join(f"{a['events_per_sec'] / p:.2f}x" for a, p in zip(closed2, pairs)), "", None),
    ("open loop 200,000/s, 10 ms epochs", f"p99 {p99_open:.1f} ms", "p99 <= 10 ms", p99_open <= 10),
    ("  all runs", ", ".join(f"{r['epoch_latency']['p99_ms']:.1f}" for r in open_), "", None),
    ("  p50 / p99.9 / max", f"{median(open_, 'epoch_latency', 'p50_ms'):.1f} / {median(open_, 'epoch_latency', 'p999_ms'):.1f} / {median(open_, 'epoch_latency', 'max_ms'):.1f} ms", "", None),
    ("  kept to the schedule", ", ".join("yes" if r["open_loop"]["max_backlog_events"] == 0 else f"no ({r['open_loop']['max_backlog_events']:,} behind)" for r in open_), "", None),
    ("10M events: peak RSS", f"{rss:,.0f} MB", "<= 500 MB", rss <= 500),
    ("10M events: lake vs JSON", f"{ratio:.1f}x smaller", ">= 5x", ratio >= 5),
]
for what, value, target, met in rows:
    mark = "" if met is None else ("met" if met else "NOT MET")
    print(f"{what:<36}{value:<34}{target:<24}{mark}")
