"""`kobako run` with bridge networking, inside the test's own network namespace (see conftest.py).

Debian's busybox wget crashes with -T: time limits come from the timeout applet, under sh.
"""

from __future__ import annotations

import os
import sys
import time

import pytest

pytestmark = pytest.mark.root

HTTPD = [
    "sh",
    "-c",
    "mkdir -p /www && echo hello-$(hostname) > /www/index.html && exec httpd -f -p 80 -h /www",
]


def fetch(knet, net: str, url: str, check: bool = True):  # type: ignore[no-untyped-def]
    return knet("run", "--rm", "--network", net, "busybox", "sh", "-c", f"timeout 5 wget -q -O- {url}; true",
                check=check)  # fmt: skip


def wait_fetch(knet, net: str, url: str, expect: str) -> str:  # type: ignore[no-untyped-def]
    out = ""
    for _ in range(20):
        out = fetch(knet, net, url).stdout
        if expect in out:
            return out
        time.sleep(0.2)
    return out


def test_by_name_not_across_networks_and_cleanup(knet) -> None:  # type: ignore[no-untyped-def]
    knet("network", "create", "--subnet", "10.231.1.0/24", "appnet")
    knet("network", "create", "--subnet", "10.231.2.0/24", "othernet")
    web = knet.run_d("--name", "web", "--network", "appnet", "--network-alias", "www", "busybox", *HTTPD)
    assert "hello-" in wait_fetch(knet, "appnet", "http://web/", "hello-")
    assert "hello-" in fetch(knet, "appnet", "http://www/").stdout
    ip = knet.ip_of("web")
    assert ip.startswith("10.231.1.")
    assert knet.inspect("web")["NetworkSettings"]["Networks"]["appnet"]["IPAddress"] == ip
    assert "hello-" not in fetch(knet, "othernet", f"http://{ip}/").stdout
    assert "hello-" not in fetch(knet, "othernet", "http://web/").stdout
    knet("rm", "-f", web)
    assert not [ln for ln in knet.links() if ln.startswith(("veth", "kbv", "eth"))], knet.links()
    check = knet("system", "check", check=False)
    assert check.returncode == 0, check.stderr
    knet("network", "rm", "appnet", "othernet")
    assert "kobako" not in knet.sh("nft", "list", "ruleset").stdout


def test_publish_tcp_and_port(knet) -> None:  # type: ignore[no-untyped-def]
    cid = knet.run_d("-p", "127.0.0.1:18080:80", "--network", "bridge", "busybox", *HTTPD)
    assert knet("port", cid).stdout.strip() == "80/tcp -> 127.0.0.1:18080"
    assert knet("port", cid, "80").stdout.strip() == "127.0.0.1:18080"
    out = ""
    for _ in range(20):
        out = knet.sh("sh", "-c", "timeout 3 busybox wget -q -O- http://127.0.0.1:18080/ || true").stdout
        if "hello-" in out:
            break
        time.sleep(0.2)
    assert "hello-" in out
    ports = knet.inspect(cid)["NetworkSettings"]["Ports"]
    assert ports["80/tcp"][0]["HostPort"] == "18080"
    knet("rm", "-f", cid)
    assert knet("system", "check", check=False).returncode == 0


_UDP_SERVER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 53))
s.settimeout(10)
data, peer = s.recvfrom(100)
s.sendto(b"pong " + data, peer)
"""
_UDP_CLIENT = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.3)
for _ in range(20):
    s.sendto(b"ping", ("127.0.0.1", 15353))
    try:
        print(s.recvfrom(100)[0].decode())
        break
    except OSError:
        pass
"""


def test_publish_udp(knet) -> None:  # type: ignore[no-untyped-def]
    """Debian's busybox nc has no -u: the UDP server runs in the container's namespace from here."""
    import subprocess

    cid = knet.run_d("-p", "127.0.0.1:15353:53/udp", "--network", "bridge", "busybox", "sleep", "60")
    assert knet("port", cid).stdout.strip() == "53/udp -> 127.0.0.1:15353"
    sandbox = knet.inspect(cid)["NetworkSettings"]["SandboxKey"]
    server = subprocess.Popen(["nsenter", f"--net={sandbox}", sys.executable, "-c", _UDP_SERVER])
    try:
        time.sleep(0.3)
        out = knet.sh(sys.executable, "-c", _UDP_CLIENT).stdout
    finally:
        server.kill()
        server.wait()
    assert "pong ping" in out
    knet("rm", "-f", cid)


