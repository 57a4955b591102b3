"""seccomp.validate / the profile plan: every malformed field is named; semantics of rules and args."""

from __future__ import annotations

import copy
import os
import subprocess
import sys

import pytest

from kobako.errors import InvalidArgument
from kobako.runtime.security import _seccomp_profile, seccomp

GOOD = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 1,
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "flags": ["SECCOMP_FILTER_FLAG_LOG"],
    "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
        {
            "names": ["personality"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}],
        },
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "comment": "ENOSYS for glibc"},
    ],
}


def edited(path: str, value: object) -> dict:
    """GOOD with the item at ``path`` (dotted, list indexes as numbers) set, or deleted for ``...``."""
    profile = copy.deepcopy(GOOD)
    *parents, last = path.split(".")
    node: object = profile
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]  # type: ignore[index]
    key: object = int(last) if isinstance(node, list) else last
    if value is ...:
        del node[key]  # type: ignore[index, attr-defined]
    else:
        node[key] = value  # type: ignore[index]
    return profile


def test_good_profile_passes() -> None:
    seccomp.validate(GOOD)
    seccomp.validate({"defaultAction": "SCMP_ACT_ALLOW"})


@pytest.mark.parametrize(
    ("path", "value", "field", "why"),
    [
        ("defaultAction", ..., "linux.seccomp.defaultAction", "required"),
        ("defaultAction", "SCMP_ACT_NOPE", "linux.seccomp.defaultAction", "unknown action 'SCMP_ACT_NOPE'"),
        ("defaultAction", 5, "linux.seccomp.defaultAction", "must be a string"),
        ("defaultAction", "SCMP_ACT_NOTIFY", "linux.seccomp.defaultAction", "not supported"),
        ("defaultErrnoRet", -1, "linux.seccomp.defaultErrnoRet", "out of range"),
        ("defaultErrnoRet", True, "linux.seccomp.defaultErrnoRet", "unsigned integer"),
        ("defaultErrnoRet", "1", "linux.seccomp.defaultErrnoRet", "unsigned integer"),
        ("architectures", "SCMP_ARCH_X86_64", "linux.seccomp.architectures", "must be a list"),
        ("architectures.1", "SCMP_ARCH_Z80", "linux.seccomp.architectures[1]", "unknown architecture"),
        ("flags.0", "SECCOMP_FILTER_FLAG_FAST", "linux.seccomp.flags[0]", "unknown flag"),
        ("flags.0", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", "linux.seccomp.flags[0]", "not supported"),
        ("listenerPath", "/run/agent.sock", "linux.seccomp.listenerPath", "not supported"),
        ("listenerMetadata", "x", "linux.seccomp.listenerMetadata", "without listenerPath"),
        ("archMap", [], "linux.seccomp", "unknown field 'archMap'"),
        ("syscalls", {}, "linux.seccomp.syscalls", "must be a list"),
        ("syscalls.0", "read", "linux.seccomp.syscalls[0]", "must be an object"),
        ("syscalls.0.names", [], "linux.seccomp.syscalls[0].names", "non-empty list"),
        ("syscalls.0.names", "read", "linux.seccomp.syscalls[0].names", "non-empty list"),
        ("syscalls.0.names.1", 3, "linux.seccomp.syscalls[0].names[1]", "non-empty ASCII string"),
        ("syscalls.0.names.1", "", "linux.seccomp.syscalls[0].names[1]", "non-empty ASCII string"),
        ("syscalls.0.action", ..., "linux.seccomp.syscalls[0].action", "required"),
        ("syscalls.0.action", "SCMP_ACT_NOTIFY", "linux.seccomp.syscalls[0].action", "not supported"),
        ("syscalls.0.errnoRet", 1, "linux.seccomp.syscalls[0].errnoRet", "does not take an errno"),
        ("syscalls.0.includes", {"caps": []}, "linux.seccomp.syscalls[0]", "unknown field 'includes'"),
        ("syscalls.2.errnoRet", 70000, "linux.seccomp.syscalls[2].errnoRet", "out of range"),
        ("syscalls.1.args", {}, "linux.seccomp.syscalls[1].args", "must be a list"),
        ("syscalls.1.args.0", 1, "linux.seccomp.syscalls[1].args[0]", "must be an object"),
        (
            "syscalls.1.args.0.op",
            "SCMP_CMP_ALMOST",
            "linux.seccomp.syscalls[1].args[0].op",
            "unknown operator",
        ),
        ("syscalls.1.args.0.op", ..., "linux.seccomp.syscalls[1].args[0].op", "required"),
        ("syscalls.1.args.0.index", 6, "linux.seccomp.syscalls[1].args[0].index", "out of range 0..5"),
        ("syscalls.1.args.0.index", ..., "linux.seccomp.syscalls[1].args[0].index", "required"),
        ("syscalls.1.args.0.value", -8, "linux.seccomp.syscalls[1].args[0].value", "out of range"),
        ("syscalls.1.args.0.value", 1 << 64, "linux.seccomp.syscalls[1].args[0].value", "out of range"),
        ("syscalls.1.args.0.value", 8.0, "linux.seccomp.syscalls[1].args[0].value", "unsigned integer"),
        (
            "syscalls.1.args.0.valueTwo",
            None,
            "linux.seccomp.syscalls[1].args[0].valueTwo",
            "unsigned integer",
        ),
        ("syscalls.1.args.0.mask", 1, "linux.seccomp.syscalls[1].args[0]", "unknown field 'mask'"),
    ],
)
def test_malformed_profiles_name_the_field(path: str, value: object, field: str, why: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        seccomp.validate(edited(path, value))
    message = str(info.value)
    assert message.startswith(f"{field}:"), message
    assert why in message


def test_profile_must_be_an_object() -> None:
    with pytest.raises(InvalidArgument, match=r"^linux.seccomp: must be an object"):
        seccomp.validate([])  # type: ignore[arg-type]


def test_unknown_syscall_names_are_not_errors() -> None:
    seccomp.validate(edited("syscalls.0.names", ["read", "no_such_syscall_ever"]))


def test_plan_actions_and_errno_defaults() -> None:
    default, arches, flags, rules = _seccomp_profile.compile_profile(GOOD)
    assert default == 0x00050001  # ERRNO(EPERM)
    assert arches == (0xC000003E, 0x40000003, 0x4000003E)
    assert flags == 2  # SECCOMP_FILTER_FLAG_LOG
    assert [r[2] for r in rules] == [0x7FFF0000, 0x7FFF0000, 0x00050026]
    _, _, _, rules = _seccomp_profile.compile_profile(
        {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
    )
    assert rules[0][2] == 0x00050001  # errnoRet defaults to EPERM
    _, _, _, rules = _seccomp_profile.compile_profile(
        {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_TRACE"}]}
    )
    assert rules[0][2] == 0x7FF00001


def test_rules_with_the_default_action_are_dropped() -> None:
    profile = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},  # same as default: dropped
            {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 2},  # differs: kept
        ],
    }
    _, _, _, rules = _seccomp_profile.compile_profile(profile)
    assert [r[1] for r in rules] == [("rmdir",)]


def test_args_with_distinct_indexes_make_one_rule() -> None:
    args = [
        {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
        {"index": 2, "value": 0xF0, "valueTwo": 0x10, "op": "SCMP_CMP_MASKED_EQ"},
    ]
    _, _, _, rules = _seccomp_profile.compile_profile(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["socket"], "action": "SCMP_ACT_ERRNO", "args": args}],
        }
    )
    assert rules[0][3] == (((0, 4, 1, 0), (2, 7, 0xF0, 0x10)),)


