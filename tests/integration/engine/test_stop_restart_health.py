"""Stopping with the image's StopSignal, kill, restart policies with back-off, health checks."""

from __future__ import annotations

import itertools
import time

import pytest

from kobako.engine import clock

from .conftest import wait_for

pytestmark = pytest.mark.root

TRAP_USR1 = (
    "trap 'echo usr1 > /tmp/marker; echo caught; exit 0' USR1; echo ready; while true; do sleep 0.1; done"
)


def test_stop_uses_the_image_stop_signal(kobako, busybox_tar) -> None:  # type: ignore[no-untyped-def]
    kobako("import", "--change", "STOPSIGNAL SIGUSR1", str(busybox_tar), "usr1box")
    kobako.run_d("--name", "trap", "usr1box", "sh", "-c", TRAP_USR1)
    assert wait_for(lambda: "ready" in kobako("logs", "trap").stdout)
    assert kobako.inspect("trap")["Config"]["StopSignal"] == "SIGUSR1"
    start = time.monotonic()
    kobako("stop", "-t", "20", "trap")
    assert time.monotonic() - start < 10  # the trap ran: no wait for the SIGKILL
    state = kobako.inspect("trap")["State"]
    assert (state["Status"], state["ExitCode"]) == ("exited", 0)
    assert kobako("logs", "trap").stdout == "ready\ncaught\n"
    kobako("cp", "trap:/tmp/marker", str(kobako.root / "marker"))
    assert (kobako.root / "marker").read_text() == "usr1\n"


def test_stop_kills_after_the_timeout(kobako) -> None:  # type: ignore[no-untyped-def]
    kobako.run_d("--name", "stubborn", "busybox", "sh", "-c", "trap '' TERM; while true; do sleep 0.1; done")
    start = time.monotonic()
    kobako("stop", "-t", "1", "stubborn")
    assert 0.9 < time.monotonic() - start < 8
    assert kobako.inspect("stubborn")["State"]["ExitCode"] == 137


def test_kill_with_signal(kobako) -> None:  # type: ignore[no-untyped-def]
    kobako.run_d("--name", "k1", "busybox", "sh", "-c", "trap 'exit 42' HUP; while true; do sleep 0.1; done")
    time.sleep(0.3)
    kobako("kill", "-s", "HUP", "k1")
    assert kobako("wait", "k1").stdout.strip() == "42"
    proc = kobako("kill", "k1", check=False)
    assert proc.returncode == 1 and "is not running" in proc.stderr


def test_on_failure_restarts_with_growing_backoff(kobako) -> None:  # type: ignore[no-untyped-def]
    kobako.run_d(
        "--name",
        "crash",
        "--restart",
        "on-failure:3",
        "busybox",
        "sh",
        "-c",
        "cut -d' ' -f1 /proc/uptime >> /tmp/t; exit 3",
    )
    assert wait_for(lambda: kobako.status("crash") == "exited", timeout=30)
    info = kobako.inspect("crash")
    assert info["RestartCount"] == 3 and info["State"]["ExitCode"] == 3
    kobako("cp", "crash:/tmp/t", str(kobako.root / "t"))
    starts = [float(x) for x in (kobako.root / "t").read_text().split()]
    assert len(starts) == 4  # the first run and three restarts, all in the same rootfs
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4 and gaps[2] >= 0.8  # 0.2 s doubling (KOBAKO_RESTART_BACKOFF)
    assert gaps[2] > gaps[0]


def test_always_restarts_until_stopped(kobako) -> None:  # type: ignore[no-untyped-def]
    kobako.run_d("--name", "again", "--restart", "always", "busybox", "sh", "-c", "sleep 0.2")
    assert wait_for(lambda: kobako.inspect("again")["RestartCount"] >= 2, timeout=30)
    assert "Restarting" in kobako("ps").stdout or "Up" in kobako("ps").stdout
    kobako("stop", "again")
    count = kobako.inspect("again")["RestartCount"]
    time.sleep(1.5)
    info = kobako.inspect("again")
    assert info["State"]["Status"] == "exited" and info["RestartCount"] == count


def test_restart_verb(kobako) -> None:  # type: ignore[no-untyped-def]
    kobako.run_d("--name", "rs", "busybox", "sleep", "60")
    first = kobako.inspect("rs")["State"]["StartedAt"]
    kobako("restart", "-t", "0", "rs")
    state = kobako.inspect("rs")["State"]
    assert state["Status"] == "running" and clock.parse(state["StartedAt"]) > clock.parse(first)


def test_health_becomes_healthy_then_unhealthy(kobako) -> None:  # type: ignore[no-untyped-def]
    kobako.run_d("--name", "hc", "--health-cmd", "test ! -e /tmp/broken", "--health-interval", "0.2s",
                 "--health-retries", "2", "busybox", "sleep", "60")  # fmt: skip
    assert kobako.inspect("hc")["State"]["Health"]["Status"] == "starting"
    assert "(health: starting)" in kobako("ps").stdout
    assert wait_for(lambda: kobako.inspect("hc")["State"]["Health"]["Status"] == "healthy")
    assert "(healthy)" in kobako("ps").stdout
    kobako("exec", "hc", "touch", "/tmp/broken")
    assert wait_for(lambda: kobako.inspect("hc")["State"]["Health"]["Status"] == "unhealthy")
    health = kobako.inspect("hc")["State"]["Health"]
    assert health["FailingStreak"] >= 2 and len(health["Log"]) <= 5
    assert health["Log"][-1]["ExitCode"] == 1
    assert "(unhealthy)" in kobako("ps").stdout


def test_health_check_from_the_image_and_its_output(kobako) -> None:  # type: ignore[no-untyped-def]
    kobako.run_d("--name", "hc2", "--health-cmd", "echo checked; exit 0", "--health-interval", "0.2s", "busybox",
                 "sleep", "60")  # fmt: skip
    assert wait_for(lambda: kobako.inspect("hc2")["State"]["Health"]["Log"])
    assert kobako.inspect("hc2")["State"]["Health"]["Log"][0]["Output"] == "checked\n"
