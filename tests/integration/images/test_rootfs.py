"""ImageService.prepare_rootfs on the real overlay snapshotter: mounted, the busybox files are there, and
writes land in the container's layer only."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any as Kobako  # the fixture class lives in conftest.py

import pytest

from kobako.images.service import ImageService
from kobako.mount import mount_all, unmount_all

pytestmark = pytest.mark.root


def test_prepare_rootfs_mounts_and_isolates(kobako: Kobako, busybox_tar: Path, tmp_path: Path) -> None:
    kobako("import", "-c", 'CMD ["sh"]', str(busybox_tar), "busybox")
    svc = ImageService(str(kobako.root))
    target = tmp_path / "mnt"
    target.mkdir()
    try:
        image = svc.resolve("busybox")
        mounts = svc.prepare_rootfs(image, "ctr-1", {"kobako.container": "ctr-1"})
        assert mounts[0].type == "overlay" and mounts[0].option("lowerdir")
        mount_all(mounts, target)
        try:
            assert os.path.islink(target / "bin" / "sh") and (target / "bin" / "busybox").is_file()
            assert (target / "etc" / "passwd").read_text().startswith("root:")
            (target / "etc" / "passwd").write_text("changed\n")
            (target / "bin" / "busybox").unlink()
            (target / "new-file").write_text("x")
        finally:
            unmount_all(target)
        assert svc.rootfs_mounts("ctr-1") == mounts

        mounts2 = svc.prepare_rootfs(svc.resolve("busybox"), "ctr-2", {"kobako.container": "ctr-2"})
        mount_all(mounts2, target)
        try:
            assert (target / "etc" / "passwd").read_text().startswith("root:")
            assert (target / "bin" / "busybox").is_file() and not (target / "new-file").exists()
        finally:
            unmount_all(target)
        # the containers' snapshots are GC roots; removing them leaves the image intact
        assert svc.gc().snapshots == []
        svc.remove_rootfs("ctr-1")
        svc.remove_rootfs("ctr-2")
        svc.remove_rootfs("ctr-2")
        assert {i.key for i in svc.snapshotter().walk()} == {image.top_snapshot}
    finally:
        unmount_all(target, detach=True)
        svc.close()
    assert "no problems found" in kobako("system", "check").out
