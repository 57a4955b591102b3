"""IPv4 address management: which address of a network's subnet each container (the *owner*) holds.

Guarantees, all from the ``addresses`` table (see store.py):
- an address is held by at most one owner (``PRIMARY KEY (network_id, ip)``), and an owner holds at most
  one address per network (``UNIQUE (network_id, owner)``): two processes can never get the same address,
  whatever their timing, because each allocation is one ``BEGIN IMMEDIATE`` transaction;
- dynamic allocation walks on from a per-network cursor instead of taking the lowest free address, so a
  just-released address is handed out again only after the rest of the subnet has been used (stale ARP
  and conntrack entries of the old owner cannot catch the new one);
- the network address, the broadcast address and the gateway are never handed out;
- ``reconcile(alive)`` releases what owners that are gone still hold (after a crash between allocation
  and teardown).
"""

from __future__ import annotations

import _socket  # inet_aton/inet_ntoa without the socket module (enum, selectors: ~6 ms to import)
import struct

from kobako.errors import Conflict, InvalidArgument, Unavailable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from kobako import sqlite
    from kobako.engine.network.store import Database, Network

_U32 = struct.Struct("!I")


def ip_to_int(ip: str) -> int:
    try:
        return _U32.unpack(_socket.inet_aton(ip))[0]
    except OSError:
        raise InvalidArgument(f"invalid IPv4 address {ip!r}") from None


def int_to_ip(value: int) -> str:
    return _socket.inet_ntoa(_U32.pack(value))


def host_range(subnet: str) -> tuple[int, int]:
    """(first, last) usable host addresses of ``a.b.c.d/n`` (n ≤ 30)."""
    base, _, bits = subnet.partition("/")
    prefix = int(bits)
    size = 1 << (32 - prefix)
    net = ip_to_int(base) & ~(size - 1) & 0xFFFFFFFF
    return net + 1, net + size - 2


class Ipam:
    def __init__(self, db: Database) -> None:
        self.db = db

    def allocate(self, network: Network, owner: str, ip: str | None = None) -> str:
        with self.db.transaction() as conn:
            return self.allocate_in(conn, network, owner, ip)

    def allocate_in(
        self, conn: sqlite.Connection, network: Network, owner: str, ip: str | None = None
    ) -> str:
        """Allocate inside the caller's transaction (so the endpoint row lands in the same commit)."""
        first, last = host_range(network.subnet)
        gateway = ip_to_int(network.gateway)
        held = conn.execute("SELECT ip FROM addresses WHERE network_id = ? AND owner = ?",
                            (network.id, owner)).fetchone()  # fmt: skip
        if held is not None:
            raise Conflict(f"{owner[:12]} already holds {int_to_ip(held[0])} on network {network.name}")
        if ip is not None:
            value = ip_to_int(ip)
            if not first <= value <= last:
                raise InvalidArgument(
                    f"address {ip} is not a host address of {network.name}'s subnet {network.subnet}"
                )
            if value == gateway:
                raise Conflict(f"address {ip} is the gateway of network {network.name}")
            if conn.execute("SELECT 1 FROM addresses WHERE network_id = ? AND ip = ?",
                            (network.id, value)).fetchone():  # fmt: skip
                raise Conflict(f"address {ip} is already in use on network {network.name}")
        else:
            value = self._next_free(conn, network.id, first, last, gateway)
            conn.execute("INSERT INTO ipam_cursor (network_id, last) VALUES (?, ?) ON CONFLICT (network_id) "
                         "DO UPDATE SET last = excluded.last", (network.id, value))  # fmt: skip
        conn.execute(
            "INSERT INTO addresses (network_id, ip, owner) VALUES (?, ?, ?)", (network.id, value, owner)
        )
        return int_to_ip(value)

    @staticmethod
    def _next_free(conn: sqlite.Connection, network_id: str, first: int, last: int, gateway: int) -> int:
        used = {
            row[0] for row in conn.execute("SELECT ip FROM addresses WHERE network_id = ?", (network_id,))
        }
        used.add(gateway)
        row = conn.execute("SELECT last FROM ipam_cursor WHERE network_id = ?", (network_id,)).fetchone()
        count = last - first + 1
        start = (row[0] + 1 - first) % count if row and first <= row[0] <= last else 0
        for step in range(count):
            candidate = first + (start + step) % count
            if candidate not in used:
                return candidate
        raise Unavailable(f"no free address left in the subnet ({count} addresses, all in use)")

    def release(self, network_id: str, owner: str) -> bool:
        with self.db.transaction() as conn:
            return self.release_in(conn, network_id, owner)

    @staticmethod
    def release_in(conn: sqlite.Connection, network_id: str, owner: str) -> bool:
        cur = conn.execute("DELETE FROM addresses WHERE network_id = ? AND owner = ?", (network_id, owner))
        return cur.rowcount > 0

    def release_owner(self, owner: str) -> int:
        with self.db.transaction() as conn:
            return conn.execute("DELETE FROM addresses WHERE owner = ?", (owner,)).rowcount

    def allocations(self, network_id: str | None = None) -> list[tuple[str, str, str]]:
        """(network_id, ip, owner) of every held address, in address order."""
        sql = "SELECT network_id, ip, owner FROM addresses"
        rows = (self.db.query(sql + " WHERE network_id = ? ORDER BY ip", (network_id,)) if network_id
                else self.db.query(sql + " ORDER BY network_id, ip"))  # fmt: skip
        return [(nid, int_to_ip(ip), owner) for nid, ip, owner in rows]

    def reconcile(self, alive: Callable[[str], bool]) -> list[tuple[str, str, str]]:
        """Release every address whose owner is not ``alive``; return what was released."""
        released = []
        with self.db.transaction() as conn:
            owners = [row[0] for row in conn.execute("SELECT DISTINCT owner FROM addresses")]
            for owner in owners:
                if alive(owner):
                    continue
                for nid, ip in conn.execute(
                    "SELECT network_id, ip FROM addresses WHERE owner = ?", (owner,)
                ).fetchall():
                    released.append((nid, int_to_ip(ip), owner))
                conn.execute("DELETE FROM addresses WHERE owner = ?", (owner,))
        return released

    @staticmethod
    def forget_network(conn: sqlite.Connection, network_id: str) -> None:
        conn.execute("DELETE FROM addresses WHERE network_id = ?", (network_id,))
        conn.execute("DELETE FROM ipam_cursor WHERE network_id = ?", (network_id,))


