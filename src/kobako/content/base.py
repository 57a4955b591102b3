"""What a content store offers, split by who needs it: read (Provider), write (Ingester), admin (Manager).

Callers ask for the narrowest interface they need (DESIGN.md, example 5). Content is addressed by digest and
immutable; writing goes through a named *ingest* (the ``ref``) that becomes visible only once its size and
digest have been verified on :meth:`Writer.commit`.
"""

from __future__ import annotations

from collections import namedtuple

from kobako.oci.digest import Digest

TYPE_CHECKING = False  # typing and dataclasses cost ~25 ms at start-up: the Protocols are for type checkers
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from typing import IO, Protocol
else:
    Protocol = object

#: What the store knows about one blob: ``digest``, ``size``, ``created_at``, ``updated_at``, ``labels``.
Info = namedtuple("Info", "digest size created_at updated_at labels")
#: Progress of one ingest as seen from outside: ``ref``, ``offset``, ``total``, ``expected``, ``started_at``,
#: ``updated_at``.
Status = namedtuple("Status", "ref offset total expected started_at updated_at")
#: One defect found by a store check (a blob whose bytes do not match its name, a stray file).
Problem = namedtuple("Problem", "path reason digest", defaults=(None,))


class Writer(Protocol):
    """An open ingest. ``commit`` verifies and publishes; ``close`` keeps the partial data for a resume."""

    ref: str

    @property
    def offset(self) -> int: ...

    def write(self, data: bytes | bytearray | memoryview, /) -> int: ...

    def digest(self) -> Digest:
        """Digest of what has been written so far."""
        ...

    def commit(
        self,
        size: int | None = None,
        expected: Digest | str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> Digest:
        """Verify size and digest, then publish atomically. AlreadyExists if the blob was already there."""
        ...

    def truncate(self, size: int) -> None:
        """Only ``truncate(0)`` is supported: start the ingest over."""
        ...

    def status(self) -> Status: ...

    def close(self) -> None: ...

    def __enter__(self) -> Writer: ...

    def __exit__(self, *exc: object) -> None: ...


class Provider(Protocol):
    def info(self, digest: Digest | str) -> Info:
        """NotFound if the blob is not in the store."""
        ...

    def reader(self, digest: Digest | str) -> IO[bytes]:
        """An open binary file positioned at 0; the caller closes it. NotFound if absent."""
        ...


class Ingester(Protocol):
    def writer(
        self, ref: str, expected_digest: Digest | str | None = None, expected_size: int | None = None
    ) -> Writer:
        """Open (or resume) the ingest named ``ref``; ``commit`` checks against the expectations given here.

        AlreadyExists when ``expected_digest`` is already in the store; InvalidArgument when a write would pass
        ``expected_size``; Unavailable when another writer holds
        ``ref`` (in this or another process).
        """
        ...


class Manager(Protocol):
    def info(self, digest: Digest | str) -> Info: ...

    def list(self, labels: Mapping[str, str] | None = None) -> Iterator[Info]:
        """Every blob, or those carrying all of ``labels``."""
        ...

    def update(self, digest: Digest | str, labels: Mapping[str, str | None]) -> Info:
        """Set labels (a ``None`` value removes that label)."""
        ...

    def delete(self, digest: Digest | str) -> None: ...

    def statuses(self) -> list[Status]: ...

    def abort(self, ref: str) -> None:
        """Drop an ingest and its partial data. NotFound if unknown, Unavailable if a writer holds it."""
        ...

    def cleanup_stale(self, older_than: float = 0.0) -> list[str]:
        """Remove ingests no writer holds that were last touched ``older_than`` seconds ago or more."""
        ...

    def verify_all(self) -> list[Problem]: ...


class Store(Provider, Ingester, Manager, Protocol):
    """All three faces at once, for the code that owns the store."""


def write_blob(
    ingester: Ingester,
    ref: str,
    source: IO[bytes],
    expected: Digest | str,
    size: int | None = None,
    labels: Mapping[str, str] | None = None,
) -> Digest:
    """Copy ``source`` into the store under ``ref``; content already present counts as success."""
    from kobako.errors import AlreadyExists
    from kobako.oci.digest import BUFSIZE

    expected = Digest.parse(expected)
    try:
        writer = ingester.writer(ref, expected, size)
    except AlreadyExists:
        return expected
    with writer:
        if writer.offset:  # a resumed ingest: skip what is already there
            _skip(source, writer.offset)
        while chunk := source.read(BUFSIZE):
            writer.write(chunk)
        try:
            return writer.commit(size, expected, labels)
        except AlreadyExists:
            return expected


def _skip(source: IO[bytes], count: int) -> None:
    try:
        source.seek(count, 1)
        return
    except (AttributeError, OSError, ValueError):
        pass
    while count:
        chunk = source.read(min(count, 1 << 20))
        if not chunk:
            return
        count -= len(chunk)
