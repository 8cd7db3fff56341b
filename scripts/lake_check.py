"""Usage: lake_check.py DATA_DIR EVENTS.jsonl[,EVENTS2.jsonl...] VIEWS.json LAMBDAFLOW_BINARY

Reads the lake lambdaflow wrote from outside, with the `deltalake` Python package (through the
Delta log, as Spark would) and DuckDB (the Parquet files `lambdaflow lake files` lists, as a plain
Parquet reader would),
and checks that it holds exactly the valid input events, each once, that the dead-letter table
holds exactly the invalid lines, and that every view recomputed by SQL over the lake equals
lambdaflow's views. Exits non-zero, listing the differences, if anything differs.
"""
import json
import os
import subprocess
import sys

import duckdb
import pyarrow
from deltalake import DeltaTable

sys.path.insert(0, os.path.dirname(__file__))
from sql_check import compare, expected_views, read_lines, valid  # noqa: E402


def main(data_dir, events_paths, views_path, binary):
    lines = read_lines(events_paths.split(","))
    good = [l for l in lines if valid(l)]
    want_ids = sorted(json.loads(l)["event_id"] for l in good)
    events = DeltaTable(os.path.join(data_dir, "events"))
    dead = DeltaTable(os.path.join(data_dir, "dead_letters"))
    lake = events.to_pyarrow_table()
    dead_rows = dead.to_pyarrow_table()
    failures = 0

    def check(ok, message):
        nonlocal failures
        print(("ok   " if ok else "DIFF ") + message)
        failures += 0 if ok else 1

    ids = lake.column("event_id").to_pylist()
    check(len(ids) == len(set(ids)), f"event_id unique: {len(set(ids))} distinct of {len(ids)} rows")
    check(sorted(ids) == want_ids, f"the lake holds exactly the {len(want_ids)} valid input events (it has {len(ids)})")
    check(
        dead_rows.num_rows == len(lines) - len(good),
        f"dead-letter table: {dead_rows.num_rows} rows, invalid input lines {len(lines) - len(good)}",
    )
    offsets = list(zip(dead_rows.column("_source").to_pylist(), dead_rows.column("_offset").to_pylist()))
    check(len(offsets) == len(set(offsets)), "dead letters unique by source position")

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("lake", lake)
    con.execute(
        "CREATE TABLE e AS SELECT event_id, event_type, user_id, event_timestamp::TIMESTAMP AS ts,"
        " product, price, country, source FROM lake"
    )
    views = json.load(open(views_path))["views"]
    failures += compare(expected_views(con), views, "SQL over the lake (deltalake reader)")
    reasons = {r["key"]["reason"]: r["value"]["count"] for r in views["dead_letters_by_reason"]}
    by_reason = dict(con.execute("SELECT reason, count(*) FROM dead_rows GROUP BY ALL").fetchall())
    check(by_reason == reasons, f"dead letters by reason equal the view: {by_reason}")

    # Not a glob: compaction while running leaves the files it replaced until `lake vacuum`.
    listed = subprocess.run([binary, "lake", "files", "--data-dir", data_dir], check=True,
                            capture_output=True, text=True).stdout.split("\n")
    listed = [f for f in listed if f]
    check(len(listed) == len(events.file_uris()), f"`lake files` lists the {len(listed)} active files")
    n, distinct = con.execute(
        "SELECT count(*), count(DISTINCT event_id) FROM read_parquet($files, hive_partitioning = true)",
        {"files": listed},
    ).fetchone()
    check(n == len(ids) == distinct, f"DuckDB over the files `lake files` lists: {n} rows, {distinct} distinct ids")
    check_versions(data_dir, lake, check)
    print(
        f"{'FAILED' if failures else 'passed'}: {failures} difference(s); lake version {events.version()},"
        f" {len(events.file_uris())} files (deltalake {getattr(sys.modules['deltalake'], '__version__', '?')},"
        f" pyarrow {pyarrow.__version__}, DuckDB {duckdb.__version__})"
    )
    return 1 if failures else 0


def commits(log_dir):
    """lambdaflow's commit entries in the log, by version: {version: {"first_epoch", "epoch", ...}}."""
    out = {}
    for name in sorted(os.listdir(log_dir)):
        if not (name.endswith(".json") and len(name) == 25):
            continue
        with open(os.path.join(log_dir, name)) as f:
            for line in f:
                info = json.loads(line).get("commitInfo")
                if info and "lambdaflow" in info:
                    out[int(name[:20])] = info["lambdaflow"]
    return out


def check_versions(data_dir, lake, check, most=60):
    """The commit invariant: every commit holds the contiguous epoch range after the one before
    it, and the table as of every version (the newest `most` of them, read by deltalake's time
    travel) holds exactly the rows whose `_epoch` is at most that version's last epoch."""
    path = os.path.join(data_dir, "events")
    metas = commits(os.path.join(path, "_delta_log"))
    versions = sorted(metas)
    ranges = [(metas[v]["first_epoch"], metas[v]["epoch"]) for v in versions]
    gaps = [(a, b) for a, b in zip(ranges, ranges[1:]) if b[0] != a[1] + 1 or b[1] < b[0]]
    check(not gaps, f"{len(ranges)} commits hold contiguous epoch ranges, none overlapping {gaps[:3]}")
    epochs = lake.column("_epoch").to_pylist()
    wrong = []
    for v in versions[-most:]:
        last = metas[v]["epoch"]
        at_v = DeltaTable(path, version=v).to_pyarrow_table(columns=["_epoch"]).column("_epoch").to_pylist()
        want = sum(1 for e in epochs if e <= last)
        if len(at_v) != want or (at_v and max(at_v) > last):
            wrong.append((v, last, len(at_v), want))
    check(
        not wrong,
        f"as of each of {min(most, len(versions))} versions, the table holds exactly the events of epochs up to its last: {wrong[:3]}",
    )


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
