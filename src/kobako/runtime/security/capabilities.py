"""Linux capabilities for the container process: names, bounding set, capset and ambient caps.

The container init calls :func:`apply` after it has switched to the container's uid/gid (with
:func:`set_keep_caps` turned on before the switch, so the permitted set survives it) and right
before ``execve``. :func:`apply` then, in this order:

1. raises the effective set back to the permitted set: ``setuid`` away from 0 empties the effective
   set even with keepcaps, and shrinking the bounding set needs ``CAP_SETPCAP`` to be effective;
2. drops from the bounding set every capability not listed in ``bounding`` (irreversible, so it
   comes before anything that could lose ``CAP_SETPCAP``);
3. sets effective, permitted and inheritable in one ``capset``;
4. clears the ambient set and raises the listed ambient capabilities, which the kernel allows only
   for capabilities that are both permitted and inheritable (so it must follow step 3).

Names the running kernel does not know (above ``/proc/sys/kernel/cap_last_cap``), and capabilities
that cannot be granted (for example an effective one that is not permitted), are skipped with a
a debug message (``KOBAKO_DEBUG``), as the OCI runtime spec asks; a name that is no capability at all is an
:class:`~kobako.errors.InvalidArgument`.

Everything talks to the kernel through ``kobako.libc`` (``capget``/``capset``/``prctl``).
"""

from __future__ import annotations

import errno
import os

from kobako.errors import InvalidArgument, PermissionDenied, from_oserror
from kobako.runtime.security import _libc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

