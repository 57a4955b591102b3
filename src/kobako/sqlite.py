"""SQLite for kobako's metadata stores, without the ``sqlite3`` package's start-up cost.

``import sqlite3`` loads ``sqlite3.dbapi2``, which imports ``datetime``, ``collections`` and friends to
register date adapters kobako never uses (several ms of every `kobako run`). The C module ``_sqlite3``
is what does the work; this module re-exports the few names kobako needs from it, and falls back to the
package where the C module is missing.

:func:`open_wal` is how every store opens its file: WAL journal, ``synchronous = NORMAL``, a busy timeout,
the schema. WAL + NORMAL never tears the database: a process killed at any point (``kill -9``) loses
nothing it committed (the WAL is in the page cache), and after a power loss the database is intact, at
worst without its last commits (the WAL is synced at checkpoints, not at every commit). Commits cost no
fsync, which is what keeps `kobako run` fast. A store that deletes files once a commit forgets them asks
for a synced commit where a lost one would matter (see kobako.snapshots.dirstore).
"""

from __future__ import annotations

import os
import sys


def _import_c_module() -> None:
    """Import ``_sqlite3`` without ``functools``. The C module takes ``functools.lru_cache`` when it loads (for
    each connection's statement cache), and ``functools`` pulls in ``collections``, ``types``, ``reprlib``,
    ``keyword``, ``operator`` ...: ~3 ms of every `kobako run`. ``lru_cache(n)(f)`` is the C
    ``_functools._lru_cache_wrapper`` in the end; a stand-in module offers just that while ``_sqlite3``
    loads, and is gone right after (a later ``import functools`` gets the real one). Should a Python want
    more of ``functools`` here, the import is simply retried with the real module."""
    if "functools" in sys.modules or "_sqlite3" in sys.modules:
        return
    try:
        from _functools import _lru_cache_wrapper
    except ImportError:  # pragma: no cover - not CPython
        return

    def lru_cache(maxsize: int | None = 128, typed: bool = False) -> object:
        def decorate(function: object) -> object:
            return _lru_cache_wrapper(function, maxsize, typed, _cache_info)

        return decorate

    stand_in = type(sys)("functools")
    stand_in.lru_cache = lru_cache  # type: ignore[attr-defined]
    sys.modules["functools"] = stand_in
    try:
        import _sqlite3  # noqa: F401
    except Exception:
        sys.modules.pop("_sqlite3", None)
    finally:
        if sys.modules.get("functools") is stand_in:
            del sys.modules["functools"]


def _cache_info(
    hits: int, misses: int, maxsize: int | None, currsize: int
) -> tuple[int, int, int | None, int]:
    return hits, misses, maxsize, currsize


_import_c_module()
try:
    from _sqlite3 import Connection, Error, IntegrityError, OperationalError, connect
except ImportError:  # pragma: no cover - an interpreter without the C module's public names
    from sqlite3 import Connection, Error, IntegrityError, OperationalError, connect

__all__ = ["Connection", "Error", "IntegrityError", "OperationalError", "connect", "open_wal"]

_WAL_VERSION = b"\x02\x02"  # header bytes 18-19 (file format write/read versions): 2 means WAL


def open_wal(path: str, schema: str, *, timeout: float = 30.0, foreign_keys: bool = False) -> Connection:
    """A connection to ``path`` (created if missing) in autocommit mode (transactions are explicit), usable
    from any thread, in WAL mode with ``synchronous = NORMAL``, waiting up to ``timeout`` seconds for locks
    held by other processes; ``schema`` (``CREATE ... IF NOT EXISTS`` statements) is applied.

    The journal mode is persistent in the file, so it is set only when the header says it is not WAL yet;
    ``connect(timeout=)`` already sets the busy timeout. Raises :class:`Error` (the caller names the store).
    """
    conn = connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    try:
        if not _is_wal(path):
            conn.execute("PRAGMA journal_mode = WAL")
        pragmas = "PRAGMA synchronous = NORMAL;" + (" PRAGMA foreign_keys = ON;" if foreign_keys else "")
        conn.executescript(pragmas + schema)
    except BaseException:
        conn.close()
        raise
    return conn


def _is_wal(path: str) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return os.pread(fd, 2, 18) == _WAL_VERSION
    finally:
        os.close(fd)
