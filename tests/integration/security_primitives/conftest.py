"""Integration tests of the security primitives: real kernel, forked children, root only.

The ``child`` fixture runs a primitive in a forked child and brings back what it saw.

Every child ends in ``os._exit`` (or ``execve``), is reaped by the parent, and is killed if it
outlives its timeout, so a broken filter never hangs or leaks a process.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import pytest

BUSYBOX = "/bin/busybox"


@dataclass
class ChildResult:
    status: int  # as returned by waitpid
    value: object = None
    error: str | None = None  # the child's traceback, when fn raised
    output: bytes = b""  # stdout+stderr of an exec'd child

    @property
    def exit_code(self) -> int | None:
        return os.waitstatus_to_exitcode(self.status) if os.WIFEXITED(self.status) else None

    @property
    def signal(self) -> int | None:
        return os.WTERMSIG(self.status) if os.WIFSIGNALED(self.status) else None

    def ok(self) -> object:
        """The child's return value; fails the test with the child's traceback otherwise."""
        assert self.error is None, f"child raised:\n{self.error}"
        assert self.exit_code == 0, f"child ended with status {self.status:#x} (signal {self.signal})"
        return self.value


def _read_all(fd: int, pid: int, timeout: float) -> bytes:
    chunks = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(left, 0))
        if not ready:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(fd)
            pytest.fail(f"child {pid} still running after {timeout}s: killed")
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def call_in_child(fn: Callable[[], object], timeout: float = 20) -> ChildResult:
    """Fork; the child runs ``fn`` and pickles back its result (or traceback), then ``_exit``s."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns into pytest
        code = 70
        try:
            os.close(r)
            try:
                payload: tuple[str, object] = ("ok", fn())
                code = 0
            except BaseException:
                payload = ("error", traceback.format_exc())
                code = 1
            data = pickle.dumps(payload)
            view = memoryview(data)
            while view:
                view = view[os.write(w, view) :]
        finally:
            os._exit(code)
    os.close(w)
    data = _read_all(r, pid, timeout)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    result = ChildResult(status)
    if data:
        kind, value = pickle.loads(data)
        if kind == "ok":
            result.value = value
        else:
            result.error = str(value)
    return result


def exec_in_child(prepare: Callable[[], None], argv: list[str], timeout: float = 20) -> ChildResult:
    """Fork; the child runs ``prepare`` then execs ``argv`` with stdout+stderr to the parent."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.dup2(w, 1)
            os.dup2(w, 2)
            prepare()
            os.execv(argv[0], argv)
        except BaseException:
            os.write(2, traceback.format_exc().encode())
        finally:
            os._exit(127)
    os.close(w)
    output = _read_all(r, pid, timeout)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    return ChildResult(status, output=output)


def status_fields(text: str) -> dict[str, str]:
    """``/proc/<pid>/status`` as a dict."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def own_status() -> dict[str, str]:
    with open("/proc/self/status") as f:
        return status_fields(f.read())


class ChildRunner:
    """What the ``child`` fixture hands a test (pytest's importlib mode lets tests import no helpers)."""

    BUSYBOX = BUSYBOX
    call = staticmethod(call_in_child)
    exec = staticmethod(exec_in_child)
    status_fields = staticmethod(status_fields)
    own_status = staticmethod(own_status)


@pytest.fixture
def child() -> ChildRunner:
    if not os.access(BUSYBOX, os.X_OK):
        pytest.skip(f"{BUSYBOX} is missing (Debian: busybox-static)")
    return ChildRunner()
