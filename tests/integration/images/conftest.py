"""The real ``kobako`` CLI on a private state root; every test checks nothing stays mounted under it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

KOBAKO = str(Path(__file__).resolve().parents[3] / ".venv" / "bin" / "kobako")


class Kobako:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {**os.environ, "KOBAKO_ROOT": str(root)}

    def __call__(self, *args: str, input: bytes | None = None, check: bool = True,
                 timeout: float = 120) -> subprocess.CompletedProcess:  # fmt: skip
        proc = subprocess.run([KOBAKO, *args], input=input, capture_output=True, env=self.env, timeout=timeout,
                              stdin=None if input is not None else subprocess.DEVNULL)  # fmt: skip
        proc.out = proc.stdout.decode(errors="replace")  # type: ignore[attr-defined]
        proc.err = proc.stderr.decode(errors="replace")  # type: ignore[attr-defined]
        if check and proc.returncode != 0:
            raise AssertionError(f"kobako {' '.join(args)} exited {proc.returncode}: {proc.err}")
        return proc

    def popen(self, *args: str, **kw: object) -> subprocess.Popen:
        return subprocess.Popen([KOBAKO, *args], env=self.env, **kw)  # type: ignore[call-overload]


def mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve()).rstrip("/") + "/"
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(prefix)]


@pytest.fixture
def kobako(tmp_path: Path) -> Iterator[Kobako]:
    k = Kobako(tmp_path / "root")
    yield k
    left = mounts_under(tmp_path)
    if left:
        from kobako.mount import unmount_all

        unmount_all(tmp_path, detach=True)
    assert left == [], f"left mounted: {left}"
