"""The snapshot metastore: one SQLite file recording every snapshot's key, kind, parent, id and labels.

Numeric ids name the snapshot directories and never change: committing an active snapshot renames its *key*,
not its directory. The database runs in WAL mode with a busy timeout (:func:`kobako.sqlite.open_wal`), and every
change happens inside ``BEGIN IMMEDIATE``, so several processes (``kobako run`` next to the daemon) can use one
root safely. Commits are not synced (``synchronous = NORMAL``) unless the transaction asks to be ``durable``.
"""

from __future__ import annotations

import _thread  # not threading: that module costs ~1 ms of every `kobako run`; these two names are all we use
import time

from kobako import sqlite as sqlite3
from kobako.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from kobako.oci import jsoncodec
from kobako.snapshots.base import Info, Kind

TYPE_CHECKING = False  # typing costs start-up time; annotations are strings anyway
if TYPE_CHECKING:
    from collections.abc import Mapping

_SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    parent_id INTEGER REFERENCES snapshots(id),
    kind TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    labels TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS snapshots_parent ON snapshots(parent_id);
"""
_CHAIN = """
WITH RECURSIVE chain(id, parent_id, depth) AS (
    SELECT id, parent_id, 0 FROM snapshots WHERE id = ?
    UNION ALL
    SELECT s.id, s.parent_id, c.depth + 1 FROM snapshots s JOIN chain c ON s.id = c.parent_id
)
SELECT id FROM chain WHERE depth > 0 ORDER BY depth
"""
_SELECT = (
    "SELECT s.id, s.key, s.kind, p.key, s.created, s.updated, s.labels "
    "FROM snapshots s LEFT JOIN snapshots p ON p.id = s.parent_id"
)


class Record(tuple):
    """A snapshot as stored: its :class:`Info`, its directory ``id`` and its ancestors' ids (nearest first).
    A plain tuple subclass: ``collections.namedtuple`` costs ~3 ms of every `kobako run` to import."""

    __slots__ = ()

    def __new__(cls, id: int, info: Info, parents: list[int]) -> Record:
        return tuple.__new__(cls, (id, info, parents))

    id: int = property(lambda self: self[0])  # type: ignore[assignment]
    info: Info = property(lambda self: self[1])  # type: ignore[assignment]
    parents: list[int] = property(lambda self: self[2])  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Record(id={self[0]!r}, info={self[1]!r}, parents={self[2]!r})"

    @property
    def key(self) -> str:
        return self.info.key

    @property
    def kind(self) -> Kind:
        return self.info.kind


def _check_key(key: str) -> None:
    if not key or not isinstance(key, str) or "\0" in key or len(key) > 4096:
        raise InvalidArgument(f"invalid snapshot key {key!r}")


def _record(row: tuple, parents: list[int] | None = None) -> Record:
    sid, key, kind, parent, created, updated, labels = row
    info = Info(
        key,
        Kind(kind),
        parent or "",
        jsoncodec.loads(labels, what=f"labels of snapshot {key}"),
        created,
        updated,
    )
    return Record(sid, info, parents or [])


class Transaction:
    """Queries and changes inside one SQLite transaction (see :meth:`MetaStore.transaction`)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._db = conn

    def get(self, key: str) -> Record:
        row = self._db.execute(_SELECT + " WHERE s.key = ?", (key,)).fetchone()
        if row is None:
            raise NotFound(f"snapshot {key!r} not found")
        return _record(row, [r[0] for r in self._db.execute(_CHAIN, (row[0],))])

    def walk(self) -> list[Info]:
        return [_record(row).info for row in self._db.execute(_SELECT + " ORDER BY s.id")]

    def ids(self) -> set[int]:
        return {row[0] for row in self._db.execute("SELECT id FROM snapshots")}

    def create(self, key: str, parent: str, kind: Kind, labels: Mapping[str, str] | None) -> Record:
        _check_key(key)
        if kind == Kind.COMMITTED:
            raise InvalidArgument("snapshots are committed with commit(), not created committed")
        parent_id = None
        if parent:
            prow = self.get(parent)
            if prow.kind != Kind.COMMITTED:
                raise FailedPrecondition(f"parent snapshot {parent!r} is {prow.kind.value}, not committed")
            parent_id = prow.id
        now = time.time()
        try:
            self._db.execute(
                "INSERT INTO snapshots (key, parent_id, kind, created, updated, labels) VALUES (?, ?, ?, ?, ?, ?)",
                (key, parent_id, kind.value, now, now, jsoncodec.dumps(dict(labels or {}), sort_keys=True)),
            )
        except sqlite3.IntegrityError:
            raise AlreadyExists(f"snapshot {key!r} already exists") from None
        return self.get(key)

    def commit_active(self, name: str, key: str, labels: Mapping[str, str] | None) -> Record:
        _check_key(name)
        rec = self.get(key)
        if rec.kind != Kind.ACTIVE:
            raise FailedPrecondition(
                f"snapshot {key!r} is {rec.kind.value}: only an active snapshot can be committed"
            )
        merged = {**rec.info.labels, **(labels or {})}
        try:
            self._db.execute(
                "UPDATE snapshots SET key = ?, kind = ?, updated = ?, labels = ? WHERE id = ?",
                (name, Kind.COMMITTED.value, time.time(), jsoncodec.dumps(merged, sort_keys=True), rec.id),
            )
        except sqlite3.IntegrityError:
            raise AlreadyExists(f"snapshot {name!r} already exists") from None
        return self.get(name)

    def update_labels(self, key: str, labels: Mapping[str, str | None]) -> Info:
        rec = self.get(key)
        merged = {k: v for k, v in {**rec.info.labels, **labels}.items() if v is not None}
        self._db.execute(
            "UPDATE snapshots SET labels = ?, updated = ? WHERE id = ?",
            (jsoncodec.dumps(merged, sort_keys=True), time.time(), rec.id),
        )
        return self.get(key).info

    def remove(self, key: str) -> Record:
        rec = self.get(key)
        child = self._db.execute(
            "SELECT key FROM snapshots WHERE parent_id = ? LIMIT 1", (rec.id,)
        ).fetchone()
        if child is not None:
            raise FailedPrecondition(f"snapshot {key!r} has children (for example {child[0]!r})")
        self._db.execute("DELETE FROM snapshots WHERE id = ?", (rec.id,))
        return rec


