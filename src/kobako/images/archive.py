"""Read an image archive (docker-archive or oci-archive, plain or compressed) into staged files.

The archive is untrusted and may be GBs, so it is streamed once: small files (documents) are kept in memory,
big ones (layers) go straight into content-store ingests, hashed on the way. Nothing is committed here: the
loader validates the documents first and then commits the files it needs (:meth:`Staging.commit`); the rest
are aborted (:meth:`Staging.discard`). A process killed while reading leaves only ingests, which nobody holds
and ``cleanup_stale`` removes.

Entry rules: regular files and directories; symlinks and hardlinks only as aliases of other members
(``podman save`` writes ``<id>/layer.tar -> ../<diffid>.tar``), resolved by name inside the archive and never
escaping it; names are relative, without ``..``; duplicates, devices, fifos are refused.
"""

from __future__ import annotations

import hashlib
import os
import time

from kobako.archive import tarformat as tf
from kobako.errors import AlreadyExists, InvalidArgument
from kobako.oci.digest import BUFSIZE, Digest
from kobako.oci.image_spec import MAX_DOCUMENT_SIZE

TYPE_CHECKING = False  # typing costs start-up time; annotations are strings anyway
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import IO

    from kobako.content.ingest import LocalWriter
    from kobako.content.local import LocalStore

SMALL_FILE = 1 << 20  # documents live in memory below this
MEMORY_BUDGET = 64 << 20  # in-memory files in total; beyond, small files are ingested too
MAX_ENTRIES = 100_000
MAX_OPEN_INGESTS = 2_000
MAX_LINK_HOPS = 40


class StagedFile:
    """One regular file of the archive: in memory (``data``), in an open ingest (``writer``), or already in
    the content store (``existing``)."""

    __slots__ = ("data", "digest", "existing", "head", "path", "ref", "size", "writer")

    def __init__(self, path: str, size: int) -> None:
        self.path = path
        self.size = size
        self.data: bytes | None = None
        self.writer: LocalWriter | None = None
        self.ref = ""
        self.digest: Digest | None = None
        self.existing = False
        self.head = b""  # first bytes, to tell compressed layers

    def compression(self) -> str:
        from kobako.archive.compression import detect

        return detect(self.head)


def _clean(name: bytes, what: str = "entry") -> str:
    try:
        text = name.decode()
    except UnicodeDecodeError:
        raise InvalidArgument(f"archive {what} {name!r}: name is not UTF-8") from None
    if text.startswith("/"):
        raise InvalidArgument(f"archive {what} {text!r}: absolute names are not allowed")
    parts = [p for p in text.split("/") if p and p != "."]
    if ".." in parts:
        raise InvalidArgument(f"archive {what} {text!r}: '..' is not allowed")
    if "\0" in text:
        raise InvalidArgument(f"archive {what} {text!r}: NUL in name")
    return "/".join(parts)


def _resolve_symlink(path: str, target: bytes) -> str:
    """The member a symlink at ``path`` names, lexically; refuse one that leaves the archive."""
    try:
        text = target.decode()
    except UnicodeDecodeError:
        raise InvalidArgument(f"archive symlink {path!r}: target is not UTF-8") from None
    if text.startswith("/"):
        raise InvalidArgument(f"archive symlink {path!r} -> {text!r}: absolute targets are not allowed")
    parts = path.split("/")[:-1]
    for comp in text.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if not parts:
                raise InvalidArgument(f"archive symlink {path!r} -> {text!r} points outside the archive")
            parts.pop()
        else:
            parts.append(comp)
    return "/".join(parts)


def _expected_digest(path: str) -> Digest | None:
    """``blobs/<alg>/<hex>`` names its own digest (OCI image layout)."""
    parts = path.split("/")
    if len(parts) == 3 and parts[0] == "blobs":
        try:
            return Digest(parts[1], parts[2])
        except InvalidArgument:
            return None
    return None


