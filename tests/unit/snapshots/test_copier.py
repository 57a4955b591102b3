"""copy_tree keeps everything, and never shares inodes with its source."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from kobako.snapshots.copier import copy_tree


def test_copy_tree(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "d/e").mkdir(parents=True)
    (src / "d/e/f").write_bytes(b"data" * 1000)
    os.chmod(src / "d/e/f", 0o4750)
    os.link(src / "d/e/f", src / "hard")
    os.symlink("/nowhere", src / "dangling")
    os.mkfifo(src / "fifo")
    os.setxattr(src / "d/e/f", "user.k", b"v")
    os.chmod(src / "d", 0o701)
    os.utime(src / "d", ns=(1, 1_000_000_123))
    os.utime(src / "d/e/f", ns=(5, 2_000_000_456))
    dst.mkdir()
    copy_tree(src, dst)
    assert (dst / "d/e/f").read_bytes() == b"data" * 1000
    f = (dst / "d/e/f").stat()
    assert stat.S_IMODE(f.st_mode) == 0o4750 and f.st_mtime_ns == 2_000_000_456
    assert os.getxattr(dst / "d/e/f", "user.k") == b"v"
    assert (dst / "hard").stat().st_ino == f.st_ino != (src / "d/e/f").stat().st_ino
    assert os.readlink(dst / "dangling") == "/nowhere" and stat.S_ISFIFO((dst / "fifo").lstat().st_mode)
    d = (dst / "d").stat()
    assert stat.S_IMODE(d.st_mode) == 0o701 and d.st_mtime_ns == 1_000_000_123


@pytest.mark.root
def test_copy_tree_keeps_owners_and_devices(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    (src / "f").write_text("x")
    os.chown(src / "f", 123, 456)
    os.symlink("f", src / "l")
    os.chown(src / "l", 7, 8, follow_symlinks=False)
    os.mknod(src / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    copy_tree(src, dst)
    assert ((dst / "f").stat().st_uid, (dst / "f").stat().st_gid) == (123, 456)
    assert ((dst / "l").lstat().st_uid, (dst / "l").lstat().st_gid) == (7, 8)
    assert (dst / "null").lstat().st_rdev == os.makedev(1, 3)
