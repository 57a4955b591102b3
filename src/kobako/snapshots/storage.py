"""The snapshot metastore: one SQLite file recording every snapshot's key, kind, parent, id and labels.

Numeric ids name the snapshot directories and never change: committing an active snapshot renames its *key*,
not its directory. The database runs in WAL mode with a busy timeout, and every change happens inside
``BEGIN IMMEDIATE``, so several processes (``kobako run`` next to the daemon) can use one root safely.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import namedtuple

from kobako import sqlite as sqlite3
from kobako.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from kobako.oci import jsoncodec
from kobako.snapshots.base import Info, Kind

TYPE_CHECKING = False  # typing costs start-up time; annotations are strings anyway
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

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


class Record(namedtuple("Record", "id info parents")):
    """A snapshot as stored: its :class:`Info`, its directory ``id`` and its ancestors' ids (nearest first)."""

    __slots__ = ()

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
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
            )
            conn.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.executescript(_SCHEMA)
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    @contextlib.contextmanager
    def transaction(self, *, write: bool = False) -> Iterator[Transaction]:
        """``BEGIN IMMEDIATE`` for writes (waits for other writers up to the busy timeout), ``BEGIN`` to read."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield Transaction(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()
        self._local = threading.local()
