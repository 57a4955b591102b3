"""Container logs: ``containers/<id>/ctr.log`` as docker's json-file lines, rotated by size.

Each line is ``{"log": "text\\n", "stream": "stdout"|"stderr", "time": RFC3339Nano}``. The writer (in the
monitor) splits output at newlines; a line longer than 16 KiB is written in pieces without the newline, as
docker does. When the file passes ``max_size`` (10 MB, ``KOBAKO_LOG_MAX_SIZE`` overrides) it becomes
``ctr.log.1`` (one old file is kept) and a new one starts. Readers read ``ctr.log.1`` then ``ctr.log``.
"""

from __future__ import annotations

import os

from kobako.engine.clock import rfc3339

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import BinaryIO

LOG = "ctr.log"
DEFAULT_MAX_SIZE = 10 * 1024 * 1024
_PIECE = 16 * 1024


def max_size() -> int:
    value = os.environ.get("KOBAKO_LOG_MAX_SIZE", "")
    return int(value) if value.isdigit() and int(value) > 0 else DEFAULT_MAX_SIZE


class LogWriter:
    def __init__(self, path: str, limit: int | None = None) -> None:
        import _json

        self._encode = _json.encode_basestring
        self.path = path
        self.limit = limit or max_size()
        self.fd = -1
        self.size = 0
        self._open()
        self.partial: dict[str, bytes] = {"stdout": b"", "stderr": b""}

    def _open(self) -> None:
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self.size = os.fstat(self.fd).st_size

    def write(self, stream: str, data: bytes) -> None:
        buf = self.partial[stream] + data
        start = 0
        while True:
            nl = buf.find(b"\n", start)
            end = nl + 1 if nl >= 0 else len(buf)
            while end - start > _PIECE:  # a long line goes out in 16 KiB pieces, as docker writes it
                self._emit(stream, buf[start : start + _PIECE])
                start += _PIECE
            if nl < 0:
                break
            self._emit(stream, buf[start:end])
            start = end
        self.partial[stream] = buf[start:]

    def flush(self) -> None:
        """Write out unterminated lines (the container exited mid-line)."""
        for stream, rest in self.partial.items():
            if rest:
                self._emit(stream, rest)
                self.partial[stream] = b""

    def _emit(self, stream: str, chunk: bytes) -> None:
        text = self._encode(chunk.decode("utf-8", "replace"))
        line = f'{{"log":{text},"stream":"{stream}","time":"{rfc3339()}"}}\n'.encode()
        os.write(self.fd, line)
        self.size += len(line)
        if self.size >= self.limit:
            self.rotate()

    def rotate(self) -> None:
        os.close(self.fd)
        os.rename(self.path, self.path + ".1")
        self._open()

    def close(self) -> None:
        if self.fd >= 0:
            self.flush()
            os.close(self.fd)
            self.fd = -1


class Entry:
    __slots__ = ("log", "stream", "time")

    def __init__(self, log: str, stream: str, time: str) -> None:
        self.log = log
        self.stream = stream
        self.time = time


def parse_line(line: bytes) -> Entry | None:
    from kobako.errors import InvalidArgument
    from kobako.oci import jsoncodec

    try:
        data = jsoncodec.loads(line)
    except InvalidArgument:
        return None  # a line cut short by a crash: skip it
    if not isinstance(data, dict):
        return None
    return Entry(str(data.get("log", "")), str(data.get("stream", "stdout")), str(data.get("time", "")))


def read(path: str, tail: int = -1) -> tuple[list[Entry], int, int]:
    """Entries of the rotated and the current file (the last ``tail`` if ``tail`` >= 0), plus the current
    file's inode and the offset after its last complete line, so that ``follow`` continues where this
    stopped (a line still being written is left whole to it)."""
    lines: list[bytes] = []
    for name in (path + ".1", path):
        try:
            with open(name, "rb") as f:
                if name == path:
                    st = os.fstat(f.fileno())
                    data = f.read(st.st_size)
                    data = data[: data.rfind(b"\n") + 1]
                    ino, offset = st.st_ino, len(data)
                else:
                    data = f.read()
        except FileNotFoundError:
            if name == path:
                ino, offset = 0, 0
            continue
        lines.extend(data.splitlines())
    if tail >= 0:
        lines = lines[-tail:] if tail else []
    entries = [e for e in (parse_line(raw) for raw in lines) if e is not None]
    return entries, ino, offset


def follow(
    path: str, ino: int, offset: int, running: Callable[[], bool], interval: float = 0.1
) -> Iterator[Entry]:
    """New entries after ``offset`` until ``running()`` is false and the file is drained. The file being
    read is held open, so a rotation or the container's removal (``docker run --rm`` reads its output
    after the container is gone) loses nothing written to it."""
    import time

    current = _open_at(path, ino, offset)
    pending = b""
    try:
        while True:
            alive = running()
            if current is not None:
                pending += current.read()
            try:
                st = os.stat(path)
            except FileNotFoundError:
                st = None
            if st is not None and (current is None or st.st_ino != os.fstat(current.fileno()).st_ino):
                # A newer file at the path (a rotation, or the first file): finish the old one, go on.
                if current is not None:
                    pending += current.read()
                    current.close()
                current = open(path, "rb")  # noqa: SIM115 - held across the loop, closed in finally
                pending += current.read()
            if pending:
                *complete, pending = pending.split(b"\n")
                for raw in complete:
                    entry = parse_line(raw)
                    if entry is not None:
                        yield entry
            if not alive:
                return
            time.sleep(interval)
    finally:
        if current is not None:
            current.close()


def _open_at(path: str, ino: int, offset: int) -> BinaryIO | None:
    """The file ``read`` read (inode ``ino``), positioned at ``offset``: at the path, or rotated to .1
    meanwhile; None when there was none (the loop opens the path's file from its start)."""
    if not ino:
        return None
    for name in (path, path + ".1"):
        try:
            f = open(name, "rb")  # noqa: SIM115 - handed to the caller, which closes it
        except FileNotFoundError:
            continue
        if os.fstat(f.fileno()).st_ino == ino:
            f.seek(offset)
            return f
        f.close()
    return None
