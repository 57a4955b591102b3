"""OCI ``linux.seccomp`` → a checked, normalized plan of libseccomp calls. Pure Python, no I/O.

The plan is a tuple of plain ints and strings, so it doubles as a cache key for the compiled BPF.
See :mod:`.seccomp` for the semantics; errors name the offending field, e.g.
``linux.seccomp.syscalls[3].args[0].op``.
"""

from __future__ import annotations

from kobako.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

# libseccomp's action values (seccomp.h). SCMP_ACT_KILL is the historical name of KILL_THREAD.
ACTIONS: dict[str, int] = {
    "SCMP_ACT_KILL": 0x00000000,
    "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_KILL_PROCESS": 0x80000000,
    "SCMP_ACT_TRAP": 0x00030000,
    "SCMP_ACT_ERRNO": 0x00050000,
    "SCMP_ACT_TRACE": 0x7FF00000,
    "SCMP_ACT_LOG": 0x7FFC0000,
    "SCMP_ACT_ALLOW": 0x7FFF0000,
}
_ERRNO_ACTIONS = frozenset({"SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"})
_UNSUPPORTED_ACTIONS = frozenset({"SCMP_ACT_NOTIFY"})

# enum scmp_compare
OPERATORS: dict[str, int] = {
    "SCMP_CMP_NE": 1,
    "SCMP_CMP_LT": 2,
    "SCMP_CMP_LE": 3,
    "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6,
    "SCMP_CMP_MASKED_EQ": 7,
}

# Architecture tokens: the kernel's AUDIT_ARCH_* values (ELF machine | 64-bit | little-endian);
# x32 has no AUDIT_ARCH of its own, libseccomp gives it x86_64's without the 64-bit bit.
ARCHITECTURES: dict[str, int] = {
    "SCMP_ARCH_X86": 0x40000003,
    "SCMP_ARCH_X86_64": 0xC000003E,
    "SCMP_ARCH_X32": 0x4000003E,
    "SCMP_ARCH_ARM": 0x40000028,
    "SCMP_ARCH_AARCH64": 0xC00000B7,
    "SCMP_ARCH_MIPS": 0x00000008,
    "SCMP_ARCH_MIPS64": 0x80000008,
    "SCMP_ARCH_MIPS64N32": 0xA0000008,
    "SCMP_ARCH_MIPSEL": 0x40000008,
    "SCMP_ARCH_MIPSEL64": 0xC0000008,
    "SCMP_ARCH_MIPSEL64N32": 0xE0000008,
    "SCMP_ARCH_PPC": 0x00000014,
    "SCMP_ARCH_PPC64": 0x80000015,
    "SCMP_ARCH_PPC64LE": 0xC0000015,
    "SCMP_ARCH_S390": 0x00000016,
    "SCMP_ARCH_S390X": 0x80000016,
    "SCMP_ARCH_PARISC": 0x0000000F,
    "SCMP_ARCH_PARISC64": 0x8000000F,
    "SCMP_ARCH_RISCV64": 0xC00000F3,
}

