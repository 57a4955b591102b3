"""Generated specs run for real: specgen + volumes → config.json → `kobako-runtime run` on a busybox rootfs.

Each test builds a bundle from the session's busybox rootfs, turns `kobako run`-style arguments into a spec
with the engine's own functions, runs it with the real runtime and checks what the container saw.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from kobako.engine.runopts import parse_run_args
from kobako.engine.specgen import generate
from kobako.engine.volumes import VolumeStore, volume_mounts

pytestmark = pytest.mark.root

PODMAN_CAPS_MASK = sum(1 << n for n in (0, 1, 3, 4, 5, 6, 7, 8, 10, 18, 31))
IMAGE = {"config": {"Cmd": ["sh"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]}}


class Engine:
    """Just enough of `kobako run` to drive the generated spec: bundle, volumes, spec, runtime run."""

    def __init__(self, base: Path, busybox: Path, runtime) -> None:  # type: ignore[no-untyped-def]
        self.base = base
        self.busybox = busybox
        self.runtime = runtime
        self.store = VolumeStore(str(base / "volumes"), users=dict)

    def run(self, *argv: str, prepare: Callable[[Path], None] | None = None, image: dict | None = None,
            check: bool = True) -> subprocess.CompletedProcess:  # fmt: skip
        cid = os.urandom(32).hex()
        bundle = self.base / cid[:12]
        bundle.mkdir()
        rootfs = bundle / "rootfs"
        subprocess.run(["cp", "-a", str(self.busybox), str(rootfs)], check=True)
        if prepare is not None:
            prepare(rootfs)
        opts, _image, _cmd = parse_run_args(list(argv))
        image = image or IMAGE
        mounts = volume_mounts(opts, image, str(rootfs), self.store, cid)
        spec = generate(cid, image, opts, str(rootfs), mounts, str(bundle / "userdata"))
        (bundle / "config.json").write_text(json.dumps(spec))
        proc = self.runtime("run", "-b", str(bundle), cid, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"exit {proc.returncode}: {proc.stdout}{proc.stderr}")
        return proc


@pytest.fixture
def engine(tmp_path: Path, busybox_rootfs: Path, runtime):  # type: ignore[no-untyped-def]
    yield Engine(tmp_path, busybox_rootfs, runtime)
    # The runtime removed each container's cgroup; drop the shared parent too when nothing else uses it.
    for hierarchy in os.listdir("/sys/fs/cgroup"):
        try:
            os.rmdir(os.path.join("/sys/fs/cgroup", hierarchy, "kobako"))
        except OSError:
            pass


def status_fields(text: str) -> dict[str, str]:
    return {k: v.strip() for k, v in (line.split(":", 1) for line in text.splitlines() if ":\t" in line)}


def test_default_spec_runs_with_podmans_caps_and_seccomp(engine: Engine) -> None:
    masked = next(
        p for p in ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug") if os.path.exists(p)
    )
    script = f"cat /proc/self/status; echo ---; hostname; wc -c < {masked}; grep ' /proc/sys ' /proc/self/mounts; id -u"
    out = engine.run("busybox", "sh", "-c", script).stdout
    status, _, rest = out.partition("---\n")
    fields = status_fields(status)
    assert int(fields["CapEff"], 16) == PODMAN_CAPS_MASK
    assert int(fields["CapBnd"], 16) == PODMAN_CAPS_MASK
    assert int(fields["CapInh"], 16) == 0 and int(fields["CapAmb"], 16) == 0
    assert fields["Seccomp"] == "2" and fields["NoNewPrivs"] == "0"
    hostname, size, proc_sys, uid = rest.splitlines()[:4]
    assert len(hostname) == 12 and size.strip() == "0"  # masked: /dev/null bound over it
    assert proc_sys.split()[3].split(",")[0] == "ro" and uid == "0"


def test_seccomp_blocks_what_the_caps_do_not_grant(engine: Engine) -> None:
    out = engine.run("busybox", "sh", "-c", "mkdir /m; mount -t tmpfs none /m; echo rc=$?", check=False)
    assert "rc=0" not in out.stdout


def test_named_volume_persists_across_runs(engine: Engine) -> None:
    engine.run("-v", "keep:/data", "busybox", "sh", "-c", "echo hello > /data/greeting")
    out = engine.run(
        "-v", "keep:/data:ro", "busybox", "sh", "-c", "cat /data/greeting; touch /data/x 2>&1; true"
    )
    assert out.stdout.splitlines()[0] == "hello" and "Read-only file system" in out.stdout
    assert Path(engine.store.get("keep").mountpoint, "greeting").read_text() == "hello\n"


def test_volume_prefilled_from_the_image_path(engine: Engine) -> None:
    def prepare(rootfs: Path) -> None:
        app = rootfs / "srv/app"
        app.mkdir(parents=True)
        (app / "index.html").write_text("<h1>image</h1>\n")
        os.chown(app / "index.html", 1234, 4321)
        os.chmod(app / "index.html", 0o604)
        (app / "latest").symlink_to("index.html")

    out = engine.run("-v", "site:/srv/app", "busybox", "sh", "-c", "cat /srv/app/latest; stat -c '%u %g %a' /srv/app/index.html",
                     prepare=prepare).stdout  # fmt: skip
    assert out.splitlines() == ["<h1>image</h1>", "1234 4321 604"]
    # The image declares a VOLUME: an anonymous volume is made and filled too.
    out = engine.run("busybox", "cat", "/srv/app/index.html", prepare=prepare,
                     image={"config": {"Cmd": ["sh"], "Volumes": {"/srv/app": {}}}}).stdout  # fmt: skip
    assert out == "<h1>image</h1>\n"
    assert any(v.anonymous for v in engine.store.list())


def test_read_only_root(engine: Engine) -> None:
    out = engine.run("--read-only", "busybox", "sh", "-c",
                     "touch /x 2>&1; touch /dev/shm/ok && echo shm-ok; grep -c . /etc/hostname").stdout  # fmt: skip
    assert "Read-only file system" in out and "shm-ok" in out


def test_user_nobody(engine: Engine) -> None:
    out = engine.run(
        "-u", "nobody", "busybox", "sh", "-c", "id -u; id -g; echo $HOME; grep CapEff /proc/self/status"
    )
    uid, gid, home, capeff = out.stdout.splitlines()
    assert (uid, gid, home) == ("65534", "65534", "/home")
    assert int(capeff.split()[1], 16) == 0
    added = engine.run(
        "-u", "nobody", "--cap-add", "NET_BIND_SERVICE", "busybox", "grep", "CapAmb", "/proc/self/status"
    )
    assert int(added.stdout.split()[1], 16) == 1 << 10


def test_tmpfs_mounts(engine: Engine) -> None:
    script = "grep -E ' /scratch | /t2 ' /proc/self/mounts; echo data > /scratch/f && cat /scratch/f"
    out = engine.run("--tmpfs", "/scratch:size=1m", "--mount", "type=tmpfs,dst=/t2,tmpfs-mode=700",
                     "busybox", "sh", "-c", script).stdout  # fmt: skip
    lines = out.splitlines()
    scratch = next(line for line in lines if " /scratch " in line)
    assert scratch.startswith("tmpfs /scratch tmpfs") and "size=1024k" in scratch and "noexec" in scratch
    assert "mode=700" in next(line for line in lines if " /t2 " in line)
    assert lines[-1] == "data"


def test_privileged_can_mount(engine: Engine) -> None:
    script = "mkdir -p /m && mount -t tmpfs none /m && echo mounted; grep Seccomp: /proc/self/status; ls /dev/loop-control 2>&1"
    out = engine.run("--privileged", "busybox", "sh", "-c", script).stdout
    assert "mounted" in out and "Seccomp:\t0" in out
    if os.path.exists("/dev/loop-control"):
        assert "No such file" not in out


def test_limits_reach_the_cgroup_and_rlimits(engine: Engine) -> None:
    script = ("cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max 2>/dev/null "
              "|| cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max; ulimit -n; ulimit -Hn")  # fmt: skip
    out = engine.run("-m", "64m", "--pids-limit", "64", "--ulimit", "nofile=100:1000000000",
                     "busybox", "sh", "-c", script).stdout.split()  # fmt: skip
    import resource

    host_hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert out == [str(64 << 20), "64", "100", str(host_hard)]


def test_docker_format_profile_file(engine: Engine) -> None:
    if not os.path.exists("/usr/share/containers/seccomp.json"):
        pytest.skip("no containers-common seccomp.json on this host")
    out = engine.run("--security-opt", "seccomp=/usr/share/containers/seccomp.json", "busybox", "sh", "-c",
                     "grep Seccomp: /proc/self/status; echo ok").stdout  # fmt: skip
    assert out.split() == ["Seccomp:", "2", "ok"]
