"""`make demo`: build a tiny busybox image from Debian's busybox-static and run an isolated container.

Shows what the container sees (PID 1, its own hostname, a handful of capabilities, no_new_privs, masked
/proc paths) next to what the host sees. State lives in a temp dir; nothing is left behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from kobako.testing.busybox import write_bundle
from kobako.testing.runtime_cli import runtime_bin

SCRIPT = r"""
echo "inside:  PID of this shell = $$ (PID 1: its own PID namespace)"
echo "inside:  hostname          = $(hostname)"
echo "inside:  processes visible = $(ls /proc | grep -c '^[0-9]')"
echo "inside:  user              = $(id)"
grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status | sed 's/^/inside:  /'
echo "inside:  /proc/kcore bytes = $(cat /proc/kcore 2>/dev/null | wc -c) (masked)"
{ echo 1 > /proc/sysrq-trigger; } 2>/dev/null && echo "inside:  sysrq: WRITABLE" || echo "inside:  sysrq-trigger     = read-only"
mount -t tmpfs none /mnt 2>/dev/null && echo "inside:  mount: ALLOWED" || echo "inside:  mount             = denied"
"""


def main() -> int:
    if os.geteuid() != 0:
        print("make demo needs root (namespaces, cgroups, mounts)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="kobako-demo-") as tmp:
        bundle = os.path.join(tmp, "bundle")
        write_bundle(bundle, args=["sh", "-c", SCRIPT], hostname="kobako-demo")
        print(f"host:    PID of kobako       = {os.getpid()}, hostname = {os.uname().nodename}")
        print(f"host:    bundle              = {bundle} (busybox rootfs + config.json)")
        print(f"$ kobako-runtime --root {tmp}/state run --bundle {bundle} demo")
        code = subprocess.run([runtime_bin(), "--root", os.path.join(tmp, "state"), "run", "--bundle", bundle, "demo"],
                              check=False).returncode  # fmt: skip
        print(f"container exited with {code}; state, cgroups and mounts are gone")
        return code


if __name__ == "__main__":
    sys.exit(main())
