"""The v1 driver on the real kernel of a v1 or hybrid host."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest

from kobako.cgroups import detect, load_manager, new_manager
from kobako.cgroups.devices import reduce_rules, rule_line
from kobako.cgroups.v1 import V1Manager
from kobako.errors import FailedPrecondition, InvalidArgument

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0 or detect() != "v1", reason="needs root on a cgroup v1/hybrid host"),
]


def _read(mgr: V1Manager, controller: str, name: str) -> str:
    with open(os.path.join(mgr.dirs[controller], name)) as f:
        return f.read().strip()


@pytest.fixture
def mgr(parent: str) -> V1Manager:
    m = new_manager(parent + "/c1", "c1")
    assert isinstance(m, V1Manager)
    m.create()
    return m


def test_limits_land_in_cgroupfs(mgr: V1Manager) -> None:
    mgr.apply(
        {
            "memory": {"limit": 64 << 20, "reservation": 32 << 20, "swappiness": 0},
            "pids": {"limit": 16},
            "cpu": {"shares": 512, "quota": 20000, "period": 100000, "cpus": "0"},
        }
    )
    assert _read(mgr, "memory", "memory.limit_in_bytes") == str(64 << 20)
    assert _read(mgr, "memory", "memory.soft_limit_in_bytes") == str(32 << 20)
    assert _read(mgr, "pids", "pids.max") == "16"
    assert _read(mgr, "cpu", "cpu.shares") == "512"
    assert _read(mgr, "cpu", "cpu.cfs_quota_us") == "20000"
    assert _read(mgr, "cpuset", "cpuset.cpus") == "0"
    if "memory.memsw.limit_in_bytes" in os.listdir(mgr.dirs["memory"]):
        mgr.apply({"memory": {"limit": 32 << 20, "swap": 48 << 20}})
        assert _read(mgr, "memory", "memory.memsw.limit_in_bytes") == str(48 << 20)
        mgr.apply({"memory": {"limit": 128 << 20, "swap": 256 << 20}})  # raising: memsw must go first
        assert _read(mgr, "memory", "memory.limit_in_bytes") == str(128 << 20)


def test_task_lifecycle(mgr: V1Manager, procs, parent: str) -> None:
    child = procs.sleep()
    mgr.add_task(child.pid)
    assert mgr.pids() == [child.pid]
    groups = procs.cgroups(child.pid)
    assert all(
        path == parent + "/c1" for key, path in groups.items() if key in ("pids", "memory", "name=systemd")
    )
    assert any(k.split(",")[0] in ("cpu", "cpuacct") for k in groups)

    mgr.freeze()
    assert mgr.is_frozen()
    assert procs.state(child.pid) == "D"  # the v1 freezer parks tasks in an uninterruptible sleep
    mgr.thaw()
    assert not mgr.is_frozen()
    for _ in range(100):
        if procs.state(child.pid) == "S":
            break
        time.sleep(0.01)
    assert procs.state(child.pid) == "S"

    stats = mgr.stats()
    assert stats["pids"]["current"] == 1
    assert stats["memory"]["usage"]["limit"] > 0  # v1 does not move a task's old charges: usage may be 0
    assert "total" in stats["cpu"]["usage"]

    # A later process re-opens the cgroup from the stored path alone.
    code = f"from kobako.cgroups import load_manager; print(load_manager({mgr.path!r}).pids())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"[{child.pid}]"

    load_manager(mgr.path).kill_all(signal.SIGTERM)
    assert child.wait(timeout=5) == -signal.SIGTERM
    mgr.remove()
    assert not mgr.exists()
    assert not any(os.path.exists(d) for d in mgr.dirs.values())


def test_kill_all_reaches_a_paused_container(mgr: V1Manager, procs) -> None:
    children = [procs.sleep(), procs.sleep()]
    for c in children:
        mgr.add_task(c.pid)
    mgr.freeze()
    mgr.kill_all(signal.SIGKILL)
    assert [c.wait(timeout=5) for c in children] == [-9, -9]
    assert not mgr.is_frozen()
    mgr.remove()


def test_memory_limit_below_usage_is_refused(mgr: V1Manager, procs) -> None:
    # The child touches 48 MiB only after joining (memory is charged where it is touched); no swap to evict to.
    child = procs.python(
        "import sys, time\nsys.stdin.readline()\nx = bytearray(48 << 20)\nprint(1, flush=True)\ntime.sleep(60)",
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    mgr.add_task(child.pid)
    child.stdin.write(b"\n")
    child.stdin.flush()
    child.stdout.readline()
    assert int(_read(mgr, "memory", "memory.usage_in_bytes")) > 40 << 20
    with open("/proc/swaps") as f:
        if len(f.read().splitlines()) > 1:
            pytest.skip("with swap the kernel can meet the lower limit by swapping out")
    with pytest.raises(
        FailedPrecondition, match=r"'4194304' to .*/memory\.limit_in_bytes: Device or resource busy"
    ):
        mgr.apply({"memory": {"limit": 4 << 20}})


def test_invalid_value_from_the_kernel(mgr: V1Manager) -> None:
    with pytest.raises(InvalidArgument, match=r"cpu\.cfs_period_us"):
        mgr.apply({"cpu": {"period": 10}})  # below the kernel's 1 ms minimum
    with pytest.raises(InvalidArgument, match=r"cpuset\.cpus"):
        mgr.apply({"cpu": {"cpus": "999"}})


def test_device_rules_keep_a_process_from_a_device(mgr: V1Manager, procs) -> None:
    mgr.apply(
        {
            "devices": [
                {"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rw"},  # /dev/zero
                {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "r"},  # /dev/null, read only
            ]
        }
    )
    code = (
        "import sys\nsys.stdin.readline()\n"
        "for path, mode in (('/dev/zero', 'w'), ('/dev/null', 'r'), ('/dev/null', 'w'), ('/dev/full', 'r')):\n"
        "    try:\n        open(path, mode).close(); print('ok')\n"
        "    except OSError as e:\n        print(e.errno)\n"
    )
    child = procs.python(code, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    mgr.add_task(child.pid)
    out, _ = child.communicate("\n", timeout=10)
    assert out.split() == ["ok", "ok", "1", "1"]


@pytest.mark.parametrize(
    "entries",
    [
        [
            {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "w"},
        ],
        [
            {"allow": True, "type": "c", "access": "r"},
            {"allow": True, "type": "c", "access": "w"},
            {"allow": True, "type": "b", "major": 8, "access": "m"},
        ],
        [
            {"allow": True},
            {"allow": False},
            {"allow": True, "type": "b", "minor": 1, "access": "rw"},
            {"allow": False, "type": "b", "minor": 1, "access": "r"},
        ],
    ],
)
def test_reduced_rules_match_what_the_kernel_keeps(mgr: V1Manager, entries: list) -> None:
    """devices.py models the kernel's list handling; replay the raw entries here and compare."""
    d = mgr.dirs["devices"]
    with open(d + "/devices.deny", "w") as f:
        f.write("a")
    for e in entries:
        line = f"{e.get('type', 'a')} {e.get('major', '*')}:{e.get('minor', '*')} {e.get('access', 'rwm')}"
        with open(d + ("/devices.allow" if e["allow"] else "/devices.deny"), "w") as f:
            f.write(line)
    default_allow, rules = reduce_rules(entries)
    assert not default_allow
    assert sorted(_read(mgr, "devices", "devices.list").splitlines()) == sorted(rule_line(r) for r in rules)


