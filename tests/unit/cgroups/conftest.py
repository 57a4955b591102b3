"""A fake cgroupfs in tmp_path: plain directories whose mkdir fills in control files the way the kernel does,
and whose rmdir drops them again. The drivers take the root, mountinfo and /proc/self/cgroup as parameters."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kobako.cgroups import hierarchy

# Control files (with the kernel's initial values) a new cgroup gets, per v1 controller.
V1_FILES: dict[str, dict[str, str]] = {
    "cpu": {
        "cpu.shares": "1024",
        "cpu.cfs_period_us": "100000",
        "cpu.cfs_quota_us": "-1",
        "cpu.cfs_burst_us": "0",
        "cpu.rt_period_us": "1000000",
        "cpu.rt_runtime_us": "0",
        "cpu.idle": "0",
        "cpu.stat": "nr_periods 7\nnr_throttled 2\nthrottled_time 3000\n",
    },
    "cpuacct": {
        "cpuacct.usage": "5000",
        "cpuacct.usage_percpu": "3000 2000 \n",
        "cpuacct.usage_all": "cpu user system\n0 2000 1000\n1 1500 500\n",
        "cpuacct.stat": "user 3\nsystem 1\n",
    },
    "cpuset": {"cpuset.cpus": "", "cpuset.mems": ""},
    "memory": {
        "memory.limit_in_bytes": "9223372036854771712",
        "memory.memsw.limit_in_bytes": "9223372036854771712",
        "memory.soft_limit_in_bytes": "9223372036854771712",
        "memory.swappiness": "60",
        "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\n",
        "memory.usage_in_bytes": "4096",
        "memory.max_usage_in_bytes": "8192",
        "memory.failcnt": "0",
        "memory.memsw.usage_in_bytes": "4096",
        "memory.memsw.max_usage_in_bytes": "8192",
        "memory.memsw.failcnt": "0",
        "memory.stat": "cache 1024\nrss 3072\n",
    },
    "devices": {"devices.allow": "", "devices.deny": "", "devices.list": "a *:* rwm\n"},
    "freezer": {"freezer.state": "THAWED\n"},
    "blkio": {
        "blkio.bfq.weight": "100",
        "blkio.bfq.weight_device": "",
        "blkio.throttle.read_bps_device": "",
        "blkio.throttle.write_bps_device": "",
        "blkio.throttle.read_iops_device": "",
        "blkio.throttle.write_iops_device": "",
        "blkio.throttle.io_service_bytes_recursive": "8:0 Read 100\n8:0 Write 200\nTotal 300\n",
        "blkio.throttle.io_serviced_recursive": "8:0 Read 1\n8:0 Write 2\nTotal 3\n",
    },
    "pids": {"pids.max": "max", "pids.current": "0"},
    "hugetlb": {
        "hugetlb.2MB.limit_in_bytes": "0",
        "hugetlb.2MB.usage_in_bytes": "0",
        "hugetlb.2MB.max_usage_in_bytes": "0",
        "hugetlb.2MB.failcnt": "0",
    },
}
V2_FILES: dict[str, dict[str, str]] = {
    "cpu": {
        "cpu.weight": "100",
        "cpu.max": "max 100000",
        "cpu.max.burst": "0",
        "cpu.idle": "0",
        "cpu.stat": "usage_usec 10\nuser_usec 6\nsystem_usec 4\nnr_periods 5\nnr_throttled 1\nthrottled_usec 2\n",
    },
    "memory": {
        "memory.max": "max",
        "memory.swap.max": "max",
        "memory.low": "0",
        "memory.current": "4096",
        "memory.peak": "8192",
        "memory.swap.current": "0",
        "memory.events": "low 0\nhigh 0\nmax 3\noom 0\noom_kill 0\n",
        "memory.stat": "anon 3072\nfile 1024\n",
    },
    "pids": {"pids.max": "max", "pids.current": "1"},
    "io": {
        "io.weight": "default 100",
        "io.max": "",
        "io.stat": "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n",
    },
    "cpuset": {"cpuset.cpus": "", "cpuset.mems": ""},
    "hugetlb": {"hugetlb.2MB.max": "max", "hugetlb.2MB.current": "0", "hugetlb.2MB.events": "max 0\n"},
}
CORE_V2 = {
    "cgroup.subtree_control": "",
    "cgroup.events": "populated 0\nfrozen 0\n",
    "cgroup.freeze": "0",
    "cgroup.kill": "",
}


@dataclass
class FakeHost:
    root: Path
    mountinfo: Path
    proc_cgroup: Path
    # mount point → v1 controllers ("" = cgroup2)
    mounts: dict[Path, list[str]] = field(default_factory=dict)

    def read(self, path: str | Path) -> str:
        return Path(path).read_text()

    def populate(self, directory: Path) -> None:
        """What the kernel does on mkdir: fill in the control files of the hierarchy's controllers."""
        mount = next((m for m in self.mounts if m in directory.parents), None)
        if mount is None:
            return
        controllers = self.mounts[mount]
        files = {"cgroup.procs": "", "tasks": ""}
        if controllers == [""]:
            # Every controller the host has, as if each parent delegated all of them (enable_writes is tested
            # on its own): plain files cannot grow new control files when cgroup.subtree_control is written.
            enabled = (mount / "cgroup.controllers").read_text().split()
            files = {"cgroup.procs": "", "cgroup.controllers": " ".join(enabled), **CORE_V2}
            for c in enabled:
                files.update(V2_FILES.get(c, {}))
        else:
            for c in controllers:
                files.update(V1_FILES.get(c, {}))
        for name, value in files.items():
            (directory / name).write_text(value)


