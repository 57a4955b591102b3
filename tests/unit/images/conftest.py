"""Fixtures for image unit tests: an ImageService on a temporary root (native snapshotter: no mounts)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from kobako.images.service import ImageService

sys.path.insert(0, os.path.dirname(__file__))  # the tests import _image_archives


@pytest.fixture
def svc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ImageService:
    monkeypatch.setenv("KOBAKO_SNAPSHOTTER", "native")
    s = ImageService(str(tmp_path / "root"))
    yield s
    s.close()