class MetaStore:
    """The SQLite file; one connection per thread, opened lazily."""

    def __init__(self, path: str, *, busy_timeout: float = 30.0) -> None:
        self.path = path
        self._timeout = busy_timeout
        self._local = _thread._local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = _thread.allocate_lock()

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.open_wal(self.path, _SCHEMA, timeout=self._timeout, foreign_keys=True)
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    def transaction(self, *, write: bool = False, durable: bool = False) -> _Transaction:
        """``BEGIN IMMEDIATE`` for writes (waits for other writers up to the busy timeout), ``BEGIN`` to read.
        ``durable``: the commit is on disk when the block ends (a synced WAL), not only safe from ``kill -9``."""
        return _Transaction(self._conn(), write, durable)

    def checkpoint(self) -> None:
        """Copy what is committed (by any process) into the database file now, syncing both files, without
        waiting for other readers or writers; the connection stays open (it is opened if it was not). A
        caller with time to spare takes the work a later close would do off its critical path, and keeps the
        WAL short for processes that exit without closing, as `kobako run` does."""
        self._conn().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def close(self) -> None:
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()
        self._local = _thread._local()


class _Transaction:
    """``with store.transaction() as tx:`` without contextlib (start-up time): COMMIT at the end of the block,
    ROLLBACK on any exception."""

    __slots__ = ("_conn", "_durable", "_write")

    def __init__(self, conn: sqlite3.Connection, write: bool, durable: bool) -> None:
        self._conn = conn
        self._write = write
        self._durable = durable

    def __enter__(self) -> Transaction:
        if self._durable:  # SQLite refuses to change it inside a transaction
            self._conn.execute("PRAGMA synchronous = FULL")
        try:
            self._conn.execute("BEGIN IMMEDIATE" if self._write else "BEGIN")
        except BaseException:
            self._restore()
            raise
        return Transaction(self._conn)

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None:
                try:
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._rollback()  # never leave the connection inside a transaction
                    raise
            else:
                self._rollback()
        finally:
            self._restore()

    def _rollback(self) -> None:
        try:
            self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # SQLite already rolled it back (the error that brought us here is what matters)

    def _restore(self) -> None:
        if self._durable:
            self._conn.execute("PRAGMA synchronous = NORMAL")
