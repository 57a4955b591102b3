"""Container networking: setup cost and throughput, all inside network namespaces this script makes.

Setup cost: ``NetworkService.setup`` + ``teardown`` of one container on a user network, cold (a fresh
interpreter: imports, pyroute2's message classes, the nftables table) and warm (the next containers in
the same process), next to the cost of loading pyroute2's messages alone.

Throughput (iperf3 when installed, else a Python socket stream): container → container through a
kobako bridge with kobako's nftables rules loaded (br_netfilter on this host sends bridged traffic through
them), a host → container published port (DNAT), against the peer: a plain veth pair between two
namespaces with no bridge and no rules, at the MTU of kobako's links (like for like; a pair at the default
1500 is sampled too). Everything is set up once, then each path is sampled in turn for ``--tput-rounds``
rounds: medians, and the median of the per-round ratios to the peer.

Published port against podman (``--podman-rounds``, 0 skips it): busybox ``httpd`` serving a file made with
``dd`` in the container, published on 127.0.0.1 by ``kobako run -p`` and by ``podman run -p`` (runc, isolated
storage, CNI with its network config, IPAM data dir and the CNI cache in a temporary directory), both engines
run with ``nsenter --net`` in one more namespace made here; a Python client in that namespace fetches the
file from each published port in turn (alternating rounds, median MB/s). Both engines at their defaults:
``--podman-mtu 65535`` gives podman's network kobako's MTU, to compare the rest like for like. Everything is
removed at the end.

    sudo .venv/bin/python benchmarks/network.py [--seconds 2] [--rounds 20] [--tput-rounds 5] [--podman-rounds 5]
        [--size-mb 256] [--fetches 3] [--only-podman] [--podman-mtu N]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

CLONE_NEWNET = 0x40000000
PY = sys.executable


def sh(*args: str, netns: str = "") -> str:
    cmd = ["nsenter", f"--net={netns}", *args] if netns else list(args)
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def in_child(netns: str, fn, *args):  # type: ignore[no-untyped-def]
    """``fn(*args)`` in a forked child that joined ``netns``; its JSON-able result."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(r)
            from kobako.runtime.syscalls import linux

            fd = os.open(netns, os.O_RDONLY)
            linux.setns(fd, CLONE_NEWNET)
            out = json.dumps(fn(*args)).encode()
        except BaseException as exc:
            out = json.dumps({"error": repr(exc)}).encode()
            code = 1
        with os.fdopen(w, "wb") as f:
            f.write(out)
        os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    result = json.loads(data)
    if isinstance(result, dict) and "error" in result:
        raise RuntimeError(result["error"])
    return result


