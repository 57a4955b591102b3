"""Network records, endpoints, published ports and addresses: one SQLite file, ``<state_root>/networks/network.db``.

One database so a change that spans tables (an endpoint with its address, a network removal that must see
no endpoints) is one transaction. ``Database.transaction()`` is ``BEGIN IMMEDIATE``: writers from several
processes queue on SQLite's lock (busy timeout), readers never block (WAL). Rows are written *before* the
kernel objects they describe, so whatever a crash leaves behind is named in the database and teardown or
``NetworkService.recover`` can remove it.

Tables: networks, addresses (IPAM, see ipam.py), ipam_cursor, sandboxes (a container's namespace, its
/etc/hosts and --add-host lines), endpoints (one per container and network), ports.
"""

from __future__ import annotations

import os

from kobako import sqlite
from kobako.errors import Unavailable
from kobako.oci import jsoncodec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS networks (
    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, driver TEXT NOT NULL, bridge TEXT NOT NULL UNIQUE,
    subnet TEXT NOT NULL, gateway TEXT NOT NULL, internal INTEGER NOT NULL, dns INTEGER NOT NULL,
    labels TEXT NOT NULL, created TEXT NOT NULL, mtu INTEGER NOT NULL DEFAULT 1500,
    options TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS addresses (
    network_id TEXT NOT NULL, ip INTEGER NOT NULL, owner TEXT NOT NULL,
    PRIMARY KEY (network_id, ip), UNIQUE (network_id, owner));
CREATE TABLE IF NOT EXISTS ipam_cursor (network_id TEXT PRIMARY KEY, last INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS endpoints (
    container_id TEXT NOT NULL, network_id TEXT NOT NULL, name TEXT NOT NULL, ifname TEXT NOT NULL,
    host_ifname TEXT NOT NULL UNIQUE, ip TEXT NOT NULL, mac TEXT NOT NULL, aliases TEXT NOT NULL,
    PRIMARY KEY (container_id, network_id));
CREATE TABLE IF NOT EXISTS sandboxes (
    container_id TEXT PRIMARY KEY, netns TEXT NOT NULL, hosts_path TEXT NOT NULL, extra_hosts TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ports (
    proto TEXT NOT NULL, host_ip TEXT NOT NULL, host_port INTEGER NOT NULL, container_id TEXT NOT NULL,
    ctr_ip TEXT NOT NULL, ctr_port INTEGER NOT NULL, PRIMARY KEY (proto, host_ip, host_port));
CREATE INDEX IF NOT EXISTS ports_by_container ON ports (container_id);
CREATE INDEX IF NOT EXISTS endpoints_by_network ON endpoints (network_id);
"""
_VERSION = 2
# Version 1 had no mtu/options: its networks' bridges were made at 1500, which the default keeps.
_MIGRATIONS = {1: ("ALTER TABLE networks ADD COLUMN mtu INTEGER NOT NULL DEFAULT 1500",
                   "ALTER TABLE networks ADD COLUMN options TEXT NOT NULL DEFAULT '{}'")}  # fmt: skip


class Network:
    """One network record (plain class: dataclasses cost start-up time)."""

    FIELDS = ("id", "name", "driver", "bridge", "subnet", "gateway", "internal", "dns", "labels", "created", "mtu",
              "options")  # fmt: skip

    def __init__(self, id: str, name: str, bridge: str, subnet: str, gateway: str, *, driver: str = "bridge",
                 internal: bool = False, dns: bool = True, labels: dict[str, str] | None = None,
                 created: str = "", mtu: int = 1500, options: dict[str, str] | None = None) -> None:  # fmt: skip
        self.id = id
        self.name = name
        self.driver = driver
        self.bridge = bridge  # the Linux bridge's name
        self.subnet = subnet  # "10.89.0.0/24"
        self.gateway = gateway
        self.internal = internal
        self.dns = dns  # containers on it resolve each other by name (user-defined networks)
        self.labels = labels or {}
        self.created = created
        self.mtu = mtu  # of the bridge and every veth on it (the container's default route may be lower)
        self.options = options or {}  # driver options as the user gave them (network create -o)

    @property
    def prefixlen(self) -> int:
        return int(self.subnet.partition("/")[2])

    @classmethod
    def from_row(cls, row: tuple) -> Network:
        nid, name, driver, bridge, subnet, gateway, internal, dns, labels, created, mtu, options = row
        return cls(nid, name, bridge, subnet, gateway, driver=driver, internal=bool(internal), dns=bool(dns),
                   labels=jsoncodec.loads(labels), created=created, mtu=mtu,
                   options=jsoncodec.loads(options))  # fmt: skip

    def row(self) -> tuple:
        return (self.id, self.name, self.driver, self.bridge, self.subnet, self.gateway, int(self.internal),
                int(self.dns), jsoncodec.dumps(self.labels), self.created, self.mtu,
                jsoncodec.dumps(self.options))  # fmt: skip


class Endpoint:
    FIELDS = ("container_id", "network_id", "name", "ifname", "host_ifname", "ip", "mac", "aliases")

    def __init__(self, container_id: str, network_id: str, name: str, ifname: str, host_ifname: str, ip: str,
                 mac: str, aliases: list[str]) -> None:  # fmt: skip
        self.container_id = container_id
        self.network_id = network_id
        self.name = name  # the container's name (for DNS)
        self.ifname = ifname  # inside the container: eth0, eth1, ...
        self.host_ifname = host_ifname  # the veth end on the bridge
        self.ip = ip
        self.mac = mac
        self.aliases = aliases

    @classmethod
    def from_row(cls, row: tuple) -> Endpoint:
        *head, aliases = row
        return cls(*head, jsoncodec.loads(aliases))

    def row(self) -> tuple:
        return (self.container_id, self.network_id, self.name, self.ifname, self.host_ifname, self.ip, self.mac,
                jsoncodec.dumps(self.aliases))  # fmt: skip


class Port:
    """One published port: host_ip "" is every local address."""

    def __init__(self, proto: str, host_ip: str, host_port: int, container_id: str, ctr_ip: str,
                 ctr_port: int) -> None:  # fmt: skip
        self.proto, self.host_ip, self.host_port = proto, host_ip, host_port
        self.container_id, self.ctr_ip, self.ctr_port = container_id, ctr_ip, ctr_port

    def row(self) -> tuple:
        return (self.proto, self.host_ip, self.host_port, self.container_id, self.ctr_ip, self.ctr_port)


class _Transaction:
    def __init__(self, conn: sqlite.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        self.conn.execute("COMMIT" if kind is None else "ROLLBACK")


class Database:
    def __init__(self, state_root: str) -> None:
        self.dir = os.path.join(state_root, "networks")
        self.path = os.path.join(self.dir, "network.db")
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        try:
            self.conn = sqlite.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")  # WAL: a process crash loses nothing committed
            if self.conn.execute("PRAGMA user_version").fetchone()[0] != _VERSION:
                with self.transaction() as c:
                    version = c.execute("PRAGMA user_version").fetchone()[0]
                    if version > _VERSION:
                        raise Unavailable(f"network database {self.path} is of a newer kobako (version "
                                          f"{version}; this one knows {_VERSION})")  # fmt: skip
                    if version != _VERSION:
                        for statement in _SCHEMA.split(";"):  # not executescript: it would commit first
                            if statement.strip():
                                c.execute(statement)
                        for statement in _MIGRATIONS.get(version, ()):
                            c.execute(statement)
                        c.execute(f"PRAGMA user_version={_VERSION}")
        except sqlite.Error as exc:
            raise Unavailable(f"network database {self.path}: {exc}") from exc

    def close(self) -> None:
        self.conn.close()

    def transaction(self) -> _Transaction:
        return _Transaction(self.conn)

    def query(self, sql: str, args: tuple = ()) -> list[tuple]:
        return self.conn.execute(sql, args).fetchall()

    # -- networks ---------------------------------------------------------------------------------------

    def networks(self) -> list[Network]:
        rows = self.query(f"SELECT {', '.join(Network.FIELDS)} FROM networks ORDER BY created, name")
        return [Network.from_row(r) for r in rows]

    def network(self, ref: str) -> Network | None:
        """By name, full id, then unique id prefix (docker's order)."""
        cols = ", ".join(Network.FIELDS)
        rows = self.query(f"SELECT {cols} FROM networks WHERE name = ? OR id = ?", (ref, ref))
        if not rows and ref and all(c in "0123456789abcdef" for c in ref):
            rows = self.query(f"SELECT {cols} FROM networks WHERE id LIKE ?", (ref + "%",))
            if len(rows) > 1:
                return None
        return Network.from_row(rows[0]) if rows else None

    @staticmethod
    def insert_network(conn: sqlite.Connection, network: Network) -> None:
        marks = ",".join("?" * len(Network.FIELDS))
        conn.execute(f"INSERT INTO networks ({', '.join(Network.FIELDS)}) VALUES ({marks})", network.row())

    def network_by_id(self, network_id: str) -> Network | None:
        rows = self.query(f"SELECT {', '.join(Network.FIELDS)} FROM networks WHERE id = ?", (network_id,))
        return Network.from_row(rows[0]) if rows else None

    # -- endpoints and ports ----------------------------------------------------------------------------

    def endpoints(self, container_id: str | None = None, network_id: str | None = None) -> list[Endpoint]:
        where, args = [], []
        if container_id is not None:
            where.append("container_id = ?")
            args.append(container_id)
        if network_id is not None:
            where.append("network_id = ?")
            args.append(network_id)
        sql = f"SELECT {', '.join(Endpoint.FIELDS)} FROM endpoints"
        sql += (" WHERE " + " AND ".join(where)) if where else ""
        return [Endpoint.from_row(r) for r in self.query(sql + " ORDER BY container_id, ifname", tuple(args))]

    def sandbox(self, container_id: str) -> tuple[str, str, list[str]] | None:
        """(netns path, hosts file path or "", extra hosts lines) of a container that was set up."""
        rows = self.query("SELECT netns, hosts_path, extra_hosts FROM sandboxes WHERE container_id = ?",
                          (container_id,))  # fmt: skip
        return (rows[0][0], rows[0][1], jsoncodec.loads(rows[0][2])) if rows else None

    def sandboxes(self) -> list[str]:
        return [r[0] for r in self.query("SELECT container_id FROM sandboxes ORDER BY container_id")]

    def ports(self, container_id: str | None = None) -> list[Port]:
        sql = "SELECT proto, host_ip, host_port, container_id, ctr_ip, ctr_port FROM ports"
        rows = (
            self.query(sql + " WHERE container_id = ?", (container_id,)) if container_id else self.query(sql)
        )
        return [Port(*r) for r in rows]


def labels_text(labels: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in labels.items())
