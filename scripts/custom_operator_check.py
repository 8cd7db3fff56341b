"""Usage: custom_operator_check.py BINARY WORKDIR

The Rust view of examples/custom_operator.rs, end to end: events from two files that span three
UTC days; a run on two workers SIGKILLed mid-way and restarted, serving over HTTP; its
`sessions_per_day` rows, over HTTP and in `--views-out`, equal sessions computed here in plain
Python from the valid lines; `verify` recomputes the view from the lake and agrees. Exits non-zero
if anything differs.
"""
import collections
import datetime
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from sql_check import read_lines, valid  # noqa: E402

GAP = datetime.timedelta(minutes=30)


def expected(paths):
    times = collections.defaultdict(list)
    for line in read_lines(paths):
        if valid(line):
            e = json.loads(line)
            at = datetime.datetime.fromisoformat(e["event_timestamp"].replace("z", "Z")).astimezone(datetime.timezone.utc)
            times[e["user_id"]].append(at)
    sessions, users = collections.Counter(), collections.defaultdict(set)
    for user, ts in times.items():
        last = None
        for t in sorted(ts):
            if last is None or t - last >= GAP:
                day = t.date().isoformat()
                sessions[day] += 1
                users[day].add(user)
            last = t
    return {json.dumps({"day": d}): {"sessions": n, "users": len(users[d])} for d, n in sessions.items()}


def rows(view_rows):
    return {json.dumps(r["key"], sort_keys=True): r["value"] for r in view_rows}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(binary, workdir):
    os.makedirs(workdir, exist_ok=True)
    files = [os.path.join(workdir, f"events-{i}.jsonl") for i in range(2)]
    subprocess.run([binary, "generate", "--count", "60000", "--seed", "5", "--bad-fraction", "0.01",
                    "--start", "2025-01-01T23:00:00Z", "-o", files[0]], check=True)
    subprocess.run([binary, "generate", "--count", "30000", "--seed", "6",
                    "--start", "2025-01-03T08:00:00Z", "-o", files[1]], check=True)
    data = os.path.join(workdir, "data")
    views_out = os.path.join(workdir, "views.json")
    common = ["--quiet", "--workers", "2", "--epoch-records", "2000", "--commit-epochs", "2",
              "--source", "file:" + ",".join(files), "--data-dir", data]
    subprocess.run(["rm", "-rf", data], check=True)
    # A first run, killed as soon as its first commit is in the lake (about 20 commits in all).
    first = subprocess.Popen([binary, "run", "--until-exhausted", "--no-serve"] + common)
    first_commit = os.path.join(data, "events", "_delta_log", "00000000000000000001.json")
    deadline = time.monotonic() + 60
    while not os.path.exists(first_commit) and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    killed = first.poll() is None
    first.send_signal(signal.SIGKILL)
    first.wait()
    # The restart reads on from the lake's last commit and serves until stopped.
    port = free_port()
    second = subprocess.Popen([binary, "run", "--listen", f"127.0.0.1:{port}", "--views-out", views_out] + common)
    want = expected(files)
    failures = 0
    served = None
    for _ in range(600):
        time.sleep(0.2)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/views/sessions_per_day") as r:
                served = json.load(r)
        except OSError:
            continue
        if rows(served["rows"]) == want:
            break
    listed = None
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/views") as r:
            listed = next((v for v in json.load(r)["views"] if v["name"] == "sessions_per_day"), None)
    except OSError as e:
        print(f"GET /api/views: {e}")
    second.send_signal(signal.SIGTERM)
    code = second.wait(timeout=120)

    def check(ok, message):
        nonlocal failures
        print(("ok   " if ok else "DIFF ") + message)
        failures += 0 if ok else 1

    check(killed, "the first run was killed before it finished")
    check(code == 0, f"the restarted run stopped on SIGTERM with exit code {code}")
    check(served is not None and rows(served["rows"]) == want,
          f"HTTP /api/views/sessions_per_day equals sessions computed in Python: {want}")
    want_types = {"key": {"day": "date"}, "value": {"sessions": "int", "users": "int"}}
    check(listed is not None and listed["types"] == want_types,
          f"/api/views lists its columns with the types the view declares: {listed and listed['types']}")
    out = json.load(open(views_out))["views"]["sessions_per_day"]
    check(rows(out) == want, f"--views-out holds the same {len(out)} rows")
    verify = subprocess.run([binary, "verify", "--data-dir", data], capture_output=True, text=True)
    check(verify.returncode == 0, f"verify recomputes the view from the lake: {verify.stdout.strip()} {verify.stderr.strip()}")
    print(f"{'FAILED' if failures else 'passed'}: {failures} difference(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
