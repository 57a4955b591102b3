"""Engine networking end to end: `kobako` itself run inside a network namespace the test made.

Each test gets its own namespace (``ip netns add``) and KOBAKO_ROOT; every `kobako` command runs under
``nsenter --net=/run/netns/NAME`` (not ``ip netns exec``: that also makes a fresh mount namespace per
command, so the rootfs and netns bind mounts one command makes would be invisible to the next). Bridges,
veths and the nftables table live in that namespace; traffic stays between the test's containers and the
namespace's loopback. Teardown removes the containers, checks nothing is left, and deletes the namespace.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kobako.testing.runtime_cli import unique

KOBAKO = str(Path(sys.executable).parent / "kobako")


class NetKobako:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.ns = unique("kbeng")
        subprocess.run(["ip", "netns", "add", self.ns], check=True)
        self.path = f"/run/netns/{self.ns}"
        self.sh("ip", "link", "set", "lo", "up")
        # a subnet of its own for the default network; user networks get --subnet from the tests
        self.env = dict(os.environ, KOBAKO_ROOT=str(root), KOBAKO_BRIDGE_SUBNET="10.230.0.0/24",
                        KOBAKO_RESTART_BACKOFF="0.2")  # fmt: skip
        self.env.pop("KOBAKO_DEFAULT_NETWORK", None)

    def sh(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        proc = subprocess.run(["nsenter", f"--net={self.path}", *args], capture_output=True, text=True,
                              timeout=timeout, check=False)  # fmt: skip
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {proc.returncode}: {proc.stderr}")
        return proc

    def __call__(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:  # files: nothing keeps pipes
            proc = subprocess.run(["nsenter", f"--net={self.path}", KOBAKO, *args], stdout=out, stderr=err,
                                  timeout=timeout, check=False, env=self.env)  # fmt: skip
            out.seek(0)
            err.seek(0)
            proc.stdout, proc.stderr = (
                out.read().decode(errors="replace"),
                err.read().decode(errors="replace"),
            )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kobako {' '.join(args)} exited {proc.returncode}: {proc.stderr}{proc.stdout}"
            )
        return proc

    def run_d(self, *args: str) -> str:
        return self("run", "-d", *args).stdout.strip()

    def inspect(self, ref: str) -> dict:
        return json.loads(self("inspect", ref).stdout)[0]

    def ip_of(self, ref: str) -> str:
        return self.inspect(ref)["NetworkSettings"]["IPAddress"]

    def links(self) -> list[str]:
        out = self.sh("ip", "-o", "link", "show").stdout
        return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]

    def ids(self) -> list[str]:
        base = self.root / "containers"
        return [d for d in os.listdir(base) if len(d) == 64] if base.exists() else []

    def close(self) -> None:
        try:
            for cid in self.ids():
                self("rm", "-f", cid, check=False)
        finally:
            netns_dir = self.root / "run" / "netns"
            if netns_dir.exists():
                for entry in netns_dir.iterdir():
                    subprocess.run(["umount", "-l", str(entry)], capture_output=True, check=False)
            subprocess.run(["ip", "netns", "delete", self.ns], check=False)


@pytest.fixture
def knet(tmp_path: Path, busybox_tar: Path) -> Iterator[NetKobako]:
    k = NetKobako(tmp_path / "root")
    try:
        k("import", str(busybox_tar), "busybox")
        yield k
    finally:
        k.close()
