"""NetworkService end to end with the real kernel, inside the test's own network namespace.

"Containers" here are the namespaces the service makes; sockets are opened inside them directly (a socket
stays in the namespace it was made in), so no extra processes are needed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading

import pytest

pytestmark = pytest.mark.root


def cid() -> str:
    return os.urandom(32).hex()


def inside(path: str, *args: str) -> str:
    return subprocess.run(
        ["nsenter", f"--net={path}", *args], capture_output=True, text=True, check=True
    ).stdout


def local_address(netsb, ip: str) -> None:
    """Give the test's namespace another local address (a veth pair: this kernel has no dummy links)."""
    netsb.cmd("ip", "link", "add", "kbt-d0", "type", "veth", "peer", "name", "kbt-d1")
    netsb.cmd("ip", "addr", "add", f"{ip}/32", "dev", "kbt-d0")
    netsb.cmd("ip", "link", "set", "kbt-d0", "up")
    netsb.cmd("ip", "link", "set", "kbt-d1", "up")


def test_bridge_veth_addresses_and_routes(netsb) -> None:
    a = cid()

    def body() -> tuple:
        svc = netsb.service()
        net = svc.create("kbt-front", subnet="10.201.7.0/24")
        return net.bridge, svc.setup(a, "alpha", ["kbt-front"], [], None, [], [], [], [])

    bridge, res = netsb.call(body)
    ep = res["networks"]["kbt-front"]
    assert (ep["IPAddress"], ep["Gateway"], ep["IPPrefixLen"]) == ("10.201.7.2", "10.201.7.1", 24)
    assert ep["MacAddress"] == "02:4b:0a:c9:07:02"
    ip = ["ip", "-n", netsb.name]
    detail = subprocess.run(
        [*ip, "-d", "link", "show", bridge], capture_output=True, text=True, check=True
    ).stdout
    assert "bridge" in detail and "UP" in detail
    veth = subprocess.run(
        [*ip, "-d", "link", "show", ep["EndpointID"]], capture_output=True, text=True, check=True
    ).stdout
    assert f"master {bridge}" in veth and "veth" in veth
    assert (
        "10.201.7.1/24"
        in subprocess.run([*ip, "addr", "show", bridge], capture_output=True, text=True).stdout
    )
    path = res["netns_path"]
    assert "10.201.7.2/24" in inside(path, "ip", "addr", "show", "eth0")
    # no default route in the test's namespace: the container's keeps to Ethernet's 1500
    assert "default via 10.201.7.1 dev eth0 proto static mtu 1500" in inside(path, "ip", "route")
    assert "UP" in inside(path, "ip", "link", "show", "lo")

    def down() -> list:
        svc = netsb.service()
        svc.teardown(a)
        svc.teardown(a)  # idempotent
        left = svc.ipam.allocations()
        svc.remove("kbt-front")
        return left

    assert netsb.call(down) == []
    assert netsb.links() == ["lo"]
    assert "kobako" not in netsb.ruleset()
    assert not os.path.exists(path)


def test_two_containers_talk_and_resolve_each_other_through_hosts_files(netsb, tmp_path) -> None:
    a, b = cid(), cid()
    hosts = {c: tmp_path / f"{c[:6]}.hosts" for c in (a, b)}
    for f in hosts.values():
        f.write_text("127.0.0.1\tlocalhost\n")
    inode = os.stat(hosts[a]).st_ino

    def body() -> tuple:
        svc = netsb.service()
        svc.create("kbt-app", subnet="10.201.8.0/24")
        ra = svc.setup(a, "alpha", ["kbt-app"], ["web"], None, [], [], [], [], hosts_file=str(hosts[a]))
        rb = svc.setup(b, "beta", ["kbt-app"], [], None, [], [], [], [], hosts_file=str(hosts[b]))
        netsb.serve(ra["netns_path"], 8080, b"hello from alpha")
        return ra, rb, netsb.ask(rb["netns_path"], ra["networks"]["kbt-app"]["IPAddress"], 8080)

    ra, rb, reply = netsb.call(body)
    assert reply == f"hello from alpha {rb['networks']['kbt-app']['IPAddress']}"
    text_a = hosts[a].read_text()
    assert text_a.startswith("127.0.0.1\tlocalhost\n")
    assert f"{rb['networks']['kbt-app']['IPAddress']}\tbeta {b[:12]}" in text_a  # a learnt of b in place
    assert f"{ra['networks']['kbt-app']['IPAddress']}\talpha web {a[:12]}" in hosts[b].read_text()
    assert os.stat(hosts[a]).st_ino == inode  # rewritten in place: a bind mount keeps seeing it

    netsb.call(lambda: netsb.service().teardown(b))
    assert "beta" not in hosts[a].read_text()
    netsb.call(lambda: netsb.service().teardown(a))


