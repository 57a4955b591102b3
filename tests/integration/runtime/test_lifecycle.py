"""The runc verbs end to end with the real kernel: create/start/state/kill/delete, run, exec, list, ps, pause."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from kobako.testing.runtime_cli import unique

pytestmark = pytest.mark.root


def wait_status(runtime, cid: str, status: str, timeout: float = 10) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        state = runtime.state(cid)
        if state["status"] == status or time.monotonic() > deadline:
            return state
        time.sleep(0.02)


def wait_running(runtime, cid: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 10
    while not (runtime.root / cid / "state.json").exists() or runtime.state(cid)["status"] != "running":
        assert time.monotonic() < deadline, f"{cid} never reached running"
        time.sleep(0.02)


def test_run_foreground_returns_the_exit_code_and_leaves_nothing(runtime, make_bundle) -> None:
    bundle = make_bundle(["sh", "-c", "echo out; echo err >&2; exit 7"])
    cid = unique()
    proc = runtime("run", "--bundle", str(bundle), cid, check=False)
    assert proc.returncode == 7
    assert proc.stdout == "out\n"
    assert "err" in proc.stderr
    assert not (runtime.root / cid).exists()
    assert not Path(f"/sys/fs/cgroup/memory/kobako/{cid}").exists()


def test_run_reports_death_by_signal_as_128_plus_signal(runtime, make_bundle) -> None:
    import subprocess

    bundle = make_bundle(["sleep", "300"])
    cid = unique()
    fg = subprocess.Popen([runtime.binary, "--root", str(runtime.root), "run", "-b", str(bundle), cid],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_running(runtime, cid)
        runtime("kill", cid, "KILL")
        assert fg.wait(timeout=10) == 137
    finally:
        fg.kill()
        fg.wait()
    assert not (runtime.root / cid).exists()


def test_run_forwards_signals_to_the_container(runtime, make_bundle) -> None:
    import signal
    import subprocess

    bundle = make_bundle(["sh", "-c", "trap 'exit 42' TERM; while true; do sleep 0.05; done"])
    cid = unique()
    fg = subprocess.Popen([runtime.binary, "--root", str(runtime.root), "run", "-b", str(bundle), cid],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_running(runtime, cid)
        time.sleep(0.2)  # let the shell install its trap
        fg.send_signal(signal.SIGTERM)
        assert fg.wait(timeout=10) == 42
    finally:
        fg.kill()
        fg.wait()


def test_create_start_state_kill_delete(runtime, make_bundle, tmp_path) -> None:
    bundle = make_bundle(["sleep", "300"])
    cid = unique()
    pid_file = tmp_path / "pid"
    runtime("create", "--bundle", str(bundle), "--pid-file", str(pid_file), cid)
    state = runtime.state(cid)
    assert state["status"] == "created"
    assert state["id"] == cid
    assert state["ociVersion"].startswith("1.")
    assert state["bundle"] == str(bundle)
    assert state["pid"] == int(pid_file.read_text())
    # Created: the init waits at the barrier and has not exec'd yet.
    assert "sleep" not in Path(f"/proc/{state['pid']}/cmdline").read_bytes().decode()
    runtime("start", cid)
    state = wait_status(runtime, cid, "running")
    assert state["status"] == "running"
    assert Path(f"/proc/{state['pid']}/cmdline").read_bytes().split(b"\0")[0] == b"sleep"
    second = runtime("start", cid, check=False)
    assert second.returncode != 0 and "running" in second.stderr
    refused = runtime("delete", cid, check=False)
    assert refused.returncode != 0 and "not stopped" in refused.stderr
    runtime("kill", cid, "KILL")
    state = wait_status(runtime, cid, "stopped")
    assert state["status"] == "stopped"
    assert "pid" not in state
    runtime("delete", cid)
    assert runtime("state", cid, check=False).returncode != 0
    assert not (runtime.root / cid).exists()


@pytest.mark.parametrize("signal", ["TERM", "SIGTERM", "15", "term"])
def test_kill_accepts_names_and_numbers(runtime, make_bundle, signal) -> None:
    bundle = make_bundle(["sh", "-c", "trap 'exit 3' TERM; while true; do sleep 0.1; done"])
    cid = unique()
    runtime("run", "-d", "-b", str(bundle), cid)
    time.sleep(0.2)
    runtime("kill", cid, signal)
    assert wait_status(runtime, cid, "stopped")["status"] == "stopped"


def test_delete_force_stops_a_running_container(runtime, make_bundle) -> None:
    bundle = make_bundle(["sleep", "300"])
    cid = unique()
    runtime("run", "--detach", "--bundle", str(bundle), cid)
    pid = runtime.state(cid)["pid"]
    runtime("delete", "--force", cid)
    assert not (runtime.root / cid).exists()
    assert (
        not Path(f"/proc/{pid}/cmdline").exists() or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    )


def test_list_and_ps(runtime, make_bundle) -> None:
    bundle = make_bundle(["sh", "-c", "sleep 300 & sleep 300 & wait"])
    cid = unique()
    runtime("run", "-d", "-b", str(bundle), cid)
    time.sleep(0.3)
    listed = json.loads(runtime("list", "--format", "json").stdout)
    assert [c["id"] for c in listed] == [cid]
    assert listed[0]["status"] == "running"
    table = runtime("list").stdout.splitlines()
    assert table[0].split()[:3] == ["ID", "PID", "STATUS"]
    assert table[1].split()[0] == cid
    assert runtime("list", "-q").stdout.split() == [cid]
    pids = json.loads(runtime("ps", "--format", "json", cid).stdout)
    assert runtime.state(cid)["pid"] in pids
    assert len(pids) == 3  # sh, and two sleeps
    ps_table = runtime("ps", cid).stdout.splitlines()
    assert "PID" in ps_table[0] and len(ps_table) == 4


def test_pause_and_resume_freeze_the_processes(runtime, make_bundle) -> None:
    bundle = make_bundle(["sleep", "300"])
    cid = unique()
    runtime("run", "-d", "-b", str(bundle), cid)
    runtime("pause", cid)
    assert runtime.state(cid)["status"] == "paused"
    freezer = Path(f"/sys/fs/cgroup/freezer/kobako/{cid}/freezer.state")
    assert freezer.read_text().strip() == "FROZEN"
    assert runtime("pause", cid, check=False).returncode != 0
    runtime("resume", cid)
    assert runtime.state(cid)["status"] == "running"
    assert freezer.read_text().strip() == "THAWED"
    assert runtime("resume", cid, check=False).returncode != 0


def test_exec_runs_in_the_container_namespaces(runtime, make_bundle, tmp_path) -> None:
    def edit(spec: dict) -> None:
        spec["hostname"] = "exec-box"

    bundle = make_bundle(["sleep", "300"], edit)
    cid = unique()
    runtime("run", "-d", "-b", str(bundle), cid)
    out = runtime("exec", cid, "sh", "-c", "hostname; echo $$; cat /proc/1/cmdline")
    hostname, pid, cmdline = out.stdout.split("\n", 2)
    assert hostname == "exec-box"
    assert int(pid) > 1
    assert cmdline.startswith("sleep")
    assert runtime("exec", cid, "sh", "-c", "exit 5", check=False).returncode == 5
    process = tmp_path / "process.json"
    process.write_text(json.dumps({"args": ["sh", "-c", "echo $FOO; id -u"], "env": ["FOO=bar"], "cwd": "/tmp",
                                   "user": {"uid": 65534, "gid": 65534}}))  # fmt: skip
    out = runtime("exec", "--process", str(process), cid)
    assert out.stdout.split() == ["bar", "65534"]
    missing = runtime("exec", cid, "no-such-program", check=False)
    assert missing.returncode != 0 and "no-such-program" in missing.stderr


def test_exec_detach_writes_a_pid_file(runtime, make_bundle, tmp_path) -> None:
    bundle = make_bundle(["sleep", "300"])
    cid = unique()
    runtime("run", "-d", "-b", str(bundle), cid)
    pid_file = tmp_path / "exec.pid"
    runtime("exec", "--detach", "--pid-file", str(pid_file), cid, "sleep", "200")
    pid = int(pid_file.read_text())
    assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:2] == [b"sleep", b"200"]
    assert pid in json.loads(runtime("ps", "-f", "json", cid).stdout)


def test_events_stats_reports_cgroup_usage(runtime, make_bundle) -> None:
    bundle = make_bundle(["sleep", "300"])
    cid = unique()
    runtime("run", "-d", "-b", str(bundle), cid)
    event = json.loads(runtime("events", "--stats", cid).stdout)
    assert event["type"] == "stats" and event["id"] == cid
    assert event["data"]["pids"]["current"] >= 1
    assert event["data"]["memory"]["usage"]["usage"] > 0


def test_spec_writes_a_valid_default_config(runtime, tmp_path) -> None:
    runtime("spec", "--bundle", str(tmp_path))
    spec = json.loads((tmp_path / "config.json").read_text())
    assert spec["process"]["capabilities"]["bounding"] == [
        "CAP_AUDIT_WRITE",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
    ]
    assert {ns["type"] for ns in spec["linux"]["namespaces"]} == {
        "pid",
        "network",
        "ipc",
        "uts",
        "mount",
        "cgroup",
    }
    again = runtime("spec", "--bundle", str(tmp_path), check=False)
    assert again.returncode != 0 and "exists" in again.stderr
    rootless = tmp_path / "rootless"
    rootless.mkdir()
    runtime("spec", "--rootless", "--bundle", str(rootless))
    assert (
        json.loads((rootless / "config.json").read_text())["linux"]["uidMappings"][0]["hostID"]
        == os.geteuid()
    )


def test_features_and_version(runtime) -> None:
    features = json.loads(runtime("features").stdout)
    assert "user" in features["linux"]["namespaces"]
    assert features["linux"]["seccomp"]["enabled"] is True
    assert "CAP_SYS_ADMIN" in features["linux"]["capabilities"]
    assert "kobako-runtime version" in runtime("--version").stdout


def test_run_in_the_foreground_relays_a_terminal(runtime, make_bundle) -> None:
    import subprocess

    def edit(spec: dict) -> None:
        spec["process"]["terminal"] = True

    bundle = make_bundle(["sh", "-c", "tty; read line; echo got:$line; exit 3"], edit)
    master, slave = os.openpty()
    proc = subprocess.Popen([runtime.binary, "--root", str(runtime.root), "run", "-b", str(bundle), unique()],
                            stdin=slave, stdout=slave, stderr=slave, start_new_session=True)  # fmt: skip
    os.close(slave)
    try:
        data = b""
        deadline = time.monotonic() + 10
        while b"/dev/pts/" not in data and time.monotonic() < deadline:
            data += os.read(master, 1024)
        os.write(master, b"hello\n")
        while b"got:hello" not in data and time.monotonic() < deadline:
            try:
                data += os.read(master, 1024)
            except OSError:
                break
        assert b"got:hello" in data
        assert proc.wait(timeout=10) == 3
    finally:
        proc.kill()
        proc.wait()
        os.close(master)
