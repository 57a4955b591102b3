"""Inside the container's root nothing may be loaded from disk: preload() first, or a clear refusal."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import pytest

from kobako.errors import FailedPrecondition
from kobako.runtime.security import _libc, _libseccomp, capabilities, nonewprivs, preload, seccomp

pytestmark = pytest.mark.root

CAPS = ["CAP_CHOWN", "CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP", "CAP_KILL"]


def enter(root: Path) -> None:
    os.chroot(root)
    os.chdir("/")


def test_after_preload_everything_works_in_the_new_root(tmp_path: Path, child) -> None:
    # A profile nobody built before: compiled after the chroot, with the preloaded libseccomp.
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EROFS}],
    }

    def body() -> int:
        seccomp._memo.clear()
        preload()
        enter(tmp_path)
        capabilities.apply({key: CAPS for key in ("bounding", "effective", "permitted")})
        nonewprivs.set_no_new_privs()
        seccomp.load(profile)
        try:
            os.mkdir("/d")
        except OSError as exc:
            return exc.errno or 0
        return 0

    assert child.call(body).ok() == errno.EROFS
    assert not (tmp_path / "d").exists()


def test_nothing_new_is_imported_or_dlopened_in_the_new_root(tmp_path: Path, child) -> None:
    # A hostile image could ship its own hashlib.py or libseccomp.so.2 at the host's paths.
    def body() -> list[str]:
        _libc.host_module("ctypes")  # ctypes is there, but neither hashlib nor libseccomp
        sys.modules.pop("hashlib", None)
        _libseccomp._binding = None
        seccomp._memo.clear()
        enter(tmp_path)
        refused = []
        try:
            _libc.host_module("hashlib")
        except FailedPrecondition as exc:
            refused.append(str(exc))
        try:
            _libseccomp.binding()
        except FailedPrecondition as exc:
            refused.append(str(exc))
        return refused

    refused = child.call(body).ok()
    assert isinstance(refused, list)
    assert len(refused) == 2
    assert "hashlib" in refused[0]
    assert "libseccomp.so.2" in refused[1]
    assert all("preload()" in message for message in refused)


def test_the_disk_cache_is_not_read_inside_the_new_root(tmp_path: Path, child) -> None:
    # An image could ship a "cached" allow-all filter at the cache path: never read it from there.
    root = tmp_path / "root"
    (root / "cache").mkdir(parents=True)
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}],
    }
    planted = seccomp.build({"defaultAction": "SCMP_ACT_ALLOW"}).bpf  # allows everything
    key = seccomp._key(seccomp._profile.compile_profile(profile))
    (root / "cache" / key).write_bytes(seccomp._CACHE_MAGIC + bytes(4) + planted)
    os.chmod(root / "cache" / key, 0o600)

    def body() -> int:
        seccomp._memo.clear()
        preload()
        enter(root)
        seccomp.load(profile, cache_dir="/cache")
        try:
            os.mkdir("/d")
        except OSError as exc:
            return exc.errno or 0
        return 0

    assert child.call(body).ok() == errno.EPERM
