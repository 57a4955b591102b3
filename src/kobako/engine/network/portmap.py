"""Outbound masquerade, published ports and network isolation in kobako's own nftables table.

Everything lives in ``table ip kobako`` (no other table is ever touched or flushed). The rules are fixed
and made once; what changes per network or container are *elements* of named sets and maps, so adding or
removing a network or a published port is one small atomic batch and never needs rule handles:

- ``bridges`` (every kobako bridge), ``internal`` / ``external`` (bridges of --internal / routed networks),
  ``same`` (bridge . bridge: traffic staying on one bridge, seen by these hooks when br_netfilter is on),
  ``subnets`` (bridge . its subnet: a DNATed packet going back to the network it came from);
- ``tcp_any`` / ``udp_any`` (host port → container ip . port, any local address) and ``tcp_ip`` /
  ``udp_ip`` (host ip . host port → container ip . port, one host address).

What the rules do: DNAT to published ports for packets to a local address, from outside (prerouting) and
from the host itself (output: this is what makes ``127.0.0.1:PORT`` work, with route_localnet on the
bridge and masquerade of the 127/8 source); hairpin (a container reaching a published port of its own
network through a host address) is masqueraded so replies come back through the host (matched by source
subnet, not input interface: with br_netfilter such a packet is bridged and postrouting sees no input
interface); traffic leaving a
routed network for a non-kobako interface is masqueraded; forwarding between different kobako networks,
into or out of internal networks, and new connections from outside that were not DNATed are dropped;
internal bridges cannot reach the host either. Packets from a bridge to 127/8 are dropped before routing
(route_localnet would otherwise expose the host's loopback services to containers).
"""

from __future__ import annotations

import errno
import os

from kobako.errors import Conflict, InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from kobako import sqlite
    from kobako.engine.network.nftables import Nft
    from kobako.engine.network.store import Port

FAMILY, TABLE = "ip", "kobako"
_T = f"{FAMILY} {TABLE}"
_MAPS = ("tcp_any", "udp_any", "tcp_ip", "udp_ip")

_DEFINITION = f"""table {_T} {{
  set bridges {{ type ifname; }}
  set internal {{ type ifname; }}
  set external {{ type ifname; }}
  set same {{ type ifname . ifname; }}
  set subnets {{ type ifname . ipv4_addr; flags interval; }}
  map tcp_any {{ type inet_service : ipv4_addr . inet_service; }}
  map udp_any {{ type inet_service : ipv4_addr . inet_service; }}
  map tcp_ip {{ type ipv4_addr . inet_service : ipv4_addr . inet_service; }}
  map udp_ip {{ type ipv4_addr . inet_service : ipv4_addr . inet_service; }}
  chain guard {{
    type filter hook prerouting priority raw; policy accept;
    ip daddr 127.0.0.0/8 iifname @bridges drop
  }}
  chain dnat_prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
    fib daddr type local jump publish
  }}
  chain dnat_output {{
    type nat hook output priority -100; policy accept;
    fib daddr type local jump publish
  }}
  chain publish {{
    dnat to ip daddr . tcp dport map @tcp_ip
    dnat to tcp dport map @tcp_any
    dnat to ip daddr . udp dport map @udp_ip
    dnat to udp dport map @udp_any
  }}
  chain srcnat {{
    type nat hook postrouting priority srcnat; policy accept;
    oifname @bridges ip saddr 127.0.0.0/8 masquerade
    oifname . ip saddr @subnets ct status dnat masquerade
    oifname @bridges iifname @bridges ct status dnat masquerade
    oifname @bridges accept
    iifname @external masquerade
  }}
  chain forward {{
    type filter hook forward priority filter; policy accept;
    iifname . oifname @same accept
    iifname @internal drop
    oifname @internal drop
    iifname @bridges oifname @bridges ct status dnat accept
    iifname @bridges oifname @bridges drop
    oifname @bridges ct state established,related accept
    oifname @bridges ct status dnat accept
    oifname @bridges drop
  }}
  chain input {{
    type filter hook input priority filter; policy accept;
    iifname @internal jump internal_input
  }}
  chain internal_input {{
    ct state established,related accept
    drop
  }}
}}
"""


def ensure_table(nft: Nft) -> None:
    """Make the table once; ``create`` fails as a whole when it exists (a racing process made it)."""
    from kobako.engine.network.nftables import NftError

    try:
        nft.run(f"create table {_T}\n" + _DEFINITION)
    except NftError as exc:
        if not exc.exists:
            raise


def delete_table(nft: Nft) -> None:
    from kobako.engine.network.nftables import NftError

    try:
        nft.run(f"delete table {_T}")
    except NftError as exc:
        if not exc.missing:
            raise


