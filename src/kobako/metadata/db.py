"""The metadata database (``<state root>/metadata.db``): image records, name → target descriptor.

SQLite in WAL mode with a busy timeout; every change runs inside ``BEGIN IMMEDIATE`` so several processes
(``kobako load`` next to ``kobako run`` next to the daemon) share one root safely. Labels are stored as JSON
text through :mod:`kobako.oci.jsoncodec` (this module is on the ``kobako run`` path: no ``json``/``re``).
"""

from __future__ import annotations

import time

from kobako import sqlite as sqlite3
from kobako.errors import InvalidArgument, Unavailable
from kobako.oci import jsoncodec

TYPE_CHECKING = False  # typing costs start-up time; annotations are strings anyway
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping


class ImageRecord(tuple):
    """One image record. ``name`` is a normalised reference, or the image ID itself for an untagged (dangling)
    image; ``media_type``/``digest``/``size`` describe the target (a manifest or an index); ``image_id`` is the
    config digest; ``created``/``updated`` are Unix times; ``labels`` a dict.

    A tuple with named fields, as ``collections.namedtuple`` makes (whose import costs ~3 ms of every
    `kobako run`): keyword construction, ``_fields``, ``_replace`` and ``_asdict`` work the same."""

    __slots__ = ()
    _fields = ("name", "media_type", "digest", "size", "image_id", "created", "updated", "labels")

    def __new__(cls, name: str, media_type: str, digest: str, size: int, image_id: str, created: float,
                updated: float, labels: dict[str, str]) -> ImageRecord:  # fmt: skip
        return tuple.__new__(cls, (name, media_type, digest, size, image_id, created, updated, labels))

    name: str = property(lambda self: self[0])  # type: ignore[assignment]
    media_type: str = property(lambda self: self[1])  # type: ignore[assignment]
    digest: str = property(lambda self: self[2])  # type: ignore[assignment]
    size: int = property(lambda self: self[3])  # type: ignore[assignment]
    image_id: str = property(lambda self: self[4])  # type: ignore[assignment]
    created: float = property(lambda self: self[5])  # type: ignore[assignment]
    updated: float = property(lambda self: self[6])  # type: ignore[assignment]
    labels: dict[str, str] = property(lambda self: self[7])  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ImageRecord({', '.join(f'{n}={v!r}' for n, v in zip(self._fields, self, strict=True))})"

    def _replace(self, **changes: object) -> ImageRecord:
        values = [changes.pop(name, value) for name, value in zip(self._fields, self, strict=True)]
        if changes:
            raise ValueError(f"unexpected field names: {list(changes)!r}")
        return ImageRecord(*values)  # type: ignore[arg-type]

    def _asdict(self) -> dict[str, object]:
        return dict(zip(self._fields, self, strict=True))

    def __getnewargs__(self) -> tuple:
        return tuple(self)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    name TEXT PRIMARY KEY,
    media_type TEXT NOT NULL,
    digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    image_id TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    labels TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS images_by_id ON images(image_id);
"""
_COLUMNS = "name, media_type, digest, size, image_id, created, updated, labels"


def _record(row: tuple) -> ImageRecord:
    labels = jsoncodec.loads(row[7], "image labels") if row[7] and row[7] != "{}" else {}
    return ImageRecord(*row[:7], labels)


class Tx:
    """Queries and changes inside one transaction (see :meth:`MetadataDB.transaction`)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._db = conn

    def get(self, name: str) -> ImageRecord | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM images WHERE name = ?", (name,)).fetchone()
        return _record(row) if row else None

    def list(self) -> list[ImageRecord]:
        return [_record(r) for r in self._db.execute(f"SELECT {_COLUMNS} FROM images ORDER BY name")]

    def by_id(self, image_id: str) -> list[ImageRecord]:
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM images WHERE image_id = ? ORDER BY name", (image_id,)
        )
        return [_record(r) for r in rows]

    def by_digest(self, digest: str) -> list[ImageRecord]:
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM images WHERE digest = ? ORDER BY name", (digest,))
        return [_record(r) for r in rows]

    def ids_with_prefix(self, prefix: str) -> list[str]:
        """Distinct image IDs starting with ``prefix`` (which must be lowercase hex after "sha256:")."""
        rows = self._db.execute(
            "SELECT DISTINCT image_id FROM images WHERE substr(image_id, 1, ?) = ? ORDER BY image_id",
            (len(prefix), prefix),
        )
        return [r[0] for r in rows]

    def put(
        self,
        name: str,
        target: Mapping[str, object],
        image_id: str,
        labels: Mapping[str, str] | None = None,
        created: float | None = None,
    ) -> ImageRecord | None:
        """Create or replace the record ``name``; return the record it replaced (or None)."""
        media_type, digest, size = target.get("mediaType"), target.get("digest"), target.get("size")
        if not isinstance(media_type, str) or not isinstance(digest, str) or not isinstance(size, int):
            raise InvalidArgument(f"image {name!r}: the target must have mediaType, digest and size")
        old = self.get(name)
        now = time.time()
        first = old.created if old is not None else (created if created is not None else now)
        self._db.execute(
            f"INSERT OR REPLACE INTO images ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (name, media_type, digest, size, image_id, first, now, jsoncodec.dumps(dict(labels or {}))),
        )
        return old

    def delete(self, name: str) -> bool:
        return self._db.execute("DELETE FROM images WHERE name = ?", (name,)).rowcount > 0


class MetadataDB:
    """One SQLite file; a connection is opened on first use and kept (processes are short-lived)."""

    def __init__(self, path: str, *, busy_timeout: float = 30.0) -> None:
        self.path = path
        self._timeout = busy_timeout
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            try:  # WAL + NORMAL: never torn, nothing lost to kill -9, durable at checkpoints (kobako.sqlite)
                self._conn = sqlite3.open_wal(self.path, _SCHEMA, timeout=self._timeout)
            except sqlite3.Error as exc:
                raise Unavailable(f"metadata database {self.path}: {exc}") from exc
        return self._conn

    def transaction(self, *, write: bool = False) -> _Transaction:
        """``with db.transaction(write=True) as tx:`` — BEGIN IMMEDIATE for writes, BEGIN for reads."""
        return _Transaction(self._connect(), write)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class _Transaction:
    """A context manager without contextlib (start-up time); rolls back on any exception."""

    __slots__ = ("_conn", "_write")

    def __init__(self, conn: sqlite3.Connection, write: bool) -> None:
        self._conn = conn
        self._write = write

    def __enter__(self) -> Tx:
        try:
            self._conn.execute("BEGIN IMMEDIATE" if self._write else "BEGIN")
        except sqlite3.OperationalError as exc:
            raise Unavailable(f"metadata database is busy: {exc}") from exc
        return Tx(self._conn)

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            self._conn.execute("ROLLBACK" if exc_type is not None else "COMMIT")
        except sqlite3.OperationalError as err:
            if exc_type is None:
                try:
                    self._conn.execute("ROLLBACK")  # never leave the connection inside a transaction
                except sqlite3.Error:
                    pass
                raise Unavailable(f"metadata database: commit failed: {err}") from err


def iter_names(records: list[ImageRecord]) -> Iterator[str]:
    """Names of real (tagged) records, skipping the dangling ones named by their ID."""
    for r in records:
        if r.name != r.image_id:
            yield r.name
