"""OCI linux.resources → cgroup v2 control files, converting the v1-shaped OCI values where the spec allows.

As in v1, everything is validated and planned before the first write. Devices go last: they need an eBPF
program (see bpf.py), which is the only part that can fail for reasons the plan cannot see.
"""

from __future__ import annotations

import os

from kobako.cgroups.base import read_file, write_file
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
    from kobako.cgroups.v2 import V2Manager

Write = tuple[str, str, str]  # (cgroup directory, file, value)


def apply(mgr: V2Manager, resources: dict) -> None:
    resources = require_dict(resources)
    rules = None
    if resources.get("devices") is not None:
        from kobako.cgroups.devices import reduce_rules

        rules = reduce_rules(resources["devices"])  # validated before anything is written
    for directory, name, value in plan(mgr.dir, resources):
        write_file(directory, name, value)
    if rules is not None:
        from kobako.cgroups.v2.bpf import set_device_rules

        set_device_rules(mgr.dir, *rules)


def plan(d: str, resources: dict) -> list[Write]:
    """The file writes ``apply`` makes in cgroup ``d``, in order (devices aside); raises before any write."""
    resources = require_dict(resources)
    reject_unsupported(resources)
    writes: list[Write] = []
    writes += _memory(d, section(resources, "memory"))
    writes += _cpu(d, section(resources, "cpu"))
    writes += _pids(d, section(resources, "pids"))
    writes += _io(d, section(resources, "blockIO"))
    writes += hugetlb_writes(d, hugepage_limits(resources))
    writes += _unified(d, resources.get("unified"))
    return writes


def cpu_weight(shares: int) -> int:
    """cpu.shares (2..262144) → cpu.weight (1..10000), the linear map runc and crun use."""
    shares = min(max(shares, 2), 262144)
    return 1 + ((shares - 2) * 9999) // 262142


def io_weight(weight: int, where: str) -> int:
    """blkio weight (10..1000) → io.weight (1..10000), linear like the shares conversion."""
    if not 10 <= weight <= 1000:
        raise InvalidArgument(f"linux.resources.{where} is {weight}: must be 10..1000")
    return 1 + ((weight - 10) * 9999) // 990


def _memory(d: str, mem: dict) -> list[Write]:
    limit = get_limit(mem, "limit", "memory")
    swap = get_limit(mem, "swap", "memory")
    reservation = get_limit(mem, "reservation", "memory")
    swappiness = get_int(mem, "swappiness", "memory")
    if swappiness is not None and swappiness != -1:
        raise InvalidArgument("linux.resources.memory.swappiness has no cgroup v2 equivalent")
    if mem.get("disableOOMKiller"):
        raise InvalidArgument("linux.resources.memory.disableOOMKiller has no cgroup v2 equivalent")
    out: list[Write] = []
    if limit:
        if limit > 0 and mem.get("checkBeforeUpdate"):
            current = int(read_file(d, "memory.current"))
            if limit < current:
                raise FailedPrecondition(
                    f"writing {limit} to {d}/memory.max: below the current usage of {current} bytes"
                )
        out.append((d, "memory.max", "max" if limit == -1 else str(limit)))
    if swap:
        # OCI swap is memory+swap (the v1 memsw knob); memory.swap.max counts swap alone.
        if swap == -1:
            value = "max"
        elif not limit or limit == -1:
            raise InvalidArgument(
                f"linux.resources.memory.swap ({swap}) cannot be converted to cgroup v2 without a memory limit"
            )
        elif swap < limit:
            raise InvalidArgument(f"linux.resources.memory.swap ({swap}) is below memory.limit ({limit})")
        else:
            value = str(swap - limit)
        out.append((d, "memory.swap.max", value))
    if reservation:
        out.append((d, "memory.low", "max" if reservation == -1 else str(reservation)))
    return out


def _cpu(d: str, cpu: dict) -> list[Write]:
    shares = get_uint(cpu, "shares", "cpu")
    period = get_uint(cpu, "period", "cpu")
    quota = get_limit(cpu, "quota", "cpu")
    burst = get_int(cpu, "burst", "cpu")
    idle = get_int(cpu, "idle", "cpu")
    cpus, mems = get_str(cpu, "cpus", "cpu"), get_str(cpu, "mems", "cpu")
    if get_int(cpu, "realtimeRuntime", "cpu") or get_int(cpu, "realtimePeriod", "cpu"):
        raise InvalidArgument(
            "linux.resources.cpu.realtimeRuntime/realtimePeriod are not supported on cgroup v2"
        )
    if burst is not None and burst < 0:
        raise InvalidArgument(f"linux.resources.cpu.burst is {burst}: must not be negative")
    if burst and quota and quota > 0 and burst > quota:
        raise InvalidArgument(f"linux.resources.cpu.burst ({burst}) is larger than cpu.quota ({quota})")
    if idle is not None and idle not in (0, 1):
        raise InvalidArgument(f"linux.resources.cpu.idle is {idle}: must be 0 or 1")
    out: list[Write] = []
    if idle == 0:
        out.append((d, "cpu.idle", "0"))  # an idle group rejects weight changes: leave idle first
    if shares:
        out.append((d, "cpu.weight", str(cpu_weight(shares))))
    if quota or period:
        # Only the period changes: keep the current quota (the first word of "max 100000").
        value = ("max" if quota == -1 else str(quota)) if quota else read_file(d, "cpu.max").split()[0]
        out.append((d, "cpu.max", f"{value} {period}" if period else value))
    if burst is not None:
        out.append((d, "cpu.max.burst", str(burst)))
    if idle == 1:
        out.append((d, "cpu.idle", "1"))
    if mems:
        out.append((d, "cpuset.mems", mems))
    if cpus:
        out.append((d, "cpuset.cpus", cpus))
    return out


