"""Registry transfer over loopback: kobako client ↔ kobako registry against skopeo ↔ Debian's docker-registry.

One image with a single random 256 MiB layer (uncompressed, so nobody recompresses it) is pushed and pulled
three times by each pair, alternating, each run against a fresh registry (so nothing is skipped or mounted)
and into a fresh destination; the median times give MiB/s per direction and the ratios (kobako / peer,
higher is better). Also measured: the kobako registry's peak RSS (VmHWM) while serving the layer, and
docker-registry's for scale.

- kobako push: ``kobako push`` from the content store (HEAD, POST, one streamed PUT, manifest)
- kobako pull (fetch): the client's resolver + fetcher into a content store (verify, publish) — what skopeo does
- kobako pull (CLI): ``kobako pull``, which also unpacks the layer into a snapshot
- skopeo push / pull: ``skopeo copy --preserve-digests`` between an ``oci:`` layout and ``docker://``

    .venv/bin/python benchmarks/registry_transfer.py [--size-mb 256] [--runs 3] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
KOBAKO = str(BIN / "kobako")

FETCH_ONLY = """
import sys
from kobako.content.local import LocalStore
from kobako.oci.reference import parse_normalized
from kobako.registry.client import fetcher, hosts, resolver
from kobako.registry.client.progress import Progress
from kobako.registry.client.remote import Remote

