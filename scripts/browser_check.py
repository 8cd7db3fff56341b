"""Usage: browser_check.py URL WORKDIR RECORDS -- CHROMIUM [FLAGS...]

Waits until the pipeline behind URL has absorbed RECORDS records, loads its dashboard in headless
Chromium (the command after `--`), and checks that what the page shows equals /api/views: the
status strip's event and dead-letter totals, revenue by country, top products, dead letters by
reason and daily active users, and every other view (SQL views among them) in a table of its own.
Saves the rendered DOM and a screenshot (dashboard.png) in WORKDIR.
Also parses /metrics with the Prometheus client library's text-format parser. Exits non-zero on
any difference.
"""
import json
import os
import subprocess
import sys
import time
import urllib.request
from html.parser import HTMLParser

from prometheus_client.parser import text_string_to_metric_families


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


class Page(HTMLParser):
    """Text by element id, rows (data-key -> cell texts) by table id, and body data attributes."""

    def __init__(self):
        super().__init__()
        self.ids, self.tables, self.body = {}, {}, {}
        self.stack, self.table, self.row, self.cell = [], None, None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body = a
        if tag == "table":
            self.table = a.get("id")
            self.tables.setdefault(self.table, {})
        if tag == "tr" and self.table and "data-key" in a:
            self.row = a["data-key"]
            self.tables[self.table][self.row] = []
        if tag == "td" and self.row is not None:
            self.cell = ""
        self.stack.append(a.get("id"))
        if a.get("id"):
            self.ids[a["id"]] = ""

    def handle_endtag(self, tag):
        if tag == "td" and self.row is not None and self.cell is not None:
            self.tables[self.table][self.row].append(self.cell.strip())
            self.cell = None
        if tag == "tr":
            self.row = None
        if tag == "table":
            self.table = None
        if self.stack:
            self.stack.pop()

    def handle_data(self, data):
        for i in self.stack:
            if i:
                self.ids[i] += data
        if self.cell is not None:
            self.cell += data


def main(url, workdir, records, *chromium):
    records = int(records)
    chromium = list(chromium[1:] if chromium and chromium[0] == "--" else chromium)
    api = url.rstrip("/")
    deadline = time.monotonic() + 120
    while True:
        status = get(api + "/api/status")
        totals = get(api + "/api/views/events_by_type")
        dead = get(api + "/api/views/dead_letters_by_reason")
        absorbed = sum(r["value"]["count"] for r in totals["rows"] + dead["rows"])
        if status["records_in"] == records and absorbed == records:
            break
        if time.monotonic() > deadline:
            print(f"FAILED: the pipeline did not absorb {records} records: {status}")
            return 1
        time.sleep(0.2)
    views = {v: get(f"{api}/api/views/{v}?limit=10000") for v in
             ["events_by_type", "revenue_by_country", "top_products", "dead_letters_by_reason",
              "daily_active_users"]}

    dom = subprocess.run(chromium + ["--dump-dom", url], capture_output=True, text=True, timeout=120)
    open(os.path.join(workdir, "dashboard.html"), "w").write(dom.stdout)
    shot = os.path.join(workdir, "dashboard.png")
    subprocess.run(chromium + [f"--screenshot={shot}", url], capture_output=True, timeout=120)
    page = Page()
    page.feed(dom.stdout)

    failures = 0

    def check(ok, message):
        nonlocal failures
        print(("ok   " if ok else "DIFF ") + message)
        failures += 0 if ok else 1

    check(page.body.get("data-ready") == "1", "the page loaded its data (no error shown: "
          f"{page.ids.get('error', '').strip()!r})")
    num = lambda text: int(text.replace(",", "")) if text.strip() not in ("", "–") else None  # noqa: E731
    events = sum(r["value"]["count"] for r in views["events_by_type"]["rows"])
    dead_total = sum(r["value"]["count"] for r in views["dead_letters_by_reason"]["rows"])
    check(num(page.ids.get("s-events", "")) == events, f"events shown {page.ids.get('s-events')!r} = {events}")
    check(num(page.ids.get("s-dead", "")) == dead_total, f"dead letters shown {page.ids.get('s-dead')!r} = {dead_total}")
    shown = {k: cells[-1] for k, cells in page.tables.get("revenue", {}).items()}
    want = {r["key"]["country"]: r["value"]["revenue"] for r in views["revenue_by_country"]["rows"]}
    check(shown == want, f"revenue by country: {len(shown)} countries shown equal the API's {len(want)}")
    shown = {k: cells[-1] for k, cells in page.tables.get("top", {}).items()}
    want = {r["key"]["product"]: r["value"]["revenue"] for r in views["top_products"]["rows"]}
    check(shown == want, f"top products: {len(shown)} shown equal the API's {len(want)}")
    shown = {k: num(cells[-1]) for k, cells in page.tables.get("dead", {}).items()}
    want = {r["key"]["reason"]: r["value"]["count"] for r in views["dead_letters_by_reason"]["rows"]}
    check(shown == want, f"dead letters by reason: {shown}")
    days = sorted((r["key"]["date"], r["value"]["users"]) for r in views["daily_active_users"]["rows"])
    check(num(page.ids.get("dau", "")) == days[-1][1] and page.ids.get("dau-day") == days[-1][0],
          f"daily active users on {days[-1][0]}: {page.ids.get('dau')!r} = {days[-1][1]}")
    charted = {"events_per_minute", "revenue_by_country", "daily_active_users", "conversion_rate",
               "top_products", "events_by_source", "dead_letters_by_reason", "events_by_type"}
    others = [v for v in get(api + "/api/views")["views"] if v["name"] not in charted]
    cell = lambda v: "–" if v is None else json.dumps(v) if isinstance(v, (dict, list)) else (  # noqa: E731
        ("true" if v else "false") if isinstance(v, bool) else str(v))
    for v in others:
        data = get(f"{api}/api/views/{v['name']}?limit=50")
        fields = lambda o, cols: [o.get(c) for c in cols]  # noqa: E731
        want = {json.dumps(r["key"], separators=(",", ":"), ensure_ascii=False):
                [cell(x) for x in fields(r["key"], v["key"]) + fields(r["value"], v["value"])] for r in data["rows"]}
        shown = page.tables.get(f"view-{v['name']}", {})
        check(shown == want and len(want) > 0,
              f"view {v['name']}: the table shows the API's {len(want)} rows ({len(shown)} shown)")
    check(len(others) >= 5, f"{len(others)} views without a chart have a table: {[v['name'] for v in others]}")
    check(bool(page.ids.get("legend", "").strip()), "the events-per-minute chart has a legend: "
          f"{page.ids.get('legend', '').strip()!r}")
    with urllib.request.urlopen(api + "/metrics", timeout=10) as r:
        families = {f.name: f for f in text_string_to_metric_families(r.read().decode())}
    value = lambda name: families[name].samples[0].value  # noqa: E731
    check(value("lambdaflow_records_in") == records, f"/metrics (prometheus_client parser): "
          f"{len(families)} families, lambdaflow_records_in_total {value('lambdaflow_records_in')}")
    latency = families["lambdaflow_epoch_latency_seconds"]
    check(latency.type == "histogram" and any(s.name.endswith("_bucket") for s in latency.samples),
          f"epoch latency is a histogram with {sum(s.name.endswith('_bucket') for s in latency.samples)} buckets")
    size = os.path.getsize(shot) if os.path.exists(shot) else 0
    check(size > 20_000, f"screenshot {shot}: {size} bytes")
    print(f"{'FAILED' if failures else 'passed'}: {failures} difference(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
