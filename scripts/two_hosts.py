"""Two machines on one: a cluster of two processes, each in a network namespace of its own, as
two hosts on a network are. Each has its own network stack, its own address, its own temporary
directory (where data files are staged before their upload); they share an S3 bucket (moto's
server, reached through each host's own link) and a link between them for timely's exchange,
and nothing else: the source is the generator, which each process computes its share of.

Host 1 is SIGKILLed while the cluster runs; host 0 must then stop by itself with one line, and
both are started again, as a supervisor would, to the end. The views must equal those of one
process, the lake must hold every event once (read back by deltalake from the bucket), and
`verify` must accept it.

Needs root (network namespaces, `ip` from iproute2); without it, the check says so and is
skipped. Used by s3_check.py.
"""
import json
import os
import shutil
import subprocess
import time

import lake_check
import pyarrow.fs

# (namespace, its address on the link to the other host, its link to the machine's own stack)
HOSTS = [("lf-host0", "10.78.0.1", "10.77.1"), ("lf-host1", "10.78.0.2", "10.77.2")]
PORT = 7000


def ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True)


def teardown():
    for name, _, _ in HOSTS:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def setup():
    """The two hosts: a link between them, and one from each to the machine's own stack (for the
    S3 server). No forwarding is involved, so no firewall rule of the machine's applies."""
    teardown()
    for name, _, _ in HOSTS:
        ip("netns", "add", name)
        ip("-n", name, "link", "set", "lo", "up")
    (a, a_addr, _), (b, b_addr, _) = HOSTS
    ip("link", "add", "lf-ab", "netns", a, "type", "veth", "peer", "name", "lf-ba", "netns", b)
    ip("-n", a, "addr", "add", a_addr + "/24", "dev", "lf-ab")
    ip("-n", b, "addr", "add", b_addr + "/24", "dev", "lf-ba")
    ip("-n", a, "link", "set", "lf-ab", "up")
    ip("-n", b, "link", "set", "lf-ba", "up")
    for name, _, net in HOSTS:
        outside = name + "-o"
        subprocess.run(["ip", "link", "del", outside], capture_output=True)
        ip("link", "add", outside, "type", "veth", "peer", "name", "uplink", "netns", name)
        ip("addr", "add", net + ".1/24", "dev", outside)
        ip("link", "set", outside, "up")
        ip("-n", name, "addr", "add", net + ".2/24", "dev", "uplink")
        ip("-n", name, "link", "set", "uplink", "up")


def available():
    """Why the hosts cannot be made here, or None."""
    if os.geteuid() != 0:
        return "needs root for network namespaces"
    if shutil.which("ip") is None:
        return "needs `ip` (Debian's iproute2)"
    return None


def staged(workdir, index):
    """The files host `index` has staged and not uploaded (in progress)."""
    found = []
    for root, _, files in os.walk(os.path.join(workdir, HOSTS[index][0] + "-tmp")):
        found += [os.path.join(root, f) for f in files if f.endswith(".inprogress")]
    return found


def start(binary, workdir, index, args, s3_port, env):
    name, _, net = HOSTS[index]
    tmp = os.path.join(workdir, name + "-tmp")
    os.makedirs(tmp, exist_ok=True)
    host_env = dict(env, TMPDIR=tmp, AWS_ENDPOINT_URL=f"http://{net}.1:{s3_port}")
    log = open(os.path.join(workdir, f"{name}.log"), "a")
    return subprocess.Popen(
        ["ip", "netns", "exec", name, binary, "run", "--processes", "2", "--process", str(index),
         "--hostfile", os.path.join(workdir, "hosts"), *args],
        env=host_env, stdout=log, stderr=subprocess.PIPE)


def check(binary, workdir, s3_port, options, rng, check):
    """Runs the two hosts; `check(ok, message)` records each result. Returns the differences
    lake_check found, or None if skipped."""
    why = available()
    if why:
        print(f"SKIP two hosts: {why}")
        return None
    env = dict(os.environ, **options)
    workdir = os.path.join(workdir, "two-hosts")
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    with open(os.path.join(workdir, "hosts"), "w") as f:
        f.write("".join(f"{addr}:{PORT}\n" for _, addr, _ in HOSTS))
    lake = "s3://lake/two-hosts"
    views_out = os.path.join(workdir, "views.json")
    # The rate spaces the generated timestamps: the reference runs at the same. The first
    # timestamp is fixed: from `now`, the two runs' minutes differed when they straddled one.
    gen = ["--count", "60000", "--seed", "17", "--bad-fraction", "0.01",
           "--start", "2025-01-01T00:00:00Z"]
    source = ["--source", "generate", "--rate", "15000", *gen]
    events = os.path.join(workdir, "events.jsonl")
    subprocess.run([binary, "generate", *gen, "-o", events], check=True)
    reference = os.path.join(workdir, "reference.json")
    subprocess.run([binary, "run", "--quiet", "--until-exhausted", "--no-lake", "--workers", "4",
                    *source, "--views-out", reference], check=True)
    args = ["--quiet", "--no-serve", "--until-exhausted", "--workers", "2",
            "--commit-interval", "300ms", *source, "--data-dir", lake, "--views-out", views_out]
    setup()
    try:
        hosts = [start(binary, workdir, i, args, s3_port, env) for i in range(2)]
        delay = rng.uniform(2.0, 3.5)
        time.sleep(delay)
        lost = hosts[1].poll() is None
        if lost:
            hosts[1].kill()
        hosts[1].wait()
        try:
            hosts[0].wait(timeout=60)
            first = hosts[0].stderr.read().decode().strip().splitlines()
        except subprocess.TimeoutExpired:
            hosts[0].kill()
            first = ["still running 60 s after its peer died"]
        check(lost and hosts[0].returncode != 0 and len(first) == 1,
              f"host 1 killed after {delay:.1f}s; host 0 stops by itself: {first}")
        left = [len(staged(workdir, i)) for i in range(2)]
        print(f"files in progress left in each host's staging directory: {left}")
        hosts = [start(binary, workdir, i, args, s3_port, env) for i in range(2)]
        codes = [h.wait(timeout=600) for h in hosts]
        errors = [h.stderr.read().decode().strip() for h in hosts]
        check(codes == [0, 0], f"both hosts started again run to the end: {codes} {errors}")
        left = staged(workdir, 0) + staged(workdir, 1)
        check(not left, f"no host keeps a staged file of the runs that stopped: {left[:2]}")
    finally:
        teardown()
    same = os.path.exists(views_out) and json.load(open(views_out))["views"] == json.load(open(reference))["views"]
    check(same, "the two hosts' views equal those of one process with 4 workers")
    verify = subprocess.run([binary, "verify", "--data-dir", lake], env=env, capture_output=True, text=True)
    check(verify.returncode == 0, f"verify of the two hosts' lake: {verify.stdout.strip()} {verify.stderr.strip()}")
    # Workers 0 and 1 are host 0's, 2 and 3 host 1's: each uploaded its own files.
    fs = lake_check.filesystem(options)
    objects = fs.get_file_info(pyarrow.fs.FileSelector("lake/two-hosts/events", recursive=True))
    writers = sorted({w for o in objects for w in ("w000", "w001", "w002", "w003") if f"-{w}-" in o.path})
    check(writers == ["w000", "w001", "w002", "w003"], f"both hosts' workers wrote data files to the bucket: {writers}")
    print("the two hosts' lake read back from the bucket:")
    return lake_check.main(lake, events, views_out, binary, options)
