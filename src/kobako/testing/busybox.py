"""A tiny busybox rootfs and OCI bundles built from Debian's busybox-static (tests, demo, benchmarks)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

BUSYBOX = "/bin/busybox"


def make_rootfs(path: str) -> str:
    """Populate ``path`` with busybox and its applet links, /etc/passwd and /etc/group."""
    if not os.path.exists(BUSYBOX):
        raise FileNotFoundError(f"{BUSYBOX} is missing: install Debian's busybox-static")
    for d in (
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "etc",
        "proc",
        "sys",
        "dev",
        "tmp",
        "root",
        "home",
        "var",
    ):
        os.makedirs(os.path.join(path, d), exist_ok=True)
    os.chmod(os.path.join(path, "tmp"), 0o1777)
    shutil.copy2(BUSYBOX, os.path.join(path, "bin", "busybox"))
    applets = subprocess.run(
        [BUSYBOX, "--list-full"], capture_output=True, text=True, check=True
    ).stdout.split()
    for applet in applets:
        link = os.path.join(path, applet)
        if applet == "bin/busybox" or os.path.lexists(link):
            continue
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink("/bin/busybox", link)
    with open(os.path.join(path, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n")
    with open(os.path.join(path, "etc", "group"), "w") as f:
        f.write("root:x:0:\ntty:x:5:\nnogroup:x:65534:\n")
    return path


def write_bundle(
    bundle: str, rootfs_src: str | None = None, args: list[str] | None = None, **changes: object
) -> dict:
    """Make ``bundle`` with a rootfs (copied from ``rootfs_src`` or built) and a default, non-tty config.json."""
    from kobako.oci.runtime_spec import default_spec

    os.makedirs(bundle, exist_ok=True)
    rootfs = os.path.join(bundle, "rootfs")
    if rootfs_src:
        subprocess.run(["cp", "-a", rootfs_src, rootfs], check=True)
    else:
        make_rootfs(rootfs)
    spec = default_spec(args=args or ["true"])
    spec["process"]["terminal"] = False
    spec["root"]["readonly"] = False
    for key, value in changes.items():
        spec[key] = value
    save_spec(bundle, spec)
    return spec


def save_spec(bundle: str, spec: dict) -> None:
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f, indent=2)
