"""The setup/teardown requests netlink.py encodes with struct are byte for byte what pyroute2's message
classes (which it replaced on that path) encode."""

from __future__ import annotations

import socket

from kobako.engine.network import netlink as nl
from kobako.engine.network.bridge import _mac_bytes


def _pyroute2(cls, fields: dict, attrs: list) -> bytes:  # type: ignore[no-untyped-def]
    msg = cls()
    for key, value in fields.items():
        msg[key] = value
    msg["attrs"] = attrs
    msg.encode()
    return bytes(msg.data[16:])  # the body, after the nlmsghdr


def test_veth_with_peer_in_a_namespace() -> None:
    ifinfmsg = nl.load_messages()[0]
    peer = {"attrs": [("IFLA_IFNAME", "eth0"), ("IFLA_NET_NS_FD", 7), ("IFLA_ADDRESS", "02:4b:0a:00:00:02"),
                      ("IFLA_MTU", 1500)]}  # fmt: skip
    want = _pyroute2(ifinfmsg, {"flags": 1, "change": 1}, [
        ("IFLA_IFNAME", "kvabc"), ("IFLA_MASTER", 5), ("IFLA_MTU", 1500),
        ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "veth"),
                                     ("IFLA_INFO_DATA", {"attrs": [("VETH_INFO_PEER", peer)]})]}),
    ])  # fmt: skip
    raw_peer = nl.ifinfo(attrs=(nl.attr(nl.IFLA_IFNAME, "eth0"), nl.attr(nl.IFLA_NET_NS_FD, 7),
                                nl.attr(nl.IFLA_ADDRESS, _mac_bytes("02:4b:0a:00:00:02")),
                                nl.attr(nl.IFLA_MTU, 1500)))  # fmt: skip
    got = nl.ifinfo(flags=nl.IFF_UP, change=nl.IFF_UP, attrs=(
        nl.attr(nl.IFLA_IFNAME, "kvabc"), nl.attr(nl.IFLA_MASTER, 5), nl.attr(nl.IFLA_MTU, 1500),
        nl.attr(nl.IFLA_LINKINFO, [nl.attr(nl.IFLA_INFO_KIND, "veth"),
                                   nl.attr(nl.IFLA_INFO_DATA, [nl.attr(nl.VETH_INFO_PEER, raw_peer)])]),
    ))  # fmt: skip
    assert got == want


def test_bridge_port_mode_and_link_by_index() -> None:
    ifinfmsg = nl.load_messages()[0]
    want = _pyroute2(ifinfmsg, {}, [
        ("IFLA_IFNAME", "kvabc"),
        ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_SLAVE_KIND", "bridge"),
                                     ("IFLA_INFO_SLAVE_DATA", {"attrs": [("IFLA_BRPORT_MODE", 1)]})]}),
    ])  # fmt: skip
    got = nl.ifinfo(attrs=(
        nl.attr(nl.IFLA_IFNAME, "kvabc"),
        nl.attr(nl.IFLA_LINKINFO, [nl.attr(nl.IFLA_INFO_SLAVE_KIND, "bridge"),
                                   nl.attr(nl.IFLA_INFO_SLAVE_DATA, [nl.attr(nl.IFLA_BRPORT_MODE, 1, u8=True)])]),
    ))  # fmt: skip
    assert got == want
    assert nl.ifinfo(3, nl.IFF_UP, nl.IFF_UP) == _pyroute2(
        ifinfmsg, {"index": 3, "flags": 1, "change": 1}, []
    )


def test_address_and_default_route() -> None:
    _, ifaddrmsg, rtmsg = nl.load_messages()
    want = _pyroute2(ifaddrmsg, {"family": socket.AF_INET, "prefixlen": 24, "index": 4},
                     [("IFA_LOCAL", "10.88.0.7"), ("IFA_ADDRESS", "10.88.0.7")])  # fmt: skip
    raw = socket.inet_aton("10.88.0.7")
    assert nl.ifaddr(4, 24, (nl.attr(nl.IFA_LOCAL, raw), nl.attr(nl.IFA_ADDRESS, raw))) == want
    want = _pyroute2(rtmsg, {"family": socket.AF_INET, "dst_len": 0, "table": 254, "proto": 4, "scope": 0,
                             "type": 1}, [("RTA_GATEWAY", "10.88.0.1"), ("RTA_OIF", 4)])  # fmt: skip
    got = nl.route(
        0, 254, 4, 0, 1, (nl.attr(nl.RTA_GATEWAY, socket.inet_aton("10.88.0.1")), nl.attr(nl.RTA_OIF, 4))
    )
    assert got == want
