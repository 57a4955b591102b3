"""Layers through snapshotters: unpack (apply without mounting), view, change, diff, re-apply: same tree.

The unpack rule is the one the images layer uses: an overlay mount is applied in overlay mode to its upperdir
with its lowerdirs as lowers; a bind mount is applied in plain mode to its source.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile
from pathlib import Path

import pytest

from kobako.archive.diff import write_dir_diff, write_upper_diff
from kobako.archive.tar import apply_layer
from kobako.mount import Mount, mounted_under, unmount_all
from kobako.snapshots.native import NativeSnapshotter
from kobako.snapshots.overlay import OverlaySnapshotter
from kobako.testing.snapshotter_suite import mounted

pytestmark = pytest.mark.root


def member(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", **attrs: object) -> tuple:
    info = tarfile.TarInfo(name)
    info.type, info.size = kind, len(data) if kind == tarfile.REGTYPE else 0
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.mtime = 1_600_000_000
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, data


def layer(*members: tuple) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.type == tarfile.REGTYPE else None)
    return buf.getvalue()


# fmt: off
LAYERS = [
    layer(member("etc", tarfile.DIRTYPE), member("etc/os-release", data=b"base"), member("bin", tarfile.DIRTYPE),
          member("bin/sh", data=b"#!", mode=0o755), member("usr/lib/a.so", data=b"a"), member("usr/lib/b.so", data=b"b"),
          member("var/cache/x", data=b"x"), member("shadow", data=b"secret", mode=0o640)),
    layer(member("etc/.wh.os-release"), member("etc/hostname", data=b"box"), member("usr/lib/.wh.a.so"),
          member("var/cache", tarfile.DIRTYPE), member("var/cache/.wh..wh..opq"), member("var/cache/y", data=b"y"),
          member("shadow-link", tarfile.LNKTYPE, linkname="shadow")),
    layer(member("usr/.wh.lib"), member("etc/os-release", data=b"again")),
]
# fmt: on
EXPECTED = {
    "bin": "d",
    "bin/sh": "#!",
    "etc": "d",
    "etc/hostname": "box",
    "etc/os-release": "again",
    "usr": "d",
    "var": "d",
    "var/cache": "d",
    "var/cache/y": "y",
    "shadow": "secret",
    "shadow-link": "secret",
}  # fmt: skip


def tree(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(root))] = (
            p.read_text() if stat.S_ISREG(st.st_mode) else stat.filemode(st.st_mode)[0]
        )
    return out


def unpack(blob: bytes, mounts: list[Mount]) -> None:
    [m] = mounts
    if m.type == "overlay":
        upper, lowers = m.option("upperdir"), (m.option("lowerdir") or "").split(":")
        assert upper is not None
        apply_layer(io.BytesIO(blob), upper, overlay=True, lowers=lowers)
    else:
        apply_layer(io.BytesIO(blob), m.source)


def unpack_all(snap, blobs: list[bytes]) -> str:  # type: ignore[no-untyped-def]
    parent = ""
    for i, blob in enumerate(blobs):
        key = f"layer-{i}"
        unpack(blob, snap.prepare(f"extract-{key}", parent))
        snap.commit(key, f"extract-{key}")
        parent = key
    return parent


@pytest.fixture(params=[OverlaySnapshotter, NativeSnapshotter], ids=["overlay", "native"])
def snap(request, tmp_path: Path):  # type: ignore[no-untyped-def]
    s = request.param(str(tmp_path / "root"))
    yield s
    unmount_all(tmp_path, detach=True)
    assert not mounted_under(tmp_path)
    s.close()


def test_unpack_layers_then_view(snap, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    top = unpack_all(snap, LAYERS)
    with mounted(snap.view("v", top), tmp_path / "view") as root:
        assert tree(root) == EXPECTED
        assert (root / "shadow-link").stat().st_ino == (root / "shadow").stat().st_ino
    with mounted(snap.view("v1", "layer-1"), tmp_path / "view") as root:
        assert tree(root)["usr/lib/b.so"] == "b" and "usr/lib/a.so" not in tree(root)


def test_diff_of_changes_reapplies_to_the_same_tree(snap, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    top = unpack_all(snap, LAYERS)
    mounts = snap.prepare("work", top)
    with mounted(mounts, tmp_path / "work") as root:
        (root / "etc/hostname").unlink()
        shutil.rmtree(root / "var/cache")
        (root / "var/cache").mkdir()
        (root / "var/cache/fresh").write_text("fresh")
        (root / "bin/sh").write_text("#!/bin/busybox")
        os.chmod(root / "bin/sh", 0o4755)
        (root / "new").mkdir()
        (root / "new/file").write_text("new")
        expected = tree(root)
    out = io.BytesIO()
    [m] = mounts
    if m.type == "overlay":
        write_upper_diff(m.option("upperdir") or "", out)
    else:
        with mounted(snap.view("parent-view", top), tmp_path / "parent") as parent:
            write_dir_diff(parent, m.source, out)
    unpack(out.getvalue(), snap.prepare("replay", top))
    snap.commit("replayed", "replay")
    with mounted(snap.view("check", "replayed"), tmp_path / "check") as root:
        assert tree(root) == expected
        assert stat.S_IMODE((root / "bin/sh").stat().st_mode) == 0o4755
