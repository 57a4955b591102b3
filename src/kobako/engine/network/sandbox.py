"""A container's network sandbox: its namespace, endpoints, published ports and hosts entries.

setup (at container start, before the runtime creates the container):
    sandbox row → netns at ``<run_root>/netns/<id>`` (+ loopback, per-netns sysctls) → per network: address
    and endpoint row (one transaction) → veth born inside the netns → address, route → published ports
    (rows, then nftables elements) → /etc/hosts blocks of everyone on those networks.
teardown (at stop, rm, or after a crash; idempotent): the same in reverse, driven by the rows alone; the
    veths go with the namespace (the kernel deletes them in the background, 15-45 ms after the unmount)
    unless a process still holds it.
Any failure in setup tears down what was done and raises the first error with the cleanup errors attached.
These are the bodies of ``NetworkService``'s container verbs; call them through the service.
"""

from __future__ import annotations

import os

from kobako.engine.network import dns as _dns
from kobako.engine.network import netns, portmap
from kobako.engine.network.ipam import Ipam
from kobako.engine.network.store import Endpoint, Network
from kobako.errors import Conflict, FailedPrecondition, InvalidArgument, KobakoError, NotFound
from kobako.oci import jsoncodec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from kobako.engine.network.netlink import Netlink
    from kobako.engine.network.service import NetworkService


