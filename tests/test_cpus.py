"""The CPU count behind n_threads=None (fastae/cpus.h): the affinity mask, capped by the control
group's CPU bandwidth limit rounded up. The engine's reading of this machine's files against a
reference written here from the kernel's documentation of the files (cgroup v2's cpu.max, v1's
cpu.cfs_quota_us and cpu.cfs_period_us, /proc/self/cgroup, /proc/<pid>/mountinfo); and, where the
tests may make a control group (root, a cgroup v1 cpu hierarchy or a v2 one with the cpu
controller), child processes run under limits of 0.5, 1 and 1.5 CPUs. The engine's parsing of
made-up layouts and malformed files: csrc/tests/test_cpus.cpp."""

import json
import math
import os
import re
import subprocess
import sys
import textwrap

import pytest
from conftest import REPO

import fastae

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="control groups are Linux's")


def unescape(field):
    """mountinfo's \\ooo octal escapes (a space is \\040)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def reference_limit():
    """The smallest quota / period on the path from this process's groups up to their mounts'
    roots, over v2 and v1's cpu controller; 0.0 when none."""
    mounts = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            before, _, after = line.partition(" - ")
            fields, tail = before.split(), after.split()
            if len(fields) >= 5 and len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
                mounts.append((unescape(fields[3]), unescape(fields[4]), tail[0], tail[2].split(",")))
    limits = []
    with open("/proc/self/cgroup") as f:
        for line in f:
            number, controllers, path = line.rstrip("\n").split(":", 2)
            v2 = number == "0" and controllers == ""
            if not (v2 or "cpu" in controllers.split(",")):
                continue
            for root, point, fstype, options in mounts:
                if fstype != ("cgroup2" if v2 else "cgroup") or (not v2 and "cpu" not in options):
                    continue
                if root != "/" and path != root and not path.startswith(root + "/"):
                    continue
                below = path if root == "/" else path[len(root):]
                parts = [p for p in below.split("/") if p]
                for depth in range(len(parts), -1, -1):
                    folder = os.path.join(point, *parts[:depth])
                    try:
                        if v2:
                            quota, period = open(os.path.join(folder, "cpu.max")).read().split()
                        else:
                            quota = open(os.path.join(folder, "cpu.cfs_quota_us")).read().strip()
                            period = open(os.path.join(folder, "cpu.cfs_period_us")).read().strip()
                    except (OSError, ValueError):
                        continue
                    if quota.isdigit() and period.isdigit() and int(quota) > 0 and int(period) > 0:
                        limits.append(int(quota) / int(period))
                break
    return min(limits, default=0.0)


@linux_only
def test_this_process_matches_the_reference_reading():
    limit = reference_limit()
    assert fastae.cpu_limit() == pytest.approx(limit, rel=1e-12, abs=0.0)
    affinity = len(os.sched_getaffinity(0))
    assert fastae._core.affinity_cpus() == affinity
    want = min(affinity, max(1, math.ceil(limit))) if limit > 0 else affinity
    assert fastae.available_cpus() == want
    assert fastae.resolve_n_threads(None) == want
    assert f"CPUs available to this process: {want} (affinity mask: {affinity}, cgroup CPU limit: " in \
        fastae.show_config(file=open(os.devnull, "w"))


CHILD = textwrap.dedent("""
    import json, warnings
    import numpy as np
    import fastae
    from fastae import Autoencoder
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        X = np.random.default_rng(0).uniform(size=(64, 8)).astype(np.float32)
        Autoencoder(hidden_layer_sizes=(4,), epochs=1, n_threads=2, random_state=0).fit(X)
    print(json.dumps({"cpus": fastae.available_cpus(), "limit": fastae.cpu_limit(),
                      "default": fastae.resolve_n_threads(None),
                      "warned": [str(w.message) for w in caught if "n_threads" in str(w.message)]}))
""")


def make_group(name):
    """A new control group with the cpu controller, as (folder, write_limit(quota, period)), or a
    reason it cannot be made here."""
    v1 = "/sys/fs/cgroup/cpu"
    if os.path.isfile(os.path.join(v1, "cpu.cfs_period_us")):
        folder = os.path.join(v1, name)

        def write_v1(quota, period):
            with open(os.path.join(folder, "cpu.cfs_period_us"), "w") as f:
                f.write(str(period))
            with open(os.path.join(folder, "cpu.cfs_quota_us"), "w") as f:
                f.write(str(quota))
        return folder, write_v1
    v2 = "/sys/fs/cgroup"
    try:
        delegated = "cpu" in open(os.path.join(v2, "cgroup.subtree_control")).read().split()
    except OSError:
        delegated = False
    if not delegated:
        return None, "no cgroup v1 cpu hierarchy, and the v2 root does not delegate the cpu controller"
    folder = os.path.join(v2, name)

    def write_v2(quota, period):
        with open(os.path.join(folder, "cpu.max"), "w") as f:
            f.write(f"{quota} {period}")
    return folder, write_v2


@linux_only
def test_a_child_under_a_cpu_limit_counts_the_limit():
    folder, write_limit = make_group(f"fastae_test_{os.getpid()}")
    if folder is None:
        pytest.skip(write_limit)
    try:
        os.mkdir(folder)
    except OSError as e:
        pytest.skip(f"cannot make a control group here ({e})")
    try:
        affinity = len(os.sched_getaffinity(0))

        def join_group():  # in the child, before it runs Python
            with open(os.path.join(folder, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
        for quota, period in ((50_000, 100_000), (100_000, 100_000), (150_000, 100_000)):
            write_limit(quota, period)
            proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120,
                                  cwd=REPO, preexec_fn=join_group)
            assert proc.returncode == 0, proc.stderr[-3000:]
            got = json.loads(proc.stdout.strip().splitlines()[-1])
            want = min(affinity, math.ceil(quota / period))
            assert got["limit"] == pytest.approx(quota / period)
            assert got["cpus"] == got["default"] == want
            # Asking for more threads than the limit allows: clamped, with a warning that says so.
            assert bool(got["warned"]) == (want < 2), got
        # A limit changed while the process runs: the engine reads the files at most once a second.
        write_limit(100_000, 100_000)
        watch = "import sys, time, fastae\n" \
                "print(fastae.cpu_limit(), flush=True); t = time.monotonic(); sys.stdin.readline()\n" \
                "print(fastae.cpu_limit(), time.monotonic() - t, flush=True); time.sleep(1.1)\n" \
                "print(fastae.cpu_limit(), flush=True)\n"
        child = subprocess.Popen([sys.executable, "-c", watch], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 text=True, cwd=REPO, preexec_fn=join_group)
        try:
            assert float(child.stdout.readline()) == 1.0
            write_limit(150_000, 100_000)
            child.stdin.write("go\n")
            child.stdin.flush()
            second, after = map(float, child.stdout.readline().split())
            if after < 0.95:  # within the second (a loaded machine may take longer): the last reading
                assert second == 1.0
            assert float(child.stdout.readline()) == 1.5  # after it: read again
        finally:
            child.kill()
            child.wait()
    finally:
        os.rmdir(folder)
