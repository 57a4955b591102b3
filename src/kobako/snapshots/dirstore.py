"""What the overlay and native snapshotters share: the metastore plus one numbered directory per snapshot.

Layout under ``root``: ``metadata.db`` and ``snapshots/<id>/`` (``fs`` and, for overlay, ``work``). A new
snapshot is filled in ``snapshots/new-*`` and renamed to its id inside the write transaction that records it;
a removed one is deleted once the transaction that forgets it has committed (ids are never reused).
So a crash at any point leaves at most a directory that no record names, which :meth:`cleanup` removes.

Commits are not synced (WAL + ``synchronous = NORMAL``): after a power loss the last ones may be lost, which for
a new snapshot leaves a directory no record names. Removing a committed snapshot (a layer others may build on
again) is the exception: its record is forgotten on disk before its files go, so no record can name a layer
half deleted. An active or view snapshot's files are its own: it was being removed, whatever comes back.
"""

from __future__ import annotations

import os
import stat
import time

from kobako import filetree
from kobako import sqlite as sqlite3
from kobako.errors import FailedPrecondition, KobakoError, Unavailable
from kobako.mount import Mount
from kobako.snapshots.base import Info, Kind, Usage
from kobako.snapshots.storage import MetaStore, Record, Transaction

TYPE_CHECKING = False  # typing costs start-up time; annotations are strings anyway
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from kobako.snapshots.storage import _Transaction


