"""OCI linux.resources → cgroup v1 control files.

Every section is validated and turned into a list of writes before the first write happens, so a bad value
late in the config does not leave a half-applied cgroup. Sections that are absent touch nothing.
"""

from __future__ import annotations

import os

from kobako.cgroups.base import mkdirs, read_file, write_file
from kobako.cgroups.devices import reduce_rules, rule_line
from kobako.cgroups.values import (
    device_entries,
    get_int,
    get_limit,
    get_str,
    get_uint,
    hugepage_limits,
    reject_unsupported,
    require_dict,
    section,
)
from kobako.errors import FailedPrecondition, InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kobako.cgroups.v1 import V1Manager

Write = tuple[str, str, str]  # (cgroup directory, file, value)


def apply(mgr: V1Manager, resources: dict) -> None:
    for directory, name, value in plan(mgr, resources):
        write_file(directory, name, value)


def plan(mgr: V1Manager, resources: dict) -> list[Write]:
    """The writes ``apply`` makes, in order; raises on any invalid value before anything is written."""
    resources = require_dict(resources)
    if resources.get("unified"):
        raise InvalidArgument("linux.resources.unified needs cgroup v2, but this host uses cgroup v1")
    reject_unsupported(resources)
    writes: list[Write] = []
    writes += _memory(mgr, section(resources, "memory"))
    writes += _cpu(mgr, section(resources, "cpu"))
    writes += _pids(mgr, section(resources, "pids"))
    writes += _blkio(mgr, section(resources, "blockIO"))
    if resources.get("devices") is not None:
        writes += _devices(mgr, resources["devices"])
    writes += _hugetlb(mgr, resources)  # last: on hybrid hosts it may create the cgroup2 directory
    return writes


def _memory(mgr: V1Manager, mem: dict) -> list[Write]:
    limit = get_limit(mem, "limit", "memory")
    swap = get_limit(mem, "swap", "memory")
    reservation = get_limit(mem, "reservation", "memory")
    swappiness = get_int(mem, "swappiness", "memory")
    oom_off = mem.get("disableOOMKiller")
    # kernel and kernelTCP are deprecated and gone from current kernels: ignored, as runc does.
    if swappiness == -1:
        swappiness = None  # some tools write -1 for "leave the default"
    if swappiness is not None and not 0 <= swappiness <= 100:
        raise InvalidArgument(f"linux.resources.memory.swappiness is {swappiness}: must be 0..100")
    if oom_off is not None and not isinstance(oom_off, bool):
        raise InvalidArgument(f"linux.resources.memory.disableOOMKiller must be a boolean, got {oom_off!r}")
    if limit and swap and limit > 0 and swap > 0 and swap < limit:
        raise InvalidArgument(f"linux.resources.memory.swap ({swap}) is below memory.limit ({limit})")
    if not (limit or swap or reservation or swappiness is not None or oom_off):
        return []
    d = mgr.dir_for("memory", "linux.resources.memory")
    out: list[Write] = []
    limit_w = [(d, "memory.limit_in_bytes", str(limit))] if limit else []
    if swap:
        if not os.path.exists(d + "/memory.memsw.limit_in_bytes"):
            raise FailedPrecondition(
                "linux.resources.memory.swap needs swap accounting (memory.memsw.limit_in_bytes is missing; "
                "boot with swapaccount=1)"
            )
        swap_w = [(d, "memory.memsw.limit_in_bytes", str(swap))]
        # memory+swap may never be below memory: raise it first when memory grows, lower memory first otherwise.
        grows = limit == -1 or swap == -1 or (limit is not None and limit > _current_limit(d))
        out += swap_w + limit_w if grows else limit_w + swap_w
    else:
        out += limit_w
    if reservation:
        out.append((d, "memory.soft_limit_in_bytes", str(reservation)))
    if swappiness is not None:
        out.append((d, "memory.swappiness", str(swappiness)))
    if oom_off:
        out.append((d, "memory.oom_control", "1"))
    return out


def _current_limit(directory: str) -> int:
    try:
        return int(read_file(directory, "memory.limit_in_bytes"))
    except ValueError:
        return 0


def _cpu(mgr: V1Manager, cpu: dict) -> list[Write]:
    shares = get_uint(cpu, "shares", "cpu")
    period = get_uint(cpu, "period", "cpu")
    quota = get_limit(cpu, "quota", "cpu")
    burst = get_int(cpu, "burst", "cpu")
    rt_period = get_uint(cpu, "realtimePeriod", "cpu")
    rt_runtime = get_limit(cpu, "realtimeRuntime", "cpu")
    idle = get_int(cpu, "idle", "cpu")
    cpus, mems = get_str(cpu, "cpus", "cpu"), get_str(cpu, "mems", "cpu")
    if burst is not None and burst < 0:
        raise InvalidArgument(f"linux.resources.cpu.burst is {burst}: must not be negative")
    if burst and quota and quota > 0 and burst > quota:
        raise InvalidArgument(f"linux.resources.cpu.burst ({burst}) is larger than cpu.quota ({quota})")
    if idle is not None and idle not in (0, 1):
        raise InvalidArgument(f"linux.resources.cpu.idle is {idle}: must be 0 or 1")
    out: list[Write] = []
    if shares or period or quota or burst is not None or rt_period or rt_runtime or idle is not None:
        d = mgr.dir_for("cpu", "linux.resources.cpu")
        # An idle group rejects share changes: leave idle first, enter it last.
        if idle == 0:
            out.append((d, "cpu.idle", "0"))
        if shares:
            out.append((d, "cpu.shares", str(shares)))
        if period:
            out.append((d, "cpu.cfs_period_us", str(period)))
        if quota:
            out.append((d, "cpu.cfs_quota_us", str(quota)))
        if burst is not None:
            out.append((d, "cpu.cfs_burst_us", str(burst)))
        # The realtime budget is checked against the period, so the period goes first.
        if rt_period:
            out.append((d, "cpu.rt_period_us", str(rt_period)))
        if rt_runtime:
            out.append((d, "cpu.rt_runtime_us", str(rt_runtime)))
        if idle == 1:
            out.append((d, "cpu.idle", "1"))
    if cpus or mems:
        d = mgr.dir_for("cpuset", "linux.resources.cpu.cpus/mems")
        if mems:
            out.append((d, "cpuset.mems", mems))
        if cpus:
            out.append((d, "cpuset.cpus", cpus))
    return out


