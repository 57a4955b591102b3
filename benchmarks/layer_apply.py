"""Layer apply throughput: kobako's apply_layer against GNU ``tar -xzf`` on the same ~200 MB gzip layer.

The layer is made in a temp dir: many small files (most 0.5-16 KiB, a few larger), half random and half text so
that gzip halves them, packed with GNU tar. Each tool extracts it into a fresh directory three times, the two
alternating; the median times and the throughput ratio (tar time / kobako time, higher is better) are printed.

    .venv/bin/python benchmarks/layer_apply.py [--size-mb 200] [--runs 3] [--keep DIR] [--dest-dir DIR]

Where the files land matters more than the extractor: on this project's VMs the big root ext4 spends ~0.5 ms
of kernel time per file created across many directories (both tools alike), so also try a tmpfs or a fresh
loop-mounted ext4 as ``--dest-dir`` to compare the extractors themselves.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

WORDS = b"layer overlay snapshot content digest manifest config rootfs whiteout opaque kobako box".split()


def make_tree(root: str, target_gz_bytes: int) -> int:
    """Write files until their estimated compressed size reaches the target; return the file count."""
    rng = random.Random(42)
    written = count = 0
    while written < target_gz_bytes * 1.7:  # the text half compresses well, the random half not at all
        d = os.path.join(root, f"pkg{count // 400:04d}", f"mod{count % 400 // 40:02d}")
        os.makedirs(d, exist_ok=True)
        size = int(min(rng.lognormvariate(8.3, 1.0), 1 << 20))
        half = size // 2
        text = b" ".join(rng.choice(WORDS) for _ in range(half // 7 + 1))[:half]
        with open(os.path.join(d, f"file{count:06d}.dat"), "wb") as f:
            f.write(rng.randbytes(size - half) + text)
        written += size
        count += 1
    return count


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", help="reuse/keep the layer in this directory")
    parser.add_argument("--dest-dir", help="extract below this directory (default: next to the layer)")
    args = parser.parse_args()

    from kobako.archive.tar import apply_layer

    work = args.keep or tempfile.mkdtemp(prefix="kobako-bench-")
    os.makedirs(work, exist_ok=True)
    layer = os.path.join(work, "layer.tar.gz")
    try:
        if not os.path.exists(layer):
            src = os.path.join(work, "src")
            os.makedirs(src)
            files = make_tree(src, args.size_mb << 20)
            subprocess.run(["tar", "-C", src, "-czf", layer, "."], check=True)
            shutil.rmtree(src)
            print(f"made {layer}: {files} files")
        gz = os.path.getsize(layer)
        print(f"layer: {gz / 1e6:.1f} MB gzip")

        dest_base = args.dest_dir or work

        def fresh(name: str) -> str:
            path = os.path.join(dest_base, name)
            shutil.rmtree(path, ignore_errors=True)
            os.mkdir(path)
            subprocess.run(["sync"], check=True)
            return path

        def run_tar() -> None:
            subprocess.run(["tar", "-xzf", layer, "-C", dest], check=True)

        def run_kobako() -> None:
            with open(layer, "rb") as f:
                apply_layer(f, dest)

        times: dict[str, list[float]] = {"tar": [], "kobako": []}
        for _ in range(args.runs):
            for name, fn in (("tar", run_tar), ("kobako", run_kobako)):
                dest = fresh("out-" + name)
                times[name].append(timed(fn))
        tar_t, kob_t = statistics.median(times["tar"]), statistics.median(times["kobako"])
        for name, ts in times.items():
            print(f"{name:7s} runs: " + ", ".join(f"{t:.2f}s" for t in ts))
        print(f"tar -xzf median {tar_t:.2f}s ({gz / tar_t / 1e6:.0f} MB/s compressed)")
        print(f"kobako   median {kob_t:.2f}s ({gz / kob_t / 1e6:.0f} MB/s compressed)")
        print(f"throughput ratio kobako/tar = {tar_t / kob_t:.2f} (target >= 0.80)")
    finally:
        for name in ("out-tar", "out-kobako"):
            shutil.rmtree(os.path.join(args.dest_dir or work, name), ignore_errors=True)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
