"""default_seccomp.default_profile: shape, capability-gated calls, clone rules, architectures."""

from __future__ import annotations

import pytest

from kobako.runtime.security import _default_syscalls, default_seccomp, seccomp

DOCKER_DEFAULT = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
    "CAP_AUDIT_WRITE",
]  # fmt: skip


def allowed(profile: dict) -> set[str]:
    """Names allowed unconditionally (no args)."""
    return {
        name
        for rule in profile["syscalls"]
        if rule["action"] == "SCMP_ACT_ALLOW" and not rule.get("args")
        for name in rule["names"]
    }


def rules_for(profile: dict, name: str) -> list[dict]:
    return [rule for rule in profile["syscalls"] if name in rule["names"]]


@pytest.mark.parametrize("caps", [[], DOCKER_DEFAULT, [*DOCKER_DEFAULT, "CAP_SYS_ADMIN", "CAP_SYS_PTRACE"]])
@pytest.mark.parametrize("machine", ["x86_64", "aarch64", "s390x", "ppc64le", "riscv64", "sparc64"])
def test_profile_is_valid(caps: list[str], machine: str) -> None:
    seccomp.validate(default_seccomp.default_profile(caps, machine=machine))


def test_shape_on_x86_64() -> None:
    profile = default_seccomp.default_profile(DOCKER_DEFAULT, machine="x86_64")
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"
    assert profile["defaultErrnoRet"] == 1
    assert profile["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    names = allowed(profile)
    assert {
        "read",
        "write",
        "openat",
        "execve",
        "exit_group",
        "futex",
        "clock_gettime",
        "arch_prctl",
    } <= names
    assert len(names) > 300
    first = profile["syscalls"][0]["names"]
    assert len(first) == len(set(first))  # no name twice


def test_without_cap_sys_admin_no_mounts_namespaces_or_clone3() -> None:
    profile = default_seccomp.default_profile(DOCKER_DEFAULT, machine="x86_64")
    names = allowed(profile)
    for name in ("mount", "umount2", "unshare", "setns", "clone", "clone3", "sethostname", "bpf", "fsopen"):
        assert name not in names
    (clone,) = rules_for(profile, "clone")
    assert clone["action"] == "SCMP_ACT_ALLOW"
    assert clone["args"] == [{"index": 0, "value": 0x7E020000, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]
    (clone3,) = rules_for(profile, "clone3")
    assert clone3 == {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}


def test_cap_sys_admin_unlocks_them() -> None:
    profile = default_seccomp.default_profile([*DOCKER_DEFAULT, "CAP_SYS_ADMIN"], machine="x86_64")
    names = allowed(profile)
    assert {"mount", "umount2", "unshare", "setns", "clone", "clone3", "sethostname", "fsopen"} <= names
    assert all(not rule.get("args") for rule in rules_for(profile, "clone"))
    assert all(rule["action"] == "SCMP_ACT_ALLOW" for rule in rules_for(profile, "clone3"))


@pytest.mark.parametrize(
    ("cap", "calls"),
    [
        ("CAP_SYS_PTRACE", {"kcmp", "pidfd_getfd", "process_madvise"}),
        ("CAP_SYS_MODULE", {"init_module", "finit_module", "delete_module"}),
        ("CAP_SYS_TIME", {"settimeofday", "clock_settime"}),
        ("CAP_SYS_BOOT", {"reboot"}),
        ("CAP_SYS_CHROOT", {"chroot"}),
        ("CAP_SYS_RAWIO", {"iopl", "ioperm"}),
        ("CAP_DAC_READ_SEARCH", {"open_by_handle_at"}),
        ("CAP_SYSLOG", {"syslog"}),
        ("CAP_BPF", {"bpf"}),
        ("CAP_PERFMON", {"perf_event_open"}),
        ("CAP_SYS_NICE", {"mbind", "set_mempolicy"}),
    ],
)
def test_capability_gated_calls(cap: str, calls: set[str]) -> None:
    without = allowed(default_seccomp.default_profile([], machine="x86_64"))
    with_cap = allowed(default_seccomp.default_profile([cap], machine="x86_64"))
    assert not calls & without
    assert calls <= with_cap


def test_never_allowed() -> None:
    everything = default_seccomp.default_profile([*DOCKER_DEFAULT, "CAP_SYS_ADMIN"], machine="x86_64")
    names = {name for rule in everything["syscalls"] for name in rule["names"]}
    assert not names & {
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "kexec_load",
        "swapon",
        "userfaultfd",
    }


def test_personality_and_socket_take_arguments() -> None:
    profile = default_seccomp.default_profile([], machine="x86_64")
    personas = sorted(rule["args"][0]["value"] for rule in rules_for(profile, "personality"))
    assert personas == [0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF]
    assert all(rule["args"][0]["op"] == "SCMP_CMP_EQ" for rule in rules_for(profile, "personality"))
    (sock,) = rules_for(profile, "socket")
    assert sock["args"] == [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]


def test_ptrace_is_allowed_on_kernels_since_4_8(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "ptrace" in allowed(default_seccomp.default_profile([], machine="x86_64"))
    monkeypatch.setattr(default_seccomp, "_kernel_at_least", lambda major, minor: False)
    assert "ptrace" not in allowed(default_seccomp.default_profile([], machine="x86_64"))


def test_other_machines() -> None:
    arm = default_seccomp.default_profile([], machine="aarch64")
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert "set_tls" in allowed(arm)
    assert "arch_prctl" not in allowed(arm)
    s390 = default_seccomp.default_profile([], machine="s390x")
    assert rules_for(s390, "clone")[0]["args"][0]["index"] == 1  # s390 passes clone's flags second
    unknown = default_seccomp.default_profile([], machine="sparc64")
    assert "architectures" not in unknown  # native only


def test_each_call_returns_a_fresh_profile() -> None:
    first = default_seccomp.default_profile([], machine="x86_64")
    first["syscalls"][0]["names"].append("kexec_load")
    first["architectures"].clear()
    second = default_seccomp.default_profile([], machine="x86_64")
    assert "kexec_load" not in allowed(second)
    assert second["architectures"]


def test_data_has_no_duplicates_within_a_group() -> None:
    for group, names in {**_default_syscalls.ALLOWED, **_default_syscalls.BY_CAPABILITY}.items():
        split = names.split()
        assert len(split) == len(set(split)), group
