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

    fork, setsid, fork: the monitor is no child of the CLI, has no terminal, and outlives it. ``reap_later``:
    the intermediate child is waited for in ``go``/``cancel`` (it is long gone by then) instead of now, so
    its setsid, fork and exit run beside the caller's next steps instead of before them.
    """

    def __init__(self, reap_later: bool = False) -> None:
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
        self._child = pid
        if not reap_later:
            self._reap()

    def _reap(self) -> None:
        pid = getattr(self, "_child", 0)  # 0 too for one made by Prefork.__new__ (the fork server's)
        if pid:
            self._child = 0
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass

    def hint_network(self) -> None:
        """The container will have networking: the monitor preloads the network library meanwhile."""
        from kobako.engine.monitor_net import HINT

        try:
            os.write(self.go_w, HINT)
        except OSError:
            pass  # it died: go reports that

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
            self._reap()
        return self.sock

    def cancel(self) -> None:
        if self.go_w >= 0:
            os.close(self.go_w)
            self.go_w = -1
        self.sock.close()
        self._reap()


def spawn(store: ContainerStore, record: ContainerRecord) -> socket.socket:
    """Fork the monitor for ``record`` now (callers that can, fork a Prefork earlier)."""
    return Prefork().go(store, record)


def _wait_for_go(go_r: int, sock: socket.socket) -> None:
    devnull = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    # Drop the CLI's other fds (a caller's pipe kept open would make it wait for us): close_range(2) calls.
    first = 3
    for keep in sorted((go_r, sock.fileno())):
        os.closerange(first, keep)
        first = keep + 1
    os.closerange(first, 1024)
    data = _preload(go_r)
    # A long-lived process: the collector runs (the CLI may have had it off), but never over what the CLI
    # and the preload made: scanning those would also copy the pages this process shares with them.
    import gc

    gc.freeze()
    gc.enable()
    while not data.endswith(b"\n") or data.count(b"\n") < 2:
        chunk = os.read(go_r, 4096)
        if not chunk:
            os._exit(0)  # the CLI gave up (or died) before the task was to start
        data += chunk
        if data.startswith(b"+"):  # a hint after the preload ended: nothing left to do for it
            data = data.partition(b"\n")[2]
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


#: What the monitor imports while it waits, in the order it is needed after go: the task's creation (the
#: runtime's parent side: spec checks, the seccomp filter cache, the cgroup driver), then what the runtime's
#: init imports before it enters the container (the init is forked from this process and inherits it: its
#: own imports overlap only the parent's cgroup set-up, a third of their time), then the task's end.
PRELOAD = (
    "select", "resource", "kobako.libc", "kobako.runtime.syscalls", "kobako.engine.logs", "kobako.engine.restart",
    "kobako.engine.monitor", "kobako.runtime.lifecycle.delete", "kobako.runtime.lifecycle.create",
    "kobako.runtime.rlimits", "kobako.runtime.security.capabilities", "kobako.runtime.security.seccomp",
    "kobako.cgroups", "kobako.runtime.lifecycle.start",
    "kobako.runtime.process.init", "kobako.runtime.devices", "kobako.runtime.security",
    "kobako.engine.service", "kobako.mount",
)  # fmt: skip


def _preload(go_r: int) -> bytes:
    """Import what starting a task needs while the CLI is still preparing the container: on another core,
    these imports leave the critical path (the monitor would load them right after go anyway). Should go
    come first, the rest is left to load when used: it would only delay the task. A network hint
    (monitor_net.HINT) puts the network library first. Returns what was read of go."""
    import select

    poller = select.poll()
    poller.register(go_r, select.POLLIN)
    names = list(PRELOAD)
    data = b""
    while names:
        if poller.poll(0):
            chunk = os.read(go_r, 4096)
            data += chunk
            if chunk and data.startswith(b"+"):  # monitor_net.HINT
                data = data.partition(b"\n")[2]
                if not data:
                    from kobako.engine.monitor_net import PRELOAD as NET

                    names[:0] = NET
                    continue
            return data
        name = names.pop(0)
        try:
            _import(name)
        except Exception:  # only an optimisation: the same imports happen (and fail loudly) after go
            pass
    return data


def _import(name: str) -> None:
    name, _, call = name.partition(":")  # "module:function": import, then call it
    __import__(name)
    if call:
        getattr(__import__(name, fromlist=[call]), call)()
    if name == "kobako.cgroups":  # the driver this host uses, and its resource writer
        from kobako.cgroups import detect

        __import__(f"kobako.cgroups.{detect()}.resources")
    elif name == "kobako.runtime.security":  # ctypes and libseccomp, as the init's preload loads them
        from kobako.runtime.security import preload

        preload(seccomp=True)
