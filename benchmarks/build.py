"""`kobako build` against `buildah bud --layers` on the same 10-step Dockerfile and 2,000-file context.

Both start from the same busybox rootfs (``kobako import`` / ``podman import``). Each round does a cold
build (``--no-cache``: every step runs, the base image is already unpacked) and then a fully cached build,
alternating kobako and buildah; the table shows the median of N rounds and kobako/buildah ratios.
buildah runs with isolated storage (kobako.testing.podman's layout), runc, cgroupfs, network none.
Targets: cached ≤ 0.5x buildah, cold ≤ 1.0x. Usage: python benchmarks/build.py [--runs 5] [--files 2000]
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
BASE = "localhost/busybox:latest"
PATH_ENV = "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DOCKERFILE = f"""\
FROM {BASE}
ENV APP=/app
WORKDIR /app
COPY src/ /app/src/
RUN find /app/src -type f | wc -l > /count
RUN mkdir -p /data && echo one > /data/one
RUN cat /app/src/d0/f0 > /data/first
COPY extra.txt /app/
RUN rm -rf /app/src/d1
CMD ["sh"]
"""


def make_context(path: Path, files: int) -> None:
    per_dir = 50
    for i in range(files):
        d = path / "src" / f"d{i // per_dir}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i % per_dir}").write_text(f"file {i}\n" + "x" * (i % 1000))
    (path / "extra.txt").write_text("extra\n")
    (path / "Dockerfile").write_text(DOCKERFILE)


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(
            f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-600:]}"
        )
    return elapsed


def buildah_bud(podman: object, context: Path, no_cache: bool) -> list[str]:
    pm = podman
    return ["buildah", "--root", str(pm.storage), "--runroot", str(pm.runroot),  # type: ignore[attr-defined]
            "--storage-driver", pm.driver, "bud", "--layers", "--isolation", "oci", "--runtime", "runc",  # type: ignore[attr-defined]
            "--cgroup-manager", "cgroupfs", "--cgroup-parent", pm.cgroup_parent,  # type: ignore[attr-defined]
            "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "--network", "none",
            "--pull=never", *(["--no-cache"] if no_cache else []), "-q", "-t", "localhost/bench:latest",
            str(context)]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--files", type=int, default=2000)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root", file=sys.stderr)
        return 1
    for tool in ("buildah", "podman", "runc"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed", file=sys.stderr)
            return 1
    from kobako.testing.podman import Podman

    with tempfile.TemporaryDirectory(prefix="kobako-bench-build-") as tmp:
        base = Path(tmp)
        rootfs = Path(make_rootfs(str(base / "rootfs")))
        archive = base / "busybox.tar"
        with tarfile.open(archive, "w") as tar:
            tar.add(str(rootfs), arcname=".")
        context = base / "context"
        make_context(context, args.files)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["KOBAKO_ROOT"] = str(base / "kobako")
        subprocess.run([KOBAKO, "import", "--change", 'CMD ["sh"]', "--change", PATH_ENV, str(archive), BASE],
                       env=env, check=True, capture_output=True)  # fmt: skip
        podman = Podman(base / "podman")
        try:
            podman("import", "--change", 'CMD ["sh"]', "--change", PATH_ENV, str(archive), BASE)
            kobako = {
                "cold": [KOBAKO, "build", "--no-cache", "-q", "-t", "bench", str(context)],
                "cached": [KOBAKO, "build", "-q", "-t", "bench", str(context)],
            }
            peer = {"cold": buildah_bud(podman, context, True), "cached": buildah_bud(podman, context, False)}
            timed(kobako["cold"], env)  # warm both once (page cache, bytecode), unmeasured
            timed(peer["cold"], podman.env)
            samples: dict[tuple[str, str], list[float]] = {}
            for _ in range(args.runs):
                for kind in ("cold", "cached"):
                    samples.setdefault(("kobako", kind), []).append(timed(kobako[kind], env))
                    samples.setdefault(("buildah", kind), []).append(timed(peer[kind], podman.env))
        finally:
            left = podman.close()
            if left:
                print(f"# podman/buildah left behind: {left}", file=sys.stderr)
    print(f"10-step build, {args.files}-file context, median of {args.runs} (seconds)\n")
    print("| build | kobako | buildah bud --layers | kobako / buildah | target |")
    print("|---|---|---|---|---|")
    status = 0
    for kind, target in (("cold", 1.0), ("cached", 0.5)):
        k = statistics.median(samples[("kobako", kind)])
        b = statistics.median(samples[("buildah", kind)])
        ratio = k / b
        status |= ratio > target
        print(
            f"| {kind} | {k:.3f} | {b:.3f} | {ratio:.2f}x | ≤ {target:.1f}x {'✓' if ratio <= target else '✗'} |"
        )
    return int(status)


if __name__ == "__main__":
    sys.exit(main())
