"""kobako.sqlite: the C module without functools, and the WAL connections every store opens."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import kobako
from kobako import sqlite

SRC = os.path.dirname(os.path.dirname(kobako.__file__))
CODE = f"""
import sys
sys.path.insert(0, {SRC!r})
from kobako import sqlite
print("functools" in sys.modules, "collections" in sys.modules)
conn = sqlite.connect(":memory:")
for i in range(300):  # more distinct statements than the statement cache holds: the cache evicts
    assert conn.execute(f"SELECT {{i}}").fetchone() == (i,)
import functools  # the real module, not the stand-in _sqlite3 loaded with
print(functools.reduce(lambda a, b: a + b, [1, 2, 3]))
"""


def test_the_c_module_loads_without_functools() -> None:
    out = subprocess.run([sys.executable, "-I", "-S", "-c", CODE], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "6"]


def test_open_wal(tmp_path: Path) -> None:
    path = str(tmp_path / "x.db")
    conn = sqlite.open_wal(path, "CREATE TABLE IF NOT EXISTS t (a INTEGER);", foreign_keys=True)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.isolation_level is None  # transactions are explicit
    conn.execute("INSERT INTO t VALUES (1)")
    conn.close()
    assert sqlite._is_wal(path)
    again = sqlite.open_wal(path, "CREATE TABLE IF NOT EXISTS t (a INTEGER);")
    assert again.execute("SELECT a FROM t").fetchall() == [(1,)]
    assert again.execute("PRAGMA foreign_keys").fetchone()[0] == 0
    again.close()
    assert not sqlite._is_wal(str(tmp_path / "missing.db"))