def network_elements(bridge: str, internal: bool, subnet: str) -> list[str]:
    kind = "internal" if internal else "external"
    return [f'bridges {{ "{bridge}" }}', f'{kind} {{ "{bridge}" }}', f'same {{ "{bridge}" . "{bridge}" }}',
            f'subnets {{ "{bridge}" . {subnet} }}']  # fmt: skip


def port_element(port: Port) -> tuple[str, str]:
    """(map name, "key : value") for one published port."""
    if port.host_ip:
        return f"{port.proto}_ip", f"{port.host_ip} . {port.host_port} : {port.ctr_ip} . {port.ctr_port}"
    return f"{port.proto}_any", f"{port.host_port} : {port.ctr_ip} . {port.ctr_port}"


def add_elements(nft: Nft, elements: list[str]) -> None:
    if elements:
        nft.run("".join(f"add element {_T} {e}\n" for e in elements))


def delete_elements(nft: Nft, elements: list[str]) -> None:
    """Delete what is there: one batch when all exist, else one by one skipping the missing ones."""
    from kobako.engine.network.nftables import NftError

    if not elements:
        return
    try:
        nft.run("".join(f"delete element {_T} {e}\n" for e in elements))
        return
    except NftError:
        pass
    for element in elements:
        try:
            nft.run(f"delete element {_T} {element}\n")
        except NftError as exc:
            if not exc.missing:
                raise


def port_keys(ports: list[Port]) -> list[str]:
    """The map keys (for deletion) of ``ports``."""
    out = []
    for port in ports:
        name, element = port_element(port)
        out.append(f"{name} {{ {element.partition(' : ')[0]} }}")
    return out


def port_values(ports: list[Port]) -> list[str]:
    out = []
    for port in ports:
        name, element = port_element(port)
        out.append(f"{name} {{ {element} }}")
    return out


def listing(nft_json: Nft) -> dict[str, list[str]] | None:
    """{set or map name: ["element" or "key : value", ...]} of the table; None when it does not exist."""
    from kobako.engine.network.nftables import NftError
    from kobako.oci import jsoncodec

    try:
        raw = nft_json.run(f"list table {_T}")
    except NftError as exc:
        if exc.missing:
            return None
        raise
    out: dict[str, list[str]] = {}
    for item in jsoncodec.loads(raw).get("nftables", []):
        obj = item.get("set") or item.get("map")
        if obj is None:
            continue
        out[obj["name"]] = [_elem_text(e) for e in obj.get("elem", [])]
    return out


def _elem_text(elem: object) -> str:
    if isinstance(elem, list):  # a map element: [key, value]
        return f"{_elem_text(elem[0])} : {_elem_text(elem[1])}"
    if isinstance(elem, dict) and "concat" in elem:
        return " . ".join(_elem_text(e) for e in elem["concat"])
    if isinstance(elem, dict) and "elem" in elem:
        return _elem_text(elem["elem"]["val"])
    if isinstance(elem, dict) and "prefix" in elem:
        return f"{elem['prefix']['addr']}/{elem['prefix']['len']}"
    return str(elem).strip('"')


# -- -p/--publish specs --------------------------------------------------------------------------------


def parse_publish(spec: str) -> list[tuple[str, int, int, int, str]]:
    """``[IP:][HOST_PORT:]CTR_PORT[/PROTO]`` → [(host_ip or "", host_lo, host_hi, ctr_port, proto)].

    host_lo == 0 asks for a random port; host_lo < host_hi (one container port, a host range) takes the
    first free port of the range; ranges on both sides pair up port by port."""
    text, _, proto = spec.partition("/")
    proto = proto or "tcp"
    if proto not in ("tcp", "udp"):
        raise InvalidArgument(f"invalid --publish {spec!r}: only tcp and udp ports can be published")
    if text.startswith("["):
        raise InvalidArgument(f"invalid --publish {spec!r}: IPv6 host addresses are not supported")
    parts = text.split(":")
    if len(parts) > 3:
        raise InvalidArgument(f"invalid --publish {spec!r}: too many colons")
    host_ip = parts.pop(0) if len(parts) == 3 else ""
    if host_ip in ("0.0.0.0", ""):
        host_ip = ""
    else:
        from kobako.engine.network.ipam import ip_to_int

        ip_to_int(host_ip)  # validates
    ctr_lo, ctr_hi = _range(parts[-1], spec)
    host_lo, host_hi = _range(parts[0], spec) if len(parts) == 2 and parts[0] else (0, 0)
    if ctr_lo == 0:
        raise InvalidArgument(f"invalid --publish {spec!r}: no container port")
    if ctr_hi > ctr_lo:
        if host_lo and host_hi - host_lo != ctr_hi - ctr_lo:
            raise InvalidArgument(
                f"invalid --publish {spec!r}: host and container port ranges differ in size"
            )
        return [(host_ip, host_lo + i if host_lo else 0, host_lo + i if host_lo else 0, ctr_lo + i, proto)
                for i in range(ctr_hi - ctr_lo + 1)]  # fmt: skip
    return [(host_ip, host_lo, host_hi, ctr_lo, proto)]


