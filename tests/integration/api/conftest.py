"""Fixtures for the Engine API tests: `kobako system service` on a private socket and KOBAKO_ROOT (one per
module), a raw HTTP/1.1 client over the unix socket, and teardown checks (no container, mount, cgroup or
process left behind)."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

KOBAKO = str(Path(sys.executable).parent / "kobako")
pytestmark = pytest.mark.root


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 30) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


class Api:
    """The service under test, and helpers to talk to it."""

    def __init__(self, base: Path, image_tar: Path) -> None:
        self.base = base
        self.root = base / "root"
        self.sock = str(base / "docker.sock")
        self.env = {**os.environ, "KOBAKO_ROOT": str(self.root)}
        self.kobako("import", str(image_tar), "busybox")
        self.log = open(base / "service.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([KOBAKO, "system", "service", f"unix://{self.sock}"], env=self.env,
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)  # fmt: skip
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(self.sock)
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        "the service did not start: " + (base / "service.log").read_text()
                    ) from None
                time.sleep(0.02)

    def kobako(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([KOBAKO, *args], env=self.env, capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL, check=False)  # fmt: skip
        if check and proc.returncode != 0:
            raise AssertionError(f"kobako {' '.join(args)}: {proc.stderr}")
        return proc

    def conn(self) -> UnixHTTPConnection:
        return UnixHTTPConnection(self.sock)

    def request(self, method: str, path: str, body: object = None, headers: dict | None = None,
                raw: bytes | None = None) -> tuple[int, dict, bytes]:  # fmt: skip
        """(status, headers, body) of one request on a fresh connection."""
        conn = self.conn()
        try:
            data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
            hdrs = {"Content-Type": "application/json", **(headers or {})}
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def json(self, method: str, path: str, body: object = None, expect: int = 200) -> object:
        status, _headers, data = self.request(method, path, body)
        assert status == expect, (status, data)
        return json.loads(data) if data.strip() else None

    def alive(self) -> bool:
        status, _h, data = self.request("GET", "/_ping")
        return status == 200 and data == b"OK"

    def container_ids(self) -> list[str]:
        base = self.root / "containers"
        return [d for d in os.listdir(base) if len(d) == 64] if base.exists() else []

    def cleanup_containers(self) -> None:
        for cid in self.container_ids():
            self.kobako("rm", "-f", cid, check=False)

    def stop(self) -> list[str]:
        """Stop the service; what was left behind (should be nothing)."""
        ids = self.container_ids()
        self.cleanup_containers()
        self.proc.terminate()
        try:
            self.proc.wait(15)
        finally:
            self.log.close()
        return leftovers(self.root, ids)


def leftovers(root: Path, ids: list[str]) -> list[str]:
    deadline = time.monotonic() + 5
    while _processes(root) and time.monotonic() < deadline:
        time.sleep(0.05)
    problems = [f"process {p} still runs with KOBAKO_ROOT={root}" for p in _processes(root)]
    with open("/proc/self/mountinfo") as f:
        problems += [f"mount {line.split()[4]}" for line in f if line.split()[4].startswith(str(root))]
    for cid in ids:
        for hierarchy in os.listdir("/sys/fs/cgroup"):
            if os.path.exists(f"/sys/fs/cgroup/{hierarchy}/kobako/{cid}"):
                problems.append(f"cgroup {hierarchy}/kobako/{cid}")
    return problems


def _processes(root: Path) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                environ = f.read()
        except OSError:
            continue
        if f"KOBAKO_ROOT={root}\0".encode() in environ + b"\0":
            found.append(pid)
    return found


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, busybox_tar: Path) -> Iterator[Api]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    service = Api(tmp_path_factory.mktemp("api"), busybox_tar)
    yield service
    left = service.stop()
    assert not left, left


@pytest.fixture
def clean(api: Api) -> Iterator[Api]:
    """The module's service; containers a test made are removed after it."""
    yield api
    api.cleanup_containers()
    assert api.alive()