COLD = """
import sys, time, os
t0 = time.perf_counter()
from kobako.engine.network.service import NetworkService
svc = NetworkService(sys.argv[1], resolv_conf="")
t1 = time.perf_counter()
svc.setup(os.urandom(32).hex(), "cold", ["bench"], [], None, [], [], [], [])
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""

MESSAGES = """
import time
t0 = time.perf_counter()
from kobako.engine.network.netlink import load_messages
load_messages()
print(time.perf_counter() - t0)
"""


def setup_costs(host: str, root: str, rounds: int) -> dict:
    def prepare() -> None:
        from kobako.engine.network.service import NetworkService

        NetworkService(root, resolv_conf="").create("bench", subnet="10.210.0.0/22")

    in_child(host, prepare)
    msgs = [float(sh(PY, "-c", MESSAGES, netns=host)) for _ in range(5)]
    cold = [[float(x) for x in sh(PY, "-c", COLD, root, netns=host).split()] for _ in range(5)]

    def warm() -> dict:
        from kobako.engine.network.service import NetworkService

        svc = NetworkService(root, resolv_conf="")
        svc.setup(os.urandom(32).hex(), "first", ["bench"], [], None, [], [], [], [])  # loads everything
        ups, downs, pubs = [], [], []
        for _ in range(rounds):
            cid = os.urandom(32).hex()
            t0 = time.perf_counter()
            svc.setup(cid, "w", ["bench"], [], None, [], [], [], [])
            t1 = time.perf_counter()
            svc.teardown(cid)
            t2 = time.perf_counter()
            ups.append(t1 - t0)
            downs.append(t2 - t1)
            cid = os.urandom(32).hex()
            t0 = time.perf_counter()
            svc.setup(cid, "p", ["bench"], [], None, ["80"], [], [], [])
            pubs.append(time.perf_counter() - t0)
            svc.teardown(cid)
        return {"up": ups, "down": downs, "pub": pubs}

    w = in_child(host, warm)
    med = statistics.median
    return {
        "pyroute2 messages import": med(msgs),
        "service import + open (cold)": med(c[0] for c in cold),
        "first setup in a process (cold)": med(c[1] for c in cold),
        "setup, warm": med(w["up"]),
        "setup with one published port, warm": med(w["pub"]),
        "teardown, warm": med(w["down"]),
    }


def stream(server_ns: str, client_ns: str, ip: str, port: int, seconds: float, listen: int = 0) -> float:
    """Gbit/s from client to ``ip:port``, served on ``listen`` (default ``port``) in ``server_ns``: iperf3 if
    present, else Python sockets with 1 MiB writes."""
    listen = listen or port
    if shutil.which("iperf3"):
        server = subprocess.Popen(["nsenter", f"--net={server_ns}", "iperf3", "-s", "-1", "-p", str(listen)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            for _ in range(50):
                probe = subprocess.run(["nsenter", f"--net={server_ns}", "ss", "-ltn", f"sport = :{listen}"],
                                       capture_output=True, text=True)  # fmt: skip
                if str(listen) in probe.stdout:
                    break
                time.sleep(0.05)
            out = sh("iperf3", "-c", ip, "-p", str(port), "-t", str(seconds), "-J", netns=client_ns)
            return json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e9
        finally:
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    return in_child(client_ns, _py_stream, server_ns, ip, port, listen, seconds)


def _py_stream(server_ns: str, ip: str, port: int, listen: int, seconds: float) -> float:
    from kobako.engine.network import netns

    srv = netns.run_in(server_ns, lambda: socket.socket()) if server_ns.startswith("/") else socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", listen))
    srv.listen(1)
    total = [0]

    def sink() -> None:
        conn, _ = srv.accept()
        buf = bytearray(1 << 20)
        while n := conn.recv_into(buf):
            total[0] += n

    t = threading.Thread(target=sink)
    t.start()
    cli = socket.create_connection((ip, port))
    chunk = b"\0" * (1 << 20)
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        cli.sendall(chunk)
    cli.close()
    t.join()
    return total[0] * 8 / (time.perf_counter() - start) / 1e9


def throughput(host: str, root: str, seconds: float, rounds: int) -> dict:
    """Each path's Gbit/s over ``rounds`` alternating rounds (all set up once): {label: [samples]}."""
    a, b = os.urandom(32).hex(), os.urandom(32).hex()

    def setup() -> dict:
        from kobako.engine.network.service import NetworkService

        svc = NetworkService(root, resolv_conf="")
        svc.create("tput", subnet="10.211.0.0/24")
        ra = svc.setup(a, "srv", ["tput"], [], None, ["127.0.0.1:15201:5201"], [], [], [])
        rb = svc.setup(b, "cli", ["tput"], [], None, [], [], [], [])
        svc.accelerate(a)  # as the engine's monitor does once the task runs
        svc.accelerate(b)
        return {"a": ra["netns_path"], "ip": ra["networks"]["tput"]["IPAddress"], "b": rb["netns_path"]}

    def down() -> None:
        from kobako.engine.network.service import NetworkService

        svc = NetworkService(root, resolv_conf="")
        svc.teardown(a)
        svc.teardown(b)
        svc.remove("tput")

    pair, default_pair, hub = _namespaces(2), _namespaces(2), _namespaces(3)
    try:
        from kobako.engine.network.service import INTERNAL_MTU

        p1, p2 = _plain_pair(pair, INTERNAL_MTU)
        d1, d2 = _plain_pair(default_pair, 0, "10.214.0")
        c1, c2 = _plain_bridge(hub, INTERNAL_MTU)
        s = in_child(host, setup)
        try:
            paths = {
                "plain veth pair (peer, no bridge, no rules, kobako's MTU)": lambda: stream(
                    p2, p1, "10.212.0.2", 5201, seconds
                ),
                "plain veth pair at the default MTU (1500)": lambda: stream(
                    d2, d1, "10.214.0.2", 5201, seconds
                ),
                "two veths on a plain bridge (no kobako rules, kobako's MTU)": lambda: stream(
                    c2, c1, "10.213.0.2", 5201, seconds
                ),
                "container → container (kobako bridge + rules)": lambda: stream(
                    s["a"], s["b"], s["ip"], 5201, seconds
                ),
                "host → container address (routed)": lambda: stream(s["a"], host, s["ip"], 5201, seconds),
                "host 127.0.0.1:PORT → container (published, DNAT)": lambda: stream(
                    s["a"], host, "127.0.0.1", 15201, seconds, listen=5201
                ),
            }
            samples: dict[str, list[float]] = {label: [] for label in paths}
            for _ in range(rounds):
                for label, measure in paths.items():
                    samples[label].append(measure())
            return samples
        finally:
            in_child(host, down)
    finally:
        _drop(pair + default_pair + hub)


