"""The OCI device allow/deny list reduced to one (default, exceptions) pair, as the v1 devices controller keeps it.

Both drivers start from "deny everything" (as runc and crun do) and replay the OCI entries in order with the v1
kernel's rules (security/device_cgroup.c): a type-"a" entry resets the default and clears the exceptions; an entry
that agrees with the default removes access bits from the exception with the same type/major/minor; an entry that
disagrees adds bits. v1 then writes the result to devices.allow/deny; v2 compiles it into an eBPF program, so the
two behave the same.

An exception is a plain tuple (type "b"/"c", major, minor, access bits) with -1 for a "*" number; plain tuples
because NamedTuple would pull in typing (slow to import) on every container start.
"""

from __future__ import annotations

from kobako.errors import InvalidArgument

# The kernel's BPF_DEVCG_ACC_* bits, reused for v1 so one representation serves both drivers.
ACC_MKNOD, ACC_READ, ACC_WRITE = 1, 2, 4
ALL_ACCESS = ACC_MKNOD | ACC_READ | ACC_WRITE
_ACCESS_BITS = {"m": ACC_MKNOD, "r": ACC_READ, "w": ACC_WRITE}

DeviceRule = tuple[str, int, int, int]


def rule_line(rule: DeviceRule) -> str:
    """The devices.allow/devices.deny form of an exception, e.g. "c 1:3 rwm" (the order devices.list prints)."""
    kind, major, minor, access = rule
    numbers = ("*" if major < 0 else str(major)) + ":" + ("*" if minor < 0 else str(minor))
    bits = "".join(ch for ch, bit in (("r", ACC_READ), ("w", ACC_WRITE), ("m", ACC_MKNOD)) if access & bit)
    return f"{kind} {numbers} {bits}"


def reduce_rules(devices: object) -> tuple[bool, list[DeviceRule]]:
    """Validate the OCI ``devices`` list and replay it on top of deny-all: (default_allow, exceptions)."""
    if not isinstance(devices, list):
        raise InvalidArgument("linux.resources.devices must be a list")
    default_allow = False
    current: dict[tuple[str, int, int], int] = {}
    for i, entry in enumerate(devices):
        where = f"linux.resources.devices[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("allow"), bool):
            raise InvalidArgument(f"{where} must be an object with a boolean 'allow'")
        allow: bool = entry["allow"]
        kind = entry.get("type") or "a"
        if kind not in ("a", "b", "c"):
            raise InvalidArgument(f"{where}.type {kind!r}: must be a, b or c")
        bits = _access(entry.get("access"), where)
        major, minor = _number(entry, "major", where), _number(entry, "minor", where)
        if kind == "a":
            # The kernel reads any "a" line as "everything", whatever numbers follow it.
            default_allow = allow
            current.clear()
            continue
        key = (kind, major, minor)
        if allow != default_allow:
            current[key] = current.get(key, 0) | bits
        elif key in current:
            left = current[key] & ~bits
            if left:
                current[key] = left
            else:
                del current[key]
    return default_allow, [(kind, major, minor, bits) for (kind, major, minor), bits in current.items()]


def _access(access: object, where: str) -> int:
    if access is None or access == "":
        return ALL_ACCESS
    if not isinstance(access, str):
        raise InvalidArgument(f"{where}.access must be a string")
    bits = 0
    for ch in access:
        if ch not in _ACCESS_BITS:
            raise InvalidArgument(f"{where}.access {access!r}: only r, w and m are allowed")
        bits |= _ACCESS_BITS[ch]
    return bits


def _number(entry: dict, key: str, where: str) -> int:
    value = entry.get(key)
    if value is None:
        return -1
    if isinstance(value, bool) or not isinstance(value, int) or value < -1 or value > 0x7FFFFFFF:
        raise InvalidArgument(f"{where}.{key} {value!r}: must be a device number or -1")
    return value
