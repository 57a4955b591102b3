"""The real docker CLI against `kobako system service`: each user flow unchanged, with DOCKER_HOST on our socket.

One service (private KOBAKO_ROOT with a busybox image made by `kobako import`, private socket, private
DOCKER_CONFIG) serves the module; every test removes what it made, and the end checks nothing is left.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kobako.testing.api_service import ApiService, local_registry

KOBAKO = str(Path(sys.executable).parent / "kobako")
DOCKER = shutil.which("docker")
pytestmark = [pytest.mark.root, pytest.mark.skipif(DOCKER is None, reason="the docker CLI is not installed")]


class Service(ApiService):
    def __init__(self, base: Path, rootfs: Path) -> None:
        super().__init__(base, rootfs)
        (base / "docker-config").mkdir()
        self.docker_env = {**os.environ, "DOCKER_HOST": f"unix://{self.sock}",
                           "DOCKER_CONFIG": str(base / "docker-config")}  # fmt: skip
        self.docker_env.pop("DOCKER_CONTEXT", None)

    def __call__(self, *args: str, check: bool = True, timeout: float = 60, input: bytes | None = None,
                 env: dict | None = None) -> subprocess.CompletedProcess:  # fmt: skip
        proc = subprocess.run([DOCKER, *args], env={**self.docker_env, **(env or {})}, capture_output=True,  # type: ignore[list-item]
                              timeout=timeout, input=input, stdin=None if input is not None else subprocess.DEVNULL,
                              check=False)  # fmt: skip
        proc.stdout, proc.stderr = proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
        if check and proc.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
        return proc

    def tty(self, command: str, timeout: float = 30) -> subprocess.CompletedProcess:
        """Run a docker command line under a pseudo-terminal (script(1)), as a user at a terminal would."""
        line = f"stty rows 30 cols 100; {DOCKER} {command}"
        return subprocess.run(["script", "-qec", line, "/dev/null"], env=self.docker_env, capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)  # fmt: skip

    def stop(self) -> list[str]:
        for cid in self.kobako("ps", "-aq", "--no-trunc").stdout.split():
            self.kobako("rm", "-f", cid)
        self.terminate()
        return _leftovers(self.root)


def _leftovers(root: Path) -> list[str]:
    found = []
    deadline = time.monotonic() + 5
    while True:
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    if f"KOBAKO_ROOT={root}\0".encode() in f.read() + b"\0" and int(pid) != os.getpid():
                        found.append(f"process {pid}")
            except OSError:
                continue
        if not found or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    with open("/proc/self/mountinfo") as f:
        found += [f"mount {line.split()[4]}" for line in f if line.split()[4].startswith(str(root))]
    return found


@pytest.fixture(scope="module")
def docker(tmp_path_factory: pytest.TempPathFactory, busybox_rootfs: Path) -> Iterator[Service]:
    service = Service(tmp_path_factory.mktemp("docker-cli"), busybox_rootfs)
    yield service
    left = service.stop()
    assert not left, left


@pytest.fixture
def d(docker: Service) -> Iterator[Service]:
    yield docker
    for cid in docker.kobako("ps", "-aq", "--no-trunc").stdout.split():
        docker.kobako("rm", "-f", cid)


def test_run_rm_prints_output_and_returns_the_exit_code(d: Service) -> None:
    out = d("run", "--rm", "busybox", "echo", "hello")
    assert out.stdout == "hello\n"
    failed = d("run", "--rm", "busybox", "sh", "-c", "echo oops >&2; exit 42", check=False)
    assert failed.returncode == 42 and "oops" in failed.stderr
    assert d("ps", "-aq").stdout == ""  # --rm removed both


def test_run_missing_command_is_127(d: Service) -> None:
    proc = d("run", "--rm", "busybox", "/no/such/binary", check=False)
    assert proc.returncode == 127
    assert d("ps", "-aq").stdout == ""


def test_run_detached_ps_inspect_logs_stop(d: Service) -> None:
    cid = d("run", "-d", "--name", "web", "-e", "GREETING=hi", "busybox", "sh", "-c",
            "echo $GREETING; trap 'exit 0' TERM; sleep 100 & wait").stdout.strip()  # fmt: skip
    assert len(cid) == 64
    ps = d("ps", "--format", "{{.Names}} {{.Status}}").stdout
    assert ps.startswith("web Up")
    info = json.loads(d("inspect", "web").stdout)[0]
    assert info["Id"] == cid and info["State"]["Running"] is True
    assert "GREETING=hi" in info["Config"]["Env"]
    deadline = time.monotonic() + 10
    while "hi" not in d("logs", "web").stdout and time.monotonic() < deadline:
        time.sleep(0.05)
    assert d("logs", "web").stdout == "hi\n"
    assert d("stop", "-t", "5", "web").stdout.strip() == "web"
    assert d("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "web").stdout.strip() == "exited 0"
    assert "Exited (0)" in d("ps", "-a").stdout


def test_run_interactive_tty(d: Service) -> None:
    proc = d.tty("run -it --rm busybox sh -c 'tty; exit 5'")
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert "/dev/pts/0" in proc.stdout


def test_run_interactive_stdin(d: Service) -> None:
    out = d("run", "-i", "--rm", "busybox", "sh", "-c", "tr a-z A-Z", input=b"shout\n")
    assert out.stdout == "SHOUT\n"


def test_logs_follow_ends_with_the_container(d: Service) -> None:
    d("run", "-d", "--name", "talker", "busybox", "sh", "-c", "for i in 1 2 3; do echo n$i; sleep 0.2; done")
    out = d("logs", "-f", "talker", timeout=30)
    assert out.stdout == "n1\nn2\nn3\n"


def test_exec_plain_and_tty(d: Service) -> None:
    d("run", "-d", "--name", "box", "busybox", "sleep", "100")
    assert (
        d("exec", "box", "cat", "/etc/hostname").stdout.strip()
        == d("inspect", "-f", "{{.Id}}", "box").stdout[:12]
    )
    assert d("exec", "box", "sh", "-c", "exit 9", check=False).returncode == 9
    assert d("exec", "-i", "box", "cat", input=b"piped").stdout == "piped"
    proc = d.tty("exec -it box sh -c 'tty; stty size'")
    assert proc.returncode == 0 and "/dev/pts/" in proc.stdout, proc.stdout + proc.stderr
    missing = d("exec", "box", "nope", check=False)
    assert missing.returncode in (126, 127)


def test_kill_wait_rm_force(d: Service) -> None:
    d("run", "-d", "--name", "victim", "busybox", "sleep", "100")
    assert d("kill", "victim").stdout.strip() == "victim"
    assert d("wait", "victim").stdout.strip() == "137"
    d("run", "-d", "--name", "running", "busybox", "sleep", "100")
    assert d("rm", "running", check=False).returncode != 0
    assert d("rm", "-f", "running", "victim").stdout.split() == ["running", "victim"]
    assert d("ps", "-aq").stdout == ""


def test_stats_one_shot_and_stream(d: Service) -> None:
    d("run", "-d", "--name", "busy", "busybox", "sleep", "100")
    out = d("stats", "--no-stream", "busy").stdout
    assert "busy" in out and "MEM USAGE" in out
    fmt = d("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "busy").stdout.split()
    assert fmt == ["busy", "1"]
    with pytest.raises(subprocess.TimeoutExpired):  # streams until stopped
        d("stats", "busy", timeout=2.5)


def test_images_tag_rmi_save_load(d: Service) -> None:
    assert "busybox" in d("images").stdout
    d("tag", "busybox", "mine/box:1")
    assert "mine/box:1" in d("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    archive = d.base / "saved.tar"
    d("save", "-o", str(archive), "mine/box:1")
    assert "Untagged: mine/box:1" in d("rmi", "mine/box:1").stdout
    assert "mine/box" not in d("images").stdout
    d("load", "-i", str(archive))
    assert "mine/box:1" in d("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    d("rmi", "mine/box:1")
    assert d("rmi", "nosuch:1", check=False).returncode != 0


def test_build_from_a_context(d: Service) -> None:
    ctx = d.base / "ctx"
    ctx.mkdir()
    (ctx / "hello.txt").write_text("from the context\n")
    (ctx / "Dockerfile").write_text('FROM busybox\nCOPY hello.txt /hello.txt\nRUN echo built >> /hello.txt\n'
                                    'CMD ["cat", "/hello.txt"]\n')  # fmt: skip
    build = d("build", "-t", "built:1", str(ctx), timeout=120)
    assert "Successfully tagged built:1" in build.stdout
    assert d("run", "--rm", "built:1").stdout == "from the context\nbuilt\n"
    d("rmi", "built:1")


def test_pull_and_push_through_a_local_registry(d: Service) -> None:
    with local_registry(d.base / "registry", d.env) as port:
        ref = f"127.0.0.1:{port}/team/box:1"
        d("tag", "busybox", ref)
        push = d("push", ref, timeout=120)
        assert "digest: sha256:" in push.stdout
        d("rmi", ref)
        pull = d("pull", ref, timeout=120)
        assert "Status:" in pull.stdout and ref in pull.stdout
        assert d("run", "--rm", ref, "echo", "pulled").stdout == "pulled\n"
        d("rmi", ref)
        assert d("pull", f"127.0.0.1:{port}/none:1", check=False, timeout=60).returncode != 0


def test_network_create_ls_rm(d: Service) -> None:
    d("network", "create", "clinet")
    assert "clinet" in d("network", "ls", "--format", "{{.Name}}").stdout.split()
    assert d("network", "create", "clinet", check=False).returncode != 0
    d("network", "rm", "clinet")
    assert "clinet" not in d("network", "ls").stdout
    d("network", "create", "-o", "com.docker.network.driver.mtu=1400", "climtu")
    mtu = d("network", "inspect", "-f", '{{index .Options "com.docker.network.driver.mtu"}}', "climtu")
    assert mtu.stdout.strip() == "1400"
    bad = d("network", "create", "-o", "com.docker.network.bridge.enable_icc=false", "clibad", check=False)
    assert bad.returncode != 0 and "unsupported network option" in bad.stderr
    d("network", "rm", "climtu")


def test_volume_create_ls_rm_and_use(d: Service) -> None:
    d("volume", "create", "clivol")
    assert "clivol" in d("volume", "ls", "-q").stdout.split()
    d("run", "--rm", "-v", "clivol:/data", "busybox", "sh", "-c", "echo kept > /data/f")
    assert d("run", "--rm", "-v", "clivol:/data", "busybox", "cat", "/data/f").stdout == "kept\n"
    d("volume", "rm", "clivol")
    assert "clivol" not in d("volume", "ls", "-q").stdout.split()


def test_events_show_the_container_lifecycle(d: Service) -> None:
    since = str(int(time.time()) - 1)
    cid = d("run", "-d", "busybox", "true").stdout.strip()
    d("wait", cid)
    d("rm", cid)
    until = str(int(time.time()) + 1)
    out = d("events", "--since", since, "--until", until, "--filter", f"container={cid}",
            "--format", "{{.Action}}").stdout.split()  # fmt: skip
    assert out == ["create", "start", "die", "destroy"], out


def test_cli_and_api_share_the_engine(d: Service) -> None:
    d("run", "-d", "--name", "viaapi", "busybox", "sleep", "100")
    assert "viaapi" in d.kobako("ps", "--format", "{{.Names}}").stdout.split()
    cid = d.kobako("run", "-d", "--name", "viacli", "busybox", "sleep", "100").stdout.strip()
    assert d("inspect", "-f", "{{.Id}}", "viacli").stdout.strip() == cid
    d("stop", "-t", "1", "viacli")
    assert "Exited" in d.kobako("ps", "-a", "--format", "{{.Names}} {{.Status}}").stdout
