"""cgroup limits from linux.resources, observed in cgroupfs and in their effect on the container."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kobako.testing.runtime_cli import unique

pytestmark = pytest.mark.root
CG = Path("/sys/fs/cgroup")


def test_memory_limit_oom_kills(runtime, make_bundle) -> None:
    def edit(spec: dict) -> None:
        spec["linux"]["resources"]["memory"] = {"limit": 32 * 1024 * 1024, "swap": 32 * 1024 * 1024}

    # Allocate ~200 MB in a shell variable: the kernel's OOM killer must end it.
    bundle = make_bundle(["sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived"], edit)
    proc = runtime("run", "-b", str(bundle), unique(), check=False, timeout=120)
    assert proc.returncode == 137
    assert "survived" not in proc.stdout


def test_pids_limit_stops_a_fork_bomb(runtime, make_bundle) -> None:
    def edit(spec: dict) -> None:
        spec["linux"]["resources"]["pids"] = {"limit": 20}

    # A fork bomb: every process starts two more, forever. The pids controller must cap it at 20.
    bomb = "b() { b & b & wait; }; b"
    cid = unique()
    runtime("run", "-d", "-b", str(make_bundle(["sh", "-c", bomb], edit)), cid)
    pids = CG / "pids/kobako" / cid
    deadline = time.monotonic() + 10
    while "max 0" in (pids / "pids.events").read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (pids / "pids.max").read_text().strip() == "20"
    assert int((pids / "pids.current").read_text()) <= 20
    assert int((pids / "pids.events").read_text().split()[1]) > 0  # forks were refused
    runtime("delete", "--force", cid)
    assert not pids.exists()


def test_cpu_and_memory_values_in_cgroupfs(runtime, make_bundle) -> None:
    def edit(spec: dict) -> None:
        spec["linux"]["resources"]["cpu"] = {"quota": 50000, "period": 100000, "shares": 512, "cpus": "0"}
        spec["linux"]["resources"]["memory"] = {"limit": 64 * 1024 * 1024, "reservation": 32 * 1024 * 1024}
        spec["linux"]["resources"]["blockIO"] = {"weight": 300}

    cid = unique()
    runtime("run", "-d", "-b", str(make_bundle(["sleep", "300"], edit)), cid)
    assert (CG / "cpu/kobako" / cid / "cpu.cfs_quota_us").read_text().strip() == "50000"
    assert (CG / "cpu/kobako" / cid / "cpu.cfs_period_us").read_text().strip() == "100000"
    assert (CG / "cpu/kobako" / cid / "cpu.shares").read_text().strip() == "512"
    assert (CG / "cpuset/kobako" / cid / "cpuset.cpus").read_text().strip() == "0"
    assert int((CG / "memory/kobako" / cid / "memory.limit_in_bytes").read_text()) == 64 * 1024 * 1024
    assert int((CG / "memory/kobako" / cid / "memory.soft_limit_in_bytes").read_text()) == 32 * 1024 * 1024
    pid = runtime.state(cid)["pid"]
    assert str(pid) in (CG / "memory/kobako" / cid / "cgroup.procs").read_text().split()
    runtime("delete", "--force", cid)
    assert not (CG / "cpu/kobako" / cid).exists()


def test_devices_cgroup_denies_unlisted_devices(runtime, make_bundle) -> None:
    def edit(spec: dict) -> None:
        for key in ("bounding", "effective", "permitted"):
            spec["process"]["capabilities"][key].append("CAP_MKNOD")

    # mknod is allowed (as with runc), but the default rules deny opening a block device not in the spec.
    script = "mknod /tmp/sda b 8 0 && echo made; head -c1 /tmp/sda 2>&1; echo rc=$?"
    out = runtime("run", "-b", str(make_bundle(["sh", "-c", script], edit)), unique()).stdout
    assert out.startswith("made")
    assert "Operation not permitted" in out and "rc=1" in out
