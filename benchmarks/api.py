"""The Engine API against its peers, same busybox image everywhere (not a test: prints a markdown table).

1. `docker run --rm --network none IMAGE true` with the real docker CLI through kobako's socket, a private
   dockerd's (its own --data-root/--exec-root/socket, --bridge=none, no iptables) and podman's
   `system service` (isolated storage, kobako.testing.podman): alternating, medians.
2. Container starts per second through the API with 8 concurrent clients (create, start, wait, delete over
   raw HTTP on the unix socket), kobako against podman's service.

Targets: kobako ≤ 0.5x dockerd's time for (1); ≥ 2x podman's starts/s for (2).
Usage: python benchmarks/api.py [--runs 20] [--containers 48]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

from kobako.testing.busybox import make_rootfs

KOBAKO = str(Path(sys.executable).parent / "kobako")
DOCKER = shutil.which("docker") or "docker"


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=120)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def wait_socket(path: str, proc: subprocess.Popen, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            conn = UnixHTTP(path)
            conn.request("GET", "/_ping")
            if conn.getresponse().status == 200:
                conn.close()
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


class Peer:
    def __init__(self, name: str, sock: str, image: str, flags: list[str], host_config: dict) -> None:
        self.name, self.sock, self.image, self.flags, self.host_config = name, sock, image, flags, host_config

    def run_once(self, env: dict[str, str]) -> float | None:
        cmd = [DOCKER, "-H", f"unix://{self.sock}", "run", "--rm", *self.flags, self.image, "true"]
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, stdin=subprocess.DEVNULL, check=False)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            sys.stderr.write(f"# {self.name}: {proc.stderr.decode(errors='replace')[-300:]}\n")
            return None
        return elapsed

    def one_container(self) -> None:
        conn = UnixHTTP(self.sock)
        try:
            body = json.dumps({"Image": self.image, "Cmd": ["true"], "HostConfig": self.host_config})
            conn.request("POST", "/v1.41/containers/create", body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
            if resp.status != 201:
                raise RuntimeError(f"{self.name} create: {resp.status} {data[:200]!r}")
            cid = json.loads(data)["Id"]
            for method, path in (("POST", f"/v1.41/containers/{cid}/start"), ("POST", f"/v1.41/containers/{cid}/wait"),
                                 ("DELETE", f"/v1.41/containers/{cid}?force=1")):  # fmt: skip
                conn.request(method, path)
                resp = conn.getresponse()
                data = resp.read()
                if resp.status >= 300:
                    raise RuntimeError(f"{self.name} {path}: {resp.status} {data[:200]!r}")
        finally:
            conn.close()

    def starts_per_second(self, total: int, clients: int = 8) -> float:
        left = [total]
        lock = threading.Lock()
        errors: list[str] = []

        def worker() -> None:
            while True:
                with lock:
                    if left[0] <= 0:
                        return
                    left[0] -= 1
                try:
                    self.one_container()
                except Exception as exc:
                    errors.append(str(exc))
                    return

        threads = [threading.Thread(target=worker) for _ in range(clients)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
        if errors:
            sys.stderr.write(f"# {self.name}: {errors[0]}\n")
            return 0.0
        return total / elapsed


def start_dockerd(base: Path, archive: Path, env: dict[str, str]) -> tuple[subprocess.Popen | None, str]:
    dockerd = shutil.which("dockerd")
    if not dockerd:
        return None, "dockerd is not installed"
    sock = str(base / "dockerd.sock")
    log = open(base / "dockerd.log", "wb")  # noqa: SIM115 - lives as long as dockerd
    proc = subprocess.Popen([dockerd, "--data-root", str(base / "docker-data"), "--exec-root", str(base / "dx"),
                             "--pidfile", str(base / "dockerd.pid"), "-H", f"unix://{sock}", "--bridge=none",
                             "--iptables=false", "--ip6tables=false", "--storage-driver", "overlay2",
                             "--log-level", "error"], stdout=log, stderr=log)  # fmt: skip
    if not wait_socket(sock, proc):
        proc.terminate()
        tail = (base / "dockerd.log").read_text(errors="replace")[-400:]
        return None, f"dockerd could not start on this host: {tail}"
    subprocess.run([DOCKER, "-H", f"unix://{sock}", "load", "-i", str(archive)], env=env, check=True,
                   capture_output=True)  # fmt: skip
    return proc, sock


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--containers", type=int, default=48)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root", file=sys.stderr)
        return 1
    notes: list[str] = []
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="kobako-bench-api-") as tmp:
        base = Path(tmp)
        rootfs = Path(make_rootfs(str(base / "rootfs")))
        plain = base / "busybox-rootfs.tar"
        with tarfile.open(plain, "w") as tar:
            tar.add(str(rootfs), arcname=".")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["KOBAKO_ROOT"] = str(base / "kobako")
        (base / "docker-config").mkdir()
        cli_env = {**env, "DOCKER_CONFIG": str(base / "docker-config")}
        subprocess.run([KOBAKO, "import", str(plain), "busybox"], env=env, check=True, capture_output=True)
        archive = base / "busybox-image.tar"
        subprocess.run(
            [KOBAKO, "save", "-o", str(archive), "busybox"], env=env, check=True, capture_output=True
        )
        ksock = str(base / "kobako.sock")
        kproc = subprocess.Popen([KOBAKO, "system", "service", f"unix://{ksock}"], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        procs.append(kproc)
        if not wait_socket(ksock, kproc):
            print("kobako's service did not start", file=sys.stderr)
            return 1
        peers = [Peer("kobako", ksock, "busybox", ["--network", "none"], {"NetworkMode": "none"})]
        podman = None
        try:
            dproc, where = start_dockerd(base, archive, cli_env)
            if dproc is None:
                notes.append(f"dockerd: skipped ({where})")
            else:
                procs.append(dproc)
                peers.append(
                    Peer("dockerd", where, "busybox", ["--network", "none"], {"NetworkMode": "none"})
                )
            if shutil.which("podman"):
                from kobako.testing.podman import Podman

                podman = Podman(base / "podman")
                podman.import_rootfs(rootfs, "localhost/busybox")
                psock = str(base / "podman.sock")
                # runc: crun refuses this project's hybrid cgroup hosts (see benchmarks/engine_run.py)
                runtime = ["--runtime", "runc"] if shutil.which("runc") else []
                pproc = subprocess.Popen([podman.binary, *podman.global_flags, *runtime, "system", "service",
                                          "--time", "0", f"unix://{psock}"], env=podman.env,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
                procs.append(pproc)
                if wait_socket(psock, pproc):
                    hc = {"NetworkMode": "none", "CgroupParent": podman.cgroup_parent,
                          "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 1024},
                                      {"Name": "nproc", "Soft": 1024, "Hard": 1024}]}  # fmt: skip
                    peers.append(Peer("podman service", psock, "localhost/busybox", podman.run_flags(), hc))
                else:
                    notes.append("podman: its service did not start")
            else:
                notes.append("podman: not installed")
            report(peers, cli_env, args, notes)
        finally:
            for proc in reversed(procs):
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
            if podman is not None:
                podman.close()
            subprocess.run(
                ["umount", "-R", "--lazy", str(base / "docker-data")], capture_output=True, check=False
            )
    return 0


def report(peers: list[Peer], env: dict[str, str], args: argparse.Namespace, notes: list[str]) -> None:
    for peer in peers:  # warm caches once, unmeasured
        peer.run_once(env)
    samples: dict[str, list[float]] = {p.name: [] for p in peers}
    for _ in range(args.runs):
        for peer in peers:
            t = peer.run_once(env)
            if t is not None:
                samples[peer.name].append(t)
    medians = {name: statistics.median(v) * 1000 for name, v in samples.items() if v}
    rates = {p.name: p.starts_per_second(args.containers) for p in peers if p.name != "dockerd"}
    print(
        f"\n`docker run --rm --network none IMAGE true` through each API socket, median of {args.runs} "
        "(alternating), and starts/s with 8 concurrent API clients:\n"
    )
    print("| engine | docker run --rm (ms) | vs kobako | starts/s (8 clients) |")
    print("|---|---|---|---|")
    k = medians.get("kobako")
    for name, ms in medians.items():
        ratio = f"{ms / k:.2f}x" if k else "-"
        rate = f"{rates[name]:.1f}" if name in rates else "-"
        print(f"| {name} | {ms:.1f} | {ratio} | {rate} |")
    if "dockerd" in medians and k:
        print(f"\nkobako / dockerd time: {k / medians['dockerd']:.2f} (target ≤ 0.5)")
    if rates.get("podman service") and rates.get("kobako"):
        print(f"kobako / podman starts/s: {rates['kobako'] / rates['podman service']:.2f} (target ≥ 2)")
    for note in notes:
        print(f"- {note}")


if __name__ == "__main__":
    sys.exit(main())
