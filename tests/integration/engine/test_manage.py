"""ps states, rm -f, rename, wait, inspect, cp, top, stats, pause/unpause, prune, OOM, isolation, volumes."""

from __future__ import annotations

import json
import os

import pytest

from .conftest import wait_for

pytestmark = pytest.mark.root


def test_ps_shows_states(kobako) -> None:  # type: ignore[no-untyped-def]
    kobako("create", "--name", "made", "busybox", "true")
    kobako.run_d("--name", "up", "busybox", "sleep", "60")
    kobako("run", "--name", "done", "busybox", "sh", "-c", "exit 4", check=False)
    running = kobako("ps").stdout.splitlines()
    assert running[0].split() == [
        "CONTAINER",
        "ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ]
    assert len(running) == 2 and "Up " in running[1] and running[1].endswith("up")
    rows = {
        json.loads(line)["Names"]: json.loads(line)
        for line in kobako("ps", "-a", "--format", "json").stdout.splitlines()
    }
    assert rows["made"]["State"] == "created" and rows["made"]["Status"] == "Created"
    assert rows["up"]["State"] == "running"
    assert rows["done"]["Status"].startswith("Exited (4) ")
    assert len(kobako("ps", "-aq").stdout.split()) == 3
    assert kobako("ps", "-a", "--filter", "status=exited", "--format", "{{.Names}}").stdout == "done\n"


def test_rm_running_needs_force(kobako) -> None:  # type: ignore[no-untyped-def]
    cid = kobako.run_d("--name", "busy", "busybox", "sleep", "60")
    proc = kobako("rm", "busy", check=False)
    assert proc.returncode == 1 and "force" in proc.stderr
    kobako("rm", "-f", "busy")
    assert kobako("ps", "-aq").stdout == ""
    assert not (kobako.root / "containers" / cid).exists()
    proc = kobako("rm", "busy", check=False)
    assert proc.returncode == 1 and "no such container: busy" in proc.stderr


def test_rename_wait_inspect(kobako) -> None:  # type: ignore[no-untyped-def]
    cid = kobako.run_d(
        "--name", "first", "-l", "team=a", "--memory", "64m", "busybox", "sh", "-c", "sleep 0.5; exit 6"
    )
    kobako("rename", "first", "second")
    assert kobako("inspect", "--format", "{{.Name}}", cid[:10]).stdout == "/second\n"
    assert kobako("wait", "second").stdout == "6\n"
    info = kobako.inspect("second")
    assert info["Id"] == cid and info["Path"] == "sh" and info["Args"] == ["-c", "sleep 0.5; exit 6"]
    state = info["State"]
    assert {k: state[k] for k in ("Status", "Running", "Paused", "Restarting", "OOMKilled", "Dead", "Pid", "ExitCode")} == {
        "Status": "exited", "Running": False, "Paused": False, "Restarting": False, "OOMKilled": False,
        "Dead": False, "Pid": 0, "ExitCode": 6}  # fmt: skip
    assert state["StartedAt"] < state["FinishedAt"]
    assert info["Config"]["Labels"]["team"] == "a" and info["Config"]["Image"] == "busybox"
    assert info["HostConfig"]["Memory"] == 64 << 20 and info["RestartCount"] == 0
    assert info["Image"].startswith("sha256:")
    image = json.loads(kobako("inspect", "busybox").stdout)  # no such container: the image answers
    assert image[0]["Id"].startswith("sha256:")


def test_cp_both_ways_stays_inside(kobako, tmp_path) -> None:  # type: ignore[no-untyped-def]
    kobako.run_d("--name", "cpy", "busybox", "sh", "-c", "mkdir -p /data/sub; echo in > /data/sub/f; "
                 "ln -s /etc /data/etc-link; ln -s ../../../../../../ /data/up; sleep 60")  # fmt: skip
    assert wait_for(lambda: kobako("exec", "cpy", "test", "-e", "/data/up", check=False).returncode == 0)
    kobako("cp", "cpy:/data", str(tmp_path / "out"))
    assert (tmp_path / "out" / "sub" / "f").read_text() == "in\n"
    assert os.readlink(tmp_path / "out" / "etc-link") == "/etc"
    host_file = tmp_path / "host.txt"
    host_file.write_text("from host\n")
    kobako("cp", str(host_file), "cpy:/data/sub/")
    assert kobako("exec", "cpy", "cat", "/data/sub/host.txt").stdout == "from host\n"
    # A symlink climbing out of the rootfs resolves inside it, as under chroot.
    kobako("cp", str(host_file), "cpy:/data/up/escaped.txt")
    assert not os.path.exists("/escaped.txt")
    assert kobako("exec", "cpy", "cat", "/escaped.txt").stdout == "from host\n"
    kobako("stop", "-t", "0", "cpy")
    kobako("cp", "cpy:/data/sub/host.txt", str(tmp_path / "back.txt"))  # a stopped container works too
    assert (tmp_path / "back.txt").read_text() == "from host\n"


def test_top_stats_pause_unpause(kobako) -> None:  # type: ignore[no-untyped-def]
    kobako.run_d("--name", "tp", "--memory", "64m", "busybox", "sh", "-c", "while true; do sleep 0.1; done")
    top = kobako("top", "tp").stdout.splitlines()
    assert "PID" in top[0] and any("while true" in line for line in top[1:])
    stats = kobako("stats", "--no-stream", "tp").stdout.splitlines()
    assert stats[0].split()[:3] == ["CONTAINER", "ID", "NAME"] and "MEM USAGE / LIMIT" in stats[0]
    assert "/ 64MiB" in stats[1] and "tp" in stats[1]
    kobako("pause", "tp")
    assert kobako.status("tp") == "paused" and "(Paused)" in kobako("ps").stdout
    kobako("unpause", "tp")
    assert kobako.status("tp") == "running"
    assert kobako("unpause", "tp", check=False).returncode == 1


def test_memory_limit_oom_is_137(kobako) -> None:  # type: ignore[no-untyped-def]
    proc = kobako(
        "run", "--name", "oom", "--memory", "32m", "busybox", "tail", "/dev/zero", check=False, timeout=120
    )
    assert proc.returncode == 137
    state = kobako.inspect("oom")["State"]
    assert state["OOMKilled"] is True and state["ExitCode"] == 137


def test_writes_are_private_to_the_container(kobako) -> None:  # type: ignore[no-untyped-def]
    kobako("run", "--name", "w1", "busybox", "sh", "-c", "echo x > /etc/written; rm /bin/ls")
    proc = kobako(
        "run", "--rm", "busybox", "sh", "-c", "test ! -e /etc/written && test -e /bin/ls && echo clean"
    )
    assert proc.stdout == "clean\n"
    kobako("start", "-a", "w1", check=False)  # the same container keeps its own writes
    assert kobako("logs", "w1").stderr.count("can't remove") == 1


def test_named_volume_persists(kobako) -> None:  # type: ignore[no-untyped-def]
    kobako("run", "--rm", "-v", "keep:/data", "busybox", "sh", "-c", "echo saved > /data/f")
    assert kobako("run", "--rm", "-v", "keep:/data", "busybox", "cat", "/data/f").stdout == "saved\n"
    kobako("volume", "rm", "keep")


def test_prune_removes_stopped_only(kobako) -> None:  # type: ignore[no-untyped-def]
    kobako.run_d("--name", "live", "busybox", "sleep", "60")
    kobako("run", "--name", "dead", "busybox", "true")
    out = kobako("container", "prune", "-f").stdout
    assert "Deleted Containers:" in out
    assert kobako("ps", "-a", "--format", "{{.Names}}").stdout == "live\n"