def test_internal_has_no_route_out(knet) -> None:  # type: ignore[no-untyped-def]
    knet("network", "create", "--internal", "--subnet", "10.231.3.0/24", "inner")
    out = knet("run", "--rm", "--network", "inner", "busybox", "ip", "route").stdout
    assert "default" not in out
    assert "10.231.3.0/24" in out


def test_container_mode_shares_stack(knet) -> None:  # type: ignore[no-untyped-def]
    web = knet.run_d("--network", "bridge", "busybox", *HTTPD)
    time.sleep(0.3)
    out = knet("run", "--rm", "--network", f"container:{web}", "busybox",
               "sh", "-c", "timeout 5 wget -q -O- http://127.0.0.1/; true").stdout  # fmt: skip
    assert "hello-" in out
    ip = knet.ip_of(web)
    assert ip in knet("run", "--rm", "--network", f"container:{web}", "busybox", "ip", "addr").stdout


def test_parallel_distinct_addresses_and_nothing_left(knet) -> None:  # type: ignore[no-untyped-def]
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        ids = list(pool.map(lambda _i: knet.run_d("--network", "bridge", "busybox", "sleep", "60"), range(6)))
    ips = [knet.ip_of(cid) for cid in ids]
    assert len(set(ips)) == 6 and all(ips), ips
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda cid: knet("rm", "-f", cid), ids))
    assert not [ln for ln in knet.links() if ln not in ("lo", "kobako0")], knet.links()
    assert not list((knet.root / "run" / "netns").iterdir())
    check = knet("system", "check", check=False)
    assert check.returncode == 0, check.stderr


def test_stop_tears_down_and_start_sets_up_again(knet) -> None:  # type: ignore[no-untyped-def]
    cid = knet.run_d("--network", "bridge", "busybox", "sleep", "60")
    assert knet.ip_of(cid)
    knet("stop", "-t", "0", cid)
    assert knet.inspect(cid)["NetworkSettings"]["IPAddress"] == ""
    assert knet("system", "check", check=False).returncode == 0
    knet("start", cid)
    assert knet.ip_of(cid)
    knet("rm", "-f", cid)


def test_unknown_network_fails_125(knet) -> None:  # type: ignore[no-untyped-def]
    proc = knet("run", "--rm", "--network", "nosuchnet", "busybox", "true", check=False)
    assert proc.returncode == 125 and "nosuchnet" in proc.stderr
    assert knet("create", "--network", "nosuchnet", "busybox", check=False).returncode == 125


def test_rm_leaves_the_veth_to_the_kernel_exactly(knet) -> None:  # type: ignore[no-untyped-def]
    """`run --rm`: the CLI does not wait for the veth's deletion (the kernel deletes it with the namespace),
    yet the address and rows are released at once, `system check` is clean right after, and the veth is
    gone within moments."""
    first = knet(
        "run", "--rm", "--network", "bridge", "busybox", "ip", "-o", "-4", "addr", "show", "eth0"
    ).stdout
    check = knet("system", "check", check=False)
    assert check.returncode == 0, check.stderr + check.stdout
    assert not list((knet.root / "run" / "netns").iterdir())
    deadline = time.monotonic() + 2
    while [ln for ln in knet.links() if ln.startswith("kv")] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [ln for ln in knet.links() if ln.startswith("kv")], knet.links()
    second = knet(
        "run", "--rm", "--network", "bridge", "busybox", "ip", "-o", "-4", "addr", "show", "eth0"
    ).stdout
    assert first.split()[3] != second.split()[3]  # the just-released address is not handed out again at once


def test_rm_of_a_namespace_owner_still_joined_removes_its_veth_now(knet) -> None:  # type: ignore[no-untyped-def]
    """A --rm container whose namespace another container joined (--network container:ID): the namespace
    outlives the removal, so the veth is deleted synchronously, as before (no address left in use)."""
    owner = knet.run_d("--rm", "--network", "bridge", "busybox", "sleep", "2")
    guest = knet.run_d("--network", f"container:{owner}", "busybox", "sleep", "60")
    deadline = time.monotonic() + 10
    while owner in knet("ps", "-q", "--no-trunc").stdout and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.2)
    assert not [ln for ln in knet.links() if ln.startswith("kv")], knet.links()
    assert "eth0" not in knet("exec", guest, "ip", "-o", "link").stdout
    knet("rm", "-f", guest)
    check = knet("system", "check", check=False)
    assert check.returncode == 0, check.stderr + check.stdout


