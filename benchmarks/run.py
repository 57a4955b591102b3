"""`make bench`: run every benchmark and print its table (each also runs alone)."""

from __future__ import annotations

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BENCHMARKS = [
    "runtime_run.py",
    "engine_run.py",
    "monitor_rss.py",
    "layer_apply.py",
    "registry_transfer.py",
    "build.py",
    "network.py",
]


def main() -> int:
    status = 0
    for name in BENCHMARKS:
        print(f"\n## {name}\n", flush=True)
        status |= subprocess.run([sys.executable, os.path.join(HERE, name)], check=False).returncode
    return status


if __name__ == "__main__":
    sys.exit(main())
