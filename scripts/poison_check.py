"""Usage: poison_check.py LAMBDAFLOW_BINARY WORKDIR

Records that once made the lake unreadable for good (an empty or 10,000-byte event_type, event
times in year 0 or 10000 once in UTC, an amount beyond decimal(18, 2)) are mixed into 100,000
good ones and run through `lambdaflow run` on two workers. The lake must then be readable by
the Python `deltalake` package, PyArrow (down to Python objects, where year 0 used to fail) and
DuckDB, hold exactly the good events, and hold each poison as a dead letter with its reason.
"""
import json
import os
import shutil
import subprocess
import sys

import duckdb
import pyarrow.dataset as ds
from deltalake import DeltaTable


def poisons():
    base = {"event_type": "purchase", "user_id": "u1", "event_timestamp": "2025-01-01T00:00:00Z",
            "product": "pen", "price": 1.5, "country": "UK"}
    cases = [
        ("event_type", "", "bad_partition_value"),
        ("event_type", "x" * 10_000, "bad_partition_value"),
        ("event_timestamp", "9999-12-31T23:00:00-05:00", "out_of_range"),
        ("event_timestamp", "0000-06-01T00:00:00Z", "out_of_range"),
        ("event_timestamp", "0001-01-01T00:00:00+14:00", "out_of_range"),
        ("price", 12345678901234567.89, "out_of_range"),
    ]
    out = []
    for i, (field, value, reason) in enumerate(cases):
        record = dict(base, event_id=f"poison-{i}")
        record[field] = value
        text = json.dumps(record)
        if field == "price":
            text = text.replace(json.dumps(value), "12345678901234567.89")
        out.append((text, reason))
    return out


def main():
    binary, work = sys.argv[1:3]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    good = os.path.join(work, "good.jsonl")
    subprocess.run([binary, "generate", "--count", "100000", "-o", good], check=True)
    lines = open(good).read().splitlines()
    for i, (text, _) in enumerate(poisons()):
        lines.insert(7_919 * (i + 1), text)
    mixed = os.path.join(work, "mixed.jsonl")
    with open(mixed, "w") as f:
        f.write("\n".join(lines) + "\n")
    data = os.path.join(work, "data")
    subprocess.run([binary, "run", "-q", "--no-serve", "--until-exhausted", "--workers", "2",
                    "--source", f"file:{mixed}", "--data-dir", data], check=True)

    failures = []
    events = DeltaTable(os.path.join(data, "events"))
    table = events.to_pyarrow_table()
    if table.num_rows != 100_000:
        failures.append(f"deltalake reads {table.num_rows} events, not 100000")
    ids = set(table.column("event_id").to_pylist())
    if any(i.startswith("poison-") for i in ids):
        failures.append("a poison record is in the events table")
    dataset = ds.dataset(events.file_uris(), format="parquet", partitioning="hive")
    arrow = dataset.to_table()
    # Python objects: a timestamp of year 0 used to fail here.
    times = arrow.column("event_timestamp").to_pylist()
    dates = arrow.column("event_date").to_pylist() if "event_date" in arrow.column_names else []
    if len(times) != 100_000:
        failures.append(f"PyArrow reads {len(times)} events")
    ((count,),) = duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{data}/events/event_date=*/**/*.parquet', hive_partitioning=true)"
    ).fetchall()
    if count != 100_000:
        failures.append(f"DuckDB reads {count} events")
    dead = DeltaTable(os.path.join(data, "dead_letters")).to_pyarrow_table().to_pylist()
    got = sorted(d["reason"] for d in dead)
    want = sorted(r for _, r in poisons())
    if got != want:
        failures.append(f"dead letters {got}, expected {want}")
    longest = max(len(d["message"]) for d in dead)
    if longest > 400:
        failures.append(f"a dead letter's message is {longest} characters long")
    print(f"poison check: deltalake {table.num_rows} events, PyArrow {len(times)} "
          f"({len(dates)} dates), DuckDB {count}; dead letters {got}")
    for f in failures:
        print(f"poison check: FAILED: {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
