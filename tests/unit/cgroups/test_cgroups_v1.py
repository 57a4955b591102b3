"""The v1 driver against a fake hybrid cgroupfs (separate cpu/cpuacct mounts, hugetlb only on cgroup2)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kobako.cgroups.v1 import V1Manager
from kobako.cgroups.v1.resources import plan
from kobako.errors import FailedPrecondition, InvalidArgument, NotFound


def _mgr(host, path: str = "/kobako/c1") -> V1Manager:
    return V1Manager(
        path, root=str(host.root), mountinfo=str(host.mountinfo), proc_cgroup=str(host.proc_cgroup)
    )


@pytest.fixture
def mgr(v1host) -> V1Manager:
    m = _mgr(v1host)
    m.create()
    return m


def _val(m: V1Manager, controller: str, name: str) -> str:
    return Path(m.dirs[controller], name).read_text().strip()


def test_create_makes_a_directory_in_every_managed_hierarchy(v1host, mgr: V1Manager) -> None:
    for key in ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "name=systemd"):
        assert os.path.isdir(mgr.dirs[key]), key
    assert not os.path.exists(mgr.dirs[""]), "the hybrid cgroup2 side waits until hugetlb needs it"
    assert not (v1host.root / "net_cls" / "kobako").exists()
    assert mgr.exists()
    mgr.create()  # idempotent


def test_create_seeds_new_cpuset_levels_from_their_parent(mgr: V1Manager) -> None:
    assert _val(mgr, "cpuset", "cpuset.cpus") == "0-1"
    assert _val(mgr, "cpuset", "cpuset.mems") == "0"
    assert Path(mgr.dirs["cpuset"]).parent.joinpath("cpuset.cpus").read_text().strip() == "0-1"


def test_add_task_joins_every_hierarchy_including_name_systemd(mgr: V1Manager) -> None:
    mgr.add_task(4242)
    for key, directory in mgr.dirs.items():
        if key:
            assert Path(directory, "cgroup.procs").read_text() == "4242", key
    assert mgr.pids() == [4242]


def test_join_moves_the_calling_thread_through_tasks(mgr: V1Manager) -> None:
    mgr.join()
    for key, directory in mgr.dirs.items():
        if key:
            assert Path(directory, "tasks").read_text() == "0", key


def test_add_task_to_missing_cgroup_is_not_found(v1host) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        _mgr(v1host, "/nope").add_task(1)


def test_apply_writes_memory_cpu_pids(mgr: V1Manager) -> None:
    mgr.apply(
        {
            "memory": {
                "limit": 64 << 20,
                "reservation": 32 << 20,
                "swap": 128 << 20,
                "swappiness": 10,
                "kernel": 1,
            },
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "burst": 1000, "cpus": "1", "mems": "0"},
            "pids": {"limit": 32},
        }
    )
    assert _val(mgr, "memory", "memory.limit_in_bytes") == str(64 << 20)
    assert _val(mgr, "memory", "memory.memsw.limit_in_bytes") == str(128 << 20)
    assert _val(mgr, "memory", "memory.soft_limit_in_bytes") == str(32 << 20)
    assert _val(mgr, "memory", "memory.swappiness") == "10"
    assert _val(mgr, "cpu", "cpu.shares") == "512"
    assert _val(mgr, "cpu", "cpu.cfs_quota_us") == "50000"
    assert _val(mgr, "cpu", "cpu.cfs_period_us") == "100000"
    assert _val(mgr, "cpu", "cpu.cfs_burst_us") == "1000"
    assert _val(mgr, "cpuset", "cpuset.cpus") == "1"
    assert _val(mgr, "pids", "pids.max") == "32"
    assert _val(mgr, "cpuacct", "cpuacct.usage") == "5000", "absent sections touch nothing"


def test_unlimited_values(mgr: V1Manager) -> None:
    mgr.apply({"memory": {"limit": -1, "swap": -1}, "pids": {"limit": -1}, "cpu": {"quota": -1}})
    assert _val(mgr, "memory", "memory.limit_in_bytes") == "-1"
    assert _val(mgr, "pids", "pids.max") == "max"
    assert _val(mgr, "cpu", "cpu.cfs_quota_us") == "-1"


def test_memory_and_swap_are_ordered_so_memsw_never_drops_below_memory(mgr: V1Manager) -> None:
    names = lambda writes: [name for _, name, _ in writes]  # noqa: E731
    grow = plan(mgr, {"memory": {"limit": 1 << 30, "swap": 2 << 30}})  # current limit is "unlimited"-ish
    assert names(grow) == ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
    Path(mgr.dirs["memory"], "memory.limit_in_bytes").write_text(str(1 << 20))
    grow = plan(mgr, {"memory": {"limit": 1 << 30, "swap": 2 << 30}})
    assert names(grow) == ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]
    unlimited = plan(mgr, {"memory": {"limit": 1 << 10, "swap": -1}})
    assert names(unlimited) == ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]


def test_cpu_idle_ordering_around_shares(mgr: V1Manager) -> None:
    leave = [n for _, n, _ in plan(mgr, {"cpu": {"idle": 0, "shares": 100}})]
    enter = [n for _, n, _ in plan(mgr, {"cpu": {"idle": 1, "shares": 100}})]
    assert leave == ["cpu.idle", "cpu.shares"]
    assert enter == ["cpu.shares", "cpu.idle"]


def test_realtime_period_before_runtime(mgr: V1Manager) -> None:
    writes = plan(mgr, {"cpu": {"realtimeRuntime": 950000, "realtimePeriod": 1000000}})
    assert [(n, v) for _, n, v in writes] == [
        ("cpu.rt_period_us", "1000000"),
        ("cpu.rt_runtime_us", "950000"),
    ]


def test_disable_oom_killer(mgr: V1Manager) -> None:
    mgr.apply({"memory": {"disableOOMKiller": True}})
    assert _val(mgr, "memory", "memory.oom_control") == "1"


def test_blkio_uses_bfq_files_and_throttles(mgr: V1Manager) -> None:
    writes = plan(
        mgr,
        {
            "blockIO": {
                "weight": 300,
                "weightDevice": [{"major": 8, "minor": 0, "weight": 500}],
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 100}],
            }
        },
    )
    assert [(n, v) for _, n, v in writes] == [
        ("blkio.bfq.weight", "300"),
        ("blkio.bfq.weight_device", "8:0 500"),
        ("blkio.throttle.read_bps_device", "8:0 1048576"),
        ("blkio.throttle.write_iops_device", "8:16 100"),
    ]


def test_blkio_leaf_weight_needs_cfq(mgr: V1Manager) -> None:
    with pytest.raises(FailedPrecondition, match="leaf_weight"):
        mgr.apply({"blockIO": {"leafWeight": 10}})


def test_hugetlb_falls_back_to_the_unified_hierarchy_on_hybrid_hosts(v1host, mgr: V1Manager) -> None:
    writes = plan(mgr, {"hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 20}]})
    unified = v1host.root / "unified"
    assert (str(unified), "cgroup.subtree_control", "+hugetlb") in writes
    assert (str(unified / "kobako"), "cgroup.subtree_control", "+hugetlb") in writes
    assert writes[-1] == (mgr.dirs[""], "hugetlb.2MB.max", str(4 << 20))
    mgr.apply({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 20}]})
    assert Path(mgr.dirs[""], "hugetlb.2MB.max").read_text() == str(4 << 20)


def test_devices_are_reset_to_deny_then_allowed(mgr: V1Manager) -> None:
    devices = [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": True, "type": "c", "major": 136, "access": "rw"},
    ]
    writes = plan(mgr, {"devices": devices})
    assert [(n, v) for _, n, v in writes] == [
        ("devices.deny", "a"),
        ("devices.allow", "c 1:3 rwm"),
        ("devices.allow", "c 136:* rw"),
    ]
    # The kernel already holds exactly this list: an update rewrites nothing (no moment without devices).
    Path(mgr.dirs["devices"], "devices.list").write_text("c 136:* rw\nc 1:3 rwm\n")
    assert plan(mgr, {"devices": devices}) == []


def test_devices_allow_all_with_exceptions(mgr: V1Manager) -> None:
    writes = plan(mgr, {"devices": [{"allow": True}, {"allow": False, "type": "b", "major": 8, "minor": 0}]})
    assert [(n, v) for _, n, v in writes] == [("devices.allow", "a"), ("devices.deny", "b 8:0 rwm")]


@pytest.mark.parametrize(
    ("resources", "error", "match"),
    [
        ({"memory": {"limit": -2}}, InvalidArgument, "memory.limit is -2"),
        ({"memory": {"limit": "1G"}}, InvalidArgument, "must be an integer"),
        ({"memory": {"limit": 1000, "swap": 10}}, InvalidArgument, "below memory.limit"),
        ({"memory": {"swappiness": 101}}, InvalidArgument, "swappiness"),
        ({"cpu": {"quota": -5}}, InvalidArgument, "cpu.quota"),
        ({"cpu": {"idle": 2}}, InvalidArgument, "idle"),
        ({"cpu": {"quota": 1000, "burst": 5000}}, InvalidArgument, "burst"),
        ({"pids": {"limit": -3}}, InvalidArgument, "pids.limit"),
        ({"unified": {"memory.max": "1"}}, InvalidArgument, "needs cgroup v2"),
        ({"network": {"classID": 1}}, InvalidArgument, "net_cls"),
        ({"devices": [{"allow": True, "type": "x"}]}, InvalidArgument, "devices\\[0\\].type"),
        ({"devices": [{"allow": True, "access": "rwx"}]}, InvalidArgument, "access"),
        ({"hugepageLimits": [{"pageSize": "2XB", "limit": 1}]}, InvalidArgument, "pageSize"),
        (
            {"blockIO": {"throttleReadBpsDevice": [{"major": 8, "rate": 1}]}},
            InvalidArgument,
            "major and minor",
        ),
        ("nope", InvalidArgument, "must be an object"),
    ],
)
def test_invalid_values_raise_before_any_write(mgr: V1Manager, resources, error, match) -> None:
    before = _val(mgr, "memory", "memory.limit_in_bytes")
    with pytest.raises(error, match=match):
        mgr.apply({"memory": {"limit": 4096}, **resources} if isinstance(resources, dict) else resources)
    assert _val(mgr, "memory", "memory.limit_in_bytes") == before


def test_kernel_refusal_names_file_and_value(mgr: V1Manager) -> None:
    os.unlink(Path(mgr.dirs["cpu"], "cpu.idle"))  # an older kernel without SCHED_IDLE groups
    with pytest.raises(InvalidArgument, match=r"writing '1' to .*/cpu\.idle: no such cgroup file"):
        mgr.apply({"cpu": {"idle": 1}})


def test_missing_controller_is_a_failed_precondition(tmp_path: Path, fake_kernel) -> None:
    info = tmp_path / "mountinfo"
    (tmp_path / "cg" / "pids").mkdir(parents=True)
    info.write_text(f"1 0 0:1 / {tmp_path}/cg/pids rw - cgroup cgroup rw,pids\n")
    m = V1Manager("/x", root=str(tmp_path / "cg"), mountinfo=str(info))
    with pytest.raises(FailedPrecondition, match="memory cgroup controller is not mounted"):
        m.apply({"memory": {"limit": 1 << 20}})
    with pytest.raises(FailedPrecondition, match="freezer"):
        m.freeze()


def test_freeze_thaw(mgr: V1Manager) -> None:
    assert not mgr.is_frozen()
    mgr.freeze()
    assert mgr.is_frozen()
    mgr.thaw()
    assert not mgr.is_frozen()


def test_stats_shape(mgr: V1Manager) -> None:
    Path(mgr.dirs["pids"], "pids.current").write_text("3\n")
    s = mgr.stats()
    assert s["cpu"]["usage"]["total"] == 5000
    assert s["cpu"]["usage"]["percpu"] == [3000, 2000]
    assert s["cpu"]["usage"]["percpu_user"] == [2000, 1500]
    assert s["cpu"]["usage"]["percpu_kernel"] == [1000, 500]
    assert s["cpu"]["usage"]["user"] == 3 * 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    assert s["cpu"]["throttling"] == {"periods": 7, "throttled_periods": 2, "throttled_time": 3000}
    assert s["memory"]["usage"] == {"usage": 4096, "max": 8192, "limit": 9223372036854771712, "failcnt": 0}
    assert s["memory"]["cache"] == 1024
    assert s["memory"]["raw"]["rss"] == 3072
    assert s["pids"] == {"current": 3, "limit": 0}
    assert s["blkio"]["ioServiceBytesRecursive"] == [
        {"major": 8, "minor": 0, "op": "Read", "value": 100},
        {"major": 8, "minor": 0, "op": "Write", "value": 200},
    ]
    assert "hugetlb" not in s  # hybrid: hugetlb lives on the cgroup2 side, not made for this container


def test_remove_everywhere_and_missing_is_fine(mgr: V1Manager) -> None:
    mgr.remove()
    assert not any(os.path.exists(d) for d in mgr.dirs.values())
    assert not mgr.exists()
    mgr.remove()


def test_remove_takes_nested_cgroups_and_reports_busy(
    mgr: V1Manager, monkeypatch: pytest.MonkeyPatch
) -> None:
    os.mkdir(os.path.join(mgr.dirs["memory"], "nested"))
    Path(mgr.dirs["pids"], "cgroup.procs").write_text("1\n")
    monkeypatch.setattr("time.sleep", lambda _s: None)
    with pytest.raises(Exception, match=r"removing cgroup .*/pids/kobako/c1") as info:
        mgr.remove()
    assert not os.path.exists(mgr.dirs["memory"]), "the other hierarchies were still cleaned up"
    assert info.value.__cause__ is not None


def test_hugetlb_on_hybrid_brings_running_tasks_into_the_new_cgroup2_directory(mgr: V1Manager) -> None:
    mgr.add_task(99)
    assert not os.path.exists(mgr.dirs[""])
    mgr.apply({"hugepageLimits": [{"pageSize": "2MB", "limit": 2 << 20}]})
    assert Path(mgr.dirs[""], "cgroup.procs").read_text() == "99"
    mgr.add_task(100)  # from now on new tasks join it too
    assert Path(mgr.dirs[""], "cgroup.procs").read_text() == "100"
    mgr.join()
    assert Path(mgr.dirs[""], "cgroup.procs").read_text() == "0"


def test_cpuset_parent_left_unseeded_by_a_concurrent_create_is_seeded(v1host) -> None:
    (v1host.root / "cpuset" / "kobako").mkdir()  # the fake kernel leaves cpus/mems empty, like a racing mkdir
    m = _mgr(v1host)
    m.create()
    assert _val(m, "cpuset", "cpuset.cpus") == "0-1"
    assert (v1host.root / "cpuset" / "kobako" / "cpuset.mems").read_text() == "0"