def _range(text: str, spec: str) -> tuple[int, int]:
    lo, dash, hi = text.partition("-")
    if not lo.isdigit() or (dash and not hi.isdigit()):
        raise InvalidArgument(f"invalid --publish {spec!r}: invalid port {text!r}")
    first, last = int(lo), int(hi) if dash else int(lo)
    if not 1 <= first <= last <= 65535:
        raise InvalidArgument(f"invalid --publish {spec!r}: port {text!r} out of range 1-65535")
    return first, last


def docker_ports(ports: list[Port]) -> dict[str, list[dict[str, str]]]:
    """``{"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}`` as docker's inspect shows them."""
    out: dict[str, list[dict[str, str]]] = {}
    for p in sorted(ports, key=lambda p: (p.ctr_port, p.proto, p.host_ip, p.host_port)):
        out.setdefault(f"{p.ctr_port}/{p.proto}", []).append(
            {"HostIp": p.host_ip or "0.0.0.0", "HostPort": str(p.host_port)}
        )
    return out


# -- reserving host ports --------------------------------------------------------------------------------


def reserve(conn: sqlite.Connection, container_id: str, ctr_ip: str,
            requests: list[tuple[str, int, int, int, str]]) -> list[Port]:  # fmt: skip
    """Pick and record host ports inside the caller's transaction: a port is free when no published port
    of the same protocol holds it (on that address or on every address) and no host socket is bound to it."""
    from kobako.engine.network.store import Port

    rows = conn.execute("SELECT proto, host_ip, host_port FROM ports").fetchall()
    held = {(proto, host_ip, port) for proto, host_ip, port in rows}
    wildcard = {(proto, port) for proto, host_ip, port in rows if not host_ip}
    any_ip = {(proto, port) for proto, _host_ip, port in rows}

    def free(proto: str, host_ip: str, port: int) -> bool:
        if host_ip:
            taken = (proto, port) in wildcard or (proto, host_ip, port) in held
        else:
            taken = (proto, port) in any_ip
        return not taken and _host_port_free(proto, host_ip, port)

    out: list[Port] = []
    for host_ip, lo, hi, ctr_port, proto in requests:
        if lo == 0:
            port = _random_port(proto, host_ip, free)
        else:
            port = next((p for p in range(lo, hi + 1) if free(proto, host_ip, p)), 0)
            if not port:
                where = f"{host_ip or '0.0.0.0'}:{lo}" + (f"-{hi}" if hi > lo else "")
                raise Conflict(f"cannot publish {where}/{proto}: port is already allocated")
        mapping = Port(proto, host_ip, port, container_id, ctr_ip, ctr_port)
        conn.execute("INSERT INTO ports (proto, host_ip, host_port, container_id, ctr_ip, ctr_port) "
                     "VALUES (?, ?, ?, ?, ?, ?)", mapping.row())  # fmt: skip
        held.add((proto, host_ip, port))
        any_ip.add((proto, port))
        if not host_ip:
            wildcard.add((proto, port))
        out.append(mapping)
    return out


def _random_port(proto: str, host_ip: str, free: Callable[[str, str, int], bool]) -> int:
    """A free port of the kernel's ephemeral range, from a random starting point (like docker)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        lo, hi = 32768, 60999
    count = hi - lo + 1
    start = int.from_bytes(os.urandom(4), "little") % count
    for step in range(count):
        port = lo + (start + step) % count
        if free(proto, host_ip, port):
            return port
    raise Conflict(f"no free host port left for {proto}")


def _host_port_free(proto: str, host_ip: str, port: int) -> bool:
    """Nothing on the host is bound there (a DNAT rule would silently steal its new connections)."""
    import socket  # here: socket (enum, selectors) costs ~6 ms to import, and most callers never get here

    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as sock:
        if proto == "tcp":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is not "in use"
        try:
            sock.bind((host_ip or "0.0.0.0", port))
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                raise InvalidArgument(f"cannot publish on {host_ip}: not an address of this host") from None
            return False
    return True