def _link_stats(knet, name: str) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    import json

    stats = json.loads(knet.sh("ip", "-s", "-j", "link", "show", "dev", name).stdout)[0]["stats64"]
    return stats["rx"]["packets"], stats["tx"]["packets"]


def test_same_network_traffic_goes_veth_to_veth(knet) -> None:  # type: ignore[no-untyped-def]
    """The fast path (network/fastpath.py): each started container's host veth carries the ingress program,
    the network's map holds its address, and traffic between two containers never leaves through the
    destination's host veth (the bridge's way in): only the program's redirect reaches it."""
    import json

    from kobako.engine.network import fastpath

    knet("network", "create", "--subnet", "10.231.9.0/24", "fastnet")
    net_id = json.loads(knet("network", "inspect", "fastnet").stdout)[0]["Id"]
    records = str(knet.root / "run" / "fastpath")
    serve = "mkdir -p /www && dd if=/dev/zero of=/www/blob bs=1k count=512 2>/dev/null && exec httpd -f -p 80 -h /www"
    web = knet.run_d("--name", "fweb", "--network", "fastnet", "busybox", "sh", "-c", serve)
    (web_veth,) = [ln for ln in knet.links() if ln.startswith("kv")]
    client = knet.run_d("--name", "fcli", "--network", "fastnet", "busybox", "sleep", "120")
    web_ip, client_ip = knet.ip_of("fweb"), knet.ip_of("fcli")
    entries = {}
    for _ in range(50):  # the monitor attaches the fast path once the task runs
        entries = fastpath.entries(records, net_id)
        if web_ip in entries and client_ip in entries:
            break
        time.sleep(0.1)
    assert set(entries) == {web_ip, client_ip}, entries
    for link in (ln for ln in knet.links() if ln.startswith("kv")):
        assert "kobako_fastpath" in knet.sh("tc", "filter", "show", "dev", link, "ingress").stdout, link
    got = ""
    for _ in range(20):  # httpd up, ARP resolved
        got = knet(
            "exec", "fcli", "sh", "-c", "timeout 5 wget -q -O- http://fweb/blob | wc -c", check=False
        ).stdout
        if got.strip() == "524288":
            break
        time.sleep(0.2)
    assert got.strip() == "524288"
    rx0, tx0 = _link_stats(knet, web_veth)
    out = knet("exec", "fcli", "sh", "-c", "timeout 5 wget -q -O- http://fweb/blob | wc -c").stdout
    rx1, tx1 = _link_stats(knet, web_veth)
    assert out.strip() == "524288"
    assert rx1 - rx0 >= 10, (rx0, rx1)  # the reply, from the web container into its host veth
    assert tx1 - tx0 <= 4, (tx0, tx1)  # the request and its ACKs went straight into the web container
    # An entry nobody explains (a crash between the map and the records) is a leak `system check` finds.
    fd = fastpath._open_map(records, net_id)
    assert fd is not None
    try:
        fastpath._update(fd, "10.231.9.200", 4242)
    finally:
        os.close(fd)
    stray = os.path.join(records, "ef" * 32)  # a network removed by a process that died before the record
    with open(stray, "w") as f:
        f.write("boot 1\n")
    check = knet("system", "check", check=False)
    assert check.returncode != 0 and "fast-path entry 10.231.9.200" in check.stdout + check.stderr
    assert "fast-path map record efefefefefef without a network" in check.stdout + check.stderr
    knet("system", "check", "--repair")
    assert set(fastpath.entries(records, net_id)) == {web_ip, client_ip}
    assert not os.path.exists(stray)
    knet("rm", "-f", web, client)
    assert fastpath.entries(records, net_id) == {}
    check = knet("system", "check", check=False)
    assert check.returncode == 0, check.stderr
    knet("network", "rm", "fastnet")
    assert not os.path.exists(os.path.join(records, net_id))  # the record goes with the network