def _pids(d: str, pids: dict) -> list[Write]:
    limit = get_limit(pids, "limit", "pids")
    return [(d, "pids.max", "max" if limit == -1 else str(limit))] if limit else []


def _io(d: str, blkio: dict) -> list[Write]:
    if not blkio:
        return []
    weight = get_uint(blkio, "weight", "blockIO")
    if get_uint(blkio, "leafWeight", "blockIO") or any(
        w >= 0 for _, _, w in device_entries(blkio, "weightDevice", "leafWeight")
    ):
        raise InvalidArgument("linux.resources.blockIO leafWeight has no cgroup v2 equivalent")
    weights = [(ma, mi, w) for ma, mi, w in device_entries(blkio, "weightDevice", "weight") if w >= 0]
    out: list[Write] = []
    if weight or weights:
        # BFQ takes the OCI (blkio) scale as is; the generic io.weight needs converting.
        if os.path.exists(d + "/io.bfq.weight"):
            if weight:
                out.append((d, "io.bfq.weight", str(weight)))
            out += [(d, "io.bfq.weight", f"{ma}:{mi} {w}") for ma, mi, w in weights]
        else:
            if weight:
                out.append((d, "io.weight", f"default {io_weight(weight, 'blockIO.weight')}"))
            out += [
                (d, "io.weight", f"{ma}:{mi} {io_weight(w, 'blockIO.weightDevice.weight')}")
                for ma, mi, w in weights
            ]
    for key, io_key in (
        ("throttleReadBpsDevice", "rbps"),
        ("throttleWriteBpsDevice", "wbps"),
        ("throttleReadIOPSDevice", "riops"),
        ("throttleWriteIOPSDevice", "wiops"),
    ):
        for ma, mi, rate in device_entries(blkio, key, "rate"):
            if rate < 0:
                raise InvalidArgument(f"linux.resources.blockIO.{key}: every entry needs a rate")
            out.append((d, "io.max", f"{ma}:{mi} {io_key}={rate or 'max'}"))  # v1 used 0 for "no limit"
    return out


def hugetlb_writes(d: str, limits: list[tuple[str, int]]) -> list[Write]:
    out = [(d, f"hugetlb.{size}.max", str(limit)) for size, limit in limits]
    # Limit reservations too where the kernel can (the spec prefers them: no SIGBUS at fault time).
    return out + [
        (d, f"hugetlb.{size}.rsvd.max", str(limit))
        for size, limit in limits
        if os.path.exists(f"{d}/hugetlb.{size}.rsvd.max")
    ]


def _unified(d: str, unified: object) -> list[Write]:
    if not unified:
        return []
    if not isinstance(unified, dict):
        raise InvalidArgument("linux.resources.unified must be an object of file name → value")
    out: list[Write] = []
    for key, value in unified.items():
        controller, dot, _ = key.partition(".")
        if not controller or not dot or "/" in key or key in ("cgroup.procs", "cgroup.threads"):
            raise InvalidArgument(f"linux.resources.unified key {key!r} is not a cgroup v2 file name")
        if not isinstance(value, str):
            raise InvalidArgument(f"linux.resources.unified[{key!r}] must be a string, got {value!r}")
        # Control files take one line per write (io.max, io.weight take one device each).
        out += [(d, key, line) for line in value.splitlines() or [""] if line or not value]
    return out


def enable_writes(root: str, leaf: str, wanted: set[str]) -> list[Write]:
    """Writes to cgroup.subtree_control from ``root`` down to ``leaf``'s parent so ``leaf`` gets ``wanted``."""
    root = root.rstrip("/")
    parts = leaf[len(root) :].strip("/").split("/")[:-1]
    out: list[Write] = []
    directory = root
    for part in ["", *parts]:
        directory = directory + "/" + part if part else directory
        missing = wanted - set(read_file(directory, "cgroup.subtree_control").split())
        if missing:
            out.append((directory, "cgroup.subtree_control", " ".join("+" + c for c in sorted(missing))))
    return out
