"""The shared snapshotter suite over the overlay and the copying snapshotter, with real mounts."""

from __future__ import annotations

from pathlib import Path

import pytest

from kobako.mount import mounted_under, unmount_all
from kobako.snapshots.native import NativeSnapshotter
from kobako.snapshots.overlay import OverlaySnapshotter
from kobako.testing.snapshotter_suite import CHECKS

pytestmark = pytest.mark.root


@pytest.fixture
def work(tmp_path: Path):  # type: ignore[no-untyped-def]
    yield tmp_path
    leftovers = mounted_under(tmp_path)
    unmount_all(tmp_path, detach=True)
    assert not leftovers, f"a check left mounts behind: {leftovers}"


@pytest.mark.parametrize("factory", [OverlaySnapshotter, NativeSnapshotter], ids=["overlay", "native"])
@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_snapshotter(factory, check, work: Path) -> None:  # type: ignore[no-untyped-def]
    check(factory, work)
