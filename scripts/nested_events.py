"""Usage: nested_events.py COUNT SEED OUT.jsonl

A shop's own events as JSON lines, for scripts/sql-nested.toml: orders (a nested customer and
shipping address, an items array), inventory changes and user activity, over two months, with
about 2% malformed records of every kind (bad JSON, wrong types, missing fields a kind requires,
bad timestamps, money with three places).
"""
import json
import random
import sys
from datetime import datetime, timedelta, timezone

COUNTRIES = ["DE", "FR", "UK", "日本", "US", "BR"]
CITIES = ["Stuttgart", "Oslo", "Lyon", "Sapporo", "Toronto", "São Paulo", None]
TIERS = ["gold", "silver", None]
STATUSES = ["paid", "shipped", "cancelled", "pending"]
SKUS = [f"sku-{i}" for i in range(12)]
WAREHOUSES = ["north", "south", "east", None]
ACTIONS = ["view", "search", "login", "checkout"]


def event(rng, i, start):
    ts = start + timedelta(seconds=i * 50 + rng.randrange(50), microseconds=rng.choice([0, 0, 250_000]))
    zone = rng.choice([timezone.utc, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))])
    stamp = ts.astimezone(zone).isoformat().replace("+00:00", "Z")
    kind = rng.choices(["order", "inventory", "activity"], [3, 2, 5])[0]
    e = {"event_id": f"e{i}", "kind": kind, "ts": stamp}
    if kind == "order":
        e["customer"] = {"id": f"c{rng.randrange(400)}", "tier": rng.choice(TIERS), "since": 2019}
        e["shipping"] = {"country": rng.choice(COUNTRIES), "address": {"city": rng.choice(CITIES), "zip": "70173"}}
        e["items"] = [{"sku": rng.choice(SKUS), "qty": rng.randrange(1, 4)} for _ in range(rng.randrange(1, 4))]
        cents = rng.randrange(100, 90_000)
        e["amount"] = rng.choice([cents / 100, f"{cents // 100}.{cents % 100:02d}"])
        e["status"] = rng.choice(STATUSES)
        if rng.random() < 0.3:
            e["gift"] = rng.random() < 0.5
    elif kind == "inventory":
        e["sku"] = rng.choice(SKUS)
        if (w := rng.choice(WAREHOUSES)) is not None:
            e["warehouse"] = w
        e["delta"] = rng.randrange(-20, 40)
    else:
        e["customer"] = {"id": f"c{rng.randrange(400)}"}
        e["action"] = rng.choice(ACTIONS)
        if rng.random() < 0.8:
            e["duration"] = round(rng.uniform(0.1, 9.0), 3)
        e["page"] = f"/p/{rng.randrange(50)}"
    fault = rng.randrange(100)
    if fault == 0:
        return json.dumps(e)[:-3]
    if fault == 1:
        e["ts"] = "tomorrow"
    elif fault == 2 and kind == "order":
        del e["customer"]["id"]
    elif fault == 3 and kind == "order":
        e["amount"] = "12.345"
    elif fault == 4 and kind == "inventory":
        e["delta"] = "lots"
    elif fault == 5 and kind == "activity":
        e["action"] = None
    elif fault == 6 and kind == "order":
        e["shipping"] = "by sea"
    return json.dumps(e, ensure_ascii=False)


def main(count, seed, out):
    rng = random.Random(int(seed))
    start = datetime(2025, 1, 20, 22, 0, tzinfo=timezone.utc)
    with open(out, "w", encoding="utf-8") as f:
        for i in range(int(count)):
            f.write(event(rng, i, start) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
