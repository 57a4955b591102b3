"""cgroup v2 statistics in the shape of runc's ``events --stats`` "data" object (runc's types.Stats).

Units follow runc: CPU times in nanoseconds, memory in bytes, "max" limits as 2**64-1 (Go's MaxUint64).
"""

from __future__ import annotations

import os

from kobako.cgroups.base import parse_int, parse_keyed, read_optional

UNLIMITED = 2**64 - 1


def collect(d: str) -> dict:
    out: dict = {}
    cpu = parse_keyed(read_optional(d, "cpu.stat"))
    if cpu:
        out["cpu"] = {
            "usage": {
                "total": cpu.get("usage_usec", 0) * 1000,
                "kernel": cpu.get("system_usec", 0) * 1000,
                "user": cpu.get("user_usec", 0) * 1000,
            },
            "throttling": {
                "periods": cpu.get("nr_periods", 0),
                "throttled_periods": cpu.get("nr_throttled", 0),
                "throttled_time": cpu.get("throttled_usec", 0) * 1000,
            },
        }
    current = read_optional(d, "memory.current")
    if current is not None:
        raw = parse_keyed(read_optional(d, "memory.stat"))
        out["memory"] = {
            "cache": raw.get("file", 0),
            "usage": _entry(d, "memory"),
            "swap": _entry(d, "memory.swap"),
            "raw": raw,
        }
    pids = read_optional(d, "pids.current")
    if pids is not None:
        out["pids"] = {"current": parse_int(pids), "limit": parse_int(read_optional(d, "pids.max"))}
    io = read_optional(d, "io.stat")
    if io is not None:
        out["blkio"] = _io(io)
    huge = hugetlb(d)
    if huge:
        out["hugetlb"] = huge
    return out


def _entry(d: str, prefix: str) -> dict:
    # "failcnt" has no v2 file; the count of times usage hit the max boundary is its closest relative.
    return {
        "usage": parse_int(read_optional(d, prefix + ".current")),
        "max": parse_int(read_optional(d, prefix + ".peak")),
        "limit": parse_int(read_optional(d, prefix + ".max"), UNLIMITED),
        "failcnt": parse_keyed(read_optional(d, prefix + ".events")).get("max", 0),
    }


def _io(text: str) -> dict:
    served: list[dict] = []
    serviced: list[dict] = []
    for line in text.splitlines():
        device, _, rest = line.partition(" ")
        major, _, minor = device.partition(":")
        fields = dict(kv.split("=", 1) for kv in rest.split() if "=" in kv)
        for key, op, bucket in (
            ("rbytes", "Read", served),
            ("wbytes", "Write", served),
            ("dbytes", "Discard", served),
            ("rios", "Read", serviced),
            ("wios", "Write", serviced),
            ("dios", "Discard", serviced),
        ):
            if key in fields:
                bucket.append({"major": int(major), "minor": int(minor), "op": op, "value": int(fields[key])})
    return {"ioServiceBytesRecursive": served, "ioServicedRecursive": serviced}


def hugetlb(d: str) -> dict:
    """Per page size ("2MB"): usage, max (the limit, as runc reports it on v2) and failcnt."""
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        return {}
    out: dict = {}
    for name in names:
        if name.startswith("hugetlb.") and name.endswith(".current") and ".rsvd." not in name:
            size = name[len("hugetlb.") : -len(".current")]
            out[size] = {
                "usage": parse_int(read_optional(d, name)),
                "max": parse_int(read_optional(d, f"hugetlb.{size}.max"), UNLIMITED),
                "failcnt": parse_keyed(read_optional(d, f"hugetlb.{size}.events")).get("max", 0),
            }
    return out