def decompressed(stream: IO[bytes]) -> Iterator[bytes]:
    """Chunks of ``stream``, gunzipped or unzstd'ed when it starts with their magic."""
    first = stream.read(BUFSIZE)
    if first.startswith(b"\x1f\x8b"):
        import zlib

        d = zlib.decompressobj(wbits=31)
        chunk = first
        try:
            while chunk:
                out = d.decompress(chunk)
                while d.eof and d.unused_data:  # concatenated members
                    rest = d.unused_data
                    d = zlib.decompressobj(wbits=31)
                    out += d.decompress(rest)
                if out:
                    yield out
                chunk = stream.read(BUFSIZE)
        except zlib.error as exc:
            raise InvalidArgument(f"corrupt gzip archive: {exc}") from None
        if not d.eof:
            raise InvalidArgument("gzip archive is truncated")
        return
    if first.startswith(b"\x28\xb5\x2f\xfd"):
        import zstandard

        class _Again:
            def __init__(self) -> None:
                self.first: bytes | None = first

            def read(self, n: int = -1) -> bytes:
                if self.first is not None:
                    out, self.first = self.first, None
                    return out
                return stream.read(n if n and n > 0 else BUFSIZE)

        try:
            reader = zstandard.ZstdDecompressor().stream_reader(_Again(), read_across_frames=True)
            while chunk := reader.read(BUFSIZE):
                yield chunk
        except zstandard.ZstdError as exc:
            raise InvalidArgument(f"corrupt zstd archive: {exc}") from None
        return
    chunk = first
    while chunk:
        yield chunk
        chunk = stream.read(BUFSIZE)


