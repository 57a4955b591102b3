"""The v2 driver against a fake unified cgroupfs: conversions, controller delegation, freezer, stats."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kobako.cgroups.v2 import V2Manager
from kobako.cgroups.v2.resources import cpu_weight, enable_writes, io_weight, plan
from kobako.errors import FailedPrecondition, InvalidArgument


@pytest.fixture
def mgr(v2host) -> V2Manager:
    m = V2Manager("/kobako/c1", root=str(v2host.root), proc_cgroup=str(v2host.proc_cgroup))
    m.create()
    return m


def _val(m: V2Manager, name: str) -> str:
    return Path(m.dir, name).read_text().strip()


def test_create_add_task_pids(mgr: V2Manager) -> None:
    assert mgr.exists()
    mgr.add_task(77)
    assert _val(mgr, "cgroup.procs") == "77"
    assert mgr.pids() == [77]


def test_create_enables_controllers_down_the_path(v2host) -> None:
    (v2host.root / "cgroup.controllers").write_text("cpu memory pids\n")
    m = V2Manager("/a/b/c", root=str(v2host.root))
    os.makedirs(m.dir)
    (v2host.root / "a" / "cgroup.subtree_control").write_text("memory\n")
    writes = enable_writes(str(v2host.root), m.dir, {"cpu", "memory", "pids"})
    assert writes == [
        (str(v2host.root), "cgroup.subtree_control", "+cpu +memory +pids"),
        (str(v2host.root / "a"), "cgroup.subtree_control", "+cpu +pids"),
        (str(v2host.root / "a" / "b"), "cgroup.subtree_control", "+cpu +memory +pids"),
    ]


def test_create_skips_delegation_when_the_leaf_already_has_every_controller(v2host, mgr: V2Manager) -> None:
    # The fake kernel hands every controller down, so create() must not have written any subtree_control.
    assert (v2host.root / "cgroup.subtree_control").read_text() == ""


@pytest.mark.parametrize(("shares", "weight"), [(2, 1), (1024, 39), (262144, 10000), (1, 1), (10**9, 10000)])
def test_cpu_shares_to_weight(shares: int, weight: int) -> None:
    assert cpu_weight(shares) == weight


def test_io_weight_conversion() -> None:
    assert io_weight(10, "w") == 1
    assert io_weight(1000, "w") == 10000
    assert io_weight(500, "w") == 1 + (490 * 9999) // 990
    with pytest.raises(InvalidArgument, match=r"10\.\.1000"):
        io_weight(5, "blockIO.weight")


def test_apply_converts_v1_shaped_values(mgr: V2Manager) -> None:
    mgr.apply(
        {
            "memory": {"limit": 64 << 20, "swap": 96 << 20, "reservation": 16 << 20},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "burst": 10, "cpus": "0", "mems": "0"},
            "pids": {"limit": 10},
            "blockIO": {"weight": 1000, "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 100}]},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 2 << 20}],
        }
    )
    assert _val(mgr, "memory.max") == str(64 << 20)
    assert _val(mgr, "memory.swap.max") == str(32 << 20)
    assert _val(mgr, "memory.low") == str(16 << 20)
    assert _val(mgr, "cpu.weight") == "39"
    assert _val(mgr, "cpu.max") == "50000 100000"
    assert _val(mgr, "cpu.max.burst") == "10"
    assert _val(mgr, "cpuset.cpus") == "0"
    assert _val(mgr, "pids.max") == "10"
    assert _val(mgr, "io.weight") == "default 10000"
    assert _val(mgr, "io.max") == "8:0 wbps=100"
    assert _val(mgr, "hugetlb.2MB.max") == str(2 << 20)


def test_unlimited_and_partial_cpu_max(mgr: V2Manager) -> None:
    mgr.apply({"memory": {"limit": -1, "swap": -1}, "pids": {"limit": -1}, "cpu": {"quota": -1}})
    assert (_val(mgr, "memory.max"), _val(mgr, "memory.swap.max"), _val(mgr, "pids.max")) == ("max",) * 3
    assert _val(mgr, "cpu.max") == "max"
    Path(mgr.dir, "cpu.max").write_text("20000 100000\n")
    mgr.apply({"cpu": {"period": 50000}})
    assert _val(mgr, "cpu.max") == "20000 50000", "a period-only update keeps the quota"


def test_io_prefers_bfq_weight_on_the_blkio_scale(mgr: V2Manager) -> None:
    Path(mgr.dir, "io.bfq.weight").write_text("default 100\n")
    writes = plan(
        mgr.dir, {"blockIO": {"weight": 300, "weightDevice": [{"major": 8, "minor": 0, "weight": 50}]}}
    )
    assert [(n, v) for _, n, v in writes] == [("io.bfq.weight", "300"), ("io.bfq.weight", "8:0 50")]


def test_throttle_rate_zero_means_max(mgr: V2Manager) -> None:
    writes = plan(mgr.dir, {"blockIO": {"throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 0}]}})
    assert writes == [(mgr.dir, "io.max", "8:0 riops=max")]


def test_unified_is_written_as_is_one_line_per_write(mgr: V2Manager) -> None:
    writes = plan(mgr.dir, {"unified": {"io.max": "8:0 rbps=1\n8:16 wiops=2", "memory.high": "1000000"}})
    assert writes == [
        (mgr.dir, "io.max", "8:0 rbps=1"),
        (mgr.dir, "io.max", "8:16 wiops=2"),
        (mgr.dir, "memory.high", "1000000"),
    ]
    with pytest.raises(InvalidArgument, match=r"writing '1' to .*/memory\.oom\.group: no such cgroup file"):
        mgr.apply({"unified": {"memory.oom.group": "1"}})


def test_check_before_update(mgr: V2Manager) -> None:
    with pytest.raises(FailedPrecondition, match="below the current usage of 4096"):
        mgr.apply({"memory": {"limit": 1024, "checkBeforeUpdate": True}})
    mgr.apply({"memory": {"limit": 1024}})  # without the check the kernel decides (v2 reclaims or OOMs)


@pytest.mark.parametrize(
    ("resources", "match"),
    [
        ({"memory": {"swap": 100}}, "without a memory limit"),
        ({"memory": {"limit": 100, "swap": 10}}, "below memory.limit"),
        ({"memory": {"swappiness": 10}}, "swappiness"),
        ({"memory": {"disableOOMKiller": True}}, "disableOOMKiller"),
        ({"cpu": {"realtimeRuntime": 1000}}, "realtime"),
        ({"blockIO": {"leafWeight": 100}}, "leafWeight"),
        ({"blockIO": {"weight": 2000}}, "10..1000"),
        ({"unified": {"../x": "1"}}, "not a cgroup v2 file name"),
        ({"unified": {"cgroup.procs": "1"}}, "not a cgroup v2 file name"),
        ({"unified": {"memory.max": 5}}, "must be a string"),
        ({"devices": [{"allow": "yes"}]}, "boolean 'allow'"),
        ({"rdma": {"mlx5_1": {"hcaHandles": 1}}}, "rdma"),
    ],
)
def test_invalid_values(mgr: V2Manager, resources: dict, match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        mgr.apply({"pids": {"limit": 5}, **resources})
    assert _val(mgr, "pids.max") == "max", "nothing was written"


def test_freeze_waits_for_frozen_event(mgr: V2Manager, monkeypatch: pytest.MonkeyPatch) -> None:
    events = Path(mgr.dir, "cgroup.events")
    reads = {"n": 0}

    def fake_sleep(_s: float) -> None:  # the "kernel" finishes freezing after a few polls
        reads["n"] += 1
        if reads["n"] == 3:
            events.write_text("populated 1\nfrozen 1\n")

    monkeypatch.setattr("time.sleep", fake_sleep)
    mgr.freeze()
    assert _val(mgr, "cgroup.freeze") == "1"
    assert mgr.is_frozen()
    mgr.thaw()
    assert _val(mgr, "cgroup.freeze") == "0"


def test_freeze_that_never_settles_is_undone(mgr: V2Manager, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(range(0, 10**6, 1))
    monkeypatch.setattr("time.monotonic", lambda: float(next(clock)))
    monkeypatch.setattr("time.sleep", lambda _s: None)
    with pytest.raises(Exception, match="did not freeze"):
        mgr.freeze()
    assert _val(mgr, "cgroup.freeze") == "0"


def test_kill_all_uses_cgroup_kill_for_sigkill(mgr: V2Manager) -> None:
    mgr.kill_all(9)
    assert _val(mgr, "cgroup.kill") == "1"


def test_stats_shape(mgr: V2Manager) -> None:
    s = mgr.stats()
    assert s["cpu"]["usage"] == {"total": 10_000, "kernel": 4_000, "user": 6_000}
    assert s["cpu"]["throttling"] == {"periods": 5, "throttled_periods": 1, "throttled_time": 2_000}
    assert s["memory"]["usage"] == {"usage": 4096, "max": 8192, "limit": 2**64 - 1, "failcnt": 3}
    assert s["memory"]["cache"] == 1024
    assert s["pids"] == {"current": 1, "limit": 0}
    assert {"major": 8, "minor": 0, "op": "Write", "value": 20} in s["blkio"]["ioServiceBytesRecursive"]
    assert {"major": 8, "minor": 0, "op": "Read", "value": 1} in s["blkio"]["ioServicedRecursive"]
    assert s["hugetlb"] == {"2MB": {"usage": 0, "max": 2**64 - 1, "failcnt": 0}}


def test_remove(mgr: V2Manager) -> None:
    mgr.remove()
    assert not mgr.exists()
    mgr.remove()