def _namespaces(count: int) -> list[str]:
    names = ["kbbench-" + uuid.uuid4().hex[:8] for _ in range(count)]
    for name in names:
        subprocess.run(["ip", "netns", "add", name], check=True)
        sh("ip", "link", "set", "lo", "up", netns=f"/run/netns/{name}")
    return names


def _drop(names: list[str]) -> None:
    for name in names:
        subprocess.run(["ip", "netns", "delete", name], check=False)


def _mtu(mtu: int) -> list[str]:
    return ["mtu", str(mtu)] if mtu else []


def _plain_pair(names: list[str], mtu: int, prefix: str = "10.212.0") -> tuple[str, str]:
    """The peer: two namespaces joined by one veth pair (at ``mtu``; 0: the default), nothing else."""
    p1, p2 = (f"/run/netns/{n}" for n in names)
    sh("ip", "link", "add", "v1", *_mtu(mtu), "type", "veth", "peer", "name", "v2", *_mtu(mtu), "netns", p2,
       netns=p1)  # fmt: skip
    for ns, dev, addr in ((p1, "v1", f"{prefix}.1/24"), (p2, "v2", f"{prefix}.2/24")):
        sh("ip", "addr", "add", addr, "dev", dev, netns=ns)
        sh("ip", "link", "set", dev, "up", netns=ns)
    return p1, p2


def _plain_bridge(names: list[str], mtu: int) -> tuple[str, str]:
    """Two namespaces on a bridge in a third, no nftables at all: what the bridge alone costs."""
    hub, c1, c2 = (f"/run/netns/{n}" for n in names)
    sh("ip", "link", "add", "br0", *_mtu(mtu), "type", "bridge", netns=hub)
    sh("ip", "link", "set", "br0", "up", netns=hub)
    for i, ns in ((1, c1), (2, c2)):
        sh("ip", "link", "add", f"h{i}", *_mtu(mtu), "type", "veth", "peer", "name", "eth0", *_mtu(mtu),
           "netns", ns, netns=hub)  # fmt: skip
        sh("ip", "link", "set", f"h{i}", "master", "br0", "up", netns=hub)
        sh("ip", "addr", "add", f"10.213.0.{i}/24", "dev", "eth0", netns=ns)
        sh("ip", "link", "set", "eth0", "up", netns=ns)
    return c1, c2


