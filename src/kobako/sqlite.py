"""SQLite for kobako's metadata stores, without the ``sqlite3`` package's start-up cost.

``import sqlite3`` loads ``sqlite3.dbapi2``, which imports ``datetime``, ``collections`` and friends to
register date adapters kobako never uses (several ms of every `kobako run`). The C module ``_sqlite3``
is what does the work; this module re-exports the few names kobako needs from it, and falls back to the
package where the C module is missing.
"""

from __future__ import annotations

try:
    from _sqlite3 import Connection, Error, IntegrityError, OperationalError, connect
except ImportError:  # pragma: no cover - an interpreter without the C module's public names
    from sqlite3 import Connection, Error, IntegrityError, OperationalError, connect

__all__ = ["Connection", "Error", "IntegrityError", "OperationalError", "connect"]
