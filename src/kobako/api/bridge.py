"""Blocking file objects over the event loop, for engine calls that read or write streams on worker threads.

``BodyReader``: ``read(n)`` pulls the request body (an image archive, a build context) chunk by chunk from the
loop. ``ChunkWriter``: ``write(data)`` hands bytes (a saved image) to the loop, which sends them as chunks;
a bounded queue makes a slow client slow the writer down instead of filling memory. ``Lines`` turns text
written by the engine (progress, build output) into JSON messages on the same queue.
"""

from __future__ import annotations

import asyncio

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from kobako.api.http import Request, Stream

_END = object()


class BodyReader:
    def __init__(self, req: Request, loop: asyncio.AbstractEventLoop, limit: int = 0) -> None:
        self.req = req
        self.loop = loop
        self.buf = b""
        self.total = 0
        self.limit = limit  # 0: none

    def _fetch(self) -> bytes:
        data = asyncio.run_coroutine_threadsafe(self.req.chunk(1 << 20), self.loop).result()
        self.total += len(data)
        if self.limit and self.total > self.limit:
            from kobako.errors import InvalidArgument

            raise InvalidArgument(f"request body larger than {self.limit} bytes")
        return data

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            parts = [self.buf]
            self.buf = b""
            while True:
                data = self._fetch()
                if not data:
                    return b"".join(parts)
                parts.append(data)
        while len(self.buf) < n:
            data = self._fetch()
            if not data:
                break
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def readinto(self, b: bytearray | memoryview) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True


class ChunkWriter:
    """File-like sink; the loop side drains ``queue`` into a chunked stream with ``pump``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, depth: int = 64) -> None:
        self.loop = loop
        self.queue: asyncio.Queue = asyncio.Queue(depth)
        self.gone = False

    def put(self, item: object) -> None:
        if self.gone:
            raise BrokenPipeError("the client went away")
        asyncio.run_coroutine_threadsafe(self.queue.put(item), self.loop).result()

    def write(self, data: bytes) -> int:
        if data:
            self.put(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close_stream(self) -> None:
        """From the worker thread: nothing more comes."""
        self.loop.call_soon_threadsafe(self.queue.put_nowait, _END)

    async def pump(self, stream: Stream, encode: Callable[[object], bytes] | None = None) -> None:
        try:
            while True:
                item = await self.queue.get()
                if item is _END:
                    return
                await stream.send(encode(item) if encode else item)  # type: ignore[arg-type]
        except (ConnectionError, OSError):
            self.gone = True
            while not self.queue.empty():  # unblock a writer waiting on a full queue
                self.queue.get_nowait()
            raise


class Lines:
    """A text stream (``write(str)``) whose complete lines become ``{"stream": line}`` messages."""

    def __init__(self, sink: ChunkWriter) -> None:
        self.sink = sink
        self.pending = ""

    def write(self, text: str) -> int:
        self.pending += text
        while "\n" in self.pending:
            line, _, self.pending = self.pending.partition("\n")
            self.sink.put({"stream": line + "\n"})
        return len(text)

    def flush(self) -> None:
        if self.pending:
            self.sink.put({"stream": self.pending})
            self.pending = ""

    def isatty(self) -> bool:
        return False
