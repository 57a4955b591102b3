"""Detached containers: logs (-f, --tail, -t, rotation) and exec (output, exit codes, -e/-u/-w/-d/-i/-t)."""

from __future__ import annotations

import json
import subprocess

import pytest

from .conftest import KOBAKO, wait_for

pytestmark = pytest.mark.root


def test_detached_logs_tail_and_timestamps(kobako) -> None:  # type: ignore[no-untyped-def]
    kobako.run_d(
        "--name", "lg", "busybox", "sh", "-c", "for i in 1 2 3 4 5; do echo out$i; done; echo bad >&2"
    )
    assert kobako("wait", "lg").stdout.strip() == "0"
    logs = kobako("logs", "lg")
    assert logs.stdout == "out1\nout2\nout3\nout4\nout5\n"
    assert logs.stderr == "bad\n"
    assert kobako("logs", "--tail", "2", "lg").stdout == "out5\n"  # the last two lines: out5 and (stderr) bad
    stamped = kobako("logs", "-t", "--tail", "1", "lg").stderr
    stamp, _, text = stamped.partition(" ")
    assert text == "bad\n" and stamp.endswith("Z") and len(stamp) == 30
    raw = (kobako.root / "containers" / kobako.inspect("lg")["Id"] / "ctr.log").read_text().splitlines()
    first = json.loads(raw[0])
    assert first["log"] == "out1\n" and first["stream"] == "stdout" and first["time"].endswith("Z")


def test_logs_follow_streams_until_exit(kobako) -> None:  # type: ignore[no-untyped-def]
    kobako.run_d("--name", "fl", "busybox", "sh", "-c", "echo a; sleep 1; echo b; sleep 0.5; echo c")
    proc = kobako("logs", "-f", "fl", timeout=20)
    assert proc.stdout == "a\nb\nc\n"


def test_logs_rotate_by_size(kobako) -> None:  # type: ignore[no-untyped-def]
    proc = kobako("run", "--name", "big", "busybox", "sh", "-c", "for i in $(seq 1 400); do echo line$i; done",
                  env={"KOBAKO_LOG_MAX_SIZE": "4096"})  # fmt: skip
    assert proc.returncode == 0
    cdir = kobako.root / "containers" / kobako.inspect("big")["Id"]
    assert (cdir / "ctr.log.1").exists()
    assert (cdir / "ctr.log").stat().st_size < 4096 + 200
    assert not (cdir / "ctr.log.2").exists()
    tail = kobako("logs", "--tail", "3", "big").stdout
    assert tail == "line398\nline399\nline400\n"


def test_exec_output_exit_code_and_flags(kobako) -> None:  # type: ignore[no-untyped-def]
    kobako.run_d("--name", "ex", "-e", "BASE=1", "busybox", "sleep", "60")
    proc = kobako("exec", "ex", "sh", "-c", "echo hi; echo oops >&2; exit 9", check=False)
    assert (proc.returncode, proc.stdout, proc.stderr) == (9, "hi\n", "oops\n")
    proc = kobako(
        "exec", "-e", "X=2", "-u", "nobody", "-w", "/tmp", "ex", "sh", "-c", 'echo "$BASE$X $(id -u) $(pwd)"'
    )
    assert proc.stdout == "12 65534 /tmp\n"
    assert kobako("exec", "ex", "/no/such", check=False).returncode == 127
    assert kobako("exec", "-i", "ex", "cat", input=b"piped\n").stdout == "piped\n"
    tty = kobako("exec", "-t", "ex", "sh", "-c", "tty; exit 3", check=False)
    assert tty.returncode == 3 and "/dev/pts/" in tty.stdout
    kobako("exec", "-d", "ex", "sh", "-c", "echo detached > /tmp/marker")
    assert wait_for(lambda: kobako("exec", "ex", "cat", "/tmp/marker", check=False).stdout == "detached\n")


def test_exec_in_stopped_container_fails(kobako) -> None:  # type: ignore[no-untyped-def]
    kobako("run", "--name", "st", "busybox", "true")
    proc = kobako("exec", "st", "true", check=False)
    assert proc.returncode != 0 and "not running" in proc.stderr


def test_foreground_signal_is_forwarded(kobako) -> None:  # type: ignore[no-untyped-def]
    env = dict(kobako.env)
    proc = subprocess.Popen([KOBAKO, "run", "--rm", "busybox", "sh", "-c", "trap 'echo got; exit 4' TERM; "
                             "echo ready; while true; do sleep 0.1; done"], stdout=subprocess.PIPE, env=env)  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    proc.terminate()
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 4 and out == b"got\n"


def test_no_signal_is_ignored_in_the_container_or_exec(kobako) -> None:  # type: ignore[no-untyped-def]
    # Python ignores SIGPIPE (and the monitor handles HUP/INT/TERM); an ignored signal would survive execve.
    def ignored(text: str) -> str:
        return next(line.split()[1] for line in text.splitlines() if line.startswith("SigIgn:"))

    assert ignored(kobako("run", "--rm", "busybox", "cat", "/proc/self/status").stdout) == "0" * 16
    kobako.run_d("--name", "sigs", "busybox", "sleep", "60")
    assert ignored(kobako("exec", "sigs", "cat", "/proc/self/status").stdout) == "0" * 16
