"""The attach protocol between a CLI and a container's monitor: frames on a unix stream socket.

A frame is ``type (1 byte) | length (4 bytes, big-endian) | payload``.

    monitor → client: STARTED (init pid), ERROR (exit code, space, message: the task did not start),
                      STDOUT, STDERR, EXIT (exit code, once the container is gone and, with --rm, removed)
                      NETDOWN (after TAKEOVER: the container's network is torn down; payload: "" or the error)
    client → monitor: STDIN, STDIN_CLOSE (forward EOF), RESIZE ("rows cols" for a tty), SIGNAL (number),
                      TAKEOVER (after EXIT of a --rm container: the client removes it while the monitor
                      tears the network down, in parallel, and then ends)

The socket is one end of a socketpair made by the CLI before it forks the monitor: the client is connected
before the container exists, so no output can be missed and no socket path (length-limited to 108 bytes,
and racy to create) is needed. A client that goes away is simply dropped; the container keeps running.
"""

from __future__ import annotations

STDIN, STDOUT, STDERR, EXIT, STARTED, ERROR, STDIN_CLOSE, RESIZE, SIGNAL, TAKEOVER, NETDOWN = range(11)
_HEADER = 5


def frame(kind: int, payload: bytes = b"") -> bytes:
    return bytes((kind,)) + len(payload).to_bytes(4, "big") + payload


class FrameReader:
    """Accumulates bytes from a stream and yields whole frames."""

    def __init__(self) -> None:
        self.buf = b""

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self.buf += data
        out = []
        while len(self.buf) >= _HEADER:
            size = int.from_bytes(self.buf[1:_HEADER], "big")
            if len(self.buf) < _HEADER + size:
                break
            out.append((self.buf[0], self.buf[_HEADER : _HEADER + size]))
            self.buf = self.buf[_HEADER + size :]
        return out


MSG_NOSIGNAL = 0x4000


def send_all(sock: object, data: bytes) -> bool:
    """Write everything (blocking); False if the peer is gone. MSG_NOSIGNAL: a gone peer is no SIGPIPE."""
    view = memoryview(data)
    while view:
        try:
            sent = sock.send(view, MSG_NOSIGNAL)  # type: ignore[attr-defined]
        except OSError:
            return False
        view = view[sent:]
    return True


def wait_started(sock: object) -> tuple[int, int, str, FrameReader, list[tuple[int, bytes]]]:
    """Block until STARTED or ERROR: (pid, 0, "", reader, frames after it) or (0, exit code, message, ...).

    A monitor that dies before either (it was killed) reads as an error with exit code 125.
    """
    reader = FrameReader()
    while True:
        data = sock.recv(65536)  # type: ignore[attr-defined]
        if not data:
            return 0, 125, "the container's monitor exited before the container started", reader, []
        frames = reader.feed(data)
        for i, (kind, payload) in enumerate(frames):
            if kind == STARTED:
                return int(payload or b"0"), 0, "", reader, frames[i + 1 :]
            if kind == ERROR:
                code, _, message = payload.decode(errors="replace").partition(" ")
                return 0, int(code), message, reader, frames[i + 1 :]
