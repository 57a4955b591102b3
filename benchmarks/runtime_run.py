"""`run` of /bin/true (create → start → wait → delete): kobako-runtime against runc (and crun where it runs).

Same bundle, alternating runs, median of N each. Prints a markdown table with the ratios.
Usage: python benchmarks/runtime_run.py [--runs 30]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from kobako.testing.busybox import write_bundle
from kobako.testing.runtime_cli import runtime_bin


def runtimes() -> dict[str, list[str]]:
    found = {"kobako-runtime": [runtime_bin()]}
    for name in ("runc", "crun"):
        path = shutil.which(name)
        if path:
            found[name] = [path]
    return found


def time_run(cmd: list[str], root: str, bundle: str, cid: str) -> float | None:
    start = time.perf_counter()
    proc = subprocess.run([*cmd, "--root", root, "run", "--bundle", bundle, cid], capture_output=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        subprocess.run([*cmd, "--root", root, "delete", "--force", cid], capture_output=True)
        return None
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="kobako-bench-") as tmp:
        bundle = os.path.join(tmp, "bundle")
        write_bundle(bundle, args=["/bin/true"])
        candidates = runtimes()
        usable: dict[str, list[str]] = {}
        for name, cmd in candidates.items():
            if time_run(cmd, os.path.join(tmp, name), bundle, "probe") is None:
                print(f"# {name}: cannot run on this host, skipped", file=sys.stderr)
            else:
                usable[name] = cmd
        samples: dict[str, list[float]] = {name: [] for name in usable}
        for i in range(args.runs):
            for name, cmd in usable.items():
                t = time_run(cmd, os.path.join(tmp, name), bundle, f"b{i}")
                if t is not None:
                    samples[name].append(t)
    medians = {name: statistics.median(s) * 1000 for name, s in samples.items() if s}
    base = medians.get("runc")
    print(f"| runtime | median ms ({args.runs} runs) | ratio to runc |")
    print("|---|---|---|")
    for name, ms in medians.items():
        ratio = f"{ms / base:.2f}" if base else "n/a"
        print(f"| {name} | {ms:.1f} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
