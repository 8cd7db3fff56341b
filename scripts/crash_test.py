"""Usage: crash_test.py LAMBDAFLOW_BINARY WORKDIR [MIN_KILLS] [SEED]

Kills `lambdaflow run` with SIGKILL at random moments, restarts it each time, and checks that
the end result is exactly that of a run never interrupted: the same views, and a lake holding
every valid input event exactly once (read back by the `deltalake` package and DuckDB, see
lake_check.py), which `lambdaflow verify` accepts.

Rounds differ in source (a file, or the generator at a fixed rate), workers (1, 2) and commit
ranges (2, 4 or 12 epochs of 1,000 records per worker). One round runs a cluster of two
processes (`lambdaflow cluster`) and kills one of its processes, at random: the launcher stops
the other, and the cluster is started again; its views must equal those of one uninterrupted
process with as many workers. Two more rounds (a file, the generator) start each run in a shape
drawn at random (1, 2 or 3 workers, or 2 processes of 1): the lake must resume under any number of processes and
workers. After each kill the data directory is looked at to tell the phase the process died in: with a Parquet
file being written (`*.inprogress` present), with finished files not yet committed, or with
nothing pending (between commits, or right after one). Exits non-zero on any difference.
"""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter

from deltalake import DeltaTable

sys.path.insert(0, os.path.dirname(__file__))
import lake_check  # noqa: E402


def pending_files(data_dir):
    """Data files on disk that no commit holds: (in progress, finished)."""
    in_progress, finished = set(), set()
    committed = set()
    for table in ("events", "dead_letters"):
        root = os.path.join(data_dir, table)
        if not os.path.isdir(os.path.join(root, "_delta_log")):
            continue
        committed |= {os.path.normpath(p) for p in DeltaTable(root).file_uris()}
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if not d.startswith("_")]
            for f in filenames:
                path = os.path.normpath(os.path.join(dirpath, f))
                if f.endswith(".inprogress"):
                    in_progress.add(path)
                elif f.endswith(".parquet") and path not in committed:
                    finished.add(path)
    return in_progress, finished


def phase(data_dir, before):
    """What this attempt left on disk when it died (`before`: what the last one left)."""
    if not os.path.isdir(os.path.join(data_dir, "events", "_delta_log")):
        return "starting (no table yet)"
    in_progress, finished = pending_files(data_dir)
    old_in_progress, old_finished = before
    # A new process has a new run tag in its file names.
    found = []
    if in_progress - old_in_progress:
        found.append("writing a file")
    if finished - old_finished:
        found.append("files written, not committed")
    if not found and (old_in_progress | old_finished) & (in_progress | finished):
        found.append("recovering (earlier leftovers not yet removed)")
    return " + ".join(found) or "nothing pending (between or right after commits)"


def kill_after(proc, delay):
    """SIGKILLs `proc` after `delay` seconds unless it ends first; returns whether it was killed."""
    try:
        proc.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True


