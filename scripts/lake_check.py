"""Usage: lake_check.py DATA_DIR EVENTS.jsonl[,EVENTS2.jsonl...] VIEWS.json LAMBDAFLOW_BINARY

Reads the lake lambdaflow wrote from outside, with the `deltalake` Python package (through the
Delta log, as Spark would) and DuckDB (the Parquet files `lambdaflow lake files` lists, as a plain
Parquet reader would; PyArrow's S3 file system reads them for DuckDB when the lake is on S3),
and checks that it holds exactly the valid input events, each once, that the dead-letter table
holds exactly the invalid lines, and that every view recomputed by SQL over the lake equals
lambdaflow's views. Exits non-zero, listing the differences, if anything differs.
"""
import json
import os
import subprocess
import sys
from urllib.parse import urlparse

import duckdb
import pyarrow
import pyarrow.dataset as ds
import pyarrow.fs
from deltalake import DeltaTable

sys.path.insert(0, os.path.dirname(__file__))
from sql_check import compare, expected_views, read_lines, valid  # noqa: E402


def filesystem(storage_options):
    """PyArrow's file system for the lake: the local one, or S3 at the endpoint of the options
    lambdaflow and deltalake are given (`AWS_ENDPOINT_URL`, keys, region)."""
    if not storage_options:
        return pyarrow.fs.LocalFileSystem()
    endpoint = urlparse(storage_options["AWS_ENDPOINT_URL"])
    return pyarrow.fs.S3FileSystem(
        access_key=storage_options["AWS_ACCESS_KEY_ID"],
        secret_key=storage_options["AWS_SECRET_ACCESS_KEY"],
        region=storage_options.get("AWS_REGION", "us-east-1"),
        endpoint_override=endpoint.netloc,
        scheme=endpoint.scheme,
    )


def fs_path(location):
    """A lake location as PyArrow's file systems name it: S3's without the scheme."""
    return location[len("s3://"):] if location.startswith("s3://") else location


def main(data_dir, events_paths, views_path, binary, storage_options=None, versions=True):
    """`versions`: also read every version back (not after a vacuum, which deletes what only
    older versions hold)."""
    lines = read_lines(events_paths.split(","))
    good = [l for l in lines if valid(l)]
    want_ids = sorted(json.loads(l)["event_id"] for l in good)
    fs = filesystem(storage_options)
    events = DeltaTable(os.path.join(data_dir, "events"), storage_options=storage_options)
    dead = DeltaTable(os.path.join(data_dir, "dead_letters"), storage_options=storage_options)
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
    files = subprocess.run([binary, "lake", "files", "--data-dir", data_dir], capture_output=True, text=True)
    if files.returncode != 0:
        sys.exit(f"lambdaflow lake files --data-dir {data_dir}: {files.stderr.strip()}")
    listed = files.stdout.split("\n")
    listed = [f for f in listed if f]
    check(len(listed) == len(events.file_uris()), f"`lake files` lists the {len(listed)} active files")
    if storage_options:
        con.register("listed", ds.dataset([fs_path(f) for f in listed], filesystem=fs).to_table())
        files = "listed"
    else:
        files = "read_parquet($files, hive_partitioning = true)"
    n, distinct = con.execute(
        f"SELECT count(*), count(DISTINCT event_id) FROM {files}",
        {"files": listed} if not storage_options else {},
    ).fetchone()
    check(n == len(ids) == distinct, f"DuckDB over the files `lake files` lists: {n} rows, {distinct} distinct ids")
    if versions:
        check_versions(data_dir, lake, check, fs, storage_options)
    print(
        f"{'FAILED' if failures else 'passed'}: {failures} difference(s); lake version {events.version()},"
        f" {len(events.file_uris())} files (deltalake {getattr(sys.modules['deltalake'], '__version__', '?')},"
        f" pyarrow {pyarrow.__version__}, DuckDB {duckdb.__version__})"
    )
    return 1 if failures else 0


def commits(log_dir, fs):
    """lambdaflow's commit entries in the log, by version: {version: {"first_epoch", "epoch", ...}}."""
    out = {}
    for entry in fs.get_file_info(pyarrow.fs.FileSelector(fs_path(log_dir))):
        name = entry.base_name
        if not (name.endswith(".json") and len(name) == 25):
            continue
        with fs.open_input_stream(entry.path) as f:
            for line in f.read().decode().splitlines():
                info = json.loads(line).get("commitInfo")
                if info and "lambdaflow" in info:
                    out[int(name[:20])] = info["lambdaflow"]
    return out


def check_versions(data_dir, lake, check, fs, storage_options, most=60):
    """The commit invariant: every commit holds the contiguous epoch range after the one before
    it, and the table as of every version (the newest `most` of them, read by deltalake's time
    travel) holds exactly the rows whose `_epoch` is at most that version's last epoch."""
    path = os.path.join(data_dir, "events")
    metas = commits(os.path.join(path, "_delta_log"), fs)
    versions = sorted(metas)
    ranges = [(metas[v]["first_epoch"], metas[v]["epoch"]) for v in versions]
    gaps = [(a, b) for a, b in zip(ranges, ranges[1:]) if b[0] != a[1] + 1 or b[1] < b[0]]
    check(not gaps, f"{len(ranges)} commits hold contiguous epoch ranges, none overlapping {gaps[:3]}")
    epochs = lake.column("_epoch").to_pylist()
    wrong = []
    for v in versions[-most:]:
        last = metas[v]["epoch"]
        at_v = DeltaTable(path, version=v, storage_options=storage_options).to_pyarrow_table(columns=["_epoch"]).column("_epoch").to_pylist()
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
