"""The collection lock (``<state root>/gc.lock``): GC takes it exclusively, writers of new roots share it.

Content and snapshots that an import or unpack has just made are referenced by no image until its record is
written. Holding the lock shared from the first commit to the image record keeps a concurrent GC from sweeping
them; the kernel drops an ``flock`` when its holder dies, even by ``kill -9``.
"""

from __future__ import annotations

import fcntl
import os

#: Label of an active snapshot being filled by an unpack: its owner's :func:`owner_token`.
UNPACK_LABEL = "kobako.unpack"


class GCLock:
    """``with GCLock(root, exclusive=False):`` — blocks until the lock is granted."""

    __slots__ = ("_exclusive", "_fd", "path")

    def __init__(self, root: str, *, exclusive: bool = False) -> None:
        self.path = os.path.join(root, "gc.lock")
        self._exclusive = exclusive
        self._fd = -1

    def __enter__(self) -> GCLock:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX if self._exclusive else fcntl.LOCK_SH)
        except BaseException:
            os.close(self._fd)
            self._fd = -1
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing the only descriptor releases the flock
            self._fd = -1


def owner_token() -> str:
    """``pid:starttime`` of this process: a label that outlives the process but not its identity."""
    pid = os.getpid()
    return f"{pid}:{_start_time(pid)}"


def owner_alive(token: str) -> bool:
    """Whether the process named by an :func:`owner_token` still runs (the same one, not a reused PID)."""
    pid, _, start = token.partition(":")
    if not pid.isdigit():
        return False
    return _start_time(int(pid)) == start and start != ""


def _start_time(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return ""
    # the command name (field 2) may contain spaces and parentheses: split after its last ')'
    fields = data[data.rfind(b")") + 2 :].split()
    return fields[19].decode() if len(fields) > 19 else ""
