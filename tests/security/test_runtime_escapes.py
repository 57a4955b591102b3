"""Escape attempts from inside a container made from the default spec: each must fail."""

from __future__ import annotations

import subprocess
import time

import pytest

from kobako.testing.runtime_cli import unique

pytestmark = pytest.mark.root


def attempt(runtime, make_bundle, script: str) -> str:  # type: ignore[no-untyped-def]
    bundle = make_bundle(["sh", "-c", script])
    return runtime("run", "-b", str(bundle), unique(), check=False).stdout


def test_cannot_write_sysrq_trigger(runtime, make_bundle) -> None:
    assert (
        attempt(runtime, make_bundle, "echo h > /proc/sysrq-trigger && echo ESCAPED || echo denied").strip()
        == "denied"
    )


def test_cannot_mount(runtime, make_bundle) -> None:
    out = attempt(runtime, make_bundle, "mkdir -p /tmp/m; mount -t tmpfs none /tmp/m && echo ESCAPED || echo denied; "
                  "mount --bind / /tmp/m && echo ESCAPED || echo denied")  # fmt: skip
    assert out.split() == ["denied", "denied"]


def test_cannot_load_a_kernel_module(runtime, make_bundle) -> None:
    out = attempt(
        runtime,
        make_bundle,
        "echo junk > /tmp/evil.ko; insmod /tmp/evil.ko 2>&1; echo rc=$?; grep CapBnd /proc/self/status",
    )
    assert "rc=0" not in out
    # Refused for want of CAP_SYS_MODULE (bit 16), which the bounding set no longer holds
    # (a kernel without module support refuses with ENOSYS first).
    assert "not permitted" in out.lower() or "not support" in out.lower()
    assert not int(out.split("CapBnd:")[1].split()[0], 16) & (1 << 16)


def test_cannot_see_host_pids(runtime, make_bundle) -> None:
    host = subprocess.Popen(["sleep", "30"])
    try:
        out = attempt(
            runtime, make_bundle, f"ls /proc; kill -0 {host.pid} 2>&1 && echo ESCAPED || echo denied"
        )
        assert str(host.pid) not in out.split()[:-1]
        assert out.split()[-1] == "denied"
    finally:
        host.kill()
        host.wait()


def test_cannot_write_sys(runtime, make_bundle) -> None:
    out = attempt(runtime, make_bundle, "echo 1 > /sys/kernel/profiling 2>&1 && echo ESCAPED || echo denied")
    assert out.split()[-1] == "denied"


def test_cannot_write_a_cgroup_release_agent(runtime, make_bundle) -> None:
    out = attempt(
        runtime,
        make_bundle,
        "for f in /sys/fs/cgroup/*/release_agent /sys/fs/cgroup/*/notify_on_release; do "
        "  [ -e $f ] && { echo /evil > $f && echo ESCAPED || echo denied; }; done; "
        "mkdir -p /tmp/cg; mount -t cgroup -o memory cgroup /tmp/cg && echo ESCAPED || echo denied",
    )
    assert "ESCAPED" not in out
    assert out.split()[-1] == "denied"


def test_cannot_open_the_runtime_exe_during_exec(runtime, make_bundle) -> None:
    # Inside: a loop that tries to open for writing the exe of every process it can see. The runtime's
    # processes that join the container are non-dumpable, so their /proc/PID/exe stays out of reach.
    watcher = (
        "while true; do "
        "for p in /proc/[0-9]*; do [ $p = /proc/$$ ] && continue; [ $p = /proc/1 ] && continue; "
        "( exec 3>>$p/exe ) 2>/dev/null && echo OPENED $(readlink $p/exe) >> /tmp/opened; done; done"
    )
    bundle = make_bundle(["sh", "-c", watcher])
    cid = unique()
    runtime("run", "-d", "-b", str(bundle), cid)
    for _ in range(15):
        runtime("exec", cid, "true")
    time.sleep(0.1)
    opened = runtime("exec", cid, "sh", "-c", "cat /tmp/opened 2>/dev/null; true").stdout
    assert "python" not in opened and "kobako" not in opened, opened