def children(pid):
    """The processes whose parent is `pid`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def kill_a_process_after(launcher, delay, rng):
    """SIGKILLs one process of the cluster `launcher` started, at random, after `delay` seconds
    (or as soon after as it has started them) unless the cluster ends first; returns whether one
    was killed. The launcher then stops the other and ends."""
    deadline = time.monotonic() + delay
    while True:
        try:
            launcher.wait(timeout=max(0.0, deadline - time.monotonic()))
            return False
        except subprocess.TimeoutExpired:
            pass
        processes = children(launcher.pid)
        if len(processes) == 2:
            os.kill(rng.choice(processes), signal.SIGKILL)
            launcher.wait()
            return True
        deadline = time.monotonic() + 0.01


# The shapes a rescaling round draws from: (processes, workers per process).
SHAPES = [(1, 1), (1, 2), (1, 3), (2, 1)]


def shape_args(processes, workers):
    """How `run` is started in a shape: the launcher's arguments, and run's own."""
    if processes > 1:
        return ["cluster", "--processes", str(processes), "--workers", str(workers), "--"], []
    return [], ["--workers", str(workers)]


def run_round(binary, workdir, name, source_args, workers, commit_epochs, kills_wanted, rng, stats,
              cluster=False, rescale=False):
    data = os.path.join(workdir, name)
    shutil.rmtree(data, ignore_errors=True)
    reference = os.path.join(workdir, name + "-reference")
    shutil.rmtree(reference, ignore_errors=True)
    common = ["run", "--quiet", "--until-exhausted",
              "--epoch-records", "1000", "--commit-epochs", str(commit_epochs)] + source_args
    # A cluster's processes have a worker each: as many workers as the reference's.
    launch = ["cluster", "--processes", str(workers), "--"] if cluster else ["--workers", str(workers)]
    started = time.monotonic()
    subprocess.run([binary] + common + ["--workers", str(workers), "--data-dir", reference, "--views-out", reference + ".json"], check=True)
    duration = time.monotonic() - started
    print(f"[{name}] uninterrupted run: {duration:.2f}s")
    if cluster:
        # The kills are spread over the cluster's own run time, which includes its start.
        timing = reference + "-cluster"
        shutil.rmtree(timing, ignore_errors=True)
        started = time.monotonic()
        subprocess.run([binary] + launch + common + ["--data-dir", timing, "--views-out", timing + ".json"],
                       check=True, stdout=subprocess.DEVNULL)
        duration = time.monotonic() - started
        same = json.load(open(timing + ".json"))["views"] == json.load(open(reference + ".json"))["views"]
        print(f"[{name}] uninterrupted cluster run: {duration:.2f}s, views "
              + ("equal" if same else "DIFFERENT from") + " the uninterrupted process's")
        shutil.rmtree(timing, ignore_errors=True)
        if not same:
            return 1
    kills = 0
    attempts = 0
    views_out = data + ".json"
    while True:
        attempts += 1
        before = pending_files(data) if os.path.isdir(data) else (set(), set())
        if rescale:
            shape = rng.choice(SHAPES)
            cluster = shape[0] > 1
            before_run, after_run = shape_args(*shape)
            command = [binary] + before_run + common + after_run
            print(f"[{name}] start {attempts}: {shape[0]} process(es) x {shape[1]} worker(s)")
        else:
            command = ([binary] + launch + common if cluster else [binary] + common + launch)
        proc = subprocess.Popen(command + ["--data-dir", data, "--views-out", views_out],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if kills < kills_wanted:
            delay = rng.uniform(0.02, max(0.1, duration * 0.6))
            killed = kill_a_process_after(proc, delay, rng) if cluster else kill_after(proc, delay)
            if killed:
                proc.stderr.read()
                kills += 1
                where = phase(data, before)
                stats[where] += 1
                print(f"[{name}] kill {kills} after {delay:.3f}s: {where}")
                continue
        else:
            proc.wait(timeout=600)
        err = proc.stderr.read().decode()
        if proc.returncode != 0:
            print(f"[{name}] run failed ({proc.returncode}): {err}")
            return 1
        break
    print(f"[{name}] completed after {kills} kills and {attempts} starts")
    failures = 0
    got = json.load(open(views_out))["views"]
    want = json.load(open(reference + ".json"))["views"]
    if got != want:
        failures += 1
        diff = [k for k in want if got.get(k) != want[k]]
        print(f"DIFF [{name}] views differ from the uninterrupted run: {diff}")
    else:
        print(f"ok   [{name}] views equal those of the uninterrupted run")
    verify = subprocess.run([binary, "verify", "--data-dir", data], capture_output=True, text=True)
    print(("ok   " if verify.returncode == 0 else "DIFF ") + f"[{name}] verify: {verify.stdout.strip()} {verify.stderr.strip()}")
    failures += verify.returncode != 0
    return failures, kills


def main(binary, workdir, min_kills=24, seed=None):
    seed = int(seed) if seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    print(f"seed {seed}")
    os.makedirs(workdir, exist_ok=True)
    events = os.path.join(workdir, "events.jsonl")
    subprocess.run([binary, "generate", "--count", "150000", "--bad-fraction", "0.01", "--seed", "5", "-o", events], check=True)
    generated = os.path.join(workdir, "generated.jsonl")
    gen = ["--count", "60000", "--seed", "9", "--bad-fraction", "0.01", "--start", "2025-03-01T00:00:00Z"]
    subprocess.run([binary, "generate", *gen, "-o", generated], check=True)
    stats = Counter()
    failures = 0
    total = 0
    configs = [
        ("file-2w", ["--source", f"file:{events}"], 2, 2, events),
        ("file-1w", ["--source", f"file:{events}"], 1, 12, events),
        ("generator-2w", ["--source", "generate", "--rate", "40000", *gen], 2, 4, generated),
        ("cluster-file-2x1", ["--source", f"file:{events}"], 2, 2, events),
        ("rescale-file", ["--source", f"file:{events}"], 2, 2, events),
        ("rescale-generator", ["--source", "generate", "--rate", "40000", *gen], 2, 4, generated),
    ]
    # Rounds until enough kills: a restarted run has less left to do, so a round may end early.
    n = 0
    while total < int(min_kills) or n < len(configs):
        name, args, workers, commit_epochs, input_path = configs[n % len(configs)]
        cluster = name.startswith("cluster")
        rescale = name.startswith("rescale")
        name = f"{name}-{n // len(configs)}"
        n += 1
        result = run_round(binary, workdir, name, args, workers, commit_epochs, 10 if cluster else 8,
                           rng, stats, cluster, rescale)
        if isinstance(result, int):
            return 1
        f, k = result
        failures += f
        total += k
        print(f"[{name}] lake read back from outside:")
        failures += lake_check.main(os.path.join(workdir, name), input_path, os.path.join(workdir, name + ".json"), binary)
        shutil.rmtree(os.path.join(workdir, name + "-reference"), ignore_errors=True)
    print(f"kills by phase: {dict(stats)}")
    print(f"{'FAILED' if failures else 'passed'}: {total} kills in {n} rounds, {failures} failure(s), seed {seed}")
    return 1 if failures or total < int(min_kills) else 0


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
