"""cgroupsPath normalisation, driver detection and hierarchy discovery."""

from __future__ import annotations

from pathlib import Path

import pytest

from kobako.cgroups import hierarchy, load_manager, new_manager
from kobako.cgroups.base import expand_slice, normalise_path, own_cgroups
from kobako.cgroups.hierarchy import detect, mounts
from kobako.cgroups.v1 import V1Manager
from kobako.cgroups.v2 import V2Manager
from kobako.errors import InvalidArgument


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, "/kobako/c1"),
        ("", "/kobako/c1"),
        ("/docker/abc", "/docker/abc"),
        ("//a//b/", "/a/b"),
        ("/a/../b", "/b"),
        ("pods/x", "pods/x"),
        ("machine.slice:libpod:ID", "/machine.slice/libpod-ID.scope"),
        ("user-1000.slice:podman:abc", "/user.slice/user-1000.slice/podman-abc.scope"),
        (":crio:abc", "/system.slice/crio-abc.scope"),
        ("-.slice:x:y", "/x-y.scope"),
        ("system.slice::svc", "/system.slice/svc.scope"),
        ("kubepods.slice:cri:pod.slice", "/kubepods.slice/pod.slice"),
    ],
)
def test_normalise_path(given: str | None, expected: str) -> None:
    assert normalise_path(given, "c1") == expected


@pytest.mark.parametrize("bad", ["..", "../up", "a/../../up", "/", "bad.scope:p:n", "a-.slice:p:n", "x\ny"])
def test_normalise_path_rejects(bad: str) -> None:
    with pytest.raises(InvalidArgument):
        normalise_path(bad, "c1")


@pytest.mark.parametrize("cid", ["", "a/b", ".."])
def test_default_path_needs_a_plain_id(cid: str) -> None:
    with pytest.raises(InvalidArgument, match="container id"):
        normalise_path(None, cid)


def test_expand_slice() -> None:
    assert expand_slice("a-b-c.slice") == "/a.slice/a-b.slice/a-b-c.slice"
    assert expand_slice("-.slice") == ""
    with pytest.raises(InvalidArgument):
        expand_slice("a--b.slice")


def test_detect_by_cgroup_controllers(tmp_path: Path) -> None:
    hierarchy.reset_cache()
    assert detect(str(tmp_path)) == "v1"
    hierarchy.reset_cache()
    (tmp_path / "cgroup.controllers").write_text("cpu memory\n")
    assert detect(str(tmp_path)) == "v2"
    (tmp_path / "cgroup.controllers").unlink()
    assert detect(str(tmp_path)) == "v2", "the answer is cached for the process"
    hierarchy.reset_cache()


def test_mountinfo_parsing_handles_comounts_escapes_and_foreign_mounts(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(
        "25 1 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n"
        "26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
        "27 25 0:24 / /sys/fs/cgroup/systemd rw shared:5 - cgroup cgroup rw,xattr,name=systemd\n"
        "30 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw shared:8 - cgroup cgroup rw,cpu,cpuacct\n"
        "31 25 0:28 /docker/x /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
        "32 1 0:28 / /mnt/other\\040memory rw - cgroup cgroup rw,memory\n"
        "33 25 0:29 / /sys/fs/cgroup/net\\040cls rw - cgroup cgroup rw,net_cls,release_agent=/x\n"
    )
    found = mounts("/sys/fs/cgroup", str(info))
    assert found == {
        "": ("/sys/fs/cgroup/unified", "/"),
        "name=systemd": ("/sys/fs/cgroup/systemd", "/"),
        "cpu": ("/sys/fs/cgroup/cpu,cpuacct", "/"),
        "cpuacct": ("/sys/fs/cgroup/cpu,cpuacct", "/"),
        "memory": ("/sys/fs/cgroup/memory", "/docker/x"),
        "net_cls": ("/sys/fs/cgroup/net cls", "/"),
    }
    assert mounts("/sys/fs/cgroup", str(info)) is found, "parsed once per process"


def test_own_cgroups(v1host) -> None:
    own = own_cgroups(str(v1host.proc_cgroup))
    assert own["memory"] == "/sandbox/abc"
    assert own[""] == "/user.slice"


def _v1(host, path: str) -> V1Manager:
    return V1Manager(
        path, root=str(host.root), mountinfo=str(host.mountinfo), proc_cgroup=str(host.proc_cgroup)
    )


def test_v1_absolute_path_is_the_same_in_every_hierarchy(v1host) -> None:
    mgr = _v1(v1host, "/kobako/c1")
    assert mgr.path == "/kobako/c1"
    assert mgr.dirs["memory"] == f"{v1host.root}/memory/kobako/c1"
    assert mgr.dirs["name=systemd"] == f"{v1host.root}/systemd/kobako/c1"
    assert mgr.dirs[""] == f"{v1host.root}/unified/kobako/c1"
    assert "net_cls" not in mgr.dirs, "hierarchies kobako does not manage are left alone"


def test_v1_relative_path_follows_each_hierarchy_and_round_trips(v1host) -> None:
    mgr = _v1(v1host, "ctr")
    assert mgr.dirs["memory"] == f"{v1host.root}/memory/sandbox/abc/ctr"
    assert mgr.dirs["cpu"] == f"{v1host.root}/cpu/ctr"
    assert mgr.dirs["name=systemd"] == f"{v1host.root}/systemd/user.slice/ctr"
    assert mgr.path.startswith("@")
    again = _v1(v1host, mgr.path)
    assert again.dirs == mgr.dirs


def test_v2_relative_path_hangs_off_own_cgroup(v2host) -> None:
    mgr = V2Manager("ctr", root=str(v2host.root), proc_cgroup=str(v2host.proc_cgroup))
    assert mgr.path == "/user.slice/session-1.scope/ctr"
    assert mgr.dir == f"{v2host.root}/user.slice/session-1.scope/ctr"
    with pytest.raises(InvalidArgument):
        V2Manager("../x", root=str(v2host.root), proc_cgroup=str(v2host.proc_cgroup))


def test_new_and_load_manager_pick_the_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("kobako.cgroups.detect", lambda: "v2")
    mgr = new_manager("machine.slice:libpod:abc", "abc")
    assert isinstance(mgr, V2Manager)
    assert mgr.path == "/machine.slice/libpod-abc.scope"
    assert load_manager(mgr.path).dir == "/sys/fs/cgroup/machine.slice/libpod-abc.scope"
    assert load_manager("machine.slice:libpod:abc").path == mgr.path
