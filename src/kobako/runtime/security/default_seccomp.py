"""kobako's default seccomp profile, as an OCI ``linux.seccomp`` section.

Same effect as the Docker/Podman default: every syscall not listed fails with EPERM; the common
ones are allowed (see :mod:`._default_syscalls` for the list, grouped by purpose); calls that need
a capability are allowed only when the container is granted it; ``clone`` may not create
namespaces and ``clone3`` returns ENOSYS (so libcs fall back to ``clone``) unless the container
has CAP_SYS_ADMIN; ``personality`` takes only harmless personas; ``socket`` cannot open AF_VSOCK.
"""

from __future__ import annotations

import os

from kobako.runtime.security import _default_syscalls as data

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

_ALLOW = "SCMP_ACT_ALLOW"


def default_profile(capabilities: Iterable[str], *, machine: str | None = None) -> dict[str, object]:
    """The default profile for a container granted ``capabilities`` (its bounding set).

    ``machine`` is ``uname -m`` of the host (the running one when None); it picks the syscall
    architectures the filter covers and the architecture-specific calls it allows.
    """
    caps = set(capabilities)
    arch = data.MACHINES.get(machine or os.uname().machine)

    allowed: dict[str, None] = {}  # ordered, without duplicates
    for group in data.ALLOWED.values():
        allowed.update(dict.fromkeys(group.split()))
    if _kernel_at_least(4, 8):
        allowed.update(dict.fromkeys(data.PTRACE_SINCE_4_8.split()))
    if arch is not None:
        allowed.update(dict.fromkeys(arch.syscalls))
    for cap, names in data.BY_CAPABILITY.items():
        if cap in caps:
            allowed.update(dict.fromkeys(names.split()))

    syscalls: list[dict[str, object]] = [{"names": list(allowed), "action": _ALLOW}]
    syscalls.append(
        {"names": ["socket"], "action": _ALLOW, "args": [_arg(0, data.AF_VSOCK, "SCMP_CMP_NE")]},
    )
    syscalls.extend(
        {"names": ["personality"], "action": _ALLOW, "args": [_arg(0, persona, "SCMP_CMP_EQ")]}
        for persona in data.PERSONALITIES
    )
    if "CAP_SYS_ADMIN" not in caps:
        flags_arg = arch.clone_flags_arg if arch is not None else 0
        syscalls.append(
            {
                "names": ["clone"],
                "action": _ALLOW,
                "args": [_arg(flags_arg, data.CLONE_NAMESPACE_FLAGS, "SCMP_CMP_MASKED_EQ", 0)],
            }
        )
        syscalls.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": data.ENOSYS})

    profile: dict[str, object] = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": data.EPERM}
    if arch is not None:
        profile["architectures"] = list(arch.architectures)  # a copy: callers may edit the profile
    profile["syscalls"] = syscalls
    return profile


def _arg(index: int, value: int, op: str, value_two: int | None = None) -> dict[str, object]:
    arg: dict[str, object] = {"index": index, "value": value, "op": op}
    if value_two is not None:
        arg["valueTwo"] = value_two
    return arg


def _kernel_at_least(major: int, minor: int) -> bool:
    parts = os.uname().release.split(".", 2)  # "6.1.0-18-amd64", "4.19-rc1"
    try:
        minor_digits = len(parts[1]) - len(parts[1].lstrip("0123456789"))
        return (int(parts[0]), int(parts[1][:minor_digits])) >= (major, minor)
    except (IndexError, ValueError):
        return True  # an unparseable release is a modern one in practice
