"""The engine's rootfs mounts: overlay's volatile option for --rm containers and its crash marker."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from kobako.engine import service
from kobako.errors import FailedPrecondition
from kobako.mount import Mount


def _overlay(tmp_path: Path) -> Mount:
    work = tmp_path / "work"
    work.mkdir()
    return Mount(
        "overlay", "overlay", options=[f"workdir={work}", f"upperdir={tmp_path / 'fs'}", "lowerdir=/l"]
    )


def test_volatile_is_added_to_overlay_mounts_only(tmp_path: Path) -> None:
    m = _overlay(tmp_path)
    fast = service._volatile(m)
    assert fast.options == [*m.options, "volatile"] and m.options[-1] != "volatile"  # a copy, not an edit
    assert service._volatile(fast) is fast
    bind = Mount("bind", "/x", options=["rw", "rbind"])
    assert service._volatile(bind) is bind


def test_a_marker_from_this_boot_is_cleared(tmp_path: Path) -> None:
    m = _overlay(tmp_path)
    marker = tmp_path / "work" / "work" / "incompat" / "volatile"
    marker.mkdir(parents=True)
    assert "volatile" in service._volatile(m).options
    assert not marker.exists()  # overlay would refuse the mount while it is there


def test_a_marker_older_than_the_boot_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    m = _overlay(tmp_path)
    marker = tmp_path / "work" / "work" / "incompat" / "volatile"
    marker.mkdir(parents=True)
    monkeypatch.setattr(service, "_boot_time", lambda: time.time() + 3600)  # as if made before a crash
    with pytest.raises(FailedPrecondition, match="remove the container"):
        service._volatile(m)
    assert marker.exists()


def test_boot_time_is_in_the_past() -> None:
    assert 0 < service._boot_time() < time.time()
    assert os.path.exists("/proc/stat")
