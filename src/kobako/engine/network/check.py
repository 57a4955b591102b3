"""Finding (and removing) what networking left behind: for ``kobako system check`` and crash recovery.

Records are the truth for what *should* exist; a live container is one whose namespace is mounted (and,
when the engine says which containers run, one of those). Each finding carries the repair that removes
it; repairs only ever delete kobako's own objects (``kv*`` veths, bridges of kobako networks, elements of
``table ip kobako``, files under the netns and fast-path directories, rows).
"""

from __future__ import annotations

import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from kobako.engine.network.service import NetworkService

VETH_PREFIX = "kv"
LINGER = 0.5  # seconds a veth without an endpoint may take to go with its namespace before it is a leak


class Leak:
    def __init__(self, text: str, fix: Callable[[], object]) -> None:
        self.text = text
        self.fix = fix


def find_leaks(svc: NetworkService, live_containers: set[str] | None = None) -> list[Leak]:
    from kobako.engine.network import netns, portmap
    from kobako.engine.network.bridge import delete_link

    db, leaks = svc.db, []
    sandboxes = set(db.sandboxes())
    for cid in sorted(sandboxes):
        if not netns.is_mounted(svc.netns_path(cid)):
            leaks.append(Leak(f"container {cid[:12]}: network records without a network namespace",
                              lambda cid=cid: svc.teardown(cid)))  # fmt: skip
        elif live_containers is not None and cid not in live_containers:
            text = f"container {cid[:12]}: network namespace and records of a container that is not running"
            leaks.append(Leak(text, lambda cid=cid: svc.teardown(cid)))
    for name in netns.listdir(svc.netns_dir):
        if name not in sandboxes:
            path = svc.netns_path(name)
            leaks.append(
                Leak(f"network namespace {path} without a record", lambda path=path: netns.remove(path))
            )

    endpoints = db.endpoints()
    owned = {(ep.network_id, ep.container_id) for ep in endpoints}
    for ep in endpoints:
        if ep.container_id not in sandboxes:
            leaks.append(Leak(f"endpoint {ep.host_ifname} of container {ep.container_id[:12]} without a sandbox",
                              lambda ep=ep: svc.detach(ep)))  # fmt: skip
    for nid, ip, owner in svc.ipam.allocations():
        if (nid, owner) not in owned:
            leaks.append(Leak(f"address {ip} held by {owner[:12]} without an endpoint",
                              lambda nid=nid, owner=owner: svc.ipam.release(nid, owner)))  # fmt: skip
    ports = db.ports()
    for p in ports:
        if p.container_id not in sandboxes:
            text = (f"published port {p.host_ip or '0.0.0.0'}:{p.host_port}/{p.proto} of a container without "
                    f"a sandbox ({p.container_id[:12]})")  # fmt: skip
            leaks.append(Leak(text, lambda p=p: _drop_port(svc, p)))

    networks = db.networks()
    from kobako.engine.network import fastpath

    addresses = {(ep.network_id, ep.ip) for ep in endpoints}
    for net in networks:
        for ip in fastpath.entries(svc.fastpath_dir, net.id):
            if (net.id, ip) not in addresses:
                leaks.append(Leak(f"fast-path entry {ip} of network {net.name} without an endpoint",
                                  lambda nid=net.id, ip=ip: fastpath.forget(svc.fastpath_dir, nid, ip)))  # fmt: skip
    known = {net.id for net in networks}
    for name in fastpath.recorded_networks(svc.fastpath_dir):
        if name not in known:
            leaks.append(Leak(f"fast-path map record {name[:12]} without a network",
                              lambda name=name: fastpath.drop(svc.fastpath_dir, name)))  # fmt: skip
    bridges = {n.bridge for n in networks}
    host_ifnames = {ep.host_ifname for ep in endpoints}
    nl = svc.host_netlink()
    links = nl.links()
    orphans = _orphan_veths(links, host_ifnames)
    if orphans:
        # A teardown lets the kernel delete the veths with their namespace, 15-45 ms after it: give those
        # a moment before calling them leaks.
        deadline = time.monotonic() + LINGER
        while orphans and time.monotonic() < deadline:
            time.sleep(0.01)
            links = nl.links()
            orphans = _orphan_veths(links, host_ifnames)
    for name in orphans:
        leaks.append(Leak(f"veth {name} without an endpoint", lambda name=name: delete_link(nl, name)))
    for link in links:
        name = link["name"] or ""
        if link["kind"] == "bridge" and name.startswith("kb-") and name not in bridges:
            leaks.append(Leak(f"bridge {name} without a network", lambda name=name: delete_link(nl, name)))

    table = portmap.listing(svc.nft_json())
    if table is not None:
        want: dict[str, set[str]] = {}
        for net in networks:
            for element in portmap.network_elements(net.bridge, net.internal, net.subnet):
                set_name, _, rest = element.partition(" ")
                want.setdefault(set_name, set()).add(rest.strip("{} ").replace('"', ""))
        for element in portmap.port_values(ports):
            map_name, _, rest = element.partition(" ")
            want.setdefault(map_name, set()).add(rest.strip("{} "))
        for set_name, elements in table.items():
            for element in elements:
                if element not in want.get(set_name, set()):
                    key = element.partition(" : ")[0]
                    # Interface names are quoted, addresses and ports are not.
                    quoted = " . ".join(p if p[:1].isdigit() else f'"{p}"' for p in key.split(" . "))
                    target = f"{set_name} {{ {quoted} }}"
                    leaks.append(Leak(f"nftables element {element!r} in {set_name} without a record",
                                      lambda t=target: portmap.delete_elements(svc.nft(), [t])))  # fmt: skip
        present = {f"{name} {{ {e} }}" for name, elements in table.items() for e in elements}
        for element in portmap.port_values([p for p in ports if p.container_id in sandboxes]):
            if element not in present:
                leaks.append(Leak(f"published port {element} is recorded but missing from nftables",
                                  lambda e=element: portmap.add_elements(svc.nft(), [e])))  # fmt: skip
    return leaks


def _orphan_veths(links: list[dict], host_ifnames: set[str]) -> list[str]:
    return [
        link["name"] for link in links
        if link["kind"] == "veth" and (link["name"] or "").startswith(VETH_PREFIX)
        and link["name"] not in host_ifnames
    ]  # fmt: skip


def _drop_port(svc: NetworkService, port: object) -> None:
    from kobako.engine.network import portmap

    portmap.delete_elements(svc.nft(), portmap.port_keys([port]))  # type: ignore[list-item]
    with svc.db.transaction() as conn:
        conn.execute("DELETE FROM ports WHERE proto = ? AND host_ip = ? AND host_port = ?",
                     (port.proto, port.host_ip, port.host_port))  # type: ignore[attr-defined]  # fmt: skip


def repair(svc: NetworkService, live_containers: set[str] | None = None) -> list[str]:
    """Fix every finding; a second pass catches what a first fix exposed (e.g. rows left by a teardown)."""
    done: list[str] = []
    for _ in range(2):
        leaks = find_leaks(svc, live_containers)
        if not leaks:
            break
        for leak in leaks:
            try:
                leak.fix()
                done.append(f"removed: {leak.text}")
            except Exception as exc:
                done.append(f"could not remove: {leak.text}: {exc}")
    return done
