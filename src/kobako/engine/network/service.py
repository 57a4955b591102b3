"""``NetworkService``: what the engine and ``kobako network`` call.

Networks are records (store.py) until a container needs one; their kernel side (bridge with the gateway
address, sysctls, nftables elements) is made on first use in each process, idempotently, so a reboot or a
bridge deleted by hand heals at the next container start. The container verbs (setup, teardown, connect,
disconnect) live in sandbox.py; leak finding and repair in check.py. Module map:

    netns.py (namespaces)   netlink.py + bridge.py (links, addresses, routes)   ipam.py (addresses)
    portmap.py + nftables.py (NAT, published ports, isolation)   dns.py (/etc/hosts)   store.py (SQLite)

Bridges, host-side veths, sysctls and nftables changes happen in the network namespace of the calling
thread: the host's for the engine, the test's own namespace in tests.
"""

from __future__ import annotations

import os

from kobako import paths
from kobako.engine.network import netns, portmap
from kobako.engine.network.ipam import (
    Ipam,
    check_subnet,
    default_route_device,
    int_to_ip,
    ip_to_int,
    overlap,
    routes,
)
from kobako.engine.network.store import Database, Endpoint, Network
from kobako.errors import AlreadyExists, Conflict, FailedPrecondition, InvalidArgument, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from kobako.engine.network.netlink import Netlink
    from kobako.engine.network.nftables import Nft

DEFAULT_NETWORK = "bridge"
DEFAULT_BRIDGE = "kobako0"
DEFAULT_SUBNET = "10.88.0.0/16"  # podman's default network
POOL = "10.89.0.0/16"  # user networks get a free /24 of it when no --subnet is given
_RESERVED = frozenset({"none", "host", "default", "container"})
# A bridge network never leaves the host, so its links carry the largest frames a veth takes: fewer,
# bigger packets between the host and its containers and among containers. What leaves the host is kept
# to the uplink's MTU by the containers' default route (``outside_mtu``).
INTERNAL_MTU = 65535
FALLBACK_OUTSIDE_MTU = 1500  # no default route in this namespace: Ethernet's
_MTU_KEYS = ("mtu", "com.docker.network.driver.mtu")  # podman's and docker's names for it


def driver_options(options: dict[str, str] | None) -> tuple[int, dict[str, str]]:
    """(link MTU, the options to keep) from ``network create -o`` options; unknown keys are refused, not
    silently ignored (a forgotten isolation option would fail open)."""
    options, mtu = dict(options or {}), INTERNAL_MTU
    for key, value in options.items():
        if key not in _MTU_KEYS:
            raise InvalidArgument(f"unsupported network option {key!r}: the bridge driver takes only "
                                  f"{' or '.join(_MTU_KEYS)}")  # fmt: skip
        try:
            mtu = int(value)
        except (TypeError, ValueError):
            mtu = 0
        if not 68 <= mtu <= INTERNAL_MTU:
            raise InvalidArgument(f"invalid network option {key}={value!r}: an MTU from 68 to {INTERNAL_MTU}")
    if len({options.get(k, str(mtu)) for k in _MTU_KEYS}) > 1:
        raise InvalidArgument(f"network options {' and '.join(_MTU_KEYS)} disagree")
    return mtu, options


