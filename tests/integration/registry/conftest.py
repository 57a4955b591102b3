"""Fixtures: real servers on 127.0.0.1 (free ports), the real ``kobako`` CLI on private state roots, a busybox
tar. Every server started here is terminated and waited for by its fixture, whatever the test did."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # the tests import _regserver and _proxy

from _regserver import Kobako, Server


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """``servers(*flags)`` starts a kobako registry; all are stopped at the end of the test."""
    started: list[Server] = []

    def start(*flags: str, root: Path | None = None, port: int | None = None) -> Server:
        s = Server(root or tmp_path / f"registry-{len(started)}", *flags, port=port)
        started.append(s)
        return s.start()

    yield start
    for s in started:
        s.stop()


@pytest.fixture
def kobako_factory(tmp_path: Path) -> Callable[[str], Kobako]:
    def make(name: str) -> Kobako:
        return Kobako(tmp_path / name)

    return make