class DirSnapshotter:
    """Base class; subclasses implement :meth:`_populate` and :meth:`_mounts`."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = os.path.abspath(os.fspath(root))
        os.makedirs(os.path.join(self.root, "snapshots"), exist_ok=True)
        self._meta = MetaStore(os.path.join(self.root, "metadata.db"))

    # -- hooks -------------------------------------------------------------------------------------------

    def _populate(self, new_dir: str, rec: Record) -> None:
        """Fill the directory of a new snapshot (``new_dir/fs`` must exist afterwards)."""
        raise NotImplementedError

    def _mounts(self, rec: Record) -> list[Mount]:
        raise NotImplementedError

    # -- paths -------------------------------------------------------------------------------------------

    def _dir(self, sid: int) -> str:
        return os.path.join(self.root, "snapshots", str(sid))

    def fs_dir(self, sid: int) -> str:
        return os.path.join(self._dir(sid), "fs")

    def _tx(self, *, write: bool = False, durable: bool = False) -> _MetaTx:
        return _MetaTx(self, write, durable)

    # -- Snapshotter -------------------------------------------------------------------------------------

    def stat(self, key: str) -> Info:
        with self._tx() as tx:
            return tx.get(key).info

    def update(self, key: str, labels: Mapping[str, str | None]) -> Info:
        with self._tx(write=True) as tx:
            return tx.update_labels(key, labels)

    def mounts(self, key: str) -> list[Mount]:
        with self._tx() as tx:
            rec = tx.get(key)
        if rec.kind == Kind.COMMITTED:
            raise FailedPrecondition(f"snapshot {key!r} is committed: prepare or view a child to mount it")
        return self._mounts(rec)

    def prepare(self, key: str, parent: str = "", labels: Mapping[str, str] | None = None) -> list[Mount]:
        return self._create(Kind.ACTIVE, key, parent, labels)

    def view(self, key: str, parent: str = "", labels: Mapping[str, str] | None = None) -> list[Mount]:
        return self._create(Kind.VIEW, key, parent, labels)

    def _create(self, kind: Kind, key: str, parent: str, labels: Mapping[str, str] | None) -> list[Mount]:
        final = None
        with self._tx(write=True) as tx:
            rec = tx.create(key, parent, kind, labels)
            tmp = os.path.join(self.root, "snapshots", f"new-{os.getpid()}-{time.monotonic_ns()}")
            os.mkdir(tmp, 0o711)
            try:
                self._populate(tmp, rec)
                final = self._dir(rec.id)
                if os.path.lexists(final):  # left by a crash that reused this id before its record committed
                    filetree.remove(final)
                os.rename(tmp, final)
            except BaseException:
                filetree.remove(final if final and os.path.isdir(final) else tmp, ignore_errors=True)
                raise
        return self._mounts(rec)

    def commit(self, name: str, key: str, labels: Mapping[str, str] | None = None) -> None:
        with self._tx(write=True) as tx:
            rec = tx.commit_active(name, key, labels)
            self._on_commit(rec)

    def _on_commit(self, rec: Record) -> None:
        """Hook run inside the commit transaction."""

    def remove(self, key: str) -> None:
        try:
            with self._tx(write=True) as tx:
                rec = tx.remove(key)
                if rec.kind == Kind.COMMITTED:
                    raise _Durable  # rolls back: the same removal again, in a synced transaction
        except _Durable:
            with self._tx(write=True, durable=True) as tx:
                rec = tx.remove(key)
        # after the commit: a crash from here on leaves a directory no record names, for cleanup()
        try:
            filetree.remove(self._dir(rec.id))
        except FileNotFoundError:
            pass
        except OSError as exc:
            err = Unavailable(f"snapshot {key!r} removed, but its directory could not be deleted: {exc}")
            raise err from exc

    def walk(self, predicate: Callable[[Info], bool] | None = None) -> Iterator[Info]:
        with self._tx() as tx:
            infos = tx.walk()
        return iter([i for i in infos if predicate is None or predicate(i)])

    def usage(self, key: str) -> Usage:
        with self._tx() as tx:
            rec = tx.get(key)
        return _disk_usage(self.fs_dir(rec.id))

    def cleanup(self) -> list[str]:
        removed: list[str] = []
        err: KobakoError | None = None
        with self._tx(write=True) as tx:  # the write lock keeps concurrent prepares' new-* dirs out of reach
            ids = tx.ids()
            base = os.path.join(self.root, "snapshots")
            for name in sorted(os.listdir(base)):
                if name.isdigit() and int(name) in ids:
                    continue
                try:
                    filetree.remove(os.path.join(base, name))
                    removed.append(name)
                except OSError as exc:
                    err = err or Unavailable(f"cleaning up {base}")
                    err.add_cleanup_error(exc)
        if err is not None:
            raise err
        return removed

    def checkpoint(self) -> None:
        """See :meth:`kobako.snapshots.storage.MetaStore.checkpoint` (not part of the Snapshotter protocol)."""
        try:
            self._meta.checkpoint()
        except sqlite3.OperationalError as exc:
            raise Unavailable(f"snapshot metadata at {self.root}: {exc}") from exc

    def close(self) -> None:
        self._meta.close()

    def __enter__(self) -> DirSnapshotter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Durable(Exception):
    """Internal: this removal needs a synced commit."""


class _MetaTx:
    """A metastore transaction whose SQLite errors (a busy or broken database) read as Unavailable."""

    __slots__ = ("_inner", "_root")

    def __init__(self, sn: DirSnapshotter, write: bool, durable: bool) -> None:
        self._root = sn.root
        self._inner: _Transaction | None = None
        try:
            self._inner = sn._meta.transaction(write=write, durable=durable)
        except sqlite3.OperationalError as exc:
            raise self._unavailable(exc) from exc

    def __enter__(self) -> Transaction:
        try:
            return self._inner.__enter__()  # type: ignore[union-attr]
        except sqlite3.OperationalError as exc:
            raise self._unavailable(exc) from exc

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            self._inner.__exit__(exc_type, exc, tb)  # type: ignore[union-attr]
        except sqlite3.OperationalError as err:
            raise self._unavailable(err) from err
        if isinstance(exc, sqlite3.OperationalError):
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: BaseException) -> Unavailable:
        return Unavailable(f"snapshot metadata at {self._root}: {exc}")


def _disk_usage(path: str) -> Usage:
    """Allocated bytes and inodes below ``path``, counting each hardlinked inode once."""
    seen: set[tuple[int, int]] = set()
    size = 0
    stack = [path]
    while stack:
        current = stack.pop()
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen:
            continue
        seen.add(key)
        size += st.st_blocks * 512
        if stat.S_ISDIR(st.st_mode):
            with os.scandir(current) as it:
                stack.extend(e.path for e in it)
    return Usage(size, len(seen))
