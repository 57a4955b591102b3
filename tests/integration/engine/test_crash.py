"""Crash safety: kill -9 of the CLI while it starts a container, and of the monitor while it runs."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from .conftest import KOBAKO, check_clean, wait_for

pytestmark = pytest.mark.root


def _monitor_pid(kobako, ref: str) -> int:  # type: ignore[no-untyped-def]
    import json

    cid = kobako.inspect(ref)["Id"]
    pid = json.loads((kobako.root / "containers" / cid / "state.json").read_text())["monitor_pid"]
    assert pid > 1, "no monitor recorded"  # never os.kill(0, ...): that is our own process group
    return pid


def test_kill_9_of_the_monitor_keeps_ps_true(kobako) -> None:  # type: ignore[no-untyped-def]
    kobako.run_d("--name", "orphan", "busybox", "sh", "-c", "sleep 1.5")
    os.kill(_monitor_pid(kobako, "orphan"), signal.SIGKILL)
    time.sleep(0.2)
    assert kobako.status("orphan") == "running"  # the container outlives its monitor
    assert "Up " in kobako("ps").stdout
    assert wait_for(lambda: kobako.status("orphan") == "exited", timeout=10)
    assert kobako.inspect("orphan")["State"]["ExitCode"] == -1  # nobody saw it exit
    assert "Exited (-1)" in kobako("ps", "-a").stdout
    kobako("rm", "orphan")
    kobako("run", "--rm", "--name", "orphan", "busybox", "true")  # the name is reusable


def test_kill_9_of_the_monitor_then_rm_f(kobako) -> None:  # type: ignore[no-untyped-def]
    cid = kobako.run_d("--name", "doomed", "busybox", "sleep", "60")
    os.kill(_monitor_pid(kobako, "doomed"), signal.SIGKILL)
    assert kobako.status("doomed") == "running"
    kobako("stop", "-t", "1", "doomed")
    assert kobako.status("doomed") == "exited"
    kobako("start", "doomed")  # a new monitor takes over
    assert kobako.status("doomed") == "running"
    os.kill(_monitor_pid(kobako, "doomed"), signal.SIGKILL)
    kobako("rm", "-f", "doomed")
    assert kobako.ids() == [] and check_clean(kobako.root, [cid]) == []


@pytest.mark.parametrize("delay", [0.0, 0.01, 0.03, 0.06, 0.1])
def test_kill_9_of_run_d_while_starting(kobako, delay: float) -> None:  # type: ignore[no-untyped-def]
    proc = subprocess.Popen([KOBAKO, "run", "-d", "--name", "racy", "busybox", "sleep", "60"], env=kobako.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    time.sleep(delay)
    proc.kill()
    proc.wait()
    ids = kobako.ids()
    ps = kobako("ps", "-a", "--format", "{{.Names}} {{.State}}").stdout
    assert ps in ("", "racy created\n", "racy running\n", "racy exited\n"), ps
    kobako("rm", "-f", "racy", check=False)
    kobako("container", "prune", "-f")
    assert kobako.ids() == [] and check_clean(kobako.root, ids) == []
    # The command can be repeated with the same name.
    kobako("run", "-d", "--name", "racy", "busybox", "sleep", "60")
    kobako("rm", "-f", "racy")