KOBAKO = os.path.join(os.path.dirname(PY), "kobako")
SERVE = "mkdir -p /www && dd if=/dev/zero of=/www/blob bs=1M count={mb} 2>/dev/null && exec httpd -f -p 80 -h /www"
CNI_NET = "kbbench"


def _cni_conflist(base: str, mtu: int = 0) -> str:
    """A bridge + portmap network like podman's default, with host-local IPAM's data under ``base``
    (``mtu``: the bridge plugin's, 0 for its default)."""
    bridge = {"type": "bridge", "bridge": "kbbpod0", "isGateway": True, "ipMasq": True, "hairpinMode": True,
              "ipam": {"type": "host-local", "routes": [{"dst": "0.0.0.0/0"}], "dataDir": f"{base}/cni-ipam",
                       "ranges": [[{"subnet": "10.216.0.0/24", "gateway": "10.216.0.1"}]]}}  # fmt: skip
    if mtu:
        bridge["mtu"] = mtu
    return json.dumps({
        "cniVersion": "0.4.0", "name": CNI_NET,
        "plugins": [bridge, {"type": "portmap", "capabilities": {"portMappings": True}}],
    })  # fmt: skip


def _run(cmd: list[str], env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    """Files, not pipes: conmon and the kobako monitor outlive a ``run -d`` and would hold a pipe open."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.run(cmd, stdout=out, stderr=err, env=env, timeout=timeout, check=False)
        out.seek(0)
        err.seek(0)
        proc.stdout, proc.stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    return proc


def _fetch(port: int, size: int, count: int) -> float:
    """MB/s (10^6) of ``count`` HTTP/1.0 GETs of /blob from 127.0.0.1:``port``; -1 if a body is short."""
    buf = bytearray(1 << 20)
    got = 0
    start = time.perf_counter()
    for _ in range(count):
        with socket.create_connection(("127.0.0.1", port), timeout=30) as c:
            c.sendall(b"GET /blob HTTP/1.0\r\nHost: localhost\r\n\r\n")
            while n := c.recv_into(buf):
                got += n
    elapsed = time.perf_counter() - start
    return got / elapsed / 1e6 if got >= size * count else -1.0


def _ready(port: int, size: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as c:
            c.sendall(b"HEAD /blob HTTP/1.0\r\n\r\n")
            head = c.recv(4096).decode(errors="replace")
    except OSError:
        return False
    m = re.search(r"Content-Length: *(\d+)", head, re.I)
    return bool(m) and int(m.group(1)) == size


def published_vs_podman(rounds: int, size_mb: int, fetches: int, podman_mtu: int = 0) -> dict:
    """MB/s through ``kobako run -p`` and ``podman run -p`` (same busybox, same httpd, same client), or a
    note why podman's side could not be measured."""
    from kobako.testing.busybox import make_rootfs

    size = size_mb << 20
    name = "kbbench-" + uuid.uuid4().hex[:8]
    subprocess.run(["ip", "netns", "add", name], check=True)
    ns = f"/run/netns/{name}"
    enter = ["nsenter", f"--net={ns}"]
    base = tempfile.mkdtemp(prefix="kobako-netbench-pub-")
    cni_cache = "/var/lib/cni"
    cni_cache_existed = os.path.exists(cni_cache)
    podman = None
    result: dict = {"MB/s": {}, "notes": []}
    try:
        sh("ip", "link", "set", "lo", "up", netns=ns)
        rootfs = make_rootfs(os.path.join(base, "rootfs"))
        archive = os.path.join(base, "busybox.tar")
        subprocess.run(["tar", "-C", rootfs, "-cf", archive, "."], check=True)
        env = {k: v for k, v in os.environ.items() if k != "KOBAKO_DEFAULT_NETWORK"}
        env.update(KOBAKO_ROOT=os.path.join(base, "kobako"), KOBAKO_BRIDGE_SUBNET="10.215.0.0/24")
        serve = ["sh", "-c", SERVE.format(mb=size_mb)]
        ports: dict[str, int] = {}
        proc = _run([*enter, KOBAKO, "import", archive, "busybox"], env)
        if proc.returncode == 0:
            proc = _run([*enter, KOBAKO, "run", "-d", "--network", "bridge", "-p", "127.0.0.1:18081:80",
                         "busybox", *serve], env)  # fmt: skip
        if proc.returncode == 0:
            ports["kobako run -p"] = 18081
        else:
            result["notes"].append(f"kobako: {proc.stderr.strip()[-400:]}")
        if shutil.which("podman") and shutil.which("runc"):
            from pathlib import Path

            from kobako.testing.podman import Podman

            podman = Podman(Path(base) / "podman")
            (podman.base / "net" / f"{CNI_NET}.conflist").write_text(
                _cni_conflist(str(podman.base), podman_mtu)
            )
            podman.import_rootfs(Path(rootfs), "localhost/busybox")
            flags = podman.run_flags()
            i = flags.index("--network")
            flags[i : i + 2] = ["--network", CNI_NET]
            pcmd = [*enter, podman.binary, *podman.global_flags, "--runtime", "runc", "run", "-d", *flags,
                    "-p", "127.0.0.1:18082:80", "localhost/busybox", *serve]  # fmt: skip
            proc = _run(pcmd, podman.env)
            if proc.returncode == 0:
                ports[f"podman run -p (runc, CNI{f', mtu {podman_mtu}' if podman_mtu else ''})"] = 18082
            else:
                info = _run([podman.binary, *podman.global_flags, "info", "--format",
                             "{{.Host.NetworkBackend}}"], podman.env).stdout.strip()  # fmt: skip
                result["notes"].append(
                    f"podman (network backend {info or '?'}) run -p failed: {proc.stderr.strip()[-400:]}"
                )
        else:
            result["notes"].append("podman or runc not installed")
        deadline = time.monotonic() + 60
        for label, port in list(ports.items()):
            while not in_child(ns, _ready, port, size):
                if time.monotonic() > deadline:
                    result["notes"].append(f"{label}: 127.0.0.1:{port} never served the {size_mb} MiB file")
                    del ports[label]
                    break
                time.sleep(0.2)
        samples: dict[str, list[float]] = {label: [] for label in ports}
        for port in ports.values():
            in_child(ns, _fetch, port, size, 1)  # warm: page cache, conntrack, first connection
        for r in range(rounds):
            order = list(ports.items()) if r % 2 == 0 else list(ports.items())[::-1]
            for label, port in order:
                mbs = in_child(ns, _fetch, port, size, fetches)
                if mbs < 0:
                    result["notes"].append(f"{label}: a short body in round {r}")
                else:
                    samples[label].append(mbs)
        result["MB/s"] = {label: statistics.median(s) for label, s in samples.items() if s}
        result["samples"] = samples
    finally:
        if podman is not None:  # in the namespace: CNI DEL (portmap's iptables rules) runs where ADD did
            _run([*enter, podman.binary, *podman.global_flags, "rm", "--all", "--force", "--time", "0"],
                 podman.env)  # fmt: skip
            left = podman.close()
            if left:
                result["notes"].append(f"podman left behind: {left}")
        kenv = dict(os.environ, KOBAKO_ROOT=os.path.join(base, "kobako"))
        for cid in _run([*enter, KOBAKO, "ps", "-aq"], kenv).stdout.split():
            _run([*enter, KOBAKO, "rm", "-f", cid], kenv)
        netns_dir = os.path.join(base, "kobako", "run", "netns")
        for entry in os.listdir(netns_dir) if os.path.isdir(netns_dir) else []:
            subprocess.run(["umount", "-l", os.path.join(netns_dir, entry)], check=False)
        subprocess.run(["ip", "netns", "delete", name], check=False)
        if not cni_cache_existed:
            shutil.rmtree(cni_cache, ignore_errors=True)
        shutil.rmtree(base, ignore_errors=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0, help="per throughput sample")
    parser.add_argument("--rounds", type=int, default=20, help="setup-cost rounds")
    parser.add_argument("--tput-rounds", type=int, default=5, help="alternating throughput rounds")
    parser.add_argument("--podman-rounds", type=int, default=5, help="published port vs podman; 0: skip")
    parser.add_argument("--size-mb", type=int, default=256, help="the file httpd serves")
    parser.add_argument("--fetches", type=int, default=3, help="GETs per engine per round")
    parser.add_argument("--only-podman", action="store_true", help="only the published port vs podman")
    parser.add_argument("--podman-mtu", type=int, default=0, help="podman's network MTU (default: CNI's)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 1
    pub = published_vs_podman(max(args.podman_rounds, 1), args.size_mb, args.fetches, args.podman_mtu) if (
        args.podman_rounds > 0 or args.only_podman) else None  # fmt: skip
    if args.only_podman:
        _print_pub(pub, args)
        return 0
    name = "kbbench-" + uuid.uuid4().hex[:8]
    subprocess.run(["ip", "netns", "add", name], check=True)
    host = f"/run/netns/{name}"
    root = tempfile.mkdtemp(prefix="kobako-netbench-")
    try:
        sh("ip", "link", "set", "lo", "up", netns=host)
        costs = setup_costs(host, root, args.rounds)
        tput = throughput(host, root, args.seconds, args.tput_rounds)
    finally:
        netns_dir = os.path.join(root, "run", "netns")
        for entry in os.listdir(netns_dir) if os.path.isdir(netns_dir) else []:
            subprocess.run(["umount", "-l", os.path.join(netns_dir, entry)], check=False)
        subprocess.run(["ip", "netns", "delete", name], check=False)
        shutil.rmtree(root, ignore_errors=True)
    tool = "iperf3" if shutil.which("iperf3") else "Python sockets"
    print("| setup cost (median) | ms |\n|---|---:|")
    for label, value in costs.items():
        print(f"| {label} | {value * 1000:.1f} |")
    print(
        f"\n| throughput ({tool}, one TCP stream, {args.seconds:g} s samples, {args.tput_rounds} alternating rounds)"
        " | median Gbit/s | median of per-round ratios to the peer | ratio range |\n|---|---:|---:|---:|"
    )
    base = next(iter(tput.values()))
    for label, values in tput.items():
        ratios = [v / b for v, b in zip(values, base, strict=True)]
        print(
            f"| {label} | {statistics.median(values):.2f} | {statistics.median(ratios):.2f} "
            f"| {min(ratios):.2f} to {max(ratios):.2f} |"
        )
    if pub is not None:
        _print_pub(pub, args)
    return 0


def _print_pub(pub: dict, args: argparse.Namespace) -> None:
    print(
        f"\n| published 127.0.0.1 port, busybox httpd, {args.size_mb} MiB x {args.fetches} GETs "
        f"(median of {max(args.podman_rounds, 1)} alternating rounds) | MB/s |\n|---|---:|"
    )
    mbs = pub["MB/s"]
    for label, value in mbs.items():
        print(f"| {label} | {value:.0f} |")
    k = mbs.get("kobako run -p")
    p = next((v for label, v in mbs.items() if label.startswith("podman")), None)
    print(f"| ratio kobako/podman | {k / p:.2f} |" if k and p else "| ratio kobako/podman | n/a |")
    for label, s in pub.get("samples", {}).items():
        print(f"\n{label} rounds: {', '.join(f'{v:.0f}' for v in s)}", end="")
    print()
    for note in pub["notes"]:
        print(f"note: {note}")


if __name__ == "__main__":
    sys.exit(main())