def test_relative_path_lands_under_our_own_cgroups(parent: str, procs, cleanup_dirs: list[str]) -> None:
    mgr = new_manager(parent.lstrip("/") + "-rel/c", "c")
    cleanup_dirs.extend(os.path.dirname(d) for d in set(mgr.dirs.values()))
    mgr.create()
    child = procs.sleep()
    mgr.add_task(child.pid)
    with open("/proc/self/cgroup") as f:
        own = {line.split(":")[1]: line.strip().split(":", 2)[2] for line in f}
    for key, path in procs.cgroups(child.pid).items():
        if key in own and key != "":
            assert path == own[key].rstrip("/") + parent + "-rel/c"
    assert load_manager(mgr.path).pids() == [child.pid]
    child.kill()
    child.wait()
    mgr.remove()


def test_hugetlb_on_a_hybrid_host_goes_through_cgroup2(mgr: V1Manager) -> None:
    unified = mgr.dirs.get("")
    if "hugetlb" in mgr.dirs or unified is None:
        pytest.skip("hugetlb is a v1 controller here, or there is no cgroup2 mount")
    with open(mgr.unified_mount + "/cgroup.controllers") as f:
        if "hugetlb" not in f.read().split():
            pytest.skip("no hugetlb controller on the cgroup2 side")
    with open(mgr.unified_mount + "/cgroup.subtree_control") as f:
        was_enabled = "hugetlb" in f.read().split()
    try:
        mgr.apply({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 21}]})
        with open(unified + "/hugetlb.2MB.max") as f:
            assert f.read().strip() == str(4 << 21)
        assert mgr.stats()["hugetlb"]["2MB"]["max"] == 4 << 21
    finally:
        if not was_enabled:  # put the host's root back as it was once our cgroups are gone
            mgr.remove()
            for d in (os.path.dirname(unified), mgr.unified_mount):
                with contextlib.suppress(FileNotFoundError), open(d + "/cgroup.subtree_control", "w") as f:
                    f.write("-hugetlb")


def test_join_from_the_child_itself(mgr: V1Manager, procs, parent: str) -> None:
    code = (
        "import sys, time\n"
        "from kobako.cgroups import load_manager\n"
        f"t = time.perf_counter(); load_manager({mgr.path!r}).join(); took = time.perf_counter() - t\n"
        "print(took, flush=True); time.sleep(60)\n"
    )
    child = procs.python(code, stdout=subprocess.PIPE, text=True)
    took = float(child.stdout.readline())
    assert mgr.pids() == [child.pid]
    groups = procs.cgroups(child.pid)
    assert all(groups[k] == parent + "/c1" for k in groups if k and k.split(",")[0] in mgr.dirs)
    assert took < 0.5
    mgr.kill_all(signal.SIGKILL)
    child.wait(timeout=5)
