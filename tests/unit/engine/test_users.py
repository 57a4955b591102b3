"""--user resolution against an image's /etc/passwd and /etc/group, which are untrusted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kobako.engine import users
from kobako.errors import InvalidArgument, NotFound

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
# a comment
+nisuser::::::
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
app:x:1000:1000:App:/home/app:/bin/sh
nohome:x:1001:1001::
broken line
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""
GROUP = """\
root:x:0:
daemon:x:1:
app:x:1000:
audio:x:29:app,daemon
video:x:44: app
staff:x:50:daemon
nogroup:x:65534:
"""


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text(PASSWD)
    (tmp_path / "etc/group").write_text(GROUP)
    return tmp_path


@pytest.mark.parametrize(
    ("spec", "uid", "gid", "groups", "home"),
    [
        ("", 0, 0, [], "/root"),
        ("root", 0, 0, [], "/root"),
        ("0", 0, 0, [], "/root"),
        ("app", 1000, 1000, [29, 44], "/home/app"),
        ("1000", 1000, 1000, [29, 44], "/home/app"),
        ("daemon", 1, 1, [29, 50], "/usr/sbin"),
        ("app:audio", 1000, 29, [], "/home/app"),
        ("app:50", 1000, 50, [], "/home/app"),
        ("1000:1234", 1000, 1234, [], "/home/app"),
        ("4242", 4242, 0, [], "/"),  # not in passwd: allowed, gid 0 and home / as docker
        ("4242:4242", 4242, 4242, [], "/"),
        ("nohome", 1001, 1001, [], "/"),
        ("nobody", 65534, 65534, [], "/nonexistent"),
    ],
)
def test_resolve(rootfs: Path, spec: str, uid: int, gid: int, groups: list[int], home: str) -> None:
    u = users.resolve(str(rootfs), spec)
    assert (u.uid, u.gid, u.additional_gids, u.home) == (uid, gid, groups, home)


def test_group_add(rootfs: Path) -> None:
    assert users.resolve(str(rootfs), "app", ["staff", "777", "audio"]).additional_gids == [29, 44, 50, 777]
    with pytest.raises(NotFound, match="unable to find group nosuch"):
        users.resolve(str(rootfs), "app", ["nosuch"])


@pytest.mark.parametrize(
    ("spec", "error", "message"),
    [
        ("ghost", NotFound, "unable to find user ghost: no matching entries in passwd file"),
        ("app:ghosts", NotFound, "unable to find group ghosts"),
        ("app:", InvalidArgument, "empty group"),
        ("99999999999", InvalidArgument, "must be in range"),
        ("1:99999999999", InvalidArgument, "must be in range"),
    ],
)
def test_resolve_errors(rootfs: Path, spec: str, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        users.resolve(str(rootfs), spec)


def test_missing_files_allow_numeric_ids_only(tmp_path: Path) -> None:
    u = users.resolve(str(tmp_path), "123:456")
    assert (u.uid, u.gid, u.home) == (123, 456, "/")
    assert users.resolve(str(tmp_path), "").home == "/"
    with pytest.raises(NotFound):
        users.resolve(str(tmp_path), "app")


def test_symlinked_passwd_stays_inside_the_rootfs(tmp_path: Path) -> None:
    """An absolute symlink in the image means the image's own path, never the host's /etc/passwd."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "data/pw").write_text("inside:x:77:77::/in:/bin/sh\n")
    (root / "etc/passwd").symlink_to("/data/pw")
    assert users.resolve(str(root), "inside").uid == 77
    os.unlink(root / "etc/passwd")
    (tmp_path / "outside").write_text("escaped:x:5:5::/:/bin/sh\n")
    (root / "etc/passwd").symlink_to("../../outside")  # climbs no higher than the rootfs top
    with pytest.raises(NotFound):
        users.resolve(str(root), "escaped")


def test_etc_as_symlink_out_of_the_rootfs_is_confined(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "hostetc").mkdir()
    (tmp_path / "hostetc/passwd").write_text("escaped:x:5:5::/:/bin/sh\n")
    (root / "etc").symlink_to("../hostetc")  # naively followed, this reads a file outside the image
    with pytest.raises(NotFound):
        users.resolve(str(root), "escaped")
    os.unlink(root / "etc")
    (root / "etc").symlink_to("/etc")  # a loop inside the image: an error, never the host's /etc
    with pytest.raises(InvalidArgument, match="too many levels"):
        users.resolve(str(root), "root")


def test_non_regular_and_oversized_files_are_refused(rootfs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    os.unlink(rootfs / "etc/group")
    os.mkfifo(rootfs / "etc/group")  # a FIFO would block a naive reader forever
    with pytest.raises(InvalidArgument, match="not a regular file"):
        users.resolve(str(rootfs), "app")
    os.unlink(rootfs / "etc/group")
    (rootfs / "etc/group").write_text(GROUP)
    monkeypatch.setattr(users, "MAX_FILE", 64)
    with pytest.raises(InvalidArgument, match="larger than"):
        users.read_rootfs_file(str(rootfs), "/etc/passwd", limit=64)
