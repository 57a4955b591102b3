"""The build cache: step cache keys → the image state after the step, plus remembered file digests.

``<state root>/build/cache.db`` (SQLite, WAL, busy timeout) holds two tables:

* ``steps``: a cache key → the state the step produced (the whole image config, history included, and the
  layer descriptors). A key chains the parent's key with everything that decides the step's result
  (:func:`step_key`): the instruction after expansion, the environment and build arguments in effect, the
  user/workdir/shell for RUN, and for COPY/ADD a checksum of the sources. Reusing the state reuses its
  ``created`` times too, so a fully cached build gives the same image ID again.
* ``files``: a context file's path and (device, inode, size, mtime, ctime) → its sha256, so a cached build
  does not read every file of a big context again; any change to the file changes the stamp.

Entries are not roots for GC: an entry whose blobs were collected is dropped when it is next looked up
(:meth:`valid` is the caller's check), and the step runs again.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time

from kobako.errors import Unavailable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS steps (key TEXT PRIMARY KEY, state TEXT NOT NULL, created REAL NOT NULL,
                                  used REAL NOT NULL);
CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, stamp TEXT NOT NULL, digest TEXT NOT NULL);
"""


def step_key(parent: str, *parts: object) -> str:
    """The cache key of a step on top of ``parent`` (a key) described by ``parts`` (JSON-able)."""
    data = json.dumps([parent, *parts], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(data.encode()).hexdigest()


class BuildCache:
    def __init__(self, state_root: str) -> None:
        self.path = os.path.join(state_root, "build", "cache.db")
        self._conn: sqlite3.Connection | None = None
        self._pending: dict[str, tuple[str, str]] = {}

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            try:
                conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA busy_timeout = 30000")
                if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
                conn.executescript(_SCHEMA)
            except sqlite3.Error as exc:
                raise Unavailable(f"build cache {self.path}: {exc}") from exc
            self._conn = conn
        return self._conn

    # -- steps -------------------------------------------------------------------------------------------

    def get(self, key: str) -> dict | None:
        row = self._db().execute("SELECT state FROM steps WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        try:
            doc = json.loads(row[0])
        except ValueError:
            self.drop(key)
            return None
        self._db().execute("UPDATE steps SET used = ? WHERE key = ?", (time.time(), key))
        return doc if isinstance(doc, dict) else None

    def put(self, key: str, state: dict) -> None:
        now = time.time()
        self._db().execute(
            "INSERT OR REPLACE INTO steps (key, state, created, used) VALUES (?, ?, ?, ?)",
            (key, json.dumps(state, separators=(",", ":")), now, now),
        )

    def drop(self, key: str) -> None:
        self._db().execute("DELETE FROM steps WHERE key = ?", (key,))

    def count(self) -> int:
        return int(self._db().execute("SELECT COUNT(*) FROM steps").fetchone()[0])

    # -- file digests --------------------------------------------------------------------------------------

    def file_digest(self, path: str, stamp: tuple) -> str | None:
        want = ",".join(map(str, stamp))
        pending = self._pending.get(path)
        if pending is not None:
            return pending[1] if pending[0] == want else None
        row = self._db().execute("SELECT stamp, digest FROM files WHERE path = ?", (path,)).fetchone()
        return row[1] if row is not None and row[0] == want else None

    def remember_file_digest(self, path: str, stamp: tuple, digest: str) -> None:
        self._pending[path] = (",".join(map(str, stamp)), digest)

    def flush(self) -> None:
        """Write remembered file digests (one transaction: thousands of files cost one commit)."""
        if not self._pending:
            return
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT OR REPLACE INTO files (path, stamp, digest) VALUES (?, ?, ?)",
                [(p, s, d) for p, (s, d) in self._pending.items()],
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._pending.clear()

    def close(self) -> None:
        if self._conn is not None:
            try:
                self.flush()
            finally:
                self._conn.close()
                self._conn = None
