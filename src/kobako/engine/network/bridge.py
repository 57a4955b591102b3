"""Linux bridges and veth endpoints, over rtnetlink (``kobako.engine.network.netlink``).

A network is one bridge holding the gateway address; an endpoint is a veth pair whose host end is a port
of that bridge and whose other end is created *directly inside* the container's namespace, named
``eth<N>``, with its MAC and up-flag set in the same request (one round trip instead of create, move,
rename, set). The inside end then gets its address and, on the container's first routed network, the
default route. Everything here is idempotent where a crash could have left it half done: an existing
bridge or address is accepted, a missing link on delete is not an error.
"""

from __future__ import annotations

import errno
import os
import socket

from kobako.engine.network.netlink import (
    IFF_UP,
    NLM_F_CREATE,
    NLM_F_EXCL,
    RTM_DELLINK,
    RTM_NEWADDR,
    RTM_NEWLINK,
    RTM_NEWROUTE,
    Netlink,
    load_messages,
)

_RT_TABLE_MAIN, _RTPROT_STATIC, _RT_SCOPE_UNIVERSE, _RTN_UNICAST = 254, 4, 0, 1
_IFINDEX_LO = 1  # loopback is always ifindex 1 in a fresh namespace
DEFAULT_MTU = 1500


def mac_for(ip: str) -> str:
    """A locally administered MAC derived from the IPv4 address (like docker's 02:42:...): stable for an
    address, so a reused address does not leave peers with a stale ARP entry for another MAC."""
    raw = socket.inet_aton(ip)
    return "02:4b:" + ":".join(f"{b:02x}" for b in raw)


def _random_mac() -> str:
    raw = bytearray(os.urandom(6))
    raw[0] = (raw[0] & 0xFE) | 0x02  # unicast, locally administered
    return ":".join(f"{b:02x}" for b in raw)


def ensure_bridge(nl: Netlink, name: str, gateway: str, prefixlen: int, mtu: int = DEFAULT_MTU) -> int:
    """Create (or accept) bridge ``name`` with ``gateway/prefixlen``, up; return its ifindex."""
    ifinfmsg = load_messages()[0]
    msg = ifinfmsg()
    msg["flags"], msg["change"] = IFF_UP, IFF_UP
    # A fixed MAC: otherwise the bridge takes the lowest port MAC and changes it as ports come and go.
    msg["attrs"] = [
        ("IFLA_IFNAME", name), ("IFLA_MTU", mtu), ("IFLA_ADDRESS", _random_mac()),
        ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "bridge")]}),
    ]  # fmt: skip
    try:
        nl.request(RTM_NEWLINK, msg, NLM_F_CREATE | NLM_F_EXCL)
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise
        set_up(nl, name)  # made by a racing setup or before a crash: make sure it is up
    index = nl.link_index(name)
    if index is None:
        raise OSError(errno.ENODEV, f"bridge {name} vanished while being set up")
    add_address(nl, index, gateway, prefixlen)
    return index


def set_up(nl: Netlink, name: str = "", index: int = 0) -> None:
    ifinfmsg = load_messages()[0]
    msg = ifinfmsg()
    msg["index"] = index
    msg["flags"], msg["change"] = IFF_UP, IFF_UP
    if name:
        msg["attrs"] = [("IFLA_IFNAME", name)]
    nl.request(RTM_NEWLINK, msg)


def add_address(nl: Netlink, index: int, ip: str, prefixlen: int) -> None:
    ifaddrmsg = load_messages()[1]
    msg = ifaddrmsg()
    msg["family"], msg["prefixlen"], msg["index"] = socket.AF_INET, prefixlen, index
    msg["attrs"] = [("IFA_LOCAL", ip), ("IFA_ADDRESS", ip)]
    try:
        nl.request(RTM_NEWADDR, msg, NLM_F_CREATE | NLM_F_EXCL)
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise


def add_veth(nl: Netlink, host_ifname: str, bridge_index: int, netns_fd: int, ctr_ifname: str, mac: str,
             mtu: int = DEFAULT_MTU) -> None:  # fmt: skip
    """The host end joins the bridge, the peer is born inside the namespace open at ``netns_fd``."""
    ifinfmsg = load_messages()[0]
    # The peer cannot be set up in this request (the kernel configures it before its partner exists:
    # ENOTCONN); configure_inside does it.
    peer = {"attrs": [("IFLA_IFNAME", ctr_ifname), ("IFLA_NET_NS_FD", netns_fd), ("IFLA_ADDRESS", mac),
                      ("IFLA_MTU", mtu)]}  # fmt: skip
    msg = ifinfmsg()
    msg["flags"], msg["change"] = IFF_UP, IFF_UP
    msg["attrs"] = [
        ("IFLA_IFNAME", host_ifname), ("IFLA_MASTER", bridge_index), ("IFLA_MTU", mtu),
        ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "veth"),
                                     ("IFLA_INFO_DATA", {"attrs": [("VETH_INFO_PEER", peer)]})]}),
    ]  # fmt: skip
    nl.request(RTM_NEWLINK, msg, NLM_F_CREATE | NLM_F_EXCL)
    # Hairpin: where br_netfilter is loaded, a DNATed packet whose new destination sits on the same bridge
    # is bridged, not routed; a container reaching its own published port needs its frame sent back out
    # of the port it came in by. Bridge-port options only apply to an existing port: a second request.
    mode = ifinfmsg()
    mode["attrs"] = [
        ("IFLA_IFNAME", host_ifname),
        ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_SLAVE_KIND", "bridge"),
                                     ("IFLA_INFO_SLAVE_DATA", {"attrs": [("IFLA_BRPORT_MODE", 1)]})]}),
    ]  # fmt: skip
    nl.request(RTM_NEWLINK, mode)


def configure_inside(nl: Netlink, ctr_ifname: str, ip: str, prefixlen: int, gateway: str,
                     default_route: bool) -> None:  # fmt: skip
    """In the container's namespace (``nl`` was opened there): loopback up, address, link up, default route."""
    set_up(nl, index=_IFINDEX_LO)
    index = nl.link_index(ctr_ifname)
    if index is None:
        raise OSError(errno.ENODEV, f"{ctr_ifname} did not appear in the container's namespace")
    add_address(nl, index, ip, prefixlen)
    set_up(nl, index=index)
    if default_route:
        rtmsg = load_messages()[2]
        msg = rtmsg()
        msg["family"], msg["dst_len"], msg["table"] = socket.AF_INET, 0, _RT_TABLE_MAIN
        msg["proto"], msg["scope"], msg["type"] = _RTPROT_STATIC, _RT_SCOPE_UNIVERSE, _RTN_UNICAST
        msg["attrs"] = [("RTA_GATEWAY", gateway), ("RTA_OIF", index)]
        nl.request(RTM_NEWROUTE, msg, NLM_F_CREATE | NLM_F_EXCL)


def delete_link(nl: Netlink, name: str) -> bool:
    """Delete link ``name`` (a veth's other end goes with it); False if it was not there."""
    ifinfmsg = load_messages()[0]
    msg = ifinfmsg()
    msg["attrs"] = [("IFLA_IFNAME", name)]
    try:
        nl.request(RTM_DELLINK, msg)
    except OSError as exc:
        if exc.errno in (errno.ENODEV, errno.ENOENT):
            return False
        raise
    return True


def free_ifname(nl: Netlink, prefix: str = "eth") -> str:
    """The lowest ``ethN`` not yet used in the namespace ``nl`` belongs to."""
    used = {link["name"] for link in nl.links()}
    n = 0
    while f"{prefix}{n}" in used:
        n += 1
    return f"{prefix}{n}"