def test_args_with_a_repeated_index_make_one_rule_each() -> None:
    args = [
        {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
        {"index": 0, "value": 9, "op": "SCMP_CMP_EQ"},
        {"index": 1, "value": 3, "op": "SCMP_CMP_GT"},
    ]
    _, _, _, rules = _seccomp_profile.compile_profile(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["x"], "action": "SCMP_ACT_LOG", "args": args}],
        }
    )
    assert rules[0][3] == (((0, 4, 8, 0),), ((0, 4, 9, 0),), ((1, 6, 3, 0),))


def test_architecture_tokens_match_libseccomp() -> None:
    import ctypes

    try:
        lib = ctypes.CDLL("libseccomp.so.2")
    except OSError:
        pytest.skip("libseccomp.so.2 is not installed")
    lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
    for name, token in _seccomp_profile.ARCHITECTURES.items():
        libname = name.removeprefix("SCMP_ARCH_").lower()
        assert lib.seccomp_arch_resolve_name(libname.encode()) == token, name


def test_importing_loads_nothing_heavy() -> None:
    code = (
        "import sys; before = set(sys.modules)\n"
        "import kobako.runtime.security.seccomp, kobako.runtime.security.capabilities\n"
        "import kobako.runtime.security.nonewprivs, kobako.runtime.security.default_seccomp\n"
        "new = set(sys.modules) - before\n"
        "heavy = sorted(new & {'ctypes', 'json', 're', 'logging', 'typing', 'hashlib', 'collections'})\n"
        "maps = open('/proc/self/maps').read()\n"
        "print(heavy, 'libseccomp' in maps)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    assert out.stdout.strip() == "[] False"


def test_build_compiles_without_loading(tmp_path: object) -> None:
    pytest.importorskip("ctypes")
    try:
        flt = seccomp.build(GOOD)
    except Exception as exc:  # pragma: no cover - hosts without libseccomp
        pytest.skip(f"libseccomp unavailable: {exc}")
    assert flt.instructions > 10
    assert flt.flags == 2
    assert seccomp.build(GOOD) is flt  # memoized
