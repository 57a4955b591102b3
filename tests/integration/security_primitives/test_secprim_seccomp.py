"""seccomp.load on the real kernel: custom profiles, actions, argument rules, flags, the cache."""

from __future__ import annotations

import ctypes
import errno
import os
import signal
from pathlib import Path

import pytest

from kobako.errors import PermissionDenied
from kobako.runtime.security import nonewprivs, seccomp

pytestmark = pytest.mark.root

DENY_MKDIR = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
}


def personality(persona: int) -> int:
    """personality(2); returns -errno on failure."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.personality.argtypes = [ctypes.c_ulong]
    rc = libc.personality(persona)
    return -ctypes.get_errno() if rc == -1 else rc


def mkdir_errno(path: str) -> int:
    try:
        os.mkdir(path)
    except OSError as exc:
        return exc.errno or 0
    os.rmdir(path)
    return 0


def test_denied_syscall_returns_eperm(tmp_path: Path, child) -> None:
    def body() -> tuple[int, str, str]:
        nonewprivs.set_no_new_privs()
        seccomp.load(DENY_MKDIR)
        status = child.own_status()
        return mkdir_errno(str(tmp_path / "d")), status["Seccomp"], status["NoNewPrivs"]

    assert child.call(body).ok() == (errno.EPERM, "2", "1")
    assert not (tmp_path / "d").exists()


def test_denied_syscall_stays_denied_after_execve(tmp_path: Path, child) -> None:
    def prepare() -> None:
        nonewprivs.set_no_new_privs()
        seccomp.load(DENY_MKDIR)

    result = child.exec(prepare, [child.BUSYBOX, "mkdir", str(tmp_path / "d")])
    assert result.exit_code != 0
    assert b"Operation not permitted" in result.output
    assert not (tmp_path / "d").exists()


def test_errno_ret_is_returned(tmp_path: Path, child) -> None:
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}],
    }
    profile["syscalls"][0]["errnoRet"] = errno.ENOSPC

    def body() -> int:
        nonewprivs.set_no_new_privs()
        seccomp.load(profile)
        return mkdir_errno(str(tmp_path / "d"))

    assert child.call(body).ok() == errno.ENOSPC


def test_argument_rule_denies_only_the_matching_value(child) -> None:
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {
                "names": ["personality"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": 1,
                "args": [{"index": 0, "value": 0xFFFFFFFF, "op": "SCMP_CMP_EQ"}],
            }
        ],
    }

    def body() -> tuple[int, int]:
        nonewprivs.set_no_new_privs()
        seccomp.load(profile)
        return personality(0xFFFFFFFF), personality(0)

    denied, allowed = child.call(body).ok()  # type: ignore[misc]
    assert denied == -errno.EPERM
    assert allowed >= 0


def test_repeated_argument_index_means_any_of_them(child) -> None:
    # Two comparisons on argument 0 in one rule: each becomes its own rule (runc's reading).
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {
                "names": ["personality"],
                "action": "SCMP_ACT_ERRNO",
                "args": [
                    {"index": 0, "value": 0x8, "op": "SCMP_CMP_EQ"},
                    {"index": 0, "value": 0x20000, "op": "SCMP_CMP_EQ"},
                ],
            }
        ],
    }

    def body() -> tuple[int, int, int]:
        nonewprivs.set_no_new_privs()
        seccomp.load(profile)
        return personality(0x8), personality(0x20000), personality(0)

    first, second, other = child.call(body).ok()  # type: ignore[misc]
    assert first == second == -errno.EPERM
    assert other >= 0


def test_masked_eq_compares_the_masked_argument(child) -> None:
    # Deny personality when bit 0x8 (PER_LINUX32) is set, whatever the other bits.
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {
                "names": ["personality"],
                "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 0, "value": 0x8, "valueTwo": 0x8, "op": "SCMP_CMP_MASKED_EQ"}],
            }
        ],
    }

    def body() -> tuple[int, int, int]:
        nonewprivs.set_no_new_privs()
        seccomp.load(profile)
        return personality(0x20008), personality(0x8), personality(0x20000)

    a, b, c = child.call(body).ok()  # type: ignore[misc]
    assert a == b == -errno.EPERM
    assert c >= 0


def test_kill_process_action_kills_with_sigsys(child) -> None:
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}],
    }

    def body() -> int:
        nonewprivs.set_no_new_privs()
        seccomp.load(profile)
        return os.getppid()

    assert child.call(body).signal == signal.SIGSYS


def test_flags_go_through_seccomp_syscall(tmp_path: Path, child) -> None:
    profile = dict(DENY_MKDIR, flags=["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"])

    def body() -> tuple[int, str]:
        nonewprivs.set_no_new_privs()
        seccomp.load(profile)
        return mkdir_errno(str(tmp_path / "d")), child.own_status()["Seccomp"]

    assert child.call(body).ok() == (errno.EPERM, "2")


def test_loading_needs_no_new_privs_or_cap_sys_admin(child) -> None:
    def body() -> str:
        os.setresgid(4321, 4321, 4321)
        os.setresuid(4321, 4321, 4321)  # no capabilities left, no no_new_privs
        try:
            seccomp.load(DENY_MKDIR)
        except PermissionDenied as exc:
            return str(exc)
        return "loaded"

    assert "no_new_privs" in str(child.call(body).ok())


def test_root_with_cap_sys_admin_loads_without_no_new_privs(tmp_path: Path, child) -> None:
    def body() -> tuple[int, str]:
        seccomp.load(DENY_MKDIR)
        return mkdir_errno(str(tmp_path / "d")), child.own_status()["NoNewPrivs"]

    assert child.call(body).ok() == (errno.EPERM, "0")  # the filter did not set no_new_privs


def test_build_in_parent_then_install_in_child(tmp_path: Path, child) -> None:
    flt = seccomp.build(DENY_MKDIR, cache_dir=str(tmp_path / "cache"))
    assert (tmp_path / "cache").is_dir()
    assert len(list((tmp_path / "cache").iterdir())) == 1

    def body() -> int:
        seccomp.install(flt)
        return mkdir_errno(str(tmp_path / "d"))

    assert child.call(body).ok() == errno.EPERM


def test_load_from_disk_cache_in_a_fresh_process(tmp_path: Path, child) -> None:
    cache = str(tmp_path / "cache")
    seccomp.build(DENY_MKDIR, cache_dir=cache)

    def body() -> int:
        seccomp._memo.clear()  # as a new runtime process would start
        from kobako.runtime.security import _libseccomp

        def no_compiling(plan: object) -> bytes:
            raise AssertionError("compiled again despite the cache")

        _libseccomp.generate = no_compiling  # type: ignore[assignment]
        seccomp.load(DENY_MKDIR, cache_dir=cache)
        return mkdir_errno(str(tmp_path / "d"))

    assert child.call(body).ok() == errno.EPERM