# -- subnets ----------------------------------------------------------------------------------------------


def check_subnet(subnet: str, gateway: str | None) -> tuple[str, str]:
    """Validate an IPv4 ``--subnet`` (host bits clear, /30 or larger) and ``--gateway`` (a host address of
    it; default the first); return them normalised."""
    import ipaddress  # only for `network create`: most runs never parse a subnet

    try:
        net = ipaddress.ip_network(subnet, strict=True)
    except ValueError as exc:
        raise InvalidArgument(f"invalid subnet {subnet!r}: {exc}") from None
    if net.version != 4:
        raise InvalidArgument(f"invalid subnet {subnet!r}: only IPv4 networks are supported")
    if net.prefixlen > 30:
        raise InvalidArgument(f"invalid subnet {subnet!r}: too small (at most /30)")
    first, last = host_range(str(net))
    if gateway is None:
        return str(net), int_to_ip(first)
    value = ip_to_int(gateway)
    if not first <= value <= last:
        raise InvalidArgument(f"invalid gateway {gateway!r}: not a host address of {net}")
    return str(net), int_to_ip(value)


def overlap(a: str, b: str) -> bool:
    (a0, a1), (b0, b1) = _bounds(a), _bounds(b)
    return a0 <= b1 and b0 <= a1


def _bounds(subnet: str) -> tuple[int, int]:
    base, _, bits = subnet.partition("/")
    size = 1 << (32 - int(bits or 32))
    start = ip_to_int(base) & ~(size - 1) & 0xFFFFFFFF
    return start, start + size - 1


def default_route_device() -> str:
    """The device of the calling thread's namespace's preferred IPv4 default route; "" if it has none."""
    best: tuple[int, str] | None = None
    for fields in _route_lines():
        if int(fields[1], 16) == 0 and int(fields[7], 16) == 0 and int(fields[3], 16) & 1:  # RTF_UP
            candidate = (int(fields[6]), fields[0])  # the lowest metric wins, as in the kernel's choice
            best = candidate if best is None or candidate < best else best
    return best[1] if best else ""


def _route_lines() -> list[list[str]]:
    try:
        with open("/proc/thread-self/net/route") as f:
            return [line.split() for line in f.readlines()[1:] if len(line.split()) >= 8]
    except OSError:
        return []


def routes() -> list[str]:
    """IPv4 destinations routed in the calling thread's namespace (not the default route): subnets a new
    network must not shadow."""
    out = []
    for fields in _route_lines():
        dest, mask = int(fields[1], 16), int(fields[7], 16)
        if mask:
            # /proc/net/route prints addresses in host (little-endian) byte order.
            out.append(
                f"{int_to_ip(int.from_bytes(dest.to_bytes(4, 'little'), 'big'))}/{bin(mask).count('1')}"
            )
    return out
