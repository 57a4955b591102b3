"""Crash leftovers of the directory-based snapshotters are cleaned up, live snapshots are not."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kobako.snapshots.native import NativeSnapshotter
from kobako.snapshots.overlay import OverlaySnapshotter


@pytest.mark.parametrize("cls", [OverlaySnapshotter, NativeSnapshotter])
def test_cleanup_removes_only_orphans(tmp_path: Path, cls: type) -> None:
    snap = cls(tmp_path)
    snap.prepare("live")
    sid = snap.mounts("live")[0].source.split("/")[-2]
    base = tmp_path / "snapshots"
    for orphan in ("new-abc123", "999", "rm-7"):
        (base / orphan / "fs").mkdir(parents=True)
    assert sorted(snap.cleanup()) == ["999", "new-abc123", "rm-7"]
    assert os.listdir(base) == [sid]
    snap.close()


def test_prepare_replaces_a_stale_directory_with_the_same_id(tmp_path: Path) -> None:
    snap = OverlaySnapshotter(tmp_path)
    (tmp_path / "snapshots/1/fs").mkdir(parents=True)
    (tmp_path / "snapshots/1/fs/stale").write_text("from a crashed prepare")
    mounts = snap.prepare("k")
    assert mounts[0].source == str(tmp_path / "snapshots/1/fs")
    assert os.listdir(tmp_path / "snapshots/1/fs") == []


def test_overlay_mount_descriptions(tmp_path: Path) -> None:
    snap = OverlaySnapshotter(tmp_path)
    assert snap.prepare("a")[0].type == "bind"
    snap.commit("A", "a")
    [ov] = snap.prepare("b", "A")
    assert ov.type == "overlay" and ov.option("lowerdir") == str(tmp_path / "snapshots/1/fs")
    assert ov.option("upperdir") == str(tmp_path / "snapshots/2/fs")
    assert ov.option("workdir") == str(tmp_path / "snapshots/2/work")
    assert snap.view("v", "A")[0].options == ["ro", "rbind"]
    snap.commit("B", "b")
    [view] = snap.view("v2", "B")
    assert view.readonly and view.option("lowerdir") == f"{tmp_path}/snapshots/2/fs:{tmp_path}/snapshots/1/fs"
