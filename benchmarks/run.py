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
    "api.py",
]


def main() -> int:
    # Benchmarks that want networking make their own network namespaces; the rest run without one, and
    # bytecode is cached as it is for users.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.setdefault("KOBAKO_DEFAULT_NETWORK", "none")
    status = 0
    for name in BENCHMARKS:
        print(f"\n## {name}\n", flush=True)
        status |= subprocess.run([sys.executable, os.path.join(HERE, name)], env=env, check=False).returncode
    return status


if __name__ == "__main__":
    sys.exit(main())
