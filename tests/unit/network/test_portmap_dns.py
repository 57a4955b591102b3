"""Pure parts of port publishing and of the hosts-file name resolution."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kobako.engine.network import dns, portmap
from kobako.engine.network.store import Database, Endpoint, Network, Port
from kobako.errors import InvalidArgument


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        ("80", [("", 0, 0, 80, "tcp")]),
        ("8080:80", [("", 8080, 8080, 80, "tcp")]),
        ("0.0.0.0:8080:80", [("", 8080, 8080, 80, "tcp")]),
        ("127.0.0.1:8080:80/udp", [("127.0.0.1", 8080, 8080, 80, "udp")]),
        ("127.0.0.1::80", [("127.0.0.1", 0, 0, 80, "tcp")]),
        ("8000-8001:80-81", [("", 8000, 8000, 80, "tcp"), ("", 8001, 8001, 81, "tcp")]),
        ("8000-8010:80", [("", 8000, 8010, 80, "tcp")]),
        ("53-54/udp", [("", 0, 0, 53, "udp"), ("", 0, 0, 54, "udp")]),
    ],
)
def test_publish_specs(spec: str, want: list) -> None:
    assert portmap.parse_publish(spec) == want


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("80/sctp", "only tcp and udp"),
        ("[::1]:80:80", "IPv6"),
        ("1:2:3:4", "too many colons"),
        ("8000-8002:80-81", "differ in size"),
        ("70000", "out of range"),
        ("x:80", "invalid port"),
        ("300.1.1.1:80:80", "invalid IPv4"),
    ],
)
def test_bad_publish_specs(spec: str, match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        portmap.parse_publish(spec)


def test_elements_and_docker_view() -> None:
    any_ip = Port("tcp", "", 8080, "c", "10.0.0.2", 80)
    one_ip = Port("udp", "127.0.0.1", 5353, "c", "10.0.0.2", 53)
    assert portmap.port_values([any_ip, one_ip]) == [
        "tcp_any { 8080 : 10.0.0.2 . 80 }",
        "udp_ip { 127.0.0.1 . 5353 : 10.0.0.2 . 53 }",
    ]
    assert portmap.port_keys([any_ip, one_ip]) == ["tcp_any { 8080 }", "udp_ip { 127.0.0.1 . 5353 }"]
    assert portmap.docker_ports([one_ip, any_ip]) == {
        "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}],
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}],
    }
    assert portmap.network_elements("kb-x", True, "10.1.0.0/24") == [
        'bridges { "kb-x" }', 'internal { "kb-x" }', 'same { "kb-x" . "kb-x" }', 'subnets { "kb-x" . 10.1.0.0/24 }'
    ]  # fmt: skip


def test_nft_json_elements_read_back_as_text() -> None:
    text = portmap._elem_text
    assert text([8080, {"concat": ["10.0.0.2", 80]}]) == "8080 : 10.0.0.2 . 80"
    assert text({"concat": ["kb-x", {"prefix": {"addr": "10.1.0.0", "len": 24}}]}) == "kb-x . 10.1.0.0/24"
    assert text("kb-x") == "kb-x"


def test_hosts_block_is_rewritten_in_place(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1\tlocalhost\n10.0.0.9\tself")  # no trailing newline
    inode = os.stat(hosts).st_ino
    assert dns.rewrite(str(hosts), dns.block([], ["10.0.0.3\tweb"]))
    assert (
        hosts.read_text() == f"127.0.0.1\tlocalhost\n10.0.0.9\tself\n{dns.BEGIN}\n10.0.0.3\tweb\n{dns.END}\n"
    )
    dns.rewrite(str(hosts), dns.block(["10.0.0.1\tgw"], ["10.0.0.4\tdb"]))
    assert hosts.read_text().count(dns.BEGIN) == 1
    assert "10.0.0.3" not in hosts.read_text() and "10.0.0.1\tgw\n10.0.0.4\tdb" in hosts.read_text()
    dns.rewrite(str(hosts), "")
    assert hosts.read_text() == "127.0.0.1\tlocalhost\n10.0.0.9\tself\n"
    assert os.stat(hosts).st_ino == inode
    assert dns.rewrite(str(tmp_path / "missing"), "x") is False


def test_add_hosts_and_nameservers(tmp_path: Path) -> None:
    assert dns.resolve_add_hosts(["gw:host-gateway", "x=1.2.3.4", "db=host-gateway"], "10.0.0.1") == [
        "10.0.0.1\tgw", "10.0.0.1\tdb"
    ]  # fmt: skip
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.53\nnameserver 192.0.2.53\nsearch example\n")
    assert dns.nameservers([], str(resolv)) == ["192.0.2.53"]
    assert dns.nameservers(["192.0.2.1"], str(resolv)) == ["192.0.2.1"]
    assert dns.nameservers([], "") == []


def test_peer_lines_only_on_user_defined_networks(tmp_path: Path) -> None:
    db = Database(str(tmp_path))
    user = Network("u", "app", "kb-u", "10.0.0.0/24", "10.0.0.1")
    default = Network("d", "bridge", "kobako0", "10.88.0.0/16", "10.88.0.1", dns=False)
    a, b = "a" * 64, "b" * 64
    with db.transaction() as conn:
        for net in (user, default):
            db.insert_network(conn, net)
        for ep in (Endpoint(a, "u", "alpha", "eth0", "kv1", "10.0.0.2", "m", ["web"]),
                   Endpoint(b, "u", "beta", "eth0", "kv2", "10.0.0.3", "m", []),
                   Endpoint(b, "d", "beta", "eth1", "kv3", "10.88.0.2", "m", [])):  # fmt: skip
            conn.execute("INSERT INTO endpoints VALUES (?,?,?,?,?,?,?,?)", ep.row())
    assert dns.peer_lines(db, a) == [f"10.0.0.2\talpha web {a[:12]}", f"10.0.0.3\tbeta {b[:12]}"]
    assert dns.neighbours(db, {"d"}) == {b}
