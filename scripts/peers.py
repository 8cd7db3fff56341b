"""Peer comparison: the same three aggregations over one JSON-lines file in lambdaflow, DuckDB,
Pathway and Bytewax; checks that every system's answers are equal, then prints a table of wall
time, events/s and the ratio to lambdaflow. Run by scripts/peers.sh, which makes the venv, the
release build and the input file.

The aggregations:
  1. count of events per (event_type, country)
  2. distinct user_id per UTC day of event_timestamp
  3. purchase revenue (sum of price, in cents) per product

Each system runs in its own process, `--repeat` times; the median wall time is reported. For
the Python systems the time starts after their imports (which take seconds) and ends when the
answers are in Python objects; lambdaflow's is the whole process, start to exit, which can only
count against it.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from decimal import Decimal

QUERIES = ("by_type_country", "users_per_day", "revenue_by_product")


def cents(price):
    """A JSON price (a float such as 19.99) in integer cents, as lambdaflow reads it."""
    return int((Decimal(repr(price)) * 100).to_integral_value())


def utc_day(timestamp):
    """The UTC date of an RFC 3339 timestamp: the generator writes some with an offset (+05:30)."""
    return datetime.fromisoformat(timestamp).astimezone(timezone.utc).date().isoformat()


def canonical(by_type_country, users_per_day, revenue_by_product):
    """The three answers in one comparable shape."""
    return {
        "by_type_country": {f"{t}|{c}": int(n) for (t, c), n in by_type_country.items()},
        "users_per_day": {str(d): int(n) for d, n in users_per_day.items()},
        "revenue_by_product": {str(p): int(r) for p, r in revenue_by_product.items()},
    }


# --- the systems, each run in a child process: `peers.py --system NAME FILE OUT` -------------


def quote(text):
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def run_duckdb(path, threads):
    import duckdb

    started = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        "CREATE TEMP VIEW e AS SELECT * FROM read_json(" + quote(path) + ", format = 'newline_delimited', columns = {"
        "event_type: 'VARCHAR', user_id: 'VARCHAR', event_timestamp: 'TIMESTAMPTZ', "
        "product: 'VARCHAR', price: 'DECIMAL(18,2)', country: 'VARCHAR'})"
    )
    a = con.execute("SELECT event_type, country, count(*) FROM e GROUP BY ALL").fetchall()
    b = con.execute(
        "SELECT strftime(event_timestamp, '%Y-%m-%d'), count(DISTINCT user_id) FROM e GROUP BY ALL"
    ).fetchall()
    c = con.execute(
        "SELECT product, sum(price) FROM e WHERE event_type = 'purchase' AND price IS NOT NULL "
        "AND product IS NOT NULL GROUP BY ALL"
    ).fetchall()
    seconds = time.perf_counter() - started
    answer = canonical(
        {(t, c_): n for t, c_, n in a},
        {d: n for d, n in b},
        {p: int(r * 100) for p, r in c},
    )
    return seconds, answer


def run_pathway(path, threads):
    os.environ.setdefault("PATHWAY_THREADS", str(threads))
    import pathway as pw

    class Event(pw.Schema):
        event_type: str
        user_id: str
        event_timestamp: str
        product: str | None = pw.column_definition(default_value=None)
        price: float | None = pw.column_definition(default_value=None)
        country: str | None = pw.column_definition(default_value=None)

    started = time.perf_counter()
    events = pw.io.jsonlines.read(path, schema=Event, mode="static")
    by_tc = events.groupby(pw.this.event_type, pw.this.country).reduce(
        pw.this.event_type, pw.this.country, n=pw.reducers.count()
    )
    days = events.select(
        day=pw.apply_with_type(utc_day, str, pw.this.event_timestamp), user=pw.this.user_id
    )
    per_day = (
        days.groupby(pw.this.day, pw.this.user)
        .reduce(pw.this.day)
        .groupby(pw.this.day)
        .reduce(pw.this.day, n=pw.reducers.count())
    )
    purchases = events.filter(
        (pw.this.event_type == "purchase") & pw.this.price.is_not_none() & pw.this.product.is_not_none()
    ).select(
        product=pw.unwrap(pw.this.product),
        cents=pw.apply_with_type(cents, int, pw.unwrap(pw.this.price)),
    )
    revenue = purchases.groupby(pw.this.product).reduce(
        pw.this.product, r=pw.reducers.sum(pw.this.cents)
    )
    # One run computes all three; each output's rows are kept as they settle.
    outputs = []
    for table, columns in [
        (by_tc, ("event_type", "country", "n")),
        (per_day, ("day", "n")),
        (revenue, ("product", "r")),
    ]:
        rows = {}
        outputs.append(rows)

        def on_change(key, row, time, is_addition, rows=rows, columns=columns):
            if is_addition:
                rows[key] = tuple(row[c] for c in columns)
            elif rows.get(key) == tuple(row[c] for c in columns):
                del rows[key]

        pw.io.subscribe(table, on_change=on_change)
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    seconds = time.perf_counter() - started
    a, b, c = (list(rows.values()) for rows in outputs)
    answer = canonical(
        {(t, c_): n for t, c_, n in a},
        {d: n for d, n in b},
        {p: r for p, r in c},
    )
    return seconds, answer


def run_bytewax(path, threads):
    import bytewax.operators as op
    from bytewax.connectors.files import FileSource
    from bytewax.dataflow import Dataflow
    from bytewax.testing import TestingSink, run_main

    started = time.perf_counter()
    flow = Dataflow("peers")
    lines = op.input("read", flow, FileSource(path, batch_size=10_000))
    events = op.map("parse", lines, json.loads)

    out_tc, out_days, out_rev = [], [], []
    tc = op.count_final("by_type_country", events, lambda e: f"{e['event_type']}|{e.get('country')}")
    op.output("out_tc", tc, TestingSink(out_tc))

    keyed_days = op.key_on("day", events, lambda e: utc_day(e["event_timestamp"]))
    users = op.map_value("user", keyed_days, lambda e: e["user_id"])
    distinct = op.fold_final("users", users, set, lambda s, u: s.add(u) or s)
    op.output("out_days", op.map_value("count", distinct, len), TestingSink(out_days))

    purchases = op.filter(
        "purchases",
        events,
        lambda e: e["event_type"] == "purchase"
        and e.get("price") is not None
        and e.get("product") is not None,
    )
    keyed = op.key_on("product", purchases, lambda e: e["product"])
    amounts = op.map_value("cents", keyed, lambda e: cents(e["price"]))
    revenue = op.reduce_final("revenue", amounts, lambda a, b: a + b)
    op.output("out_rev", revenue, TestingSink(out_rev))

    # Python operators hold the GIL: more workers in one process would not run in parallel.
    run_main(flow)
    seconds = time.perf_counter() - started

    def type_country(k):
        t, c = k.split("|", 1)
        return (t, None if c == "None" else c)

    answer = canonical(
        {type_country(k): n for k, n in out_tc},
        dict(out_days),
        dict(out_rev),
    )
    return seconds, answer


def run_lambdaflow(path, threads, binary, lake):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "views.json")
        cmd = [
            binary, "run", "--source", f"file:{path}", "--until-exhausted", "--workers", str(threads),
            "--views", "events_by_country,daily_active_users,revenue_by_product",
            "--views-out", out, "--quiet", "--no-serve",
        ]
        cmd += ["--data-dir", os.path.join(tmp, "lake")] if lake else ["--no-lake"]
        started = time.perf_counter()
        subprocess.run(cmd, check=True)
        seconds = time.perf_counter() - started
        views = json.load(open(out))["views"]
    return seconds, canonical(
        {(r["key"]["event_type"], r["key"]["country"]): r["value"]["count"] for r in views["events_by_country"]},
        {r["key"]["date"]: r["value"]["users"] for r in views["daily_active_users"]},
        {r["key"]["product"]: int(Decimal(r["value"]["revenue"]) * 100) for r in views["revenue_by_product"]},
    )


# --- the driver ----------------------------------------------------------------------------


def child(system, path, threads, out, binary):
    if system == "duckdb":
        result = run_duckdb(path, threads)
    elif system == "pathway":
        result = run_pathway(path, threads)
    elif system == "bytewax":
        result = run_bytewax(path, threads)
    elif system == "lambdaflow":
        result = run_lambdaflow(path, threads, binary, lake=False)
    elif system == "lambdaflow+lake":
        result = run_lambdaflow(path, threads, binary, lake=True)
    else:
        sys.exit(f"unknown system {system}")
    json.dump({"seconds": result[0], "answer": result[1]}, open(out, "w"))


def measure(system, path, threads, binary, repeat):
    times, answer = [], None
    for _ in range(repeat):
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            cmd = [sys.executable, __file__, "--system", system, "--threads", str(threads),
                   "--lambdaflow", binary, path, out.name]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"{system} failed:\n{done.stdout}{done.stderr}")
            result = json.load(open(out.name))
        times.append(result["seconds"])
        answer = result["answer"]
        print(f"  {system}: {result['seconds']:.2f} s", file=sys.stderr)
    return times, answer


def describe_differences(name, got, expected):
    lines = []
    for q in QUERIES:
        if got[q] != expected[q]:
            keys = sorted(set(got[q]) | set(expected[q]))
            diff = [(k, got[q].get(k), expected[q].get(k)) for k in keys if got[q].get(k) != expected[q].get(k)]
            lines.append(f"{name} {q}: {len(diff)} rows differ, such as {diff[:3]}")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("out", nargs="?")
    parser.add_argument("--system")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lambdaflow", default="target/release/lambdaflow")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--systems", default="lambdaflow,lambdaflow+lake,duckdb,pathway,bytewax")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    if args.system:
        return child(args.system, args.file, args.threads, args.out, args.lambdaflow)

    events = sum(1 for _ in open(args.file, "rb"))
    size = os.path.getsize(args.file)
    print(f"{events:,} events, {size / 1e6:.0f} MB of JSON lines, {args.threads} threads, "
          f"median of {args.repeat} runs", file=sys.stderr)
    results = {}
    for system in args.systems.split(","):
        results[system] = measure(system, args.file, args.threads, args.lambdaflow, args.repeat)

    reference = results["lambdaflow"][1]
    problems = []
    for system, (_, answer) in results.items():
        problems += describe_differences(system, answer, reference)
    base = statistics.median(results["lambdaflow"][0])
    import importlib.metadata as md

    ours = subprocess.run([args.lambdaflow, "--version"], capture_output=True, text=True).stdout.split()[-1]

    def version(system):
        return ours if system.startswith("lambdaflow") else md.version(system)

    rows = []
    print(f"\n{'system':<18}{'version':<10}{'wall s (median)':>16}{'events/s':>14}{'lambdaflow is':>16}")
    for system, (times, _) in results.items():
        t = statistics.median(times)
        rows.append({"system": system, "version": version(system), "seconds": times,
                     "median_seconds": t, "events_per_sec": events / t, "lambdaflow_speedup": t / base})
        print(f"{system:<18}{version(system):<10}{t:>16.2f}{events / t:>14,.0f}{t / base:>15.1f}x")
    print(f"\nanswers: {len(reference['by_type_country'])} (event_type, country) counts, "
          f"{len(reference['users_per_day'])} days, {len(reference['revenue_by_product'])} products")
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}"
    print(f"machine: {machine}")
    if args.json:
        json.dump({"events": events, "bytes": size, "threads": args.threads, "repeat": args.repeat,
                   "machine": machine, "results": rows, "differences": problems},
                  open(args.json, "w"), indent=2)
    if problems:
        print("\nANSWERS DIFFER:\n" + "\n".join(problems))
        sys.exit(1)
    print("every system's answers are equal")


if __name__ == "__main__":
    main()
