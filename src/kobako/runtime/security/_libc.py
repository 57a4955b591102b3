"""The few libc entry points the security primitives need, and a guard on lazy imports.

Nothing heavy is loaded at import: the runtime's CLI imports this package on every start, and only
the container init (right before execve) calls into libc. ``ctypes`` is imported on first use and
the handle is cached, so a forked init inherits a ready binding from its parent.

Lazy loading has one danger in a container runtime: once the init has entered the container's
root (pivot_root/chroot), ``import ctypes`` or ``dlopen("libseccomp.so.2")`` would read files the
*image* controls, as root. :func:`host_module` therefore refuses to import anything new once the
root directory differs from the one this module saw at import, with an error that says to call
:func:`kobako.runtime.security.preload` first.
"""

from __future__ import annotations

import os
import sys

from kobako.errors import FailedPrecondition

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType

# <linux/prctl.h>
PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3
PR_SET_KEEPCAPS = 8
PR_GET_KEEPCAPS = 7
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_IS_SET = 1
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_LOWER = 3
PR_CAP_AMBIENT_CLEAR_ALL = 4

# <linux/capability.h>: version 3 carries 64 bits per set, split in two 32-bit words.
LINUX_CAPABILITY_VERSION_3 = 0x20080522


def _root_id() -> tuple[int, int]:
    st = os.stat("/")
    return st.st_dev, st.st_ino


_HOST_ROOT = _root_id()


def in_host_root() -> bool:
    """Whether the process still sees the root directory it had when kobako was imported."""
    return _root_id() == _HOST_ROOT


def check_host_root(what: str) -> None:
    """Raise FailedPrecondition if the process no longer sees the root it was started in."""
    if not in_host_root():
        raise FailedPrecondition(
            f"{what} is not loaded yet and this process has entered another root: loading it now would "
            "read the container's files; call kobako.runtime.security.preload() before pivot_root"
        )


def host_module(name: str) -> ModuleType:
    """``import name``, but never from inside a container's root (see the module doc)."""
    module = sys.modules.get(name)
    if module is None:
        check_host_root(f"module {name}")
        __import__(name)
        module = sys.modules[name]
    return module


def raise_errno() -> None:
    """Raise the OSError for the errno the last libc call left behind."""
    from kobako import libc

    err = libc.get_errno()
    raise OSError(err, os.strerror(err))


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    """prctl(2). Returns the call's non-negative result; raises OSError on failure."""
    from kobako import libc

    ul = libc.ulong
    return libc.call("prctl", option, ul(arg2), ul(arg3), ul(arg4), ul(arg5))


def syscall(number: int, *args: int) -> int:
    """syscall(2) with unsigned-long arguments. Returns the result; raises OSError on failure."""
    from kobako import libc

    return libc.call_long("syscall", libc.ulong(number), *(libc.ulong(a) for a in args))


def capget() -> tuple[int, int, int]:
    """The calling thread's (effective, permitted, inheritable) sets as 64-bit masks."""
    from kobako import libc

    header, data = _cap_buffers()
    libc.call("capget", header, data)
    return _join(data, 0), _join(data, 1), _join(data, 2)


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set the calling thread's three capability sets (capset(2)); raises OSError on failure."""
    from kobako import libc

    header, data = _cap_buffers()
    for word in (0, 1):
        shift = 32 * word
        data[3 * word] = (effective >> shift) & 0xFFFFFFFF  # type: ignore[index]
        data[3 * word + 1] = (permitted >> shift) & 0xFFFFFFFF  # type: ignore[index]
        data[3 * word + 2] = (inheritable >> shift) & 0xFFFFFFFF  # type: ignore[index]
    libc.call("capset", header, data)


def _cap_buffers() -> tuple[object, object]:
    # struct __user_cap_header_struct { __u32 version; int pid; } (pid 0: this thread) and two
    # struct __user_cap_data_struct { __u32 effective, permitted, inheritable; } laid out flat.
    from kobako import libc

    return libc.u32_array([LINUX_CAPABILITY_VERSION_3, 0]), libc.u32_array([0] * 6)


def _join(data: object, field: int) -> int:
    return int(data[field]) | (int(data[3 + field]) << 32)  # type: ignore[index]
