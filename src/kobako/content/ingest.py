"""Ingests of the local content store: one directory per ref under ``<root>/ingest``, held under ``flock``.

``ingest/<sha256(ref)>/`` holds ``lock`` (the flock target), ``meta`` (JSON: ref, expected digest, total,
start time) and ``data``. The kernel drops the lock when its holder dies, even by ``kill -9``, so an ingest no
one holds is a leftover: resumable by a writer with the same ref, or removable by ``cleanup_stale``. Data moves
into ``blobs/`` only by an atomic rename after its size and digest were verified and it was fsynced.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time

from kobako.content.base import Status
from kobako.errors import AlreadyExists, FailedPrecondition, InvalidArgument, Unavailable, from_oserror
from kobako.oci.digest import BUFSIZE, Digest, Verifier

TYPE_CHECKING = False  # typing costs start-up time; annotations are strings anyway
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import IO

    from kobako.content.local import LocalStore


class LocalWriter:
    """An ingest held under ``flock``. See :class:`kobako.content.base.Writer`."""

    def __init__(
        self, store: LocalStore, ref: str, path: str, expected: Digest | None, total: int | None
    ) -> None:
        self.ref = ref
        self._store = store
        self._path = path
        self._expected = expected
        self._total = total
        self._lock = acquire(path, ref)
        self._file: IO[bytes] | None = None
        try:
            self._open_data()
        except BaseException:
            os.close(self._lock)
            raise

    def _open_data(self) -> None:
        meta_path = os.path.join(self._path, "meta")
        meta = {}
        with contextlib.suppress(FileNotFoundError, ValueError), open(meta_path) as f:
            meta = json.load(f)
        algorithm = self._expected.algorithm if self._expected else "sha256"
        same = meta.get("ref") == self.ref and meta.get("expected") == (
            str(self._expected) if self._expected else None
        )
        fd = os.open(os.path.join(self._path, "data"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._file = open(fd, "r+b", buffering=BUFSIZE)  # noqa: SIM115 - closed by close()/commit()
        self._verifier = Verifier(algorithm)
        if same:  # resume: rehash what an earlier writer left
            while chunk := self._file.read(BUFSIZE):
                self._verifier.update(chunk)
            self._started = float(meta.get("started_at", time.time()))
        else:
            self._file.truncate(0)
            self._started = time.time()
            meta = {"ref": self.ref, "expected": str(self._expected) if self._expected else None}
            meta["total"] = self._total
            meta["started_at"] = self._started
            tmp = meta_path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(meta, f)
            os.replace(tmp, meta_path)
        if self._total is None and isinstance(meta.get("total"), int):
            self._total = meta["total"]

    @property
    def offset(self) -> int:
        return self._verifier.size

    def write(self, data: bytes | bytearray | memoryview, /) -> int:
        f = self._require_open()
        if self._total is not None and self._verifier.size + len(data) > self._total:
            raise InvalidArgument(f"ingest {self.ref!r}: more than the expected {self._total} bytes written")
        self._verifier.update(data)
        f.write(data)
        return len(data)

    def digest(self) -> Digest:
        return self._verifier.digest()

    def truncate(self, size: int) -> None:
        if size != 0:
            raise InvalidArgument("only truncate(0) is supported")
        f = self._require_open()
        f.seek(0)
        f.truncate(0)
        self._verifier = Verifier(self._verifier.algorithm)

    def status(self) -> Status:
        return Status(self.ref, self.offset, self._total, self._expected, self._started, time.time())

    def commit(
        self,
        size: int | None = None,
        expected: Digest | str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> Digest:
        f = self._require_open()
        size = size if size is not None else self._total
        expected = Digest.parse(expected) if expected is not None else self._expected
        try:
            f.flush()
            os.fsync(f.fileno())
            got = self._verifier.verify(expected, size, what=f"ingest {self.ref!r}")
        except InvalidArgument:
            self._discard()  # the bytes are wrong: resuming them could never succeed
            raise
        target = self._store.blob_path(got)
        if os.path.exists(target):
            self._discard()
            raise AlreadyExists(f"content {got} already exists")
        os.fchmod(f.fileno(), 0o444)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        try:
            # rename, never link: no inode is ever shared between a blob and a writable ingest file
            os.rename(os.path.join(self._path, "data"), target)
            _fsync_dir(os.path.dirname(target))
        except OSError as exc:
            self._discard()
            raise from_oserror(exc, f"publishing {got}") from exc
        self._discard()
        if labels:
            self._store.update(got, labels)
        return got

    def close(self) -> None:
        """Release the ingest, keeping its data so that a later writer with the same ref resumes it."""
        if self._file is None:
            return
        try:
            self._file.close()
        finally:
            self._file = None
            os.close(self._lock)

    def __enter__(self) -> LocalWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _require_open(self) -> IO[bytes]:
        if self._file is None:
            raise FailedPrecondition(f"ingest {self.ref!r} is closed")
        return self._file

    def _discard(self) -> None:
        assert self._file is not None
        self._file.close()
        self._file = None
        remove_ingest(self._path, self._lock)


def acquire(path: str, ref: str) -> int:
    """Create (if needed) and lock the ingest dir; Unavailable if another writer holds it."""
    for _ in range(100):
        os.makedirs(path, exist_ok=True)
        try:
            fd = os.open(os.path.join(path, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:  # removed under us between makedirs and open: start again
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise Unavailable(f"ingest {ref!r} is held by another writer") from None
        if os.fstat(fd).st_nlink > 0:  # still the live lock file, not one an aborter just unlinked
            return fd
        os.close(fd)
    raise Unavailable(f"ingest {ref!r}: could not lock its directory")


def try_lock(path: str) -> int | None:
    """Lock an existing ingest dir without creating anything; None if someone holds it."""
    try:
        fd = os.open(os.path.join(path, "lock"), os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        # a writer died between mkdir and creating the lock: lock a fresh file to take the dir over
        try:
            fd = os.open(os.path.join(path, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def remove_ingest(path: str, lock: int) -> None:
    """Remove an ingest dir whose lock we hold: rename it out of the way first so no one reuses it."""
    grave = os.path.join(
        os.path.dirname(path), f".rm-{os.path.basename(path)}-{os.getpid()}-{time.monotonic_ns()}"
    )
    try:
        os.rename(path, grave)
        os.unlink(os.path.join(grave, "lock"))  # a waiter that opened it sees st_nlink == 0 and retries
        shutil.rmtree(grave)
    finally:
        os.close(lock)


def read_status(path: str) -> Status:
    with open(os.path.join(path, "meta")) as f:
        meta = json.load(f)
    size = os.stat(os.path.join(path, "data")).st_size
    exp = Digest.parse(meta["expected"]) if meta.get("expected") else None
    return Status(meta["ref"], size, meta.get("total"), exp, float(meta["started_at"]), last_touched(path))


def last_touched(path: str) -> float:
    """When the ingest's data last changed; 0 for one that died before writing anything (never "fresh")."""
    times = [0.0]
    for name in ("data", "meta"):
        with contextlib.suppress(FileNotFoundError):
            times.append(os.stat(os.path.join(path, name)).st_mtime)
    return max(times)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
