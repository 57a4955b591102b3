"""Docker-format seccomp profiles (``--security-opt seccomp=FILE``) → an OCI ``linux.seccomp`` section.

Docker's format adds to the OCI one: ``archMap`` (native architecture → its compat sub-architectures),
per-rule ``includes``/``excludes`` conditions on the container's capabilities, the host architecture and
the kernel version, errno names (``"errno": "EPERM"``), and the older singular ``"name"``. They are
evaluated here for this host and this container's capabilities (its bounding set), as dockerd does, and
what is left is a plain OCI profile. Anything not understood is refused with the field named: a profile
half-applied would be weaker than its author meant.
"""

from __future__ import annotations

import os

from kobako.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

_TOP_KEYS = frozenset(("defaultAction", "defaultErrnoRet", "defaultErrno", "architectures", "archMap",
                       "syscalls", "flags", "listenerPath", "listenerMetadata"))  # fmt: skip
_RULE_KEYS = frozenset(
    ("names", "name", "action", "args", "comment", "includes", "excludes", "errnoRet", "errno")
)
_FILTER_KEYS = frozenset(("caps", "arches", "minKernel"))
# uname -m → (libseccomp's native architecture, the names Docker profiles use for it in includes.arches)
_HOST_ARCH = {
    "x86_64": ("SCMP_ARCH_X86_64", ("amd64", "x86_64")),
    "aarch64": ("SCMP_ARCH_AARCH64", ("arm64", "aarch64")),
    "ppc64le": ("SCMP_ARCH_PPC64LE", ("ppc64le",)),
    "s390x": ("SCMP_ARCH_S390X", ("s390x",)),
    "riscv64": ("SCMP_ARCH_RISCV64", ("riscv64",)),
    "i686": ("SCMP_ARCH_X86", ("386", "x86", "i686")),
    "armv7l": ("SCMP_ARCH_ARM", ("arm", "armv7l")),
}
_WHERE = "seccomp profile"


def from_docker(profile: dict[str, object], capabilities: Iterable[str], *, machine: str | None = None,
                kernel: str | None = None) -> dict[str, object]:  # fmt: skip
    """The OCI profile for a container with ``capabilities`` on a ``machine`` running ``kernel``."""
    if not isinstance(profile, dict):
        raise InvalidArgument(f"{_WHERE}: must be a JSON object")
    for key in profile:
        if key not in _TOP_KEYS:
            raise InvalidArgument(f"{_WHERE}: unknown field {key!r}")
    machine = machine or os.uname().machine
    kernel = kernel or os.uname().release
    native, arch_names = _HOST_ARCH.get(machine, ("", (machine,)))
    caps = set(capabilities)

    out: dict[str, object] = {"defaultAction": profile.get("defaultAction")}
    errno_ret = _errno(profile.get("defaultErrnoRet"), profile.get("defaultErrno"), "defaultErrno")
    if errno_ret is not None:
        out["defaultErrnoRet"] = errno_ret
    if "architectures" in profile and "archMap" in profile:
        raise InvalidArgument(f"{_WHERE}: use either 'architectures' or 'archMap', not both")
    if "archMap" in profile:
        out["architectures"] = _arch_map(profile["archMap"], native)
    elif "architectures" in profile:
        out["architectures"] = profile["architectures"]
    for key in ("flags", "listenerPath", "listenerMetadata"):
        if key in profile:
            out[key] = profile[key]

    rules = profile.get("syscalls")
    rules = [] if rules is None else rules
    if not isinstance(rules, list):
        raise InvalidArgument(f"{_WHERE}: syscalls must be a list")
    syscalls = []
    for i, rule in enumerate(rules):
        converted = _rule(rule, f"{_WHERE}: syscalls[{i}]", caps, arch_names, kernel)
        if converted is not None:
            syscalls.append(converted)
    out["syscalls"] = syscalls

    from kobako.runtime.security import seccomp

    seccomp.validate(out)  # the runtime's own checks, now, while the user still has the file in mind
    return out


