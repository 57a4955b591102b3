"""Forking the monitor: ``Prefork`` early in the CLI, then ``go`` once the container is ready.

Forked first (while the CLI is small), the monitor keeps little memory; preloading the runtime while it
waits takes those imports off the critical path (2 cores). See kobako.engine.monitor for what it does.
"""

from __future__ import annotations

import os

from kobako.engine.clock import rfc3339
from kobako.errors import Internal

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket

    from kobako.engine.containers import ContainerRecord, ContainerStore


class Prefork:
    """A monitor forked *before* the CLI imports the image store and the spec generator: its memory is only
    what it needs (the forked interpreter shares the CLI's heap as it was at fork time). It waits on a pipe
    for ``go(record)``; if the CLI exits or fails first, the pipe closes and it ends silently.

    fork, setsid, fork: the monitor is no child of the CLI, has no terminal, and outlives it.
    """

    def __init__(self) -> None:
        import _socket  # not socket: that module imports enum and selectors (~10 ms of every run)

        self.sock, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
        go_r, self.go_w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                self.sock.close()
                os.close(self.go_w)
                os.setsid()
                if os.fork() == 0:
                    _wait_for_go(go_r, theirs)
                code = 0
            finally:
                os._exit(code)
        theirs.close()
        os.close(go_r)
        os.waitpid(pid, 0)

    def go(self, store: ContainerStore, record: ContainerRecord) -> socket.socket:
        """Hand over ``record`` (saved, rootfs mounted); the CLI's end of the monitor's attach socket."""
        try:
            os.write(self.go_w, f"{store.dir}\n{record.id}\n".encode())
        except OSError as exc:  # EPIPE: it died; never let this pass as a quiet success
            raise Internal(
                f"the container's monitor exited before it was given the container: {exc}"
            ) from exc
        finally:
            os.close(self.go_w)
            self.go_w = -1
        return self.sock

    def cancel(self) -> None:
        if self.go_w >= 0:
            os.close(self.go_w)
            self.go_w = -1
        self.sock.close()


def spawn(store: ContainerStore, record: ContainerRecord) -> socket.socket:
    """Fork the monitor for ``record`` now (callers that can, fork a Prefork earlier)."""
    return Prefork().go(store, record)


def _wait_for_go(go_r: int, sock: socket.socket) -> None:
    devnull = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    # Drop the CLI's other fds (a caller's pipe kept open would make it wait for us).
    for fd in range(3, 1024):
        if fd not in (go_r, sock.fileno()):
            try:
                os.close(fd)
            except OSError:
                pass
    try:
        _preload()
    except Exception:  # only an optimisation: the same imports happen (and fail loudly) after go
        pass
    data = b""
    while not data.endswith(b"\n") or data.count(b"\n") < 2:
        chunk = os.read(go_r, 4096)
        if not chunk:
            os._exit(0)  # the CLI gave up (or died) before the task was to start
        data += chunk
    os.close(go_r)
    directory, cid = data.decode().split("\n")[:2]
    from kobako.engine.containers import ContainerStore

    store = ContainerStore(os.path.dirname(directory))
    code = 0
    try:
        from kobako.engine.monitor import Monitor

        Monitor(store, store.load(cid), sock).run()
    except BaseException as exc:
        code = 1
        try:
            import traceback

            with open(store.path(cid, "monitor.log"), "a") as f:
                f.write(f"{rfc3339()} monitor failed: {exc!r}\n")
                traceback.print_exception(exc, file=f)
        except BaseException:
            pass
    os._exit(code)


def _preload() -> None:
    """Import what starting a task needs while the CLI is still preparing the container: on another core,
    these imports leave the critical path (the monitor would load them right after go anyway)."""
    import hashlib  # noqa: F401  # the seccomp filter cache's key (OpenSSL: ~4 ms to load)
    import select  # noqa: F401

    from kobako.cgroups import detect
    from kobako.engine import logs, monitor, restart  # noqa: F401
    from kobako.runtime.lifecycle import create, delete, start  # noqa: F401
    from kobako.runtime.security import capabilities, seccomp  # noqa: F401

    if detect() == "v2":
        import kobako.cgroups.v2
    else:
        import kobako.cgroups.v1  # noqa: F401
