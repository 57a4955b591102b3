"""A content store on the local filesystem.

Layout under ``root``::

    blobs/<alg>/<hex>          published blobs, read-only files named by their digest
    labels/<alg>/<hex>.json    optional labels of a blob
    ingest/<sha256(ref)>/      one open or interrupted ingest: ``lock``, ``meta`` (JSON), ``data``

Writing follows ingest → verify size and digest → fsync → rename (DESIGN.md, example 5): a blob appears
under ``blobs/`` whole or not at all. Each ingest is guarded by an ``flock`` on its ``lock`` file, which the
kernel drops when the holder dies (even by ``kill -9``), so a leftover ingest is simply one nobody holds: it can
be resumed, aborted or removed by :meth:`LocalStore.cleanup_stale`, and never touches ``blobs/``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time

from kobako.content.base import Info, Problem, Status
from kobako.content.ingest import LocalWriter, last_touched, read_status, remove_ingest, try_lock
from kobako.errors import AlreadyExists, InvalidArgument, NotFound, Unavailable
from kobako.oci.digest import ALGORITHMS, Digest

TYPE_CHECKING = False  # typing costs start-up time; annotations are strings anyway
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from typing import IO


class LocalStore:
    """Provider, Ingester and Manager over one directory tree (see the module docstring)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = os.path.abspath(os.fspath(root))
        for sub in ("blobs", "ingest", "labels"):
            os.makedirs(os.path.join(self.root, sub), exist_ok=True)

    # -- paths -------------------------------------------------------------------------------------------

    def blob_path(self, digest: Digest | str) -> str:
        d = Digest.parse(digest)
        return os.path.join(self.root, "blobs", d.algorithm, d.encoded)

    def _labels_path(self, d: Digest) -> str:
        return os.path.join(self.root, "labels", d.algorithm, d.encoded + ".json")

    def _ingest_dir(self, ref: str) -> str:
        if not ref or len(ref) > 4096 or "\0" in ref:
            raise InvalidArgument(f"invalid ingest ref {ref!r}")
        return os.path.join(self.root, "ingest", hashlib.sha256(ref.encode()).hexdigest())

    # -- Provider ----------------------------------------------------------------------------------------

    def info(self, digest: Digest | str) -> Info:
        d = Digest.parse(digest)
        try:
            st = os.stat(self.blob_path(d))
        except FileNotFoundError:
            raise NotFound(f"content {d} not found") from None
        labels, updated = self._read_labels(d)
        return Info(d, st.st_size, st.st_mtime, max(updated, st.st_mtime), labels)

    def reader(self, digest: Digest | str) -> IO[bytes]:
        d = Digest.parse(digest)
        try:
            return open(self.blob_path(d), "rb")
        except FileNotFoundError:
            raise NotFound(f"content {d} not found") from None

    def read_bytes(self, digest: Digest | str, *, limit: int = 64 << 20) -> bytes:
        """Whole small blob (manifests, configs); InvalidArgument above ``limit`` bytes."""
        with self.reader(digest) as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise InvalidArgument(f"content {digest} is larger than {limit} bytes")
        return data

    # -- Ingester ----------------------------------------------------------------------------------------

    def writer(
        self, ref: str, expected_digest: Digest | str | None = None, expected_size: int | None = None
    ) -> LocalWriter:
        exp = Digest.parse(expected_digest) if expected_digest is not None else None
        if expected_size is not None and expected_size < 0:
            raise InvalidArgument(f"ingest {ref!r}: negative size {expected_size}")
        if exp is not None and os.path.exists(self.blob_path(exp)):
            raise AlreadyExists(f"content {exp} already exists")
        return LocalWriter(self, ref, self._ingest_dir(ref), exp, expected_size)

    # -- Manager -----------------------------------------------------------------------------------------

    def list(self, labels: Mapping[str, str] | None = None) -> Iterator[Info]:
        for d in self._digests():
            try:
                info = self.info(d)
            except NotFound:  # deleted while we walked
                continue
            if not labels or all(info.labels.get(k) == v for k, v in labels.items()):
                yield info

    def update(self, digest: Digest | str, labels: Mapping[str, str | None]) -> Info:
        d = Digest.parse(digest)
        self.info(d)  # NotFound first
        current, _ = self._read_labels(d)
        merged = {k: v for k, v in {**current, **labels}.items() if v is not None}
        path = self._labels_path(d)
        if merged:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path}.{os.getpid()}.{time.monotonic_ns()}.tmp"
            with open(tmp, "w") as f:
                json.dump(merged, f, sort_keys=True)
            os.replace(tmp, path)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        return self.info(d)

    def delete(self, digest: Digest | str) -> None:
        d = Digest.parse(digest)
        try:
            os.unlink(self.blob_path(d))
        except FileNotFoundError:
            raise NotFound(f"content {d} not found") from None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._labels_path(d))

    def statuses(self) -> list[Status]:
        out = []
        for name in sorted(os.listdir(os.path.join(self.root, "ingest"))):
            with contextlib.suppress(OSError, ValueError, KeyError, InvalidArgument):
                out.append(read_status(os.path.join(self.root, "ingest", name)))
        return out

    def status(self, ref: str) -> Status:
        try:
            return read_status(self._ingest_dir(ref))
        except FileNotFoundError:
            raise NotFound(f"ingest {ref!r} not found") from None

    def abort(self, ref: str) -> None:
        path = self._ingest_dir(ref)
        if not os.path.isdir(path):
            raise NotFound(f"ingest {ref!r} not found")
        lock = try_lock(path)
        if lock is None:
            raise Unavailable(f"ingest {ref!r} is held by another writer")
        remove_ingest(path, lock)

    def cleanup_stale(self, older_than: float = 0.0) -> list[str]:
        """Remove unheld ingests idle for ``older_than`` seconds or more; return their directory names."""
        removed = []
        base = os.path.join(self.root, "ingest")
        for name in sorted(os.listdir(base)):
            path = os.path.join(base, name)
            if name.startswith(".rm-"):  # a removal that was interrupted
                shutil.rmtree(path, ignore_errors=True)
                continue
            lock = try_lock(path)
            if lock is None:
                continue
            try:
                idle = time.time() - last_touched(path)
            except OSError:
                idle = float("inf")
            if idle >= older_than:
                remove_ingest(path, lock)
                removed.append(name)
            else:
                os.close(lock)
        return removed

    def verify_all(self) -> list[Problem]:
        """Rehash every blob; report blobs whose bytes do not match their name, and stray files."""
        problems: list[Problem] = []
        base = os.path.join(self.root, "blobs")
        for alg in sorted(os.listdir(base)):
            adir = os.path.join(base, alg)
            if alg not in ALGORITHMS:
                problems.append(Problem(adir, "unknown digest algorithm directory"))
                continue
            for name in sorted(os.listdir(adir)):
                path = os.path.join(adir, name)
                try:
                    d = Digest(alg, name)
                except InvalidArgument:
                    problems.append(Problem(path, "file name is not a digest"))
                    continue
                try:
                    with open(path, "rb") as f:
                        got, _ = Digest.from_stream(f, alg)
                except OSError as exc:
                    problems.append(Problem(path, f"unreadable: {exc.strerror or exc}", d))
                    continue
                if got != d:
                    problems.append(Problem(path, f"content hashes to {got}", d))
        return problems

    # -- helpers -----------------------------------------------------------------------------------------

    def _digests(self) -> Iterator[Digest]:
        base = os.path.join(self.root, "blobs")
        for alg in sorted(os.listdir(base)):
            if alg not in ALGORITHMS:
                continue
            for name in sorted(os.listdir(os.path.join(base, alg))):
                with contextlib.suppress(InvalidArgument):
                    yield Digest(alg, name)

    def _read_labels(self, d: Digest) -> tuple[dict[str, str], float]:
        try:
            with open(self._labels_path(d)) as f:
                return dict(json.load(f)), os.fstat(f.fileno()).st_mtime
        except FileNotFoundError:
            return {}, 0.0
