"""Usage: sql_check.py EVENTS.jsonl VIEWS.json

Recomputes every built-in view with DuckDB SQL over the JSON-lines file and compares it with
lambdaflow's `--views-out` file. Exits non-zero, listing the differences, if any view differs.
"""
import json
import sys
from decimal import ROUND_HALF_UP, Decimal

import duckdb


def money(d):
    return str(Decimal(d).quantize(Decimal("0.01")))


def main(events_path, views_path):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        f"""CREATE TABLE e AS SELECT event_id, event_type, user_id,
                   event_timestamp::TIMESTAMP AS ts, product, price, country, source
            FROM read_json('{events_path}', format = 'newline_delimited',
                 columns = {{event_id: 'VARCHAR', event_type: 'VARCHAR', user_id: 'VARCHAR',
                            event_timestamp: 'TIMESTAMPTZ', product: 'VARCHAR',
                            price: 'DECIMAL(18,2)', country: 'VARCHAR', source: 'VARCHAR'}})"""
    )
    q = lambda sql: con.execute(sql).fetchall()
    expected = {
        "events_by_type": {
            json.dumps(t): n for t, n in q("SELECT event_type, count(*) FROM e GROUP BY ALL")
        },
        "events_per_minute": {
            json.dumps({"event_type": t, "minute": m}, sort_keys=True): n
            for m, t, n in q("SELECT strftime(ts, '%Y-%m-%dT%H:%M'), event_type, count(*) FROM e GROUP BY ALL")
        },
        "revenue_by_country": {
            json.dumps(c): {"orders": n, "revenue": money(r)}
            for c, r, n in q(
                "SELECT country, sum(price), count(*) FROM e"
                " WHERE event_type = 'purchase' AND price IS NOT NULL GROUP BY ALL"
            )
        },
        "avg_price_by_type": {
            json.dumps(t): {
                "avg_price": money((Decimal(s) / n).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)),
                "count": n,
                "total": money(s),
            }
            for t, s, n in q("SELECT event_type, sum(price), count(*) FROM e WHERE price IS NOT NULL GROUP BY ALL")
        },
        "daily_active_users": {
            json.dumps(d): n for d, n in q("SELECT strftime(ts, '%Y-%m-%d'), count(DISTINCT user_id) FROM e GROUP BY ALL")
        },
        "conversion_rate": {
            json.dumps(d): {"active_users": a, "purchasing_users": p, "rate": p / a}
            for d, a, p in q(
                "SELECT strftime(ts, '%Y-%m-%d'), count(DISTINCT user_id),"
                " count(DISTINCT user_id) FILTER (WHERE event_type = 'purchase') FROM e GROUP BY ALL"
            )
        },
        "top_products": {
            json.dumps(p): {"rank": i + 1, "revenue": money(r)}
            for i, (p, r) in enumerate(
                q(
                    "SELECT product, sum(price) AS r FROM e"
                    " WHERE event_type = 'purchase' AND price IS NOT NULL AND product IS NOT NULL"
                    " GROUP BY ALL ORDER BY r DESC, product LIMIT 10"
                )
            )
        },
        "events_by_source": {
            json.dumps({"event_type": t, "source": s}, sort_keys=True): n
            for s, t, n in q("SELECT source, event_type, count(*) FROM e GROUP BY ALL")
        },
    }
    views = json.load(open(views_path))["views"]
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
            print(f"ok   {name}: {len(rows)} rows equal to DuckDB")
    total = con.execute("SELECT count(*) FROM e").fetchone()[0]
    print(f"{len(expected) - failures} passed, {failures} failed ({total} events, DuckDB {duckdb.__version__})")
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