def raise_nofile_limit() -> None:
    """Open ingests hold descriptors: let this process use what its hard limit allows."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 16
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, 1 << 16), hard))


class Staging:
    """The regular files of one archive by member name, plus the aliases (links) between them."""

    def __init__(self, content: LocalStore) -> None:
        self.content = content
        self.files: dict[str, StagedFile] = {}
        self.links: dict[str, str] = {}
        self._memory = 0
        self._open = 0
        self.prefix = f"load-{os.getpid()}-{time.monotonic_ns()}"

    # -- reading -------------------------------------------------------------------------------------------

    def read(self, stream: IO[bytes]) -> None:
        try:
            self._read(stream)
        except InvalidArgument as exc:
            if not self.files and not self.links:  # failed on the first header: say what it is not
                raise InvalidArgument(f"not an image archive (a tar file, maybe compressed): {exc}") from exc
            raise

    def _read(self, stream: IO[bytes]) -> None:
        reader = tf.TarReader(decompressed(stream))
        count = 0
        for entry in reader:
            count += 1
            if count > MAX_ENTRIES:
                raise InvalidArgument(f"archive has more than {MAX_ENTRIES} entries")
            path = _clean(entry.name)
            if entry.type == tf.DIR or not path:
                continue
            if path in self.files or path in self.links:
                raise InvalidArgument(f"archive entry {path!r} appears twice")
            if entry.type == tf.REG:
                self._stage(reader, path, entry.size)
            elif entry.type == tf.SYM:
                self.links[path] = _resolve_symlink(path, entry.linkname)
            elif entry.type == tf.LNK:
                self.links[path] = _clean(entry.linkname, "hardlink target")
            else:
                raise InvalidArgument(
                    f"archive entry {path!r}: unexpected type {entry.type!r} "
                    "(an image archive holds files, directories and links between them)"
                )

    def _stage(self, reader: tf.TarReader, path: str, size: int) -> None:
        f = StagedFile(path, size)
        self.files[path] = f
        expected = _expected_digest(path)
        small = size <= SMALL_FILE or (path.endswith(".json") and size <= MAX_DOCUMENT_SIZE)
        if small and self._memory + size <= MEMORY_BUDGET:
            f.data = reader.read_all(limit=MAX_DOCUMENT_SIZE)
            self._memory += len(f.data)
            f.head = f.data[:16]
            f.digest = Digest(
                expected.algorithm if expected else "sha256",
                hashlib.new(expected.algorithm if expected else "sha256", f.data).hexdigest(),
            )
        else:
            if expected is not None and os.path.exists(self.content.blob_path(expected)):
                f.existing, f.digest = True, expected  # content-addressed: the copy we have is as good
                return
            if self._open >= MAX_OPEN_INGESTS:
                raise InvalidArgument(f"archive has more than {MAX_OPEN_INGESTS} large files")
            f.ref = f"{self.prefix}-{len(self.files)}"
            try:
                f.writer = self.content.writer(f.ref, expected, size)
            except AlreadyExists:
                f.existing, f.digest = True, expected
                return
            self._open += 1
            for piece in reader.pieces():
                if len(f.head) < 16:
                    f.head += bytes(piece[: 16 - len(f.head)])
                f.writer.write(piece)
            f.digest = f.writer.digest()
        if expected is not None and f.digest != expected:
            raise InvalidArgument(f"archive blob {path!r}: content hashes to {f.digest}")

    # -- lookups ---------------------------------------------------------------------------------------------

    def lookup(self, path: str) -> StagedFile:
        name = _clean(path.encode(), "reference")
        for _ in range(MAX_LINK_HOPS):
            if name in self.files:
                return self.files[name]
            if name not in self.links:
                raise InvalidArgument(f"archive has no file {path!r}")
            name = self.links[name]
        raise InvalidArgument(f"archive file {path!r}: too many levels of links")

    def has(self, path: str) -> bool:
        try:
            self.lookup(path)
        except InvalidArgument:
            return False
        return True

    def document(self, path: str) -> bytes:
        """The bytes of a small member (a JSON document)."""
        f = self.lookup(path)
        if f.data is None:
            raise InvalidArgument(f"archive file {path!r} is too large for a document ({f.size} bytes)")
        return f.data

    # -- committing ------------------------------------------------------------------------------------------

    def commit(self, f: StagedFile) -> Digest:
        """Publish one staged file into the content store (verified again by the store)."""
        assert f.digest is not None
        if f.existing:
            return f.digest
        if f.writer is not None:
            try:
                f.writer.commit(f.size, f.digest)
            except AlreadyExists:
                pass
            f.writer, f.existing = None, True
            self._open -= 1
            return f.digest
        assert f.data is not None
        try:
            w = self.content.writer(f"{self.prefix}-m-{f.path}"[:4000], f.digest, f.size)
        except AlreadyExists:
            f.existing = True
            return f.digest
        with w:
            w.write(f.data)
            try:
                w.commit(f.size, f.digest)
            except AlreadyExists:
                pass
        f.existing = True
        return f.digest

    def discard(self) -> None:
        """Abort every ingest that was not committed."""
        for f in self.files.values():
            if f.writer is not None:
                try:
                    f.writer.close()
                    self.content.abort(f.ref)
                except Exception:  # a leftover ingest is cleaned later; never mask the real error
                    pass
                f.writer = None
        self._open = 0


def put_bytes(content: LocalStore, data: bytes, ref: str) -> Digest:
    """Store a small document (a manifest or config kobako wrote) in the content store."""
    digest = Digest.from_bytes(data)
    try:
        w = content.writer(ref, digest, len(data))
    except AlreadyExists:
        return digest
    with w:
        w.write(data)
        try:
            w.commit(len(data), digest)
        except AlreadyExists:
            pass
    return digest


def clean_leftover_ingests(content: LocalStore) -> list[str]:
    """Abort the ingests of loads, imports and builds whose process died (their refs are never resumed)."""
    from kobako.errors import NotFound, Unavailable

    removed = []
    for st in content.statuses():
        if not st.ref.startswith(("load-", "import-", "build-")):  # never resumed once their process died
            continue
        try:
            content.abort(st.ref)  # Unavailable while a live writer holds it
            removed.append(st.ref)
        except (Unavailable, NotFound):
            continue
    return removed
