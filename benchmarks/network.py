"""Container networking: setup cost and throughput, all inside network namespaces this script makes.

Setup cost: ``NetworkService.setup`` + ``teardown`` of one container on a user network, cold (a fresh
interpreter: imports, pyroute2's message classes, the nftables table) and warm (the next containers in
the same process), next to the cost of loading pyroute2's messages alone.

Throughput (iperf3 when installed, else a Python socket stream): container → container through a
kobako bridge with kobako's nftables rules loaded (br_netfilter on this host sends bridged traffic through
them), a host → container published port (DNAT), against the peer: a plain veth pair between two
namespaces with no bridge and no rules.

    sudo .venv/bin/python benchmarks/network.py [--seconds 3] [--rounds 20]
"""

from __future__ import annotations

import argparse
import json
import os
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


def throughput(host: str, root: str, seconds: float) -> dict:
    a, b = os.urandom(32).hex(), os.urandom(32).hex()

    def setup() -> dict:
        from kobako.engine.network.service import NetworkService

        svc = NetworkService(root, resolv_conf="")
        svc.create("tput", subnet="10.211.0.0/24")
        ra = svc.setup(a, "srv", ["tput"], [], None, ["127.0.0.1:15201:5201"], [], [], [])
        rb = svc.setup(b, "cli", ["tput"], [], None, [], [], [], [])
        return {"a": ra["netns_path"], "ip": ra["networks"]["tput"]["IPAddress"], "b": rb["netns_path"]}

    s = in_child(host, setup)
    plain = _plain_pair(seconds)
    bare_bridge = _plain_bridge(seconds)
    bridged = stream(s["a"], s["b"], s["ip"], 5201, seconds)
    published = stream(s["a"], host, "127.0.0.1", 15201, seconds, listen=5201)
    direct = stream(s["a"], host, s["ip"], 5201, seconds)

    def down() -> None:
        from kobako.engine.network.service import NetworkService

        svc = NetworkService(root, resolv_conf="")
        svc.teardown(a)
        svc.teardown(b)
        svc.remove("tput")

    in_child(host, down)
    return {
        "plain veth pair (peer, no bridge, no rules)": plain,
        "two veths on a plain bridge (no kobako rules)": bare_bridge,
        "container → container (kobako bridge + rules)": bridged,
        "host → container address (routed)": direct,
        "host 127.0.0.1:PORT → container (published, DNAT)": published,
    }


def _namespaces(count: int) -> list[str]:
    names = ["kbbench-" + uuid.uuid4().hex[:8] for _ in range(count)]
    for name in names:
        subprocess.run(["ip", "netns", "add", name], check=True)
        sh("ip", "link", "set", "lo", "up", netns=f"/run/netns/{name}")
    return names


def _drop(names: list[str]) -> None:
    for name in names:
        subprocess.run(["ip", "netns", "delete", name], check=False)


def _plain_pair(seconds: float) -> float:
    """The peer: two namespaces joined by one veth pair, nothing else."""
    names = _namespaces(2)
    p1, p2 = (f"/run/netns/{n}" for n in names)
    try:
        sh("ip", "link", "add", "v1", "type", "veth", "peer", "name", "v2", "netns", p2, netns=p1)
        for ns, dev, addr in ((p1, "v1", "10.212.0.1/24"), (p2, "v2", "10.212.0.2/24")):
            sh("ip", "addr", "add", addr, "dev", dev, netns=ns)
            sh("ip", "link", "set", dev, "up", netns=ns)
        return stream(p2, p1, "10.212.0.2", 5201, seconds)
    finally:
        _drop(names)


def _plain_bridge(seconds: float) -> float:
    """Two namespaces on a bridge in a third, no nftables at all: what the bridge alone costs."""
    names = _namespaces(3)
    hub, c1, c2 = (f"/run/netns/{n}" for n in names)
    try:
        sh("ip", "link", "add", "br0", "type", "bridge", netns=hub)
        sh("ip", "link", "set", "br0", "up", netns=hub)
        for i, ns in ((1, c1), (2, c2)):
            sh("ip", "link", "add", f"h{i}", "type", "veth", "peer", "name", "eth0", "netns", ns, netns=hub)
            sh("ip", "link", "set", f"h{i}", "master", "br0", "up", netns=hub)
            sh("ip", "addr", "add", f"10.213.0.{i}/24", "dev", "eth0", netns=ns)
            sh("ip", "link", "set", "eth0", "up", netns=ns)
        return stream(c2, c1, "10.213.0.2", 5201, seconds)
    finally:
        _drop(names)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 1
    name = "kbbench-" + uuid.uuid4().hex[:8]
    subprocess.run(["ip", "netns", "add", name], check=True)
    host = f"/run/netns/{name}"
    root = tempfile.mkdtemp(prefix="kobako-netbench-")
    try:
        sh("ip", "link", "set", "lo", "up", netns=host)
        costs = setup_costs(host, root, args.rounds)
        tput = throughput(host, root, args.seconds)
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
        f"\n| throughput ({tool}, {args.seconds:g} s, one TCP stream) | Gbit/s | ratio to peer |\n|---|---:|---:|"
    )
    base = next(iter(tput.values()))
    for label, value in tput.items():
        print(f"| {label} | {value:.2f} | {value / base:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
