"""Helpers for the registry integration tests: free loopback ports, ``kobako registry serve`` as a process,
the real ``kobako`` CLI on a private state root."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

VENV_BIN = Path(__file__).resolve().parents[3] / ".venv" / "bin"
KOBAKO = str(VENV_BIN / "kobako")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def stop(proc: subprocess.Popen) -> None:
    """terminate, wait, kill if it will not go."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


class Kobako:
    """``kobako`` with KOBAKO_ROOT (and its auth file and registries config) under one temporary root."""

    def __init__(self, root: Path, env: dict[str, str] | None = None) -> None:
        self.root = root
        self.env = {
            k: v for k, v in os.environ.items() if k not in ("REGISTRY_AUTH_FILE", "KOBAKO_REGISTRIES_CONF")
        }
        # HOME: the host's ~/.docker/config.json is never read
        self.env.update({"KOBAKO_ROOT": str(root), "HOME": str(root / "home"), **(env or {})})

    def __call__(self, *args: str, input: bytes | None = None, check: bool = True,
                 timeout: float = 180) -> subprocess.CompletedProcess:  # fmt: skip
        proc = subprocess.run([KOBAKO, *args], input=input, capture_output=True, env=self.env, timeout=timeout,
                              stdin=None if input is not None else subprocess.DEVNULL)  # fmt: skip
        proc.out = proc.stdout.decode(errors="replace")  # type: ignore[attr-defined]
        proc.err = proc.stderr.decode(errors="replace")  # type: ignore[attr-defined]
        if check and proc.returncode != 0:
            raise AssertionError(f"kobako {' '.join(args)} exited {proc.returncode}: {proc.err}")
        return proc

    def service(self):  # type: ignore[no-untyped-def]
        from kobako.images.service import ImageService

        return ImageService(str(self.root))


class Server:
    """``kobako registry serve`` on 127.0.0.1:<free port>."""

    def __init__(self, root: Path, *extra: str, port: int | None = None) -> None:
        self.root = root
        self.extra = extra
        self.port = port or free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = root.parent / f"server-{self.port}.log"

    def start(self) -> Server:
        env = {**os.environ}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([KOBAKO, "registry", "serve", "--addr", self.addr, "--root", str(self.root),
                                          *self.extra], stdout=log, stderr=log, env=env)  # fmt: skip
        wait_port(self.port, self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""
