"""Usage: sql_views_check.py CONFIG.toml EVENTS.jsonl VIEWS.json [VIEWS.json ...]

Runs the SQL of every `[[views]]` table of the config with DuckDB over the valid lines of the
JSON-lines file (table `events`: the default schema's columns, or, when the config has a
`[schema]`, its fields, found by their paths and validated here by the schema's rules, written
independently of lambdaflow) and compares the answer, row by
row, with each of lambdaflow's `--views-out` files. Money is compared as a decimal string with
two places, timestamps as RFC 3339 UTC, dates as YYYY-MM-DD, floats to 1e-9 relative. Views over
`dead_letters` are checked by their total against the invalid lines. Exits non-zero, listing the
differences, if anything differs.
"""
import datetime
import decimal
import json
import math
import os
import re
import sys
import tempfile
import tomllib

import duckdb
import pyarrow

sys.path.insert(0, os.path.dirname(__file__))
from sql_check import read_lines, valid  # noqa: E402


def to_json(v):
    """A DuckDB value as lambdaflow writes it."""
    if isinstance(v, decimal.Decimal):
        return str(v.quantize(decimal.Decimal("0.01")))
    if isinstance(v, datetime.datetime):
        frac = f".{v.microsecond:06d}" if v.microsecond else ""
        return v.strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"
    if isinstance(v, datetime.date):
        return v.isoformat()
    return v


def same(a, b):
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None or isinstance(a, str) or isinstance(b, str):
            return False
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


def expected(con, sql, key_names):
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    rows = {}
    for row in cur.fetchall():
        fields = dict(zip(names, (to_json(v) for v in row)))
        key = {k: fields[k] for k in key_names}
        value = {k: v for k, v in fields.items() if k not in key_names}
        rows[json.dumps(key, sort_keys=True)] = value
    return rows


RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
ARROW = {
    "string": pyarrow.string(),
    "int": pyarrow.int64(),
    "float": pyarrow.float64(),
    "money": pyarrow.decimal128(18, 2),
    "bool": pyarrow.bool_(),
    "timestamp": pyarrow.timestamp("us"),
}


def typed(ty, v):
    """The value of a field by the schema's type rules, or raises ValueError."""
    if ty == "string" and isinstance(v, str):
        return v
    if ty == "int" and isinstance(v, int) and not isinstance(v, bool) and -(2**63) <= v < 2**63:
        return v
    if ty == "float" and isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    if ty == "bool" and isinstance(v, bool):
        return v
    if ty == "money" and not isinstance(v, bool) and isinstance(v, (int, float, str)):
        d = decimal.Decimal(str(v))
        if d.as_tuple().exponent >= -2 and abs(d) < decimal.Decimal("1e16"):
            return d
    if ty == "timestamp" and isinstance(v, str) and RFC3339.match(v):
        t = datetime.datetime.fromisoformat(v.replace("z", "Z"))
        return t.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    raise ValueError(f"{v!r} is not a {ty}")


def row_of(schema, raw):
    """The typed columns of a record by the schema, or None for a dead letter."""
    try:
        e = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(e, dict):
        return None
    row = {}
    for f in schema["fields"]:
        v = e
        for key in f.get("path", f["name"]).split("."):
            v = v.get(key) if isinstance(v, dict) else None
        try:
            row[f["name"]] = None if v is None else typed(f["type"], v)
        except (ValueError, decimal.InvalidOperation):
            return None
    kind = row.get(schema.get("kind")) if schema.get("kind") else None
    for f in schema["fields"]:
        needed = f.get("required", False) or (kind is not None and kind in f.get("required_for", []))
        if needed and row[f["name"]] is None:
            return None
    return row


def events_table(con, config, lines):
    """Table `events` of the valid lines; returns how many there are."""
    schema = config.get("schema")
    if schema is None:
        good = [l for l in lines if valid(l)]
        fd, valid_path = tempfile.mkstemp(suffix=".jsonl")
        with os.fdopen(fd, "wb") as f:
            f.write(b"\n".join(good) + b"\n")
        con.execute(
            f"""CREATE TABLE events AS SELECT event_id, event_type, user_id,
                       event_timestamp::TIMESTAMP AS event_timestamp, product, price, country, source,
                       session_id, page
                FROM read_json('{valid_path}', format = 'newline_delimited',
                     columns = {{event_id: 'VARCHAR', event_type: 'VARCHAR', user_id: 'VARCHAR',
                                event_timestamp: 'TIMESTAMPTZ', product: 'VARCHAR',
                                price: 'DECIMAL(18,2)', country: 'VARCHAR', source: 'VARCHAR',
                                session_id: 'VARCHAR', page: 'VARCHAR'}})"""
        )
        os.unlink(valid_path)
        return len(good)
    rows = [r for r in (row_of(schema, l) for l in lines) if r is not None]
    arrow = pyarrow.schema([(f["name"], ARROW[f["type"]]) for f in schema["fields"]])
    table = pyarrow.Table.from_pylist(rows, schema=arrow)
    con.register("events_arrow", table)
    con.execute("CREATE TABLE events AS SELECT * FROM events_arrow")
    return len(rows)


def main(config_path, events_path, *views_paths):
    config = tomllib.load(open(config_path, "rb"))
    lines = read_lines(events_path.split(","))
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    good = events_table(con, config, lines)
    failures = checked = 0
    for path in views_paths:
        views = json.load(open(path))["views"]
        for view in config["views"]:
            name, rows = view["name"], views.get(view["name"])
            if rows is None:
                failures += 1
                print(f"DIFF {path} {name}: not in the output")
                continue
            checked += 1
            if "dead_letters" in view["sql"]:
                # The view counts dead letters per reason: its one value column is the count.
                total = sum(next(iter(r["value"].values())) for r in rows)
                ok = total == len(lines) - good
                failures += 0 if ok else 1
                print(f"{'ok  ' if ok else 'DIFF'} {path} {name}: {total} dead letters, {len(lines) - good} invalid lines")
                continue
            got = {json.dumps(r["key"], sort_keys=True): r["value"] for r in rows}
            key_names = list(rows[0]["key"]) if rows else []
            want = expected(con, view["sql"], key_names)
            if got.keys() == want.keys() and all(same(got[k], want[k]) for k in got):
                print(f"ok   {path} {name}: {len(got)} rows equal DuckDB's")
                continue
            failures += 1
            missing = sorted(set(want) - set(got))[:3]
            extra = sorted(set(got) - set(want))[:3]
            wrong = [(k, got[k], want[k]) for k in sorted(set(got) & set(want)) if not same(got[k], want[k])][:3]
            print(f"DIFF {path} {name}: missing {missing} extra {extra} different {wrong}")
    print(f"{checked - failures} passed, {failures} failed ({good} valid events, DuckDB {duckdb.__version__})")
    return 1 if failures or not checked else 0


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
