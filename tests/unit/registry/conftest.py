"""Fixtures for the registry unit tests: the server in-process on a temporary root."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # the tests import _regtest and _asgi

from _regtest import Registry

from kobako.images.service import ImageService


@pytest.fixture(autouse=True)
def _no_host_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never read the host's auth files or registries config."""
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "no-auth.json"))
    monkeypatch.setenv("KOBAKO_REGISTRIES_CONF", str(tmp_path / "no-registries.toml"))


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    reg = Registry(tmp_path / "registry")
    yield reg
    reg.close()


@pytest.fixture
def svc_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], ImageService]]:
    monkeypatch.setenv("KOBAKO_SNAPSHOTTER", "native")
    made: list[ImageService] = []

    def make(name: str) -> ImageService:
        s = ImageService(str(tmp_path / name))
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()
