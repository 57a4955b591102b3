"""`kobako system service` for tests: a private state root with a busybox image, the service on a unix
socket in a temp dir, started, waited for, and stopped."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

KOBAKO = str(Path(sys.executable).parent / "kobako")


class ApiService:
    def __init__(self, base: Path, rootfs: Path) -> None:
        self.base = base
        self.root = base / "root"
        self.sock = base / "docker.sock"
        self.env = {**os.environ, "KOBAKO_ROOT": str(self.root)}
        archive = base / "busybox.tar"
        with tarfile.open(archive, "w") as tar:
            tar.add(str(rootfs), arcname=".")
        subprocess.run(
            [KOBAKO, "import", str(archive), "busybox"], env=self.env, check=True, capture_output=True
        )
        self.log = open(base / "service.log", "wb")  # noqa: SIM115 - closed in terminate()
        self.proc = subprocess.Popen([KOBAKO, "system", "service", f"unix://{self.sock}"], env=self.env,
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)  # fmt: skip
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(str(self.sock))
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((base / "service.log").read_text()) from None
                time.sleep(0.02)

    def kobako(self, *args: str) -> subprocess.CompletedProcess:
        """The kobako CLI on the same state root (the API and the CLI share one engine)."""
        return subprocess.run(
            [KOBAKO, *args], env=self.env, capture_output=True, text=True, timeout=60, check=False
        )

    def terminate(self) -> None:
        self.proc.terminate()
        self.proc.wait(15)
        self.log.close()

    def mounts_left(self) -> list[str]:
        with open("/proc/self/mountinfo") as f:
            return [line.split()[4] for line in f if line.split()[4].startswith(str(self.root))]


@contextlib.contextmanager
def local_registry(root: Path, env: dict[str, str]) -> Iterator[int]:
    """``kobako registry serve`` on a free loopback port, storage under ``root``: its port, stopped after."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    registry = subprocess.Popen([KOBAKO, "registry", "serve", "--addr", f"127.0.0.1:{port}", "--root", str(root)],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                assert registry.poll() is None and time.monotonic() < deadline, "the registry did not start"
                time.sleep(0.05)
        yield port
    finally:
        registry.terminate()
        registry.wait(10)
