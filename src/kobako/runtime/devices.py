"""The standard container devices, and the device-cgroup rules that go with them (as runc does).

Every container gets /dev/{null,zero,full,random,urandom,tty} and a devpts; the cgroup rules are the
spec's own, then mknod of anything (nodes still need CAP_MKNOD) and access to the standard devices,
then access to each node listed in linux.devices.
"""

from __future__ import annotations

import stat

# name, kind, major, minor
STANDARD = (
    ("null", stat.S_IFCHR, 1, 3),
    ("zero", stat.S_IFCHR, 1, 5),
    ("full", stat.S_IFCHR, 1, 7),
    ("random", stat.S_IFCHR, 1, 8),
    ("urandom", stat.S_IFCHR, 1, 9),
    ("tty", stat.S_IFCHR, 5, 0),
)
_ALWAYS_ALLOWED = [
    {"allow": True, "type": "c", "access": "m"},
    {"allow": True, "type": "b", "access": "m"},
    *({"allow": True, "type": "c", "major": ma, "minor": mi, "access": "rwm"} for _n, _k, ma, mi in STANDARD),
    {"allow": True, "type": "c", "major": 5, "minor": 1, "access": "rwm"},  # /dev/console
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},  # /dev/ptmx
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},  # /dev/pts/*
]


def cgroup_rules(linux: dict) -> list[dict]:
    rules = list(linux.get("resources", {}).get("devices", []))
    rules += _ALWAYS_ALLOWED
    for d in linux.get("devices", []):
        kind = "c" if d["type"] == "u" else d["type"]
        if kind == "p":
            continue
        rules.append(
            {
                "allow": True,
                "type": kind,
                "major": d.get("major", 0),
                "minor": d.get("minor", 0),
                "access": "rwm",
            }
        )
    return rules