def _pids(mgr: V1Manager, pids: dict) -> list[Write]:
    limit = get_limit(pids, "limit", "pids")
    if not limit:
        return []
    return [(mgr.dir_for("pids", "linux.resources.pids"), "pids.max", "max" if limit == -1 else str(limit))]


def _blkio(mgr: V1Manager, blkio: dict) -> list[Write]:
    if not blkio:
        return []
    weight = get_uint(blkio, "weight", "blockIO")
    leaf_weight = get_uint(blkio, "leafWeight", "blockIO")
    weights = device_entries(blkio, "weightDevice", "weight")
    leaf_weights = [
        (ma, mi, w) for ma, mi, w in device_entries(blkio, "weightDevice", "leafWeight") if w >= 0
    ]
    throttles = [
        (name, device_entries(blkio, key, "rate"))
        for key, name in (
            ("throttleReadBpsDevice", "blkio.throttle.read_bps_device"),
            ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device"),
            ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device"),
            ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device"),
        )
    ]
    for name, entries in throttles:
        if any(rate < 0 for _, _, rate in entries):
            raise InvalidArgument(f"linux.resources.blockIO: every {name} entry needs a rate")
    weights = [(ma, mi, w) for ma, mi, w in weights if w >= 0]
    if not (weight or leaf_weight or weights or leaf_weights or any(e for _, e in throttles)):
        return []
    d = mgr.dir_for("blkio", "linux.resources.blockIO")
    out: list[Write] = []
    if weight or weights:
        # CFQ's blkio.weight went away with CFQ in Linux 5.0; BFQ offers the same knob under its own name.
        prefix = next((p for p in ("blkio.", "blkio.bfq.") if os.path.exists(d + "/" + p + "weight")), None)
        if prefix is None:
            raise FailedPrecondition(
                f"linux.resources.blockIO.weight: {d} has neither blkio.weight nor blkio.bfq.weight"
            )
        if weight:
            out.append((d, prefix + "weight", str(weight)))
        out += [(d, prefix + "weight_device", f"{ma}:{mi} {w}") for ma, mi, w in weights]
    if leaf_weight or leaf_weights:
        if not os.path.exists(d + "/blkio.leaf_weight"):
            raise FailedPrecondition(
                "linux.resources.blockIO.leafWeight needs the CFQ scheduler (blkio.leaf_weight)"
            )
        if leaf_weight:
            out.append((d, "blkio.leaf_weight", str(leaf_weight)))
        out += [(d, "blkio.leaf_weight_device", f"{ma}:{mi} {w}") for ma, mi, w in leaf_weights]
    for name, entries in throttles:
        out += [(d, name, f"{ma}:{mi} {rate}") for ma, mi, rate in entries]
    return out


def _hugetlb(mgr: V1Manager, resources: dict) -> list[Write]:
    limits = hugepage_limits(resources)
    if not limits:
        return []
    d = mgr.dirs.get("hugetlb")
    if d is not None:
        out = [(d, f"hugetlb.{size}.limit_in_bytes", str(limit)) for size, limit in limits]
        # Limit reservations too where the kernel can (the spec prefers them: no SIGBUS at fault time).
        return out + [
            (d, f"hugetlb.{size}.rsvd.limit_in_bytes", str(limit))
            for size, limit in limits
            if os.path.exists(f"{d}/hugetlb.{size}.rsvd.limit_in_bytes")
        ]
    unified = mgr.dirs.get("")
    if unified is None:
        raise FailedPrecondition("linux.resources.hugepageLimits: the hugetlb controller is not mounted")
    # Hybrid host with hugetlb only on the cgroup2 side (like this project's CI VM): use the v2 files there.
    # The container gets its cgroup2 directory only now, and takes its running tasks along (an update).
    from kobako.cgroups.v2.resources import enable_writes, hugetlb_writes

    if mkdirs(unified):
        for pid in mgr.pids():
            write_file(unified, "cgroup.procs", str(pid))
    return enable_writes(mgr.unified_mount, unified, {"hugetlb"}) + hugetlb_writes(unified, limits)


def _devices(mgr: V1Manager, devices: object) -> list[Write]:
    default_allow, rules = reduce_rules(devices)
    d = mgr.dir_for("devices", "linux.resources.devices")
    lines = [rule_line(rule) for rule in rules]
    if not default_allow:
        # Re-applying the same list (an update) must not blink every device off and on for running tasks.
        if sorted(read_file(d, "devices.list").splitlines()) == sorted(lines):
            return []
        return [(d, "devices.deny", "a"), *((d, "devices.allow", line) for line in lines)]
    return [(d, "devices.allow", "a"), *((d, "devices.deny", line) for line in lines)]
