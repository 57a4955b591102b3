"""specgen: the OCI spec for representative option sets (no kernel needed: the spec is data)."""

from __future__ import annotations

import os
import resource
from pathlib import Path

import pytest

from kobako.engine import defaults, etcfiles, specgen
from kobako.engine.runopts import parse_run_args
from kobako.errors import InvalidArgument, NotFound
from kobako.oci import runtime_spec
from kobako.runtime.security.default_seccomp import default_profile

CID = "0123456789abcdef" * 4
PODMAN_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
               "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_SETFCAP"]  # fmt: skip
IMAGE = {"config": {"Cmd": ["sh"], "Env": ["PATH=/usr/bin:/bin", "LANG=C.UTF-8"], "WorkingDir": "/srv"}}


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/nonexistent:/bin/false\n"
    )
    (root / "etc/group").write_text("root:x:0:\nnogroup:x:65534:\n")
    return root


@pytest.fixture(autouse=True)
def host_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A known host resolv.conf and hosts, so results do not depend on the machine running the tests."""
    (tmp_path / "resolv.conf").write_text("# host\nnameserver 127.0.0.53\nnameserver 10.0.0.1\nsearch corp\n")
    (tmp_path / "hosts").write_text("127.0.0.1 localhost\n10.1.1.1 hosthost\n")
    monkeypatch.setattr(etcfiles, "_HOST_RESOLV", str(tmp_path / "resolv.conf"))
    monkeypatch.setattr(etcfiles, "_HOST_HOSTS", str(tmp_path / "hosts"))


def gen(
    rootfs: Path, *argv: str, image: dict | None = None, extra: list[dict] | None = None, **kw: object
) -> dict:
    opts, _image, _cmd = parse_run_args([*argv, "img"])
    spec = specgen.generate(CID, IMAGE if image is None else image, opts, str(rootfs), extra or [],
                            str(rootfs.parent / "userdata"), **kw)  # type: ignore[arg-type]  # fmt: skip
    runtime_spec.validate(spec)  # whatever we generate, the runtime must accept
    return spec


def by_dest(spec: dict) -> dict[str, dict]:
    return {m["destination"]: m for m in spec["mounts"]}


def test_defaults_are_podmans(rootfs: Path) -> None:
    spec = gen(rootfs)
    proc, linux = spec["process"], spec["linux"]
    caps = proc["capabilities"]
    assert caps["bounding"] == caps["effective"] == caps["permitted"] == PODMAN_CAPS
    assert caps["inheritable"] == caps["ambient"] == []
    assert linux["seccomp"] == default_profile(PODMAN_CAPS)
    assert linux["maskedPaths"] == list(defaults.MASKED_PATHS)
    assert {"/proc/kcore", "/proc/keys", "/sys/firmware", "/proc/sched_debug"} <= set(linux["maskedPaths"])
    assert linux["readonlyPaths"] == ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                      "/proc/sysrq-trigger"]  # fmt: skip
    assert [n["type"] for n in linux["namespaces"]] == ["pid", "mount", "ipc", "uts", "cgroup", "network"]
    assert linux["cgroupsPath"] == f"/kobako/{CID}"
    assert linux["resources"] == {"devices": [{"allow": False, "access": "rwm"}], "pids": {"limit": 2048}}
    assert linux["sysctl"] == {"net.ipv4.ping_group_range": "0 0"}
    assert "devices" not in linux
    assert proc["noNewPrivileges"] is False and proc["terminal"] is False and "oomScoreAdj" not in proc
    assert proc["user"] == {"uid": 0, "gid": 0, "umask": 0o022}
    assert proc["args"] == ["sh"] and proc["cwd"] == "/srv"
    assert spec["hostname"] == CID[:12] and spec["root"] == {"path": str(rootfs), "readonly": False}
    assert spec["annotations"] == {"org.kobako.container.id": CID}
    mounts = by_dest(spec)
    assert list(mounts)[:7] == [
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/sys",
        "/sys/fs/cgroup",
    ]
    assert "ro" in mounts["/sys"]["options"] and "ro" in mounts["/sys/fs/cgroup"]["options"]
    assert "size=65536k" in mounts["/dev/shm"]["options"]
    for name in ("hostname", "hosts", "resolv.conf"):
        m = mounts[f"/etc/{name}"]
        assert m["source"] == str(rootfs.parent / "userdata" / name) and m["options"] == ["rbind", "rprivate"]


def test_environment(rootfs: Path) -> None:
    env = gen(rootfs, "-t", "-e", "LANG=fr", "-e", "NEW=1").get("process")["env"]  # type: ignore[index]
    assert env == [
        "PATH=/usr/bin:/bin",
        f"HOSTNAME={CID[:12]}",
        "TERM=xterm",
        "LANG=fr",
        "NEW=1",
        "HOME=/root",
    ]
    bare = gen(rootfs, image={"config": {"Cmd": ["sh"]}})["process"]["env"]
    assert bare == [f"PATH={defaults.DEFAULT_PATH}", f"HOSTNAME={CID[:12]}", "HOME=/root"]
    mine = gen(rootfs, "-e", "HOME=/x", "-e", "HOSTNAME=h", "-u", "nobody")["process"]["env"]
    assert "HOME=/x" in mine and "HOSTNAME=h" in mine and len([e for e in mine if e.startswith("HOME=")]) == 1
    assert "HOME=/nonexistent" in gen(rootfs, "-u", "nobody")["process"]["env"]


@pytest.mark.parametrize(
    ("image", "argv", "args"),
    [
        ({"Entrypoint": ["/ep"], "Cmd": ["a"]}, [], ["/ep", "a"]),
        ({"Entrypoint": ["/ep"], "Cmd": ["a"]}, ["--", "b", "c"], ["/ep", "b", "c"]),
        ({"Entrypoint": ["/ep"], "Cmd": ["a"]}, ["--entrypoint", "/other", "--"], ["/other"]),
        ({"Entrypoint": ["/ep"], "Cmd": ["a"]}, ["--entrypoint", "/other", "--", "x"], ["/other", "x"]),
        ({"Entrypoint": ["/ep"], "Cmd": ["a"]}, ["--entrypoint=", "--", "ls", "-l"], ["ls", "-l"]),
        ({"Cmd": ["sh"]}, ["--", "echo", "hi"], ["echo", "hi"]),
        ({"Entrypoint": None, "Cmd": ["sh", "-c", "x"]}, [], ["sh", "-c", "x"]),
    ],
)
def test_args_follow_dockers_rules(rootfs: Path, image: dict, argv: list[str], args: list[str]) -> None:
    flags = [a for a in argv if a != "--" and argv.index(a) < argv.index("--")] if "--" in argv else argv
    cmd = argv[argv.index("--") + 1 :] if "--" in argv else []
    opts, _i, _c = parse_run_args([*flags, "img", *cmd])
    assert specgen.process_args(image, opts) == args


def test_no_command_is_an_error(rootfs: Path) -> None:
    with pytest.raises(InvalidArgument, match="no command specified"):
        gen(rootfs, "--entrypoint", "", image={"config": {"Cmd": ["sh"]}})
    with pytest.raises(InvalidArgument, match="no command specified"):
        gen(rootfs, image={"config": {}})


def test_image_config_may_be_the_inner_section(rootfs: Path) -> None:
    spec = gen(rootfs, image={"Cmd": ["true"], "WorkingDir": "rel/dir", "User": "nobody"})
    assert spec["process"]["args"] == ["true"] and spec["process"]["cwd"] == "/rel/dir"
    assert spec["process"]["user"]["uid"] == 65534
    assert gen(rootfs, "-w", "/w", image={"Cmd": ["true"], "WorkingDir": "/img"})["process"]["cwd"] == "/w"


def test_non_root_user_gets_only_added_caps(rootfs: Path) -> None:
    caps = gen(rootfs, "-u", "nobody")["process"]["capabilities"]
    assert caps["bounding"] == PODMAN_CAPS
    assert caps["effective"] == caps["permitted"] == caps["inheritable"] == caps["ambient"] == []
    caps = gen(rootfs, "-u", "65534:65534", "--cap-add", "NET_RAW")["process"]["capabilities"]
    assert "CAP_NET_RAW" in caps["bounding"]
    assert caps["effective"] == caps["permitted"] == caps["inheritable"] == caps["ambient"] == ["CAP_NET_RAW"]
    with pytest.raises(NotFound, match="unable to find user ghost"):
        gen(rootfs, "-u", "ghost")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--cap-drop", "CHOWN", "--cap-add", "SYS_ADMIN"],
         [c for c in PODMAN_CAPS if c != "CAP_CHOWN"] + ["CAP_SYS_ADMIN"]),
        (["--cap-drop", "ALL", "--cap-add", "KILL"], ["CAP_KILL"]),
        (["--cap-drop", "ALL"], []),
    ],
)  # fmt: skip
def test_cap_arithmetic(rootfs: Path, argv: list[str], expected: list[str]) -> None:
    bounding = gen(rootfs, *argv)["process"]["capabilities"]["bounding"]
    assert sorted(bounding) == sorted(expected)


def test_cap_add_all_minus_drop(rootfs: Path) -> None:
    bounding = gen(rootfs, "--cap-add", "ALL", "--cap-drop", "SYS_ADMIN")["process"]["capabilities"][
        "bounding"
    ]
    assert "CAP_SYS_ADMIN" not in bounding and "CAP_SYS_MODULE" in bounding and "CAP_NET_RAW" in bounding
    linux = gen(rootfs, "--cap-add", "SYS_ADMIN")["linux"]
    assert linux["seccomp"] == default_profile(
        [*PODMAN_CAPS, "CAP_SYS_ADMIN"]
    )  # the profile follows the caps


def test_privileged_lifts_the_defaults(rootfs: Path) -> None:
    spec = gen(rootfs, "--privileged", "--cap-drop", "ALL", "--security-opt", "seccomp=unconfined")
    linux = spec["linux"]
    caps = spec["process"]["capabilities"]
    assert "CAP_SYS_ADMIN" in caps["bounding"] and caps["effective"] == caps["bounding"]
    assert "seccomp" not in linux and "maskedPaths" not in linux and "readonlyPaths" not in linux
    assert linux["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    paths = {d["path"] for d in linux["devices"]}
    assert (
        "/dev/null" in paths
        and "/dev/console" not in paths
        and not any(p.startswith("/dev/pts/") for p in paths)
    )
    mounts = by_dest(spec)
    assert "rw" in mounts["/sys"]["options"] and "ro" not in mounts["/sys"]["options"]
    assert "ro" not in mounts["/sys/fs/cgroup"]["options"]


def test_systempaths_unconfined_and_seccomp_unconfined(rootfs: Path) -> None:
    linux = gen(rootfs, "--security-opt", "systempaths=unconfined", "--security-opt", "seccomp=unconfined")[
        "linux"
    ]
    assert "maskedPaths" not in linux and "seccomp" not in linux


def test_no_new_privileges(rootfs: Path) -> None:
    assert gen(rootfs, "--security-opt", "no-new-privileges")["process"]["noNewPrivileges"] is True


def test_read_only_root_and_etc_files(rootfs: Path) -> None:
    spec = gen(rootfs, "--read-only")
    assert spec["root"]["readonly"] is True
    assert by_dest(spec)["/etc/hosts"]["options"] == ["rbind", "rprivate", "ro"]


def test_rlimits_clamped_to_the_host(rootfs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    host = {resource.RLIMIT_NOFILE: (1024, 4096), resource.RLIMIT_NPROC: (500, 1000),
            resource.RLIMIT_CORE: (0, resource.RLIM_INFINITY), resource.RLIMIT_STACK: (8 << 20, 16 << 20)}  # fmt: skip
    monkeypatch.setattr(resource, "getrlimit", host.__getitem__)
    limits = {r["type"]: (r["soft"], r["hard"]) for r in gen(rootfs)["process"]["rlimits"]}
    assert limits == {"RLIMIT_NOFILE": (4096, 4096), "RLIMIT_NPROC": (1000, 1000)}  # Podman's maxima, clamped
    argv = [
        "--ulimit",
        "nofile=100:200000",
        "--ulimit",
        "core=-1",
        "--ulimit",
        "stack=8388608",
        "--ulimit",
        "nproc=10:20",
    ]
    limits = {r["type"]: (r["soft"], r["hard"]) for r in gen(rootfs, *argv)["process"]["rlimits"]}
    assert limits == {"RLIMIT_NOFILE": (100, 4096), "RLIMIT_NPROC": (10, 20), "RLIMIT_CORE": ((1 << 64) - 1,) * 2,
                      "RLIMIT_STACK": (8 << 20, 8 << 20)}  # fmt: skip


def test_resources(rootfs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(specgen, "_swap_accounting", lambda: True)
    argv = ["-m", "64m", "--cpus", "0.5", "--cpu-shares", "512", "--cpuset-cpus", "0", "--pids-limit", "100"]
    res = gen(rootfs, *argv)["linux"]["resources"]
    assert res["memory"] == {"limit": 64 << 20, "swap": 128 << 20}
    assert res["cpu"] == {"period": 100000, "quota": 50000, "shares": 512, "cpus": "0"}
    assert res["pids"] == {"limit": 100}
    assert gen(rootfs, "-m", "64m", "--memory-swap", "-1")["linux"]["resources"]["memory"]["swap"] == -1
    assert "pids" not in gen(rootfs, "--pids-limit", "-1")["linux"]["resources"]
    monkeypatch.setattr(specgen, "_swap_accounting", lambda: False)
    warnings: list[str] = []
    res = gen(rootfs, "-m", "64m", "--memory-swap", "1g", warnings=warnings)["linux"]["resources"]
    assert res["memory"] == {"limit": 64 << 20} and "swap" in warnings[0]


def test_networks(rootfs: Path) -> None:
    host = gen(rootfs, "--network", "host")
    assert "network" not in [n["type"] for n in host["linux"]["namespaces"]]
    assert host["hostname"] == os.uname().nodename and "sysctl" not in host["linux"]
    userdata = rootfs.parent / "userdata"
    assert "10.1.1.1 hosthost" in (userdata / "hosts").read_text()
    assert "nameserver 127.0.0.53" in (userdata / "resolv.conf").read_text()  # the host's own resolver works

    gen(rootfs, "--network", "none", "-h", "box", "--add-host", "db:10.9.9.9", "--name", "web")
    hosts = (userdata / "hosts").read_text()
    assert "127.0.0.1\tlocalhost" in hosts and "10.9.9.9\tdb" in hosts and "127.0.1.1\tbox web" in hosts
    assert "nameserver" not in (userdata / "resolv.conf").read_text()
    assert (userdata / "hostname").read_text() == "box\n"

    gen(rootfs, "--network", "bridge")  # loopback resolvers are unreachable from the container's netns
    resolv = (userdata / "resolv.conf").read_text()
    assert "nameserver 10.0.0.1" in resolv and "127.0.0.53" not in resolv and "search corp" in resolv
    gen(rootfs, "--dns", "9.9.9.9", "--dns-search", "a.example", "--dns-option", "ndots:2")
    resolv = (userdata / "resolv.conf").read_text()
    assert "nameserver 9.9.9.9" in resolv and "10.0.0.1" not in resolv
    assert "search a.example" in resolv and "options ndots:2" in resolv

    joined = gen(rootfs, "--network", "container:abc", netns_path="/proc/42/ns/net")["linux"]
    assert {"type": "network", "path": "/proc/42/ns/net"} in joined["namespaces"] and "sysctl" not in joined


def test_hostname_domain_name_and_annotations(rootfs: Path) -> None:
    spec = gen(rootfs, "-h", "web.example.com", "--name", "web", "--init")
    assert spec["hostname"] == "web" and spec["domainname"] == "example.com"
    assert spec["annotations"] == {"org.kobako.container.id": CID, "org.kobako.container.name": "web",
                                   "org.kobako.init": "true"}  # fmt: skip
    assert "HOSTNAME=web" in spec["process"]["env"]


def test_user_mounts_sorted_and_replacing_defaults(rootfs: Path) -> None:
    extra = [
        {"destination": "/data/sub", "type": "bind", "source": "/a", "options": ["rbind"]},
        {"destination": "/data", "type": "bind", "source": "/b", "options": ["rbind"]},
        {"destination": "/etc/hosts", "type": "bind", "source": "/my/hosts", "options": ["rbind"]},
        {"destination": "/dev/shm", "type": "bind", "source": "/shm", "options": ["rbind"]},
    ]
    spec = gen(rootfs, "--tmpfs", "/t:size=1m,exec", "--mount", "type=tmpfs,dst=/data/t2,tmpfs-size=2k,tmpfs-mode=700",
               extra=extra)  # fmt: skip
    dests = [m["destination"] for m in spec["mounts"]]
    assert dests.count("/etc/hosts") == 1 and dests.count("/dev/shm") == 1
    user = dests[dests.index("/etc/resolv.conf") + 1 :]
    assert user == ["/data", "/t", "/data/sub", "/etc/hosts", "/dev/shm", "/data/t2"]  # parents first, stable
    m = by_dest(spec)
    assert m["/etc/hosts"]["source"] == "/my/hosts" and m["/dev/shm"]["source"] == "/shm"
    assert m["/t"] == {"destination": "/t", "type": "tmpfs", "source": "tmpfs",
                       "options": ["nosuid", "nodev", "noexec", "size=1m", "exec"]}  # fmt: skip
    assert m["/data/t2"]["options"] == ["nosuid", "nodev", "noexec", "size=2048", "mode=700"]


def test_shm_size(rootfs: Path) -> None:
    assert "size=131072k" in by_dest(gen(rootfs, "--shm-size", "128m"))["/dev/shm"]["options"]


def test_seccomp_profile_file_is_converted_with_the_final_caps(rootfs: Path, tmp_path: Path) -> None:
    import json

    profile = {"defaultAction": "SCMP_ACT_ERRNO", "archMap": [{"architecture": "SCMP_ARCH_X86_64",
               "subArchitectures": ["SCMP_ARCH_X86"]}], "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}}]}  # fmt: skip
    f = tmp_path / "p.json"
    f.write_text(json.dumps(profile))
    plain = gen(rootfs, "--security-opt", f"seccomp={f}")["linux"]["seccomp"]
    assert [r["names"] for r in plain["syscalls"]] == [["read", "write"]]
    admin = gen(rootfs, "--security-opt", f"seccomp={f}", "--cap-add", "SYS_ADMIN")["linux"]["seccomp"]
    assert [r["names"] for r in admin["syscalls"]] == [["read", "write"], ["mount"]]
    assert "seccomp" not in gen(rootfs, "--security-opt", f"seccomp={f}", "--privileged")["linux"]


def test_default_capabilities_need_no_runtime_table() -> None:
    """The flag-less fast path gives what the cap-add/cap-drop arithmetic gives (the default set in number
    order), for root and for another user."""
    from kobako.runtime.security.capabilities import CAPABILITIES

    assert list(specgen.DEFAULT_BOUNDING) == sorted(defaults.CAPABILITIES, key=CAPABILITIES.__getitem__)
    plain, _image, _cmd = parse_run_args(["img"])
    dropped_nothing, _image, _cmd = parse_run_args(["--cap-drop", "CAP_AUDIT_WRITE", "img"])  # not in the set
    for uid in (0, 1000):
        assert specgen.capabilities(plain, uid) == specgen.capabilities(dropped_nothing, uid)
