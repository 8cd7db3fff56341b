"""Usage: kafka_crash_test.py LAMBDAFLOW_BINARY WORKDIR BOOTSTRAP TOPIC [MIN_KILLS] [SEED]

Kills `lambdaflow run` reading Kafka with SIGKILL at random moments while a publisher is still
producing, restarts it each time in a random shape (1 to 3 workers, or a cluster of 2 processes
of 1 worker, one of which is the one killed: Kafka offsets belong to partitions, not workers),
then lets a last run read to the end. Checks that the lake holds every
produced valid event exactly once and the dead-letter table every malformed one (read back by
the `deltalake` package and DuckDB, see lake_check.py), that the views equal those of the same
events read from a file, that `lambdaflow verify` accepts the lake, and that for every partition
the consumer group's committed offset equals the lake's offset and the partition's end.
Exits non-zero on any difference.
"""
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(__file__))
import lake_check  # noqa: E402
from crash_test import SHAPES, kill_a_process_after, kill_after, pending_files, phase, shape_args  # noqa: E402


def main(binary, workdir, bootstrap, topic, min_kills=20, seed=None):
    seed = int(seed) if seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    min_kills = int(min_kills)
    print(f"seed {seed}, broker {bootstrap}, topic {topic}")
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    url = f"kafka://{bootstrap}/{topic}"
    batches = [
        ("before.jsonl", ["--count", "30000", "--seed", "31", "--bad-fraction", "0.01"]),
        ("during.jsonl", ["--count", "50000", "--seed", "32", "--bad-fraction", "0.01",
                          "--start", "2025-02-01T00:00:00Z"]),
    ]
    # The first batch is there before the pipeline starts; the second arrives, at 3,000 events/s,
    # while it is being killed and restarted. The same events go to files for the reference (the
    # rate sets the generated timestamps' spacing, so the file is written at the same rate).
    batches[1][1].extend(["--rate", "3000"])
    files = [os.path.join(workdir, name) for name, _ in batches]
    subprocess.run([binary, "generate", *batches[0][1], "-o", files[0]], check=True)
    subprocess.run([binary, "generate", "--to", url, *batches[0][1]], check=True, stdout=subprocess.DEVNULL)
    writer = subprocess.Popen([binary, "generate", *batches[1][1], "-o", files[1]])
    publisher = subprocess.Popen([binary, "generate", "--to", url, *batches[1][1]],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    data = os.path.join(workdir, "data")
    views_out = os.path.join(workdir, "views.json")
    stats = Counter()
    kills = 0
    while kills < min_kills or publisher.poll() is None:
        processes, workers = rng.choice(SHAPES)
        launcher, flags = shape_args(processes, workers)
        before = pending_files(data) if os.path.isdir(data) else (set(), set())
        proc = subprocess.Popen([binary, *launcher, "run", "--quiet", *flags,
                                 "--commit-interval", "300ms", "--source", url, "--data-dir", data],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # A cluster starts about a second later than one process.
        delay = rng.uniform(0.2, 1.5) + (1.0 if processes > 1 else 0.0)
        killed = kill_a_process_after(proc, delay, rng) if processes > 1 else kill_after(proc, delay)
        if not killed:
            print(f"run exited by itself ({proc.returncode}): {proc.stderr.read().decode()}")
            return 1
        kills += 1
        where = phase(data, before)
        stats[where] += 1
        print(f"kill {kills} ({processes} process(es) x {workers} worker(s)) after {delay:.2f}s: {where}")
    out, err = publisher.communicate()
    if publisher.returncode != 0:
        print(f"the publisher failed: {err.decode()}")
        return 1
    print(out.decode().strip())
    if writer.wait() != 0:
        print("writing the reference file failed")
        return 1

    final = subprocess.run([binary, "run", "--quiet", "--until-exhausted", "--workers", "2",
                            "--source", url, "--data-dir", data, "--views-out", views_out],
                           capture_output=True, text=True)
    if final.returncode != 0:
        print(f"the last run failed: {final.stderr}")
        return 1
    print(f"completed after {kills} kills")

    failures = 0

    def check(ok, message):
        nonlocal failures
        print(("ok   " if ok else "DIFF ") + message)
        failures += 0 if ok else 1

    reference = os.path.join(workdir, "reference.json")
    subprocess.run([binary, "run", "--quiet", "--until-exhausted", "--no-lake", "--source",
                    "file:" + ",".join(files), "--views-out", reference], check=True)
    got = json.load(open(views_out))["views"]
    want = json.load(open(reference))["views"]
    check(got == want, "views equal those of the same events read from a file"
          + ("" if got == want else f": {[k for k in want if got.get(k) != want[k]]}"))
    verify = subprocess.run([binary, "verify", "--data-dir", data], capture_output=True, text=True)
    check(verify.returncode == 0, f"verify: {verify.stdout.strip()} {verify.stderr.strip()}")
    offsets = subprocess.run([binary, "kafka", "--json", "--source", url, "--data-dir", data],
                             capture_output=True, text=True)
    if offsets.returncode != 0:
        check(False, f"lambdaflow kafka: {offsets.stderr.strip()}")
    else:
        same = True
        for p in json.loads(offsets.stdout)["partitions"]:
            same &= p["group"] == p["lake"] == p["high"] and p["low"] == 0
            check(p["group"] == p["lake"] == p["high"] and p["low"] == 0,
                  f"{p['partition']}: group offset {p['group']}, lake {p['lake']}, end {p['high']}"
                  f" (kept from offset {p['low']})")
        if not same:
            print(f"the last run said: {final.stderr.strip() or '(nothing)'}")
    print("lake read back from outside:")
    failures += lake_check.main(data, ",".join(files), views_out, binary)
    print(f"kills by phase: {dict(stats)}")
    print(f"{'FAILED' if failures else 'passed'}: {kills} kills, {failures} failure(s), seed {seed}")
    return 1 if failures or kills < min_kills else 0


if __name__ == "__main__":
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