def _arch_map(arch_map: object, native: str) -> list[str]:
    if not isinstance(arch_map, list):
        raise InvalidArgument(f"{_WHERE}: archMap must be a list")
    arches: list[str] = []
    for i, entry in enumerate(arch_map):
        if not isinstance(entry, dict) or not isinstance(entry.get("architecture"), str):
            raise InvalidArgument(f"{_WHERE}: archMap[{i}] must have an architecture")
        if entry["architecture"] == native:
            subs = entry.get("subArchitectures") or []
            if not isinstance(subs, list):
                raise InvalidArgument(f"{_WHERE}: archMap[{i}].subArchitectures must be a list")
            arches = [native, *subs]
    return arches


def _errno(number: object, name: object, where: str) -> int | None:
    if number is not None:
        return number  # type: ignore[return-value]  # the runtime's validation checks the type
    if name is None:
        return None
    import errno

    value = getattr(errno, name, None) if isinstance(name, str) and name.startswith("E") else None
    if not isinstance(value, int):
        raise InvalidArgument(f"{_WHERE}: {where}: unknown errno name {name!r}")
    return value


def _rule(rule: object, where: str, caps: set[str], arch_names: tuple[str, ...], kernel: str) -> dict | None:
    if not isinstance(rule, dict):
        raise InvalidArgument(f"{where}: must be an object")
    for key in rule:
        if key not in _RULE_KEYS:
            raise InvalidArgument(f"{where}: unknown field {key!r}")
    includes = _filter(rule.get("includes"), f"{where}.includes")
    excludes = _filter(rule.get("excludes"), f"{where}.excludes")
    if excludes.get("minKernel"):
        raise InvalidArgument(f"{where}.excludes.minKernel: is not supported (only includes.minKernel)")
    # includes: every listed capability held, the host architecture listed, the kernel new enough.
    if includes.get("caps") and not set(includes["caps"]) <= caps:
        return None
    if includes.get("arches") and not set(includes["arches"]) & set(arch_names):
        return None
    if includes.get("minKernel") and not _kernel_at_least(kernel, includes["minKernel"], f"{where}.includes"):
        return None
    # excludes: any listed capability held, or the host architecture listed, drops the rule.
    if excludes.get("caps") and set(excludes["caps"]) & caps:
        return None
    if excludes.get("arches") and set(excludes["arches"]) & set(arch_names):
        return None

    if "name" in rule and "names" in rule:
        raise InvalidArgument(f"{where}: use either 'name' or 'names', not both")
    names = [rule["name"]] if "name" in rule else rule.get("names")
    out: dict[str, object] = {"names": names, "action": rule.get("action")}
    errno_ret = _errno(rule.get("errnoRet"), rule.get("errno"), f"{where}.errno")
    if errno_ret is not None:
        out["errnoRet"] = errno_ret
    if rule.get("args"):
        out["args"] = rule["args"]
    return out


def _filter(value: object, where: str) -> dict[str, object]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"{where}: must be an object")
    for key, item in value.items():
        if key not in _FILTER_KEYS:
            raise InvalidArgument(f"{where}: unknown condition {key!r}")
        if key != "minKernel" and not (isinstance(item, list) and all(isinstance(x, str) for x in item)):
            raise InvalidArgument(f"{where}.{key}: must be a list of strings")
    return value


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:3]:
        digits = len(piece) - len(piece.lstrip("0123456789"))
        if not digits:
            break
        parts.append(int(piece[:digits]))
    return tuple(parts)


def _kernel_at_least(kernel: str, minimum: object, where: str) -> bool:
    wanted = _version(minimum) if isinstance(minimum, str) else ()
    if not wanted:
        raise InvalidArgument(f'{where}.minKernel: invalid kernel version {minimum!r} (expected e.g. "4.8")')
    return _version(kernel) >= wanted
