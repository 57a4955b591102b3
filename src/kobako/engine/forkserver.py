"""A fork server: a small single-threaded process that forks container monitors and exec runners for a daemon.

Why: the Engine API service is multi-threaded (an asyncio loop plus a thread pool for blocking engine calls).
A fork from such a process copies locks other threads may hold, and the whole heap: a monitor forked from the
service would keep the service's memory for the container's lifetime. So the service forks this server first
thing, while it is as small as the CLI is when it forks its monitor, and asks it for every later fork:

    b"M"                 → a ``Prefork`` (kobako.engine.monitor_fork) made here; its attach socket and go pipe
                           come back as SCM_RIGHTS, so the service owns a waiting monitor exactly as `run` does
    b"E" + JSON, fds     → an exec runner: fork, setsid, fork; stdio from the fds, ``exec_process`` in the
                           container (a child subreaper that waits), exit status written to the status fd
                           as ``CODE\\n`` or ``CODE message\\n``; fds are stdin, stdout, stderr, status[, console]

One SOCK_SEQPACKET socketpair carries one message per request; the server ends when the service's end closes
(the service exiting, however it exits). Monitors and runners are double-forked: nobody has to reap them.
"""

from __future__ import annotations

import os
import threading

from kobako.errors import Internal, KobakoError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket

    from kobako.engine.monitor_fork import Prefork

_MAX_MESSAGE = 1 << 20


class ForkServer:
    """The service's handle: ``start()`` forks the server; ``monitor()`` and ``exec()`` ask it to fork."""

    def __init__(self) -> None:
        self.sock: socket.socket | None = None
        self.pid = 0
        self._lock = threading.Lock()

    def start(self) -> None:
        import socket

        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                ours.close()
                _serve(theirs)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        theirs.close()
        self.sock, self.pid = ours, pid

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()  # the server sees EOF and exits
            self.sock = None
        if self.pid:
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
            self.pid = 0

    def monitor(self) -> Prefork:
        """A monitor waiting for its container, as ``Prefork()`` would make it in this process."""
        import socket

        from kobako.engine.monitor_fork import Prefork

        with self._lock:
            if self.sock is None:
                raise Internal("the fork server is not running")
            self.sock.send(b"M")
            msg, fds, _flags, _addr = socket.recv_fds(self.sock, 64, 2)
        if msg != b"ok" or len(fds) != 2:
            for fd in fds:
                os.close(fd)
            raise Internal(f"the fork server could not fork a monitor: {msg.decode(errors='replace')}")
        prefork = Prefork.__new__(Prefork)  # the fork already happened over there: fill in what go() uses
        prefork.sock = socket.socket(fileno=fds[0])
        prefork.go_w = fds[1]
        return prefork

    def exec(self, request: dict, fds: list[int]) -> None:
        """Start an exec runner with ``fds`` (stdin, stdout, stderr, status[, console]); the caller closes
        its copies of the fds it handed over."""
        import socket

        from kobako.oci import jsoncodec

        payload = b"E" + jsoncodec.dumps(request).encode()
        if len(payload) > _MAX_MESSAGE:
            raise Internal("exec request too large for the fork server")
        with self._lock:
            if self.sock is None:
                raise Internal("the fork server is not running")
            socket.send_fds(self.sock, [payload], fds)


class MonitorPool:
    """A few monitors forked ahead of need: each has preloaded the runtime while it waited (see
    ``_preload`` in monitor_fork), so a start pays neither the fork nor those imports."""

    def __init__(self, server: ForkServer, size: int = 2) -> None:
        self.server = server
        self.size = size
        self.ready: list[Prefork] = []
        self._lock = threading.Lock()

    def take(self) -> Prefork:
        with self._lock:
            if self.ready:
                return self.ready.pop()
        return self.server.monitor()

    def refill(self) -> None:
        while True:
            with self._lock:
                if len(self.ready) >= self.size:
                    return
            prefork = self.server.monitor()
            with self._lock:
                self.ready.append(prefork)

    def close(self) -> None:
        with self._lock:
            ready, self.ready = self.ready, []
        for prefork in ready:
            prefork.cancel()  # its go pipe closes: the waiting monitor ends silently


# --- the server side -------------------------------------------------------------------------------------


def _serve(sock: socket.socket) -> None:
    import _signal
    import socket

    # ^C on the service's terminal reaches the whole process group: the service decides when we stop.
    _signal.signal(2, _signal.SIG_IGN)
    _signal.signal(15, _signal.SIG_IGN)
    while True:
        try:
            msg, fds, _flags, _addr = socket.recv_fds(sock, _MAX_MESSAGE, 8)
        except OSError:
            return
        if not msg:
            return
        try:
            if msg == b"M":
                _send_monitor(sock)
            elif msg[:1] == b"E":
                _spawn_runner(msg[1:], fds)
        except Exception as exc:  # one failed request must not end the server
            if msg == b"M":
                try:
                    sock.send(f"error: {exc}".encode())
                except OSError:
                    return
        finally:
            for fd in fds:
                os.close(fd)


def _send_monitor(sock: socket.socket) -> None:
    import socket

    from kobako.engine.monitor_fork import Prefork

    prefork = Prefork()
    try:
        socket.send_fds(sock, [b"ok"], [prefork.sock.fileno(), prefork.go_w])
    finally:
        prefork.sock.close()
        os.close(prefork.go_w)


def _spawn_runner(payload: bytes, fds: list[int]) -> None:
    from kobako.oci import jsoncodec

    request = jsoncodec.loads(payload, what="exec request")
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setsid()
            if os.fork() == 0:
                _run_exec(request, fds)
            code = 0
        finally:
            os._exit(code)
    os.waitpid(pid, 0)


def _run_exec(request: dict, fds: list[int]) -> None:
    """In the runner: stdio from the service, the process in the container, its exit status reported."""
    import _signal

    stdin, stdout, stderr, status = fds[:4]
    console = fds[4] if len(fds) > 4 else -1
    for i, fd in enumerate((stdin, stdout, stderr)):
        os.dup2(fd, i)
    keep = {status, console}
    for fd in range(3, 1024):
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass
    # Python ignores SIGPIPE and SIGXFSZ, and an ignored signal survives execve: give the process defaults.
    for signum in (13, 25):
        _signal.signal(signum, _signal.SIG_DFL)
    report = "1 exec runner failed"
    try:
        from kobako.runtime.lifecycle.exec import ExecOptions, exec_process

        opts = ExecOptions(request["process"], console_fd=console)
        report = str(exec_process(request["root"], request["id"], opts))
    except KobakoError as exc:
        message = str(exc)
        lowered = message.lower()
        code = 127 if ("not found" in lowered or "no such file" in lowered) else 126
        try:
            os.write(2, f"kobako: {message}\n".encode())
        except OSError:
            pass
        report = f"{code} {message}"
    except BaseException as exc:  # never leave the service waiting without a status
        report = f"126 {exc!r}"
    try:
        os.write(status, (report.replace("\n", " ") + "\n").encode())
    finally:
        os._exit(0)
