"""Usage: sql_check.py EVENTS.jsonl VIEWS.json

Recomputes every built-in view with DuckDB SQL over the valid lines of the JSON-lines file and
compares it with lambdaflow's `--views-out` file; the number of invalid lines must equal the dead
letters. Exits non-zero, listing the differences, if anything differs.
"""
import datetime
import json
import os
import re
import sys
import tempfile
from decimal import ROUND_HALF_UP, Decimal

import duckdb

STRINGS = ("event_id", "event_type", "user_id", "product", "country", "source", "session_id", "page")
REQUIRED = ("event_id", "event_type", "user_id", "event_timestamp", "country")
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def valid(raw):
    """The schema's rules, written independently of lambdaflow."""
    try:
        e = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return False
    if not isinstance(e, dict):
        return False
    for k in STRINGS:
        if e.get(k) is not None and not isinstance(e[k], str):
            return False
    ts = e.get("event_timestamp")
    if ts is not None:
        if not isinstance(ts, str) or not RFC3339.match(ts):
            return False
        try:
            datetime.datetime.fromisoformat(ts.replace("z", "Z"))
        except ValueError:
            return False
    price = e.get("price")
    if price is not None and (isinstance(price, bool) or Decimal(str(price)).as_tuple().exponent < -2):
        return False
    return all(e.get(k) is not None for k in REQUIRED)


def money(d):
    return str(Decimal(d).quantize(Decimal("0.01")))


def read_lines(paths):
    """The non-blank lines of JSON-lines files, as lambdaflow reads them."""
    lines = []
    for path in paths:
        lines += [l.rstrip(b"\r") for l in open(path, "rb").read().split(b"\n") if l.strip()]
    return lines


def expected_views(con):
    """Every built-in view, by SQL over table `e` (event_id, event_type, user_id, ts, product,
    price, country, source), as {view: {json key: value}}; keys and values are objects of the
    view's columns by name, as lambdaflow writes them."""
    q = lambda sql: con.execute(sql).fetchall()
    k = lambda **columns: json.dumps(columns, sort_keys=True)
    return {
        "events_by_type": {
            k(event_type=t): {"count": n} for t, n in q("SELECT event_type, count(*) FROM e GROUP BY ALL")
        },
        "events_per_minute": {
            k(event_type=t, minute=m): {"count": n}
            for m, t, n in q("SELECT strftime(ts, '%Y-%m-%dT%H:%M:00Z'), event_type, count(*) FROM e GROUP BY ALL")
        },
        "revenue_by_country": {
            k(country=c): {"orders": n, "revenue": money(r)}
            for c, r, n in q(
                "SELECT country, sum(price), count(*) FROM e"
                " WHERE event_type = 'purchase' AND price IS NOT NULL GROUP BY ALL"
            )
        },
        "avg_price_by_type": {
            k(event_type=t): {
                "avg_price": money((Decimal(s) / n).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)),
                "count": n,
                "total": money(s),
            }
            for t, s, n in q("SELECT event_type, sum(price), count(*) FROM e WHERE price IS NOT NULL GROUP BY ALL")
        },
        "daily_active_users": {
            k(date=d): {"users": n}
            for d, n in q("SELECT strftime(ts, '%Y-%m-%d'), count(DISTINCT user_id) FROM e GROUP BY ALL")
        },
        "conversion_rate": {
            k(date=d): {"active_users": a, "purchasing_users": p, "rate": p / a}
            for d, a, p in q(
                "SELECT strftime(ts, '%Y-%m-%d'), count(DISTINCT user_id),"
                " count(DISTINCT user_id) FILTER (WHERE event_type = 'purchase') FROM e GROUP BY ALL"
            )
        },
        "top_products": {
            k(product=p): {"rank": i + 1, "revenue": money(r)}
            for i, (p, r) in enumerate(
                q(
                    "SELECT product, sum(price) AS r FROM e"
                    " WHERE event_type = 'purchase' AND price IS NOT NULL AND product IS NOT NULL"
                    " GROUP BY ALL ORDER BY r DESC, product LIMIT 10"
                )
            )
        },
        "events_by_source": {
            k(event_type=t, source=s): {"count": n}
            for s, t, n in q("SELECT source, event_type, count(*) FROM e GROUP BY ALL")
        },
        "events_by_country": {
            k(country=c, event_type=t): {"count": n}
            for t, c, n in q("SELECT event_type, country, count(*) FROM e GROUP BY ALL")
        },
        "revenue_by_product": {
            k(product=p): {"orders": n, "revenue": money(r)}
            for p, r, n in q(
                "SELECT product, sum(price), count(*) FROM e"
                " WHERE event_type = 'purchase' AND price IS NOT NULL AND product IS NOT NULL GROUP BY ALL"
            )
        },
    }


def compare(expected, views, what):
    """Prints ok/DIFF per view; returns the number of views that differ."""
    failures = 0
    for name, rows in expected.items():
        got = {json.dumps(r["key"], sort_keys=True): r["value"] for r in views[name]}
        if name == "conversion_rate":
            for k, v in got.items():
                if k in rows and abs(v["rate"] - rows[k]["rate"]) < 1e-12:
                    v["rate"] = rows[k]["rate"]
        if got != rows:
            failures += 1
            missing = sorted(set(rows) - set(got))[:5]
            extra = sorted(set(got) - set(rows))[:5]
            wrong = [(k, got[k], rows[k]) for k in sorted(set(got) & set(rows)) if got[k] != rows[k]][:5]
            print(f"DIFF {name}: missing {missing} extra {extra} different {wrong}")
        else:
            print(f"ok   {name}: {len(rows)} rows equal to {what}")
    return failures


def main(events_path, views_path):
    lines = read_lines(events_path.split(","))
    good = [l for l in lines if valid(l)]
    fd, valid_path = tempfile.mkstemp(suffix=".jsonl")
    with os.fdopen(fd, "wb") as f:
        f.write(b"\n".join(good) + b"\n")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        f"""CREATE TABLE e AS SELECT event_id, event_type, user_id,
                   event_timestamp::TIMESTAMP AS ts, product, price, country, source
            FROM read_json('{valid_path}', format = 'newline_delimited',
                 columns = {{event_id: 'VARCHAR', event_type: 'VARCHAR', user_id: 'VARCHAR',
                            event_timestamp: 'TIMESTAMPTZ', product: 'VARCHAR',
                            price: 'DECIMAL(18,2)', country: 'VARCHAR', source: 'VARCHAR'}})"""
    )
    expected = expected_views(con)
    views = json.load(open(views_path))["views"]
    failures = compare(expected, views, "DuckDB")
    dead = sum(r["value"]["count"] for r in views["dead_letters_by_reason"])
    if dead != len(lines) - len(good):
        failures += 1
        print(f"DIFF dead letters: lambdaflow {dead}, invalid lines {len(lines) - len(good)}")
    else:
        print(f"ok   dead letters: {dead} of {len(lines)} lines")
    os.unlink(valid_path)
    print(f"{len(expected) + 1 - failures} passed, {failures} failed ({len(good)} valid events, DuckDB {duckdb.__version__})")
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
