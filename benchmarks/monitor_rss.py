"""Resident memory of the per-container monitor (kobako's conmon) while its container runs, next to conmon's
under podman when podman is installed. VmRSS from /proc/PID/status. Usage: python benchmarks/monitor_rss.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from kobako.testing.busybox import make_rootfs

KOBAKO = str(Path(sys.executable).parent / "kobako")


def memory(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                out[key] = int(value.split()[0])
    return out


def kobako_monitor(base: Path, archive: Path, extra: list[str]) -> dict[str, int]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["KOBAKO_ROOT"] = str(base)
    # --network none: like conmon's container here, and nothing made in the host's network namespace.
    extra = ["--network", "none", *extra]
    run = [KOBAKO, "run", "-d", *extra, "busybox", "sh", "-c", "while true; do echo tick; sleep 0.05; done"]
    subprocess.run([KOBAKO, "import", str(archive), "busybox"], env=env, check=True, capture_output=True)
    # Steady state: the first container of a fresh root also unpacks the image and compiles the seccomp
    # filter (cached after), which a monitor does once per state root.
    subprocess.run(
        [KOBAKO, "run", "--rm", *extra, "busybox", "true"], env=env, check=True, capture_output=True
    )
    cid = subprocess.run(run, env=env, check=True, capture_output=True, text=True).stdout.strip()
    try:
        time.sleep(1.5)  # some output logged, health checks run
        state = json.loads((base / "containers" / cid / "state.json").read_text())
        return memory(state["monitor_pid"])
    finally:
        subprocess.run([KOBAKO, "rm", "-f", cid], env=env, check=False, capture_output=True)


def conmon(base: Path, rootfs: Path) -> dict[str, int] | None:
    if not (shutil.which("podman") and shutil.which("conmon")):
        return None
    from kobako.testing.podman import Podman

    podman = Podman(base)
    try:
        podman.import_rootfs(rootfs, "localhost/busybox")
        podman("--runtime", "runc", "run", "-d", "--name", "rss", *podman.run_flags(), "localhost/busybox", "sh", "-c",
               "while true; do echo tick; sleep 0.05; done")  # fmt: skip
        time.sleep(1.5)
        pid = int(podman("inspect", "--format", "{{.State.ConmonPid}}", "rss").stdout.strip())
        return memory(pid)
    finally:
        podman.close()


def main() -> int:
    if os.geteuid() != 0:
        print("needs root", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="kobako-bench-rss-") as tmp:
        base = Path(tmp)
        rootfs = Path(make_rootfs(str(base / "rootfs")))
        archive = base / "busybox.tar"
        with tarfile.open(archive, "w") as tar:
            tar.add(str(rootfs), arcname=".")
        rows = {
            "kobako monitor": kobako_monitor(base / "k1", archive, []),
            "kobako monitor + health checks": kobako_monitor(
                base / "k2", archive, ["--health-cmd", "true", "--health-interval", "0.1s"]
            ),
        }
        other = conmon(base / "podman", rootfs)
        if other is not None:
            rows["conmon (podman)"] = other
    print("| process | VmRSS KiB | RssAnon KiB | RssFile KiB |")
    print("|---|---|---|---|")
    for name, mem in rows.items():
        print(f"| {name} | {mem.get('VmRSS', 0)} | {mem.get('RssAnon', 0)} | {mem.get('RssFile', 0)} |")
    print("\ntarget: the kobako monitor at or under 15 MB (15360 KiB) VmRSS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