class NetworkService:
    def __init__(self, root: str | None = None, *, run_root: str | None = None, default_subnet: str | None = None,
                 resolv_conf: str = "/etc/resolv.conf") -> None:  # fmt: skip
        self.root = root or paths.state_root()
        self.run_dir = run_root or _run_dir(root)
        self.netns_dir = os.path.join(self.run_dir, "netns")
        self.fastpath_dir = os.path.join(self.run_dir, "fastpath")  # the fast path's map records
        self.default_subnet = default_subnet or os.environ.get("KOBAKO_BRIDGE_SUBNET") or DEFAULT_SUBNET
        self.default_mtu = os.environ.get("KOBAKO_BRIDGE_MTU", "")  # the default network's, when first made
        self.resolv_conf = resolv_conf  # "" : containers get no resolvers unless --dns
        self.db = Database(self.root)
        self.ipam = Ipam(self.db)
        self._host: Netlink | None = None
        self._nft: Nft | None = None
        self._nft_json: Nft | None = None
        self._bridges: dict[str, int] = {}  # network id → bridge ifindex, ensured in this process
        self._outside_mtu = 0

    def close(self) -> None:
        if self._host is not None:
            self._host.close()
        for ctx in (self._nft, self._nft_json):
            if ctx is not None:
                ctx.close()
        self.db.close()

    def netns_path(self, container_id: str) -> str:
        return os.path.join(self.netns_dir, container_id)

    def host_netlink(self) -> Netlink:
        if self._host is None:
            from kobako.engine.network.netlink import Netlink

            self._host = Netlink()
        return self._host

    def nft(self) -> Nft:
        if self._nft is None:
            from kobako.engine.network.nftables import Nft

            self._nft = Nft()
        return self._nft

    # -- networks ---------------------------------------------------------------------------------------

    def get(self, ref: str) -> Network:
        if ref in (DEFAULT_NETWORK, "default"):
            return self.ensure_default()
        network = self.db.network(ref)
        if network is None:
            raise NotFound(f"network {ref} not found")
        return network

    def ensure_default(self) -> Network:
        network = self.db.network(DEFAULT_NETWORK)
        if network is not None:
            return network
        subnet, gateway = check_subnet(self.default_subnet, None)
        try:
            mtu, options = driver_options({"mtu": self.default_mtu} if self.default_mtu else None)
        except InvalidArgument as exc:
            raise InvalidArgument(f"KOBAKO_BRIDGE_MTU: {exc}") from None
        return self._insert(DEFAULT_NETWORK, DEFAULT_BRIDGE, subnet, gateway, internal=False, dns=False,
                            labels={}, mtu=mtu, options=options, exist_ok=True)  # fmt: skip

    def create(self, name: str, subnet: str | None = None, gateway: str | None = None, internal: bool = False,
               labels: dict[str, str] | None = None, options: dict[str, str] | None = None) -> Network:  # fmt: skip
        from kobako.engine.netopts import check_network

        if name in _RESERVED or name == DEFAULT_NETWORK:
            raise Conflict(f"network name {name!r} is reserved")
        if check_network(name) != name:
            raise InvalidArgument(f"invalid network name {name!r}")
        mtu, options = driver_options(options)
        if subnet:
            subnet, gateway = check_subnet(subnet, gateway)
        elif gateway:
            raise InvalidArgument("--gateway needs --subnet")
        else:
            subnet, gateway = self._free_subnet()
        nid = os.urandom(32).hex()
        return self._insert(name, "kb-" + nid[:12], subnet, gateway, internal=internal, dns=True,
                            labels=dict(labels or {}), mtu=mtu, options=options, nid=nid)  # fmt: skip

    def _insert(self, name: str, bridge_name: str, subnet: str, gateway: str, *, internal: bool, dns: bool,
                labels: dict[str, str], mtu: int, options: dict[str, str], nid: str = "",
                exist_ok: bool = False) -> Network:  # fmt: skip
        from kobako.engine.clock import rfc3339

        network = Network(nid or os.urandom(32).hex(), name, bridge_name, subnet, gateway, internal=internal,
                          dns=dns, labels=labels, created=rfc3339(), mtu=mtu, options=options)  # fmt: skip
        with self.db.transaction() as conn:
            row = conn.execute("SELECT id FROM networks WHERE name = ?", (name,)).fetchone()
            if row is not None:
                if exist_ok:
                    return self.db.network_by_id(row[0])  # type: ignore[return-value]
                raise AlreadyExists(f"network with name {name} already exists")
            for other, other_subnet in conn.execute("SELECT name, subnet FROM networks").fetchall():
                if overlap(subnet, other_subnet):
                    raise Conflict(f"subnet {subnet} overlaps with network {other} ({other_subnet})")
            self.db.insert_network(conn, network)
        return network

    def _free_subnet(self) -> tuple[str, str]:
        taken = [n.subnet for n in self.db.networks()] + routes()
        base = ip_to_int(POOL.partition("/")[0])
        for i in range(1 << (24 - int(POOL.partition("/")[2]))):
            candidate = f"{int_to_ip(base + (i << 8))}/24"
            if not any(overlap(candidate, t) for t in taken):
                return candidate, int_to_ip(base + (i << 8) + 1)
        raise Conflict(f"no free /24 left in {POOL}: give --subnet")

    def list(self) -> list[Network]:
        return self.db.networks()

    def inspect(self, ref: str) -> dict[str, Any]:
        net = self.get(ref)
        containers = {
            ep.container_id: {"Name": ep.name, "EndpointID": ep.host_ifname, "MacAddress": ep.mac,
                              "IPv4Address": f"{ep.ip}/{net.prefixlen}", "IPv6Address": ""}
            for ep in self.db.endpoints(network_id=net.id)
        }  # fmt: skip
        return {
            "Name": net.name, "Id": net.id, "Created": net.created, "Scope": "local", "Driver": net.driver,
            "EnableIPv6": False,
            "IPAM": {"Driver": "default", "Options": {},
                     "Config": [{"Subnet": net.subnet, "Gateway": net.gateway}]},
            "Internal": net.internal, "Attachable": False, "Ingress": False, "ConfigFrom": {"Network": ""},
            "ConfigOnly": False, "Containers": containers,
            "Options": {**net.options, "com.docker.network.bridge.name": net.bridge,
                        "com.docker.network.driver.mtu": str(net.mtu)},
            "Labels": dict(net.labels),
        }  # fmt: skip

    def remove(self, ref: str, force: bool = False) -> Network:
        """Remove a user-defined network; refused while containers are attached unless ``force`` (which
        disconnects them)."""
        net = self.get(ref)
        if net.name == DEFAULT_NETWORK:
            raise Conflict(f"{net.name} is a pre-defined network and cannot be removed")
        if force:
            for ep in self.db.endpoints(network_id=net.id):
                self.disconnect(net.id, ep.container_id, force=True)
        with self.db.transaction() as conn:  # re-checked here: a racing setup commits before or after us
            names = [r[0] for r in conn.execute("SELECT name FROM endpoints WHERE network_id = ?", (net.id,))]
            if names:
                raise Conflict(f"network {net.name} has active endpoints ({', '.join(names)})")
            conn.execute("DELETE FROM networks WHERE id = ?", (net.id,))
            Ipam.forget_network(conn, net.id)
        self._remove_kernel(net)
        return net

    def _remove_kernel(self, net: Network) -> None:
        from kobako.engine.network import bridge, fastpath

        fastpath.drop(self.fastpath_dir, net.id)
        self._bridges.pop(net.id, None)
        if portmap.listing(self.nft_json()) is not None:
            portmap.delete_elements(
                self.nft(), portmap.network_elements(net.bridge, net.internal, net.subnet)
            )
            table = portmap.listing(self.nft_json())
            if table is not None and not any(table.values()):
                portmap.delete_table(self.nft())  # the last network is gone: leave nothing behind
                self._bridges.clear()
        bridge.delete_link(self.host_netlink(), net.bridge)

    def prune(self) -> list[str]:
        """Remove every user-defined network without endpoints; return their names."""
        removed = []
        for net in self.db.networks():
            if net.name != DEFAULT_NETWORK and not self.db.endpoints(network_id=net.id):
                try:
                    removed.append(self.remove(net.id).name)
                except (NotFound, Conflict):
                    continue  # removed or joined by someone else meanwhile
        return removed

    def nft_json(self) -> Nft:
        if self._nft_json is None:
            from kobako.engine.network.nftables import Nft

            self._nft_json = Nft(json=True)
        return self._nft_json

    def forget_kernel(self) -> None:
        """Forget the bridges this instance ensured: the next setup checks the kernel again (a
        long-lived instance, e.g. a restarting container's monitor, must not trust an old answer)."""
        self._bridges.clear()
        self._outside_mtu = 0

    def ensure_kernel(self, net: Network) -> int:
        """Bridge, its sysctls and its nftables elements, once per network and process; the bridge ifindex."""
        index = self._bridges.get(net.id)
        if index is not None:
            return index
        from kobako.engine.network import bridge

        index = bridge.ensure_bridge(self.host_netlink(), net.bridge, net.gateway, net.prefixlen, net.mtu)
        if not net.internal:
            # A packet to 127.0.0.1 DNATed to a container leaves through the bridge with a loopback
            # source: route_localnet lets it (the guard chain keeps containers off the host's loopback).
            netns.write_sysctl(f"net.ipv4.conf.{net.bridge}.route_localnet", "1")
            netns.write_sysctl("net.ipv4.ip_forward", "1")
        self._bridges[net.id] = index
        self.add_elements(portmap.network_elements(net.bridge, net.internal, net.subnet))
        return index

    def outside_mtu(self) -> int:
        """The MTU of the device the host's default route leaves by (once per instance, like the bridges):
        a container's default route is held to it, so what it sends out of the host needs no fragmenting
        on the way and large datagrams are not lost to path-MTU discovery."""
        if not self._outside_mtu:
            device = default_route_device()
            mtu = self.host_netlink().link_mtu(device) if device else None
            self._outside_mtu = mtu or FALLBACK_OUTSIDE_MTU
        return self._outside_mtu

    def add_elements(self, elements: list[str]) -> None:
        """Add set/map elements, making the table first where it is missing (first use, or removed by
        another process when its last network went)."""
        from kobako.engine.network.nftables import NftError

        try:
            portmap.add_elements(self.nft(), elements)
            return
        except NftError as exc:
            if not exc.missing:
                raise
        portmap.ensure_table(self.nft())
        nets = [n for n in self.db.networks() if n.id in self._bridges]
        again = [e for n in nets for e in portmap.network_elements(n.bridge, n.internal, n.subnet)]
        portmap.add_elements(self.nft(), again + [e for e in elements if e not in again])

    # -- containers: the bodies are in sandbox.py ---------------------------------------------------------

    def setup(self, container_id: str, name: str, networks: list[str], aliases: list[str], ip: str | None,
              publish: list[str], publish_all_ports: list[str], dns: list[str], add_hosts: list[str], *,
              hosts_file: str | None = None) -> dict[str, Any]:  # fmt: skip
        """Make the container's namespace, endpoints, routes, port maps and hosts entries (at start, before
        the runtime creates the container). Returns {"netns_path", "networks": {name: {"IPAddress",
        "Gateway", "MacAddress", "IPPrefixLen", "Aliases", "NetworkID", "EndpointID"}}, "ports": docker's
        Ports, "hosts": lines kobako keeps in the container's /etc/hosts, "resolv": nameservers}.
        ``networks`` may instead be ["none"], ["host"] or ["container:ID"]: nothing is made then."""
        from kobako.engine.network import sandbox

        return sandbox.setup(self, container_id, name, networks, aliases, ip, publish, publish_all_ports, dns,
                             add_hosts, hosts_file=hosts_file)  # fmt: skip

    def teardown(self, container_id: str, lazy: bool = False) -> None:
        """Exact cleanup of what setup/connect made; idempotent, and works from the records after a crash.
        ``lazy``: leave the veths to the kernel, which deletes them with the namespace (see sandbox.py)."""
        from kobako.engine.network import sandbox

        sandbox.teardown(self, container_id, lazy)

    def accelerate(self, container_id: str) -> None:
        """Give the container's endpoints the same-network fast path (network/fastpath.py): an accelerator
        only, so the engine calls it once the task runs; where the kernel refuses, the bridge carries on."""
        from kobako.engine.network import fastpath

        for ep in self.db.endpoints(container_id=container_id):
            net = self.db.network_by_id(ep.network_id)
            if net is not None:
                fastpath.attach(self.host_netlink(), self.fastpath_dir, net.id, net.subnet, net.gateway,
                                ep.host_ifname, ep.ip)  # fmt: skip

    def connect(self, network: str, container_id: str, ip: str | None = None, aliases: list[str] | None = None,
                name: str = "") -> dict[str, Any]:  # fmt: skip
        """Attach a running container to one more network; returns its settings on that network."""
        from kobako.engine.network import sandbox

        return sandbox.connect(self, network, container_id, ip, aliases, name)

    def disconnect(self, network: str, container_id: str, force: bool = False) -> None:
        from kobako.engine.network import sandbox

        sandbox.disconnect(self, network, container_id, force)

    def settings(self, container_id: str) -> dict[str, Any]:
        """setup's result read back from the records (inspect in a later process)."""
        from kobako.engine.network import sandbox

        return sandbox.settings(self, container_id)

    def refresh_hosts(self, container_id: str) -> None:
        """Rewrite the container's managed /etc/hosts block (after the engine rewrote the file itself)."""
        from kobako.engine.network import dns

        dns.refresh(self.db, {container_id})

    def detach(self, endpoint: Endpoint) -> None:
        from kobako.engine.network import sandbox

        sandbox.detach(self, endpoint)

    def check(self, live_containers: set[str] | None = None) -> list[str]:
        """Leaks: kernel objects, nftables elements, namespaces and rows that no live container explains.
        ``live_containers`` (the engine's running containers) also flags what belongs to dead ones."""
        from kobako.engine.network.check import find_leaks

        return [leak.text for leak in find_leaks(self, live_containers)]

    def recover(self, live_containers: set[str] | None = None) -> list[str]:
        """Remove what ``check`` reports (after a crash); return what was done."""
        from kobako.engine.network.check import repair

        return repair(self, live_containers)


def container_netns(ref: str, root: str | None = None, service: NetworkService | None = None) -> str:
    """The network namespace path of container ``ref`` (id, name or id prefix, from the engine's records):
    the one kobako made for it, else its running process's. For ``--network container:ID``."""
    from kobako.engine.containers import ContainerStore

    record = ContainerStore(root).get(ref)  # NotFound names the container
    path = os.path.join(service.netns_dir if service else os.path.join(_run_dir(root), "netns"), record.id)
    if netns.is_mounted(path):
        return path
    from kobako.engine import tasks

    state = tasks.load(ContainerStore(root), record.id)
    if state.running and tasks.alive(state.pid, state.pid_start):  # never a bare PID: start time checked
        return f"/proc/{state.pid}/ns/net"
    raise FailedPrecondition(f"container {ref} is not running: its network namespace cannot be joined")


def _run_dir(root: str | None) -> str:
    """The run root that goes with a state root: ``paths.run_root()`` for the configured one, else
    ``<root>/run`` (as ``KOBAKO_ROOT`` lays it out)."""
    if not root or os.path.abspath(root) == os.path.abspath(paths.state_root()):
        return paths.run_root()
    return os.path.join(root, "run")
