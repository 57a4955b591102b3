"""cgroup v1 statistics in the shape of runc's ``events --stats`` "data" object (runc's types.Stats).

Units follow runc: CPU times in nanoseconds (cpuacct.stat's clock ticks converted), memory in bytes.
"""

from __future__ import annotations

import os

from kobako.cgroups.base import parse_int, parse_keyed, read_optional

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kobako.cgroups.v1 import V1Manager


def collect(mgr: V1Manager) -> dict:
    out: dict = {}
    dirs = mgr.dirs
    if "cpuacct" in dirs or "cpu" in dirs:
        out["cpu"] = _cpu(dirs.get("cpuacct"), dirs.get("cpu"))
    if "memory" in dirs:
        d = dirs["memory"]
        raw = parse_keyed(read_optional(d, "memory.stat"))
        out["memory"] = {
            "cache": raw.get("cache", 0),
            "usage": _entry(d, "memory."),
            "swap": _entry(d, "memory.memsw."),
            "kernel": _entry(d, "memory.kmem."),
            "kernelTCP": _entry(d, "memory.kmem.tcp."),
            "raw": raw,
        }
    if "pids" in dirs:
        d = dirs["pids"]
        out["pids"] = {
            "current": parse_int(read_optional(d, "pids.current")),
            "limit": parse_int(read_optional(d, "pids.max")),  # runc reports "max" as 0
        }
    if "blkio" in dirs:
        out["blkio"] = _blkio(dirs["blkio"])
    if "hugetlb" in dirs:
        out["hugetlb"] = _hugetlb(dirs["hugetlb"])
    elif "" in dirs:  # hybrid host with hugetlb on the cgroup2 side
        from kobako.cgroups.v2.stats import hugetlb

        huge = hugetlb(dirs[""])
        if huge:
            out["hugetlb"] = huge
    return out


def _cpu(acct: str | None, cpu: str | None) -> dict:
    usage: dict = {"total": 0, "percpu": [], "percpu_kernel": [], "percpu_user": [], "kernel": 0, "user": 0}
    if acct is not None:
        usage["total"] = parse_int(read_optional(acct, "cpuacct.usage"))
        usage["percpu"] = [int(x) for x in (read_optional(acct, "cpuacct.usage_percpu") or "").split()]
        # usage_all: a "cpu user system" header, then one line per CPU in nanoseconds.
        for line in (read_optional(acct, "cpuacct.usage_all") or "").splitlines()[1:]:
            fields = line.split()
            if len(fields) == 3:
                usage["percpu_user"].append(int(fields[1]))
                usage["percpu_kernel"].append(int(fields[2]))
        ticks = parse_keyed(read_optional(acct, "cpuacct.stat"))
        ns_per_tick = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
        usage["user"] = ticks.get("user", 0) * ns_per_tick
        usage["kernel"] = ticks.get("system", 0) * ns_per_tick
    throttled = parse_keyed(read_optional(cpu, "cpu.stat")) if cpu is not None else {}
    return {
        "usage": usage,
        "throttling": {
            "periods": throttled.get("nr_periods", 0),
            "throttled_periods": throttled.get("nr_throttled", 0),
            "throttled_time": throttled.get("throttled_time", 0),
        },
    }


def _entry(d: str, prefix: str) -> dict:
    return {
        "usage": parse_int(read_optional(d, prefix + "usage_in_bytes")),
        "max": parse_int(read_optional(d, prefix + "max_usage_in_bytes")),
        "limit": parse_int(read_optional(d, prefix + "limit_in_bytes")),
        "failcnt": parse_int(read_optional(d, prefix + "failcnt")),
    }


def _blkio(d: str) -> dict:
    out: dict = {}
    # CFQ's counters when present (all I/O), else BFQ's, else the throttle layer's, as runc prefers them.
    for key, name in (
        ("ioServiceBytesRecursive", "io_service_bytes_recursive"),
        ("ioServicedRecursive", "io_serviced_recursive"),
    ):
        text = next(
            (
                t
                for p in ("blkio.", "blkio.bfq.", "blkio.throttle.")
                if (t := read_optional(d, p + name)) is not None
            ),
            "",
        )
        entries = []
        for line in text.splitlines():
            fields = line.split()
            if len(fields) == 3 and ":" in fields[0]:
                major, _, minor = fields[0].partition(":")
                entries.append(
                    {"major": int(major), "minor": int(minor), "op": fields[1], "value": int(fields[2])}
                )
        out[key] = entries
    return out


def _hugetlb(d: str) -> dict:
    out: dict = {}
    for name in os.listdir(d):
        if name.startswith("hugetlb.") and name.endswith(".usage_in_bytes") and ".rsvd." not in name:
            size = name[len("hugetlb.") : -len(".usage_in_bytes")]
            out[size] = {
                "usage": parse_int(read_optional(d, name)),
                "max": parse_int(read_optional(d, f"hugetlb.{size}.max_usage_in_bytes")),
                "failcnt": parse_int(read_optional(d, f"hugetlb.{size}.failcnt")),
            }
    return out
