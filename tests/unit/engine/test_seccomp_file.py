"""Docker-format seccomp profiles → OCI linux.seccomp, evaluated for a host and a capability set."""

from __future__ import annotations

import json
import os

import pytest

from kobako.engine.seccomp import from_docker
from kobako.errors import InvalidArgument
from kobako.runtime.security import seccomp

ARCH_MAP = [
    {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
    {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
]


def convert(
    rules: list[dict], caps: list[str] = (), machine: str = "x86_64", kernel: str = "6.1.0", **top: object
) -> dict:  # type: ignore[assignment]
    profile = {"defaultAction": "SCMP_ACT_ERRNO", "archMap": ARCH_MAP, "syscalls": rules, **top}
    return from_docker(profile, caps, machine=machine, kernel=kernel)


def names(out: dict) -> list[list[str]]:
    return [r["names"] for r in out["syscalls"]]


def test_arch_map_picks_the_native_architecture() -> None:
    assert convert([])["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    assert convert([], machine="aarch64")["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert convert([], machine="s390x")["architectures"] == []


@pytest.mark.parametrize(
    ("rule", "caps", "machine", "kernel", "kept"),
    [
        ({"includes": {"caps": ["CAP_SYS_ADMIN"]}}, [], "x86_64", "6.1", False),
        ({"includes": {"caps": ["CAP_SYS_ADMIN"]}}, ["CAP_SYS_ADMIN"], "x86_64", "6.1", True),
        ({"includes": {"caps": ["CAP_SYS_ADMIN", "CAP_NET_RAW"]}}, ["CAP_SYS_ADMIN"], "x86_64", "6.1", False),
        ({"excludes": {"caps": ["CAP_SYS_ADMIN"]}}, ["CAP_SYS_ADMIN"], "x86_64", "6.1", False),
        ({"excludes": {"caps": ["CAP_SYS_ADMIN"]}}, [], "x86_64", "6.1", True),
        ({"includes": {"arches": ["amd64", "x32"]}}, [], "x86_64", "6.1", True),
        ({"includes": {"arches": ["arm", "arm64"]}}, [], "x86_64", "6.1", False),
        ({"includes": {"arches": ["arm", "arm64"]}}, [], "aarch64", "6.1", True),
        ({"excludes": {"arches": ["amd64"]}}, [], "x86_64", "6.1", False),
        ({"includes": {"minKernel": "4.8"}}, [], "x86_64", "4.19.0-rc1", True),
        ({"includes": {"minKernel": "4.8"}}, [], "x86_64", "4.4.0-generic", False),
        ({"includes": {}, "excludes": {}}, [], "x86_64", "6.1", True),
    ],
)
def test_conditions(rule: dict, caps: list[str], machine: str, kernel: str, kept: bool) -> None:
    out = convert([{"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", **rule}], caps, machine, kernel)
    assert names(out) == ([["ptrace"]] if kept else [])


def test_errno_names_old_singular_names_and_passthrough() -> None:
    out = convert(
        [
            {"name": "chmod", "action": "SCMP_ACT_ERRNO", "errno": "EACCES", "comment": "x", "args": None},
            {
                "names": ["socket"],
                "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}],
            },
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 3, "errno": "ESRCH"},
        ],
        defaultErrno="ENOSYS",
        flags=["SECCOMP_FILTER_FLAG_LOG"],
    )
    assert out["defaultErrnoRet"] == 38 and out["flags"] == ["SECCOMP_FILTER_FLAG_LOG"]
    assert out["syscalls"] == [
        {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
        {
            "names": ["socket"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}],
        },
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 3},
    ]


def test_oci_format_passes_through() -> None:
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
               "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ERRNO"}]}  # fmt: skip
    assert from_docker(profile, []) == profile


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        ({"defaultAction": "SCMP_ACT_ERRNO", "unknown": 1}, "unknown field 'unknown'"),
        ({"defaultAction": "SCMP_ACT_ERRNO", "architectures": [], "archMap": []}, "either 'architectures' or 'archMap'"),
        ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": {}}, "syscalls must be a list"),
        ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW", "bogus": 1}]},
         "syscalls\\[0\\]: unknown field 'bogus'"),
        ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW",
          "includes": {"kernelish": "1"}}]}, "unknown condition 'kernelish'"),
        ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW",
          "excludes": {"minKernel": "4.8"}}]}, "excludes.minKernel: is not supported"),
        ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW",
          "includes": {"minKernel": "new"}}]}, "invalid kernel version"),
        ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW",
          "includes": {"caps": "CAP_X"}}]}, "must be a list of strings"),
        ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ERRNO",
          "errno": "ENOTANERRNO"}]}, "unknown errno name"),
        ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_NOTIFY"}]},
         "not supported"),
        ({"defaultAction": "SCMP_ACT_MAYBE"}, "unknown action"),
        ({"defaultAction": "SCMP_ACT_ERRNO", "listenerPath": "/run/x.sock"}, "listenerPath"),
    ],
)  # fmt: skip
def test_unsupported_or_bad_parts_are_refused(profile: dict, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        from_docker(profile, [], machine="x86_64", kernel="6.1")


@pytest.mark.skipif(
    not os.path.exists("/usr/share/containers/seccomp.json"), reason="no containers-common profile"
)
def test_podmans_own_profile_converts_and_validates() -> None:
    with open("/usr/share/containers/seccomp.json") as f:
        profile = json.load(f)
    out = from_docker(profile, ["CAP_CHOWN", "CAP_SYS_CHROOT"], machine="x86_64", kernel="6.1.0")
    seccomp.validate(out)
    allowed = {n for r in out["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" for n in r["names"]}
    assert {"read", "chroot", "arch_prctl"} <= allowed
    assert "bpf" not in allowed and "cacheflush" not in allowed  # needs CAP_SYS_ADMIN; an arm-only call
