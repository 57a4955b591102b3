"""`kobako run --rm IMAGE /bin/true` against `podman --runtime runc run --rm --network none` (and docker when a
dockerd can be started) on the same busybox image: alternating runs, median of N each, markdown table.

Podman gets isolated storage (kobako.testing.podman), cgroupfs, file events, and the ulimit flags this
host needs. Usage: python benchmarks/engine_run.py [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from kobako.testing.busybox import make_rootfs

KOBAKO = str(Path(sys.executable).parent / "kobako")


def timed(cmd: list[str], env: dict[str, str]) -> float | None:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(
            f"# {cmd[0]} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-300:]}\n"
        )
        return None
    return elapsed


def docker_note() -> str:
    if not shutil.which("dockerd"):
        return "docker: skipped (dockerd is not installed; Debian's docker.io provides it)"
    return "docker: skipped (starting a private dockerd is not automated here yet)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root", file=sys.stderr)
        return 1
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # benchmark the cached-bytecode start, as installed
    with tempfile.TemporaryDirectory(prefix="kobako-bench-engine-") as tmp:
        base = Path(tmp)
        rootfs = Path(make_rootfs(str(base / "rootfs")))
        archive = base / "busybox.tar"
        with tarfile.open(archive, "w") as tar:
            tar.add(str(rootfs), arcname=".")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["KOBAKO_ROOT"] = str(base / "kobako")
        subprocess.run([KOBAKO, "import", str(archive), "busybox"], env=env, check=True, capture_output=True)
        commands: dict[str, tuple[list[str], dict[str, str]]] = {
            "kobako": ([KOBAKO, "run", "--rm", "busybox", "/bin/true"], env),
        }
        podman = None
        if shutil.which("podman") and shutil.which("runc"):
            from kobako.testing.podman import Podman

            podman = Podman(base / "podman")
            podman.import_rootfs(rootfs, "localhost/busybox")
            cmd = [podman.binary, *podman.global_flags, "--runtime", "runc", "run", "--rm", *podman.run_flags(),
                   "localhost/busybox", "/bin/true"]  # fmt: skip
            commands["podman (runc)"] = (cmd, podman.env)
        try:
            for cmd, cenv in commands.values():  # warm caches once, unmeasured
                timed(cmd, cenv)
            samples: dict[str, list[float]] = {name: [] for name in commands}
            for _ in range(args.runs):
                for name, (cmd, cenv) in commands.items():
                    t = timed(cmd, cenv)
                    if t is not None:
                        samples[name].append(t)
        finally:
            left = podman.close() if podman is not None else []
    medians = {name: statistics.median(s) * 1000 for name, s in samples.items() if s}
    base_ms = medians.get("podman (runc)")
    print(f"| engine | median ms ({args.runs} runs) | ratio to podman |")
    print("|---|---|---|")
    for name, ms in medians.items():
        print(f"| {name} | {ms:.1f} | {f'{ms / base_ms:.2f}' if base_ms else 'n/a'} |")
    print(f"\n{docker_note()}")
    if left:
        print(f"\npodman left behind: {left}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