def setup(svc: NetworkService, container_id: str, name: str, networks: list[str], aliases: list[str],
          ip: str | None, publish: list[str], publish_all_ports: list[str], dns: list[str], add_hosts: list[str],
          *, hosts_file: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Give the container its network namespace; see the module docstring. ``networks`` holds names,
    or one of "none" / "host" / "container:ID" (then nothing is made here: the runtime makes a fresh
    namespace, uses the host's, or joins ``netns_path``)."""
    resolv = _dns.nameservers(dns, svc.resolv_conf)
    mode = networks[0] if len(networks) == 1 else ""
    if not networks or mode in ("none", "host"):
        return {"netns_path": "", "networks": {}, "ports": {}, "hosts": [],
                "resolv": [] if mode == "none" else resolv}  # fmt: skip
    if mode.startswith("container:"):
        from kobako.engine.network.service import container_netns

        return {"netns_path": container_netns(mode.partition(":")[2], svc.root, svc),
                "networks": {}, "ports": {}, "hosts": [], "resolv": resolv}  # fmt: skip
    nets = list({n.id: n for n in (svc.get(ref) for ref in networks)}.values())
    routed = [n for n in nets if not n.internal]
    requests = [r for spec in publish for r in portmap.parse_publish(spec)]
    requests += [("", 0, 0, *_exposed(p)) for p in publish_all_ports]
    if requests and not routed:
        raise InvalidArgument("cannot publish ports of a container that is only on internal networks")
    if svc.db.sandbox(container_id) is not None or os.path.lexists(svc.netns_path(container_id)):
        teardown(svc, container_id)  # leftovers of a crash or of a stop that did not tear down
    if hosts_file is None:
        default = os.path.join(svc.root, "containers", container_id, "userdata", "hosts")
        hosts_file = default if os.path.exists(default) else ""
    extra = _dns.resolve_add_hosts(add_hosts, (routed or nets)[0].gateway)
    path = svc.netns_path(container_id)
    with svc.db.transaction() as conn:
        conn.execute("INSERT INTO sandboxes (container_id, netns, hosts_path, extra_hosts) VALUES (?,?,?,?)",
                     (container_id, path, hosts_file, jsoncodec.dumps(extra)))  # fmt: skip
    try:
        from kobako.engine.network.netlink import Netlink, open_socket

        inner = Netlink(netns.create(path, lambda: _prepare_inside(open_socket)))  # type: ignore[arg-type]
        try:
            # The first routed network carries the default route (docker: the first network given).
            endpoints = [
                _attach(svc, container_id, name, net, aliases, ip if i == 0 else None, inner, f"eth{i}",
                        default_route=bool(routed) and net is routed[0])
                for i, net in enumerate(nets)
            ]  # fmt: skip
        finally:
            inner.close()
        ports = _publish(svc, container_id, endpoints[nets.index(routed[0])].ip, requests) if requests else []
        _refresh_hosts(svc, {n.id for n in nets})
    except BaseException as exc:
        try:
            teardown(svc, container_id)
        except KobakoError as cleanup:
            if isinstance(exc, KobakoError):
                exc.add_cleanup_error(cleanup)
        if isinstance(exc, OSError):
            from kobako.errors import from_oserror

            raise from_oserror(exc, f"network setup of {container_id[:12]}") from exc
        raise
    return {
        "netns_path": path,
        "networks": {net.name: _settings(net, ep) for net, ep in zip(nets, endpoints, strict=True)},
        "ports": portmap.docker_ports(ports),
        "hosts": extra + _dns.peer_lines(svc.db, container_id),
        "resolv": resolv,
    }


def _attach(svc: NetworkService, cid: str, name: str, net: Network, aliases: list[str], ip: str | None,
            inner: Netlink, ifname: str, default_route: bool) -> Endpoint:  # fmt: skip
    """Address and endpoint row first (one commit), then the veth: a crash in between leaves a row that
    teardown follows, never an unnamed kernel object."""
    from kobako.engine.network import bridge

    bridge_index = svc.ensure_kernel(net)
    host_ifname = "kv" + os.urandom(7).hex()[:13]  # IFNAMSIZ: 15 characters
    with svc.db.transaction() as conn:
        if not conn.execute("SELECT 1 FROM networks WHERE id = ?", (net.id,)).fetchone():
            raise NotFound(f"network {net.name} not found (removed meanwhile)")
        if conn.execute("SELECT 1 FROM endpoints WHERE container_id = ? AND network_id = ?",
                        (cid, net.id)).fetchone():  # fmt: skip
            raise Conflict(f"container {name or cid[:12]} is already connected to network {net.name}")
        address = svc.ipam.allocate_in(conn, net, cid, ip)
        ep = Endpoint(cid, net.id, name, ifname, host_ifname, address, bridge.mac_for(address), list(aliases))
        conn.execute(
            f"INSERT INTO endpoints ({', '.join(Endpoint.FIELDS)}) VALUES (?,?,?,?,?,?,?,?)", ep.row()
        )
    fd = os.open(svc.netns_path(cid), os.O_RDONLY | os.O_CLOEXEC)
    try:
        bridge.add_veth(svc.host_netlink(), host_ifname, bridge_index, fd, ifname, ep.mac, net.mtu)
    finally:
        os.close(fd)
    outside = svc.outside_mtu() if default_route else 0
    route_mtu = outside if outside < net.mtu else 0
    bridge.configure_inside(inner, ifname, address, net.prefixlen, net.gateway, default_route, route_mtu)
    return ep


def _publish(
    svc: NetworkService, cid: str, ctr_ip: str, requests: list[tuple[str, int, int, int, str]]
) -> list[Any]:
    with svc.db.transaction() as conn:
        ports = portmap.reserve(conn, cid, ctr_ip, requests)
    svc.add_elements(portmap.port_values(ports))
    return ports


def _refresh_hosts(svc: NetworkService, network_ids: set[str], also: set[str] | None = None) -> None:
    _dns.refresh(svc.db, _dns.neighbours(svc.db, network_ids) | (also or set()))


def teardown(svc: NetworkService, container_id: str, lazy: bool = False) -> None:
    """Remove the container's ports, endpoints, addresses and namespace; fine to call twice or after a
    crash (it works from the rows; kernel objects already gone are skipped). ``lazy`` (a ``--rm``
    container's removal): the kernel deletes the veths with the namespace, after this returns."""
    errors: list[BaseException] = []
    ports = svc.db.ports(container_id)
    if ports:
        _collect(errors, lambda: portmap.delete_elements(svc.nft(), portmap.port_keys(ports)))
        _collect(errors, lambda: _delete_rows(svc, "ports", container_id))
    endpoints = svc.db.endpoints(container_id=container_id)
    path = svc.netns_path(container_id)
    # The veths' container ends live in the namespace: once nothing holds it, the kernel deletes them (and
    # their host ends) itself, in the background, 15-45 ms after the unmount; a synchronous RTM_DELLINK
    # costs ~20 ms (the kernel waits out RCU grace periods). Only when asked (`run --rm`: the CLI's exit
    # waits for this) and no process is inside (one run with --network container:ID keeps the namespace
    # alive: then the links go now, as before). The address is not handed out again meanwhile (IPAM
    # walks on from a cursor), and `system check` gives a lingering veth that long before calling it a leak.
    lazy = lazy and bool(endpoints) and netns.is_mounted(path) and not netns.joined(path)
    if lazy:
        lazy = _collect(errors, lambda: netns.remove(path))
    touched = set()
    for ep in endpoints:
        touched.add(ep.network_id)
        _collect(errors, lambda ep=ep: detach(svc, ep, kernel=not lazy))  # type: ignore[misc]
    _collect(errors, lambda: _refresh_hosts(svc, touched))
    if not lazy:
        _collect(errors, lambda: netns.remove(path))
    if not errors:
        _collect(errors, lambda: _delete_rows(svc, "sandboxes", container_id))
    if errors:
        first = errors[0]
        err = (
            first
            if isinstance(first, KobakoError)
            else _internal(f"network teardown of {container_id[:12]}", first)
        )
        for other in errors[1:]:
            err.add_cleanup_error(other)
        raise err


def _delete_rows(svc: NetworkService, table: str, container_id: str) -> None:
    with svc.db.transaction() as conn:
        conn.execute(f"DELETE FROM {table} WHERE container_id = ?", (container_id,))


def detach(svc: NetworkService, ep: Endpoint, kernel: bool = True) -> None:
    """Delete the endpoint's veth (``kernel``: False when the dying namespace takes it), then its row and
    address. Its fast-path entry goes first: the address may be handed out again."""
    from kobako.engine.network import fastpath

    fastpath.forget(svc.fastpath_dir, ep.network_id, ep.ip)
    if kernel:
        from kobako.engine.network import bridge

        bridge.delete_link(svc.host_netlink(), ep.host_ifname)
    with svc.db.transaction() as conn:
        conn.execute("DELETE FROM endpoints WHERE container_id = ? AND network_id = ?",
                     (ep.container_id, ep.network_id))  # fmt: skip
        Ipam.release_in(conn, ep.network_id, ep.container_id)


def connect(svc: NetworkService, network: str, container_id: str, ip: str | None = None,
            aliases: list[str] | None = None, name: str = "") -> dict[str, Any]:  # fmt: skip
    """Attach a running container (one that ``setup`` gave a namespace) to one more network."""
    from kobako.engine.network import bridge
    from kobako.engine.network.netlink import Netlink, open_socket

    net = svc.get(network)
    sandbox = svc.db.sandbox(container_id)
    path = svc.netns_path(container_id)
    if sandbox is None or not netns.is_mounted(path):
        raise FailedPrecondition(
            f"container {name or container_id[:12]} has no network namespace of kobako's: it is not running, "
            "or runs with --network none, host or container:"
        )
    others = svc.db.endpoints(container_id=container_id)
    name = name or (others[0].name if others else "")
    routed = any(not n.internal for n in (svc.db.network_by_id(ep.network_id) for ep in others) if n)
    if any(ep.network_id == net.id for ep in others):
        raise Conflict(f"container {name or container_id[:12]} is already connected to network {net.name}")
    inner = Netlink(netns.run_in(path, open_socket))
    try:
        ep = _attach(svc, container_id, name, net, list(aliases or []), ip, inner, bridge.free_ifname(inner),
                     default_route=not net.internal and not routed)  # fmt: skip
    except BaseException as exc:
        for half in [e for e in svc.db.endpoints(container_id=container_id) if e.network_id == net.id]:
            try:
                detach(svc, half)  # the row was committed, the veth may be half made
            except KobakoError as cleanup:
                if isinstance(exc, KobakoError):
                    exc.add_cleanup_error(cleanup)
        raise
    finally:
        inner.close()
    _refresh_hosts(svc, {net.id}, {container_id})
    from kobako.engine.network import fastpath

    fastpath.attach(  # running: now
        svc.host_netlink(), svc.fastpath_dir, net.id, net.subnet, net.gateway, ep.host_ifname, ep.ip
    )
    return _settings(net, ep)


def disconnect(svc: NetworkService, network: str, container_id: str, force: bool = False) -> None:
    net = svc.get(network)
    eps = [ep for ep in svc.db.endpoints(container_id=container_id) if ep.network_id == net.id]
    if not eps:
        if force:
            return
        raise NotFound(f"container {container_id[:12]} is not connected to network {net.name}")
    ep = eps[0]
    ports = [p for p in svc.db.ports(container_id) if p.ctr_ip == ep.ip]
    if ports:
        portmap.delete_elements(svc.nft(), portmap.port_keys(ports))
        with svc.db.transaction() as conn:
            conn.execute("DELETE FROM ports WHERE container_id = ? AND ctr_ip = ?", (container_id, ep.ip))
    detach(svc, ep)
    _refresh_hosts(svc, {net.id}, {container_id})


def settings(svc: NetworkService, container_id: str) -> dict[str, Any]:
    """What ``setup`` returned, read back from the records (for inspect in a later process)."""
    sandbox = svc.db.sandbox(container_id)
    nets = {ep.network_id: ep for ep in svc.db.endpoints(container_id=container_id)}
    out = {}
    for nid, ep in nets.items():
        net = svc.db.network_by_id(nid)
        if net is not None:
            out[net.name] = _settings(net, ep)
    return {"netns_path": sandbox[0] if sandbox else "", "networks": out,
            "ports": portmap.docker_ports(svc.db.ports(container_id)),
            "hosts": (sandbox[2] if sandbox else []) + _dns.peer_lines(svc.db, container_id)}  # fmt: skip


def _prepare_inside(open_socket: Any) -> Any:
    """In a new container namespace: per-namespace sysctls, then the netlink socket for the rest."""
    from kobako.engine.defaults import NETNS_SYSCTLS

    for key, value in NETNS_SYSCTLS.items():
        netns.write_sysctl(key, value)
    return open_socket()


def _exposed(port: str) -> tuple[int, str]:
    """An image ExposedPorts key ("80/tcp", "53/udp", "8080") → (port, proto)."""
    number, _, proto = port.partition("/")
    if not number.isdigit() or not 1 <= int(number) <= 65535 or (proto or "tcp") not in ("tcp", "udp"):
        raise InvalidArgument(f"invalid exposed port {port!r}")
    return int(number), proto or "tcp"


def _settings(net: Network, ep: Endpoint) -> dict[str, Any]:
    return {"NetworkID": net.id, "EndpointID": ep.host_ifname, "IPAddress": ep.ip, "IPPrefixLen": net.prefixlen,
            "Gateway": net.gateway, "MacAddress": ep.mac, "Aliases": list(ep.aliases)}  # fmt: skip


def _collect(errors: list[BaseException], step: Any) -> bool:
    try:
        step()
    except Exception as exc:
        errors.append(exc)
        return False
    return True


def _internal(what: str, exc: BaseException) -> KobakoError:
    from kobako.errors import Internal, from_oserror

    if isinstance(exc, OSError):
        return from_oserror(exc, what)
    err = Internal(f"{what}: {exc}")
    err.__cause__ = exc
    return err
