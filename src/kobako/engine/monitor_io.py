"""The monitor's byte plumbing: container output → log + attached clients, client frames → the container.

Kept apart from the lifecycle in monitor.py; ``Streams`` is mixed into ``Monitor`` and uses its fields
(``out``, ``clients``, ``readers``, ``log``, ``master``, ``in_w``, ``stdin_pending``, ``stdin_client``).
"""

from __future__ import annotations

import os

from kobako.engine import attach, tasks

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket

    from kobako.engine.logs import LogWriter


class Streams:
    out: dict[int, str]
    clients: list[socket.socket]
    readers: dict[int, attach.FrameReader]
    log: LogWriter
    master: int
    in_w: int
    pid: int
    stdin_pending: bytes
    stdin_client: socket.socket | None
    st: tasks.TaskState

    def pump(self, fd: int) -> bool:
        """Copy what is there from one output fd; False at EOF (or EIO: the pty's last slave closed)."""
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if not data:
            self.out.pop(fd, None)
            return False
        stream = self.out[fd]
        self.log.write(stream, data)
        self.broadcast(attach.STDOUT if stream == "stdout" else attach.STDERR, data)
        return True

    def broadcast(self, kind: int, payload: bytes) -> None:
        data = attach.frame(kind, payload)
        for sock in list(self.clients):
            if not attach.send_all(sock, data):
                self.drop(sock)

    def drop(self, sock: socket.socket) -> None:
        if sock in self.clients:
            self.clients.remove(sock)
            self.readers.pop(sock.fileno(), None)
            if sock is self.stdin_client:
                self.stdin_client = None
                self.close_stdin()  # docker's StdinOnce: the attached stdin went away
            sock.close()

    def from_client(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            self.drop(sock)
            return
        for kind, payload in self.readers[sock.fileno()].feed(data):
            if kind == attach.STDIN and sock is self.stdin_client:
                self.write_stdin(payload)
            elif kind == attach.STDIN_CLOSE and sock is self.stdin_client:
                self.close_stdin()
            elif kind == attach.RESIZE and self.master >= 0:
                rows, _, cols = payload.decode().partition(" ")
                import fcntl
                import termios

                size = int(rows).to_bytes(2, "little") + int(cols).to_bytes(2, "little") + bytes(4)
                fcntl.ioctl(self.master, termios.TIOCSWINSZ, size)
            elif kind == attach.SIGNAL and self.pid and tasks.alive(self.pid, self.st.pid_start):
                os.kill(self.pid, int(payload))

    def write_stdin(self, data: bytes) -> None:
        target = self.master if self.master >= 0 else self.in_w
        if target < 0:
            return
        self.stdin_pending += data
        try:
            written = os.write(target, self.stdin_pending) if self.stdin_pending else 0
        except BlockingIOError:
            written = 0
        except OSError:  # the container closed its stdin
            written = len(self.stdin_pending)
        self.stdin_pending = self.stdin_pending[written:]
        if target == self.in_w:
            os.set_blocking(self.in_w, False)

    def close_stdin(self) -> None:
        if self.master >= 0:
            self.write_stdin(b"\x04")  # a tty's EOF is the EOF character
        elif self.in_w >= 0:
            os.close(self.in_w)
            self.in_w = -1
            self.stdin_pending = b""
