"""Content digests (``<algorithm>:<hex>``) and a verifier that hashes while bytes stream past.

Only the algorithms the OCI image spec registers are accepted: ``sha256`` (the default everywhere) and
``sha512``. The encoded part must be lowercase hex of exactly the algorithm's length, so a digest string can
be used as a file name without further checks.
"""

from __future__ import annotations

import hashlib

from kobako.errors import InvalidArgument

TYPE_CHECKING = False  # typing and dataclasses cost ~25 ms at start-up; annotations are strings anyway
if TYPE_CHECKING:
    from typing import IO, Protocol

    class _Writable(Protocol):
        def write(self, data: bytes, /) -> object: ...


#: Hex length of each supported algorithm's digest.
ALGORITHMS: dict[str, int] = {"sha256": 64, "sha512": 128}
#: Default algorithm for new content.
CANONICAL = "sha256"
#: Buffer size for streaming copies: big enough to amortise syscalls, small enough to stay in cache.
BUFSIZE = 1 << 20

_HEX = frozenset("0123456789abcdef")


class Digest(tuple):
    """A validated content digest such as ``sha256:e3b0c4…``: an immutable, hashable, ordered pair."""

    __slots__ = ()

    def __new__(cls, algorithm: str, encoded: str) -> Digest:
        want = ALGORITHMS.get(algorithm)
        if want is None:
            raise InvalidArgument(
                f"unsupported digest algorithm {algorithm!r} (want one of {sorted(ALGORITHMS)})"
            )
        if not isinstance(encoded, str) or len(encoded) != want or not _HEX.issuperset(encoded):
            raise InvalidArgument(
                f"invalid {algorithm} digest {encoded!r}: want {want} lowercase hex characters"
            )
        return tuple.__new__(cls, (algorithm, encoded))

    def __getnewargs__(self) -> tuple[str, str]:
        return (self[0], self[1])

    @property
    def algorithm(self) -> str:
        return self[0]

    @property
    def encoded(self) -> str:
        return self[1]

    @classmethod
    def parse(cls, value: str | Digest) -> Digest:
        """Parse ``"<algorithm>:<hex>"``; raise InvalidArgument naming the value when malformed."""
        if isinstance(value, Digest):
            return value
        if not isinstance(value, str):
            raise InvalidArgument(f"digest must be a string, not {type(value).__name__}")
        algorithm, sep, encoded = value.partition(":")
        if not sep:
            raise InvalidArgument(f"invalid digest {value!r}: want '<algorithm>:<hex>'")
        return cls(algorithm, encoded)

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview, algorithm: str = CANONICAL) -> Digest:
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    @classmethod
    def from_stream(cls, stream: IO[bytes], algorithm: str = CANONICAL) -> tuple[Digest, int]:
        """Digest and size of everything left in ``stream``."""
        verifier = Verifier(algorithm)
        while chunk := stream.read(BUFSIZE):
            verifier.update(chunk)
        return verifier.digest(), verifier.size

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.encoded}"

    def __repr__(self) -> str:
        return f"Digest('{self}')"


class Verifier:
    """Hash and count bytes as they pass; compare with what was expected at the end."""

    __slots__ = ("_hash", "algorithm", "size")

    def __init__(self, algorithm: str = CANONICAL) -> None:
        if algorithm not in ALGORITHMS:
            raise InvalidArgument(f"unsupported digest algorithm {algorithm!r}")
        self.algorithm = algorithm
        self._hash = hashlib.new(algorithm)
        self.size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._hash.update(data)
        self.size += len(data)

    def digest(self) -> Digest:
        return Digest(self.algorithm, self._hash.hexdigest())

    def verify(
        self, expected: Digest | str | None = None, size: int | None = None, *, what: str = "content"
    ) -> Digest:
        """Return the digest; raise InvalidArgument if it or the size differs from what was expected."""
        if size is not None and size != self.size:
            raise InvalidArgument(f"{what}: size mismatch: got {self.size} bytes, expected {size}")
        got = self.digest()
        if expected is not None and Digest.parse(expected) != got:
            raise InvalidArgument(f"{what}: digest mismatch: got {got}, expected {expected}")
        return got

    def copy(self, src: IO[bytes], dst: _Writable, *, limit: int | None = None) -> int:
        """Copy ``src`` to ``dst`` (up to ``limit`` bytes) hashing on the way; return the bytes copied."""
        copied = 0
        while limit is None or copied < limit:
            want = BUFSIZE if limit is None else min(BUFSIZE, limit - copied)
            chunk = src.read(want)
            if not chunk:
                break
            self.update(chunk)
            dst.write(chunk)
            copied += len(chunk)
        return copied


def verify_stream(
    stream: IO[bytes], expected: Digest | str, size: int | None = None, *, what: str = "content"
) -> Digest:
    """Read ``stream`` to its end and check it hashes to ``expected`` (and has ``size`` bytes if given)."""
    expected = Digest.parse(expected)
    verifier = Verifier(expected.algorithm)
    while chunk := stream.read(BUFSIZE):
        verifier.update(chunk)
    return verifier.verify(expected, size, what=what)
