"""Usage: s3_check.py LAMBDAFLOW_BINARY WORKDIR [SEED]

A lake on S3: moto's S3-compatible server (from PyPI) is started on a free port with one bucket,
and lambdaflow is pointed at `s3://lake/...` with the usual `AWS_*` variables. Checks, each
against the views of an uninterrupted run into a local directory:

- a run into the bucket gives the same views;
- a run SIGKILLed at random moments and restarted each time ends with the same views, no
  uncommitted object left in the bucket, and the lake read back by the Python `deltalake`
  package from the same server holding every valid input event exactly once (lake_check.py);
- `verify` accepts it and `batch` recomputes the same views from it;
- `lake compact` and `lake vacuum` on it leave the same rows, and only the active files;
- a cluster of two processes (`lambdaflow cluster`) writes one lake in the bucket, one of its
  processes is killed, `--restart` starts it again, and the views are the same;
- two hosts, each a network namespace of its own, run one cluster into the bucket, one of them
  is killed, both start again, and the views and the lake are the same (two_hosts.py; as root);
- credentials from the AWS SDK's provider chain (a container credentials endpoint, as ECS and
  EKS Pod Identity give, served here by this script) with no region set: the run ends with the
  same views, the endpoint asked;
- a location lambdaflow cannot use is one line on stderr and a non-zero exit.

Exits non-zero, listing what differs.
"""
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import unquote

import pyarrow.fs
from deltalake import DeltaTable

sys.path.insert(0, os.path.dirname(__file__))
import lake_check  # noqa: E402
import two_hosts  # noqa: E402
from crash_test import children, kill_after  # noqa: E402

failures = 0


def check(ok, message):
    global failures
    print(("ok   " if ok else "DIFF ") + message, flush=True)
    failures += 0 if ok else 1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(workdir):
    """moto's server on a free port, once it answers; returns (process, endpoint)."""
    port = free_port()
    server = os.path.join(os.path.dirname(sys.executable), "moto_server")
    log = open(os.path.join(workdir, "moto.log"), "w")
    # On every address: the two hosts of two_hosts.py reach it through links of their own.
    proc = subprocess.Popen([server, "-H", "0.0.0.0", "-p", str(port)], stdout=log, stderr=log)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(endpoint, timeout=1).read()
            return proc, endpoint
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"moto_server did not start (see {workdir}/moto.log)")
            time.sleep(0.2)


def views(path):
    return json.load(open(path))["views"]


def run(binary, args, env, **kw):
    return subprocess.run([binary] + args, env=env, capture_output=True, text=True, **kw)


def added(fs, root):
    """Every data file an `add` action of the table's log names, in any version."""
    out = set()
    log = pyarrow.fs.FileSelector(lake_check.fs_path(root) + "/_delta_log")
    for entry in fs.get_file_info(log):
        if not entry.base_name.endswith(".json"):
            continue
        with fs.open_input_stream(entry.path) as f:
            for line in f.read().decode().splitlines():
                add = json.loads(line).get("add")
                if add:
                    out.add(lake_check.fs_path(root) + "/" + unquote(add["path"]))
    return out


def uncommitted(fs, location, active_only=False):
    """Data objects under the tables of `location` that no version of their Delta log holds
    (with `active_only`, that the latest version does not hold)."""
    found = []
    for table in ("events", "dead_letters"):
        root = f"{location}/{table}"
        if active_only:
            held = {lake_check.fs_path(unquote(u)) for u in DeltaTable(root).file_uris()}
        else:
            held = added(fs, root)
        selector = pyarrow.fs.FileSelector(lake_check.fs_path(root), recursive=True)
        for info in fs.get_file_info(selector):
            if info.type != pyarrow.fs.FileType.File or "/_" in info.path:
                continue
            if info.path not in held:
                found.append(info.path)
    return found