CAPABILITIES: dict[str, int] = {
    "CAP_CHOWN": 0,
    "CAP_DAC_OVERRIDE": 1,
    "CAP_DAC_READ_SEARCH": 2,
    "CAP_FOWNER": 3,
    "CAP_FSETID": 4,
    "CAP_KILL": 5,
    "CAP_SETGID": 6,
    "CAP_SETUID": 7,
    "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9,
    "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12,
    "CAP_NET_RAW": 13,
    "CAP_IPC_LOCK": 14,
    "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16,
    "CAP_SYS_RAWIO": 17,
    "CAP_SYS_CHROOT": 18,
    "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20,
    "CAP_SYS_ADMIN": 21,
    "CAP_SYS_BOOT": 22,
    "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24,
    "CAP_SYS_TIME": 25,
    "CAP_SYS_TTY_CONFIG": 26,
    "CAP_MKNOD": 27,
    "CAP_LEASE": 28,
    "CAP_AUDIT_WRITE": 29,
    "CAP_AUDIT_CONTROL": 30,
    "CAP_SETFCAP": 31,
    "CAP_MAC_OVERRIDE": 32,
    "CAP_MAC_ADMIN": 33,
    "CAP_SYSLOG": 34,
    "CAP_WAKE_ALARM": 35,
    "CAP_BLOCK_SUSPEND": 36,
    "CAP_AUDIT_READ": 37,
    "CAP_PERFMON": 38,
    "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}

SETS: tuple[str, ...] = ("bounding", "effective", "inheritable", "permitted", "ambient")
"""The keys of an OCI ``process.capabilities`` object."""

_BY_NUMBER: dict[int, str] = {number: name for name, number in CAPABILITIES.items()}
_CAP_LAST_CAP = "/proc/sys/kernel/cap_last_cap"
_last_cap: int | None = None


def last_cap() -> int:
    """The highest capability number the running kernel knows (cached after the first call).

    Read from ``/proc/sys/kernel/cap_last_cap``; when /proc is not there (inside a half-built
    rootfs), probe the bounding set instead, since ``PR_CAPBSET_READ`` fails with EINVAL past it.
    """
    global _last_cap
    if _last_cap is None:
        try:
            with open(_CAP_LAST_CAP, "rb") as f:
                _last_cap = int(f.read())
        except (OSError, ValueError):
            _last_cap = _probe_last_cap()
    return _last_cap


def _probe_last_cap() -> int:
    for cap in range(63, -1, -1):
        try:
            _libc.prctl(_libc.PR_CAPBSET_READ, cap)
        except OSError:
            continue
        return cap
    return max(CAPABILITIES.values())


def parse(names: list[str] | tuple[str, ...] | None, field: str = "capabilities") -> int:
    """The bitmask of capability ``names``.

    A name that is no capability raises :class:`InvalidArgument` naming it (``field`` says where it
    came from). A real capability the running kernel does not know is left out with a
    a debug message, as runc does.
    """
    if names is None:
        return 0
    if not isinstance(names, list | tuple):
        raise InvalidArgument(f"{field}: must be a list of capability names, not {type(names).__name__}")
    top = last_cap()
    mask = 0
    for name in names:
        number = CAPABILITIES.get(name) if isinstance(name, str) else None
        if number is None:
            raise InvalidArgument(f"{field}: unknown capability {name!r}")
        if number > top:
            _warn(f"{field}: {name} is not known to the running kernel (last capability {top}); ignored")
            continue
        mask |= 1 << number
    return mask


def names(mask: int) -> list[str]:
    """The capability names in ``mask``, lowest number first (unnamed bits as ``CAP_<n>``)."""
    return [_BY_NUMBER.get(bit, f"CAP_{bit}") for bit in range(mask.bit_length()) if mask >> bit & 1]


def set_keep_caps(on: bool) -> None:
    """PR_SET_KEEPCAPS: keep the permitted set across the coming setuid() away from uid 0."""
    try:
        _libc.prctl(_libc.PR_SET_KEEPCAPS, 1 if on else 0)
    except OSError as exc:
        raise from_oserror(exc, "prctl(PR_SET_KEEPCAPS)") from exc


def drop_bounding(keep_mask: int) -> None:
    """Drop from the bounding set every capability up to :func:`last_cap` that is not in ``keep_mask``.

    Needs ``CAP_SETPCAP`` in the effective set, except for capabilities already gone.
    """
    _shrink_bounding(keep_mask)


def apply(caps: Mapping[str, list[str] | None]) -> None:
    """Apply an OCI ``process.capabilities`` object to the calling process (see the module doc)."""
    if not isinstance(caps, dict):
        raise InvalidArgument(f"process.capabilities: must be an object, not {type(caps).__name__}")
    for key in caps:
        if key not in SETS:
            raise InvalidArgument(f"process.capabilities: unknown set {key!r} (expected one of {SETS})")
    want = {key: parse(caps.get(key), f"process.capabilities.{key}") for key in SETS}

    try:
        held_eff, held_perm, held_inh = _libc.capget()
    except OSError as exc:
        raise from_oserror(exc, "capget") from exc
    if held_eff != held_perm:
        _capset(held_perm, held_perm, held_inh, "raising the effective set to the permitted set")

    bounding = _shrink_bounding(want["bounding"])

    permitted = _granted(want["permitted"], held_perm, "permitted", "the process does not hold it")
    effective = _granted(want["effective"], permitted, "effective", "it is not permitted")
    # capset lets the inheritable set grow only within the bounding set, and without CAP_SETPCAP
    # only within the permitted set too; take the intersection, which is always allowed.
    inheritable = _granted(
        want["inheritable"], held_inh | (bounding & held_perm), "inheritable", "it is not in the bounding set"
    )
    _capset(effective, permitted, inheritable, "setting the capability sets")

    ambient = _granted(
        want["ambient"], permitted & inheritable, "ambient", "it is not permitted and inheritable"
    )
    _set_ambient(ambient)


def _granted(wanted: int, allowed: int, which: str, why: str) -> int:
    lost = wanted & ~allowed
    if lost:
        _warn(f"process.capabilities.{which}: cannot grant {', '.join(names(lost))}: {why}; skipped")
    return wanted & allowed


def _shrink_bounding(keep_mask: int) -> int:
    """Drop what is not kept; return the resulting bounding set (as far as :func:`last_cap` goes)."""
    bounding = 0
    for cap in range(last_cap() + 1):
        if keep_mask >> cap & 1:
            try:
                if _libc.prctl(_libc.PR_CAPBSET_READ, cap):
                    bounding |= 1 << cap
            except OSError:
                pass
            continue
        try:
            _libc.prctl(_libc.PR_CAPBSET_DROP, cap)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                continue  # the kernel does not know this one: nothing to drop
            if exc.errno == errno.EPERM and not _in_bounding(cap):
                continue  # already gone: a nested or restricted environment without CAP_SETPCAP
            name = _BY_NUMBER.get(cap, f"CAP_{cap}")
            if exc.errno == errno.EPERM:
                raise PermissionDenied(
                    f"dropping {name} from the bounding set needs CAP_SETPCAP in the effective set"
                ) from exc
            raise from_oserror(exc, f"prctl(PR_CAPBSET_DROP, {name})") from exc
    return bounding


def _in_bounding(cap: int) -> bool:
    try:
        return bool(_libc.prctl(_libc.PR_CAPBSET_READ, cap))
    except OSError:
        return False


def _capset(effective: int, permitted: int, inheritable: int, what: str) -> None:
    try:
        _libc.capset(effective, permitted, inheritable)
    except OSError as exc:
        err = from_oserror(
            exc,
            f"capset while {what} (effective {names(effective)}, permitted {names(permitted)}, "
            f"inheritable {names(inheritable)})",
        )
        raise err from exc


def _set_ambient(ambient: int) -> None:
    try:
        _libc.prctl(_libc.PR_CAP_AMBIENT, _libc.PR_CAP_AMBIENT_CLEAR_ALL)
    except OSError as exc:
        if exc.errno == errno.EINVAL and not ambient:
            return  # a kernel without ambient capabilities (< 4.3) and none asked for
        raise from_oserror(exc, "prctl(PR_CAP_AMBIENT_CLEAR_ALL)") from exc
    for cap in range(ambient.bit_length()):
        if ambient >> cap & 1:
            try:
                _libc.prctl(_libc.PR_CAP_AMBIENT, _libc.PR_CAP_AMBIENT_RAISE, cap)
            except OSError as exc:
                name = _BY_NUMBER.get(cap, f"CAP_{cap}")
                if exc.errno == errno.EPERM:  # SECBIT_NO_CAP_AMBIENT_RAISE, or locked down
                    _warn(f"process.capabilities.ambient: the kernel refused to raise {name}; skipped")
                    continue
                raise from_oserror(exc, f"prctl(PR_CAP_AMBIENT_RAISE, {name})") from exc


def _warn(message: str) -> None:
    # Skipped capabilities are routine (runc logs them at debug level): only say so when debugging, and
    # without the warnings module, which would have to be imported before the container's root is entered.
    if os.environ.get("KOBAKO_DEBUG"):
        os.write(2, f"kobako: warning: {message}\n".encode())
