"""The one seam between the runtime and the kernel calls that Python's os module lacks.

``LinuxSyscalls`` calls libc through ``kobako.libc``, loaded on first use so that commands that never
touch the kernel (``state``, ``list``) do not pay for it. ``kobako.testing.syscalls.RecordingSyscalls`` records calls instead
for fast unit tests; integration tests always use the real kernel.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs ~10 ms at start-up; annotations are strings anyway
if TYPE_CHECKING:
    from typing import Protocol


# clone(2) flags
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080

# mount(2) flags
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25
MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_SET_NAME = 15
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36
_SYS_KEYCTL = 250  # x86_64
_SYS_PIVOT_ROOT = 155  # x86_64
_KEYCTL_JOIN_SESSION_KEYRING = 1


if TYPE_CHECKING:

    class Syscalls(Protocol):
        def mount(
            self, source: str | None, target: str, fstype: str | None, flags: int, data: str | None
        ) -> None: ...
        def umount2(self, target: str, flags: int) -> None: ...
        def pivot_root(self, new_root: str, put_old: str) -> None: ...
        def unshare(self, flags: int) -> None: ...
        def setns(self, fd: int, nstype: int) -> None: ...
        def sethostname(self, name: str) -> None: ...
        def setdomainname(self, name: str) -> None: ...
        def join_session_keyring(self, name: str) -> None: ...
        def prctl(self, option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int: ...


class LinuxSyscalls:
    """Real kernel calls (through ``kobako.libc``). Every failure is an OSError carrying errno."""

    @staticmethod
    def _call(name: str, what: str, path: str | None, *args: object) -> int:
        from kobako import libc

        try:
            return libc.call(name, *args)
        except OSError as exc:
            raise OSError(exc.errno, f"{what}: {exc.strerror}", path) from None

    def mount(
        self, source: str | None, target: str, fstype: str | None, flags: int, data: str | None
    ) -> None:
        from kobako import libc

        enc = _encode
        self._call(
            "mount", f"mount {source or 'none'} on {target}", target,
            enc(source), enc(target), enc(fstype), libc.ulong(flags), enc(data),
        )  # fmt: skip

    def umount2(self, target: str, flags: int) -> None:
        self._call("umount2", f"umount {target}", target, _encode(target), flags)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        from kobako import libc

        try:
            libc.call_long("syscall", libc.ulong(_SYS_PIVOT_ROOT), _encode(new_root), _encode(put_old))
        except OSError as exc:
            raise OSError(exc.errno, f"pivot_root: {exc.strerror}", new_root) from None

    def unshare(self, flags: int) -> None:
        self._call("unshare", "unshare", None, flags)

    def setns(self, fd: int, nstype: int) -> None:
        self._call("setns", "setns", None, fd, nstype)

    def sethostname(self, name: str) -> None:
        raw = name.encode()
        self._call("sethostname", "sethostname", None, raw, len(raw))

    def setdomainname(self, name: str) -> None:
        raw = name.encode()
        self._call("setdomainname", "setdomainname", None, raw, len(raw))

    def join_session_keyring(self, name: str) -> None:
        """keyctl(KEYCTL_JOIN_SESSION_KEYRING, name): a fresh session keyring, so the container
        cannot read or use the keys of the session that started it."""
        from kobako import libc

        try:
            libc.call_long(
                "syscall", libc.ulong(_SYS_KEYCTL), libc.ulong(_KEYCTL_JOIN_SESSION_KEYRING), name.encode()
            )
        except OSError as exc:
            raise OSError(exc.errno, f"keyctl: {exc.strerror}") from None

    def prctl(self, option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
        from kobako import libc

        ul = libc.ulong
        return self._call("prctl", f"prctl({option})", None, option, ul(arg2), ul(arg3), ul(arg4), ul(arg5))


def _encode(value: str | None) -> bytes | None:
    return None if value is None else value.encode()


linux = LinuxSyscalls()