ref, root = sys.argv[1], sys.argv[2]
r = parse_normalized(ref)
remote = Remote(hosts.endpoints(r.domain, {})[-1], domain=r.domain)
_, manifest = resolver.resolve(remote, r.path, r.tag)
store = LocalStore(root)
fetcher.fetch_all(remote, r.path, [manifest.doc["config"], *manifest.doc["layers"]], store, Progress())
remote.close()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def run(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        args, env=env, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {proc.stderr}")
    return elapsed


class Servers:
    """A fresh kobako registry and docker-registry per run, storage under ``base``."""

    def __init__(self, base: Path, env: dict[str, str]) -> None:
        self.base, self.env = base, env

    def kobako(self, n: int) -> tuple[subprocess.Popen, str]:
        port = free_port()
        proc = subprocess.Popen([KOBAKO, "registry", "serve", "--addr", f"127.0.0.1:{port}",
                                 "--root", str(self.base / f"kreg-{n}")], env=self.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        wait_port(port, proc)
        return proc, f"127.0.0.1:{port}"

    def docker(self, n: int) -> tuple[subprocess.Popen, str]:
        port = free_port()
        config = self.base / f"dreg-{n}.yml"
        config.write_text(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
            f"    rootdirectory: {self.base / f'dreg-{n}'}\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: bench\n"
        )
        proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
        wait_port(port, proc)
        return proc, f"127.0.0.1:{port}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", help="where the image and registries go (default: a temp dir)")
    args = parser.parse_args()
    for tool in ("skopeo", "docker-registry"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed: nothing to compare against", file=sys.stderr)
            return 1
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "REGISTRY_AUTH_FILE")}
    base = Path(tempfile.mkdtemp(prefix="kobako-regbench-", dir=args.workdir))
    size = args.size_mb << 20
    try:
        src = base / "src"
        env_src = {**env, "KOBAKO_ROOT": str(src), "HOME": str(base / "home")}
        tar_path = base / "layer.tar"
        with tarfile.open(tar_path, "w") as tar:
            blob = base / "random.bin"
            with open(blob, "wb") as f:
                for _ in range(size >> 20):
                    f.write(os.urandom(1 << 20))
            tar.add(str(blob), arcname="random.bin")
            blob.unlink()
        run([KOBAKO, "import", str(tar_path), "localhost/bench/big:1"], env_src)
        tar_path.unlink()
        oci_tar = base / "oci.tar"
        run([KOBAKO, "save", "--format", "oci-archive", "-o", str(oci_tar), "localhost/bench/big:1"], env_src)
        layout = base / "layout"
        layout.mkdir()
        subprocess.run(["tar", "-C", str(layout), "-xf", str(oci_tar)], check=True)
        oci_tar.unlink()
        layer_mib = size / (1 << 20)

        servers = Servers(base, env)
        times: dict[str, list[float]] = {k: [] for k in ("kpush", "kfetch", "kpull", "spush", "spull")}
        rss: dict[str, float] = {"kobako": 0.0, "docker-registry": 0.0}
        for n in range(args.runs):
            proc, addr = servers.kobako(n)
            try:
                ref = f"{addr}/bench/big:1"
                run([KOBAKO, "tag", "localhost/bench/big:1", ref], env_src)
                times["kpush"].append(run([KOBAKO, "push", "-q", ref], env_src))
                fetch_root = base / f"fetch-{n}"
                times["kfetch"].append(run([sys.executable, "-c", FETCH_ONLY, ref, str(fetch_root)], env))
                shutil.rmtree(fetch_root)
                dst = {**env, "KOBAKO_ROOT": str(base / f"dst-{n}"), "HOME": str(base / "home")}
                times["kpull"].append(run([KOBAKO, "pull", "-q", ref], dst))
                rss["kobako"] = max(rss["kobako"], peak_rss_mib(proc.pid))
                run([KOBAKO, "rmi", ref], env_src)
            finally:
                stop(proc)
                shutil.rmtree(base / f"kreg-{n}", ignore_errors=True)
                shutil.rmtree(base / f"dst-{n}", ignore_errors=True)
            proc, addr = servers.docker(n)
            try:
                ref = f"docker://{addr}/bench/big:1"
                times["spush"].append(run(["skopeo", "copy", "-q", "--preserve-digests", "--dest-tls-verify=false",
                                           f"oci:{layout}", ref], env))  # fmt: skip
                out = base / f"skopeo-out-{n}"
                times["spull"].append(run(["skopeo", "copy", "-q", "--preserve-digests", "--src-tls-verify=false",
                                           ref, f"oci:{out}:x"], env))  # fmt: skip
                rss["docker-registry"] = max(rss["docker-registry"], peak_rss_mib(proc.pid))
                shutil.rmtree(out)
            finally:
                stop(proc)
                shutil.rmtree(base / f"dreg-{n}", ignore_errors=True)

        med = {k: statistics.median(v) for k, v in times.items()}
        rate = {k: layer_mib / v for k, v in med.items()}
        print(f"\nOne {args.size_mb} MiB uncompressed layer over loopback, median of {args.runs} runs "
              f"(alternating), fresh registry per run.\n")  # fmt: skip
        print("| direction | kobako ↔ kobako registry | skopeo ↔ docker-registry | ratio (kobako/peer) |")
        print("|---|---|---|---|")
        print(f"| push | {med['kpush']:.2f} s, {rate['kpush']:.0f} MiB/s | {med['spush']:.2f} s, "
              f"{rate['spush']:.0f} MiB/s | {rate['kpush'] / rate['spush']:.2f} |")  # fmt: skip
        print(f"| pull (fetch + verify) | {med['kfetch']:.2f} s, {rate['kfetch']:.0f} MiB/s | {med['spull']:.2f} s, "
              f"{rate['spull']:.0f} MiB/s | {rate['kfetch'] / rate['spull']:.2f} |")  # fmt: skip
        print(f"| pull (CLI, + unpack) | {med['kpull']:.2f} s, {rate['kpull']:.0f} MiB/s | — | "
              f"{rate['kpull'] / rate['spull']:.2f} |")  # fmt: skip
        print()
        print("| server peak RSS (VmHWM) while serving | MiB |")
        print("|---|---|")
        print(f"| kobako registry | {rss['kobako']:.1f} (target ≤ 80) |")
        print(f"| docker-registry | {rss['docker-registry']:.1f} |")
        print("\nraw seconds:", {k: [round(x, 2) for x in v] for k, v in times.items()})
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