@pytest.fixture
def fake_kernel(monkeypatch: pytest.MonkeyPatch) -> list[FakeHost]:
    """Patch mkdir/rmdir so directories under a fake host behave like cgroups."""
    hosts: list[FakeHost] = []
    real_mkdir, real_rmdir = os.mkdir, os.rmdir

    def owner(path: Path) -> FakeHost | None:
        return next((h for h in hosts if h.root in path.parents), None)

    def mkdir(path: str | os.PathLike, mode: int = 0o777, *, dir_fd: int | None = None) -> None:
        real_mkdir(path, mode)
        host = owner(Path(path))
        if host is not None:
            host.populate(Path(path))

    def rmdir(path: str | os.PathLike, *, dir_fd: int | None = None) -> None:
        p = Path(path)
        if owner(p) is not None and p.is_dir():
            if any(c.is_dir() for c in p.iterdir()):
                raise OSError(16, "Device or resource busy", str(p))
            if (p / "cgroup.procs").exists() and (p / "cgroup.procs").read_text().strip():
                raise OSError(16, "Device or resource busy", str(p))
            for child in p.iterdir():
                child.unlink()
        real_rmdir(path)

    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "rmdir", rmdir)
    hierarchy.reset_cache()
    yield hosts
    hierarchy.reset_cache()


def _proc_cgroup(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


@pytest.fixture
def v1host(tmp_path: Path, fake_kernel: list[FakeHost]) -> FakeHost:
    """A hybrid host like the CI VM: separate cpu and cpuacct, name=systemd, hugetlb only on cgroup2."""
    root = tmp_path / "cgroup"
    layout = {
        "cpu": ["cpu"],
        "cpuacct": ["cpuacct"],
        "cpuset": ["cpuset"],
        "memory": ["memory"],
        "devices": ["devices"],
        "freezer": ["freezer"],
        "blkio": ["blkio"],
        "pids": ["pids"],
        "net_cls": ["net_cls"],
        "systemd": ["name=systemd"],
        "unified": [""],
    }
    lines = []
    host = FakeHost(root, tmp_path / "mountinfo", tmp_path / "proc_cgroup")
    for i, (name, controllers) in enumerate(layout.items()):
        mount = root / name
        mount.mkdir(parents=True)
        host.mounts[mount] = controllers
        if controllers == [""]:
            lines.append(f"{40 + i} 31 0:{30 + i} / {mount} rw,relatime - cgroup2 cgroup2 rw")
            (mount / "cgroup.controllers").write_text("hugetlb\n")
            (mount / "cgroup.subtree_control").write_text("")
        else:
            lines.append(
                f"{40 + i} 31 0:{30 + i} / {mount} rw,relatime - cgroup cgroup rw,{','.join(controllers)}"
            )
    (root / "cpuset" / "cpuset.cpus").write_text("0-1\n")
    (root / "cpuset" / "cpuset.mems").write_text("0\n")
    host.mountinfo.write_text("\n".join(["30 1 0:27 / / rw - ext4 /dev/vda rw", *lines]) + "\n")
    _proc_cgroup(
        host.proc_cgroup,
        [
            "9:name=systemd:/user.slice",
            "4:memory:/sandbox/abc",
            "3:cpuset:/",
            "2:cpuacct:/",
            "1:cpu:/",
            "0::/user.slice",
        ],
    )
    fake_kernel.append(host)
    return host


@pytest.fixture
def v2host(tmp_path: Path, fake_kernel: list[FakeHost]) -> FakeHost:
    root = tmp_path / "cgroup"
    root.mkdir()
    host = FakeHost(root, tmp_path / "mountinfo", tmp_path / "proc_cgroup", {root: [""]})
    (root / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids\n")
    (root / "cgroup.subtree_control").write_text("")
    host.mountinfo.write_text(f"30 1 0:27 / {root} rw - cgroup2 cgroup2 rw\n")
    _proc_cgroup(host.proc_cgroup, ["0::/user.slice/session-1.scope"])
    fake_kernel.append(host)
    yield host
    shutil.rmtree(root, ignore_errors=True)
