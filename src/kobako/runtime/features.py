"""`kobako-runtime features`: what this runtime supports, in the runtime-spec features.md shape."""

from __future__ import annotations

from kobako.oci import runtime_spec
from kobako.runtime import namespaces


def features() -> dict:
    from kobako.runtime.rootfs import MOUNT_OPTIONS
    from kobako.runtime.security import capabilities

    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": runtime_spec.OCI_VERSION,
        "hooks": list(runtime_spec.HOOK_KINDS),
        "mountOptions": MOUNT_OPTIONS,
        "linux": {
            "namespaces": list(namespaces.ORDERED),
            "capabilities": sorted(capabilities.CAPABILITIES, key=capabilities.CAPABILITIES.__getitem__),
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False},
            "seccomp": {
                "enabled": True,
                "actions": [
                    "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP",
                ],
                "operators": [
                    "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                    "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE",
                ],
                "archs": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
                "knownFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
            },
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
        },
        "annotations": {"org.kobako.runtime.version": "0.1.0"},
    }  # fmt: skip
