"""Usage: readers_check.py LAMBDAFLOW_BINARY WORKDIR

The lake read by every mainstream reader, untouched: lambdaflow writes a lake from 200,000
generated events (1% malformed) on 2 workers with many commits, and each reader must find exactly
the valid input events, and the same aggregate (events and revenue per event type, computed here
from the input lines), before and after `lambdaflow lake compact`:

- the Python `deltalake` package (through the Delta log), and its pandas export;
- PyArrow and DuckDB over the version's active files (from the log), with Hive partitioning;
- PySpark over the same files with `basePath` (partition columns from the directories), with the
  vectorized Parquet reader and with parquet-mr's (`spark.sql.parquet.enableVectorizedReader`
  false), which distrusts files whose `created_by` it cannot parse.

And file skipping: delta-rs picks, by the `add` actions' statistics, fewer files than the table
has for a tenth of the time range, with the rows a full scan finds; Spark's `inputFiles` for one
event type lists fewer files than the table has, and counts the same rows as a filter over all.
Exits non-zero, listing what differs.
"""
import json
import os
import shutil
import subprocess
import sys
from collections import defaultdict
from decimal import Decimal

import duckdb
import pandas
import pyarrow
import pyarrow.compute as pc
import pyarrow.dataset as ds
from deltalake import DeltaTable

sys.path.insert(0, os.path.dirname(__file__))
from sql_check import read_lines, valid  # noqa: E402

failures = 0


def check(ok, message):
    global failures
    print(("ok   " if ok else "DIFF ") + message, flush=True)
    failures += 0 if ok else 1


def expected(lines):
    """Events and revenue (sum of price) per event type, over the valid lines."""
    out = defaultdict(lambda: [0, Decimal("0")])
    for line in lines:
        if valid(line):
            e = json.loads(line)
            out[e["event_type"]][0] += 1
            if e.get("price") is not None:
                out[e["event_type"]][1] += Decimal(str(e["price"]))
    return {k: (n, str(r.quantize(Decimal("0.01")))) for k, (n, r) in out.items()}


def normalize(rows):
    """(event_type, count, revenue) rows as the dict `expected` gives."""
    return {
        t: (int(n), str(Decimal(str(r if r is not None else 0)).quantize(Decimal("0.01"))))
        for t, n, r in rows
    }


def spark_session():
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("lambdaflow-readers-check")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.adaptive.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def read_all(root, want, spark, stage):
    table = DeltaTable(root)
    files = [f.removeprefix("file://") for f in table.file_uris()]
    n_want = sum(n for n, _ in want.values())

    # deltalake, through the log.
    t = table.to_pyarrow_table()
    by = t.group_by("event_type").aggregate([("event_id", "count"), ("price", "sum")])
    got = normalize(zip(*[by.column(c).to_pylist() for c in ("event_type", "event_id_count", "price_sum")]))
    check(t.num_rows == n_want and got == want, f"[{stage}] deltalake: {t.num_rows} rows, per type {'equal' if got == want else got}")

    # pandas, from the Delta table.
    df = table.to_pandas(columns=["event_type", "price"])
    g = df.groupby("event_type").agg(n=("event_type", "size"), r=("price", lambda s: sum((Decimal(str(x)) for x in s.dropna()), Decimal(0))))
    got = normalize((k, row.n, row.r) for k, row in g.iterrows())
    check(len(df) == n_want and got == want, f"[{stage}] pandas: {len(df)} rows, per type {'equal' if got == want else got}")

    # PyArrow over the active files, partitions from the directories.
    dataset = ds.dataset(files, format="parquet", partitioning="hive", partition_base_dir=root)
    t = dataset.to_table(columns=["event_type", "price"])
    by = t.group_by("event_type").aggregate([("event_type", "count"), ("price", "sum")])
    got = normalize(zip(*[by.column(c).to_pylist() for c in ("event_type", "event_type_count", "price_sum")]))
    check(t.num_rows == n_want and got == want, f"[{stage}] PyArrow: {t.num_rows} rows, per type {'equal' if got == want else got}")

    # DuckDB over the active files.
    con = duckdb.connect()
    rows = con.execute(
        "SELECT event_type, count(*), sum(price) FROM read_parquet(?, hive_partitioning = true) GROUP BY ALL",
        [files],
    ).fetchall()
    got = normalize(rows)
    check(got == want, f"[{stage}] DuckDB: per type {'equal' if got == want else got}")

    # PySpark, both Parquet readers.
    for vectorized in ("true", "false"):
        name = "vectorized" if vectorized == "true" else "parquet-mr"
        spark.conf.set("spark.sql.parquet.enableVectorizedReader", vectorized)
        try:
            df = spark.read.option("basePath", root).parquet(*files)
            rows = df.groupBy("event_type").agg({"*": "count", "price": "sum"}).collect()
        except Exception as e:  # a reader that fails is a difference, with its reason
            causes = [l.strip() for l in str(e).splitlines() if "Exception:" in l]
            check(False, f"[{stage}] Spark ({name} reader) failed: {(causes or [str(e)])[-1][:300]}")
            continue
        got = normalize((r["event_type"], r["count(1)"], r["sum(price)"]) for r in rows)
        total = sum(n for n, _ in got.values())
        check(total == n_want and got == want, f"[{stage}] Spark ({name} reader): {total} rows, per type {'equal' if got == want else got}")
    return table, files


