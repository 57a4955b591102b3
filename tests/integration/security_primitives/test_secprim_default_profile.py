"""kobako's default seccomp profile on the real kernel, alone and in the init's order."""

from __future__ import annotations

import ctypes
import errno
import os
import socket
from pathlib import Path

import pytest

from kobako.runtime.security import capabilities, default_seccomp, nonewprivs, seccomp

pytestmark = pytest.mark.root

CLONE_NEWUSER = 0x10000000
CLONE_NEWNS = 0x00020000
SYS_CLONE3 = 435  # x86_64 and aarch64 alike
DOCKER_DEFAULT = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
    "CAP_AUDIT_WRITE",
]  # fmt: skip


def libc_errno(call: str, *args: object) -> int:
    """Call a libc function; 0 on success, else errno."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    rc = getattr(libc, call)(*args)
    return ctypes.get_errno() if rc == -1 else 0


def probe(tmp: str) -> dict[str, int]:
    """What a container process can and cannot do: name -> errno (0 = allowed)."""
    results = {
        "unshare(CLONE_NEWUSER)": libc_errno("unshare", CLONE_NEWUSER),
        "mount": libc_errno("mount", b"none", tmp.encode(), b"tmpfs", 0, None),
        "clone3": libc_errno("syscall", ctypes.c_long(SYS_CLONE3), None, ctypes.c_long(0)),
        "sethostname": libc_errno("sethostname", b"x", 1),
    }
    try:
        socket.socket(40, socket.SOCK_STREAM).close()  # AF_VSOCK
        results["socket(AF_VSOCK)"] = 0
    except OSError as exc:
        results["socket(AF_VSOCK)"] = exc.errno or -1
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM):
        results["socket(AF_UNIX)"] = 0
    pid = os.fork()  # clone(SIGCHLD): no namespace flags, allowed
    if pid == 0:
        os._exit(7)
    results["fork"] = 0 if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 7 else -1
    return results


def test_default_profile_blocks_namespaces_and_mounts_without_cap_sys_admin(tmp_path: Path, child) -> None:
    profile = default_seccomp.default_profile(DOCKER_DEFAULT)

    def body() -> dict[str, int]:
        seccomp.load(profile)  # as root with CAP_SYS_ADMIN still held: only the filter says no
        return probe(str(tmp_path))

    got = child.call(body).ok()
    assert got == {
        "unshare(CLONE_NEWUSER)": errno.EPERM,
        "mount": errno.EPERM,
        "clone3": errno.ENOSYS,
        "sethostname": errno.EPERM,
        "socket(AF_VSOCK)": errno.EPERM,
        "socket(AF_UNIX)": 0,
        "fork": 0,
    }


@pytest.mark.skipif(
    os.uname().machine != "x86_64", reason="raw clone(2) number and argument order are x86_64's"
)
def test_clone_with_namespace_flags_is_denied(child) -> None:
    profile = default_seccomp.default_profile(DOCKER_DEFAULT)

    def body() -> int:
        seccomp.load(profile)
        # raw clone(CLONE_NEWNS | SIGCHLD): the flags rule must refuse it before the kernel sees it
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        rc = libc.syscall(ctypes.c_long(56), ctypes.c_long(CLONE_NEWNS | 17), None, None, None, None)
        if rc == 0:
            os._exit(0)  # the clone child, should it ever exist
        if rc > 0:
            os.waitpid(rc, 0)
            return 0
        return ctypes.get_errno()

    assert child.call(body).ok() == errno.EPERM


def test_cap_sys_admin_unlocks_namespaces_and_mounts(tmp_path: Path, child) -> None:
    profile = default_seccomp.default_profile([*DOCKER_DEFAULT, "CAP_SYS_ADMIN"])

    def body() -> tuple[int, int]:
        seccomp.load(profile)
        unshared = libc_errno("unshare", CLONE_NEWNS)
        mounted = libc_errno("mount", b"none", str(tmp_path).encode(), b"tmpfs", 0, None)
        return unshared, mounted  # in a private mount namespace: gone with the child

    assert child.call(body).ok() == (0, 0)


def test_normal_work_runs_under_the_default_profile(tmp_path: Path, child) -> None:
    profile = default_seccomp.default_profile(DOCKER_DEFAULT)
    (tmp_path / "hello").write_text("hi\n")

    result = child.exec(lambda: seccomp.load(profile), [child.BUSYBOX, "true"])
    assert result.exit_code == 0, result.output

    result = child.exec(lambda: seccomp.load(profile), [child.BUSYBOX, "ls", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.output == b"hello\n"

    script = f"cat {tmp_path}/hello | wc -l; mkdir {tmp_path}/d && echo made; date >/dev/null && echo ok"
    result = child.exec(lambda: seccomp.load(profile), [child.BUSYBOX, "sh", "-c", script])
    assert result.exit_code == 0, result.output
    assert result.output.split() == [b"1", b"made", b"ok"]


def test_init_order_non_root_container(tmp_path: Path, child) -> None:
    """keepcaps → setgid/setuid → capabilities → no_new_privs → seccomp → execve, as the init does."""
    profile = default_seccomp.default_profile(DOCKER_DEFAULT)
    flt = seccomp.build(profile)  # in the parent, before the fork, as create should

    def prepare() -> None:
        nonewprivs.set_dumpable(False)
        capabilities.set_keep_caps(True)
        os.setgroups([])
        os.setresgid(4321, 4321, 4321)
        os.setresuid(4321, 4321, 4321)
        capabilities.apply({key: DOCKER_DEFAULT for key in ("bounding", "effective", "permitted")})
        capabilities.set_keep_caps(False)
        nonewprivs.set_no_new_privs()
        seccomp.load(profile)  # found in the memo the parent filled: no compiling here
        assert seccomp.build(profile) is flt

    result = child.exec(prepare, [child.BUSYBOX, "cat", "/proc/self/status"])
    assert result.exit_code == 0, result.output
    status = child.status_fields(result.output.decode())
    assert status["Seccomp"] == "2"
    assert status["NoNewPrivs"] == "1"
    assert status["Uid"].split()[0] == "4321"
    assert status["CapEff"] == "0000000000000000"
    assert status["CapBnd"] == f"{capabilities.parse(DOCKER_DEFAULT):016x}"


def test_seccomp_status_in_child_before_execve(child) -> None:
    def body() -> str:
        nonewprivs.set_no_new_privs()
        seccomp.load(default_seccomp.default_profile([]))
        return child.own_status()["Seccomp"]

    assert child.call(body).ok() == "2"
