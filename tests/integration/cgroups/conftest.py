"""Real-kernel cgroup fixtures: a unique /kobako-test-<random> parent and child processes, both torn down
even when a test fails (processes killed first, then every directory under the parent in every hierarchy)."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time

import pytest

CGROUP_ROOT = "/sys/fs/cgroup"


def _skip_unless_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root and the real cgroup filesystem")


def _all_mounts() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [
            line.split(" - ")[0].split()[4]
            for line in f
            if line.split(" - ")[1].split()[0] in ("cgroup", "cgroup2")
            and line.split()[4].startswith(CGROUP_ROOT)
        ]


def _remove_tree(path: str) -> None:
    """Kill whatever is left inside, then rmdir bottom-up (cgroup dirs hold only kernel files)."""
    if not os.path.isdir(path):
        return
    for dirpath, _dirs, _files in os.walk(path, topdown=False):
        try:
            with open(os.path.join(dirpath, "cgroup.procs")) as f:
                pids = [int(p) for p in f.read().split()]
        except OSError:
            pids = []
        for state in ("freezer.state", "cgroup.freeze"):  # frozen tasks cannot die
            try:
                with open(os.path.join(dirpath, state), "w") as f:
                    f.write("THAWED" if state == "freezer.state" else "0")
            except OSError:
                pass
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for _ in range(100):
            try:
                os.rmdir(dirpath)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.01)


@pytest.fixture
def parent() -> str:
    """A unique absolute cgroup path; everything under it is removed in every hierarchy afterwards."""
    _skip_unless_root()
    name = "/kobako-test-" + secrets.token_hex(4)
    yield name
    for mount in _all_mounts():
        _remove_tree(mount + name)
    leftovers = [m + name for m in _all_mounts() if os.path.exists(m + name)]
    assert not leftovers, f"cgroups left behind: {leftovers}"


@pytest.fixture
def cleanup_dirs() -> list[str]:
    """Extra cgroup directories (full paths) a test creates outside ``parent``; removed like it."""
    _skip_unless_root()
    dirs: list[str] = []
    yield dirs
    for d in sorted(dirs, key=len, reverse=True):
        _remove_tree(d)
    assert not [d for d in dirs if os.path.exists(d)], "cgroups left behind"


class Procs:
    def __init__(self) -> None:
        self.started: list[subprocess.Popen] = []

    def sleep(self, seconds: int = 60) -> subprocess.Popen:
        p = subprocess.Popen(["sleep", str(seconds)])
        self.started.append(p)
        return p

    @staticmethod
    def state(pid: int) -> str:
        """The one-letter State from /proc/PID/status."""
        with open(f"/proc/{pid}/status") as f:
            return next(line.split()[1] for line in f if line.startswith("State:"))

    @staticmethod
    def cgroups(pid: int) -> dict[str, str]:
        """/proc/PID/cgroup as controller list → path."""
        with open(f"/proc/{pid}/cgroup") as f:
            return {line.split(":")[1]: line.rstrip("\n").split(":", 2)[2] for line in f}

    def python(self, code: str, **kwargs: object) -> subprocess.Popen:
        p = subprocess.Popen([sys.executable, "-c", code], **kwargs)  # type: ignore[call-overload]
        self.started.append(p)
        return p


@pytest.fixture
def procs(parent: str) -> Procs:
    """Child processes, reaped before ``parent`` removes the cgroups they were in."""
    tracker = Procs()
    yield tracker
    for p in tracker.started:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)
