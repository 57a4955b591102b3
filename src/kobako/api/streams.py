"""Docker's stream formats and hijacked connections.

Without a tty, stdout and stderr share one byte stream as frames: ``[stream, 0, 0, 0, size (4 bytes, big
endian)]`` then ``size`` bytes, stream 1 = stdout, 2 = stderr (0 = stdin, written back by nobody here). With a
tty the stream is the terminal's raw bytes. Attach and exec start *hijack* the HTTP connection: after the
response head the socket carries raw stdin one way and the (framed or raw) output the other way.
"""

from __future__ import annotations

import asyncio

from kobako.api.http import head

STDIN, STDOUT, STDERR = 0, 1, 2
RAW = "application/vnd.docker.raw-stream"
MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
_SLOW_CLIENT = 10.0  # seconds an attached client may stall before it is dropped (the container never waits)


def frame(stream: int, data: bytes) -> bytes:
    return bytes((stream, 0, 0, 0)) + len(data).to_bytes(4, "big") + data


def wants_upgrade(headers: dict[str, str]) -> bool:
    return "upgrade" in headers.get("connection", "").lower() and bool(headers.get("upgrade"))


async def hijack(writer: asyncio.StreamWriter, headers: dict[str, str], common: list[tuple[str, str]],
                 tty: bool, api_version: str) -> None:  # fmt: skip
    """Answer as dockerd does: 101 UPGRADED to a client that asked to upgrade, else 200 with the raw stream."""
    multiplexed = not tty and _at_least(api_version, 1, 42)
    content_type = MULTIPLEXED if multiplexed else RAW
    if wants_upgrade(headers):
        response = head(101, [*common, ("Content-Type", content_type), ("Connection", "Upgrade"),
                              ("Upgrade", headers.get("upgrade", "tcp"))])  # fmt: skip
    else:
        response = head(200, [*common, ("Content-Type", content_type)])
    writer.write(response)
    await writer.drain()


def _at_least(version: str, major: int, minor: int) -> bool:
    if not version:
        return True  # an unversioned request gets the current API
    a, _, b = version.partition(".")
    return (int(a), int(b)) >= (major, minor)


class Attached:
    """One hijacked client: which streams it wants, and how output is framed for it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tty: bool,
                 stdin: bool = False, stdout: bool = True, stderr: bool = True) -> None:  # fmt: skip
        self.reader = reader
        self.writer = writer
        self.tty = tty
        self.stdin = stdin
        self.streams = {STDOUT: stdout, STDERR: stderr}
        self.closed = asyncio.Event()

    async def send(self, stream: int, data: bytes) -> bool:
        """Write output; False (and the client is closed) when it has gone or stalls."""
        if self.closed.is_set():
            return False
        if not self.streams.get(stream, False) or not data:
            return True
        self.writer.write(data if self.tty else frame(stream, data))
        try:
            await asyncio.wait_for(self.writer.drain(), _SLOW_CLIENT)
        except (TimeoutError, OSError, ConnectionError):
            self.close()
            return False
        return True

    def close(self) -> None:
        if not self.closed.is_set():
            self.closed.set()
            try:
                self.writer.close()
            except (OSError, RuntimeError):
                pass

    async def finish(self) -> None:
        """All output written: flush, then close (the client reads EOF: the stream is over)."""
        if self.closed.is_set():
            return
        try:
            await asyncio.wait_for(self.writer.drain(), _SLOW_CLIENT)
            if self.writer.can_write_eof():
                self.writer.write_eof()
        except (TimeoutError, OSError, ConnectionError, RuntimeError):
            pass
        self.close()