def crash_round(binary, common, lake, views_out, env, rng, duration):
    """Runs into `lake`, SIGKILLed up to 4 times at random moments and restarted each time, to
    the end; returns the kills, or None if the last run failed."""
    kills = 0
    while True:
        proc = subprocess.Popen([binary] + common + ["--workers", "2", "--data-dir", lake, "--views-out", views_out],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if kills < 4:
            delay = rng.uniform(0.1, max(0.5, duration * 0.8))
            if kill_after(proc, delay):
                proc.stderr.read()
                kills += 1
                print(f"{lake}: kill {kills} after {delay:.2f}s")
                continue
        proc.wait(timeout=600)
        err = proc.stderr.read().decode()
        check(proc.returncode == 0, f"{lake}: the run resumed after {kills} kills ends {err.strip()[-300:]}")
        return kills if proc.returncode == 0 else None


def main(binary, workdir, seed=None):
    seed = int(seed) if seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    print(f"seed {seed}")
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    server, endpoint = start_server(workdir)
    try:
        return checks(binary, workdir, endpoint, rng)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait()


def checks(binary, workdir, endpoint, rng):
    urllib.request.urlopen(urllib.request.Request(endpoint + "/lake", method="PUT")).read()
    options = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": "lambdaflow",
        "AWS_SECRET_ACCESS_KEY": "lambdaflow",
        "AWS_REGION": "us-east-1",
    }
    # For lambdaflow, and for the deltalake package, which reads the same variables.
    os.environ.update(options)
    env = dict(os.environ)
    fs = lake_check.filesystem(options)
    events = os.path.join(workdir, "events.jsonl")
    subprocess.run([binary, "generate", "--count", "60000", "--bad-fraction", "0.01", "--seed", "5",
                    "-o", events], check=True)
    common = ["run", "--quiet", "--until-exhausted", "--source", f"file:{events}",
              "--epoch-records", "1000", "--commit-epochs", "2"]

    local = os.path.join(workdir, "local")
    subprocess.run([binary] + common + ["--workers", "2", "--data-dir", local,
                    "--views-out", local + ".json"], check=True)
    want = views(local + ".json")

    # One run into the bucket.
    whole = os.path.join(workdir, "whole.json")
    started = time.monotonic()
    done = run(binary, common + ["--workers", "2", "--data-dir", "s3://lake/whole", "--views-out", whole], env)
    duration = time.monotonic() - started
    check(done.returncode == 0, f"a run into s3://lake/whole ends ({duration:.1f}s) {done.stderr.strip()[-300:]}")
    if done.returncode != 0:
        return 1
    check(views(whole) == want, "its views equal those of the run into a local directory")

    # Killed and restarted, in rounds on fresh prefixes until enough kills: a restarted run has
    # less left to do, so a round may end before its kills.
    kills = 0
    rounds = 0
    while kills < 8:
        lake = f"s3://lake/crashed-{rounds}"
        crashed = os.path.join(workdir, f"crashed-{rounds}.json")
        rounds += 1
        got = crash_round(binary, common, lake, crashed, env, rng, duration)
        if got is None:
            return 1
        kills += got
        check(views(crashed) == want,
              f"{lake}, resumed after {got} kills: views equal those of the uninterrupted run")
        left = uncommitted(fs, lake)
        check(not left, f"{lake}: no object that no commit holds is left in the bucket: {left[:3]}")
    verify = run(binary, ["verify", "--data-dir", lake], env)
    check(verify.returncode == 0, f"verify: {verify.stdout.strip()} {verify.stderr.strip()}")
    batch_out = os.path.join(workdir, "batch.json")
    batch = run(binary, ["batch", "--workers", "2", "--data-dir", lake, "--views-out", batch_out], env)
    check(batch.returncode == 0 and views(batch_out) == want,
          f"batch recomputes the same views from the bucket {batch.stderr.strip()}")
    print("the lake read back from the server by deltalake, PyArrow and DuckDB:")
    global failures
    failures += lake_check.main(lake, events, crashed, binary, options)

    # Compaction and vacuum on the object store.
    compact = run(binary, ["lake", "compact", "--data-dir", lake], env)
    check(compact.returncode == 0, "lake compact: " + "; ".join(compact.stdout.split("\n")).strip("; ") + compact.stderr.strip())
    vacuum = run(binary, ["lake", "vacuum", "--data-dir", lake, "--retain", "0s", "--force"], env)
    check(vacuum.returncode == 0, f"lake vacuum: {len(vacuum.stdout.splitlines())} lines, {vacuum.stderr.strip()}")
    left = uncommitted(fs, lake, active_only=True)
    check(not left, f"after vacuum only the active files are in the bucket: {left[:3]}")
    print("read back after compaction and vacuum (the latest version):")
    failures += lake_check.main(lake, events, crashed, binary, options, versions=False)

    # A cluster of two processes on one lake in the bucket; one process is killed once.
    cluster_lake = "s3://lake/cluster"
    cluster_out = os.path.join(workdir, "cluster.json")
    launcher = subprocess.Popen(
        [binary, "cluster", "--processes", "2", "--workers", "1", "--restart", "1", "--"] + common
        + ["--data-dir", cluster_lake, "--views-out", cluster_out],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + rng.uniform(1.0, max(1.5, duration))
    killed = False
    while launcher.poll() is None and not killed:
        processes = children(launcher.pid)
        if len(processes) == 2 and time.monotonic() > deadline:
            os.kill(rng.choice(processes), signal.SIGKILL)
            killed = True
        time.sleep(0.02)
    launcher.wait(timeout=600)
    err = launcher.stderr.read().decode()
    check(launcher.returncode == 0, f"the cluster ends (a process killed: {killed})"
          + ("" if launcher.returncode == 0 else f": {err.strip()[-300:]}"))
    if launcher.returncode == 0:
        check(views(cluster_out) == want, "the cluster's views equal those of the uninterrupted run")
        verify = run(binary, ["verify", "--data-dir", cluster_lake], env)
        check(verify.returncode == 0, f"verify of the cluster's lake: {verify.stdout.strip()} {verify.stderr.strip()}")
        failures += lake_check.main(cluster_lake, events, cluster_out, binary, options)

    sdk_credentials(binary, workdir, common, env, want)

    # Locations that cannot be used.
    for location, says in [("gs://lake/x", "not on gs://"), ("s3:///x", "name a bucket")]:
        bad = run(binary, common + ["--data-dir", location], env, timeout=60)
        lines = bad.stderr.strip().splitlines()
        check(bad.returncode != 0 and len(lines) == 1 and says in lines[0],
              f"--data-dir {location}: exit {bad.returncode}, {lines}")
    info = run(binary, ["lake", "info", "--data-dir", "s3://lake/none"], env, timeout=120)
    lines = info.stderr.strip().splitlines()
    check(info.returncode != 0 and len(lines) == 1 and "not a lambdaflow lake" in lines[0],
          f"lake info on an empty prefix: exit {info.returncode}, {lines}")

    print("two hosts: a cluster of two processes in network namespaces of their own:")
    found = two_hosts.check(binary, workdir, int(endpoint.rsplit(":", 1)[1]), options, rng, check)
    failures += found or 0

    print(f"{'FAILED' if failures else 'passed'}: {failures} difference(s), {kills} kills in {rounds} rounds")
    return 1 if failures else 0


def sdk_credentials(binary, workdir, common, env, want):
    """A run whose credentials come from the AWS SDK's provider chain, not from the variables: a
    container credentials endpoint (what ECS and EKS Pod Identity give), with no AWS_REGION, so
    that the SDK also looks for the region over the network (the instance metadata service,
    unreachable here). `AWS_FORCE_CREDENTIAL_LOAD` makes deltalake take the SDK's path though
    an endpoint is set. An earlier build waited forever here: the lookup ran on a runtime that
    nobody drove."""
    asked = []

    class Credentials(BaseHTTPRequestHandler):
        def do_GET(self):
            asked.append(self.path)
            body = json.dumps({"AccessKeyId": "lambdaflow", "SecretAccessKey": "lambdaflow",
                               "Token": "session", "Expiration": "2099-01-01T00:00:00Z"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Credentials)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sdk_env = {k: v for k, v in env.items()
               if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")}
    sdk_env["AWS_FORCE_CREDENTIAL_LOAD"] = "true"
    sdk_env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = f"http://127.0.0.1:{server.server_port}/creds"
    out = os.path.join(workdir, "sdk.json")
    started = time.monotonic()
    try:
        done = run(binary, common + ["--data-dir", "s3://lake/sdk", "--views-out", out], sdk_env,
                   timeout=180)
        ended = done.returncode == 0
        said = done.stderr.strip()[-300:]
    except subprocess.TimeoutExpired:
        ended, said = False, "still running after 180 s"
    finally:
        server.shutdown()
    check(ended, f"credentials from a container endpoint, no region: the run ends "
          f"({time.monotonic() - started:.1f}s) {said}")
    check(ended and views(out) == want and len(asked) > 0,
          f"its views equal the uninterrupted run's; the endpoint was asked {len(asked)} times")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
