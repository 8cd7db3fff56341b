"""Usage: memory_check.py LAMBDAFLOW_BINARY WORKDIR SECONDS RATE COMMIT_INTERVAL [VIEWS]

Memory must follow live state, not the number of commits. Runs the generator at RATE events/s
for SECONDS, with a lake commit every COMMIT_INTERVAL and a Delta log retention of 30 s, samples
the process's resident memory every second, and reports it at each fifth of the run. VIEWS
(default `events_by_type,events_by_country`) are views whose state is bounded: the generator's
user ids keep growing, so the views that count users hold more with every second (live state,
which the event-time horizon is to bound), and they would hide what the lake does. Fails
(exit 1) if the median RSS of the last fifth is more than MAX_GROWTH (default 0.20) above the
median of the second fifth (the first fifth is the warm-up), if no Delta checkpoint was written
(one per 100 versions), or if the log before the checkpoints was not cleaned up.
"""
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    binary, work, seconds, rate, interval = sys.argv[1:6]
    views = sys.argv[6] if len(sys.argv) > 6 else "events_by_type,events_by_country"
    max_growth = 0.20
    seconds = int(seconds)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    config = os.path.join(work, "pipeline.toml")
    with open(config, "w") as f:
        f.write('[lake]\nlog_retention = "30s"\n')
    data = os.path.join(work, "data")
    proc = subprocess.Popen(
        [binary, "run", "--config", config, "--rate", rate, "--commit-interval", interval,
         "--data-dir", data, "--no-serve", "-q"] + (["--views", views] if views != "all" else []),
        stdout=subprocess.DEVNULL)
    samples = []
    started = time.monotonic()
    try:
        while time.monotonic() - started < seconds:
            time.sleep(1)
            if proc.poll() is not None:
                print(f"memory check: lambdaflow exited early with {proc.returncode}")
                return 1
            samples.append((time.monotonic() - started, rss_kib(proc.pid)))
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
    log = os.path.join(data, "events", "_delta_log")
    names = os.listdir(log)
    commits = sorted(int(n[:20]) for n in names if n.endswith(".json") and len(n) == 25)
    checkpoints = [n for n in names if ".checkpoint." in n]
    latest = commits[-1]
    fifth = max(1, len(samples) // 5)
    parts = [samples[i * fifth:(i + 1) * fifth] for i in range(5)]
    medians = [statistics.median(kib for _, kib in p) / 1024 for p in parts if p]
    print(f"memory check: {seconds} s at {rate} events/s, views {views}, a commit every {interval}: "
          f"{latest + 1} versions, {len(checkpoints)} checkpoints, "
          f"{len(commits)} commit files left in the log")
    print("memory check: median RSS by fifth of the run (MB): "
          + ", ".join(f"{m:.1f}" for m in medians))
    growth = medians[-1] / medians[1] - 1
    print(f"memory check: last fifth against the second: {growth:+.1%} "
          f"(at most {max_growth:+.0%} allowed)")
    failures = []
    if growth > max_growth:
        failures.append(f"RSS grew by {growth:.1%}")
    if latest >= 100 and not checkpoints:
        failures.append("no checkpoint after 100 versions")
    if seconds > 60 and latest >= 200 and commits[0] == 0:
        failures.append("the log before the checkpoints was not cleaned up")
    for f in failures:
        print(f"memory check: FAILED: {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
