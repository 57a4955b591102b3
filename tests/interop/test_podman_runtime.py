"""Podman drives kobako-runtime: `podman --runtime "$(command -v kobako-runtime)" run --rm IMAGE ...`.

The image is the session's busybox rootfs, tarred and `podman import`ed: no registry is ever contacted.
Podman runs fully isolated (see kobako.testing.podman): its storage, run dir, config, locks, events and
cgroup parent live in a temporary directory that is removed at the end, and the module checks that no
container, mount, cgroup or process is left behind. Podman (as root) calls the runtime without --root,
so kobako-runtime keeps its state in its default root; each test checks the container's entry is gone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kobako.testing.podman import Podman, cgroup_dirs_named, processes_mentioning
from kobako.testing.runtime_cli import runtime_bin, unique

pytestmark = [pytest.mark.root, pytest.mark.interop]

IMAGE = "localhost/kobako-interop/busybox:latest"


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory, busybox_rootfs: Path) -> Iterator[Podman]:
    for tool in ("podman", "conmon"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    pm = Podman(tmp_path_factory.mktemp("podman"))
    try:
        pm.import_rootfs(busybox_rootfs, IMAGE)
        yield pm
    finally:
        left = pm.close()
    assert not left, f"left behind by the podman tests: {left}"


@pytest.fixture(scope="module")
def kobako() -> str:
    binary = runtime_bin()
    if not os.path.exists(binary):
        pytest.skip(f"{binary} is not installed (make install)")
    return binary


def kobako_default_root(*args: str) -> subprocess.CompletedProcess:
    """kobako-runtime as podman calls it when root: no --root, so its default state root."""
    return subprocess.run([runtime_bin(), *args], capture_output=True, text=True, timeout=30, check=False)


def run(pm: Podman, runtime: str, *args: str, cidfile: Path | None = None, timeout: float = 60):  # type: ignore[no-untyped-def]
    extra = ["--cidfile", str(cidfile)] if cidfile else []
    return pm("run", "--runtime", runtime, *pm.run_flags(), *extra, *args, check=False, timeout=timeout)


def assert_gone(pm: Podman, cid: str) -> None:
    """Nothing of container ``cid`` is left: no podman record, runtime state, cgroup or process."""
    assert cid not in pm("ps", "--all", "--no-trunc", "--quiet").stdout.split()
    assert kobako_default_root("state", cid).returncode != 0, "kobako-runtime state left behind"
    assert cgroup_dirs_named(cid) == [], "cgroups left behind"
    deadline = time.monotonic() + 5  # conmon exits right after the cleanup it triggers
    while processes_mentioning(cid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_mentioning(cid) == [], "processes left behind"


def runtime_path(which: str, kobako: str) -> str:
    if which == "runc":
        return shutil.which("runc") or pytest.skip("runc is not installed")
    return kobako


@pytest.mark.parametrize("which", ["kobako-runtime", "runc"])  # runc: the baseline podman expects
def test_run_rm_echo_hello(podman, kobako, which, tmp_path) -> None:
    cidfile = tmp_path / "cid"
    proc = run(podman, runtime_path(which, kobako), "--rm", IMAGE, "echo", "hello", cidfile=cidfile)
    assert (proc.returncode, proc.stdout) == (0, "hello\n"), proc.stderr
    assert_gone(podman, cidfile.read_text().strip())


def test_exit_code_propagates(podman, kobako) -> None:
    assert run(podman, kobako, "--rm", IMAGE, "sh", "-c", "exit 7").returncode == 7


def test_missing_command_exits_127(podman, kobako) -> None:
    proc = run(podman, kobako, "--rm", IMAGE, "no-such-command")
    assert proc.returncode == 127, proc.stderr
    assert "no-such-command" in proc.stderr


@pytest.mark.parametrize("which", ["kobako-runtime", "runc"])
def test_non_executable_command_exits_126(podman, kobako, which) -> None:
    proc = run(podman, runtime_path(which, kobako), "--rm", IMAGE, "/etc/passwd")
    assert proc.returncode == 126, proc.stderr


def test_detached_ps_logs_stop_rm(podman, kobako) -> None:
    name = unique("detached")
    script = "trap 'exit 0' TERM; echo ready; while true; do sleep 0.1; done"
    started = run(podman, kobako, "-d", "--name", name, IMAGE, "sh", "-c", script)
    assert started.returncode == 0, started.stderr
    cid = started.stdout.strip()
    try:
        deadline = time.monotonic() + 10
        while "ready" not in podman("logs", name).stdout:
            assert time.monotonic() < deadline, "the container never printed ready"
            time.sleep(0.05)
        ps = json.loads(podman("ps", "--format", "json").stdout)
        assert [(c["Id"], c["State"]) for c in ps] == [(cid, "running")]
        pid = int(podman("inspect", "--format", "{{.State.Pid}}", name).stdout)
        state = json.loads(kobako_default_root("state", cid).stdout)  # the container is kobako-runtime's
        assert (state["status"], state["pid"]) == ("running", pid)

        podman("stop", "--time", "10", name)
        inspected = podman(
            "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name
        ).stdout.split()
        assert inspected == ["exited", "0"], "SIGTERM did not reach the trap"
        podman("rm", name)
    finally:
        podman("rm", "--force", "--time", "0", name, check=False)
    assert_gone(podman, cid)


@pytest.mark.parametrize("seccomp", ["default", "unconfined"])
def test_exec_into_a_running_container(podman, kobako, seccomp) -> None:
    name = unique("exec")
    opts = [] if seccomp == "default" else ["--security-opt", "seccomp=unconfined"]
    started = run(podman, kobako, "-d", "--name", name, *opts, IMAGE, "sleep", "300")
    assert started.returncode == 0, started.stderr
    try:
        out = podman("exec", name, "sh", "-c", "echo $$; cat /proc/1/cmdline").stdout
        exec_pid, cmdline = out.split("\n", 1)
        assert int(exec_pid) > 1 and cmdline == "sleep\0" + "300\0"
        assert podman("exec", name, "sh", "-c", "exit 4", check=False).returncode == 4
        out = podman(
            "exec", "-e", "X=y", "-u", "65534", "-w", "/tmp", name, "sh", "-c", "echo $X $(id -u) $PWD"
        )
        assert out.stdout == "y 65534 /tmp\n"
    finally:
        podman("rm", "--force", "--time", "0", name, check=False)
    assert_gone(podman, started.stdout.strip())


@pytest.mark.parametrize(
    ("flags", "command", "expected"),
    [
        (["-e", "FOO=bar"], ["sh", "-c", "echo $FOO"], "bar\n"),
        (["--user", "65534"], ["sh", "-c", "id -u; id -g"], "65534\n65534\n"),
        (["--hostname", "kobako-box"], ["hostname"], "kobako-box\n"),
        (["--memory", "64m"], ["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"], f"{64 << 20}\n"),
        (["--workdir", "/tmp"], ["pwd"], "/tmp\n"),
    ],
    ids=["env", "user", "hostname", "memory", "workdir"],
)
def test_run_options_reach_the_container(podman, kobako, flags, command, expected) -> None:
    proc = run(podman, kobako, "--rm", *flags, IMAGE, *command)
    assert (proc.returncode, proc.stdout) == (0, expected), proc.stderr


def test_tty(podman, kobako) -> None:
    proc = run(podman, kobako, "--rm", "-t", IMAGE, "tty")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("/dev/pts/") and proc.stdout.endswith("\r\n")  # a terminal's line end


def test_podman_calls_the_runtime_like_runc(podman, kobako) -> None:
    """The exact invocations podman (via conmon) makes, recorded by a wrapper in front of kobako-runtime."""
    wrapper, calls = podman.logging_runtime(kobako)
    proc = run(podman, wrapper, "--rm", "-t", IMAGE, "true")
    assert proc.returncode == 0, proc.stderr

    def calls_so_far() -> tuple[list[list[str]], list[str]]:
        argvs = [line.split("\t")[:-1] for line in calls.read_text().splitlines()]
        return argvs, [next(a for a in argv if a[0] not in "-/") for argv in argvs]  # the verb

    deadline = time.monotonic() + 10  # the final delete may come from conmon's cleanup process
    argvs, verbs = calls_so_far()
    while "delete" not in verbs and time.monotonic() < deadline:
        time.sleep(0.05)
        argvs, verbs = calls_so_far()
    assert verbs[:2] == ["create", "start"] and verbs[-1] == "delete", argvs
    create = argvs[0]
    assert "--systemd-cgroup" not in create  # cgroupfs manager
    assert "--log-format=json" in create  # kobako-runtime is listed in runtime_supports_json
    assert create[create.index("--log") + 1].endswith("/oci-log")
    for flag in ("--bundle", "--pid-file", "--console-socket"):  # -t: the pty master goes to conmon
        assert flag in create, create
