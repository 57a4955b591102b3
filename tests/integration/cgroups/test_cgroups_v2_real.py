"""The v2 driver on the real kernel: the whole host on a pure v2 machine, or the cgroup2 mount of a hybrid one
(/sys/fs/cgroup/unified: there only hugetlb is delegated, but the core files, the freezer, cgroup.kill and
eBPF device programs all work)."""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import subprocess
import time

import pytest

from kobako.cgroups import detect
from kobako.cgroups.v2 import V2Manager

ROOT = "/sys/fs/cgroup" if detect() == "v2" else "/sys/fs/cgroup/unified"

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(
        os.geteuid() != 0 or not os.path.exists(ROOT + "/cgroup.controllers"),
        reason="needs root and a cgroup2 mount",
    ),
]


@pytest.fixture
def root_controllers() -> None:
    """create() delegates every controller from the root down; give back what it enabled at the root
    (on a hybrid host that is host state: hugetlb in /sys/fs/cgroup/unified) once ``parent`` is gone."""
    with open(ROOT + "/cgroup.subtree_control") as f:
        before = set(f.read().split())
    yield
    with open(ROOT + "/cgroup.subtree_control") as f:
        added = set(f.read().split()) - before
    for controller in added:
        with open(ROOT + "/cgroup.subtree_control", "w") as f:
            f.write("-" + controller)


@pytest.fixture
def mgr(root_controllers: None, parent: str) -> V2Manager:
    m = V2Manager(parent + "/c1", root=ROOT)
    m.create()
    return m


def _ticker(procs):  # a child that prints a dot every 10 ms, read without blocking
    child = procs.python(
        "import sys, time\nsys.stdin.readline()\nwhile True:\n    sys.stdout.write('.'); sys.stdout.flush(); time.sleep(0.01)\n",
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    fl = fcntl.fcntl(child.stdout, fcntl.F_GETFL)
    fcntl.fcntl(child.stdout, fcntl.F_SETFL, fl | os.O_NONBLOCK)
    return child


def _drain(child) -> int:
    try:
        return len(os.read(child.stdout.fileno(), 65536))
    except BlockingIOError:
        return 0


def test_task_freeze_kill_remove(mgr: V2Manager, procs, parent: str) -> None:
    child = _ticker(procs)
    mgr.add_task(child.pid)
    child.stdin.write(b"\n")
    child.stdin.flush()
    assert mgr.pids() == [child.pid]
    assert procs.cgroups(child.pid)[""] == parent + "/c1"

    time.sleep(0.05)
    assert _drain(child) > 0
    mgr.freeze()
    assert mgr.is_frozen()
    _drain(child)
    time.sleep(0.1)
    assert _drain(child) == 0, "a frozen task makes no progress"
    mgr.thaw()
    assert not mgr.is_frozen()
    time.sleep(0.1)
    assert _drain(child) > 0

    stats = mgr.stats()
    assert stats["cpu"]["usage"]["total"] > 0

    mgr.kill_all(signal.SIGTERM)  # not SIGKILL: the freeze → signal → thaw path
    assert child.wait(timeout=5) == -signal.SIGTERM
    mgr.remove()
    assert not mgr.exists()


def test_kill_all_sigkill_uses_cgroup_kill(mgr: V2Manager, procs) -> None:
    children = [procs.sleep() for _ in range(3)]
    for c in children:
        mgr.add_task(c.pid)
    mgr.freeze()
    mgr.kill_all(signal.SIGKILL)
    assert [c.wait(timeout=5) for c in children] == [-9, -9, -9]
    mgr.remove()


def test_remove_takes_nested_cgroups(mgr: V2Manager) -> None:
    os.makedirs(mgr.dir + "/inner/deeper")
    mgr.remove()
    assert not mgr.exists()


def _probe(procs, mgr: V2Manager) -> list[str]:
    code = (
        "import sys\nsys.stdin.readline()\n"
        "for path, mode in (('/dev/zero', 'w'), ('/dev/null', 'r'), ('/dev/null', 'w'), ('/dev/full', 'r')):\n"
        "    try:\n        open(path, mode).close(); print('ok')\n"
        "    except OSError as e:\n        print(e.errno)\n"
    )
    child = procs.python(code, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    mgr.add_task(child.pid)
    out, _ = child.communicate("\n", timeout=10)
    return out.split()


def test_device_rules_through_an_ebpf_program(mgr: V2Manager, procs) -> None:
    mgr.apply(
        {
            "devices": [
                {"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rw"},
                {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "r"},
            ]
        }
    )
    eperm = str(errno.EPERM)
    assert _probe(procs, mgr) == ["ok", "ok", eperm, eperm]
    # An update replaces the program instead of stacking a second one on top.
    mgr.apply({"devices": [{"allow": True}, {"allow": False, "type": "c", "major": 1, "minor": 7}]})
    assert _probe(procs, mgr) == ["ok", "ok", "ok", eperm]
    from kobako.cgroups.v2.bpf import query

    fd = os.open(mgr.dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert len(query(fd)) == 1
    finally:
        os.close(fd)
