"""Layer compression: detect by magic bytes, decompress on a second thread, hash the uncompressed stream.

zlib and hashlib release the GIL on large buffers, so decompressing and hashing on a producer thread while
the caller parses tar headers and writes files gives two cores' worth of work, like ``tar -xzf`` piping through
``gzip -d``. zstd needs the ``zstandard`` package (imported only when a zstd layer shows up), or the ``zstd``
program as a fallback.
"""

from __future__ import annotations

import queue
import threading
import zlib

from kobako.errors import FailedPrecondition, InvalidArgument
from kobako.oci.digest import BUFSIZE, Digest, Verifier

GZIP, ZSTD, NONE = "gzip", "zstd", "none"
TYPE_CHECKING = False  # typing costs start-up time; annotations are strings anyway
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import IO, Any, Protocol

    class _Sink(Protocol):
        def write(self, data: bytes, /) -> object: ...


_OTHER_MAGIC = {b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x04\x22\x4d\x18": "lz4"}
_SENTINEL = object()


def detect(head: bytes) -> str:
    """Compression of a stream starting with ``head`` (at least 6 bytes unless the stream is shorter)."""
    if head.startswith(b"\x1f\x8b"):
        return GZIP
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return ZSTD
    for magic, name in _OTHER_MAGIC.items():
        if head.startswith(magic):
            raise InvalidArgument(f"layer is {name}-compressed: only gzip, zstd or plain tar are supported")
    return NONE


class DecompressedChunks:
    """Iterator over the uncompressed bytes of ``source``, decoded ahead on a thread.

    ``diff_id`` and ``size`` (of the uncompressed stream) are valid once the iterator is exhausted.
    Call :meth:`close` when stopping early so the producer thread ends.
    """

    def __init__(self, source: IO[bytes], *, algorithm: str = "sha256", depth: int = 8) -> None:
        self._source = source
        self._verifier = Verifier(algorithm)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._finished = False
        first = source.read(BUFSIZE)
        self.compression = detect(first)
        self._thread = threading.Thread(
            target=self._produce, args=(first,), name="layer-decompress", daemon=True
        )
        self._thread.start()

    @property
    def diff_id(self) -> Digest:
        if not self._finished:
            raise FailedPrecondition("the uncompressed stream has not been read to its end")
        return self._verifier.digest()

    @property
    def size(self) -> int:
        return self._verifier.size

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._finished:
            raise StopIteration
        item = self._queue.get()
        if item is _SENTINEL:
            self._finished = True
            raise StopIteration
        if isinstance(item, BaseException):
            self._finished = True
            raise item
        return item

    def drain(self) -> None:
        """Read (and hash) whatever the tar reader did not need, such as trailing zero blocks."""
        for _ in self:
            pass

    def close(self, timeout: float = 10.0) -> None:
        """Stop the producer; a source blocked in read() is left to its daemon thread after ``timeout``."""
        import time

        self._stop.set()
        deadline = time.monotonic() + timeout
        while self._thread.is_alive() and time.monotonic() < deadline:
            try:
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass

    def __enter__(self) -> DecompressedChunks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- producer thread ---------------------------------------------------------------------------------

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _emit(self, data: bytes) -> bool:
        if not data:
            return True
        self._verifier.update(data)
        return self._put(data)

    def _produce(self, first: bytes) -> None:
        try:
            if self.compression == GZIP:
                self._gunzip(first)
            elif self.compression == ZSTD:
                self._unzstd(first)
            else:
                chunk = first
                while chunk and self._emit(chunk):
                    chunk = self._source.read(BUFSIZE)
        except zlib.error as exc:
            self._put(InvalidArgument(f"corrupt gzip layer: {exc}"))
        except Exception as exc:
            self._put(exc)
        else:
            self._put(_SENTINEL)

    def _gunzip(self, chunk: bytes) -> None:
        d = zlib.decompressobj(wbits=31)
        while chunk:
            if not self._emit(d.decompress(chunk)):
                return
            while d.eof and d.unused_data:  # concatenated gzip members
                rest = d.unused_data
                if not rest.startswith(b"\x1f\x8b"):
                    if rest.strip(b"\0"):
                        raise InvalidArgument("gzip layer has trailing garbage after the compressed stream")
                    break
                d = zlib.decompressobj(wbits=31)
                if not self._emit(d.decompress(rest)):
                    return
            chunk = self._source.read(BUFSIZE)
        if not d.eof:
            raise InvalidArgument("gzip layer is truncated")
        self._emit(d.flush())

    def _unzstd(self, first: bytes) -> None:
        try:
            import zstandard
        except ImportError:
            zstandard = None
        prefixed = _Prefixed(first, self._source)
        if zstandard is not None:
            try:
                reader = zstandard.ZstdDecompressor().stream_reader(
                    prefixed, read_size=BUFSIZE, read_across_frames=True
                )
                while chunk := reader.read(4 * BUFSIZE):
                    if not self._emit(chunk):
                        return
            except zstandard.ZstdError as exc:
                raise InvalidArgument(f"corrupt zstd layer: {exc}") from exc
            return
        self._unzstd_program(prefixed)

    def _unzstd_program(self, prefixed: _Prefixed) -> None:
        import shutil
        import subprocess

        exe = shutil.which("zstd")
        if exe is None:
            raise FailedPrecondition("zstd layer: install the 'zstandard' Python package or the zstd program")
        proc = subprocess.Popen([exe, "-dcq"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert proc.stdin is not None and proc.stdout is not None
        feeder = threading.Thread(target=_feed, args=(prefixed, proc.stdin), daemon=True)
        feeder.start()
        try:
            while chunk := proc.stdout.read(BUFSIZE):
                if not self._emit(chunk):
                    return
        finally:
            proc.stdout.close()
            if proc.wait() != 0 and not self._stop.is_set():
                raise InvalidArgument(f"corrupt zstd layer (zstd exited with {proc.returncode})")
            feeder.join()


class _Prefixed:
    """A reader that returns ``first`` and then the rest of ``source``."""

    def __init__(self, first: bytes, source: IO[bytes]) -> None:
        self._first: bytes | None = first
        self._source = source

    def read(self, n: int = -1) -> bytes:
        if self._first:
            out, self._first = self._first, None
            return out
        return self._source.read(n if n and n > 0 else BUFSIZE)


def _feed(src: _Prefixed, dst: IO[bytes]) -> None:
    try:
        while chunk := src.read(BUFSIZE):
            dst.write(chunk)
    except BrokenPipeError:
        pass
    finally:
        try:
            dst.close()
        except BrokenPipeError:
            pass


class CompressingWriter:
    """Write an uncompressed layer; emit it to ``out`` (gzip, zstd or none) and digest both forms."""

    def __init__(self, out: _Sink, compression: str = GZIP, level: int | None = None) -> None:
        self._out = out
        self.compression = compression
        self._diff = Verifier()
        self._blob = Verifier()
        self._compressor: Any = None
        if compression == GZIP:
            # mtime 0 and no file name in the gzip header: the same tar always gives the same blob
            self._compressor = zlib.compressobj(6 if level is None else level, zlib.DEFLATED, 31)
        elif compression == ZSTD:
            try:
                import zstandard
            except ImportError as exc:
                raise FailedPrecondition("zstd compression needs the 'zstandard' Python package") from exc
            self._compressor = zstandard.ZstdCompressor(level=3 if level is None else level).compressobj()
        elif compression != NONE:
            raise InvalidArgument(f"unsupported layer compression {compression!r}")
        self._closed = False

    def write(self, data: bytes | bytearray | memoryview, /) -> int:
        self._diff.update(data)
        self._send(self._compressor.compress(data) if self._compressor else bytes(data))
        return len(data)

    def _send(self, data: bytes) -> None:
        if data:
            self._blob.update(data)
            self._out.write(data)

    def finish(self) -> tuple[Digest, Digest, int]:
        """Flush; return (diff_id of the uncompressed tar, digest and size of what went to ``out``)."""
        if not self._closed:
            if self._compressor is not None:
                self._send(self._compressor.flush())
            self._closed = True
        return self._diff.digest(), self._blob.digest(), self._blob.size