def skipping(root, table, files, spark, stage, by_time=True):
    # delta-rs: the add actions' statistics prune files for a time predicate (not after
    # compaction, when each partition's one file spans the whole time range).
    actions = pyarrow.table(table.get_add_actions(flatten=True))
    check(
        actions["min.event_timestamp"].null_count == 0 and actions["max.user_id"].null_count == 0,
        f"[{stage}] every add action has statistics",
    )
    lo = pc.min(actions["min.event_timestamp"]).as_py()
    hi = pc.max(actions["max.event_timestamp"]).as_py()
    cut = pyarrow.scalar(lo + (hi - lo) / 10, pyarrow.timestamp("us", tz="UTC"))
    dataset = table.to_pyarrow_dataset()
    predicate = pc.field("event_timestamp") < cut
    picked = list(dataset.get_fragments(filter=predicate))
    rows = dataset.to_table(filter=predicate).num_rows
    full = pc.sum(pc.less(dataset.to_table(columns=["event_timestamp"])["event_timestamp"], cut)).as_py()
    check(
        (len(picked) < len(files) or not by_time) and rows == full,
        f"[{stage}] delta-rs skips by statistics: {len(picked)} of {len(files)} files for a tenth of the time range, {rows} rows as a full scan finds {full}",
    )
    # Spark: a predicate on a partition column reads that partition's files only, as the scan's
    # own metric counts them once the query has run.
    spark.conf.set("spark.sql.parquet.enableVectorizedReader", "true")
    df = spark.read.option("basePath", root).parquet(*files)
    one = df.filter(df.event_type == "purchase").select("event_id")
    n = len(one.collect())
    scan = one._jdf.queryExecution().executedPlan().collectLeaves().head()
    read = scan.metrics().apply("numFiles").value()
    check(
        0 < read < len(files) and n == want_purchases(table),
        f"[{stage}] Spark reads {read} of {len(files)} files for event_type = 'purchase' ({n} rows)",
    )


def want_purchases(table):
    t = table.to_pyarrow_table(columns=["event_type"])
    return pc.sum(pc.equal(t["event_type"], "purchase")).as_py()


def main(binary, work):
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    events = os.path.join(work, "events.jsonl")
    data = os.path.join(work, "data")
    subprocess.run([binary, "generate", "--count", "200000", "--seed", "9", "--bad-fraction", "0.01", "-o", events], check=True)
    subprocess.run(
        [binary, "run", "-q", "--until-exhausted", "--no-serve", "--workers", "2", "--epoch-records", "5000",
         "--commit-epochs", "2", "--source", f"file:{events}", "--data-dir", data],
        check=True,
    )
    want = expected(read_lines([events]))
    root = os.path.join(data, "events")
    spark = spark_session()
    try:
        table, files = read_all(root, want, spark, "as written")
        skipping(root, table, files, spark, "as written")
        created_by = pyarrow.parquet.ParquetFile(files[0]).metadata.created_by
        check(created_by.startswith("lambdaflow version "), f"created_by: {created_by}")
        size = sum(os.path.getsize(f) for f in files)
        subprocess.run([binary, "lake", "compact", "--data-dir", data], check=True)
        table, after = read_all(root, want, spark, "compacted")
        compacted = sum(os.path.getsize(f) for f in after)
        check(
            len(after) < len(files) and compacted <= size * 1.02,
            f"compaction: {len(files)} files -> {len(after)}, {size} bytes -> {compacted}",
        )
        skipping(root, table, after, spark, "compacted", by_time=False)
    finally:
        spark.stop()
    print(f"{'FAILED' if failures else 'passed'}: {failures} difference(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    import pyarrow.parquet  # noqa: F401

    sys.exit(main(*sys.argv[1:]))
