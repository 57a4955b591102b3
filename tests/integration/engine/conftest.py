"""Fixtures for engine tests: a private KOBAKO_ROOT per test with a busybox image, driven through the real
`kobako` launcher; teardown removes every container and checks no mount, cgroup or monitor is left."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

KOBAKO = str(Path(sys.executable).parent / "kobako")


class Kobako:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = dict(os.environ, KOBAKO_ROOT=str(root), KOBAKO_RESTART_BACKOFF="0.2")

    def __call__(self, *args: str, check: bool = True, timeout: float = 60, input: bytes | None = None,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess:  # fmt: skip
        # Files, not pipes: nothing a test starts may keep our pipes open.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.run([KOBAKO, *args], stdout=out, stderr=err, timeout=timeout, check=False,
                                  input=input, env={**self.env, **(env or {})})  # fmt: skip
            out.seek(0)
            err.seek(0)
            proc.stdout = out.read().decode(errors="replace")
            proc.stderr = err.read().decode(errors="replace")
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kobako {' '.join(args)} exited {proc.returncode}: {proc.stderr}{proc.stdout}"
            )
        return proc

    def run_d(self, *args: str) -> str:
        return self("run", "-d", *args).stdout.strip()

    def inspect(self, ref: str) -> dict:
        return json.loads(self("inspect", ref).stdout)[0]

    def status(self, ref: str) -> str:
        return self.inspect(ref)["State"]["Status"]

    def ids(self) -> list[str]:
        base = self.root / "containers"
        return [d for d in os.listdir(base) if len(d) == 64] if base.exists() else []

    def cleanup(self) -> None:
        ids = self.ids()
        for cid in ids:
            self("rm", "-f", cid, check=False)
        leftovers = check_clean(self.root, ids)
        assert not leftovers, leftovers


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def check_clean(root: Path, ids: list[str]) -> list[str]:
    """What a test left behind: mounts under root, container cgroups, live monitors. A monitor forked for a
    `run` that then failed early ends on its own once it sees the CLI gave up: allow it a moment."""
    wait_for(lambda: not _processes(root), timeout=3)
    problems = [f"process {pid} still runs with KOBAKO_ROOT={root}" for pid in _processes(root)]
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    problems += [f"mount {p}" for p in points if p.startswith(str(root))]
    for cid in ids:
        for hierarchy in os.listdir("/sys/fs/cgroup"):
            path = f"/sys/fs/cgroup/{hierarchy}/kobako/{cid}"
            if os.path.exists(path):
                problems.append(f"cgroup {path}")
    return problems


def _processes(root: Path) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                environ = f.read()
        except OSError:
            continue
        if f"KOBAKO_ROOT={root}\0".encode() in environ + b"\0" and int(pid) != os.getpid():
            found.append(pid)
    return found


@pytest.fixture
def kobako(tmp_path: Path, busybox_tar: Path) -> Kobako:  # type: ignore[misc]
    k = Kobako(tmp_path / "root")
    k("import", str(busybox_tar), "busybox")
    yield k
    k.cleanup()