def test_different_networks_are_isolated(netsb) -> None:
    a, b = cid(), cid()

    def body() -> tuple:
        svc = netsb.service()
        svc.create("kbt-red", subnet="10.201.9.0/24")
        svc.create("kbt-blue", subnet="10.201.10.0/24")
        ra = svc.setup(a, "red", ["kbt-red"], [], None, [], [], [], [])
        rb = svc.setup(b, "blue", ["kbt-blue"], [], None, [], [], [], [])
        netsb.serve(ra["netns_path"], 8080, b"red")
        netsb.serve(None, 8081, b"host")  # the "host" itself stays reachable from containers
        red_ip = ra["networks"]["kbt-red"]["IPAddress"]
        return (netsb.unreachable(rb["netns_path"], red_ip, 8080),
                netsb.ask(rb["netns_path"], "10.201.9.1", 8081).split()[0])  # fmt: skip

    blocked, host = netsb.call(body)
    assert blocked
    assert host == "host"


def test_internal_network_has_no_way_out(netsb) -> None:
    a, b = cid(), cid()
    local_address(netsb, "198.51.100.1")

    def body() -> tuple:
        svc = netsb.service()
        svc.create("kbt-priv", subnet="10.201.11.0/24", internal=True)
        svc.create("kbt-pub", subnet="10.201.12.0/24")
        ri = svc.setup(a, "vault", ["kbt-priv"], [], None, [], [], [], [])
        rp = svc.setup(b, "front", ["kbt-pub"], [], None, [], [], [], [])
        netsb.serve(None, 8082, b"outside")
        no_route = netsb.unreachable(ri["netns_path"], "198.51.100.1", 8082)
        inside(ri["netns_path"], "ip", "route", "add", "default", "via", "10.201.11.1")  # try anyway
        still_blocked = netsb.unreachable(ri["netns_path"], "198.51.100.1", 8082)
        gateway_blocked = netsb.unreachable(ri["netns_path"], "10.201.11.1", 8082)
        routed = netsb.ask(rp["netns_path"], "198.51.100.1", 8082).split()[0]
        return ri, no_route, still_blocked, gateway_blocked, routed

    ri, no_route, still_blocked, gateway_blocked, routed = netsb.call(body)
    assert "default" not in inside(ri["netns_path"], "ip", "route", "show", "table", "main").replace(
        "default via 10.201.11.1", ""
    )
    assert no_route and still_blocked and gateway_blocked
    assert routed == "outside"


def test_outbound_traffic_is_masqueraded(netsb) -> None:
    """An "outside" namespace linked to the test's: it has no route to the container subnet, so a reply
    reaches the container only if its source was rewritten to the host's address."""
    a = cid()
    outside = netsb.name + "-o"
    subprocess.run(["ip", "netns", "add", outside], check=True)
    try:
        netsb.cmd("ip", "link", "add", "kbt-up", "type", "veth", "peer", "name", "kbt-out", "netns", outside)
        netsb.cmd("ip", "addr", "add", "192.0.2.1/24", "dev", "kbt-up")
        netsb.cmd("ip", "link", "set", "kbt-up", "up")
        for cmd in (["addr", "add", "192.0.2.2/24", "dev", "kbt-out"], ["link", "set", "kbt-out", "up"],
                    ["link", "set", "lo", "up"]):  # fmt: skip
            subprocess.run(["ip", "-n", outside, *cmd], check=True)

        def body() -> str:
            svc = netsb.service()
            svc.create("kbt-nat", subnet="10.201.13.0/24")
            r = svc.setup(a, "c", ["kbt-nat"], [], None, [], [], [], [])
            netsb.serve(f"/run/netns/{outside}", 9000, b"seen-from")
            return netsb.ask(r["netns_path"], "192.0.2.2", 9000)

        assert netsb.call(body) == "seen-from 192.0.2.1"
    finally:
        subprocess.run(["ip", "netns", "delete", outside], check=False)


