"""Typed messages between the runtime and the processes it forks, over a pair of pipes.

A message is one line: ``KIND[ PAYLOAD]\\n``. Pipes (not a socketpair) because ``import socket`` costs
milliseconds on every container start. A closed channel reads as ``("eof", "")``.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

USERNS = "userns"  # child → parent: user namespace made, write my id maps
MAPPED = "mapped"  # parent → child: maps written
GO = "go"  # parent → init: createRuntime hooks done, carry on
CGROUP = "cgroup"  # parent → intermediate: the cgroup exists (payload: its path, then NUL-separated the
#                   files to write "0" to; "" for none): join it
LIMITED = "limited"  # parent → init: the cgroup's limits are written (the init waits for it before READY)
PID = "pid"  # intermediate → parent: the container init's PID (host view)
HOOKS = "hooks"  # init → parent: namespaces ready, run createRuntime hooks
READY = "ready"  # init → parent: everything up to the start barrier is done
ERROR = "error"  # any → parent: a failure, payload is the message
EOF = "eof"


class Channel:
    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd
        self._buf = b""

    @classmethod
    def pair(cls) -> tuple[Channel, Channel]:
        """Two connected ends: (parent side, child side). All fds are close-on-exec."""
        down_r, down_w = os.pipe2(os.O_CLOEXEC)
        up_r, up_w = os.pipe2(os.O_CLOEXEC)
        return cls(up_r, down_w), cls(down_r, up_w)

    def send(self, kind: str, payload: str = "") -> None:
        line = (f"{kind} {payload}" if payload else kind).replace("\n", " ") + "\n"
        data = line.encode()
        while data:
            n = os.write(self.write_fd, data)
            data = data[n:]

    def recv(self) -> tuple[str, str]:
        while b"\n" not in self._buf:
            chunk = os.read(self.read_fd, 4096)
            if not chunk:
                return EOF, ""
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        kind, _, payload = line.decode().partition(" ")
        return kind, payload

    def expect(self, kind: str) -> str:
        """Receive a message of ``kind``; an error message or EOF raises."""
        got, payload = self.recv()
        if got == kind:
            return payload
        if got == ERROR:
            raise ChildError(payload)
        raise ChildError(f"container process exited early (waiting for {kind!r}, got {got!r})")

    def expect_all(self, *kinds: str) -> dict[str, str]:
        """Receive one message of each kind, in any order (two processes write to the same pipe)."""
        got: dict[str, str] = {}
        while len(got) < len(kinds):
            kind, payload = self.recv()
            if kind in kinds:
                got[kind] = payload
            elif kind == ERROR:
                raise ChildError(payload)
            else:
                raise ChildError(f"container process exited early (waiting for {kinds!r}, got {kind!r})")
        return got

    def close(self) -> None:
        for fd in (self.read_fd, self.write_fd):
            try:
                os.close(fd)
            except OSError:
                pass

    def close_read(self) -> None:
        try:
            os.close(self.read_fd)
        except OSError:
            pass


class ChildError(Exception):
    """A failure reported by (or inferred from) a forked container process."""


def report_error(chan: Channel, exc: BaseException) -> None:
    """Tell the parent what failed in a forked child (or, once nobody listens, the container's stderr)."""
    if os.environ.get("KOBAKO_DEBUG"):
        import traceback

        traceback.print_exception(exc)
    try:
        if isinstance(exc, OSError) and exc.strerror:
            msg = exc.strerror
            if exc.filename and str(exc.filename) not in msg:
                msg += f": {exc.filename}"
        else:
            msg = str(exc) or type(exc).__name__
    except Exception:
        msg = type(exc).__name__
    try:
        chan.send("error", msg)
    except OSError:
        # Past READY the parent has stopped listening: the container's stderr is all that is left.
        try:
            os.write(2, f"kobako-runtime: container process: {msg}\n".encode())
        except OSError:
            pass


def fork_reporting(work: Callable[[], None], parent_end: Channel, child_end: Channel) -> int:
    """Fork a child that closes the parent's end, runs ``work`` and always ``_exit``s: 0 if ``work``
    returns, 1 after reporting its exception on ``child_end``. Returns the child's PID in the parent."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            parent_end.close()
            work()
            code = 0
        except BaseException as exc:
            report_error(child_end, exc)
        finally:
            os._exit(code)
    return pid
