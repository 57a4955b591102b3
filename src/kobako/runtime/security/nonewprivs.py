"""no_new_privs and the dumpable flag for processes that enter a container.

``set_no_new_privs`` makes execve unable to grant privileges (setuid bits, file capabilities) for
good, and lets an unprivileged process load a seccomp filter. ``set_dumpable(False)`` keeps other
processes of the same uid from ptracing the runtime or opening its /proc entries (the
/proc/self/exe overwrite class of attacks) while it is inside the container's namespaces.
"""

from __future__ import annotations

from kobako.errors import from_oserror
from kobako.runtime.security import _libc


def set_no_new_privs() -> None:
    """PR_SET_NO_NEW_PRIVS: irreversible for this process and everything it starts."""
    try:
        _libc.prctl(_libc.PR_SET_NO_NEW_PRIVS, 1)
    except OSError as exc:
        raise from_oserror(exc, "prctl(PR_SET_NO_NEW_PRIVS)") from exc


def no_new_privs() -> bool:
    """Whether no_new_privs is set for the calling thread."""
    try:
        return bool(_libc.prctl(_libc.PR_GET_NO_NEW_PRIVS))
    except OSError as exc:
        raise from_oserror(exc, "prctl(PR_GET_NO_NEW_PRIVS)") from exc


def set_dumpable(on: bool) -> None:
    """PR_SET_DUMPABLE: ``False`` makes the process non-dumpable (no core, no same-uid ptrace)."""
    try:
        _libc.prctl(_libc.PR_SET_DUMPABLE, 1 if on else 0)
    except OSError as exc:
        raise from_oserror(exc, "prctl(PR_SET_DUMPABLE)") from exc


def dumpable() -> bool:
    """Whether the calling process is dumpable."""
    try:
        return bool(_libc.prctl(_libc.PR_GET_DUMPABLE))
    except OSError as exc:
        raise from_oserror(exc, "prctl(PR_GET_DUMPABLE)") from exc