def _big_datagram_echo(path: str, port: int) -> socket.socket:
    """Answer one UDP datagram with its length and its sender's address."""
    sock = netsb_sock(path, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", port))

    def loop() -> None:
        data, peer = sock.recvfrom(65535)
        sock.sendto(f"{len(data)} {peer[0]}".encode(), peer)

    threading.Thread(target=loop, daemon=True).start()
    return sock


def netsb_sock(path: str, kind: int) -> socket.socket:
    from kobako.engine.network import netns

    return netns.run_in(path, lambda: socket.socket(socket.AF_INET, kind))


def test_links_carry_large_frames_and_the_default_route_keeps_the_uplink_mtu(netsb) -> None:
    """Bridge and veths at 65535 (host-internal traffic), the container's default route at the MTU of the
    host's uplink (here a veth at 1400 to an "outside" namespace): a 4000-byte datagram leaves fragmented
    by the container and arrives whole; sent at the links' MTU it would carry DF and be dropped at the
    host. A network made with ``mtu=1300`` uses that everywhere."""
    a, b = cid(), cid()
    outside = netsb.name + "-o"
    subprocess.run(["ip", "netns", "add", outside], check=True)
    try:
        netsb.cmd("ip", "link", "add", "kbt-up", "mtu", "1400", "type", "veth", "peer", "name", "kbt-out",
                  "mtu", "1400", "netns", outside)  # fmt: skip
        netsb.cmd("ip", "addr", "add", "192.0.2.1/24", "dev", "kbt-up")
        netsb.cmd("ip", "link", "set", "kbt-up", "up")
        netsb.cmd("ip", "route", "add", "default", "via", "192.0.2.2")
        for cmd in (["addr", "add", "192.0.2.2/24", "dev", "kbt-out"], ["link", "set", "kbt-out", "up"],
                    ["link", "set", "lo", "up"]):  # fmt: skip
            subprocess.run(["ip", "-n", outside, *cmd], check=True)

        def body() -> tuple:
            svc = netsb.service()
            net = svc.create("kbt-mtu", subnet="10.201.19.0/24")
            small = svc.create("kbt-mtu-small", subnet="10.201.20.0/24", options={"mtu": "1300"})
            r = svc.setup(a, "c", ["kbt-mtu"], [], None, [], [], [], [])
            s = svc.setup(b, "d", ["kbt-mtu-small"], [], None, [], [], [], [])
            server = _big_datagram_echo(f"/run/netns/{outside}", 9001)
            with netsb_sock(r["netns_path"], socket.SOCK_DGRAM) as sock:
                sock.settimeout(3)
                sock.sendto(b"x" * 4000, ("192.0.2.2", 9001))
                echoed = sock.recvfrom(100)[0].decode()
            server.close()
            return net.bridge, small.bridge, r, s, echoed

        bridge, small_bridge, r, s, echoed = netsb.call(body)
        assert echoed == "4000 192.0.2.1"
        host = subprocess.run(["ip", "-n", netsb.name, "link", "show"], capture_output=True, text=True).stdout
        for ifname, mtu in ((bridge, 65535), (r["networks"]["kbt-mtu"]["EndpointID"], 65535),
                            (small_bridge, 1300), (s["networks"]["kbt-mtu-small"]["EndpointID"], 1300)):  # fmt: skip
            line = next(ln for ln in host.splitlines() if f" {ifname}" in ln)
            assert f"mtu {mtu} " in line, line
        assert "mtu 65535 " in inside(r["netns_path"], "ip", "link", "show", "eth0")
        assert "default via 10.201.19.1 dev eth0 proto static mtu 1400" in inside(
            r["netns_path"], "ip", "route"
        )
        assert "mtu 1300 " in inside(s["netns_path"], "ip", "link", "show", "eth0")
        route = inside(s["netns_path"], "ip", "route")
        assert "default via 10.201.20.1 dev eth0" in route and "mtu" not in route  # the link's is lower
    finally:
        subprocess.run(["ip", "netns", "delete", outside], check=False)


def test_published_ports_tcp_udp_localhost_and_hairpin(netsb) -> None:
    a, b = cid(), cid()
    local_address(netsb, "198.51.100.7")

    def body() -> dict:
        svc = netsb.service()
        svc.create("kbt-pub", subnet="10.201.14.0/24")
        ra = svc.setup(
            a, "web", ["kbt-pub"], [], None, ["18080:80", "127.0.0.1:15353:53/udp"], ["81/tcp"], [], []
        )
        rb = svc.setup(b, "client", ["kbt-pub"], [], None, [], [], [], [])
        svc.accelerate(a)  # the same-network fast path, as the engine attaches it: published ports and
        svc.accelerate(b)  # hairpin keep working through the bridge
        path = ra["netns_path"]
        netsb.serve(path, 80, b"tcp80", count=16)
        netsb.serve(path, 53, b"udp53", udp=True, count=16)
        netsb.serve(path, 81, b"tcp81")
        random_port = int(ra["ports"]["81/tcp"][0]["HostPort"])
        return {
            "ports": ra["ports"],
            "loopback": netsb.ask(None, "127.0.0.1", 18080),
            "host_ip": netsb.ask(None, "198.51.100.7", 18080),
            "udp": netsb.ask(None, "127.0.0.1", 15353, udp=True),
            "udp_other_ip": netsb.unreachable(None, "198.51.100.7", 15353, udp=True),
            "random": netsb.ask(None, "127.0.0.1", random_port),
            "hairpin_self": netsb.ask(path, "198.51.100.7", 18080),
            "hairpin_peer": netsb.ask(rb["netns_path"], "198.51.100.7", 18080),
            "random_port": random_port,
        }

    r = netsb.call(body)
    assert r["ports"]["80/tcp"] == [{"HostIp": "0.0.0.0", "HostPort": "18080"}]
    assert r["ports"]["53/udp"] == [{"HostIp": "127.0.0.1", "HostPort": "15353"}]
    lo, hi = (int(x) for x in netsb.cmd("cat", "/proc/sys/net/ipv4/ip_local_port_range").stdout.split())
    assert lo <= r["random_port"] <= hi
    assert r["loopback"].startswith("tcp80 10.201.14.1")  # 127/8 source masqueraded to the gateway
    assert r["host_ip"].startswith("tcp80 ")
    assert r["udp"] == "udp53 10.201.14.1"
    assert r["udp_other_ip"]  # published on 127.0.0.1 only
    assert r["random"].startswith("tcp81 ")
    assert r["hairpin_self"] == "tcp80 10.201.14.1" and r["hairpin_peer"] == "tcp80 10.201.14.1"


def test_port_conflicts_are_refused(netsb) -> None:
    from kobako.errors import Conflict

    a, b = cid(), cid()

    def body() -> str:
        svc = netsb.service()
        svc.create("kbt-c", subnet="10.201.15.0/24")
        svc.setup(a, "one", ["kbt-c"], [], None, ["18081:80"], [], [], [])
        try:
            svc.setup(b, "two", ["kbt-c"], [], None, ["127.0.0.1:18081:80"], [], [], [])
        except Conflict as exc:
            return str(exc) + f" | left={svc.db.sandbox(b)}"
        return "no conflict"

    text = netsb.call(body)
    assert "already allocated" in text and "left=None" in text  # the failed setup left nothing


def test_connect_and_disconnect_a_running_container(netsb) -> None:
    a = cid()

    def body() -> tuple:
        svc = netsb.service()
        svc.create("kbt-one", subnet="10.201.16.0/24")
        svc.create("kbt-two", subnet="10.201.17.0/24", internal=True)
        r = svc.setup(a, "multi", ["kbt-one"], [], None, [], [], [], [])
        second = svc.connect("kbt-two", a, ip="10.201.17.50", aliases=["db"])
        during = inside(r["netns_path"], "ip", "-o", "addr", "show")
        svc.disconnect("kbt-two", a)
        after = inside(r["netns_path"], "ip", "-o", "addr", "show")
        return second, during, after, svc.ipam.allocations()

    second, during, after, allocs = netsb.call(body)
    assert second["IPAddress"] == "10.201.17.50" and second["Aliases"] == ["db"]
    assert "eth1" in during and "10.201.17.50/24" in during
    assert "eth1" not in after and "10.201.16.2/24" in after
    assert [(ip, owner) for _nid, ip, owner in allocs] == [("10.201.16.2", a)]


def test_many_endpoints_in_parallel_get_distinct_addresses(netsb) -> None:
    ids = [cid() for _ in range(12)]

    def body() -> list:
        netsb.service().create("kbt-par", subnet="10.201.18.0/24")
        pids = []
        for i in range(4):  # four processes, three containers each, all at once
            pid = os.fork()
            if pid == 0:
                code = 0
                try:
                    svc = netsb.service()
                    for c in ids[i * 3 : i * 3 + 3]:
                        svc.setup(c, f"p{c[:6]}", ["kbt-par"], [], None, [], [], [], [])
                except BaseException:
                    code = 1
                os._exit(code)
            pids.append(pid)
        codes = [os.waitpid(p, 0)[1] for p in pids]
        svc = netsb.service()
        return [codes, [(ip, owner) for _n, ip, owner in svc.ipam.allocations()], svc.check()]

    codes, allocs, leaks = netsb.call(body)
    assert codes == [0, 0, 0, 0]
    assert sorted(owner for _ip, owner in allocs) == sorted(ids)
    assert len({ip for ip, _owner in allocs}) == 12
    assert leaks == []
    assert sum(1 for name in netsb.links() if name.startswith("kv")) == 12

    def down() -> list:
        svc = netsb.service()
        for c in ids:
            svc.teardown(c)
        svc.remove("kbt-par")
        return svc.check()

    assert netsb.call(down) == []
    assert netsb.links() == ["lo"]
    assert "kobako" not in netsb.ruleset()