# seccomp(2) SECCOMP_FILTER_FLAG_* bits. They travel next to the BPF, not inside it.
FLAGS: dict[str, int] = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1 << 0,
    "SECCOMP_FILTER_FLAG_LOG": 1 << 1,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 1 << 2,
}
_UNSUPPORTED_FLAGS = frozenset({"SECCOMP_FILTER_FLAG_NEW_LISTENER", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"})

_TOP_KEYS = frozenset(
    {
        "defaultAction",
        "defaultErrnoRet",
        "architectures",
        "flags",
        "listenerPath",
        "listenerMetadata",
        "syscalls",
    }
)
_RULE_KEYS = frozenset({"names", "action", "errnoRet", "args", "comment"})
_ARG_KEYS = frozenset({"index", "value", "valueTwo", "op"})
FIELD = "linux.seccomp"
_EPERM = 1
_U64 = (1 << 64) - 1
_MAX_ARG_INDEX = 5  # syscalls take at most six arguments

# The plan: (default action, arch tokens, seccomp(2) flags, rules). A rule is (field path, syscall
# names, action, condition groups); each group of (arg index, op, datum_a, datum_b) comparisons
# becomes one libseccomp rule.
Cmp = tuple[int, int, int, int]
Rule = tuple[str, tuple[str, ...], int, tuple[tuple[Cmp, ...], ...]]
Plan = tuple[int, tuple[int, ...], int, tuple[Rule, ...]]


def compile_profile(profile: Mapping[str, object]) -> Plan:
    """Check ``profile`` and return its plan; raise InvalidArgument naming the first bad field."""
    if not isinstance(profile, dict):
        raise InvalidArgument(f"{FIELD}: must be an object, not {type(profile).__name__}")
    _known_keys(profile, _TOP_KEYS, FIELD)
    if profile.get("listenerPath"):
        raise InvalidArgument(
            f"{FIELD}.listenerPath: seccomp notify listeners are not supported by kobako yet"
        )
    if profile.get("listenerMetadata"):
        raise InvalidArgument(f"{FIELD}.listenerMetadata: must not be set without listenerPath")
    if "defaultAction" not in profile:
        raise InvalidArgument(f"{FIELD}.defaultAction: is required")
    default = _action(
        profile["defaultAction"],
        profile.get("defaultErrnoRet"),
        f"{FIELD}.defaultAction",
        f"{FIELD}.defaultErrnoRet",
    )

    arches: list[int] = []
    for i, name in enumerate(_list(profile.get("architectures"), f"{FIELD}.architectures")):
        token = ARCHITECTURES.get(name) if isinstance(name, str) else None
        if token is None:
            raise InvalidArgument(f"{FIELD}.architectures[{i}]: unknown architecture {name!r}")
        if token not in arches:
            arches.append(token)

    flags = 0
    for i, name in enumerate(_list(profile.get("flags"), f"{FIELD}.flags")):
        if name in _UNSUPPORTED_FLAGS:
            raise InvalidArgument(f"{FIELD}.flags[{i}]: {name} is not supported by kobako yet")
        bit = FLAGS.get(name) if isinstance(name, str) else None
        if bit is None:
            raise InvalidArgument(f"{FIELD}.flags[{i}]: unknown flag {name!r}")
        flags |= bit

    rules: list[Rule] = []
    for i, entry in enumerate(_list(profile.get("syscalls"), f"{FIELD}.syscalls")):
        rule = _rule(entry, f"{FIELD}.syscalls[{i}]")
        if rule[2] != default:  # libseccomp refuses a rule that repeats the default action
            rules.append(rule)
    return default, tuple(arches), flags, tuple(rules)


def _rule(entry: object, where: str) -> Rule:
    if not isinstance(entry, dict):
        raise InvalidArgument(f"{where}: must be an object, not {type(entry).__name__}")
    _known_keys(entry, _RULE_KEYS, where)
    names = entry.get("names")
    if not isinstance(names, list) or not names:
        raise InvalidArgument(f"{where}.names: must be a non-empty list of syscall names")
    for j, name in enumerate(names):
        if not isinstance(name, str) or not name or not name.isascii():
            raise InvalidArgument(f"{where}.names[{j}]: must be a non-empty ASCII string, not {name!r}")
    if "action" not in entry:
        raise InvalidArgument(f"{where}.action: is required")
    action = _action(entry["action"], entry.get("errnoRet"), f"{where}.action", f"{where}.errnoRet")

    cmps = [
        _arg(arg, f"{where}.args[{j}]") for j, arg in enumerate(_list(entry.get("args"), f"{where}.args"))
    ]
    indexes = [c[0] for c in cmps]
    if len(set(indexes)) == len(indexes):
        groups: tuple[tuple[Cmp, ...], ...] = (tuple(cmps),)  # all must match: one rule
    else:
        groups = tuple((c,) for c in cmps)  # an index repeats: one rule per comparison, as runc does
    return where, tuple(names), action, groups


def _arg(arg: object, where: str) -> Cmp:
    if not isinstance(arg, dict):
        raise InvalidArgument(f"{where}: must be an object, not {type(arg).__name__}")
    _known_keys(arg, _ARG_KEYS, where)
    for key in ("index", "value", "op"):
        if key not in arg:
            raise InvalidArgument(f"{where}.{key}: is required")
    index = _uint(arg["index"], f"{where}.index", _MAX_ARG_INDEX)
    value = _uint(arg["value"], f"{where}.value", _U64)
    value_two = _uint(arg.get("valueTwo", 0), f"{where}.valueTwo", _U64)
    op_name = arg["op"]
    op = OPERATORS.get(op_name) if isinstance(op_name, str) else None
    if op is None:
        raise InvalidArgument(f"{where}.op: unknown operator {op_name!r}")
    # SCMP_CMP_MASKED_EQ: value is the mask, valueTwo what the masked argument must equal.
    # The other operators compare with value alone (libseccomp ignores datum_b for them).
    return index, op, value, value_two


def _action(name: object, errno_ret: object, where: str, errno_where: str) -> int:
    if not isinstance(name, str):
        raise InvalidArgument(f"{where}: must be a string, not {type(name).__name__}")
    if name in _UNSUPPORTED_ACTIONS:
        raise InvalidArgument(f"{where}: {name} is not supported by kobako yet")
    base = ACTIONS.get(name)
    if base is None:
        raise InvalidArgument(f"{where}: unknown action {name!r}")
    if name in _ERRNO_ACTIONS:
        return base | (_EPERM if errno_ret is None else _uint(errno_ret, errno_where, 0xFFFF))
    if errno_ret is not None:
        raise InvalidArgument(f"{errno_where}: {name} does not take an errno")
    return base


def _uint(value: object, where: str, limit: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidArgument(f"{where}: must be an unsigned integer, not {type(value).__name__}")
    if not 0 <= value <= limit:
        raise InvalidArgument(f"{where}: {value} is out of range 0..{limit}")
    return value


def _list(value: object, where: str) -> list[object]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidArgument(f"{where}: must be a list, not {type(value).__name__}")
    return value


def _known_keys(obj: dict[str, object], allowed: frozenset[str], where: str) -> None:
    for key in obj:
        if key not in allowed:
            raise InvalidArgument(f"{where}: unknown field {key!r}")
