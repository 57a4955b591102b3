"""Linux bridges and veth endpoints, over rtnetlink (``kobako.engine.network.netlink``; the
requests are encoded there with ``struct``, no pyroute2 import on a container's start or removal).

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
    IFA_ADDRESS,
    IFA_LOCAL,
    IFF_UP,
    IFLA_ADDRESS,
    IFLA_BRPORT_MODE,
    IFLA_IFNAME,
    IFLA_INFO_DATA,
    IFLA_INFO_KIND,
    IFLA_INFO_SLAVE_DATA,
    IFLA_INFO_SLAVE_KIND,
    IFLA_LINKINFO,
    IFLA_MASTER,
    IFLA_MTU,
    IFLA_NET_NS_FD,
    NLM_F_CREATE,
    NLM_F_EXCL,
    RTA_GATEWAY,
    RTA_METRICS,
    RTA_OIF,
    RTAX_MTU,
    RTM_DELLINK,
    RTM_NEWADDR,
    RTM_NEWLINK,
    RTM_NEWROUTE,
    VETH_INFO_PEER,
    Netlink,
    attr,
    ifaddr,
    ifinfo,
    route,
)

_RT_TABLE_MAIN, _RTPROT_STATIC, _RT_SCOPE_UNIVERSE, _RTN_UNICAST = 254, 4, 0, 1
_IFINDEX_LO = 1  # loopback is always ifindex 1 in a fresh namespace
DEFAULT_MTU = 1500


def mac_for(ip: str) -> str:
    """A locally administered MAC derived from the IPv4 address (like docker's 02:42:...): stable for an
    address, so a reused address does not leave peers with a stale ARP entry for another MAC."""
    raw = socket.inet_aton(ip)
    return "02:4b:" + ":".join(f"{b:02x}" for b in raw)


def _mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def _random_mac() -> str:
    raw = bytearray(os.urandom(6))
    raw[0] = (raw[0] & 0xFE) | 0x02  # unicast, locally administered
    return ":".join(f"{b:02x}" for b in raw)


def ensure_bridge(nl: Netlink, name: str, gateway: str, prefixlen: int, mtu: int = DEFAULT_MTU) -> int:
    """Create (or accept) bridge ``name`` with ``gateway/prefixlen``, up; return its ifindex."""
    # A fixed MAC: otherwise the bridge takes the lowest port MAC and changes it as ports come and go.
    msg = ifinfo(flags=IFF_UP, change=IFF_UP, attrs=(
        attr(IFLA_IFNAME, name), attr(IFLA_MTU, mtu), attr(IFLA_ADDRESS, _mac_bytes(_random_mac())),
        attr(IFLA_LINKINFO, [attr(IFLA_INFO_KIND, "bridge")]),
    ))  # fmt: skip
    try:
        nl.send_raw(RTM_NEWLINK, msg, NLM_F_CREATE | NLM_F_EXCL)
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
    nl.send_raw(RTM_NEWLINK, ifinfo(index, IFF_UP, IFF_UP, (attr(IFLA_IFNAME, name),) if name else ()))


def add_address(nl: Netlink, index: int, ip: str, prefixlen: int) -> None:
    raw = socket.inet_aton(ip)
    msg = ifaddr(index, prefixlen, (attr(IFA_LOCAL, raw), attr(IFA_ADDRESS, raw)))
    try:
        nl.send_raw(RTM_NEWADDR, msg, NLM_F_CREATE | NLM_F_EXCL)
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise


def add_veth(nl: Netlink, host_ifname: str, bridge_index: int, netns_fd: int, ctr_ifname: str, mac: str,
             mtu: int = DEFAULT_MTU) -> None:  # fmt: skip
    """The host end joins the bridge, the peer is born inside the namespace open at ``netns_fd``."""
    # The peer cannot be set up in this request (the kernel configures it before its partner exists:
    # ENOTCONN); configure_inside does it. VETH_INFO_PEER holds an ifinfomsg and its attributes.
    peer = ifinfo(attrs=(attr(IFLA_IFNAME, ctr_ifname), attr(IFLA_NET_NS_FD, netns_fd),
                         attr(IFLA_ADDRESS, _mac_bytes(mac)), attr(IFLA_MTU, mtu)))  # fmt: skip
    msg = ifinfo(flags=IFF_UP, change=IFF_UP, attrs=(
        attr(IFLA_IFNAME, host_ifname), attr(IFLA_MASTER, bridge_index), attr(IFLA_MTU, mtu),
        attr(IFLA_LINKINFO, [attr(IFLA_INFO_KIND, "veth"),
                             attr(IFLA_INFO_DATA, [attr(VETH_INFO_PEER, peer)])]),
    ))  # fmt: skip
    nl.send_raw(RTM_NEWLINK, msg, NLM_F_CREATE | NLM_F_EXCL)
    # Hairpin: where br_netfilter is loaded, a DNATed packet whose new destination sits on the same bridge
    # is bridged, not routed; a container reaching its own published port needs its frame sent back out
    # of the port it came in by. Bridge-port options only apply to an existing port: a second request.
    mode = ifinfo(attrs=(
        attr(IFLA_IFNAME, host_ifname),
        attr(IFLA_LINKINFO, [attr(IFLA_INFO_SLAVE_KIND, "bridge"),
                             attr(IFLA_INFO_SLAVE_DATA, [attr(IFLA_BRPORT_MODE, 1, u8=True)])]),
    ))  # fmt: skip
    nl.send_raw(RTM_NEWLINK, mode)


def configure_inside(nl: Netlink, ctr_ifname: str, ip: str, prefixlen: int, gateway: str,
                     default_route: bool, route_mtu: int = 0) -> None:  # fmt: skip
    """In the container's namespace (``nl`` was opened there): loopback up, address, link up, default route
    (with an MTU of ``route_mtu`` when not 0: the link's own holds for the subnet, this one for the rest)."""
    set_up(nl, index=_IFINDEX_LO)
    index = nl.link_index(ctr_ifname)
    if index is None:
        raise OSError(errno.ENODEV, f"{ctr_ifname} did not appear in the container's namespace")
    add_address(nl, index, ip, prefixlen)
    set_up(nl, index=index)
    if default_route:
        attrs = (attr(RTA_GATEWAY, socket.inet_aton(gateway)), attr(RTA_OIF, index))
        if route_mtu:
            attrs += (attr(RTA_METRICS, [attr(RTAX_MTU, route_mtu)]),)
        msg = route(0, _RT_TABLE_MAIN, _RTPROT_STATIC, _RT_SCOPE_UNIVERSE, _RTN_UNICAST, attrs)
        nl.send_raw(RTM_NEWROUTE, msg, NLM_F_CREATE | NLM_F_EXCL)


def delete_link(nl: Netlink, name: str) -> bool:
    """Delete link ``name`` (a veth's other end goes with it); False if it was not there."""
    try:
        nl.send_raw(RTM_DELLINK, ifinfo(attrs=(attr(IFLA_IFNAME, name),)))
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
